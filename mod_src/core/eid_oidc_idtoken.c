/*
 * eid_oidc_idtoken.c - the ID token of a code exchange (OpenID Connect Core
 * 1.0, 3.1.3.7) and the userinfo answer (5.3), plain JSON or signed (5.3.2).
 */
#include "eid/eid_claims.h"
#include "eid/eid_util.h"
#include "eid_oidc_int.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

static const char *str_claim(json_t *c, const char *name)
{
    json_t *v = json_object_get(c, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Equal strings, in time that depends on the lengths only. */
static int same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

/*
 * at_hash / c_hash (Core 3.1.3.6, 3.3.2.11): base64url of the left half of
 * the hash of the ASCII value, the hash being the one of the ID token's alg
 * (SHA-256 for RS256 / PS256 / ES256 ...).  1 when the claim matches.
 */
static int half_hash_ok(eid_jws_alg_e alg, const char *value, const char *claim)
{
    const EVP_MD *md;
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    char want[EVP_MAX_MD_SIZE * 2];
    size_t wl;

    switch (alg) {
    case EID_JWS_RS384: case EID_JWS_PS384: case EID_JWS_ES384: md = EVP_sha384(); break;
    case EID_JWS_RS512: case EID_JWS_PS512: case EID_JWS_ES512: md = EVP_sha512(); break;
    default: md = EVP_sha256();
    }
    if (!EVP_Digest(value, strlen(value), h, &hl, md, NULL))
        return 0;
    wl = eid_b64url_encode(want, h, hl / 2);
    return same(want, wl, claim, strlen(claim));
}

static int hash_claim(json_t *c, const char *name, eid_jws_alg_e alg, const char *value,
                      const char *tag, const char *why, eid_result_t *res)
{
    json_t *v = json_object_get(c, name);
    if (!v)
        return 0;
    if (!json_is_string(v) || !half_hash_ok(alg, value, json_string_value(v)))
        return eid_fail(res, tag, why);
    return 0;
}

/* azp (Core 2 and 3.1.3.7 items 4-5): when present it must be us; with
 * several audiences it must be present. */
static int azp_ok(json_t *c, const char *client_id, eid_result_t *res)
{
    json_t *aud = json_object_get(c, "aud"), *azp = json_object_get(c, "azp");
    if (!azp) {
        if (json_is_array(aud) && json_array_size(aud) > 1)
            return eid_fail(res, "EID07304", "several aud and no azp");
        return 0;
    }
    if (!json_is_string(azp) || strcmp(json_string_value(azp), client_id))
        return eid_fail(res, "EID07305", "azp is not this client");
    return 0;
}

/* auth_time: an integer when present; required with max_age, and not
 * older than max_age (plus leeway). */
static int auth_time_ok(eid_provider_t *pv, json_t *c, apr_time_t now, eid_result_t *res)
{
    apr_int64_t t = 0;
    int k = eid_jwt_numeric_date(c, "auth_time", &t);

    if (k < 0)
        return eid_fail(res, "EID07314", "auth_time is not a valid time");
    if (pv->login.max_age < 0)
        return 0;
    if (k == 0)
        return eid_fail(res, "EID07309", "auth_time missing although max_age was asked");
    if (t + pv->login.max_age + apr_time_sec(pv->leeway) < apr_time_sec(now))
        return eid_fail(res, "EID07310", "the login is older than max_age");
    return 0;
}

/* acr -> level, compared with the level the login asked for. */
static int level_ok(eid_provider_t *pv, json_t *c, int min_loa, eid_result_t *res)
{
    json_t *acr = json_object_get(c, "acr");
    if (acr && !json_is_string(acr))
        return eid_fail(res, "EID03412", "acr is not a string");
    if (min_loa <= 0)
        return 0;
    if (!acr)
        return eid_fail(res, "EID07311", "level too low: no acr although a level was asked");
    if (eid_claims_acr_loa(pv->map, json_string_value(acr)) < min_loa)
        return eid_fail(res, "EID07312", "level too low: the acr's level is below the one "
                        "asked for");
    return 0;
}

/*
 * What every JWS the login provider hands us goes through (the ID token, a
 * signed userinfo answer): the structure, a `typ` of JWT or none (anything
 * else - an access token's at+jwt, a logout token - fails with `typ_tag`),
 * `alg` within algs= (never none or HS*), the signature with the provider's
 * key set.  *r gets the provider's rules for eid_jwt_check_claims(): `iss`
 * the issuer, `aud` containing client_id.  Returns 0 with *out, or a code.
 */
static int provider_jws(apr_pool_t *p, eid_provider_t *pv, const char *tok, apr_size_t len,
                        apr_time_t now, const char *typ_tag, const char *typ_why,
                        eid_jwt_rules_t *r, eid_jwt_t **out, eid_result_t *res)
{
    static const char *const jwt_type[] = {"JWT"};
    eid_jwt_t *jwt;
    int rc;

    if ((rc = eid_jwt_parse(p, tok, len, pv->max_token_size, &jwt, res)) != 0)
        return rc;
    /* Why: an access token (typ at+jwt, RFC 9068) or a logout token signed
     * by the same keys is neither a login nor a userinfo answer; only JWT or
     * no typ is. */
    if (jwt->typ && strcasecmp(jwt->typ, "JWT"))
        return eid_fail(res, typ_tag, typ_why);
    *r = pv->rules;
    /* The provider lives as long as the configuration: its client_id
     * field can be the one-element audience list. */
    r->audiences = (const char *const *)&pv->client_id;
    r->naudiences = 1;
    r->types = jwt_type;
    r->ntypes = 1;
    r->typ_absent_ok = 1;
    if ((rc = eid_jwt_check_header(jwt, r, res)) != 0 ||
        (rc = eid_jwt_verify(jwt, pv->jwks, p, now, res)) != 0)
        return rc;
    *out = jwt;
    return 0;
}

int eid_oidc_check_id_token(apr_pool_t *p, eid_provider_t *pv, const char *idt,
                            const char *code, const char *access_token,
                            const eid_pending_t *pd, apr_time_t now, eid_jwt_t **out,
                            eid_result_t *res)
{
    eid_jwt_rules_t r;
    eid_jwt_t *jwt;
    json_t *c, *nonce;
    int rc;
    const char *miss = NULL;

    *out = NULL;
    if ((rc = provider_jws(p, pv, idt, strlen(idt), now, "EID07301",
                           "typ is not JWT: not an ID token", &r, &jwt, res)) != 0)
        return rc;
    c = jwt->claims;
    /* Core 2: iss, sub, aud, exp, iat are required in an ID token. */
    if (!json_is_string(json_object_get(c, "iss")))
        miss = "the ID token has no iss";
    else if (!json_object_get(c, "aud"))
        miss = "the ID token has no aud";
    else if (!str_claim(c, "sub") || !*str_claim(c, "sub"))
        miss = "the ID token has no sub";
    else if (!json_object_get(c, "exp"))
        miss = "the ID token has no exp";
    else if (!json_object_get(c, "iat"))
        miss = "the ID token has no iat";
    if (miss)
        return eid_fail(res, "EID07302", miss);
    /* iss exact, aud contains client_id, exp / nbf / iat (types, range,
     * leeway) - the rules the bearer path enforces. */
    if ((rc = eid_jwt_check_claims(c, &r, now, EID_JWT_INTROSPECTED, res)) != 0 ||
        (rc = azp_ok(c, pv->client_id, res)) != 0)
        return rc;
    nonce = json_object_get(c, "nonce");
    if (!json_is_string(nonce) ||
        !same(json_string_value(nonce), json_string_length(nonce), pd->nonce,
              strlen(pd->nonce)))
        return eid_fail(res, "EID07306", "nonce missing or not the one of this login");
    if ((rc = hash_claim(c, "at_hash", jwt->alg, access_token, "EID07307",
                         "at_hash does not match the access token", res)) != 0 ||
        (rc = hash_claim(c, "c_hash", jwt->alg, code, "EID07308",
                         "c_hash does not match the code", res)) != 0 ||
        (rc = auth_time_ok(pv, c, now, res)) != 0 ||
        (rc = level_ok(pv, c, pd->min_loa, res)) != 0)
        return rc;
    *out = jwt;
    return 0;
}

/* Claims the userinfo answer never contributes: they belong to the signed
 * ID token (an unsigned acr or auth_time must not change a login). */
static const char *const protocol_claims[] = {
    "iss", "aud", "exp", "iat", "nbf", "nonce", "acr", "amr", "auth_time", "azp",
    "at_hash", "c_hash", "s_hash", "sid", "jti", NULL};

/*
 * A signed userinfo answer (Core 5.3.2): verified as the ID token is
 * (provider_jws()), then iss and aud - only SHOULD in 5.3.2, required here:
 * without them a JWS of this provider meant for another client or purpose
 * could stand in for the answer.  exp / nbf / iat are checked when present.
 * A refusal of the token itself is EID07407 naming the verifier's tag; a key
 * set that cannot be had keeps its own tag (unavailable, not the answer's
 * fault).  Returns 0 with *claims (released with `p`), or a code.
 */
static int signed_userinfo(apr_pool_t *p, eid_provider_t *pv, const char *tok,
                           apr_size_t len, apr_time_t now, json_t **claims, eid_result_t *res)
{
    eid_jwt_rules_t r;
    eid_jwt_t *jwt = NULL;
    json_t *c;
    int rc;

    if ((rc = provider_jws(p, pv, tok, len, now, "EID03119", "typ is not JWT",
                           &r, &jwt, res)) == 0) {
        c = jwt->claims;
        if (!json_object_get(c, "iss") || !json_object_get(c, "aud"))
            return eid_fail(res, "EID07408", "the signed userinfo answer has no iss or no aud");
        rc = eid_jwt_check_claims(c, &r, now, EID_JWT_INTROSPECTED, res);
    }
    if (rc != 0) {
        if (res && res->cls != EID_CLASS_INVALID)
            return rc;
        return eid_result_set(res, p, 7407, "EID07407", "the signed userinfo answer is "
                              "refused (%s: %s)", res && res->tag ? res->tag : "-",
                              res && res->reason ? res->reason : "-");
    }
    /* jwt->claims is released with `p` by eid_jwt_parse()'s cleanup. */
    *claims = jwt->claims;
    return 0;
}

/* 1 when `ct` is the media type application/jwt (RFC 7519 10.3.1),
 * whatever its case and parameters. */
static int is_jwt_type(const char *ct)
{
    if (!ct || strncasecmp(ct, "application/jwt", 15))
        return 0;
    ct += 15;
    return !*ct || *ct == ';' || *ct == ' ' || *ct == '\t';
}

int eid_oidc_userinfo(apr_pool_t *p, eid_provider_t *pv, const char *url,
                      const char *access_token, const char *sub, apr_time_t now,
                      json_t **claims, eid_result_t *res)
{
    eid_http_resp_t r;
    json_t *doc = NULL;
    const char *usub, *b;
    apr_size_t n;
    int i, rc, dots = 0;

    *claims = NULL;
    if (!url)
        return eid_fail(res, "EID07406", "userinfo=on but the provider has no userinfo "
                        "endpoint");
    if (eid_http_get_bearer(p, url, &pv->http, access_token, &r, res) != APR_SUCCESS)
        return res->code;
    if (r.status == 401 || r.status == 403)
        return eid_result_set(res, p, 7405, "EID07405", "userinfo endpoint refused the "
                              "access token (HTTP %ld)", r.status);
    if (r.status != 200)
        return eid_result_set(res, p, 7401, "EID07401", "userinfo endpoint answered HTTP %ld",
                              r.status);
    if (is_jwt_type(r.content_type)) {
        /* Surrounding white space is not part of a compact token. */
        for (b = r.body, n = r.len; n && apr_isspace(*b); b++, n--)
            ;
        while (n && apr_isspace(b[n - 1]))
            n--;
        for (i = 0; (apr_size_t)i < n; i++)
            dots += b[i] == '.';
        /* A JWE (five parts) would need a decryption key of ours, which
         * the module does not hold: say so instead of a signature error. */
        if (dots == 4)
            return eid_fail(res, "EID07403", "userinfo answered an encrypted JWT (JWE), "
                            "which cannot be decrypted here; configure the provider to sign "
                            "only, or to answer JSON");
        if ((rc = signed_userinfo(p, pv, b, n, now, &doc, res)) != 0)
            return rc;
    }
    else if (!(doc = eid_oidc_json(p, r.body, r.len)))
        return eid_fail(res, "EID07402", "userinfo answer is not a JSON object");
    usub = str_claim(doc, "sub");
    /* Core 5.3.2: the sub MUST match the ID token's, or the answer is
     * another user's (token substitution). */
    if (!usub || strcmp(usub, sub))
        return eid_fail(res, "EID07404", "userinfo sub is not the ID token's sub");
    for (i = 0; protocol_claims[i]; i++)
        json_object_del(doc, protocol_claims[i]);
    *claims = doc;
    return 0;
}
