/*
 * eid_rev_int.h - what eid_rev_glue.c (EidRevocation, the check) and
 * eid_rev_crl.c (CRL files: loading, look-up, refresh in the background)
 * share.  Internal to the glue.
 */
#ifndef EID_REV_INT_H
#define EID_REV_INT_H

#include "eid_rev_glue.h"

#include "eid/eid_revocation.h"
#include "eid/eid_store.h"

#include <pthread.h>
#include <stdatomic.h>

#define M_OCSP 1
#define M_CRL 2
#define MAX_CRLS 8
#define LEEWAY apr_time_from_sec(300)

/* One crl= file or URL.  `crl`, `pool` and `ca` are replaced by the
 * refresher thread under the profile's crl_lock (write) and `crl` is read by
 * requests under it (read); `mtime`/`size`/`fetch_failed` are the
 * refresher's own. */
typedef struct eid_rev_crl {
    const char *path;   /* the file, or the URL (for log lines) */
    const char *url;    /* crl=http(s)://... or crl-url=: fetched; NULL: a file */
    X509 *ca;           /* the profile's CA that signed it (pconf); NULL: a URL not
                           fetched yet */
    X509_CRL *crl;      /* NULL: a URL not fetched yet */
    int fetch_failed;   /* a URL's last fetch failed (logged once per outage) */
    apr_pool_t *pool;   /* owns a refreshed crl (child of the global pool); NULL: pconf's */
    apr_time_t mtime;
    apr_off_t size;
    int stat_failed;    /* the last look failed (logged once) */
} eid_rev_crl_t;

typedef struct rev_prof {
    const char *name;
    const eid_trust_profile_t *tp;
    int methods[2], nmethods;     /* 0: off */
    const char *responder;        /* NULL: the certificate's AIA */
    apr_array_header_t *crls;     /* eid_rev_crl_t, in pconf */
    pthread_rwlock_t crl_lock;    /* guards every crls[i].crl / .pool */
    apr_interval_time_t crl_refresh; /* how often the files are looked at */
    apr_size_t crl_max;           /* size cap of a CRL fetched by URL */
    apr_time_t crl_next;          /* the refresher's own */
    int grace_on;
    apr_interval_time_t grace, timeout, max_age;
    int cache_entries, inflight_max, nonce;
    const char *file;    /* of the EidRevocation line, for check_config */
    int line;
    atomic_int inflight; /* OCSP fetches in flight in this process */
    atomic_int down[2];  /* per method (methods[i]): 1 from its first failure to its
                            next answer (one log line per outage) */
} rev_prof_t;

/* crl=FILE: load it (pconf), find the profile's CA that signed it; NULL or
 * why not.  crl=http(s)://... (or crl-url=, url_only): a URL, fetched by
 * the refresher only (never here: the children fetch it). */
const char *eid_rev_crl_add(cmd_parms *cmd, rev_prof_t *rp, const char *file, int url_only);

/* With `crl` alone, every issuing CA of the profile must have a CRL: NULL
 * or why not. */
const char *eid_rev_crl_coverage(apr_pool_t *p, const rev_prof_t *rp);

/* The answer of the profile's CRL of `issuer` for `cert` (eid_crl_check),
 * or EID05207 when none is configured.  Any thread. */
apr_status_t eid_rev_crl_ask(apr_pool_t *p, rev_prof_t *rp, X509 *cert, X509 *issuer,
                             eid_rev_answer_t *a, eid_result_t *res);

/* child_init: start the refresher thread when a profile has crl= files
 * (stopped and joined by a cleanup of pchild). */
void eid_rev_crl_child_init(apr_pool_t *pchild, server_rec *s, apr_hash_t *registry);

/* ---- eid_rev_share.c: OCSP answers shared through the session store ---- */

/* The configured session store (EidSessionStore), or NULL: no sharing. */
eid_store_t *eid_rev_share_store(void);

/* The shared answer of `cert` (key `key`), checked again in full for this
 * certificate and issuer: 1 with `a` filled (fetched = when it was fetched,
 * never after now), 0 for a miss - none, too old for the profile's max-age,
 * a store error or a value that fails its check (each logged once per
 * outage).  Any thread. */
int eid_rev_share_get(request_rec *r, apr_pool_t *p, const rev_prof_t *rp, X509 *cert,
                      X509 *issuer, const unsigned char key[EID_REV_KEY_LEN], apr_time_t now,
                      eid_rev_answer_t *a);

/* Share the checked OCSP response `der` whose answer is `a`, for
 * min(max-age, nextUpdate - now).  Errors are logged once per outage and
 * otherwise ignored.  Any thread. */
void eid_rev_share_put(request_rec *r, apr_pool_t *p, const rev_prof_t *rp,
                       const unsigned char key[EID_REV_KEY_LEN], const unsigned char *der,
                       apr_size_t len, const eid_rev_answer_t *a, apr_time_t now);

#endif
