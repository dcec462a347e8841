/*
 * eid_rev_crl.c - the CRL files of EidRevocation: loaded while the
 * configuration is read (so `apachectl -t` sees every mistake), looked up by
 * requests, and refreshed in the background: one thread per child looks at
 * each file every crl-refresh= seconds and, when it changed, reads, parses
 * and checks the new CRL (same issuing CA, its signature, not older than the
 * current one) and swaps it in.  A request thread never reads a file.
 *
 * Shared state (docs/architecture.md): each profile's CRL pointers are
 * guarded by its pthread_rwlock_t (requests: read lock for the look-up;
 * the refresher: write lock for the swap only).  A refreshed CRL lives in
 * its own pool, a child of APR's global pool, created and destroyed by the
 * refresher thread alone; the CRLs read at start-up live in pconf.
 */
#include "eid_rev_int.h"

#include "apr_strings.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"

#include <openssl/err.h>

#define CRL_FILE_MAX (64 * 1024 * 1024)

static struct {
    apr_thread_t *thread;
    apr_thread_mutex_t *mu; /* with cv: the refresher's sleep, and `stop` */
    apr_thread_cond_t *cv;
    int stop;
    apr_hash_t *registry; /* pconf, read-only */
    server_rec *s;
} refresher;

static apr_status_t rwlock_gone(void *data)
{
    pthread_rwlock_destroy(data);
    return APR_SUCCESS;
}

/* OpenSSL sorts a CRL's entries on its first look-up: done by the thread
 * that loads it, before any request can see it. */
static void presort(X509_CRL *crl)
{
    X509_REVOKED *rev;
    ASN1_INTEGER *zero = ASN1_INTEGER_new();
    if (zero)
        X509_CRL_get0_by_serial(crl, &rev, zero);
    ASN1_INTEGER_free(zero);
    ERR_clear_error();
}

static int signed_by(X509_CRL *crl, X509 *ca)
{
    int ok = X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0 &&
             X509_get0_pubkey(ca) && X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1;
    ERR_clear_error();
    return ok;
}

const char *eid_rev_crl_add(cmd_parms *cmd, rev_prof_t *rp, const char *file)
{
    const char *path = ap_server_root_relative(cmd->pool, file);
    eid_result_t res = {0};
    eid_rev_crl_t *c;
    apr_finfo_t fi;
    X509_CRL *crl;
    X509 *ca;
    int i;

    if (!path)
        return apr_psprintf(cmd->pool, "crl=: invalid path '%s'", file);
    if (rp->crls->nelts >= MAX_CRLS)
        return apr_psprintf(cmd->pool, "crl=: at most %d files", MAX_CRLS);
    if (eid_crl_load(cmd->pool, path, CRL_FILE_MAX, &crl, &res) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "crl=%s: %s (%s)", file, res.reason, res.tag);
    for (i = 0; (ca = eid_rev_profile_ca(rp->tp, i)) && !signed_by(crl, ca); i++)
        ;
    if (!ca)
        return apr_psprintf(cmd->pool, "crl=%s is not signed by an issuing CA of trust "
                            "profile '%s' (EidTrustIssuer lines before this one)", file,
                            rp->name);
    presort(crl);
    if (!rp->crls->nelts) {
        pthread_rwlock_init(&rp->crl_lock, NULL);
        apr_pool_cleanup_register(cmd->pool, &rp->crl_lock, rwlock_gone,
                                  apr_pool_cleanup_null);
    }
    c = apr_array_push(rp->crls);
    memset(c, 0, sizeof(*c));
    c->path = path;
    c->ca = ca;
    c->crl = crl;
    if (apr_stat(&fi, path, APR_FINFO_MTIME | APR_FINFO_SIZE, cmd->temp_pool) == APR_SUCCESS) {
        c->mtime = fi.mtime;
        c->size = fi.size;
    }
    return NULL;
}

const char *eid_rev_crl_coverage(apr_pool_t *p, const rev_prof_t *rp)
{
    X509 *ca;
    int i, j;

    if (rp->nmethods != 1 || rp->methods[0] != M_CRL)
        return NULL;
    for (i = 0; (ca = eid_rev_profile_ca(rp->tp, i)); i++) {
        int found = 0;
        for (j = 0; j < rp->crls->nelts && !found; j++)
            found = APR_ARRAY_IDX(rp->crls, j, eid_rev_crl_t).ca == ca;
        if (!found) {
            char *dn = X509_NAME_oneline(X509_get_subject_name(ca), NULL, 0);
            const char *msg = apr_psprintf(p, "method crl: no crl= file for issuing CA %s of "
                                           "the profile", dn ? dn : "?");
            OPENSSL_free(dn);
            return msg;
        }
    }
    return NULL;
}

apr_status_t eid_rev_crl_ask(apr_pool_t *p, rev_prof_t *rp, X509 *cert, X509 *issuer,
                             eid_rev_answer_t *a, eid_result_t *res)
{
    apr_status_t rv = APR_EGENERAL;
    int i, found = 0;

    if (!rp->crls->nelts)
        return eid_result_set(res, NULL, 5207, "EID05207",
                              "no CRL configured for this certificate's issuer"),
               APR_EGENERAL;
    pthread_rwlock_rdlock(&rp->crl_lock);
    for (i = 0; i < rp->crls->nelts && !found; i++) {
        X509_CRL *crl = APR_ARRAY_IDX(rp->crls, i, eid_rev_crl_t).crl;
        if (!X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer))) {
            found = 1;
            rv = eid_crl_check(p, crl, cert, issuer, 0, LEEWAY, a, res);
        }
    }
    pthread_rwlock_unlock(&rp->crl_lock);
    if (!found)
        eid_result_set(res, NULL, 5207, "EID05207",
                       "no CRL configured for this certificate's issuer");
    return rv;
}

/* ---- the refresher -------------------------------------------------------------- */

/* Look at one file; when it changed, read, check and swap it in.  Each change
 * is tried once: a bad file is logged once and the current CRL stays. */
static void refresh_one(rev_prof_t *rp, eid_rev_crl_t *c)
{
    server_rec *s = refresher.s;
    eid_result_t res = {0};
    apr_pool_t *np, *old_pool;
    apr_finfo_t fi;
    X509_CRL *crl;
    const char *why = NULL;
    apr_status_t rv;

    apr_pool_create(&np, NULL);
    if ((rv = apr_stat(&fi, c->path, APR_FINFO_MTIME | APR_FINFO_SIZE, np)) != APR_SUCCESS) {
        /* Logged once until it can be looked at again (e.g. not readable by
         * the user the children run as). */
        if (!c->stat_failed)
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                         "EID05211: trust profile %s: CRL file %s not taken: it cannot be "
                         "looked at; the CRL in use stays", rp->name, c->path);
        c->stat_failed = 1;
        apr_pool_destroy(np);
        return;
    }
    c->stat_failed = 0;
    if (fi.mtime == c->mtime && fi.size == c->size) {
        apr_pool_destroy(np);
        return;
    }
    c->mtime = fi.mtime;
    c->size = fi.size;
    if (eid_crl_load(np, c->path, CRL_FILE_MAX, &crl, &res) != APR_SUCCESS)
        why = apr_psprintf(np, "%s (%s)", res.reason, res.tag);
    else if (!signed_by(crl, c->ca))
        why = "not signed by the issuing CA of the CRL it replaces";
    /* Why never an older one: a CRL copied back from a backup (or replayed)
     * would bring back certificates revoked since. */
    else if (ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl),
                               X509_CRL_get0_lastUpdate(c->crl)) < 0)
        why = "older (lastUpdate) than the CRL in use";
    if (why) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "EID05211: trust profile %s: CRL file %s not taken: %s; the CRL in use "
                     "stays", rp->name, c->path, why);
        apr_pool_destroy(np);
        return;
    }
    presort(crl);
    pthread_rwlock_wrlock(&rp->crl_lock);
    old_pool = c->pool;
    c->crl = crl;
    c->pool = np;
    pthread_rwlock_unlock(&rp->crl_lock);
    /* No reader can hold the old CRL now: each held the read lock. */
    if (old_pool)
        apr_pool_destroy(old_pool);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 "EID05210: trust profile %s: CRL file %s read again", rp->name, c->path);
}

static void *APR_THREAD_FUNC refresh_main(apr_thread_t *t, void *data)
{
    apr_interval_time_t nap = apr_time_from_sec(86400);
    apr_hash_index_t *hi;
    apr_pool_t *tmp;

    apr_pool_create(&tmp, NULL); /* this thread's own: iteration state */
    for (hi = apr_hash_first(tmp, refresher.registry); hi; hi = apr_hash_next(hi)) {
        const rev_prof_t *rp = apr_hash_this_val(hi);
        if (rp->crls->nelts && rp->crl_refresh < nap)
            nap = rp->crl_refresh;
    }
    apr_thread_mutex_lock(refresher.mu);
    while (!refresher.stop) {
        apr_thread_cond_timedwait(refresher.cv, refresher.mu, nap);
        if (refresher.stop)
            break;
        apr_thread_mutex_unlock(refresher.mu);
        for (hi = apr_hash_first(tmp, refresher.registry); hi; hi = apr_hash_next(hi)) {
            rev_prof_t *rp = apr_hash_this_val(hi);
            apr_time_t now = apr_time_now();
            int i;
            if (!rp->crls->nelts || now < rp->crl_next)
                continue;
            rp->crl_next = now + rp->crl_refresh;
            for (i = 0; i < rp->crls->nelts; i++)
                refresh_one(rp, &APR_ARRAY_IDX(rp->crls, i, eid_rev_crl_t));
        }
        apr_pool_clear(tmp);
        apr_thread_mutex_lock(refresher.mu);
    }
    apr_thread_mutex_unlock(refresher.mu);
    apr_pool_destroy(tmp);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* pchild's cleanup: stop and join the thread, then free the refreshed CRLs
 * (no request runs any more). */
static apr_status_t refresher_stop(void *data)
{
    apr_hash_index_t *hi;
    apr_status_t trv;
    apr_pool_t *tmp;

    (void)data;
    apr_thread_mutex_lock(refresher.mu);
    refresher.stop = 1;
    apr_thread_cond_signal(refresher.cv);
    apr_thread_mutex_unlock(refresher.mu);
    apr_thread_join(&trv, refresher.thread);
    apr_pool_create(&tmp, NULL);
    for (hi = apr_hash_first(tmp, refresher.registry); hi; hi = apr_hash_next(hi)) {
        rev_prof_t *rp = apr_hash_this_val(hi);
        int i;
        for (i = 0; i < rp->crls->nelts; i++) {
            eid_rev_crl_t *c = &APR_ARRAY_IDX(rp->crls, i, eid_rev_crl_t);
            if (c->pool) {
                c->crl = NULL;
                apr_pool_destroy(c->pool);
                c->pool = NULL;
            }
        }
    }
    apr_pool_destroy(tmp);
    return APR_SUCCESS;
}

void eid_rev_crl_child_init(apr_pool_t *pchild, server_rec *s, apr_hash_t *registry)
{
    apr_hash_index_t *hi;
    apr_threadattr_t *ta;
    int any = 0;

    memset(&refresher, 0, sizeof(refresher));
    for (hi = registry ? apr_hash_first(pchild, registry) : NULL; hi; hi = apr_hash_next(hi))
        any |= ((const rev_prof_t *)apr_hash_this_val(hi))->crls->nelts > 0;
    if (!any)
        return;
    refresher.registry = registry;
    refresher.s = s;
    if (apr_thread_mutex_create(&refresher.mu, APR_THREAD_MUTEX_DEFAULT, pchild) ||
        apr_thread_cond_create(&refresher.cv, pchild) || apr_threadattr_create(&ta, pchild) ||
        apr_thread_create(&refresher.thread, ta, refresh_main, NULL, pchild)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "EID05212: the CRL refresh thread cannot be started: CRL files are "
                     "read again only at a restart");
        return;
    }
    /* A pre-cleanup: it must join the thread before pchild destroys the
     * thread's pool (a sub-pool) and the mutex. */
    apr_pool_pre_cleanup_register(pchild, NULL, refresher_stop);
}
