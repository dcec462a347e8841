/*
 * eid_rev_glue.c - revocation checking of client certificates in httpd
 * (docs/revocation.md).
 *
 * EidRevocation configures it per trust profile, at server level, after the
 * profile's EidTrustIssuer lines; everything is checked while the
 * configuration is read (CRL files loaded and matched to the profile's CAs).
 * The certificate method calls eid_rev_check() once its own verdict is OK;
 * the result is kept with that verdict on the connection until the answer's
 * age (max-age) or nextUpdate, whichever comes first.
 *
 * Shared state (docs/architecture.md, "Shared state and threads"):
 * - the profile registry and each profile's settings: built while the
 *   configuration is read, in pconf, read-only afterwards; except
 * - per profile, C11 atomics: OCSP fetches in flight (the bound) and, per
 *   source, the "down" flag (one log line per outage); and its CRLs, which
 *   eid_rev_crl.c replaces under the profile's rwlock;
 * - process-wide: two answer caches (eid_revcache: a mutex per shard),
 *   created in child_init from pchild before any thread runs: `answers`
 *   (fresh OCSP answers, until max-age / nextUpdate) and `goods` (the last
 *   good answer per certificate, kept for the longest grace period); the
 *   single-flight table (`flight`, one mutex); all OCSP fetches in flight
 *   (`all_inflight`, atomic);
 * - OCSP answers shared through the session store: eid_rev_share.c.
 */
#include "eid_rev_glue.h"

#include "apr_strings.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"
#include "ap_mpm.h"
#include "http_ssl.h"

#include "eid/eid_revocation.h"
#include "eid/eid_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "eid_rev_int.h"

/* While a grace admission lasts, the source is asked again this often. */
#define GRACE_RETRY apr_time_from_sec(30)

/* Single flight: one fetch per certificate at a time in this process; the
 * other threads that want the same answer wait for it (bounded) instead of
 * asking the source too.  Created in child_init; `keys`/`used`/`waiters`
 * guarded by `mu`. */
#define FLIGHT_SLOTS 64
#define FLIGHT_WAITERS 64
#define FLIGHT_NONE -1 /* no slot free: fetch without one */
#define FLIGHT_DONE -2 /* the other fetch ended: look in the cache again */
#define FLIGHT_BUSY -3 /* waited too long, or too many waiting */
static struct {
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cv;
    unsigned char keys[FLIGHT_SLOTS][EID_REV_KEY_LEN];
    int used[FLIGHT_SLOTS];
    int waiters;
} flight;

/* name -> rev_prof_t *, in pconf; NULLed by a cleanup of pconf. */
static apr_hash_t *registry;
/* Written in child_init only (before threads), read-only after. */
static eid_revcache_t *answers, *goods;
/* OCSP fetches in flight in this process, all profiles together, and the
 * bound (half the child's threads), set in child_init before threads run:
 * per-profile bounds add up. */
static atomic_int all_inflight;
static int all_limit = 1 << 30;

static apr_status_t registry_gone(void *data)
{
    (void)data;
    registry = NULL;
    return APR_SUCCESS;
}

static const char *seconds(apr_pool_t *p, const char *key, const char *v, apr_int64_t min,
                           apr_int64_t max, apr_interval_time_t *out)
{
    apr_int64_t n;
    if (eid_uint_parse(v, min, max, &n) != 0)
        return apr_psprintf(p, "%s= wants whole seconds from %" APR_INT64_T_FMT
                            " to %" APR_INT64_T_FMT ", not '%s'", key, min, max, v);
    *out = apr_time_from_sec(n);
    return NULL;
}

static const char *count(apr_pool_t *p, const char *key, const char *v, apr_int64_t min,
                         apr_int64_t max, int *out)
{
    apr_int64_t n;
    if (eid_uint_parse(v, min, max, &n) != 0)
        return apr_psprintf(p, "%s= wants a number from %" APR_INT64_T_FMT " to %"
                            APR_INT64_T_FMT ", not '%s'", key, min, max, v);
    *out = (int)n;
    return NULL;
}

static const char *parse_methods(apr_pool_t *p, const char *v, rev_prof_t *rp)
{
    char *list = apr_pstrdup(p, v), *last, *w;
    for (w = apr_strtok(list, ",", &last); w; w = apr_strtok(NULL, ",", &last)) {
        int m = !strcasecmp(w, "ocsp") ? M_OCSP : !strcasecmp(w, "crl") ? M_CRL : 0;
        if (!m || rp->nmethods == 2 || (rp->nmethods == 1 && rp->methods[0] == m))
            return apr_psprintf(p, "'%s' is not a method list (off, ocsp, crl, ocsp,crl or "
                                "crl,ocsp)", v);
        rp->methods[rp->nmethods++] = m;
    }
    return rp->nmethods ? NULL : "empty method list";
}

static int has_method(const rev_prof_t *rp, int m)
{
    return rp->methods[0] == m || rp->methods[1] == m;
}

static const char *parse_option(cmd_parms *cmd, rev_prof_t *rp, const char *a, int *fail_set)
{
    apr_pool_t *p = cmd->pool;
    const char *eq = strchr(a, '='), *v = eq ? eq + 1 : NULL;
    char *key = eq ? apr_pstrmemdup(p, a, (apr_size_t)(eq - a)) : NULL;

    if (!key)
        return apr_psprintf(p, "'%s': options are key=value", a);
    if (!strcasecmp(key, "responder")) {
        const char *why = eid_http_ocsp_url_check(v);
        if (why)
            return apr_psprintf(p, "responder=%s: %s", v, why);
        rp->responder = apr_pstrdup(p, v);
        return NULL;
    }
    if (!strcasecmp(key, "crl") || !strcasecmp(key, "crl-url"))
        return eid_rev_crl_add(cmd, rp, v, !strcasecmp(key, "crl-url"));
    if (!strcasecmp(key, "crl-max")) {
        apr_int64_t n;
        if (eid_uint_parse(v, 1024, 256 * 1024 * 1024, &n) != 0)
            return apr_psprintf(p, "crl-max= wants bytes from 1024 to 268435456, not '%s'", v);
        rp->crl_max = (apr_size_t)n;
        return NULL;
    }
    if (!strcasecmp(key, "crl-refresh"))
        return seconds(p, key, v, 1, 86400, &rp->crl_refresh);
    if (!strcasecmp(key, "fail")) {
        if (*fail_set)
            return "fail= given twice";
        *fail_set = 1;
        if (!strcasecmp(v, "closed"))
            rp->grace_on = 0;
        else if (!strcasecmp(v, "grace"))
            rp->grace_on = 1;
        else
            return apr_psprintf(p, "fail=%s: use closed or grace", v);
        return NULL;
    }
    if (!strcasecmp(key, "grace"))
        return seconds(p, key, v, 1, 7 * 86400, &rp->grace);
    if (!strcasecmp(key, "timeout"))
        return seconds(p, key, v, 1, 30, &rp->timeout);
    if (!strcasecmp(key, "max-age"))
        return seconds(p, key, v, 1, 86400, &rp->max_age);
    if (!strcasecmp(key, "cache"))
        return count(p, key, v, 64, 1000000, &rp->cache_entries);
    if (!strcasecmp(key, "inflight"))
        return count(p, key, v, 1, 256, &rp->inflight_max);
    if (!strcasecmp(key, "nonce")) {
        if (strcasecmp(v, "on") && strcasecmp(v, "off"))
            return apr_psprintf(p, "nonce=%s: use on or off", v);
        rp->nonce = !strcasecmp(v, "on");
        return NULL;
    }
    return apr_psprintf(p, "unknown option '%s' (responder=, crl=, crl-url=, crl-refresh=, "
                        "crl-max=, fail=, grace=, timeout=, max-age=, cache=, inflight=, "
                        "nonce=)", key);
}

/* The combinations that cannot do what the line says are refused here. */
static const char *check_combination(apr_pool_t *p, rev_prof_t *rp)
{
    if (!rp->nmethods)
        return NULL;
    if (rp->responder && !has_method(rp, M_OCSP))
        return "responder= without the ocsp method";
    if (rp->crls->nelts && !has_method(rp, M_CRL))
        return "crl= without the crl method";
    if (has_method(rp, M_CRL) && !rp->crls->nelts)
        return "the crl method needs crl=FILE or crl=URL (the issuing CA's CRL)";
    if (rp->grace_on && !rp->grace)
        return "fail=grace needs grace=SECONDS (how long a good answer may be used "
               "while the source is down)";
    if (!rp->grace_on && rp->grace)
        return "grace= needs fail=grace (the default, fail=closed, refuses while the "
               "source is down)";
    return eid_rev_crl_coverage(p, rp);
}

/* check_config: an EidTrustIssuer line after the profile's EidRevocation may
 * have added a CA that `crl` alone cannot check. */
int eid_rev_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    apr_hash_index_t *hi;

    for (hi = registry ? apr_hash_first(ptemp, registry) : NULL; hi; hi = apr_hash_next(hi)) {
        const rev_prof_t *rp = apr_hash_this_val(hi);
        const char *err = eid_rev_crl_coverage(ptemp, rp);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         "Syntax error on line %d of %s: EidRevocation %s: %s (an "
                         "EidTrustIssuer line for the profile after this one)",
                         rp->line, rp->file, rp->name, err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* EidRevocation <profile> [off|ocsp|crl|ocsp,crl|crl,ocsp] [key=value]... */
const char *eid_set_revocation(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    rev_prof_t *rp;
    int i = 1, fail_set = 0;

    (void)dc;
    if (err)
        return err;
    if (cmd->server->is_virtual)
        return "EidRevocation: set it at server level, outside <VirtualHost>, with the "
               "trust profile (EidTrustIssuer)";
    if (argc < 1)
        return "EidRevocation: needs a trust profile name";
    if (!registry) {
        registry = apr_hash_make(cmd->pool);
        apr_pool_cleanup_register(cmd->pool, NULL, registry_gone, apr_pool_cleanup_null);
    }
    if (apr_hash_get(registry, argv[0], APR_HASH_KEY_STRING))
        return apr_psprintf(cmd->pool, "EidRevocation: profile '%s' has one already",
                            argv[0]);
    rp = apr_pcalloc(cmd->pool, sizeof(*rp));
    rp->name = apr_pstrdup(cmd->pool, argv[0]);
    rp->tp = apr_hash_get(eid_g->profiles, argv[0], APR_HASH_KEY_STRING);
    if (!rp->tp)
        return apr_psprintf(cmd->pool, "EidRevocation: unknown trust profile '%s' (define "
                            "it with EidTrustIssuer before this line)", argv[0]);
    rp->crls = apr_array_make(cmd->pool, 2, sizeof(eid_rev_crl_t));
    rp->crl_refresh = apr_time_from_sec(60);
    rp->crl_max = 16 * 1024 * 1024;
    rp->timeout = apr_time_from_sec(3);
    rp->max_age = apr_time_from_sec(600);
    rp->cache_entries = 4096;
    rp->inflight_max = 8;
    rp->nonce = 1;
    if (argc < 2 || strchr(argv[1], '='))
        rp->methods[rp->nmethods++] = M_OCSP; /* the default: the card's own responder */
    else if (strcasecmp(argv[i++], "off") && (err = parse_methods(cmd->pool, argv[1], rp)))
        return apr_pstrcat(cmd->pool, "EidRevocation: ", err, NULL);
    if (!rp->nmethods && i < argc)
        return apr_pstrcat(cmd->pool, "EidRevocation ", rp->name, ": 'off' takes no options",
                           NULL);
    for (; i < argc; i++)
        if ((err = parse_option(cmd, rp, argv[i], &fail_set)))
            return apr_pstrcat(cmd->pool, "EidRevocation ", rp->name, ": ", err, NULL);
    if ((err = check_combination(cmd->pool, rp)))
        return apr_pstrcat(cmd->pool, "EidRevocation ", rp->name, ": ", err, NULL);
    rp->file = cmd->directive->filename;
    rp->line = cmd->directive->line_num;
    atomic_init(&rp->inflight, 0);
    atomic_init(&rp->down[0], 0);
    atomic_init(&rp->down[1], 0);
    apr_hash_set(registry, rp->name, APR_HASH_KEY_STRING, rp);
    return NULL;
}

void eid_rev_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_hash_index_t *hi;
    apr_size_t entries = 0;
    apr_interval_time_t age = 0, grace = 0;
    int threads = 0;

    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 2)
        threads = 2;
    all_limit = threads / 2;
    atomic_init(&all_inflight, 0);

    answers = goods = NULL;
    memset(&flight, 0, sizeof(flight));
    for (hi = registry ? apr_hash_first(pchild, registry) : NULL; hi; hi = apr_hash_next(hi)) {
        const rev_prof_t *rp = apr_hash_this_val(hi);
        if (!rp->nmethods)
            continue;
        entries += (apr_size_t)rp->cache_entries;
        age = rp->max_age > age ? rp->max_age : age;
        grace = rp->grace > grace ? rp->grace : grace;
    }
    if (!entries)
        return;
    /* Bounded by the sum of the profiles' cache= (fixed tables, no growth). */
    answers = eid_revcache_create(pchild, entries, age);
    if (grace)
        goods = eid_revcache_create(pchild, entries, grace);
    if (apr_thread_mutex_create(&flight.mu, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS ||
        apr_thread_cond_create(&flight.cv, pchild) != APR_SUCCESS)
        flight.mu = NULL; /* then every thread fetches for itself */
    eid_rev_crl_child_init(pchild, s, registry);
    if (!answers || (grace && !goods))
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "EID05122: no memory for the revocation answer cache: every check "
                     "asks its source");
}

/* ---- the check ---------------------------------------------------------------- */

/* Claim the fetch of `key`: the slot (>= 0) to give back with flight_end(),
 * or FLIGHT_NONE / FLIGHT_DONE / FLIGHT_BUSY.  Waits at most `wait`. */
static int flight_begin(const unsigned char *key, apr_interval_time_t wait)
{
    apr_time_t deadline = apr_time_now() + wait;
    int i, free_slot, waited = 0;

    if (!flight.mu)
        return FLIGHT_NONE;
    apr_thread_mutex_lock(flight.mu);
    for (;;) {
        int busy = -1;
        free_slot = -1;
        for (i = 0; i < FLIGHT_SLOTS; i++) {
            if (!flight.used[i])
                free_slot = free_slot < 0 ? i : free_slot;
            else if (!memcmp(flight.keys[i], key, EID_REV_KEY_LEN))
                busy = i;
        }
        if (busy < 0)
            break;
        {
            apr_time_t left = deadline - apr_time_now();
            if (left <= 0 || flight.waiters >= FLIGHT_WAITERS) {
                apr_thread_mutex_unlock(flight.mu);
                return FLIGHT_BUSY;
            }
            flight.waiters++;
            apr_thread_cond_timedwait(flight.cv, flight.mu, left);
            flight.waiters--;
            waited = 1;
        }
    }
    if (waited) {
        apr_thread_mutex_unlock(flight.mu);
        return FLIGHT_DONE;
    }
    if (free_slot >= 0) {
        memcpy(flight.keys[free_slot], key, EID_REV_KEY_LEN);
        flight.used[free_slot] = 1;
    }
    apr_thread_mutex_unlock(flight.mu);
    return free_slot >= 0 ? free_slot : FLIGHT_NONE;
}

static void flight_end(int slot)
{
    if (slot < 0)
        return;
    apr_thread_mutex_lock(flight.mu);
    flight.used[slot] = 0;
    apr_thread_cond_broadcast(flight.cv);
    apr_thread_mutex_unlock(flight.mu);
}

static const char *status_name(eid_rev_status_e st)
{
    return st == EID_REV_GOOD ? "good" : st == EID_REV_REVOKED ? "revoked" : "unknown";
}

/* One source, one answer (APR_SUCCESS) or a failure in res. */
static apr_status_t ask(apr_pool_t *p, rev_prof_t *rp, int method, X509 *cert, X509 *issuer,
                        eid_rev_answer_t *a, const unsigned char **der, apr_size_t *dlen,
                        eid_result_t *res)
{
    if (method == M_OCSP) {
        eid_ocsp_opts_t o;
        apr_status_t rv;
        /* Why a bound, and refuse beyond it instead of waiting: a slow
         * responder and a flood of new connections with uncached
         * certificates would otherwise hold every worker thread. */
        if (atomic_fetch_add(&rp->inflight, 1) >= rp->inflight_max) {
            atomic_fetch_sub(&rp->inflight, 1);
            eid_result_set(res, p, 5111, "EID05111",
                           "%d OCSP requests of profile %s already in flight",
                           rp->inflight_max, rp->name);
            return APR_EAGAIN;
        }
        if (atomic_fetch_add(&all_inflight, 1) >= all_limit) {
            atomic_fetch_sub(&all_inflight, 1);
            atomic_fetch_sub(&rp->inflight, 1);
            eid_result_set(res, p, 5111, "EID05111",
                           "%d OCSP requests already in flight in this process (half its "
                           "threads)", all_limit);
            return APR_EAGAIN;
        }
        eid_ocsp_opts_default(&o);
        /* Why the AIA only here: the certificate's chain was verified by
         * mod_ssl and its issuer by the core before its URL is used. */
        o.url = rp->responder;
        o.nonce = rp->nonce;
        o.http.timeout = rp->timeout;
        o.http.connect_timeout = rp->timeout < apr_time_from_sec(2) ? rp->timeout
                                                                    : apr_time_from_sec(2);
        rv = eid_ocsp_fetch(p, cert, issuer, &o, a, der, dlen, res);
        atomic_fetch_sub(&all_inflight, 1);
        atomic_fetch_sub(&rp->inflight, 1);
        return rv;
    }
    return eid_rev_crl_ask(p, rp, cert, issuer, a, res);
}

static void from_answer(request_rec *r, const rev_prof_t *rp, const eid_rev_answer_t *a,
                        const char *source, eid_rev_verdict_t *v)
{
    eid_result_t res = {0};
    apr_time_t until = a->fetched + rp->max_age;

    if (a->next_update && a->next_update < until)
        until = a->next_update;
    v->until = until;
    v->status = status_name(a->status);
    v->source = source;
    if (eid_rev_judge(r->connection->pool, a, &res)) {
        v->refuse = HTTP_FORBIDDEN;
        v->tag = res.tag;
        v->reason = res.reason;
    }
}

static const char *method_name(int m)
{
    return m == M_OCSP ? "OCSP" : "the CRL";
}

/* Source i of the profile gave no answer: one log line per outage. */
static void source_failed(request_rec *r, rev_prof_t *rp, int i, const eid_result_t *res)
{
    if (atomic_exchange(&rp->down[i], 1) == 0)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "EID05120: trust profile %s: %s gives no revocation answer (%s: %s); "
                      "%s until it answers again (logged once per outage)",
                      rp->name, method_name(rp->methods[i]), res->tag, res->reason,
                      i + 1 < rp->nmethods ? "asking the next source"
                      : rp->grace_on ? "admitting known-good certificates within the grace "
                                       "period, refusing others"
                                     : "refusing client certificates (fail=closed)");
}

static void source_ok(request_rec *r, rev_prof_t *rp, int i)
{
    if (atomic_exchange(&rp->down[i], 0) == 1)
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "EID05121: trust profile %s: %s answers again", rp->name,
                      method_name(rp->methods[i]));
}

/* No source answered: the fail mode decides.  `quiet`: the outage was
 * logged (source_failed), the refusal goes to debug. */
static void failed(request_rec *r, rev_prof_t *rp, const unsigned char *key, apr_time_t now,
                   const eid_result_t *res, int quiet, eid_rev_verdict_t *v)
{
    apr_pool_t *cp = r->connection->pool;
    eid_rev_answer_t a;
    int grace = rp->grace_on && goods && key && eid_revcache_get(goods, key, now, &a) &&
                a.status == EID_REV_GOOD && a.fetched + rp->grace > now;

    if (grace) {
        /* Why only a GOOD answer and only within grace of its fetch: the
         * sysadmin bounded how long a card may go unchecked. */
        v->status = "good";
        v->source = "grace";
        v->until = a.fetched + rp->grace < now + GRACE_RETRY ? a.fetched + rp->grace
                                                             : now + GRACE_RETRY;
        return;
    }
    v->status = "undetermined";
    v->source = NULL;
    v->until = now; /* ask again on the next request */
    v->quiet = quiet;
    v->tag = res->tag;
    v->reason = apr_pstrcat(cp, "revocation status cannot be had: ", res->reason, NULL);
    /* Why 503 and not 403: nothing is known against the card; the service,
     * not the user, has a problem, and the user may retry. */
    v->refuse = res->cls == EID_CLASS_MISCONFIGURED ? HTTP_INTERNAL_SERVER_ERROR
                                                     : HTTP_SERVICE_UNAVAILABLE;
}

void eid_rev_check(request_rec *r, const char *profile, eid_rev_verdict_t *v)
{
    rev_prof_t *rp = registry && profile ? apr_hash_get(registry, profile, APR_HASH_KEY_STRING)
                                         : NULL;
    const char *pem;
    unsigned char key[EID_REV_KEY_LEN];
    eid_result_t res = {0};
    eid_rev_answer_t a;
    apr_pool_t *tmp;
    apr_time_t now = apr_time_now();
    X509 *cert = NULL, *issuer;
    BIO *b;
    const unsigned char *der = NULL;
    apr_size_t dlen = 0;
    int i, got = 0, slot, shared = 0;

    memset(v, 0, sizeof(*v));
    v->done = 1;
    if (!rp || !rp->nmethods)
        return;
    pem = ap_ssl_var_lookup(r->pool, r->server, r->connection, r, "SSL_CLIENT_CERT");
    if (pem && (b = BIO_new_mem_buf(pem, -1))) {
        cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    issuer = cert ? eid_rev_profile_issuer(rp->tp, cert) : NULL;
    if (!issuer || eid_rev_key(cert, issuer, key) != 0) {
        /* The core accepted it under this profile a moment ago. */
        X509_free(cert);
        ERR_clear_error();
        eid_result_set(&res, NULL, 5102, "EID05102",
                       "the certificate or its issuer cannot be read for the check");
        failed(r, rp, NULL, now, &res, 0, v);
        return;
    }
    if (answers && eid_revcache_get(answers, key, now, &a) && a.fetched + rp->max_age > now) {
        X509_free(cert);
        from_answer(r, rp, &a, "cache", v);
        return;
    }
    slot = flight_begin(key, rp->timeout + apr_time_from_sec(1));
    if (slot == FLIGHT_DONE && answers && eid_revcache_get(answers, key, now, &a)) {
        X509_free(cert);
        from_answer(r, rp, &a, "cache", v);
        return;
    }
    apr_pool_create(&tmp, r->pool);
    if (slot == FLIGHT_BUSY)
        eid_result_set(&res, NULL, 5112, "EID05112",
                       "waited too long for the revocation check of this certificate "
                       "already in flight");
    for (i = 0; slot != FLIGHT_BUSY && i < rp->nmethods && !got; i++) {
        /* Another process (or server) may have fetched it: its signed
         * answer, checked again here, before the responder is asked. */
        if (rp->methods[i] == M_OCSP &&
            (shared = eid_rev_share_get(r, tmp, rp, cert, issuer, key, now, &a))) {
            got = 1;
            break;
        }
        got = ask(tmp, rp, rp->methods[i], cert, issuer, &a, &der, &dlen, &res) == APR_SUCCESS;
        if (got)
            source_ok(r, rp, i);
        else if (res.cls != EID_CLASS_MISCONFIGURED)
            source_failed(r, rp, i, &res);
        /* else a card without a responder (EID05101): not an outage of the
         * source, refused and logged per request */
    }
    X509_free(cert);
    if (got) {
        /* Why OCSP answers only: a CRL answer is a local look-up, and the
         * file may be replaced any time (eid_rev_crl.c); the connection
         * keeps it for max-age all the same. */
        if (answers && a.source == EID_REV_SRC_OCSP)
            eid_revcache_put(answers, key, &a, now);
        if (der)
            eid_rev_share_put(r, tmp, rp, key, der, dlen, &a, now);
        if (goods && a.status == EID_REV_GOOD) {
            /* kept for the grace period, whatever its nextUpdate */
            eid_rev_answer_t g = a;
            g.next_update = 0;
            eid_revcache_put(goods, key, &g, now);
        }
        flight_end(slot);
        from_answer(r, rp, &a, shared ? "store" : a.source == EID_REV_SRC_CRL ? "crl" : "ocsp",
                    v);
    }
    else {
        flight_end(slot);
        /* quiet when the source's outage was logged */
        failed(r, rp, key, now, &res,
               slot != FLIGHT_BUSY && res.cls != EID_CLASS_MISCONFIGURED, v);
    }
    apr_pool_destroy(tmp);
}
