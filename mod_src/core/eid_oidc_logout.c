/*
 * eid_oidc_logout.c - back-channel logout tokens (OpenID Connect
 * Back-Channel Logout 1.0, 2.4 and 2.6; SECURITY.md "Tokens").
 */
#include "eid_oidc_int.h"

#include <apr_strings.h>
#include <string.h>
#include <strings.h>

static const char *str(json_t *c, const char *name, int *bad)
{
    json_t *v = json_object_get(c, name);
    if (v && (!json_is_string(v) || !json_string_length(v)))
        *bad = 1;
    return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

static int check(apr_pool_t *p, eid_provider_t *const *provs, int nprovs, const char *tok,
                 apr_size_t len, apr_time_t now, eid_provider_t **out_pv, const char **sid,
                 const char **sub, const char **jti, eid_result_t *res)
{
    static const char *const types[] = {"logout+jwt", "application/logout+jwt"};
    eid_provider_t *pv = NULL;
    eid_jwt_rules_t r;
    eid_jwt_t *jwt;
    json_t *c, *events, *ev;
    apr_size_t max = 0;
    apr_int64_t iat = 0;
    int i, n = 0, rc, bad = 0;
    const char *aud[1];

    for (i = 0; i < nprovs; i++)
        if (provs[i]->login.on && provs[i]->checked && provs[i]->max_token_size > max)
            max = provs[i]->max_token_size;
    if (!max)
        return eid_fail(res, "EID07509", "no login provider here takes logout tokens");
    if (!tok || !len)
        return eid_fail(res, "EID07512", "no logout_token");
    if ((rc = eid_jwt_parse(p, tok, len, max, &jwt, res)) != 0)
        return rc;
    if (!jwt->iss)
        return eid_fail(res, "EID03301", "iss missing or not a string");
    for (i = 0; i < nprovs; i++)
        if (provs[i]->login.on && provs[i]->checked && !strcmp(provs[i]->issuer, jwt->iss)) {
            pv = provs[i];
            n++;
        }
    /* Never "the first that accepts": two providers with one issuer may
     * hold different client_ids and keys. */
    if (n > 1)
        return eid_fail(res, "EID07510", "several login providers have the token's issuer");
    if (!pv)
        return eid_fail(res, "EID07501", "iss names no login provider");
    if (len > pv->max_token_size)
        return eid_fail(res, "EID03003", "token larger than the configured maximum");
    /* 2.4: typ "logout+jwt" is recommended; an ID token or access token
     * (typ JWT / at+jwt) must never end sessions. */
    if (jwt->typ && strcasecmp(jwt->typ, "logout+jwt") &&
        strcasecmp(jwt->typ, "application/logout+jwt"))
        return eid_fail(res, "EID07502", "typ is not logout+jwt");
    r = pv->rules;
    aud[0] = pv->client_id;
    r.audiences = aud;
    r.naudiences = 1;
    r.types = types;
    r.ntypes = 2;
    r.typ_absent_ok = 1;
    if ((rc = eid_jwt_check_header(jwt, &r, res)) != 0 ||
        (rc = eid_jwt_verify(jwt, pv->jwks, p, now, res)) != 0)
        return rc;
    c = jwt->claims;
    if (!json_object_get(c, "aud"))
        return eid_fail(res, "EID03303", "aud missing");
    if (eid_jwt_numeric_date(c, "iat", &iat) != 1)
        return eid_fail(res, "EID07503", "iat missing or not a valid time");
    /* iss exact, aud contains client_id, exp (when present), nbf, iat not
     * in the future - each within leeway. */
    if ((rc = eid_jwt_check_claims(c, &r, now, EID_JWT_INTROSPECTED, res)) != 0)
        return rc;
    if (apr_time_from_sec(iat) + EID_OIDC_LOGOUT_MAX_AGE + pv->leeway < now)
        return eid_fail(res, "EID07504", "the logout token is too old (iat)");
    /* 2.4: a nonce is forbidden, so that an ID token can never pass. */
    if (json_object_get(c, "nonce"))
        return eid_fail(res, "EID07508", "a logout token must not carry a nonce");
    events = json_object_get(c, "events");
    ev = json_is_object(events) ? json_object_get(events, EID_OIDC_BCL_EVENT) : NULL;
    if (!json_is_object(ev))
        return eid_fail(res, "EID07506", "events lacks the back-channel-logout event object");
    *jti = str(c, "jti", &bad);
    if (!*jti)
        return eid_fail(res, "EID07505", "jti missing or not a string");
    *sid = str(c, "sid", &bad);
    *sub = str(c, "sub", &bad);
    if (bad)
        return eid_fail(res, "EID07511", "sid or sub is not a non-empty string");
    if (!*sid && !*sub)
        return eid_fail(res, "EID07507", "neither sid nor sub");
    *jti = apr_pstrdup(p, *jti);
    *sid = *sid ? apr_pstrdup(p, *sid) : NULL;
    *sub = *sub ? apr_pstrdup(p, *sub) : NULL;
    *out_pv = pv;
    return 0;
}

apr_status_t eid_oidc_logout_token(apr_pool_t *p, eid_provider_t *const *provs, int nprovs,
                                   const char *tok, apr_size_t len, apr_time_t now,
                                   eid_provider_t **pv, const char **sid, const char **sub,
                                   const char **jti, eid_result_t *res)
{
    eid_result_t scratch = {0};

    *pv = NULL;
    *sid = *sub = *jti = NULL;
    if (!res)
        res = &scratch;
    *res = scratch;
    if (check(p, provs, nprovs, tok, len, now, pv, sid, sub, jti, res) == 0)
        return APR_SUCCESS;
    *pv = NULL;
    *sid = *sub = *jti = NULL;
    if (!res->code)
        eid_fail(res, "EID07501", "logout token refused");
    return APR_EGENERAL;
}

apr_interval_time_t eid_oidc_logout_jti_ttl(const eid_provider_t *pv)
{
    return 2 * (EID_OIDC_LOGOUT_MAX_AGE + (pv ? pv->leeway : 0));
}
