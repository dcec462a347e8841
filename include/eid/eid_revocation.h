/*
 * eid_revocation.h - is a certificate revoked?  OCSP (RFC 6960) over the
 * bounded HTTP client, CRLs from a file or a buffer, and a per-process cache
 * of the answers keyed by content (issuer key hash + serial).
 *
 * A check either yields a verified answer (good / revoked / unknown, with its
 * source and lifetime) and returns APR_SUCCESS, or fails with a tagged result
 * (EID05xxx, docs/errors.md): a responder that is down, slow or answers
 * something unverifiable is class UNAVAILABLE (the trust profile's fail mode
 * decides), a missing responder URL or an unreadable CRL file is
 * MISCONFIGURED.  eid_rev_judge() turns an answer into a verdict (revoked and
 * unknown are INVALID).  No state except the cache; every function is
 * thread-safe.
 */
#ifndef EID_REVOCATION_H
#define EID_REVOCATION_H

#include <apr_pools.h>
#include <apr_time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "eid/eid_http.h"
#include "eid/eid_result.h"

typedef enum { EID_REV_GOOD = 0, EID_REV_REVOKED, EID_REV_UNKNOWN } eid_rev_status_e;
typedef enum { EID_REV_SRC_NONE = 0, EID_REV_SRC_OCSP, EID_REV_SRC_CRL } eid_rev_source_e;

typedef struct eid_rev_answer {
    eid_rev_status_e status;
    eid_rev_source_e source;
    int reason;              /* CRL reason code (RFC 5280 5.3.1) when revoked, else -1 */
    apr_time_t revoked_at;   /* when revoked, else 0 */
    apr_time_t this_update;  /* of the response / CRL */
    apr_time_t next_update;  /* 0: the source gave none */
    apr_time_t fetched;      /* when this process checked it (a cached answer's age) */
} eid_rev_answer_t;

typedef struct eid_ocsp_opts {
    const char *url;           /* responder; NULL: the certificate's AIA (first OCSP URI) */
    const EVP_MD *md;          /* certId hash; NULL: SHA-1 (what most responders index) */
    int nonce;                 /* send a nonce; a responder that echoes one must echo ours */
    apr_interval_time_t leeway; /* clock skew allowed on thisUpdate / nextUpdate */
    apr_time_t now;            /* 0: apr_time_now() (tests pass another time) */
    eid_http_opts_t http;      /* timeout, size cap, CA file for https */
} eid_ocsp_opts_t;

/* Defaults: AIA URL, SHA-1 certId, nonce on, 5 min leeway, the HTTP defaults
 * with a 64 KiB cap. */
void eid_ocsp_opts_default(eid_ocsp_opts_t *o);

/* Verdict for an answer: 0 when good; EID05001 (revoked) or EID05002
 * (unknown to the issuer), both INVALID, with a reason in `p`. */
int eid_rev_judge(apr_pool_t *p, const eid_rev_answer_t *a, eid_result_t *res);

/* The first http(s) OCSP URI of `cert`'s authorityInfoAccess, in `p`; NULL
 * when there is none. */
const char *eid_ocsp_aia_url(apr_pool_t *p, X509 *cert);

/* An OCSP request for one certificate; its memory goes with the pool. */
typedef struct eid_ocsp_req eid_ocsp_req_t;

/* Build the request for `cert` issued by `issuer` (certId with o->md, a
 * 16-byte nonce if o->nonce).  EID05102 when OpenSSL fails. */
apr_status_t eid_ocsp_req_make(apr_pool_t *p, X509 *cert, X509 *issuer, const eid_ocsp_opts_t *o,
                               eid_ocsp_req_t **out, eid_result_t *res);

/* The request's DER encoding (valid as long as the pool). */
const unsigned char *eid_ocsp_req_der(const eid_ocsp_req_t *r, apr_size_t *len);

/*
 * Check a DER OCSP response (`der`, `len`) to request `r`: response status
 * successful, a basic response signed by the issuer or by a responder
 * certificate the issuer issued with the id-kp-OCSPSigning EKU, a single
 * response for exactly r's certId, thisUpdate not in the future and
 * nextUpdate not in the past (o->leeway each way; without a nextUpdate,
 * thisUpdate no older than o->leeway), our nonce echoed when the
 * responder echoes one.  Fills `out` (source OCSP) on success.
 */
apr_status_t eid_ocsp_resp_check(apr_pool_t *p, const eid_ocsp_req_t *r, const unsigned char *der,
                                 apr_size_t len, const eid_ocsp_opts_t *o, eid_rev_answer_t *out,
                                 eid_result_t *res);

/* The whole OCSP check: request, POST to o->url or the AIA responder, check.
 * Blocking, bounded by o->http.timeout. */
apr_status_t eid_ocsp_check(apr_pool_t *p, X509 *cert, X509 *issuer, const eid_ocsp_opts_t *o,
                            eid_rev_answer_t *out, eid_result_t *res);

/* eid_ocsp_check() that also hands back the checked response's DER (in p,
 * for sharing through a store): *der / *der_len are set on APR_SUCCESS only
 * (else NULL / 0).  der and der_len may both be NULL. */
apr_status_t eid_ocsp_fetch(apr_pool_t *p, X509 *cert, X509 *issuer, const eid_ocsp_opts_t *o,
                            eid_rev_answer_t *out, const unsigned char **der, apr_size_t *der_len,
                            eid_result_t *res);

/*
 * Check again a DER OCSP response that was fetched elsewhere (read from a
 * shared store, which others may write): exactly the checks of
 * eid_ocsp_resp_check() for `cert` under `issuer` (o->md's certId, signer,
 * thisUpdate / nextUpdate at o->now with o->leeway) except the nonce, which
 * is another process's.  Fills `out` (fetched = now) on success; any
 * failure is the tagged result of that check (EID05105..EID05109).
 */
apr_status_t eid_ocsp_recheck(apr_pool_t *p, X509 *cert, X509 *issuer, const unsigned char *der,
                              apr_size_t len, const eid_ocsp_opts_t *o, eid_rev_answer_t *out,
                              eid_result_t *res);

/* Parse a CRL (PEM or DER) from `buf`; the X509_CRL is freed with the pool.
 * EID05202 when it is neither. */
apr_status_t eid_crl_parse(apr_pool_t *p, const char *buf, apr_size_t len, X509_CRL **out,
                           eid_result_t *res);

/* Read and parse the CRL file `path` (at most `max` bytes; regular files
 * only).  EID05201 (misconfigured) when it cannot be read. */
apr_status_t eid_crl_load(apr_pool_t *p, const char *path, apr_size_t max, X509_CRL **out,
                          eid_result_t *res);

/*
 * Look `cert` up in `crl`, which must be `issuer`'s: issuer name equal,
 * signature by the issuer's key (EID05203), nextUpdate present and not
 * before now - leeway (EID05204, "stale"), not a delta CRL (EID05206).
 * `now` 0: apr_time_now().
 * Fills `out` (source CRL; status good or revoked with reason and date).
 */
apr_status_t eid_crl_check(apr_pool_t *p, X509_CRL *crl, X509 *cert, X509 *issuer,
                           apr_time_t now, apr_interval_time_t leeway, eid_rev_answer_t *out,
                           eid_result_t *res);

/* ---- issuers of a trust profile (for the glue) ---------------------------- */

struct eid_trust_profile;

/* The i-th issuing CA (0-based, definition order) of trust profile `tp`, or
 * NULL past the end.  Owned by the profile (read-only, any thread). */
X509 *eid_rev_profile_ca(const struct eid_trust_profile *tp, int i);

/* The issuing CA of `cert` among `tp`'s CAs by the rules eid_cert_identify()
 * applies (issuer name, key identifier, signature), or NULL.  Owned by the
 * profile. */
X509 *eid_rev_profile_issuer(const struct eid_trust_profile *tp, X509 *cert);

/* ---- the cache ------------------------------------------------------------ */

#define EID_REV_KEY_LEN 32

/* The cache key of `cert` under `issuer`: SHA-256 over the SHA-256 of the
 * issuer's public key and the serial's content octets.  0 on success. */
int eid_rev_key(X509 *cert, X509 *issuer, unsigned char key[EID_REV_KEY_LEN]);

/* The same key from its parts (an issuer key hash of 32 bytes). */
void eid_rev_key_raw(const unsigned char issuer_key_hash[32], const unsigned char *serial,
                     apr_size_t serial_len, unsigned char key[EID_REV_KEY_LEN]);

typedef struct eid_revcache eid_revcache_t;

/* A cache of at most about `max_entries` answers, kept no longer than
 * `max_ttl` and never past an answer's nextUpdate.  Its memory is malloc'd
 * and freed by a cleanup of `p` (when no thread uses it any more).  NULL on
 * allocation failure. */
eid_revcache_t *eid_revcache_create(apr_pool_t *p, apr_size_t max_entries,
                                    apr_interval_time_t max_ttl);

/* Copy the unexpired answer stored under `key` to `out`: 1 hit, 0 miss. */
int eid_revcache_get(eid_revcache_t *c, const unsigned char key[EID_REV_KEY_LEN], apr_time_t now,
                     eid_rev_answer_t *out);

/* Store `a` under `key` until min(now + max_ttl, a->next_update); an answer
 * already past its nextUpdate is not stored. */
void eid_revcache_put(eid_revcache_t *c, const unsigned char key[EID_REV_KEY_LEN],
                      const eid_rev_answer_t *a, apr_time_t now);

#endif
