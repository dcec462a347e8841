/*
 * eid_jwt.h - validation rules for compact JWS access tokens.
 *
 * A token goes through three steps, so that the caller can pick the
 * provider by the (not yet verified) `iss` between them:
 *   eid_jwt_parse()        structure and provider-independent header rules
 *   eid_jwt_check_header() the provider's alg allow-list and accepted `typ`s
 *   eid_jwt_verify()       signature with the provider's key set (cjose)
 *   eid_jwt_check_claims() iss, aud, exp, nbf, iat, ID-token refusal
 * eid_jwt_validate() runs them all against one provider.
 *
 * Every refusal has its own tag (EID031xx structure and header, EID032xx
 * keys and signature, EID033xx claims) and a static reason that never
 * contains the token or a claim value.  The result code is the tag's number.
 *
 * ID tokens are refused as access tokens: a payload carrying any of the
 * OpenID Connect ID-token-only claims `nonce`, `at_hash`, `c_hash`, `s_hash`
 * (whatever their value), or a `typ` claim equal to "ID" (Keycloak's marker),
 * is an ID token (EID03120), whatever its header `typ` and audience say.
 */
#ifndef EID_JWT_H
#define EID_JWT_H

#include <apr_pools.h>
#include <apr_time.h>
#include <cjose/jws.h>
#include <jansson.h>

#include "eid/eid_jwks.h"
#include "eid/eid_result.h"

#define EID_JWT_DEFAULT_MAX_SIZE 16384
#define EID_JWT_DEFAULT_LEEWAY apr_time_from_sec(60)
/* NumericDate claims must be 0 < v < 2^40 seconds (year ~36812). */
#define EID_JWT_MAX_TIME ((apr_int64_t)1 << 40)

/* What a provider accepts.  Arrays are borrowed (config lifetime). */
typedef struct eid_jwt_rules {
    const char *issuer;           /* exact `iss` */
    const char *const *audiences; /* `aud` must contain one of these */
    int naudiences;
    unsigned algs;                /* EID_JWS_ALG_BIT()s, asymmetric only */
    const char *const *types;     /* accepted header `typ`s, case-insensitive */
    int ntypes;
    int typ_absent_ok;            /* a token without `typ` is accepted */
    apr_interval_time_t leeway;   /* clock skew allowed on exp, nbf, iat */
} eid_jwt_rules_t;

/* A parsed token; the signature is not checked yet.  Everything lives in the
 * pool given to eid_jwt_parse() (JSON and cjose objects are released by its
 * cleanup). */
typedef struct eid_jwt {
    const char *token;   /* borrowed */
    apr_size_t len;
    json_t *header;
    json_t *claims;
    eid_jws_alg_e alg;
    const char *kid;     /* NULL when absent; any bytes (only a lookup key) */
    apr_size_t kid_len;
    const char *typ;     /* NULL when absent */
    const char *iss;     /* the `iss` claim when it is a string, else NULL */
    apr_size_t sig_len;  /* decoded signature length */
    cjose_jws_t *jws;
} eid_jwt_t;

/* Defaults: no issuer/audience (the caller must set them), RS256 only,
 * typ at+jwt / application/at+jwt / JWT / absent, leeway 60 s.  The arrays
 * point to static storage. */
void eid_jwt_rules_default(eid_jwt_rules_t *r);

/*
 * Step 1, provider-independent: size (more than `max_size` bytes: EID03003,
 * checked before anything else), exactly three segments, strict base64url
 * (no padding, canonical trailing bits), header and payload JSON objects
 * without duplicate members, `alg` a known asymmetric algorithm (none, HS*
 * and unknown names refused whatever the configuration), `kid` / `typ`
 * strings when present, no `crit` (no JWS extension is implemented, so every
 * critical name is unknown), non-empty signature.  `jku`, `x5u`, `jwk`, `x5c`
 * are ignored: never fetched, never trusted.
 * Returns 0 with *out in `p`, or a code with `res` set.  Thread-safe.
 */
int eid_jwt_parse(apr_pool_t *p, const char *token, apr_size_t len, apr_size_t max_size,
                  eid_jwt_t **out, eid_result_t *res);

/* Step 2: `alg` in r->algs (EID03114), `typ` accepted (EID03119).  Pure. */
int eid_jwt_check_header(const eid_jwt_t *jwt, const eid_jwt_rules_t *r, eid_result_t *res);

/*
 * Step 3: the signature, with the key named by `kid` (or, without kid, up to
 * EID_JWKS_MAX_TRY keys fitting alg).  The key's type must fit alg (EID03202)
 * and its own alg, when set, equal it (EID03203); a signature of the wrong
 * length for the key is refused before any crypto (EID03204).  May fetch the
 * key set (see eid_jwks_select(); scratch in `p`).  Returns 0 or a code with
 * `res` set.  Thread-safe.
 */
int eid_jwt_verify(eid_jwt_t *jwt, eid_jwks_t *ks, apr_pool_t *p, apr_time_t now,
                   eid_result_t *res);

/* Modes of eid_jwt_check_claims(). */
#define EID_JWT_ACCESS_TOKEN 0  /* a JWS access token: iss, aud, exp required */
#define EID_JWT_INTROSPECTED 1  /* an introspection answer: checked where present */

/*
 * Step 4: `iss` a string exactly r->issuer; `aud` a string or an array of
 * strings containing one of r->audiences; `exp` required; `exp`, `nbf`,
 * `iat` integer JSON numbers in (0, 2^40); exp + leeway > now,
 * nbf - leeway <= now, iat - leeway <= now; in EID_JWT_ACCESS_TOKEN mode an
 * ID token is refused.  Returns 0 or a code with `res` set.  Pure.
 */
int eid_jwt_check_claims(json_t *claims, const eid_jwt_rules_t *r, apr_time_t now, int mode,
                         eid_result_t *res);

/*
 * A NumericDate claim `name` of `claims`: returns 0 when absent, 1 with
 * *secs set when an integer JSON number in (0, 2^40), -1 when of another JSON
 * type (string, real, ...), -2 when out of range.  Pure.
 */
int eid_jwt_numeric_date(json_t *claims, const char *name, apr_int64_t *secs);

/* Deepest nesting of objects and arrays eid_jwt_json_object() accepts. */
#define EID_JWT_JSON_MAX_DEPTH 64

/*
 * Parse `len` bytes as one JSON object, strictly: the same language as
 * jansson's json_loadb(s, len, JSON_REJECT_DUPLICATES) restricted to an
 * object at the top, except that nesting deeper than EID_JWT_JSON_MAX_DEPTH
 * and NUL bytes outside strings (which jansson lets through after a number)
 * are refused.  jansson's lexer is several times slower; see the .c file.
 * Returns a new reference, or NULL with *dup = 1 when a member name repeats
 * in some object and 0 for any other error.  Thread-safe.
 */
json_t *eid_jwt_json_object(const char *s, apr_size_t len, int *dup);

/* All four steps against one provider.  Returns 0 with *out (in `p`) or a
 * code with `res` set.  Thread-safe. */
int eid_jwt_validate(apr_pool_t *p, const char *token, apr_size_t len, apr_size_t max_size,
                     const eid_jwt_rules_t *r, eid_jwks_t *ks, apr_time_t now,
                     eid_jwt_t **out, eid_result_t *res);

#endif
