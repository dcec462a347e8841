/*
 * eid_oidc.c - the authorization request and the code exchange of an
 * OpenID Connect login (authorization code flow, PKCE S256), with the
 * three client authentications of the token endpoint.
 */
#include "eid/eid_oidc.h"
#include "eid/eid_claims.h"
#include "eid/eid_util.h"
#include "eid_oidc_int.h"

#include <apr_strings.h>
#include <cjose/cjose.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_CODE_LEN 2048      /* an authorization code longer than this is refused */
#define MAX_HINT_LEN 256       /* a longer login_hint is not sent */
#define ASSERTION_LIFETIME 60  /* seconds a client assertion is valid */

/* ---- helpers ---------------------------------------------------------------------- */

static apr_status_t json_release(void *data)
{
    json_decref(data);
    return APR_SUCCESS;
}

void eid_oidc_keep(apr_pool_t *p, json_t *j)
{
    if (j)
        apr_pool_cleanup_register(p, j, json_release, apr_pool_cleanup_null);
}

json_t *eid_oidc_json(apr_pool_t *p, const char *s, apr_size_t len)
{
    int dup;
    json_t *j = s ? eid_jwt_json_object(s, len, &dup) : NULL;
    eid_oidc_keep(p, j);
    return j;
}

int eid_oidc_printable(const char *s, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' ||
            s[i] == '\\')
            return 0;
    return len > 0;
}

/* base64url of 32 random bytes (43 characters), in `p`; NULL when the
 * generator fails. */
static const char *random43(apr_pool_t *p)
{
    unsigned char b[32];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return NULL;
    return eid_b64url_pencode(p, b, sizeof(b));
}

/* ---- the authorization request ------------------------------------------------------ */

apr_status_t eid_oidc_auth_request(apr_pool_t *p, eid_provider_t *pv, const char *redirect_uri,
                                   int min_loa, const char *login_hint, int prompt_login,
                                   apr_time_t now, eid_oidc_authreq_t *out, eid_result_t *res)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    apr_array_header_t *acr;
    const char *authz = NULL, *acr_values = NULL, *challenge, *prompt;
    char *url;
    int first, i;

    (void)now;
    memset(out, 0, sizeof(*out));
    if (!eid_oidc_enabled(pv)) {
        eid_fail(res, "EID07004", "the provider is not a login provider (login=on)");
        return APR_EINVAL;
    }
    if (!redirect_uri || !*redirect_uri) {
        eid_fail(res, "EID07103", "no redirect URI for the login");
        return APR_EINVAL;
    }
    acr = eid_claims_acr_uris(pv->map, p, min_loa);
    /* Why refused rather than asked without acr_values: the answer could
     * never pass the level check, and the user would log in for nothing. */
    if (min_loa > 0 && !acr->nelts) {
        eid_result_set(res, p, 7102, "EID07102", "provider %s knows no acr value for level "
                       "%d (add acr.<uri>=%d)", pv->name, min_loa, min_loa);
        return APR_EINVAL;
    }
    for (i = 0; i < acr->nelts; i++)
        acr_values = acr_values ? apr_pstrcat(p, acr_values, " ",
                                              APR_ARRAY_IDX(acr, i, const char *), NULL)
                                : APR_ARRAY_IDX(acr, i, const char *);
    if (eid_oidc_endpoints(p, pv, &authz, NULL, NULL, NULL, res) != APR_SUCCESS)
        return APR_EGENERAL;
    out->state = random43(p);
    out->nonce = random43(p);
    out->code_verifier = random43(p);
    if (!out->state || !out->nonce || !out->code_verifier) {
        eid_fail(res, "EID07101", "the random generator failed");
        return APR_EGENERAL;
    }
    /* RFC 7636 4.2: S256 = BASE64URL(SHA256(ASCII(code_verifier))). */
    SHA256((const unsigned char *)out->code_verifier, EID_OIDC_RANDOM_LEN, h);
    challenge = eid_b64url_pencode(p, h, sizeof(h));
    prompt = prompt_login ? "login" : pv->login.prompt;
    if (login_hint && (strlen(login_hint) > MAX_HINT_LEN ||
                       eid_utf8_check((const unsigned char *)login_hint, strlen(login_hint),
                                      EID_UTF8_NO_CONTROLS) != EID_UTF8_OK))
        login_hint = NULL; /* only a hint: left out rather than sent mangled */

    url = eid_oidc_url_start(p, authz, &first);
    eid_oidc_url_param(p, &url, &first, "response_type", "code");
    eid_oidc_url_param(p, &url, &first, "client_id", pv->client_id);
    eid_oidc_url_param(p, &url, &first, "redirect_uri", redirect_uri);
    eid_oidc_url_param(p, &url, &first, "scope", pv->login.scope);
    eid_oidc_url_param(p, &url, &first, "state", out->state);
    eid_oidc_url_param(p, &url, &first, "nonce", out->nonce);
    eid_oidc_url_param(p, &url, &first, "code_challenge", challenge);
    eid_oidc_url_param(p, &url, &first, "code_challenge_method", "S256");
    eid_oidc_url_param(p, &url, &first, "acr_values", acr_values);
    eid_oidc_url_param(p, &url, &first, "prompt", prompt);
    if (pv->login.max_age >= 0)
        eid_oidc_url_param(p, &url, &first, "max_age",
                           apr_psprintf(p, "%" APR_INT64_T_FMT, pv->login.max_age));
    eid_oidc_url_param(p, &url, &first, "login_hint", login_hint);
    out->url = url;
    return APR_SUCCESS;
}

/* ---- client authentication -------------------------------------------------------- */

static void clear_free(void *b, size_t n)
{
    OPENSSL_clear_free(b, n);
}

/* A BIGNUM parameter of `k` as big-endian bytes (malloc'd, *n long). */
static uint8_t *bn_param(EVP_PKEY *k, const char *name, size_t *n)
{
    BIGNUM *bn = NULL;
    uint8_t *b;
    if (!EVP_PKEY_get_bn_param(k, name, &bn))
        return NULL;
    *n = (size_t)BN_num_bytes(bn);
    if ((b = OPENSSL_malloc(*n ? *n : 1)) != NULL)
        BN_bn2bin(bn, b);
    BN_clear_free(bn);
    return b;
}

/* A cjose key for the client's private key, made per call (cjose keys have
 * non-atomic reference counts: none is shared between threads). */
static cjose_jwk_t *client_jwk(EVP_PKEY *k, const char **alg)
{
    cjose_jwk_t *jwk = NULL;
    cjose_err err;

    if (EVP_PKEY_base_id(k) == EVP_PKEY_RSA) {
        static const char *const names[8] = {
            OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_D,
            OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
            OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
            OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
        uint8_t *b[8];
        size_t n[8];
        int i, ok = 1;
        cjose_jwk_rsa_keyspec s;
        for (i = 0; i < 8; i++)
            ok &= (b[i] = bn_param(k, names[i], &n[i])) != NULL;
        if (ok) {
            s.e = b[0], s.elen = n[0], s.n = b[1], s.nlen = n[1], s.d = b[2], s.dlen = n[2];
            s.p = b[3], s.plen = n[3], s.q = b[4], s.qlen = n[4], s.dp = b[5], s.dplen = n[5];
            s.dq = b[6], s.dqlen = n[6], s.qi = b[7], s.qilen = n[7];
            jwk = cjose_jwk_create_RSA_spec(&s, &err);
        }
        for (i = 0; i < 8; i++)
            if (b[i])
                clear_free(b[i], n[i]);
        *alg = "RS256";
    }
    else {
        char crv[64];
        size_t crvlen = 0, dl = 0, xl = 0, yl = 0;
        cjose_jwk_ec_keyspec s;
        uint8_t *d = bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &dl);
        uint8_t *x = bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &xl);
        uint8_t *y = bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &yl);
        memset(&s, 0, sizeof(s));
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, crv, sizeof(crv),
                                       &crvlen);
        if (!strcmp(crv, "prime256v1"))
            s.crv = CJOSE_JWK_EC_P_256, *alg = "ES256";
        else if (!strcmp(crv, "secp384r1"))
            s.crv = CJOSE_JWK_EC_P_384, *alg = "ES384";
        else
            s.crv = CJOSE_JWK_EC_P_521, *alg = "ES512";
        if (d && x && y) {
            s.d = d, s.dlen = dl, s.x = x, s.xlen = xl, s.y = y, s.ylen = yl;
            jwk = cjose_jwk_create_EC_spec(&s, &err);
        }
        if (d)
            clear_free(d, dl);
        OPENSSL_free(x);
        OPENSSL_free(y);
    }
    return jwk;
}

/* RFC 7523 2.2 / OpenID Connect Core 9: a JWT signed with the client's key,
 * iss = sub = client_id, aud = the token endpoint, a random jti, a short
 * exp.  NULL when it cannot be made. */
static const char *client_assertion(apr_pool_t *p, eid_provider_t *pv, const char *token_url,
                                    apr_time_t now)
{
    const char *alg = NULL, *ser = NULL, *jti = random43(p), *out = NULL;
    cjose_jwk_t *jwk = client_jwk(pv->login.key, &alg);
    cjose_header_t *hdr = cjose_header_new(NULL);
    cjose_jws_t *jws = NULL;
    json_t *c = NULL;
    char *payload = NULL;
    apr_int64_t t = apr_time_sec(now);

    if (jwk && hdr && jti && cjose_header_set(hdr, CJOSE_HDR_ALG, alg, NULL) &&
        cjose_header_set(hdr, "typ", "JWT", NULL) &&
        (!pv->login.key_kid || cjose_header_set(hdr, CJOSE_HDR_KID, pv->login.key_kid, NULL)) &&
        (c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", pv->client_id, "sub",
                       pv->client_id, "aud", token_url, "jti", jti, "iat", (json_int_t)t,
                       "exp", (json_int_t)(t + ASSERTION_LIFETIME))) != NULL &&
        (payload = json_dumps(c, JSON_COMPACT)) != NULL &&
        (jws = cjose_jws_sign(jwk, hdr, (const uint8_t *)payload, strlen(payload), NULL)) &&
        cjose_jws_export(jws, &ser, NULL))
        out = apr_pstrdup(p, ser);
    if (jws)
        cjose_jws_release(jws);
    free(payload);
    json_decref(c);
    if (hdr)
        cjose_header_release(hdr);
    if (jwk)
        cjose_jwk_release(jwk);
    return out;
}

/* ---- the code exchange ------------------------------------------------------------- */

static const char *enc(apr_pool_t *p, const char *s)
{
    return eid_http_form_encode(p, s, strlen(s));
}

/* The OP's `error` code for a log line, when it is a short plain word. */
static const char *op_error(json_t *doc)
{
    json_t *e = json_object_get(doc, "error");
    const char *s = json_is_string(e) ? json_string_value(e) : NULL;
    size_t i, n = s ? strlen(s) : 0;
    if (!n || n > 40)
        return "(none)";
    for (i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz_", s[i]))
            return "(not a plain word)";
    return s;
}

/* POST the code to the token endpoint; *doc is the answer's JSON object. */
static int token_call(apr_pool_t *p, eid_provider_t *pv, const char *token_url,
                      const char *redirect_uri, const char *code, const eid_pending_t *pd,
                      apr_time_t now, json_t **doc, eid_result_t *res)
{
    const char *user = NULL, *pass = NULL, *form;
    eid_http_resp_t r;

    form = apr_pstrcat(p, "grant_type=authorization_code&code=", enc(p, code),
                       "&redirect_uri=", enc(p, redirect_uri), "&code_verifier=",
                       enc(p, pd->code_verifier), NULL);
    switch (pv->login.auth) {
    case EID_OIDC_AUTH_BASIC:
        /* RFC 6749 2.3.1: the id and secret are form-encoded before they go
         * into the Basic header (a ':' in the id must not split it). */
        user = enc(p, pv->client_id);
        pass = enc(p, pv->client_secret);
        break;
    case EID_OIDC_AUTH_POST:
        form = apr_pstrcat(p, form, "&client_id=", enc(p, pv->client_id), "&client_secret=",
                           enc(p, pv->client_secret), NULL);
        break;
    case EID_OIDC_AUTH_PRIVATE_KEY: {
        const char *a = client_assertion(p, pv, token_url, now);
        if (!a)
            return eid_fail(res, "EID07207", "the client assertion could not be signed");
        form = apr_pstrcat(p, form, "&client_id=", enc(p, pv->client_id),
                           "&client_assertion_type="
                           "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
                           "&client_assertion=", enc(p, a), NULL);
        break;
    }
    }
    if (eid_http_post_form(p, token_url, &pv->http, form, strlen(form), user, pass, &r, res) !=
        APR_SUCCESS)
        return res && res->code ? res->code : eid_fail(res, "EID07201", "token endpoint failed");
    *doc = eid_oidc_json(p, r.body, r.len);
    /* RFC 6749 5.2: a refused grant is 400 (401 for a refused client). */
    if (r.status == 400 || r.status == 401)
        return eid_result_set(res, p, 7202, "EID07202", "token endpoint refused the code "
                              "(HTTP %ld, error %s)", r.status, op_error(*doc));
    if (r.status != 200)
        return eid_result_set(res, p, 7201, "EID07201", "token endpoint answered HTTP %ld",
                              r.status);
    if (!*doc)
        return eid_fail(res, "EID07203", "token endpoint's answer is not a JSON object");
    return 0;
}

static const char *member(json_t *doc, const char *name)
{
    json_t *v = json_object_get(doc, name);
    return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

static int redeem(apr_pool_t *p, eid_provider_t *pv, const char *redirect_uri,
                  const char *code, const eid_pending_t *pd, apr_time_t now,
                  eid_oidc_login_t *out, eid_result_t *res)
{
    const char *token_url = NULL, *userinfo_url = NULL, *at, *idt, *tt, *sub;
    json_t *doc = NULL, *claims, *ui = NULL, *sid;
    eid_jwt_t *jwt;
    apr_int64_t exp = 0;
    int rc;

    if (!eid_oidc_enabled(pv))
        return eid_fail(res, "EID07004", "the provider is not a login provider (login=on)");
    if (!code || !eid_oidc_printable(code, strlen(code)) || strlen(code) > MAX_CODE_LEN)
        return eid_fail(res, "EID07208", "the authorization code is missing or malformed");
    if (!pd || !pd->nonce || !pd->code_verifier || !redirect_uri)
        return eid_fail(res, "EID07209", "the pending login lacks its nonce or verifier");
    if (eid_oidc_endpoints(p, pv, NULL, &token_url, &userinfo_url, NULL, res) != APR_SUCCESS)
        return res->code;
    if ((rc = token_call(p, pv, token_url, redirect_uri, code, pd, now, &doc, res)) != 0)
        return rc;
    tt = member(doc, "token_type");
    /* RFC 6749 5.1 / 7.1: the type is case-insensitive; only Bearer is
     * understood (a DPoP or MAC token is not usable at userinfo). */
    if (!tt || strcasecmp(tt, "Bearer"))
        return eid_fail(res, "EID07204", "token_type is not Bearer");
    /* Printable only: it is hashed for at_hash and may go into a header. */
    if (!(at = member(doc, "access_token")) || !eid_oidc_printable(at, strlen(at)))
        return eid_fail(res, "EID07206", "the answer has no access_token, or one with spaces "
                        "or control characters");
    if (!(idt = member(doc, "id_token")))
        return eid_fail(res, "EID07205", "the answer has no id_token");
    if ((rc = eid_oidc_check_id_token(p, pv, idt, code, at, pd, now, &jwt, res)) != 0)
        return rc;
    sub = member(jwt->claims, "sub");
    claims = jwt->claims;
    if (pv->login.userinfo) {
        json_t *merged;
        if ((rc = eid_oidc_userinfo(p, pv, userinfo_url, at, sub, now, &ui, res)) != 0)
            return rc;
        /* The signed ID token's claims win; the protocol claims of the
         * answer are never taken (an unsigned acr must not raise a level). */
        merged = json_deep_copy(jwt->claims);
        eid_oidc_keep(p, merged);
        if (!merged || json_object_update_missing(merged, ui) != 0)
            return eid_fail(res, "EID07402", "the userinfo claims could not be merged");
        claims = merged;
    }
    if ((rc = eid_claims_to_identity(p, pv->map, claims, pv->name, &out->id, res)) != 0)
        return rc;
    sid = json_object_get(jwt->claims, "sid");
    if (sid && !json_is_string(sid))
        return eid_fail(res, "EID07315", "sid is not a string");
    eid_jwt_numeric_date(jwt->claims, "exp", &exp);
    out->id->method = EID_METHOD_OIDC;
    out->id->expires = apr_time_from_sec(exp);
    out->id_token = apr_pstrdup(p, idt);
    out->sid = sid ? apr_pstrdup(p, json_string_value(sid)) : NULL;
    out->sub = apr_pstrdup(p, sub);
    out->id_token_exp = apr_time_from_sec(exp);
    return 0;
}

apr_status_t eid_oidc_redeem(apr_pool_t *p, eid_provider_t *pv, const char *redirect_uri,
                             const char *code, const eid_pending_t *pd, apr_time_t now,
                             eid_oidc_login_t *out, eid_result_t *res)
{
    eid_result_t scratch = {0};
    int rc;

    memset(out, 0, sizeof(*out));
    if (!res)
        res = &scratch;
    *res = scratch;
    rc = redeem(p, pv, redirect_uri, code, pd, now, out, res);
    if (rc) {
        memset(out, 0, sizeof(*out));
        if (!res->code) /* never read a refusal as success */
            eid_fail(res, "EID07201", "the login could not be completed");
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}
