/*
 * eid_provider_int.h - the provider object, shared by the units that build
 * on it (eid_bearer: options, checks, token validation; eid_oidc: browser
 * login).  Internal to the core: the glue only sees eid_provider_t.
 *
 * Lifetime: everything here lives in the provider's pool (pconf).  The
 * configuration members are written while the configuration is read (one
 * thread) and read-only afterwards; the only member written later is the
 * login's discovered endpoint set (eid_oidc_conf.c), published atomically.
 */
#ifndef EID_PROVIDER_INT_H
#define EID_PROVIDER_INT_H

#include "eid/eid_bearer.h"
#include "eid/eid_claims.h"
#include "eid/eid_http.h"
#include "eid/eid_introspect.h"
#include "eid/eid_jwt.h"

#include <openssl/evp.h>
#include <stdatomic.h>

/* token_auth= values */
typedef enum {
    EID_OIDC_AUTH_BASIC = 0,  /* client_secret_basic (default) */
    EID_OIDC_AUTH_POST,       /* client_secret_post */
    EID_OIDC_AUTH_PRIVATE_KEY /* private_key_jwt (RFC 7523) */
} eid_oidc_auth_e;

/* The login endpoints (immutable once published). */
typedef struct eid_oidc_endpoints {
    const char *authorization, *token, *userinfo, *end_session;
} eid_oidc_endpoints_t;

/* Login options of a provider (login=on and friends); all in pconf. */
typedef struct eid_oidc_opts {
    int on;                        /* login=on */
    int auth_set;                  /* token_auth given */
    eid_oidc_auth_e auth;
    const char *key_file, *key_kid;
    EVP_PKEY *key;                 /* private_key_file, loaded by the check */
    const char *scope;             /* NULL: "openid" */
    int userinfo;                  /* userinfo=on */
    const char *prompt;            /* NULL: none sent */
    apr_int64_t max_age;           /* seconds; -1: none sent */
    eid_oidc_endpoints_t conf;     /* configured endpoints (override discovery) */
    apr_interval_time_t timeout;   /* login_timeout */
    int end_session_post;          /* end_session_method=post */
    const char *discovery_url;     /* resolved by the check; NULL without discovery */
    /* Discovered endpoints: NULL until a discovery succeeded.  Written once
     * (compare-and-swap from NULL), never changed after: readers need no
     * lock.  The winner's block is malloc'd and freed by a pconf cleanup. */
    /* eid_oidc_endpoints_t *, published once (C11 release / acquire: APR's
     * atomics live in an uninstrumented library, so ThreadSanitizer cannot
     * see their ordering) */
    _Atomic(void *) found;
    _Atomic apr_uint32_t disc_failed; /* second of the last failed discovery */
    const char *first_key;         /* first login option given (check: login=on) */
} eid_oidc_opts_t;

struct eid_provider {
    apr_pool_t *pool;
    const char *name;
    const char *issuer;
    apr_array_header_t *audiences; /* const char * */
    unsigned algs;
    apr_array_header_t *types;     /* const char *; NULL: the defaults */
    int typ_absent_ok;
    apr_interval_time_t leeway;
    apr_size_t max_token_size;
    const char *discovery;         /* URL, or "on" */
    const char *jwks_uri, *jwks_file;
    apr_interval_time_t jwks_refresh, jwks_min_refetch, jwks_max_stale;
    eid_http_opts_t http;
    eid_claims_map_t *map;
    const char *introspect, *client_id, *client_secret;
    apr_interval_time_t introspect_cache, introspect_negative;
    int introspect_inflight, introspect_rate;
    unsigned introspect_require;   /* EID_INTROSPECT_REQ_* */
    eid_oidc_opts_t login;         /* browser login (eid_oidc) */
    /* built by eid_provider_check() */
    int checked;
    eid_jwt_rules_t rules;
    eid_jwks_t *jwks;
    eid_introspect_t *intro;
};

/* eid_oidc_conf.c: called by eid_bearer.c */

/* One login option (login, token_auth, private_key_file, private_key_kid,
 * scope, userinfo, prompt, max_age, authorization_endpoint, token_endpoint,
 * userinfo_endpoint, end_session_endpoint, login_timeout).  NULL or an error
 * in `p`.  Configuration time. */
const char *eid_oidc_set(eid_provider_t *pv, apr_pool_t *p, const char *key,
                         const char *value);

/* Defaults of the login options (from eid_provider_create()). */
void eid_oidc_defaults(eid_provider_t *pv);

/* The login checks of eid_provider_check() (only with login=on), with the
 * resolved discovery URL (or NULL).  NULL or an error in `p`. */
const char *eid_oidc_check(eid_provider_t *pv, apr_pool_t *p, const char *discovery_url);

/* Parent (in_child = 0): fetch the endpoints once (failure only logged). */
void eid_oidc_init(eid_provider_t *pv, apr_pool_t *p, int in_child);

/* URL building for eid_oidc*.c: `base` plus "?" (or "&" when it has a
 * query already); then name=form-encoded(v) pairs, skipped when v is NULL. */
char *eid_oidc_url_start(apr_pool_t *p, const char *base, int *first);
void eid_oidc_url_param(apr_pool_t *p, char **url, int *first, const char *name,
                        const char *v);

#endif
