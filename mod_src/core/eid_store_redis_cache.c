/*
 * eid_store_redis_cache.c - the redis backend's per-process value cache and
 * its invalidation subscriber thread.
 *
 * Invalidation: Redis client-side-caching in broadcast mode.  The subscriber
 * connection runs `CLIENT TRACKING on REDIRECT <its own id> BCAST PREFIX
 * <prefix>` and `SUBSCRIBE __redis__:invalidate`; Redis then pushes the name
 * of every key under the prefix that changes for any reason - a write or
 * delete by any server, an expiry, an eviction, an operator's DEL, FLUSHDB
 * (a nil message: drop everything).  Why this and not our own PUBLISH after
 * each write: it also covers changes the module does not make (expiry,
 * operators, scripts), costs no extra command per write, and needs no
 * per-key tracking table in Redis (BCAST).
 *
 * Correctness never depends on the channel: while it is not known to be up
 * (not yet subscribed, EOF, no PONG within 500 ms), `live` is 0, nothing is
 * served or stored, and every entry is dropped when it goes down.  A GET
 * takes a ticket (generation + per-slot sequence) before it is sent; any
 * invalidation of the slot, any local write, and any channel change bump
 * them, and a put with an outdated ticket is ignored, so a value read before
 * a concurrent change can never be stored after that change's invalidation.
 *
 * The store's deletion generation (eid_store.h, `generation`) lives here
 * too, because it needs what the cache already knows: whether the channel
 * is up (no number while it is not) and every invalidation (which ones
 * count: count_invalidation()).
 *
 * Shared state: one table per process, guarded by c->mu (never held across
 * I/O); entries and values are malloc'd and freed on eviction, replace, drop
 * and at the pool cleanup.  The thread owns its hiredis context alone.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "eid/eid_result.h"
#include "eid_store_redis_int.h"

#define NSEQ 1024
/* ends of sessions announced by a marker whose delete may still follow */
#define NPEND 64
#define PEND_KEY 64

typedef struct centry {
    struct centry *hnext, *prev, *next; /* hash chain; LRU (head = newest) */
    apr_size_t klen, vlen;
    apr_time_t expires;                 /* local: min(Redis expiry, now + max age) */
    apr_time_t redis_expires;           /* when Redis will drop the key (as last known) */
    unsigned char *val;
    char key[];
} centry_t;

struct rcache {
    eid_redis_t *r;
    apr_thread_mutex_t *mu;
    centry_t **tab;
    apr_size_t nb;                      /* buckets (power of two) */
    centry_t *head, *tail;
    int count, max;
    int live;                           /* invalidation channel up */
    unsigned long gen;                  /* bumped at every channel change / flush */
    unsigned long seq[NSEQ];
    apr_uint64_t hits, inval;
    /* the deletion generation (eid_rcache_generation()): bumped at every
     * channel change and flush (clear_all), every delete / take / index
     * eviction of this process, and every invalidation that may be an
     * ending: a marker `x:<key>` or `k:...`, or a key with a pending marker */
    apr_uint32_t dgen;
    struct {
        char k[PEND_KEY];
        apr_size_t kl;
        apr_time_t until;
    } pend[NPEND];
    int npend;                          /* slots in use (until > now or not) */
    apr_time_t pend_all_until;          /* table was full: count every invalidation */
    apr_interval_time_t pend_window;    /* how long a marker's delete is awaited */
    atomic_int stop;
    apr_thread_t *thread;
};

static apr_size_t hash(const char *k, apr_size_t n)
{
    apr_size_t h = 1469598103934665603ULL;
    for (apr_size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    return h;
}

static centry_t **find(rcache_t *c, const char *k, apr_size_t kl)
{
    centry_t **pp = &c->tab[hash(k, kl) & (c->nb - 1)];
    while (*pp && !((*pp)->klen == kl && memcmp((*pp)->key, k, kl) == 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void unlink_lru(rcache_t *c, centry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_lru(rcache_t *c, centry_t *e)
{
    e->next = c->head;
    e->prev = NULL;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* caller holds mu */
static void remove_key(rcache_t *c, const char *k, apr_size_t kl)
{
    c->seq[hash(k, kl) & (NSEQ - 1)]++;
    centry_t **pp = find(c, k, kl), *e = *pp;
    if (!e)
        return;
    *pp = e->hnext;
    unlink_lru(c, e);
    free(e->val);
    free(e);
    c->count--;
}

static void clear_all(rcache_t *c)
{
    while (c->head)
        remove_key(c, c->head->key, c->head->klen);
    c->gen++;
    c->dgen++; /* channel up/down, flush: a kept value may have missed a delete */
    c->npend = 0;
    c->pend_all_until = 0;
}

static apr_status_t cache_cleanup(void *data)
{
    rcache_t *c = data;
    apr_thread_mutex_lock(c->mu);
    clear_all(c);
    apr_thread_mutex_unlock(c->mu);
    return APR_SUCCESS;
}

rcache_t *eid_rcache_create(apr_pool_t *p, eid_redis_t *r)
{
    rcache_t *c = apr_pcalloc(p, sizeof(*c));
    c->r = r;
    c->max = r->conf.cache_entries;
    c->nb = 64;
    while (c->nb < (apr_size_t)c->max && c->nb < (1u << 20))
        c->nb <<= 1;
    c->tab = apr_pcalloc(p, c->nb * sizeof(*c->tab));
    c->gen = 1;
    c->dgen = 1;
    /* the delete follows its marker at once, unless the writer's commands
     * are slow: each may take connect + command timeout, and is sent twice */
    c->pend_window = apr_time_from_sec(10);
    if (c->pend_window < 4 * (r->conf.connect_timeout + r->conf.command_timeout))
        c->pend_window = 4 * (r->conf.connect_timeout + r->conf.command_timeout);
    if (apr_thread_mutex_create(&c->mu, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS)
        return NULL;
    apr_pool_cleanup_register(p, c, cache_cleanup, apr_pool_cleanup_null);
    return c;
}

int eid_rcache_get(rcache_t *c, apr_pool_t *p, const char *k, apr_size_t kl, unsigned char **v,
                   apr_size_t *vl)
{
    if (!c)
        return 0;
    int hit = 0;
    apr_time_t now = apr_time_now();
    apr_thread_mutex_lock(c->mu);
    centry_t *e = c->live ? *find(c, k, kl) : NULL;
    if (e && e->expires <= now) {
        remove_key(c, k, kl);
        e = NULL;
    }
    if (e) {
        /* p is the calling thread's own pool */
        *v = apr_palloc(p, e->vlen + 1);
        memcpy(*v, e->val, e->vlen);
        (*v)[e->vlen] = 0;
        *vl = e->vlen;
        unlink_lru(c, e);
        push_lru(c, e);
        c->hits++;
        hit = 1;
    }
    apr_thread_mutex_unlock(c->mu);
    return hit;
}

/* ticket: generation in the high bits, the slot's sequence in the low 32 */
unsigned long eid_rcache_ticket(rcache_t *c, const char *k, apr_size_t kl)
{
    if (!c)
        return 0;
    apr_thread_mutex_lock(c->mu);
    unsigned long t = c->live ? (c->gen << 32) ^ (c->seq[hash(k, kl) & (NSEQ - 1)] & 0xffffffffUL)
                              : 0;
    apr_thread_mutex_unlock(c->mu);
    return t;
}

void eid_rcache_put(rcache_t *c, unsigned long ticket, const char *k, apr_size_t kl,
                    const unsigned char *v, apr_size_t vl, apr_interval_time_t ttl)
{
    if (!c || !ticket)
        return;
    centry_t *n = malloc(sizeof(*n) + kl);
    unsigned char *nv = malloc(vl ? vl : 1);
    if (!n || !nv) {
        free(n);
        free(nv);
        return;
    }
    memset(n, 0, sizeof(*n));
    memcpy(n->key, k, kl);
    memcpy(nv, v, vl);
    n->klen = kl;
    n->vlen = vl;
    n->val = nv;
    apr_time_t now = apr_time_now();
    n->redis_expires = now + ttl;
    n->expires = now + (ttl < c->r->conf.cache_max_age ? ttl : c->r->conf.cache_max_age);
    apr_thread_mutex_lock(c->mu);
    unsigned long cur = (c->gen << 32) ^ (c->seq[hash(k, kl) & (NSEQ - 1)] & 0xffffffffUL);
    if (c->live && cur == ticket) {
        centry_t **pp = find(c, k, kl);
        if (*pp) {
            centry_t *old = *pp;
            *pp = old->hnext;
            unlink_lru(c, old);
            free(old->val);
            free(old);
            c->count--;
        }
        if (c->count >= c->max && c->tail)
            remove_key(c, c->tail->key, c->tail->klen);
        pp = find(c, k, kl);
        n->hnext = NULL;
        *pp = n;
        push_lru(c, n);
        c->count++;
        n = NULL;
    }
    apr_thread_mutex_unlock(c->mu);
    if (n) {
        free(n->val);
        free(n);
    }
}

void eid_rcache_drop(rcache_t *c, const char *k, apr_size_t kl)
{
    if (!c)
        return;
    apr_thread_mutex_lock(c->mu);
    remove_key(c, k, kl);
    apr_thread_mutex_unlock(c->mu);
}

int eid_rcache_touch_skip(rcache_t *c, const char *k, apr_size_t kl, apr_interval_time_t ttl)
{
    if (!c || c->r->conf.touch_interval <= 0)
        return 0;
    int skip = 0;
    apr_time_t now = apr_time_now();
    apr_thread_mutex_lock(c->mu);
    centry_t *e = c->live ? *find(c, k, kl) : NULL;
    if (e && e->expires > now && e->redis_expires >= now + ttl - c->r->conf.touch_interval)
        skip = 1;
    apr_thread_mutex_unlock(c->mu);
    return skip;
}

void eid_rcache_touched(rcache_t *c, const char *k, apr_size_t kl, apr_interval_time_t ttl)
{
    if (!c)
        return;
    apr_thread_mutex_lock(c->mu);
    centry_t *e = *find(c, k, kl);
    if (e)
        e->redis_expires = apr_time_now() + ttl;
    apr_thread_mutex_unlock(c->mu);
}

void eid_rcache_counts(rcache_t *c, apr_uint64_t *hits, apr_uint64_t *inval, int *live)
{
    *hits = *inval = 0;
    *live = 0;
    if (!c)
        return;
    apr_thread_mutex_lock(c->mu);
    *hits = c->hits;
    *inval = c->inval;
    *live = c->live;
    apr_thread_mutex_unlock(c->mu);
}

int eid_rcache_generation(rcache_t *c, apr_uint32_t *gen)
{
    int live;
    if (!c)
        return 0;
    apr_thread_mutex_lock(c->mu);
    live = c->live;
    *gen = c->dgen;
    apr_thread_mutex_unlock(c->mu);
    return live;
}

void eid_rcache_deleted(rcache_t *c)
{
    if (!c)
        return;
    apr_thread_mutex_lock(c->mu);
    c->dgen++;
    apr_thread_mutex_unlock(c->mu);
}

/* caller holds mu.  `k` (prefix stripped) was invalidated: does it move the
 * deletion generation?  BCAST does not tell a write from a delete, and a
 * session key is re-written (touched) about once a minute while in use, so
 * counting every invalidation would void every kept session of every
 * process at each touch anywhere.  Endings are recognisable instead: each
 * one (eid_session_end(), an index eviction's script) writes `x:<key>` and
 * then deletes `<key>`, a back-channel logout writes `k:...` too.  The
 * marker's invalidation may arrive before the delete runs in Redis, and a
 * reader that read the generation after it could still fetch the session:
 * so the key stays "pending" for a while (pend_window) and its own
 * invalidations (the delete, a late re-write and its second delete) count
 * as well. */
static void count_invalidation(rcache_t *c, const char *k, apr_size_t kl, apr_time_t now)
{
    int i, freei = -1;
    if (kl > 2 && k[0] == 'x' && k[1] == ':') {
        c->dgen++;
        k += 2;
        kl -= 2;
        for (i = 0; i < c->npend && kl <= PEND_KEY; i++) {
            if (c->pend[i].until <= now || (c->pend[i].kl == kl && !memcmp(c->pend[i].k, k, kl))) {
                freei = i;
                break;
            }
        }
        if (freei < 0 && c->npend < NPEND && kl <= PEND_KEY)
            freei = c->npend++;
        if (freei < 0) {
            /* no room (a mass logout): every invalidation counts a while */
            c->pend_all_until = now + c->pend_window;
            return;
        }
        memcpy(c->pend[freei].k, k, kl);
        c->pend[freei].kl = kl;
        c->pend[freei].until = now + c->pend_window;
        return;
    }
    if (kl > 2 && k[0] == 'k' && k[1] == ':') {
        c->dgen++;
        return;
    }
    if (c->pend_all_until > now) {
        c->dgen++;
        return;
    }
    /* not dropped at the first match: a touch that read the session before
     * the ending may write it again, see the marker and delete it again
     * (eid_session_glue.c's "dead markers"); a reader between those two
     * must not keep what it read */
    for (i = 0; i < c->npend; i++) {
        if (c->pend[i].until > now && c->pend[i].kl == kl && !memcmp(c->pend[i].k, k, kl)) {
            c->dgen++;
            break;
        }
    }
    while (c->npend > 0 && c->pend[c->npend - 1].until <= now)
        c->npend--;
}

/* ---- the subscriber thread ---------------------------------------------- */

static void set_live(rcache_t *c, int live)
{
    apr_thread_mutex_lock(c->mu);
    clear_all(c); /* going up or down: nothing read before may be served */
    c->live = live;
    apr_thread_mutex_unlock(c->mu);
}

static void invalidate(rcache_t *c, const redisReply *keys)
{
    eid_redis_t *r = c->r;
    apr_time_t now = apr_time_now();
    apr_thread_mutex_lock(c->mu);
    if (keys->type != REDIS_REPLY_ARRAY) {
        clear_all(c); /* nil: FLUSHDB / FLUSHALL */
    } else {
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *k = keys->element[i];
            if (k->type != REDIS_REPLY_STRING || k->len < r->plen)
                continue;
            remove_key(c, k->str + r->plen, k->len - r->plen);
            count_invalidation(c, k->str + r->plen, k->len - r->plen, now);
            c->inval++;
        }
    }
    apr_thread_mutex_unlock(c->mu);
}

static int sync_cmd(redisContext *x, int argc, const char **argv, const size_t *argl,
                    redisReply **out)
{
    *out = redisCommandArgv(x, argc, argv, argl);
    return *out && (*out)->type != REDIS_REPLY_ERROR ? 0 : -1;
}

/* subscribe on a fresh connection; 0 when invalidations will flow */
static int subscribe(rcache_t *c, redisContext *x)
{
    eid_redis_t *r = c->r;
    redisReply *rep;
    if (sync_cmd(x, 2, (const char *[]){"CLIENT", "ID"}, (size_t[]){6, 2}, &rep) != 0 ||
        rep->type != REDIS_REPLY_INTEGER) {
        eid_redis_note(r, RT_CACHE, "invalidation channel: CLIENT ID refused%s%.200s",
                       rep && rep->type == REDIS_REPLY_ERROR ? ": " : "",
                       rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "");
        if (rep)
            freeReplyObject(rep);
        return -1;
    }
    char id[24];
    int n = snprintf(id, sizeof(id), "%lld", rep->integer);
    freeReplyObject(rep);
    const char *tv[] = {"CLIENT", "TRACKING", "on", "REDIRECT", id, "BCAST", "PREFIX",
                        r->conf.prefix};
    size_t tl[] = {6, 8, 2, 8, (size_t)n, 5, 6, r->plen};
    /* an empty prefix: every key of the database */
    int rc = sync_cmd(x, r->plen ? 8 : 6, tv, tl, &rep);
    if (rc == 0)
        freeReplyObject(rep);
    else {
        eid_redis_note(r, RT_CACHE, "invalidation channel: CLIENT TRACKING refused: %.200s",
                       rep && rep->type == REDIS_REPLY_ERROR ? rep->str : x->errstr);
        if (rep)
            freeReplyObject(rep);
        return -1;
    }
    rc = sync_cmd(x, 2, (const char *[]){"SUBSCRIBE", "__redis__:invalidate"},
                  (size_t[]){9, 20}, &rep);
    if (rc != 0)
        eid_redis_note(r, RT_CACHE, "invalidation channel: SUBSCRIBE refused: %.200s",
                       rep && rep->type == REDIS_REPLY_ERROR ? rep->str : x->errstr);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* read what arrived; -1 when the connection is broken */
static int pump(rcache_t *c, redisContext *x, int *pongs)
{
    if (redisBufferRead(x) != REDIS_OK)
        return -1;
    for (;;) {
        void *v = NULL;
        if (redisGetReplyFromReader(x, &v) != REDIS_OK)
            return -1;
        if (!v)
            return 0;
        redisReply *m = v;
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
            m->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(m->element[0]->str, "message") == 0)
            invalidate(c, m->element[2]);
        else if (m->type == REDIS_REPLY_ARRAY && m->elements >= 1 &&
                 m->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(m->element[0]->str, "pong") == 0)
            (*pongs)++;
        freeReplyObject(m);
    }
}

static void *APR_THREAD_FUNC subscriber(apr_thread_t *t, void *data)
{
    rcache_t *c = data;
    eid_redis_t *r = c->r;
    int was_live = 0;
    while (!atomic_load(&c->stop)) {
        unsigned epoch;
        redisContext *x = eid_redis_connect_raw(r, &epoch);
        if (x && subscribe(c, x) == 0) {
            set_live(c, 1);
            if (was_live == -1)
                eid_log(EID_LOG_NOTICE, "EID06331", "redis store: invalidation channel up again: "
                                                    "the process cache is used again");
            was_live = 1;
            apr_time_t last_ping = apr_time_now(), pong_due = 0;
            int pongs = 0;
            while (!atomic_load(&c->stop)) {
                struct pollfd pfd = {.fd = x->fd, .events = POLLIN};
                int pr = poll(&pfd, 1, 50);
                if (pr < 0 && errno != EINTR)
                    break;
                if (pr > 0 && pump(c, x, &pongs) != 0)
                    break;
                apr_time_t now = apr_time_now();
                if (pongs > 0) {
                    pongs = 0;
                    pong_due = 0;
                }
                /* a half-open connection would hide invalidations: check it */
                if (pong_due && now > pong_due)
                    break;
                if (!pong_due && now - last_ping >= apr_time_from_msec(250)) {
                    int done = 0;
                    if (redisAppendCommandArgv(x, 1, (const char *[]){"PING"}, (size_t[]){4}) !=
                        REDIS_OK)
                        break;
                    while (!done)
                        if (redisBufferWrite(x, &done) != REDIS_OK)
                            break;
                    if (!done)
                        break;
                    last_ping = now;
                    pong_due = now + apr_time_from_msec(500);
                }
            }
            set_live(c, 0);
            if (!atomic_load(&c->stop)) {
                eid_redis_note(r, RT_CACHE, "invalidation channel down: the process cache is "
                                            "bypassed until it is back");
                was_live = -1;
            }
        }
        if (x)
            redisFree(x);
        for (int i = 0; i < 5 && !atomic_load(&c->stop); i++)
            apr_sleep(apr_time_from_msec(50));
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static apr_status_t stop_thread(void *data)
{
    rcache_t *c = data;
    apr_status_t rv;
    atomic_store(&c->stop, 1);
    if (c->thread)
        apr_thread_join(&rv, c->thread);
    c->thread = NULL;
    return APR_SUCCESS;
}

apr_status_t eid_rcache_start(rcache_t *c, apr_pool_t *pchild)
{
    if (!c || c->thread)
        return APR_SUCCESS;
    atomic_store(&c->stop, 0);
    apr_status_t rv = apr_thread_create(&c->thread, NULL, subscriber, c, pchild);
    /* a PRE-cleanup: the thread's own pool is a subpool of pchild, destroyed
     * before pchild's ordinary cleanups run; the thread must be gone first */
    if (rv == APR_SUCCESS)
        apr_pool_pre_cleanup_register(pchild, c, stop_thread);
    return rv;
}
