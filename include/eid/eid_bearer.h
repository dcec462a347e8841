/*
 * eid_bearer.h - bearer-token validation: the facade the Apache glue calls.
 *
 * A provider (an OpenID Provider / authorisation server as one location
 * sees it) is configured with "key=value" options, checked once, initialised
 * in the parent (keys fetched once) and in every child (locks), and then
 * used by eid_bearer_validate() from any thread.
 *
 * Validation of one token:
 *  1. empty, or not RFC 6750 b64token syntax      -> MALFORMED (400)
 *  2. larger than every provider's max_token_size -> INVALID
 *  3. the process-wide token cache (SHA-256 of the token): a hit for a
 *     provider of this location is the answer
 *  4. a token with exactly two dots is a JWS: parsed once, the provider is
 *     the one whose issuer equals the token's `iss` exactly; validated with
 *     its keys (eid_jwt), or by introspection when it has no key source.
 *     Two providers of the list with that issuer: MISCONFIGURED (EID03008),
 *     also for a cache hit - never "the first that accepts"
 *  5. any other token is opaque: introspected at the FIRST provider of the
 *     list that has an introspection endpoint (a bearer token is never sent
 *     to several parties to see who knows it)
 *  6. claims -> identity (eid_claims), cached until min(exp, max_ttl)
 * Key sets that cannot be had and introspection endpoints that fail give
 * UNAVAILABLE (503), never INVALID, so a client is not told to drop a good
 * token because the provider is down.  The code follows the result's class
 * (eid_result.h), never its number.
 */
#ifndef EID_BEARER_H
#define EID_BEARER_H

#include <apr_pools.h>
#include <apr_time.h>

#include "eid/eid_identity.h"
#include "eid/eid_jwks.h"
#include "eid/eid_result.h"
#include "eid/eid_tokcache.h"

typedef struct eid_provider eid_provider_t;

/* A provider named `name` with every option at its default, in `pconf`. */
eid_provider_t *eid_provider_create(apr_pool_t *pconf, const char *name);

/* The name given at creation (pconf lifetime). */
const char *eid_provider_name(const eid_provider_t *pv);

/* The configured issuer, or NULL (pconf lifetime). */
const char *eid_provider_issuer(const eid_provider_t *pv);

/*
 * One "key=value" option from the configuration.  Returns NULL, or an error
 * message in `p` that names the key and never repeats a secret.  Keys:
 *   issuer              exact `iss` (required)
 *   discovery           URL of the discovery document, or "on" for
 *                       <issuer>/.well-known/openid-configuration
 *   jwks_uri            URL of the JWK Set
 *   jwks_file           path of a local JWK Set (re-read at jwks_refresh, in
 *                       the children: as httpd's User)
 *   audience            accepted `aud` value; repeatable or a comma list
 *   algs                comma list of RS256 RS384 RS512 PS256 PS384 PS512
 *                       ES256 ES384 ES512 (default RS256); HS* and none never
 *   claims              generic | oidc-sweden | inera (default generic)
 *   claim.<field>       claim name filling identity field <field>
 *   acr.<uri>           level 0-4 for that acr value (overrides the table)
 *   leeway              seconds of clock skew on exp/nbf/iat (default 60)
 *   jwks_refresh        seconds between key set fetches (default 3600)
 *   jwks_min_refetch    minimum seconds between two fetches, also for an
 *                       unknown kid (default 60)
 *   jwks_max_stale      seconds the keys stay usable while fetches fail
 *                       (default 21600); a key a successful fetch no longer
 *                       lists is gone at once, cached tokens included
 *   fetch_timeout       seconds, whole HTTP fetch (default 3)
 *   fetch_max_bytes     largest accepted HTTP answer / JWKS file (default 262144)
 *   token_types         accepted header `typ`s, comma list; "absent" accepts a
 *                       token without typ (default at+jwt,application/at+jwt,
 *                       JWT,absent)
 *   max_token_size      bytes (default 16384)
 *   introspect          URL of the RFC 7662 introspection endpoint
 *   client_id           client id for introspection
 *   client_secret_file  file holding the client secret (read now)
 *   introspect_cache    seconds an introspection answer is reused, 0 = never
 *                       (default 60; never past the token's exp)
 *   introspect_require  members an answer must carry: comma list of aud, iss,
 *                       exp (default all three; aud cannot be waived)
 *   introspect_negative_cache  seconds a refusal is remembered (default 10,
 *                       0 = off, at most 300)
 *   introspect_max_inflight    calls to the endpoint at once per process
 *                       (default 8); beyond: EID03505, UNAVAILABLE
 *   introspect_rate     calls to the endpoint per second per process
 *                       (default 100, 0 = no limit); beyond: EID03506
 *   ca_file             PEM trust anchors for https fetches (default: system)
 * Not thread-safe (configuration time).
 */
const char *eid_provider_set(eid_provider_t *pv, apr_pool_t *p, const char *key,
                             const char *value);

/*
 * After all options: NULL, or an error in `p` naming what is missing or
 * insecure (no issuer, no audience, no key source and no introspection,
 * two key sources, introspection without client credentials, a jwks_file
 * without a usable key for the algs, an unreadable ca_file, plain-http URLs
 * to non-loopback hosts, inconsistent intervals).  Builds the runtime
 * objects; idempotent.  Not thread-safe.
 */
const char *eid_provider_check(eid_provider_t *pv, apr_pool_t *p);

/*
 * In the httpd parent after configuration (in_child = 0; `p` = pconf or
 * ptemp as scratch): initialises libcurl and jansson's hash seed, fetches
 * the keys once; failures are only logged (EID03208 ...) and APR_SUCCESS is
 * returned.  In every child (in_child = 1; `p` = pchild): creates the locks
 * and the introspection cache.  Returns APR_EINVAL when the provider does not
 * pass eid_provider_check().
 */
apr_status_t eid_provider_init(eid_provider_t *pv, apr_pool_t *p, int in_child);

/* The provider's key set (NULL when it only introspects): tests, status. */
eid_jwks_t *eid_provider_jwks(eid_provider_t *pv);

typedef enum {
    EID_BEARER_OK,
    EID_BEARER_MALFORMED,     /* 400 invalid_request */
    EID_BEARER_INVALID,       /* 401 invalid_token */
    EID_BEARER_UNAVAILABLE,   /* 503 with Retry-After */
    EID_BEARER_MISCONFIGURED  /* 500: the location's providers cannot decide */
} eid_bearer_code_e;

/* The result codes of a credential that is not RFC 6750 2.1 b64token syntax
 * at all (empty, or other characters): the Authorization header is
 * malformed, whatever the token was meant to be. */
#define EID_BEARER_EMPTY 3001
#define EID_BEARER_NOT_TOKEN68 3002

/* The bearer code of a result of the token units, by its class (never by
 * its number): code 0 is OK; MALFORMED, UNAVAILABLE and MISCONFIGURED map to
 * their namesakes; every other class (INVALID, FORBIDDEN, NONE with a code)
 * to EID_BEARER_INVALID.  `res` NULL is OK.  Pure. */
eid_bearer_code_e eid_bearer_code(const eid_result_t *res);

/*
 * Validate `token` (`len` bytes, need not be NUL-terminated) against `provs`
 * (the providers the location accepts, in order).  On EID_BEARER_OK *out is
 * the identity in `p`; otherwise *out is NULL and `res` holds the tag and a
 * reason that contains neither the token nor a claim value.  Uses the
 * process-wide token cache (eid_tokcache_init()).  Thread-safe.
 */
eid_bearer_code_e eid_bearer_validate(apr_pool_t *p, eid_provider_t *const *provs, int nprovs,
                                      const char *token, size_t len, apr_time_t now,
                                      eid_identity_t **out, eid_result_t *res);

/* Adds to a new identity what the caller derives from it (the organisation
 * directory's kind, groups, roles) before it is cached; allocates in `p`.
 * Called by the thread that validated the token, never under a cache lock. */
typedef void (*eid_bearer_enrich_fn)(void *baton, apr_pool_t *p, eid_identity_t *id);

/*
 * eid_bearer_validate(), and on a cache miss `enrich` (when not NULL) runs on
 * the new identity before it goes into the process-wide token cache, so that
 * later hits carry the enrichment.  A hit is returned as it was cached: the
 * caller checks that what was added fits its own needs (e.g. the identity's
 * `directory`) and redoes it on its own copy otherwise.  Thread-safe.
 */
eid_bearer_code_e eid_bearer_validate_ex(apr_pool_t *p, eid_provider_t *const *provs,
                                         int nprovs, const char *token, size_t len,
                                         apr_time_t now, eid_bearer_enrich_fn enrich,
                                         void *baton, eid_identity_t **out,
                                         eid_result_t *res);

#endif
