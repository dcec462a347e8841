/*
 * eid_jwt.c - compact JWS access-token rules; cjose checks the signature.
 *
 * Cost model: one pass over the token (segments, alphabet), a decode of the
 * small header, cjose's import (which decodes the payload once; we parse
 * that same buffer), the signature, then a handful of hash lookups in the
 * claims.  Nothing is done twice and nothing is compiled per request.
 */
#include "eid/eid_jwt.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const default_types[] = {"at+jwt", "application/at+jwt", "JWT"};

void eid_jwt_rules_default(eid_jwt_rules_t *r)
{
    memset(r, 0, sizeof(*r));
    r->algs = EID_JWS_ALG_BIT(EID_JWS_RS256);
    r->types = default_types;
    r->ntypes = 3;
    r->typ_absent_ok = 1;
    r->leeway = EID_JWT_DEFAULT_LEEWAY;
}

/* ---- parse ---------------------------------------------------------------------- */

static apr_status_t jwt_cleanup(void *data)
{
    eid_jwt_t *jwt = data;
    json_decref(jwt->header);
    json_decref(jwt->claims);
    if (jwt->jws)
        cjose_jws_release(jwt->jws);
    jwt->header = jwt->claims = NULL;
    jwt->jws = NULL;
    return APR_SUCCESS;
}

/* Parse `n` bytes as a JSON object, refusing duplicate member names (two
 * `exp`s, two `iss`s: which one would a downstream reader believe?). */
static int header_rules(eid_jwt_t *jwt, eid_result_t *res)
{
    json_t *alg = json_object_get(jwt->header, "alg");
    json_t *kid = json_object_get(jwt->header, "kid");
    json_t *typ = json_object_get(jwt->header, "typ");

    if (!json_is_string(alg))
        return eid_fail(res, "EID03110", "header has no alg string");
    jwt->alg = eid_jwks_alg_parse(json_string_value(alg), json_string_length(alg));
    /* Why refused here, before any configuration is consulted: "none" and
     * HMAC can never be right for tokens verified with public keys - with
     * HMAC the "secret" would be the public key anybody can download. */
    if (jwt->alg == EID_JWS_NONE)
        return eid_fail(res, "EID03111", "alg none is never accepted");
    if (jwt->alg == EID_JWS_HMAC)
        return eid_fail(res, "EID03112", "HMAC algs are never accepted");
    if (jwt->alg == EID_JWS_UNKNOWN)
        return eid_fail(res, "EID03113", "unknown or unsupported alg");
    if (kid) {
        if (!json_is_string(kid))
            return eid_fail(res, "EID03115", "kid is not a string");
        jwt->kid = json_string_value(kid);
        jwt->kid_len = json_string_length(kid);
    }
    /* RFC 7515 4.1.11: a recipient that does not understand a critical
     * extension must reject.  This module implements none of them. */
    if (json_object_get(jwt->header, "crit"))
        return eid_fail(res, "EID03116", "crit names an extension this module does not implement");
    if (typ) {
        if (!json_is_string(typ))
            return eid_fail(res, "EID03118", "typ is not a string");
        jwt->typ = json_string_value(typ);
    }
    return 0;
}

int eid_jwt_parse(apr_pool_t *p, const char *token, apr_size_t len, apr_size_t max_size,
                  eid_jwt_t **out, eid_result_t *res)
{
    eid_jwt_t *jwt;
    apr_size_t d1 = 0, d2 = 0, i, hlen, plen, slen;
    int dots = 0, dup, rc;
    unsigned char *hbuf;
    size_t hbuf_len;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    cjose_err err;

    *out = NULL;
    if (len > max_size)
        return eid_fail(res, "EID03003", "token larger than the configured maximum");
    for (i = 0; i < len; i++)
        if (token[i] == '.' && ++dots <= 2)
            *(dots == 1 ? &d1 : &d2) = i;
    if (dots != 2)
        return eid_fail(res, "EID03101", "not a compact JWS (three segments)");
    hlen = d1;
    plen = d2 - d1 - 1;
    slen = len - d2 - 1;
    if (hlen == 0 || plen == 0)
        return eid_fail(res, "EID03102", "empty header or payload segment");
    /* The header is decoded while it is checked (it is the only segment we
     * decode ourselves; cjose decodes the payload and the signature). */
    hbuf = apr_palloc(p, eid_b64url_decoded_len(hlen) + 1);
    if (!eid_b64url_decode(token, hlen, hbuf, &hbuf_len))
        return eid_fail(res, "EID03103", "header segment is not base64url");
    if (!eid_b64url_valid(token + d1 + 1, plen))
        return eid_fail(res, "EID03104", "payload segment is not base64url");
    if (!eid_b64url_valid(token + d2 + 1, slen))
        return eid_fail(res, "EID03105", "signature segment is not base64url");

    jwt = apr_pcalloc(p, sizeof(*jwt));
    jwt->token = token;
    jwt->len = len;
    jwt->sig_len = eid_b64url_decoded_len(slen);
    apr_pool_cleanup_register(p, jwt, jwt_cleanup, apr_pool_cleanup_null);

    jwt->header = eid_jwt_json_object((const char *)hbuf, hbuf_len, &dup);
    if (!jwt->header)
        return dup ? eid_fail(res, "EID03107", "header has a duplicate member")
                   : eid_fail(res, "EID03106", "header is not a JSON object");
    if ((rc = header_rules(jwt, res)) != 0)
        return rc;
    if (slen == 0)
        return eid_fail(res, "EID03117", "empty signature");

    /* cjose decodes the payload once; the claims are parsed from its buffer. */
    jwt->jws = cjose_jws_import(token, len, &err);
    if (!jwt->jws || !cjose_jws_get_plaintext(jwt->jws, &pt, &ptlen, &err))
        return eid_fail(res, "EID03121", "the JWS library refused the token's structure");
    jwt->claims = eid_jwt_json_object((const char *)pt, ptlen, &dup);
    if (!jwt->claims)
        return dup ? eid_fail(res, "EID03109", "payload has a duplicate member")
                   : eid_fail(res, "EID03108", "payload is not a JSON object");
    {
        json_t *iss = json_object_get(jwt->claims, "iss");
        jwt->iss = json_is_string(iss) ? json_string_value(iss) : NULL;
    }
    *out = jwt;
    return 0;
}

int eid_jwt_check_header(const eid_jwt_t *jwt, const eid_jwt_rules_t *r, eid_result_t *res)
{
    int i;

    if (!(r->algs & EID_JWS_ALG_BIT(jwt->alg)))
        return eid_fail(res, "EID03114", "alg not allowed for this provider");
    if (!jwt->typ)
        return r->typ_absent_ok ? 0 : eid_fail(res, "EID03119", "typ is required here");
    /* Media types are case-insensitive (RFC 7515 4.1.9). */
    for (i = 0; i < r->ntypes; i++)
        if (!strcasecmp(jwt->typ, r->types[i]))
            return 0;
    return eid_fail(res, "EID03119", "typ not accepted for access tokens");
}

/* ---- signature ------------------------------------------------------------------ */

int eid_jwt_verify(eid_jwt_t *jwt, eid_jwks_t *ks, apr_pool_t *p, apr_time_t now,
                   eid_result_t *res)
{
    eid_jwks_sel_t sel;
    cjose_err err;
    int i, rc, tried = 0;

    rc = eid_jwks_select(ks, p, now, jwt->kid, jwt->kid_len, jwt->alg, &sel, res);
    if (rc)
        return rc;
    if (jwt->kid) {
        switch (eid_jwks_fit(sel.keys[0], jwt->alg)) {
        case EID_JWK_WRONG_TYPE:
            eid_jwks_release(ks, &sel);
            return eid_fail(res, "EID03202", "the kid's key is of another type than alg needs");
        case EID_JWK_WRONG_ALG:
            eid_jwks_release(ks, &sel);
            return eid_fail(res, "EID03203", "the kid's key is bound to another alg");
        default:
            break;
        }
    }
    for (i = 0; i < sel.n; i++) {
        /* A signature must have exactly the key's length (RSA modulus,
         * or 2 x coordinate size for ECDSA): never let a library guess how to
         * split or pad a malformed one. */
        if (jwt->sig_len != sel.keys[i]->sig_len)
            continue;
        tried++;
        if (cjose_jws_verify(jwt->jws, sel.keys[i]->cjose, &err)) {
            eid_jwks_release(ks, &sel);
            return 0;
        }
    }
    eid_jwks_release(ks, &sel);
    return tried ? eid_fail(res, "EID03205", "signature does not verify")
                 : eid_fail(res, "EID03204", "signature length does not fit the key");
}

/* ---- claims ---------------------------------------------------------------------- */

int eid_jwt_numeric_date(json_t *claims, const char *name, apr_int64_t *secs)
{
    json_t *v = json_object_get(claims, name);
    json_int_t n;

    if (!v)
        return 0;
    if (!json_is_integer(v))
        return -1;
    n = json_integer_value(v);
    if (n <= 0 || n >= EID_JWT_MAX_TIME)
        return -2;
    *secs = (apr_int64_t)n;
    return 1;
}

static int aud_ok(json_t *aud, const eid_jwt_rules_t *r, eid_result_t *res)
{
    size_t i;
    json_t *v;
    int j, found = 0;

    if (json_is_string(aud)) {
        for (j = 0; j < r->naudiences; j++)
            if (!strcmp(json_string_value(aud), r->audiences[j]))
                return 0;
        return eid_fail(res, "EID03305", "aud does not name this service");
    }
    if (!json_is_array(aud))
        return eid_fail(res, "EID03304", "aud is neither a string nor an array of strings");
    /* Every element is checked for its type even after a match: an array
     * with a non-string is malformed, not "close enough". */
    json_array_foreach(aud, i, v) {
        if (!json_is_string(v))
            return eid_fail(res, "EID03304", "aud is neither a string nor an array of strings");
        for (j = 0; !found && j < r->naudiences; j++)
            found = !strcmp(json_string_value(v), r->audiences[j]);
    }
    return found ? 0 : eid_fail(res, "EID03305", "aud does not name this service");
}

static int looks_like_id_token(json_t *c)
{
    json_t *typ = json_object_get(c, "typ");
    return json_object_get(c, "nonce") || json_object_get(c, "at_hash") ||
           json_object_get(c, "c_hash") || json_object_get(c, "s_hash") ||
           (json_is_string(typ) && !strcmp(json_string_value(typ), "ID"));
}

/* An optional NumericDate that must not lie in the future (nbf, iat): its
 * name and, for each way it can fail, the tag and reason. */
typedef struct {
    const char *name;
    const char *tag[3]; /* not an integer, out of range, in the future */
    const char *why[3];
} future_claim_t;

static const future_claim_t nbf_claim = {
    "nbf", {"EID03310", "EID03311", "EID03312"},
    {"nbf is not an integer", "nbf out of range", "token not valid yet (nbf)"}};
static const future_claim_t iat_claim = {
    "iat", {"EID03313", "EID03314", "EID03315"},
    {"iat is not an integer", "iat out of range", "token issued in the future (iat)"}};

/* 0 when the claim is absent or at most `lw` seconds after now_s, else
 * eid_fail() with the claim's tag. */
static int not_future(json_t *claims, const future_claim_t *c, apr_int64_t now_s,
                      apr_int64_t lw, eid_result_t *res)
{
    apr_int64_t t;

    switch (eid_jwt_numeric_date(claims, c->name, &t)) {
    case -1: return eid_fail(res, c->tag[0], c->why[0]);
    case -2: return eid_fail(res, c->tag[1], c->why[1]);
    case 1: return t - lw > now_s ? eid_fail(res, c->tag[2], c->why[2]) : 0;
    default: return 0;
    }
}

int eid_jwt_check_claims(json_t *claims, const eid_jwt_rules_t *r, apr_time_t now, int mode,
                         eid_result_t *res)
{
    json_t *iss = json_object_get(claims, "iss"), *aud = json_object_get(claims, "aud");
    apr_int64_t t, now_s = apr_time_sec(now), lw = apr_time_sec(r->leeway);
    int rc, strict = mode == EID_JWT_ACCESS_TOKEN;

    /* Why: an ID token proves a login to a client; replayed at an API it
     * would let that client (or whoever stole it) act as the user. */
    if (strict && looks_like_id_token(claims))
        return eid_fail(res, "EID03120", "an ID token is not an access token");
    if (iss || strict) {
        if (!json_is_string(iss))
            return eid_fail(res, "EID03301", "iss missing or not a string");
        if (!r->issuer || strcmp(json_string_value(iss), r->issuer))
            return eid_fail(res, "EID03302", "iss is not this provider's issuer");
    }
    if (aud || strict) {
        if (!aud)
            return eid_fail(res, "EID03303", "aud missing");
        if ((rc = aud_ok(aud, r, res)) != 0)
            return rc;
    }
    switch (eid_jwt_numeric_date(claims, "exp", &t)) {
    case 0:
        if (strict)
            return eid_fail(res, "EID03306", "exp missing");
        break;
    case -1: return eid_fail(res, "EID03307", "exp is not an integer");
    case -2: return eid_fail(res, "EID03308", "exp out of range");
    default:
        if (t + lw <= now_s)
            return eid_fail(res, "EID03309", "token expired");
    }
    if ((rc = not_future(claims, &nbf_claim, now_s, lw, res)) != 0)
        return rc;
    return not_future(claims, &iat_claim, now_s, lw, res);
}

int eid_jwt_validate(apr_pool_t *p, const char *token, apr_size_t len, apr_size_t max_size,
                     const eid_jwt_rules_t *r, eid_jwks_t *ks, apr_time_t now,
                     eid_jwt_t **out, eid_result_t *res)
{
    eid_jwt_t *jwt;
    int rc;

    *out = NULL;
    if ((rc = eid_jwt_parse(p, token, len, max_size, &jwt, res)) != 0 ||
        (rc = eid_jwt_check_header(jwt, r, res)) != 0 ||
        (rc = eid_jwt_verify(jwt, ks, p, now, res)) != 0 ||
        (rc = eid_jwt_check_claims(jwt->claims, r, now, EID_JWT_ACCESS_TOKEN, res)) != 0)
        return rc;
    *out = jwt;
    return 0;
}
