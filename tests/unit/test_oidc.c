/*
 * Unit tests: eid_oidc - the login options and their start-up checks, the
 * authorization request (parsed back: every parameter, PKCE S256, acr_values
 * per profile and level), and the code exchange against a loopback token /
 * userinfo endpoint: each token_auth method (what the endpoint received),
 * the ID token rules (OpenID Connect Core 3.1.3.7) one refusal each, the
 * userinfo sub match, signed userinfo answers (verified, or refused one way
 * each), and the endpoint failing in each way.
 * Logout tokens, discovery and threads: test_oidc_logout.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "oidc_fixture.h"
#include "loopback_http.h"

#include <apr_thread_proc.h>
#include <openssl/ecdsa.h>

#define NONCE "nonce-0123456789-abcdefghijklmnopqrstuvwxy"
#define VERIFIER "verifier-0123456789-abcdefghijklmnopqrstuv"
#define CODE "code-abc.123~_"
#define AT "access-token-xyz"
#define HDR "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"

static int setup(void **state)
{
    fixture_up("test_oidc");
    start_server();
    return 0;
}

static int teardown(void **state)
{
    stop_server();
    fixture_down();
    return 0;
}

/* A login provider: the base options, then `extra` (name, value, ..., NULL). */
static eid_provider_t *login_pv(const char *first, ...)
{
    const char *o[64] = {
        "issuer", ISS, "jwks_file", jwks_path, "login", "on", "client_id", CID,
        "client_secret_file", secret_path,
        "authorization_endpoint", "https://op.example.se/authorize?ui=sv",
        "token_endpoint", url("/token"), "userinfo_endpoint", url("/userinfo")};
    int n = 16;
    va_list ap;
    const char *s = first;
    va_start(ap, first);
    while (s && n < 62) {
        o[n++] = s;
        s = va_arg(ap, const char *);
    }
    va_end(ap);
    o[n] = NULL;
    return provider_v(o);
}

static char *claims(const char *extra)
{
    return apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"user-1\",\"exp\":%ld,"
                        "\"iat\":%ld,\"nonce\":\"%s\",\"sid\":\"sid-1\",\"email\":\"a@b.se\"%s%s}",
                        ISS, CID, NOW_S + 300, NOW_S - 5, NONCE, extra ? "," : "",
                        extra ? extra : "");
}

static void token_answer(const char *idt)
{
    route("/token", 200, apr_psprintf(pool, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
                                      "\"expires_in\":300,\"id_token\":\"%s\"}", AT, idt));
}

static apr_status_t redeem(eid_provider_t *pv, int min_loa, eid_oidc_login_t *out,
                           eid_result_t *res)
{
    eid_pending_t pd;
    memset(&pd, 0, sizeof(pd));
    pd.provider = "op1";
    pd.state = "state";
    pd.nonce = NONCE;
    pd.code_verifier = VERIFIER;
    pd.min_loa = min_loa;
    pd.created = now;
    return eid_oidc_redeem(pool, pv, REDIR, CODE, &pd, now, out, res);
}

static void refused(eid_provider_t *pv, int min_loa, const char *tag, eid_class_e cls)
{
    eid_oidc_login_t out;
    eid_result_t res = {0};
    if (redeem(pv, min_loa, &out, &res) == APR_SUCCESS)
        fail_msg("expected %s, got success", tag);
    if (!res.tag || strcmp(res.tag, tag))
        fail_msg("expected %s, got %s (%s)", tag, res.tag, res.reason);
    assert_int_equal(res.cls, cls);
    assert_null(out.id);
}

static eid_identity_t *accepted(eid_provider_t *pv, int min_loa, eid_oidc_login_t *out)
{
    eid_result_t res = {0};
    if (redeem(pv, min_loa, out, &res) != APR_SUCCESS)
        fail_msg("refused: %s %s", res.tag, res.reason);
    assert_non_null(out->id);
    return out->id;
}

/* ---- configuration ---------------------------------------------------------------------- */

static void bad_config(const char *want, const char *const *opts)
{
    eid_provider_t *pv;
    const char *err = try_provider(opts, &pv);
    if (!err || !strstr(err, want))
        fail_msg("expected an error with '%s', got '%s'", want, err ? err : "(none)");
}

static void test_config(void **state)
{
    eid_provider_t *pv;
    const char *base[] = {"issuer", ISS, "jwks_file", jwks_path, NULL};
    const char *ok[] = {"issuer", ISS, "jwks_file", jwks_path, "login", "on", "client_id", CID,
                        "client_secret_file", secret_path, "authorization_endpoint",
                        "https://op/a", "token_endpoint", "https://op/t", NULL};
    /* login=on: no audience needed */
    assert_null(try_provider(ok, &pv));
    assert_true(eid_oidc_enabled(pv));
    assert_int_equal(eid_oidc_login_timeout(pv), apr_time_from_sec(600));
    /* without login, the audience rule stands */
    bad_config("audience is required", base);
    bad_config("needs client_id", (const char *[]){"issuer", ISS, "jwks_file", jwks_path,
               "login", "on", NULL});
    bad_config("needs client_secret_file", (const char *[]){"issuer", ISS, "jwks_file",
               jwks_path, "login", "on", "client_id", "c", NULL});
    bad_config("needs private_key_file", (const char *[]){"issuer", ISS, "jwks_file",
               jwks_path, "login", "on", "client_id", "c", "token_auth", "private_key_jwt",
               NULL});
    bad_config("holds no unencrypted PEM private key", (const char *[]){"issuer", ISS,
               "jwks_file", jwks_path, "login", "on", "client_id", "c", "token_auth",
               "private_key_jwt", "private_key_file", jwks_path, NULL});
    bad_config("authorization_endpoint and token_endpoint", (const char *[]){"issuer", ISS,
               "jwks_file", jwks_path, "login", "on", "client_id", "c", "client_secret_file",
               secret_path, NULL});
    bad_config("userinfo=on without discovery needs userinfo_endpoint", (const char *[]){
               "issuer", ISS, "jwks_file", jwks_path, "login", "on", "client_id", "c",
               "client_secret_file", secret_path, "authorization_endpoint", "https://op/a",
               "token_endpoint", "https://op/t", "userinfo", "on", NULL});
    bad_config("token_endpoint=http://op.example.se/t", (const char *[]){"issuer", ISS,
               "token_endpoint", "http://op.example.se/t", NULL});
    bad_config("must contain openid", (const char *[]){"scope", "profile email", NULL});
    bad_config("prompt:", (const char *[]){"prompt", "login\r\nX: y", NULL});
    bad_config("max_age:", (const char *[]){"max_age", "-1", NULL});
    bad_config("login_timeout:", (const char *[]){"login_timeout", "5", NULL});
    bad_config("token_auth:", (const char *[]){"token_auth", "client_secret_jwt", NULL});
    bad_config("login:", (const char *[]){"login", "yes", NULL});
    bad_config("scope: only with login=on", (const char *[]){"issuer", ISS, "jwks_file",
               jwks_path, "audience", "a", "scope", "openid", NULL});
    bad_config("needs the provider's keys", (const char *[]){"issuer", ISS, "introspect",
               "https://op/i", "login", "on", "client_id", "c", "client_secret_file",
               secret_path, NULL});
    bad_config("given twice", (const char *[]){"token_endpoint", "https://op/t",
               "token_endpoint", "https://op/u", NULL});
    /* a login provider admits no bearer token when it has no audience */
    {
        eid_identity_t *id;
        eid_result_t res = {0};
        eid_provider_t *lp = login_pv(NULL);
        char *t = sign(op_key, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}",
                       apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"u\","
                                    "\"exp\":%ld}", ISS, CID, NOW_S + 60));
        assert_int_not_equal(eid_bearer_validate(pool, &lp, 1, t, strlen(t), now, &id, &res),
                             EID_BEARER_OK);
        assert_string_equal(res.tag, "EID03305");
    }
}

/* ---- the authorization request ---------------------------------------------------------- */

static void test_auth_request(void **state)
{
    eid_provider_t *pv = login_pv("scope", "openid profile", "prompt", "consent", "max_age",
                                  "900", "claims", "oidc-sweden", NULL);
    eid_oidc_authreq_t a, b;
    eid_result_t res = {0};
    unsigned char h[SHA256_DIGEST_LENGTH];
    const char *q;
    apr_table_t *t;

    assert_int_equal(eid_oidc_auth_request(pool, pv, REDIR, 3, "anna@ex.se &x=1", 0, now, &a,
                                           &res), APR_SUCCESS);
    assert_true(!strncmp(a.url, "https://op.example.se/authorize?ui=sv&", 38));
    q = strchr(a.url, '?') + 1;
    t = params(q);
    assert_string_equal(apr_table_get(t, "ui"), "sv");
    assert_string_equal(apr_table_get(t, "response_type"), "code");
    assert_string_equal(apr_table_get(t, "client_id"), CID);
    assert_string_equal(apr_table_get(t, "redirect_uri"), REDIR);
    assert_string_equal(apr_table_get(t, "scope"), "openid profile");
    assert_string_equal(apr_table_get(t, "state"), a.state);
    assert_string_equal(apr_table_get(t, "nonce"), a.nonce);
    assert_string_equal(apr_table_get(t, "code_challenge_method"), "S256");
    SHA256((const unsigned char *)a.code_verifier, strlen(a.code_verifier), h);
    assert_string_equal(apr_table_get(t, "code_challenge"), b64u(h, sizeof(h)));
    assert_string_equal(apr_table_get(t, "acr_values"),
                        "http://id.elegnamnden.se/loa/1.0/loa3 "
                        "http://id.elegnamnden.se/loa/1.0/eidas-sub "
                        "http://id.elegnamnden.se/loa/1.0/loa4 "
                        "http://id.elegnamnden.se/loa/1.0/eidas-high");
    assert_string_equal(apr_table_get(t, "prompt"), "consent");
    assert_string_equal(apr_table_get(t, "max_age"), "900");
    assert_string_equal(apr_table_get(t, "login_hint"), "anna@ex.se &x=1");
    assert_int_equal(apr_table_elts(t)->nelts, 13);
    /* the raw URL carries no unencoded space, '&' of the hint, or ':' */
    assert_null(strchr(q, ' '));
    assert_non_null(strstr(q, "login_hint=anna%40ex.se+%26x%3D1"));
    assert_int_equal(strlen(a.state), EID_OIDC_RANDOM_LEN);
    assert_int_equal(strlen(a.nonce), EID_OIDC_RANDOM_LEN);
    assert_int_equal(strlen(a.code_verifier), EID_OIDC_RANDOM_LEN);
    assert_string_not_equal(a.state, a.nonce);
    assert_string_not_equal(a.nonce, a.code_verifier);

    /* a second request: fresh randoms; prompt_login wins; level 0: no acr_values;
     * no hint */
    assert_int_equal(eid_oidc_auth_request(pool, pv, REDIR, 0, NULL, 1, now, &b, &res),
                     APR_SUCCESS);
    t = params(strchr(b.url, '?') + 1);
    assert_string_not_equal(a.state, b.state);
    assert_string_not_equal(a.code_verifier, b.code_verifier);
    assert_string_equal(apr_table_get(t, "prompt"), "login");
    assert_null(apr_table_get(t, "acr_values"));
    assert_null(apr_table_get(t, "login_hint"));

    /* a hint with a control character is left out, not sent mangled */
    assert_int_equal(eid_oidc_auth_request(pool, pv, REDIR, 0, "a\nb", 0, now, &b, &res),
                     APR_SUCCESS);
    assert_null(apr_table_get(params(strchr(b.url, '?') + 1), "login_hint"));
}

static const char *acr_list(eid_provider_t *pv, int level)
{
    eid_oidc_authreq_t a;
    eid_result_t res = {0};
    if (eid_oidc_auth_request(pool, pv, REDIR, level, NULL, 0, now, &a, &res) != APR_SUCCESS)
        return apr_pstrcat(pool, "refused ", res.tag, NULL);
    return apr_table_get(params(strchr(a.url, '?') + 1), "acr_values");
}

#define EL "http://id.elegnamnden.se/loa/1.0/"
#define SA "http://id.sambi.se/loa/"

static void test_acr_values(void **state)
{
    eid_provider_t *sw = login_pv("claims", "oidc-sweden", NULL);
    eid_provider_t *in = login_pv("claims", "inera", NULL);
    eid_provider_t *in4 = login_pv("claims", "inera", "acr.urn:x:siths-high", "4",
                                   "acr." SA "loa2", "0", NULL);
    eid_provider_t *gen = login_pv(NULL);

    assert_null(acr_list(sw, 0));
    assert_string_equal(acr_list(sw, 1), EL "loa2 " EL "loa3 " EL "eidas-sub " EL "loa4 "
                        EL "eidas-high");
    assert_string_equal(acr_list(sw, 2), EL "loa2 " EL "loa3 " EL "eidas-sub " EL "loa4 "
                        EL "eidas-high");
    assert_string_equal(acr_list(sw, 3), EL "loa3 " EL "eidas-sub " EL "loa4 " EL "eidas-high");
    assert_string_equal(acr_list(sw, 4), EL "loa4 " EL "eidas-high");

    assert_null(acr_list(in, 0));
    /* Inera's IdP matches exactly: level 2 asks for both */
    assert_string_equal(acr_list(in, 2), SA "loa2 " SA "loa3");
    assert_string_equal(acr_list(in, 3), SA "loa3");
    /* no URI for level 4: refused (misconfigured), never asked without acr */
    assert_string_equal(acr_list(in, 4), "refused EID07102");
    assert_int_equal(eid_result_class("EID07102"), EID_CLASS_MISCONFIGURED);
    /* overrides: a new URI at 4, a table URI taken out (0) */
    assert_string_equal(acr_list(in4, 4), "urn:x:siths-high");
    assert_string_equal(acr_list(in4, 2), SA "loa3 urn:x:siths-high");

    assert_string_equal(acr_list(gen, 4), EL "loa4 " EL "eidas-high "
                        "http://eidas.europa.eu/LoA/high");
}

/* ---- the code exchange: client authentication ------------------------------------------- */

static void test_redeem_basic(void **state)
{
    eid_provider_t *pv = login_pv("claims", "generic", NULL);
    eid_oidc_login_t out;
    eid_identity_t *id;
    apr_table_t *t;
    const char *cred = "rp%3A1+x:s3cr3t%3A%26%3D%2B+x";
    unsigned char b64[128];

    token_answer(sign(op_key, HDR, claims(apr_psprintf(pool, "\"at_hash\":\"%s\","
                      "\"c_hash\":\"%s\",\"auth_time\":%ld", half_hash(AT), half_hash(CODE),
                      NOW_S - 30))));
    id = accepted(pv, 0, &out);
    assert_int_equal(id->method, EID_METHOD_OIDC);
    assert_string_equal(id->subject, "user-1");
    assert_string_equal(id->email, "a@b.se");
    assert_string_equal(id->issuer, ISS);
    assert_string_equal(id->profile, "op1");
    assert_int_equal(id->auth_time, apr_time_from_sec(NOW_S - 30));
    assert_int_equal(id->expires, apr_time_from_sec(NOW_S + 300));
    assert_string_equal(out.sid, "sid-1");
    assert_string_equal(out.sub, "user-1");
    assert_int_equal(out.id_token_exp, apr_time_from_sec(NOW_S + 300));
    assert_non_null(out.id_token);
    /* RFC 6749 2.3.1: Basic over the form-encoded id and secret */
    EVP_EncodeBlock(b64, (const unsigned char *)cred, (int)strlen(cred));
    assert_string_equal(last_auth, apr_pstrcat(pool, "Basic ", (char *)b64, NULL));
    t = params(last_body);
    assert_string_equal(apr_table_get(t, "grant_type"), "authorization_code");
    assert_string_equal(apr_table_get(t, "code"), CODE);
    assert_string_equal(apr_table_get(t, "redirect_uri"), REDIR);
    assert_string_equal(apr_table_get(t, "code_verifier"), VERIFIER);
    assert_int_equal(apr_table_elts(t)->nelts, 4);
}

static void test_redeem_post(void **state)
{
    eid_provider_t *pv = login_pv("token_auth", "client_secret_post", NULL);
    eid_oidc_login_t out;
    apr_table_t *t;

    token_answer(sign(op_key, HDR, claims(NULL)));
    accepted(pv, 0, &out);
    assert_string_equal(last_auth, "");
    t = params(last_body);
    assert_string_equal(apr_table_get(t, "client_id"), CID);
    assert_string_equal(apr_table_get(t, "client_secret"), "s3cr3t:&=+ x");
    assert_string_equal(apr_table_get(t, "code"), CODE);
    assert_string_equal(apr_table_get(t, "code_verifier"), VERIFIER);
    assert_int_equal(apr_table_elts(t)->nelts, 6);
}

/* Verify an RS256 or ES256 JWS with the public half of `k`. */
static int jws_ok(EVP_PKEY *k, const char *jws)
{
    const char *d2 = strrchr(jws, '.');
    size_t sl;
    unsigned char *sig = unb64u(d2 + 1, strlen(d2 + 1), &sl), der[160], *dp = der;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok, dl = 0;
    if (EVP_PKEY_base_id(k) == EVP_PKEY_EC) {
        /* JWS ES256 is R || S; OpenSSL verifies DER */
        ECDSA_SIG *es = ECDSA_SIG_new();
        assert_int_equal(sl, 64);
        ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
        dl = i2d_ECDSA_SIG(es, &dp);
        ECDSA_SIG_free(es);
        sig = der;
        sl = (size_t)dl;
    }
    EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, k);
    ok = EVP_DigestVerify(c, sig, sl, (const unsigned char *)jws, (size_t)(d2 - jws)) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

static void assertion_case(const char *pem, EVP_PKEY *k, const char *alg)
{
    eid_provider_t *pv = login_pv("token_auth", "private_key_jwt", "private_key_file", pem,
                                  "private_key_kid", "client-key-1", NULL);
    eid_oidc_login_t out;
    apr_table_t *t;
    const char *a, *d1, *d2;
    json_t *h, *c;
    size_t n;
    unsigned char *raw;

    token_answer(sign(op_key, HDR, claims(NULL)));
    accepted(pv, 0, &out);
    assert_string_equal(last_auth, "");
    t = params(last_body);
    assert_string_equal(apr_table_get(t, "client_id"), CID);
    assert_null(apr_table_get(t, "client_secret"));
    assert_string_equal(apr_table_get(t, "client_assertion_type"),
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    a = apr_table_get(t, "client_assertion");
    assert_non_null(a);
    d1 = strchr(a, '.');
    d2 = strrchr(a, '.');
    raw = unb64u(a, (size_t)(d1 - a), &n);
    h = json_loadb((const char *)raw, n, 0, NULL);
    raw = unb64u(d1 + 1, (size_t)(d2 - d1 - 1), &n);
    c = json_loadb((const char *)raw, n, 0, NULL);
    assert_non_null(h);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), alg);
    assert_string_equal(json_string_value(json_object_get(h, "kid")), "client-key-1");
    assert_string_equal(json_string_value(json_object_get(c, "iss")), CID);
    assert_string_equal(json_string_value(json_object_get(c, "sub")), CID);
    assert_string_equal(json_string_value(json_object_get(c, "aud")), url("/token"));
    assert_int_equal(strlen(json_string_value(json_object_get(c, "jti"))), 43);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), NOW_S);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW_S + 60);
    assert_true(jws_ok(k, a));
    if (k == client_rsa) /* and not with another key */
        assert_false(jws_ok(op_key, a));
    json_decref(h);
    json_decref(c);
}

static void test_redeem_private_key_jwt(void **state)
{
    assertion_case(rsa_pem, client_rsa, "RS256");
    assertion_case(ec_pem, client_ec, "ES256");
}

/* ---- the ID token rules, one refusal each ---------------------------------------------- */

static void idt_refused(eid_provider_t *pv, int min_loa, const char *hdr, const char *cl,
                       EVP_PKEY *k, const char *tag, eid_class_e cls)
{
    token_answer(sign(k ? k : op_key, hdr ? hdr : HDR, cl));
    refused(pv, min_loa, tag, cls);
}

static void test_id_token_rules(void **state)
{
    eid_provider_t *pv = login_pv("claims", "oidc-sweden", "max_age", "600", NULL);
    eid_provider_t *plain = login_pv(NULL);
    const eid_class_e I = EID_CLASS_INVALID, F = EID_CLASS_FORBIDDEN;
    const char *at = "\"auth_time\":1699999900";
    eid_oidc_login_t out;

    /* the happy path with max_age and a level */
    token_answer(sign(op_key, HDR, claims(apr_pstrcat(pool, at, ",\"acr\":\"" EL "loa3\"",
                                                      NULL))));
    assert_int_equal(accepted(pv, 3, &out)->loa, 3);

    idt_refused(plain, 0, NULL, claims(NULL), evil_key, "EID03205", I); /* bad signature */
    idt_refused(plain, 0, NULL, apr_psprintf(pool, "{\"iss\":\"https://evil\",\"aud\":\"%s\","
                "\"sub\":\"u\",\"exp\":%ld,\"iat\":%ld,\"nonce\":\"%s\"}", CID, NOW_S + 300,
                NOW_S, NONCE), NULL, "EID03302", I);
    idt_refused(plain, 0, NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"other\","
                "\"sub\":\"u\",\"exp\":%ld,\"iat\":%ld,\"nonce\":\"%s\"}", ISS, NOW_S + 300,
                NOW_S, NONCE), NULL, "EID03305", I);
    idt_refused(plain, 0, NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":[\"%s\",\"x\"],"
                "\"sub\":\"u\",\"exp\":%ld,\"iat\":%ld,\"nonce\":\"%s\"}", ISS, CID,
                NOW_S + 300, NOW_S, NONCE), NULL, "EID07304", I);
    idt_refused(plain, 0, NULL, claims("\"azp\":\"other\""), NULL, "EID07305", I);
    idt_refused(plain, 0, NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\","
                "\"sub\":\"u\",\"exp\":%ld,\"iat\":%ld,\"nonce\":\"%sX\"}", ISS, CID,
                NOW_S + 300, NOW_S, NONCE), NULL, "EID07306", I);
    idt_refused(plain, 0, NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\","
                "\"sub\":\"u\",\"exp\":%ld,\"iat\":%ld}", ISS, CID, NOW_S + 300, NOW_S), NULL,
                "EID07306", I);
    idt_refused(plain, 0, NULL, claims(apr_psprintf(pool, "\"at_hash\":\"%s\"",
                half_hash("another token"))), NULL, "EID07307", I);
    idt_refused(plain, 0, NULL, claims(apr_psprintf(pool, "\"c_hash\":\"%s\"",
                half_hash("another code"))), NULL, "EID07308", I);
    idt_refused(plain, 0, NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\","
                "\"sub\":\"u\",\"exp\":%ld,\"iat\":%ld,\"nonce\":\"%s\"}", ISS, CID,
                NOW_S - 61, NOW_S - 600, NONCE), NULL, "EID03309", I);
    idt_refused(plain, 0, NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\","
                "\"exp\":%ld,\"iat\":%ld,\"nonce\":\"%s\"}", ISS, CID, NOW_S + 300, NOW_S,
                NONCE), NULL, "EID07302", I);
    idt_refused(plain, 0, NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\","
                "\"sub\":\"u\",\"exp\":%ld,\"nonce\":\"%s\"}", ISS, CID, NOW_S + 300, NONCE),
                NULL, "EID07302", I);
    /* an access token is not an ID token */
    idt_refused(plain, 0, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}", claims(NULL),
                NULL, "EID07301", I);
    /* max_age: auth_time required, and recent enough */
    idt_refused(pv, 0, NULL, claims(NULL), NULL, "EID07309", I);
    idt_refused(pv, 0, NULL, claims("\"auth_time\":1699999300"), NULL, "EID07310", I);
    idt_refused(pv, 0, NULL, claims("\"auth_time\":\"1699999900\""), NULL, "EID07314", I);
    /* the level: missing or too low is FORBIDDEN */
    idt_refused(pv, 3, NULL, claims(at), NULL, "EID07311", F);
    idt_refused(pv, 3, NULL, claims(apr_pstrcat(pool, at, ",\"acr\":\"" EL "loa2\"", NULL)),
                NULL, "EID07312", F);
    idt_refused(pv, 3, NULL, claims(apr_pstrcat(pool, at, ",\"acr\":\"http://id.swedenconnect"
                ".se/loa/1.0/uncertified-loa3\"", NULL)), NULL, "EID07312", F);
    /* a token without typ is an ID token too */
    token_answer(sign(op_key, "{\"alg\":\"RS256\",\"kid\":\"k1\"}", claims(NULL)));
    accepted(plain, 0, &out);
}

/* ---- the token endpoint's answer ------------------------------------------------------- */

static void test_token_endpoint(void **state)
{
    eid_provider_t *pv = login_pv(NULL);
    eid_provider_t *small = login_pv("fetch_max_bytes", "1024", "fetch_timeout", "1", NULL);
    const eid_class_e I = EID_CLASS_INVALID, U = EID_CLASS_UNAVAILABLE;
    const char *idt = sign(op_key, HDR, claims(NULL));
    eid_oidc_login_t out;
    char *big;

    route("/token", 500, "{\"error\":\"server_error\"}");
    refused(pv, 0, "EID07201", U);
    route("/token", 503, "");
    refused(pv, 0, "EID07201", U);
    route("/token", 400, "{\"error\":\"invalid_grant\"}");
    refused(pv, 0, "EID07202", I);
    route("/token", 200, "{\"access_token\":\"x\",");
    refused(pv, 0, "EID07203", U);
    route("/token", 200, "[1,2]");
    refused(pv, 0, "EID07203", U);
    route("/token", 200, apr_psprintf(pool, "{\"access_token\":\"%s\",\"token_type\":\"mac\","
                                      "\"id_token\":\"%s\"}", AT, idt));
    refused(pv, 0, "EID07204", I);
    route("/token", 200, apr_psprintf(pool, "{\"access_token\":\"%s\",\"token_type\":"
                                      "\"Bearer\"}", AT));
    refused(pv, 0, "EID07205", I);
    route("/token", 200, apr_psprintf(pool, "{\"token_type\":\"Bearer\",\"id_token\":\"%s\"}",
                                      idt));
    refused(pv, 0, "EID07206", I);
    route("/token", 200, apr_psprintf(pool, "{\"access_token\":\"a\\r\\nX: y\","
                                      "\"token_type\":\"Bearer\",\"id_token\":\"%s\"}", idt));
    refused(pv, 0, "EID07206", I);
    /* the type is case-insensitive */
    route("/token", 200, apr_psprintf(pool, "{\"access_token\":\"%s\",\"token_type\":"
                                      "\"bEaReR\",\"id_token\":\"%s\"}", AT, idt));
    accepted(pv, 0, &out);
    /* oversized and slow answers */
    big = apr_palloc(pool, 3000);
    memset(big, ' ', 2999);
    big[0] = '{';
    big[2997] = '}';
    big[2998] = '\0';
    route("/token", 200, big);
    refused(small, 0, "EID03604", U);
    token_answer(idt);
    routes[0].delay_ms = 1500;
    assert_string_equal(routes[0].path, "/token");
    refused(small, 0, "EID03603", U);
    routes[0].delay_ms = 0;
    /* nobody listening */
    {
        eid_provider_t *down = provider_v((const char *[]){"issuer", ISS, "jwks_file",
            jwks_path, "login", "on", "client_id", CID, "client_secret_file", secret_path,
            "authorization_endpoint", "https://op/a", "token_endpoint",
            "http://127.0.0.1:1/token", NULL});
        refused(down, 0, "EID03602", U);
    }
}

/* ---- userinfo --------------------------------------------------------------------------- */

static void test_userinfo(void **state)
{
    eid_provider_t *pv = login_pv("userinfo", "on", NULL);
    eid_oidc_login_t out;
    eid_identity_t *id;

    token_answer(sign(op_key, HDR, claims(NULL)));
    route("/userinfo", 200, "{\"sub\":\"user-1\",\"email\":\"other@b.se\",\"given_name\":"
          "\"Anna\",\"acr\":\"" EL "loa4\",\"iss\":\"https://evil\"}");
    id = accepted(pv, 0, &out);
    assert_string_equal(last_auth, "Bearer " AT);
    assert_string_equal(id->given_name, "Anna");   /* added by userinfo */
    assert_string_equal(id->email, "a@b.se");      /* the ID token's claim wins */
    assert_int_equal(id->loa, 0);                  /* an unsigned acr is not taken */
    assert_null(id->loa_uri);
    assert_string_equal(id->issuer, ISS);

    route("/userinfo", 200, "{\"sub\":\"user-2\",\"email\":\"x@y.se\"}");
    refused(pv, 0, "EID07404", EID_CLASS_INVALID);
    route("/userinfo", 200, "{\"email\":\"x@y.se\"}");
    refused(pv, 0, "EID07404", EID_CLASS_INVALID);
    route("/userinfo", 401, "");
    refused(pv, 0, "EID07405", EID_CLASS_INVALID);
    route("/userinfo", 502, "");
    refused(pv, 0, "EID07401", EID_CLASS_UNAVAILABLE);
    route("/userinfo", 200, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    refused(pv, 0, "EID07402", EID_CLASS_UNAVAILABLE);
}

/* A signed userinfo answer (Core 5.3.2): `extra` after sub; iss and aud as given
 * (NULL: left out). */
static char *ui_claims(const char *iss, const char *aud, const char *sub, const char *extra)
{
    return apr_psprintf(pool, "{%s%s%s%s%s\"sub\":\"%s\",\"given_name\":\"Anna\","
                        "\"acr\":\"" EL "loa4\"%s%s}", iss ? "\"iss\":\"" : "", iss ? iss : "",
                        iss ? "\"," : "", aud ? aud : "", aud ? "," : "", sub,
                        extra ? "," : "", extra ? extra : "");
}

static void signed_ui(EVP_PKEY *k, const char *hdr, const char *claims_json, const char *ct)
{
    route_ct("/userinfo", 200, sign(k, hdr, claims_json), ct);
}

static void test_userinfo_signed(void **state)
{
    eid_provider_t *pv = login_pv("userinfo", "on", NULL);
    const char *aud = "\"aud\":\"" CID "\"", *jwt = "application/jwt";
    const char *jwe;
    eid_oidc_login_t out;
    eid_identity_t *id;
    eid_result_t res = {0};

    token_answer(sign(op_key, HDR, claims(NULL)));
    /* verified with the provider's keys; protocol claims dropped as for JSON */
    signed_ui(op_key, HDR, ui_claims(ISS, aud, "user-1", NULL), jwt);
    id = accepted(pv, 0, &out);
    assert_string_equal(id->given_name, "Anna");
    assert_int_equal(id->loa, 0);                  /* the answer's acr is not the login's */
    assert_string_equal(id->issuer, ISS);
    /* media type parameters, aud as an array, no typ, a trailing newline */
    route_ct("/userinfo", 200, apr_pstrcat(pool, sign(op_key, "{\"alg\":\"RS256\",\"kid\":"
             "\"k1\"}", ui_claims(ISS, "\"aud\":[\"other\",\"" CID "\"]", "user-1", NULL)),
             "\r\n", NULL), "Application/JWT; charset=utf-8");
    assert_string_equal(accepted(pv, 0, &out)->given_name, "Anna");

    /* refused: the signature, the header rules, iss, aud, the time claims */
    signed_ui(evil_key, HDR, ui_claims(ISS, aud, "user-1", NULL), jwt);
    refused(pv, 0, "EID07407", EID_CLASS_INVALID);
    assert_int_not_equal(redeem(pv, 0, &out, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID07407");
    assert_non_null(strstr(res.reason, "EID03205"));   /* the verifier's tag is kept */
    signed_ui(op_key, "{\"alg\":\"PS256\",\"kid\":\"k1\"}", ui_claims(ISS, aud, "user-1", NULL),
              jwt);                                     /* algs= is RS256 only */
    refused(pv, 0, "EID07407", EID_CLASS_INVALID);
    signed_ui(op_key, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}",
              ui_claims(ISS, aud, "user-1", NULL), jwt);
    refused(pv, 0, "EID07407", EID_CLASS_INVALID);
    route_ct("/userinfo", 200, apr_pstrcat(pool, b64u((const unsigned char *)
             "{\"alg\":\"none\"}", 15), ".", b64u((const unsigned char *)"{\"sub\":\"user-1\"}",
             16), ".", NULL), jwt);
    refused(pv, 0, "EID07407", EID_CLASS_INVALID);
    route_ct("/userinfo", 200, "not a token", jwt);
    refused(pv, 0, "EID07407", EID_CLASS_INVALID);
    signed_ui(op_key, HDR, ui_claims("https://evil", aud, "user-1", NULL), jwt);
    refused(pv, 0, "EID07407", EID_CLASS_INVALID);
    signed_ui(op_key, HDR, ui_claims(ISS, "\"aud\":\"other\"", "user-1", NULL), jwt);
    refused(pv, 0, "EID07407", EID_CLASS_INVALID);
    signed_ui(op_key, HDR, ui_claims(ISS, aud, "user-1", apr_psprintf(pool, "\"exp\":%ld",
              NOW_S - 3600)), jwt);
    refused(pv, 0, "EID07407", EID_CLASS_INVALID);
    /* iss and aud are only SHOULD in 5.3.2: required here */
    signed_ui(op_key, HDR, ui_claims(NULL, aud, "user-1", NULL), jwt);
    refused(pv, 0, "EID07408", EID_CLASS_INVALID);
    signed_ui(op_key, HDR, ui_claims(ISS, NULL, "user-1", NULL), jwt);
    refused(pv, 0, "EID07408", EID_CLASS_INVALID);
    /* a valid signature over another user's answer */
    signed_ui(op_key, HDR, ui_claims(ISS, aud, "user-2", NULL), jwt);
    refused(pv, 0, "EID07404", EID_CLASS_INVALID);
    /* encrypted (JWE, five parts): no decryption key here */
    jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn";
    route_ct("/userinfo", 200, jwe, jwt);
    refused(pv, 0, "EID07403", EID_CLASS_MISCONFIGURED);
    /* the JSON media type still means JSON, whatever the body looks like */
    route("/userinfo", 200, sign(op_key, HDR, ui_claims(ISS, aud, "user-1", NULL)));
    refused(pv, 0, "EID07402", EID_CLASS_UNAVAILABLE);
}

/* Attacks on the signed answer (review of 2026-12-05): a JWS of the provider
 * made for another purpose, protocol claims in a signed answer, shapes that
 * are no compact JWS, sizes, media types. */
static void test_userinfo_signed_attacks(void **state)
{
    eid_provider_t *pv = login_pv("userinfo", "on", "claims", "oidc-sweden", NULL);
    eid_provider_t *small = login_pv("userinfo", "on", "max_token_size", "1024", NULL);
    const char *aud = "\"aud\":\"" CID "\"", *jwt = "application/jwt", *t;
    eid_oidc_login_t out;
    eid_identity_t *id;
    char *big, *mid;
    size_t n;

    token_answer(sign(op_key, HDR, claims("\"auth_time\":1699999900,\"acr\":\"" EL "loa2\"")));
    /* a logout token or an access token signed with the right key: never an answer */
    signed_ui(op_key, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"logout+jwt\"}",
              ui_claims(ISS, aud, "user-1", "\"events\":{\"http://schemas.openid.net/event/"
                        "backchannel-logout\":{}}"), jwt);
    refused(pv, 2, "EID07407", EID_CLASS_INVALID);
    signed_ui(op_key, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"application/at+jwt\"}",
              ui_claims(ISS, aud, "user-1", NULL), jwt);
    refused(pv, 2, "EID07407", EID_CLASS_INVALID);
    /* a signed answer with acr loa4, auth_time, nonce, sid, amr: the login keeps the
     * ID token's level, time and sid (min_loa 3 is still refused) */
    signed_ui(op_key, HDR, ui_claims(ISS, aud, "user-1", "\"auth_time\":1700000000,\"nonce\""
              ":\"" NONCE "\",\"sid\":\"sid-evil\",\"amr\":[\"hwk\"]"), jwt);
    id = accepted(pv, 2, &out);
    assert_int_equal(id->loa, 2);
    assert_int_equal(id->auth_time, apr_time_from_sec(1699999900));
    assert_string_equal(out.sid, "sid-1");
    assert_string_equal(id->given_name, "Anna");
    refused(pv, 3, "EID07312", EID_CLASS_FORBIDDEN);
    /* nested: a JWS whose payload is a signed JWT (cty JWT) */
    t = sign(op_key, HDR, ui_claims(ISS, aud, "user-1", NULL));
    route_ct("/userinfo", 200, sign(op_key, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"cty\":\"JWT\"}",
             apr_psprintf(pool, "\"%s\"", t)), jwt);
    refused(pv, 2, "EID07407", EID_CLASS_INVALID);
    /* white space inside the token (a line break in the middle) */
    mid = apr_pstrdup(pool, t);
    n = strlen(mid) / 2;
    route_ct("/userinfo", 200, apr_pstrcat(pool, apr_pstrndup(pool, mid, n), "\r\n", mid + n,
             NULL), jwt);
    refused(pv, 2, "EID07407", EID_CLASS_INVALID);
    /* larger than max_token_size (white space padding is trimmed, the token is not) */
    big = apr_palloc(pool, 2100);
    memset(big, 'A', 2099);
    big[2099] = '\0';
    route_ct("/userinfo", 200, apr_pstrcat(pool, t, big, NULL), jwt);
    refused(small, 0, "EID07407", EID_CLASS_INVALID);
    /* four dots but no JWE: refused all the same */
    route_ct("/userinfo", 200, "a.b.c.d.e", jwt);
    refused(pv, 2, "EID07403", EID_CLASS_MISCONFIGURED);
    /* media types: application/jwt only with its parameters; look-alikes are JSON */
    route_ct("/userinfo", 200, t, "application/jwtx");
    refused(pv, 2, "EID07402", EID_CLASS_UNAVAILABLE);
    route_ct("/userinfo", 200, t, "application/jwt+json");
    refused(pv, 2, "EID07402", EID_CLASS_UNAVAILABLE);
    route_ct("/userinfo", 200, t, "APPLICATION/JWT;charset=utf-8");
    assert_int_equal(accepted(pv, 2, &out)->loa, 2);
    /* a JSON body under application/jwt is no token */
    route_ct("/userinfo", 200, "{\"sub\":\"user-1\"}", jwt);
    refused(pv, 2, "EID07407", EID_CLASS_INVALID);
}

/* ---- the caller's mistakes ------------------------------------------------------------- */

static void test_bad_input(void **state)
{
    eid_provider_t *pv = login_pv(NULL);
    eid_provider_t *bearer_only = provider_v((const char *[]){"issuer", ISS, "jwks_file",
                                             jwks_path, "audience", "a", NULL});
    eid_pending_t pd = {"op1", "s", NONCE, VERIFIER, "/", 0, 0};
    eid_oidc_login_t out;
    eid_oidc_authreq_t a;
    eid_result_t res = {0};

    assert_int_not_equal(eid_oidc_redeem(pool, pv, REDIR, "", &pd, now, &out, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID07208");
    assert_int_not_equal(eid_oidc_redeem(pool, pv, REDIR, "a b\r\n", &pd, now, &out, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID07208");
    pd.nonce = NULL;
    assert_int_not_equal(eid_oidc_redeem(pool, pv, REDIR, CODE, &pd, now, &out, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID07209");
    assert_false(eid_oidc_enabled(bearer_only));
    assert_int_not_equal(eid_oidc_redeem(pool, bearer_only, REDIR, CODE, &pd, now, &out, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID07004");
    assert_int_equal(res.cls, EID_CLASS_MISCONFIGURED);
    assert_int_not_equal(eid_oidc_auth_request(pool, bearer_only, REDIR, 0, NULL, 0, now, &a,
                                               &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID07004");
    assert_int_not_equal(eid_oidc_auth_request(pool, pv, NULL, 0, NULL, 0, now, &a, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID07103");
    /* no end_session_endpoint: no URL */
    assert_null(eid_oidc_end_session_url(pool, pv, "idt", REDIR, "st"));
}

/* ---- classes -------------------------------------------------------------------------- */

/* Every EID07 row of docs/errors.md states its class in words; the class
 * table of eid_result.c must agree (a forgotten entry would turn an
 * unavailable provider into a refused login, or a too-low level into 401). */
static void test_classes_match_docs(void **state)
{
    FILE *f = fopen("docs/errors.md", "r");
    char line[2048];
    int rows = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char tag[9];
        eid_class_e want = EID_CLASS_INVALID;
        if (strncmp(line, "| EID07", 7))
            continue;
        memcpy(tag, line + 2, 8);
        tag[8] = '\0';
        if (strstr(line, "unavailable (503)"))
            want = EID_CLASS_UNAVAILABLE;
        else if (strstr(line, "misconfigured (500)"))
            want = EID_CLASS_MISCONFIGURED;
        else if (strstr(line, "forbidden (403)"))
            want = EID_CLASS_FORBIDDEN;
        if (eid_result_class(tag) != want)
            fail_msg("%s: docs say class %d, eid_result.c %d", tag, want,
                     eid_result_class(tag));
        rows++;
    }
    fclose(f);
    assert_true(rows >= 40);
}

/* ---- threads ---------------------------------------------------------------------- */

#define NTHREADS 4
static eid_provider_t *shared_pv;
static int thread_ok[NTHREADS];

static void *APR_THREAD_FUNC redeemer(apr_thread_t *th, void *data)
{
    int i = (int)(intptr_t)data, k, ok = 0;
    apr_pool_t *p;
    eid_pending_t pd = {"op1", "s", NONCE, VERIFIER, "/", 0, 0};
    apr_pool_create(&p, NULL);
    for (k = 0; k < 5; k++) {
        eid_oidc_login_t out;
        eid_result_t res = {0};
        ok += eid_oidc_redeem(p, shared_pv, REDIR, CODE, &pd, now, &out, &res) ==
                  APR_SUCCESS && !strcmp(out.sub, "user-1");
        apr_pool_clear(p);
    }
    thread_ok[i] = ok;
    apr_pool_destroy(p);
    apr_thread_exit(th, APR_SUCCESS);
    return NULL;
}

/* One provider, several threads redeeming at once (private_key_jwt: a
 * cjose key per assertion; the key set read by all): every login passes. */
static void test_threads(void **state)
{
    apr_thread_t *t[NTHREADS];
    apr_status_t rv;
    int i;

    shared_pv = login_pv("token_auth", "private_key_jwt", "private_key_file", ec_pem, NULL);
    token_answer(sign(op_key, HDR, claims(NULL)));
    for (i = 0; i < NTHREADS; i++)
        apr_thread_create(&t[i], NULL, redeemer, (void *)(intptr_t)i, pool);
    for (i = 0; i < NTHREADS; i++)
        apr_thread_join(&rv, t[i]);
    for (i = 0; i < NTHREADS; i++)
        assert_int_equal(thread_ok[i], 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_auth_request),
        cmocka_unit_test(test_acr_values),
        cmocka_unit_test(test_redeem_basic),
        cmocka_unit_test(test_redeem_post),
        cmocka_unit_test(test_redeem_private_key_jwt),
        cmocka_unit_test(test_id_token_rules),
        cmocka_unit_test(test_token_endpoint),
        cmocka_unit_test(test_userinfo),
        cmocka_unit_test(test_userinfo_signed),
        cmocka_unit_test(test_userinfo_signed_attacks),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_classes_match_docs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
