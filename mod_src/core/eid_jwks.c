/*
 * eid_jwks.c - the cached, throttled, thread-safe key set of a provider
 * (key import is in eid_jwks_key.c).
 *
 * Concurrency design.  The keys in use form an immutable snapshot (snap_t):
 * one APR pool holding the key array, the cjose objects and their cleanups.
 * `ks->cur` points to the current snapshot.  A reader takes a reference
 * under the mutex (so it can never pick up a snapshot that is being retired)
 * and drops it with an atomic decrement, outside the lock.  The set itself
 * holds one reference on `cur`.  A fetch builds a whole new snapshot without
 * the lock, then swaps `cur` under the lock and drops the set's reference on
 * the old one.  Whoever drops the last reference - the swapping thread, or
 * the last reader still verifying a signature with an old key - destroys
 * the snapshot's pool.  Snapshots share nothing, because cjose's own
 * reference counts are not atomic.  Snapshot pools are children of APR's
 * global pool, whose allocator carries its own mutex, so creating and
 * destroying them from any thread is safe and touches no pool of httpd's;
 * a snapshot's pool is written only by the thread that builds it, before it
 * is published under the mutex, and read-only afterwards.
 *
 * A key the provider withdraws is gone with the next successful fetch (no
 * grace: max_stale only bridges FAILED fetches).  `gen` counts such
 * withdrawals; the token cache records it with every decision, and a hit
 * made under an older generation is a miss (eid_jwks_current()).
 *
 * Single flight: `fetching` is set under the lock by the one thread that
 * fetches; every other thread keeps using `cur` (or, when there is no set at
 * all yet, waits for that fetch for at most the fetch timeout).
 */
#include "eid/eid_jwks.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct snap {
    atomic_uint refs; /* C11, not apr_atomic: ThreadSanitizer must see it */
    apr_pool_t *pool;
    eid_jwks_keys_t *set;
    apr_time_t fetched;
} snap_t;

struct eid_jwks {
    eid_jwks_conf_t conf;
    apr_thread_mutex_t *mu; /* NULL until eid_jwks_child_init() */
    apr_thread_cond_t *cv;
    snap_t *cur;
    /* Written under `mu` when a fetch succeeds, read without it on every
     * token-cache hit (eid_jwks_current()). */
    atomic_uint gen;              /* withdrawals seen so far */
    _Atomic(apr_time_t) fetched;  /* cur->fetched; 0: no set */
    int fetching;
    int attempted;
    int last_failed; /* the last finished fetch failed (under `mu`) */
    apr_time_t last_attempt;
    char *disc_jwks_uri; /* from the discovery document; malloc'd */
    int rediscover;
    eid_jwks_source_fn src;
    void *src_baton;
    unsigned fetches, failures;
};

/* Refusal with a static reason; the code is the tag's number. */
static const char *member_str(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- the cached set ---------------------------------------------------------- */

static void lock(eid_jwks_t *ks)
{
    if (ks->mu)
        apr_thread_mutex_lock(ks->mu);
}

static void unlock(eid_jwks_t *ks)
{
    if (ks->mu)
        apr_thread_mutex_unlock(ks->mu);
}

/* Caller holds the lock. */
static snap_t *acquire(eid_jwks_t *ks)
{
    snap_t *s = ks->cur;
    if (s) /* relaxed: the set's own reference keeps it alive under the lock */
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

static void snap_release(snap_t *s)
{
    /* acq_rel: the last owner sees every other owner's reads finished */
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        apr_pool_t *pool = s->pool;
        apr_pool_destroy(pool);
    }
}

static apr_status_t ks_cleanup(void *data)
{
    eid_jwks_t *ks = data;
    snap_t *s = ks->cur;
    ks->cur = NULL;
    snap_release(s);
    free(ks->disc_jwks_uri);
    ks->disc_jwks_uri = NULL;
    return APR_SUCCESS;
}

static apr_status_t ks_child_cleanup(void *data)
{
    eid_jwks_t *ks = data;
    ks->mu = NULL;
    ks->cv = NULL;
    return APR_SUCCESS;
}

eid_jwks_t *eid_jwks_create(apr_pool_t *pconf, const eid_jwks_conf_t *conf)
{
    eid_jwks_t *ks = apr_pcalloc(pconf, sizeof(*ks));
    ks->conf = *conf;
#define DUP(f) ks->conf.f = conf->f ? apr_pstrdup(pconf, conf->f) : NULL
    DUP(name); DUP(issuer); DUP(discovery_url); DUP(jwks_uri); DUP(jwks_file);
    DUP(http.ca_file);
#undef DUP
    if (!ks->conf.name)
        ks->conf.name = "-";
    apr_pool_cleanup_register(pconf, ks, ks_cleanup, apr_pool_cleanup_null);
    return ks;
}

void eid_jwks_set_source(eid_jwks_t *ks, eid_jwks_source_fn fn, void *baton)
{
    ks->src = fn;
    ks->src_baton = baton;
}

apr_status_t eid_jwks_child_init(eid_jwks_t *ks, apr_pool_t *pchild)
{
    apr_status_t rv = apr_thread_mutex_create(&ks->mu, APR_THREAD_MUTEX_DEFAULT, pchild);
    if (rv == APR_SUCCESS)
        rv = apr_thread_cond_create(&ks->cv, pchild);
    if (rv != APR_SUCCESS) {
        ks->mu = NULL;
        ks->cv = NULL;
        return rv;
    }
    apr_pool_cleanup_register(pchild, ks, ks_child_cleanup, apr_pool_cleanup_null);
    return APR_SUCCESS;
}

static apr_status_t read_file(apr_pool_t *p, const char *path, apr_size_t max,
                              const char **doc, apr_size_t *len, eid_result_t *res)
{
    const char *err;
    char *buf;
    apr_status_t rv = eid_file_read(p, path, max, 0, &buf, len, &err);

    if (APR_STATUS_IS_EACCES(rv)) {
        /* Why a tag of its own: httpd's parent reads the file as root at
         * start-up, the children (another user) re-read it at jwks_refresh.
         * A file only root may read works until the first refresh, then
         * keys age out after jwks_max_stale: say so plainly. */
        eid_result_set(res, p, 3220, "EID03220", "key set file %s is not readable by uid %ld "
                       "(the user httpd's children run as): the keys read at start-up are "
                       "used until jwks_max_stale", path, (long)geteuid());
        return APR_EACCES;
    }
    if (rv != APR_SUCCESS) {
        eid_result_set(res, p, 3208, "EID03208", "key set file: %s", err);
        return rv;
    }
    *doc = buf;
    return APR_SUCCESS;
}

/* The jwks_uri named by the discovery document; only the fetching thread
 * gets here, so disc_jwks_uri needs no lock. */
static const char *discover(eid_jwks_t *ks, apr_pool_t *p, eid_result_t *res)
{
    eid_http_resp_t r;
    json_error_t jerr;
    json_t *doc;
    const char *iss, *uri, *why;

    if (ks->disc_jwks_uri && !ks->rediscover)
        return ks->disc_jwks_uri;
    if (eid_http_get(p, ks->conf.discovery_url, &ks->conf.http, &r, res) != APR_SUCCESS)
        return NULL;
    if (r.status != 200) {
        eid_result_set(res, p, 3218, "EID03218", "discovery document answered HTTP %ld",
                       r.status);
        return NULL;
    }
    doc = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, &jerr);
    iss = member_str(doc, "issuer");
    uri = member_str(doc, "jwks_uri");
    if (!json_is_object(doc) || !uri) {
        json_decref(doc);
        eid_fail(res, "EID03218", "discovery document is not JSON or has no jwks_uri");
        return NULL;
    }
    /* Why exact: a document that names another issuer describes another
     * provider (or an attacker's mix-up); its keys must not vouch for ours. */
    if (!iss || strcmp(iss, ks->conf.issuer)) {
        json_decref(doc);
        eid_fail(res, "EID03217", "discovery document names another issuer");
        return NULL;
    }
    if ((why = eid_http_url_check(uri)) != NULL) {
        json_decref(doc);
        eid_result_set(res, p, 3218, "EID03218", "discovery document's jwks_uri refused: %s",
                       why);
        return NULL;
    }
    free(ks->disc_jwks_uri);
    ks->disc_jwks_uri = strdup(uri);
    json_decref(doc);
    ks->rediscover = 0;
    return ks->disc_jwks_uri;
}

static apr_status_t load_doc(eid_jwks_t *ks, apr_pool_t *p, const char **doc, apr_size_t *len,
                             eid_result_t *res)
{
    eid_http_resp_t r;
    const char *url;
    apr_status_t rv;

    if (ks->src)
        return ks->src(ks->src_baton, p, doc, len, res);
    if (ks->conf.jwks_file)
        return read_file(p, ks->conf.jwks_file, ks->conf.http.max_bytes, doc, len, res);
    url = ks->conf.jwks_uri;
    if (!url && ks->conf.discovery_url && !(url = discover(ks, p, res)))
        return APR_EGENERAL;
    if (!url) {
        eid_fail(res, "EID03208", "no key source configured");
        return APR_EINVAL;
    }
    rv = eid_http_get(p, url, &ks->conf.http, &r, res);
    if (rv == APR_SUCCESS && r.status != 200) {
        eid_result_set(res, p, 3208, "EID03208", "key set fetch answered HTTP %ld", r.status);
        rv = APR_EGENERAL;
    }
    if (rv != APR_SUCCESS) {
        /* The document may have moved: ask discovery again next time. */
        ks->rediscover = 1;
        return rv;
    }
    *doc = r.body;
    *len = r.len;
    return APR_SUCCESS;
}

/* Is the key `k` (same key material, same kid) in `s`? */
static int has_key(const snap_t *s, const eid_jwk_t *k)
{
    int i;
    const eid_jwks_keys_t *set = s->set;
    for (i = 0; i < set->n; i++)
        if (!memcmp(set->key[i].thumb, k->thumb, sizeof(k->thumb)) &&
            set->key[i].kid_len == k->kid_len && !set->key[i].kid == !k->kid &&
            (!k->kid || !memcmp(set->key[i].kid, k->kid, k->kid_len)))
            return 1;
    return 0;
}

/* Does `s` lack a key that `old` had (a key withdrawn, or a kid moved to
 * other key material)? */
static int withdraws(const snap_t *s, const snap_t *old)
{
    int i;
    for (i = 0; old && i < old->set->n; i++)
        if (!has_key(s, &old->set->key[i]))
            return 1;
    return 0;
}

static apr_status_t build_snap(eid_jwks_t *ks, const char *doc, apr_size_t len, apr_time_t now,
                               snap_t **out, eid_result_t *res)
{
    apr_pool_t *pool;
    snap_t *s;

    if (apr_pool_create_ex(&pool, NULL, NULL, NULL) != APR_SUCCESS) {
        eid_fail(res, "EID03208", "out of memory");
        return APR_ENOMEM;
    }
    s = apr_pcalloc(pool, sizeof(*s));
    s->pool = pool;
    if (eid_jwks_parse(pool, doc, len, now, ks->conf.name, &s->set, res)) {
        apr_pool_destroy(pool);
        return APR_EGENERAL;
    }
    /* Why a document without a usable key is a failure, not an empty set:
     * an OP serving an empty or broken set for a moment must not make every
     * token invalid; the old keys stay until max_stale. */
    if (s->set->n == 0) {
        apr_pool_destroy(pool);
        eid_fail(res, "EID03219", "key set has no usable key");
        return APR_EGENERAL;
    }
    /* Why no carry-over of keys the document no longer lists: a provider
     * withdraws a key because it must not vouch any more (compromise,
     * retirement); honouring it for hours would defeat that. */
    s->fetched = now;
    atomic_init(&s->refs, 1); /* the set's own reference, dropped when swapped out */
    *out = s;
    return APR_SUCCESS;
}

/* The one fetching thread: load, build, swap.  Logs its failure. */
static apr_status_t do_fetch(eid_jwks_t *ks, apr_pool_t *p, apr_time_t now, eid_result_t *res)
{
    const char *doc = NULL;
    apr_size_t len = 0;
    snap_t *old, *s = NULL, *prev;
    apr_status_t rv;

    lock(ks);
    old = acquire(ks);
    ks->fetches++;
    unlock(ks);
    rv = load_doc(ks, p, &doc, &len, res);
    if (rv == APR_SUCCESS)
        rv = build_snap(ks, doc, len, now, &s, res);
    lock(ks);
    if (rv == APR_SUCCESS) {
        prev = ks->cur;
        ks->cur = s;
        /* after the swap: a reader that read the old generation before it
         * verified with a withdrawn key stores that old generation */
        if (withdraws(s, prev))
            atomic_fetch_add_explicit(&ks->gen, 1, memory_order_seq_cst);
        atomic_store_explicit(&ks->fetched, now, memory_order_seq_cst);
        ks->last_failed = 0;
    }
    else {
        prev = NULL;
        ks->failures++;
        ks->last_failed = 1;
    }
    unlock(ks);
    snap_release(old);
    snap_release(prev);
    if (rv != APR_SUCCESS)
        eid_log(rv == APR_EACCES ? EID_LOG_ERR : EID_LOG_WARN, res && res->tag ? res->tag : "EID03208",
                "provider %s: key set not refreshed (old keys kept): %s", ks->conf.name,
                res && res->reason ? res->reason : "error");
    return rv;
}

static int throttle_ok(const eid_jwks_t *ks, apr_time_t now)
{
    apr_interval_time_t d = now - ks->last_attempt;
    /* A clock that went backwards must not stop refreshing for good. */
    return !ks->attempted || d < 0 || d >= ks->conf.min_refetch;
}

/* Claim the fetch (caller holds the lock). */
static int claim_fetch(eid_jwks_t *ks, apr_time_t now)
{
    if (ks->fetching || !throttle_ok(ks, now))
        return 0;
    ks->fetching = 1;
    ks->attempted = 1;
    ks->last_attempt = now;
    return 1;
}

/* Fetch, then take the current set.  `r` (may be NULL) gets the fetch's
 * failure; *failed tells whether there was one. */
static snap_t *fetch_and_acquire(eid_jwks_t *ks, apr_pool_t *p, apr_time_t now,
                                 eid_result_t *r, int *failed)
{
    eid_result_t scratch = {0};
    snap_t *s;

    if (!r)
        r = &scratch;
    *failed = do_fetch(ks, p, now, r) != APR_SUCCESS;
    lock(ks);
    ks->fetching = 0;
    if (ks->cv)
        apr_thread_cond_broadcast(ks->cv);
    s = acquire(ks);
    unlock(ks);
    return s;
}

apr_status_t eid_jwks_refresh(eid_jwks_t *ks, apr_pool_t *p, apr_time_t now,
                              eid_result_t *res)
{
    apr_status_t rv;

    lock(ks);
    if (ks->fetching) {
        unlock(ks);
        eid_fail(res, "EID03208", "another thread is fetching the key set");
        return APR_EBUSY;
    }
    ks->fetching = 1;
    ks->attempted = 1;
    ks->last_attempt = now;
    unlock(ks);
    rv = do_fetch(ks, p, now, res);
    lock(ks);
    ks->fetching = 0;
    if (ks->cv)
        apr_thread_cond_broadcast(ks->cv);
    unlock(ks);
    return rv;
}

/* Caller holds the lock; there is no set at all and another thread is
 * fetching the first one: wait for it rather than fail every request. */
static void wait_first(eid_jwks_t *ks)
{
    apr_time_t deadline = apr_time_now() + ks->conf.http.timeout + apr_time_from_sec(1);
    while (ks->cv && ks->fetching && !ks->cur) {
        apr_interval_time_t rem = deadline - apr_time_now();
        if (rem <= 0 || apr_thread_cond_timedwait(ks->cv, ks->mu, rem) == APR_TIMEUP)
            break;
    }
}

static int fresh(const eid_jwks_t *ks, const eid_jwk_t *k, apr_time_t now)
{
    return now - k->seen < ks->conf.max_stale;
}

static const eid_jwk_t *find_kid(const eid_jwks_t *ks, const snap_t *s, const char *kid,
                                 apr_size_t kid_len, apr_time_t now)
{
    int i;
    for (i = 0; i < s->set->n; i++) {
        const eid_jwk_t *k = &s->set->key[i];
        if (k->kid && k->kid_len == kid_len && !memcmp(k->kid, kid, kid_len) &&
            fresh(ks, k, now))
            return k;
    }
    return NULL;
}

static int usable(const eid_jwks_t *ks, const snap_t *s, apr_time_t now)
{
    return s && now - s->fetched < ks->conf.max_stale;
}

int eid_jwks_select(eid_jwks_t *ks, apr_pool_t *p, apr_time_t now, const char *kid,
                    apr_size_t kid_len, eid_jws_alg_e alg, eid_jwks_sel_t *sel,
                    eid_result_t *res)
{
    snap_t *s = NULL;
    const eid_jwk_t *k;
    int i, fetch, failed = 0, busy;

    memset(sel, 0, sizeof(*sel));
    lock(ks);
    fetch = (!ks->cur || now - ks->cur->fetched >= ks->conf.refresh) && claim_fetch(ks, now);
    if (!fetch) {
        if (!ks->cur && ks->fetching)
            wait_first(ks);
        s = acquire(ks);
    }
    unlock(ks);
    if (fetch)
        s = fetch_and_acquire(ks, p, now, NULL, &failed);
    if (!usable(ks, s, now)) {
        snap_release(s);
        return eid_fail(res, "EID03207", "no current keys for this provider (key set unavailable)");
    }
    if (kid) {
        k = find_kid(ks, s, kid, kid_len, now);
        if (!k) {
            /* Why throttled: anyone can send tokens with made-up kids; each
             * must not cost a fetch.  One per min_refetch serves a real
             * rotation within that delay. */
            lock(ks);
            fetch = claim_fetch(ks, now);
            busy = !fetch && ks->fetching;
            failed = !fetch && ks->last_failed;
            unlock(ks);
            if (fetch) {
                snap_release(s);
                s = fetch_and_acquire(ks, p, now, res, &failed);
                k = usable(ks, s, now) ? find_kid(ks, s, kid, kid_len, now) : NULL;
            }
            /* Why not 401 here: the keys held cannot tell a forged kid from
             * a key the provider rotated in, while the provider cannot be
             * asked (its last fetch failed, or another thread is fetching
             * right now).  A 401 would make the client drop a good token;
             * 503 with Retry-After never admits and lets it try again. */
            if (!k && (failed || busy)) {
                snap_release(s);
                if (fetch && res && res->code && res->tag &&
                    eid_result_class(res->tag) != EID_CLASS_INVALID) {
                    res->cls = eid_result_class(res->tag); /* the fetch's own tag */
                    return res->code;
                }
                return eid_fail(res, "EID03208", busy ? "unknown kid while another thread "
                                                        "fetches the key set"
                                                      : "unknown kid and the key set "
                                                        "cannot be fetched");
            }
        }
        if (!k) {
            snap_release(s);
            return eid_fail(res, "EID03201", "no key with the token's kid");
        }
        sel->keys[sel->n++] = k;
    }
    else {
        for (i = 0; i < s->set->n && sel->n < EID_JWKS_MAX_TRY; i++)
            if (fresh(ks, &s->set->key[i], now) &&
                eid_jwks_fit(&s->set->key[i], alg) == EID_JWK_FITS)
                sel->keys[sel->n++] = &s->set->key[i];
        if (sel->n == 0) {
            snap_release(s);
            return eid_fail(res, "EID03206", "token has no kid and no key fits its alg");
        }
    }
    sel->snap = s;
    return 0;
}

apr_uint32_t eid_jwks_generation(eid_jwks_t *ks)
{
    return atomic_load_explicit(&ks->gen, memory_order_seq_cst);
}

int eid_jwks_current(eid_jwks_t *ks, apr_uint32_t gen, apr_time_t now)
{
    apr_time_t fetched = atomic_load_explicit(&ks->fetched, memory_order_relaxed);
    /* the same rule as usable(): no successful fetch for max_stale, no keys */
    return atomic_load_explicit(&ks->gen, memory_order_seq_cst) == gen && fetched &&
           now - fetched < ks->conf.max_stale;
}

void eid_jwks_release(eid_jwks_t *ks, eid_jwks_sel_t *sel)
{
    (void)ks;
    snap_release(sel->snap);
    sel->snap = NULL;
    sel->n = 0;
}

void eid_jwks_stats(eid_jwks_t *ks, eid_jwks_stats_t *st)
{
    lock(ks);
    st->fetches = ks->fetches;
    st->failures = ks->failures;
    st->keys = ks->cur ? ks->cur->set->n : 0;
    st->fetched = ks->cur ? ks->cur->fetched : 0;
    unlock(ks);
}
