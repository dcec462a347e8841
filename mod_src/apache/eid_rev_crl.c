/*
 * eid_rev_crl.c - the CRL files of EidRevocation: loaded while the
 * configuration is read (so `apachectl -t` sees every mistake), looked up by
 * requests, and refreshed in the background: one thread per child looks at
 * each file every crl-refresh= seconds and, when it changed, reads, parses
 * and checks the new CRL (same issuing CA, its signature, not older than the
 * current one) and swaps it in.  A request thread never reads a file.
 * CRLs by URL (crl=http(s)://..., crl-url=) are fetched by the same thread
 * (never at start-up in the parent, never by a request) with the bounded
 * HTTP client: at its start, then every crl-refresh= seconds; until the
 * first fetch succeeds, the profile has no CRL for that CA (EID05213: the
 * fail mode applies); a failed fetch keeps the CRL in use (until it is
 * stale) and is logged once per outage (EID05214).
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
/* A CRL fetch: bounded so that a stuck server delays the child's exit (the
 * thread is joined) by at most this. */
#define CRL_FETCH_TIMEOUT apr_time_from_sec(15)
#define CRL_FETCH_CONNECT apr_time_from_sec(3)

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

static void lock_init(cmd_parms *cmd, rev_prof_t *rp)
{
    if (!rp->crls->nelts) {
        pthread_rwlock_init(&rp->crl_lock, NULL);
        apr_pool_cleanup_register(cmd->pool, &rp->crl_lock, rwlock_gone,
                                  apr_pool_cleanup_null);
    }
}

static int is_url(const char *v)
{
    return !strncasecmp(v, "http://", 7) || !strncasecmp(v, "https://", 8);
}

const char *eid_rev_crl_add(cmd_parms *cmd, rev_prof_t *rp, const char *file, int url_only)
{
    const char *path;
    eid_result_t res = {0};
    eid_rev_crl_t *c;
    apr_finfo_t fi;
    X509_CRL *crl;
    X509 *ca;
    int i;

    if (rp->crls->nelts >= MAX_CRLS)
        return apr_psprintf(cmd->pool, "crl=: at most %d files or URLs", MAX_CRLS);
    if (url_only || is_url(file)) {
        /* Why plain http is allowed: a CRL is signed, and checked against
         * the profile's CA before it is used (as OCSP answers are). */
        const char *why = eid_http_ocsp_url_check(file);
        if (why)
            return apr_psprintf(cmd->pool, "%s=%s: %s", url_only ? "crl-url" : "crl", file,
                                why);
        lock_init(cmd, rp);
        c = apr_array_push(rp->crls);
        memset(c, 0, sizeof(*c));
        c->path = c->url = apr_pstrdup(cmd->pool, file);
        return NULL;
    }
    if (!(path = ap_server_root_relative(cmd->pool, file)))
        return apr_psprintf(cmd->pool, "crl=: invalid path '%s'", file);
    if (eid_crl_load(cmd->pool, path, CRL_FILE_MAX, &crl, &res) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "crl=%s: %s (%s)", file, res.reason, res.tag);
    for (i = 0; (ca = eid_rev_profile_ca(rp->tp, i)) && !signed_by(crl, ca); i++)
        ;
    if (!ca)
        return apr_psprintf(cmd->pool, "crl=%s is not signed by an issuing CA of trust "
                            "profile '%s' (EidTrustIssuer lines before this one)", file,
                            rp->name);
    presort(crl);
    lock_init(cmd, rp);
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
    /* A URL's CRL is matched to its CA when it is fetched (in the children):
     * it may be any CA's. */
    for (j = 0; j < rp->crls->nelts; j++)
        if (APR_ARRAY_IDX(rp->crls, j, eid_rev_crl_t).url)
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
    int i, found = 0, pending = 0;

    if (!rp->crls->nelts)
        return eid_result_set(res, NULL, 5207, "EID05207",
                              "no CRL configured for this certificate's issuer"),
               APR_EGENERAL;
    pthread_rwlock_rdlock(&rp->crl_lock);
    for (i = 0; i < rp->crls->nelts && !found; i++) {
        X509_CRL *crl = APR_ARRAY_IDX(rp->crls, i, eid_rev_crl_t).crl;
        if (!crl) {
            pending = 1; /* a URL not fetched yet: it may be this issuer's */
            continue;
        }
        if (!X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer))) {
            found = 1;
            rv = eid_crl_check(p, crl, cert, issuer, 0, LEEWAY, a, res);
        }
    }
    pthread_rwlock_unlock(&rp->crl_lock);
    if (!found && pending)
        eid_result_set(res, NULL, 5213, "EID05213",
                       "no CRL of this certificate's issuer yet: a CRL URL of the profile "
                       "has not been fetched");
    else if (!found)
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

/* Fetch one CRL URL; when its CRL is new, check it and swap it in.  A
 * failure keeps the CRL in use; logged once per outage of that URL. */
static void fetch_one(rev_prof_t *rp, eid_rev_crl_t *c)
{
    server_rec *s = refresher.s;
    eid_result_t res = {0};
    eid_http_opts_t o;
    eid_http_resp_t hr;
    apr_pool_t *np, *old_pool;
    X509_CRL *crl = NULL;
    X509 *ca = NULL;
    const char *why = NULL;
    int i;

    apr_pool_create(&np, NULL);
    eid_http_opts_default(&o);
    o.timeout = CRL_FETCH_TIMEOUT;
    o.connect_timeout = CRL_FETCH_CONNECT;
    o.max_bytes = rp->crl_max; /* the transfer is aborted beyond it */
    if (eid_http_get_signed(np, c->url, &o, &hr, &res) != APR_SUCCESS)
        why = apr_psprintf(np, "%s (%s)", res.reason, res.tag);
    else if (hr.status != 200)
        why = apr_psprintf(np, "HTTP status %ld", hr.status);
    else if (eid_crl_parse(np, hr.body, hr.len, &crl, &res) != APR_SUCCESS)
        why = apr_psprintf(np, "%s (%s)", res.reason, res.tag);
    else if (c->ca)
        ca = signed_by(crl, c->ca) ? c->ca : NULL;
    else
        for (i = 0; (ca = eid_rev_profile_ca(rp->tp, i)) && !signed_by(crl, ca); i++)
            ;
    if (!why && !ca)
        why = c->ca ? "not signed by the issuing CA of the CRL it replaces"
                    : "not signed by an issuing CA of the profile";
    else if (!why && c->crl &&
             ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl),
                               X509_CRL_get0_lastUpdate(c->crl)) < 0)
        /* Why never an older one: a replayed CRL would bring back
         * certificates revoked since. */
        why = "older (lastUpdate) than the CRL in use";
    if (why) {
        ap_log_error(APLOG_MARK, c->fetch_failed ? APLOG_DEBUG : APLOG_ERR, 0, s,
                     "EID05214: trust profile %s: CRL from %s not taken: %s; %s (logged once "
                     "until a fetch succeeds)", rp->name, c->url, why,
                     c->crl ? "the CRL in use stays until its nextUpdate"
                            : "no CRL from it yet: the fail mode applies");
        c->fetch_failed = 1;
        apr_pool_destroy(np);
        return;
    }
    if (c->fetch_failed)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "EID05215: trust profile %s: CRL from %s fetched again", rp->name, c->url);
    c->fetch_failed = 0;
    if (c->crl && !ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl),
                                     X509_CRL_get0_lastUpdate(c->crl))) {
        apr_pool_destroy(np); /* the same CRL again */
        return;
    }
    presort(crl);
    pthread_rwlock_wrlock(&rp->crl_lock);
    old_pool = c->pool;
    c->crl = crl;
    c->ca = ca;
    c->pool = np;
    pthread_rwlock_unlock(&rp->crl_lock);
    if (old_pool)
        apr_pool_destroy(old_pool);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 "EID05210: trust profile %s: CRL from %s taken", rp->name, c->url);
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
    /* The first pass at once: CRL URLs are fetched when the child starts. */
    while (!refresher.stop) {
        apr_thread_mutex_unlock(refresher.mu);
        for (hi = apr_hash_first(tmp, refresher.registry); hi; hi = apr_hash_next(hi)) {
            rev_prof_t *rp = apr_hash_this_val(hi);
            apr_time_t now = apr_time_now();
            int i;
            if (!rp->crls->nelts || now < rp->crl_next)
                continue;
            rp->crl_next = now + rp->crl_refresh;
            for (i = 0; i < rp->crls->nelts; i++) {
                eid_rev_crl_t *c = &APR_ARRAY_IDX(rp->crls, i, eid_rev_crl_t);
                if (c->url)
                    fetch_one(rp, c);
                else
                    refresh_one(rp, c);
            }
        }
        apr_pool_clear(tmp);
        apr_thread_mutex_lock(refresher.mu);
        if (!refresher.stop)
            apr_thread_cond_timedwait(refresher.cv, refresher.mu, nap);
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
