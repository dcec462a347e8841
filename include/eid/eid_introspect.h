/*
 * eid_introspect.h - RFC 7662 token introspection for opaque tokens.
 *
 * The token is POSTed (form-encoded, token_type_hint=access_token) to the
 * provider's introspection endpoint with HTTP Basic client authentication
 * (id and secret form-encoded first, RFC 6749 2.3.1).  The answer must be a
 * JSON object (no duplicate members) whose `active` is JSON true; then the
 * JWT claim rules apply where the claims are present (iss exact, aud
 * contains ours, exp/nbf/iat types and times) and the claims are mapped to
 * an identity.  Answers for active tokens are cached per provider, never
 * past the token's exp nor the configured maximum.  An unreachable or
 * misbehaving endpoint is "unavailable", not "invalid token".
 */
#ifndef EID_INTROSPECT_H
#define EID_INTROSPECT_H

#include <apr_pools.h>
#include <jansson.h>

#include "eid/eid_claims.h"
#include "eid/eid_http.h"
#include "eid/eid_jwt.h"
#include "eid/eid_result.h"
#include "eid/eid_tokcache.h"

typedef struct eid_introspect_conf {
    const char *name;          /* provider name (identity profile, log lines) */
    const char *endpoint;      /* https URL (http only to loopback) */
    const char *client_id;
    const char *client_secret;
    apr_interval_time_t cache_ttl; /* 0: answers are not cached */
    int cache_entries;
    eid_http_opts_t http;
} eid_introspect_conf_t;

typedef struct eid_introspect eid_introspect_t;

/* An introspection client in `pconf` (strings copied).  No I/O. */
eid_introspect_t *eid_introspect_create(apr_pool_t *pconf, const eid_introspect_conf_t *c);

/* Create the answer cache in `pchild` (when cache_ttl > 0).  Until then no
 * answer is cached.  Call before threads use `in`. */
apr_status_t eid_introspect_child_init(eid_introspect_t *in, apr_pool_t *pchild);

/*
 * Ask the endpoint about `len` bytes of `token`.  Returns 0 with *claims
 * (the answer object, released by a cleanup of `p`) when active; otherwise a
 * code with `res` set: EID036xx the request failed, EID03502 HTTP status
 * other than 200, EID03503 answer not a JSON object, EID03504 not active.
 * Thread-safe.
 */
int eid_introspect_query(eid_introspect_t *in, apr_pool_t *p, const char *token,
                         apr_size_t len, json_t **claims, eid_result_t *res);

/*
 * The whole path: the answer cache (by `key`, the token's SHA-256), else
 * eid_introspect_query(), eid_jwt_check_claims(EID_JWT_INTROSPECTED) with
 * `rules`, eid_claims_to_identity() with `map`, and caching.  Returns 0 with
 * *out in `p`, or a code with `res` set.  Thread-safe.
 */
int eid_introspect_validate(eid_introspect_t *in, apr_pool_t *p, const char *token,
                            apr_size_t len, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                            const eid_jwt_rules_t *rules, const eid_claims_map_t *map,
                            apr_time_t now, eid_identity_t **out, eid_result_t *res);

#endif
