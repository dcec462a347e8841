/*
 * eid_jwks.h - a provider's signing keys: JWS algorithms, key import from a
 * JWK Set, and the cached, throttled, thread-safe key set.
 *
 * Sources: a discovery document (its `issuer` must equal the configured one;
 * its `jwks_uri` is then fetched), a `jwks_uri`, a local JWKS file, or a
 * source function set by the caller.  Keys are imported with cjose.
 *
 * Refresh rules (all times come from the caller's `now`, so tests control
 * the clock):
 *  - the set is fetched again when older than `refresh`;
 *  - a `kid` that is not in the set triggers at most one fetch per
 *    `min_refetch` (the same throttle covers the periodic refresh, so a
 *    provider that is down is not hammered either);
 *  - one thread fetches at a time; the others keep using the current set;
 *  - a successful fetch replaces the set: a key the document no longer lists
 *    is gone at once (a withdrawn key is never honoured for a grace period),
 *    and the set's generation (eid_jwks_generation()) moves on;
 *  - a failed fetch keeps the old keys, until `max_stale` after the last
 *    successful fetch; then the set is unusable (EID03207).
 * So a withdrawn key stops verifying at the first fetch after its
 * withdrawal: within `refresh`, or within `min_refetch` when a token with an
 * unknown kid arrives first (the provider's new key).
 */
#ifndef EID_JWKS_H
#define EID_JWKS_H

#include <apr_pools.h>
#include <apr_time.h>
#include <cjose/jwk.h>

#include "eid/eid_http.h"
#include "eid/eid_result.h"

/* JWS "alg" values.  NONE and HMAC exist only so that they can be named in a
 * refusal: no key and no configuration ever accepts them. */
typedef enum {
    EID_JWS_UNKNOWN = 0,
    EID_JWS_NONE,
    EID_JWS_HMAC,
    EID_JWS_RS256, EID_JWS_RS384, EID_JWS_RS512,
    EID_JWS_PS256, EID_JWS_PS384, EID_JWS_PS512,
    EID_JWS_ES256, EID_JWS_ES384, EID_JWS_ES512,
    EID_JWS__COUNT
} eid_jws_alg_e;

#define EID_JWS_ALG_BIT(a) (1u << (unsigned)(a))
/* The algorithms a provider may allow. */
#define EID_JWS_ASYMMETRIC                                                            \
    (EID_JWS_ALG_BIT(EID_JWS_RS256) | EID_JWS_ALG_BIT(EID_JWS_RS384) |                \
     EID_JWS_ALG_BIT(EID_JWS_RS512) | EID_JWS_ALG_BIT(EID_JWS_PS256) |                \
     EID_JWS_ALG_BIT(EID_JWS_PS384) | EID_JWS_ALG_BIT(EID_JWS_PS512) |                \
     EID_JWS_ALG_BIT(EID_JWS_ES256) | EID_JWS_ALG_BIT(EID_JWS_ES384) |                \
     EID_JWS_ALG_BIT(EID_JWS_ES512))

/* The alg named by `len` bytes of `s` (case-sensitive, as JOSE says):
 * EID_JWS_NONE for "none", EID_JWS_HMAC for HS256/384/512, EID_JWS_UNKNOWN for
 * anything else that is not listed above.  Pure. */
eid_jws_alg_e eid_jwks_alg_parse(const char *s, apr_size_t len);

/* The JOSE name of `a` ("RS256"), "none", "HS*" or "unknown".  Static. */
const char *eid_jwks_alg_name(eid_jws_alg_e a);

typedef enum {
    EID_JWK_RSA = 1,
    EID_JWK_EC_P256,
    EID_JWK_EC_P384,
    EID_JWK_EC_P521
} eid_jwk_type_e;

/* One imported public key.  Immutable once in a key set. */
typedef struct eid_jwk {
    cjose_jwk_t *cjose;
    const char *kid;       /* NULL when the key has none; may hold any bytes */
    apr_size_t kid_len;
    eid_jwk_type_e type;
    eid_jws_alg_e alg;     /* the key's own "alg"; EID_JWS_UNKNOWN when absent */
    apr_size_t sig_len;    /* length of a signature made with it */
    unsigned char thumb[32]; /* RFC 7638 thumbprint: the key's identity */
    const char *json;      /* its JWK (re-imported when carried into a new set) */
    apr_time_t seen;       /* last successful fetch that listed it */
} eid_jwk_t;

typedef enum {
    EID_JWK_FITS = 0,
    EID_JWK_WRONG_TYPE, /* RS / PS need RSA; ES256 P-256, ES384 P-384, ES512 P-521 */
    EID_JWK_WRONG_ALG   /* the key names another alg */
} eid_jwk_fit_e;

/* May `k` verify a signature of algorithm `a`?  Pure. */
eid_jwk_fit_e eid_jwks_fit(const eid_jwk_t *k, eid_jws_alg_e a);

/* At most this many keys are tried for a token without `kid`, and at most
 * EID_JWKS_MAX_KEYS keys of a document are kept. */
#define EID_JWKS_MAX_TRY 4
#define EID_JWKS_MAX_KEYS 64

typedef struct eid_jwks_conf {
    const char *name;          /* provider name, for log lines */
    const char *issuer;        /* the discovery document must name exactly this */
    const char *discovery_url; /* exactly one of these three, or a source fn */
    const char *jwks_uri;
    const char *jwks_file;
    apr_interval_time_t refresh;
    apr_interval_time_t min_refetch;
    apr_interval_time_t max_stale;
    eid_http_opts_t http;      /* also bounds the size of a JWKS file */
} eid_jwks_conf_t;

typedef struct eid_jwks eid_jwks_t;

/*
 * A source of the JWK Set document used instead of the configured one (tests,
 * or a caller that fetches by other means).  Fill *doc / *len (in `p`) and
 * return APR_SUCCESS, or fill `res` and return an error.
 */
typedef apr_status_t (*eid_jwks_source_fn)(void *baton, apr_pool_t *p, const char **doc,
                                           apr_size_t *len, eid_result_t *res);

/* Keys parsed from one document.  `key` has room for EID_JWKS_MAX_KEYS; the
 * cleanup of the pool they were parsed in releases key[0 .. n) as `n` is at
 * that moment, so keys appended later (n raised) are released too. */
typedef struct eid_jwks_keys {
    eid_jwk_t *key;
    int n;
} eid_jwks_keys_t;

/*
 * Parse a JWK Set document (`len` bytes) into keys, applying the import rules:
 * a key is skipped, with a log line, when it is not an object, has `use`
 * other than "sig", `key_ops` without "verify", a kty other than RSA / EC
 * P-256/384/521, private key members, an RSA modulus under 2048 bits, an
 * `alg` that is not an asymmetric JWS alg fitting its type, a non-string kid,
 * a kid already seen, or cjose refuses it.  At most EID_JWKS_MAX_KEYS keys.
 * `name` (the provider) is only used in log lines.
 * Returns 0 with *out in `p` (possibly 0 keys), or a code with `res` set
 * (EID03209: not a JSON object with a "keys" array).  Thread-safe.
 */
int eid_jwks_parse(apr_pool_t *p, const char *doc, apr_size_t len, apr_time_t now,
                   const char *name, eid_jwks_keys_t **out, eid_result_t *res);

/*
 * A key set for one provider, in `pconf` (strings of `conf` are copied).
 * Nothing is fetched yet.  The set's memory outside `pconf` is released by a
 * cleanup of `pconf`.
 */
eid_jwks_t *eid_jwks_create(apr_pool_t *pconf, const eid_jwks_conf_t *conf);

/* Use `fn` as the document source (before any fetch; not thread-safe). */
void eid_jwks_set_source(eid_jwks_t *ks, eid_jwks_source_fn fn, void *baton);

/*
 * Create the lock that makes the set thread-safe, in `pchild`.  Until this
 * is called the set must be used by one thread only (the httpd parent).
 */
apr_status_t eid_jwks_child_init(eid_jwks_t *ks, apr_pool_t *pchild);

/*
 * Fetch the set now, whatever the throttle says (start-up, tests).  Returns
 * APR_SUCCESS when a new set with at least one key is in place; otherwise an
 * error with `res` set and the old keys kept (APR_EBUSY: another thread is
 * fetching).  `p` holds scratch data.  Thread-safe.
 */
apr_status_t eid_jwks_refresh(eid_jwks_t *ks, apr_pool_t *p, apr_time_t now,
                              eid_result_t *res);

/* Keys chosen for one token; valid until eid_jwks_release(). */
typedef struct eid_jwks_sel {
    void *snap;
    const eid_jwk_t *keys[EID_JWKS_MAX_TRY];
    int n;
} eid_jwks_sel_t;

/*
 * Choose the keys for a token: with a `kid` (kid_len bytes, compared
 * exactly) the key carrying it, whatever its type (the caller checks the fit
 * so that the refusal can say why); without, up to EID_JWKS_MAX_TRY keys that
 * fit `alg`.  May fetch the set first (due refresh, or an unknown kid - see
 * the rules above); `p` holds scratch data of such a fetch.
 * Returns 0 with `sel` filled (release it!), or a code with `res` set:
 * EID03201 unknown kid, EID03206 no key fits alg, EID03207 no usable keys
 * (never fetched, or all older than max_stale: the provider is unavailable).
 * Thread-safe: the keys belong to an immutable snapshot that stays alive
 * until released, even if another thread swaps in a new set meanwhile.
 */
int eid_jwks_select(eid_jwks_t *ks, apr_pool_t *p, apr_time_t now, const char *kid,
                    apr_size_t kid_len, eid_jws_alg_e alg, eid_jwks_sel_t *sel,
                    eid_result_t *res);

/*
 * The set's generation: it moves on whenever a successful fetch drops a key
 * (withdrawn, or its kid now names other key material).  Read it BEFORE a
 * decision that uses the keys, and store it with the decision.  Thread-safe,
 * lock-free.
 */
apr_uint32_t eid_jwks_generation(eid_jwks_t *ks);

/*
 * Is a decision made under generation `gen` still backed by the set at `now`?
 * 1 when no key was dropped since and the set is not older than max_stale
 * (the rule eid_jwks_select() applies); else 0.  Thread-safe, lock-free: the
 * token cache calls it on every hit.
 */
int eid_jwks_current(eid_jwks_t *ks, apr_uint32_t gen, apr_time_t now);

/* Give back the snapshot held by `sel` (no-op when it holds none). */
void eid_jwks_release(eid_jwks_t *ks, eid_jwks_sel_t *sel);

typedef struct eid_jwks_stats {
    unsigned fetches;   /* attempts */
    unsigned failures;
    int keys;           /* keys in the current set (stale ones included) */
    apr_time_t fetched; /* last success; 0 never */
} eid_jwks_stats_t;

/* Counters for tests and status output.  Thread-safe. */
void eid_jwks_stats(eid_jwks_t *ks, eid_jwks_stats_t *st);

#endif
