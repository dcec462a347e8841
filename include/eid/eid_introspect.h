/*
 * eid_introspect.h - RFC 7662 token introspection for opaque tokens.
 *
 * The token is POSTed (form-encoded, token_type_hint=access_token) to the
 * provider's introspection endpoint with HTTP Basic client authentication
 * (id and secret form-encoded first, RFC 6749 2.3.1).  The answer must be a
 * JSON object (no duplicate members) whose `active` is JSON true, and must
 * carry the members of `require` (RFC 7662 makes them optional; an answer
 * without `aud` would admit tokens the server issued for any other service).
 * Then the JWT claim rules apply (iss exact, aud contains ours, exp/nbf/iat
 * types and times) and the claims are mapped to an identity.
 *
 * Caches, per introspection client (one per provider) and per process:
 *  - answers for active tokens, keyed by the token's SHA-256, never past the
 *    token's exp nor `cache_ttl`;
 *  - refusals (not active, or refused by the checks), keyed the same way,
 *    for `negative_ttl`, in a fixed table of EID_INTROSPECT_NEG_SLOTS slots
 *    (a new refusal overwrites the slot's old one).
 * Both hold decisions that depend on the provider's checks (rules, claim
 * map, require); those are bound to the client at creation and never change,
 * so an entry is only ever reused under the checks that produced it.
 * At most `max_inflight` calls to the endpoint run at once per process, and
 * at most `max_rate` start per second (a token bucket holding one second's
 * worth); beyond that a token that is in neither cache is refused at once as
 * "unavailable" (EID03505 / EID03506, 503 + Retry-After) instead of tying up
 * another worker thread or the endpoint.  An unreachable or misbehaving endpoint is "unavailable",
 * not "invalid token", and is never remembered as a refusal.
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

/* Members an introspection answer must carry (eid_introspect_conf_t.require). */
#define EID_INTROSPECT_REQ_AUD 1u
#define EID_INTROSPECT_REQ_ISS 2u
#define EID_INTROSPECT_REQ_EXP 4u
#define EID_INTROSPECT_REQ_ALL 7u

/* Slots of the refusal cache (per client and process). */
#define EID_INTROSPECT_NEG_SLOTS 1024

typedef struct eid_introspect_conf {
    const char *name;          /* provider name (identity profile, log lines) */
    const char *endpoint;      /* https URL (http only to loopback) */
    const char *client_id;
    const char *client_secret;
    apr_interval_time_t cache_ttl;    /* 0: answers are not cached */
    int cache_entries;
    apr_interval_time_t negative_ttl; /* 0: refusals are not remembered */
    int max_inflight;                 /* calls at once per process; <= 0: 1 */
    int max_rate;                     /* calls per second per process; 0: no limit */
    unsigned require;                 /* EID_INTROSPECT_REQ_* bits */
    const eid_jwt_rules_t *rules;     /* the checks (copied) */
    const eid_claims_map_t *map;      /* claims -> identity (kept: must outlive the client
                                         and not change) */
    eid_http_opts_t http;
} eid_introspect_conf_t;

typedef struct eid_introspect eid_introspect_t;

/* An introspection client in `pconf` (strings and rules copied).  No I/O. */
eid_introspect_t *eid_introspect_create(apr_pool_t *pconf, const eid_introspect_conf_t *c);

/* Create the caches and their locks in `pchild`.  Until then nothing is
 * cached.  Call before threads use `in` (not thread-safe itself). */
apr_status_t eid_introspect_child_init(eid_introspect_t *in, apr_pool_t *pchild);

/*
 * Ask the endpoint about `len` bytes of `token`.  Returns 0 with *claims
 * (the answer object, released by a cleanup of `p`) when active; otherwise a
 * code with `res` set: EID036xx the request failed, EID03502 HTTP status
 * other than 200, EID03503 answer not a JSON object, EID03504 not active.
 * No caches, no bound on calls.  Thread-safe.
 */
int eid_introspect_query(eid_introspect_t *in, apr_pool_t *p, const char *token,
                         apr_size_t len, json_t **claims, eid_result_t *res);

/*
 * The whole path: the answer cache and the refusal cache (by `key`, the
 * token's SHA-256), else - within the in-flight bound (EID03505) and the
 * rate limit (EID03506), measured with `now` -
 * eid_introspect_query(), the required members (EID03303 aud, EID03301 iss,
 * EID03306 exp missing), eid_jwt_check_claims(EID_JWT_INTROSPECTED) with the
 * client's rules, eid_claims_to_identity() with its map, and caching.  A
 * remembered refusal gives the same tag again.  Returns 0 with *out in `p`,
 * or a code with `res` set.  Thread-safe.
 */
int eid_introspect_validate(eid_introspect_t *in, apr_pool_t *p, const char *token,
                            apr_size_t len, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                            apr_time_t now, eid_identity_t **out, eid_result_t *res);

/* Calls to the endpoint running now in this process (tests, status). */
int eid_introspect_inflight(eid_introspect_t *in);

/* Bound the calls to all introspection endpoints together, per process: at
 * most `n` at once (n <= 0: no bound, the default).  Each provider's
 * max_inflight still applies.  Call once per child before requests run (the
 * glue: half of the child's worker threads), so that several providers
 * cannot together hold every worker thread while their endpoints are slow.
 * Beyond it a call is refused like max_inflight (EID03505). */
void eid_introspect_set_process_limit(int n);

#endif
