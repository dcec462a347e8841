/*
 * eid_store_mem.c - the in-memory store backend ("memory"): one process,
 * unit tests and the reference semantics of eid_store.h.
 *
 * A chained hash table over malloc'd entries (key and value in one block),
 * a list of entries in order of their last write (oldest first) for
 * eviction, a bound on entries, lazy expiry.  One apr_thread_mutex guards
 * the table, the list, the counters and the clock.
 *
 * Why malloc and not a pool: entries are replaced and deleted all the time
 * (every login, touch, logout); memory taken from a long-lived APR pool is
 * only returned when the pool goes, so the store would grow without bound.
 */
#include "eid/eid_store.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *hnext;        /* hash chain */
    struct entry *older, *newer; /* write order; head = oldest */
    apr_time_t expires;
    apr_uint32_t hash;
    apr_size_t klen, vlen;
    unsigned char data[];       /* key, then value, then a NUL */
} entry_t;

typedef struct mem {
    apr_thread_mutex_t *mu;
    entry_t **buckets;          /* calloc'd; nbuckets a power of two */
    apr_size_t nbuckets;
    entry_t *oldest, *newest;
    apr_uint64_t count, max;
    apr_uint64_t evicted, index_evicted, errors;
    eid_store_clock_fn clock;   /* set before threads use the store */
    void *clock_baton;
} mem_t;

static apr_time_t now_of(mem_t *m)
{
    return m->clock ? m->clock(m->clock_baton) : apr_time_now();
}

/* FNV-1a: keys here are HMAC outputs and random markers; this backend is
 * not the one exposed to a production load. */
static apr_uint32_t hash_of(const char *k, apr_size_t n)
{
    apr_uint32_t h = 2166136261u;
    for (apr_size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

static entry_t **slot_of(mem_t *m, const char *k, apr_size_t n, apr_uint32_t h)
{
    entry_t **pp = &m->buckets[h & (m->nbuckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->klen == n && memcmp((*pp)->data, k, n) == 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void list_unlink(mem_t *m, entry_t *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        m->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        m->newest = e->older;
    e->older = e->newer = NULL;
}

static void list_append(mem_t *m, entry_t *e)
{
    e->older = m->newest;
    e->newer = NULL;
    if (m->newest)
        m->newest->newer = e;
    else
        m->oldest = e;
    m->newest = e;
}

/* Removes the entry at *pp (a hash slot) and frees it.  Under the mutex. */
static void remove_at(mem_t *m, entry_t **pp)
{
    entry_t *e = *pp;
    *pp = e->hnext;
    list_unlink(m, e);
    m->count--;
    free(e);
}

static void remove_entry(mem_t *m, entry_t *e)
{
    remove_at(m, slot_of(m, (const char *)e->data, e->klen, e->hash));
}

/* The live entry for a key, or NULL (an expired one is dropped).  Under the mutex. */
static entry_t *lookup(mem_t *m, const char *k, apr_size_t n, apr_time_t now)
{
    entry_t **pp = slot_of(m, k, n, hash_of(k, n));
    if (!*pp)
        return NULL;
    if ((*pp)->expires <= now) {
        remove_at(m, pp);
        return NULL;
    }
    return *pp;
}

/* Room for one more entry: expired ones first, then the oldest written. */
static void make_room(mem_t *m, apr_time_t now)
{
    if (m->count < m->max)
        return;
    for (entry_t *e = m->oldest, *next; e; e = next) {
        next = e->newer;
        if (e->expires <= now)
            remove_entry(m, e);
    }
    while (m->count >= m->max && m->oldest) {
        remove_entry(m, m->oldest);
        m->evicted++;
    }
}

/* Create or replace.  Under the mutex.  ERROR only when malloc fails. */
static eid_store_rc_e put(mem_t *m, const char *k, apr_size_t klen, const unsigned char *v,
                          apr_size_t vlen, apr_time_t expires, apr_time_t now)
{
    entry_t *e = malloc(sizeof(*e) + klen + vlen + 1);
    if (!e) {
        m->errors++;
        return EID_STORE_ERROR;
    }
    e->hash = hash_of(k, klen);
    e->klen = klen;
    e->vlen = vlen;
    e->expires = expires;
    memcpy(e->data, k, klen);
    if (vlen)
        memcpy(e->data + klen, v, vlen);
    e->data[klen + vlen] = 0;
    entry_t **pp = slot_of(m, k, klen, e->hash);
    if (*pp)
        remove_at(m, pp);
    make_room(m, now);
    pp = slot_of(m, k, klen, e->hash); /* make_room may have changed the chain */
    e->hnext = NULL;
    *pp = e;
    list_append(m, e);
    m->count++;
    return EID_STORE_OK;
}

static eid_store_rc_e mem_get(void *b, apr_pool_t *p, const char *key, apr_size_t klen,
                              unsigned char **val, apr_size_t *vlen)
{
    mem_t *m = b;
    eid_store_rc_e rc = EID_STORE_NOTFOUND;
    if (apr_thread_mutex_lock(m->mu) != APR_SUCCESS)
        return EID_STORE_ERROR;
    entry_t *e = lookup(m, key, klen, now_of(m));
    if (e) {
        /* p is the caller's own pool (one thread); copying under our lock is
         * what keeps the value intact against a concurrent replace. */
        *val = (unsigned char *)apr_pstrmemdup(p, (const char *)e->data + e->klen, e->vlen);
        *vlen = e->vlen;
        rc = EID_STORE_OK;
    }
    apr_thread_mutex_unlock(m->mu);
    return rc;
}

static eid_store_rc_e mem_set(void *b, const char *key, apr_size_t klen,
                              const unsigned char *val, apr_size_t vlen, apr_interval_time_t ttl)
{
    mem_t *m = b;
    if (apr_thread_mutex_lock(m->mu) != APR_SUCCESS)
        return EID_STORE_ERROR;
    apr_time_t now = now_of(m);
    eid_store_rc_e rc = put(m, key, klen, val, vlen, now + ttl, now);
    apr_thread_mutex_unlock(m->mu);
    return rc;
}

static eid_store_rc_e mem_add(void *b, const char *key, apr_size_t klen,
                              const unsigned char *val, apr_size_t vlen, apr_interval_time_t ttl)
{
    mem_t *m = b;
    eid_store_rc_e rc;
    if (apr_thread_mutex_lock(m->mu) != APR_SUCCESS)
        return EID_STORE_ERROR;
    apr_time_t now = now_of(m);
    /* check and insert under one lock: that is the whole point of add */
    if (lookup(m, key, klen, now))
        rc = EID_STORE_EXISTS;
    else
        rc = put(m, key, klen, val, vlen, now + ttl, now);
    apr_thread_mutex_unlock(m->mu);
    return rc;
}

static eid_store_rc_e mem_touch(void *b, const char *key, apr_size_t klen,
                                apr_interval_time_t ttl)
{
    mem_t *m = b;
    eid_store_rc_e rc = EID_STORE_NOTFOUND;
    if (apr_thread_mutex_lock(m->mu) != APR_SUCCESS)
        return EID_STORE_ERROR;
    apr_time_t now = now_of(m);
    entry_t *e = lookup(m, key, klen, now);
    if (e) {
        e->expires = now + ttl;
        rc = EID_STORE_OK;
    }
    apr_thread_mutex_unlock(m->mu);
    return rc;
}

static eid_store_rc_e mem_del(void *b, const char *key, apr_size_t klen)
{
    mem_t *m = b;
    eid_store_rc_e rc = EID_STORE_NOTFOUND;
    if (apr_thread_mutex_lock(m->mu) != APR_SUCCESS)
        return EID_STORE_ERROR;
    entry_t *e = lookup(m, key, klen, now_of(m));
    if (e) {
        remove_entry(m, e);
        rc = EID_STORE_OK;
    }
    apr_thread_mutex_unlock(m->mu);
    return rc;
}

static eid_store_rc_e mem_index_add(void *b, const char *idx, apr_size_t ilen,
                                    const char *member, apr_size_t mlen, apr_interval_time_t ttl)
{
    mem_t *m = b;
    eid_store_rc_e rc = EID_STORE_OK;
    /* the codec's scratch: a pool of this call only, never shared */
    apr_pool_t *tmp;
    if (apr_pool_create(&tmp, NULL) != APR_SUCCESS)
        return EID_STORE_ERROR;
    if (apr_thread_mutex_lock(m->mu) != APR_SUCCESS) {
        apr_pool_destroy(tmp);
        return EID_STORE_ERROR;
    }
    apr_time_t now = now_of(m);
    entry_t *e = lookup(m, idx, ilen, now);
    unsigned char *nv;
    apr_size_t nlen, evlen;
    const char *ev;
    int u = eid_store_index_update(tmp, e ? e->data + e->klen : NULL, e ? e->vlen : 0, member,
                                   mlen, &nv, &nlen, &ev, &evlen);
    if (u < 0) {
        m->errors++;
        rc = EID_STORE_ERROR;
    } else {
        apr_time_t expires = now + ttl;
        if (e && e->expires > expires)
            expires = e->expires; /* never shorten: older members still need it */
        if (u == 1)
            e->expires = expires;
        else
            rc = put(m, idx, ilen, nv, nlen, expires, now);
        if (rc == EID_STORE_OK && ev) {
            entry_t *gone = lookup(m, ev, evlen, now);
            if (gone)
                remove_entry(m, gone);
            m->index_evicted++;
        }
    }
    apr_thread_mutex_unlock(m->mu);
    apr_pool_destroy(tmp);
    return rc;
}

static eid_store_rc_e mem_index_take(void *b, apr_pool_t *p, const char *idx, apr_size_t ilen,
                                     apr_array_header_t **members)
{
    mem_t *m = b;
    eid_store_rc_e rc = EID_STORE_NOTFOUND;
    if (apr_thread_mutex_lock(m->mu) != APR_SUCCESS)
        return EID_STORE_ERROR;
    entry_t *e = lookup(m, idx, ilen, now_of(m));
    if (e) {
        rc = eid_store_index_decode(p, e->data + e->klen, e->vlen, members) == 0
                 ? EID_STORE_OK
                 : EID_STORE_ERROR;
        /* a malformed index is dropped too: it can never be read again */
        remove_entry(m, e);
        if (rc == EID_STORE_ERROR)
            m->errors++;
    }
    apr_thread_mutex_unlock(m->mu);
    return rc;
}

static eid_store_rc_e mem_stats(void *b, eid_store_stats_t *out)
{
    mem_t *m = b;
    if (apr_thread_mutex_lock(m->mu) != APR_SUCCESS)
        return EID_STORE_ERROR;
    out->entries = m->count;
    out->max_entries = m->max;
    out->evicted = m->evicted;
    out->index_evicted = m->index_evicted;
    out->errors = m->errors;
    apr_thread_mutex_unlock(m->mu);
    return EID_STORE_OK;
}

static const eid_store_ops_t mem_ops = {
    .name = "memory",
    .get = mem_get,
    .set = mem_set,
    .add = mem_add,
    .touch = mem_touch,
    .del = mem_del,
    .index_add = mem_index_add,
    .index_take = mem_index_take,
    .flags = EID_STORE_F_ATOMIC_ADD | EID_STORE_F_LOSSY_INDEX, /* the oldest key goes when full */
    .stats = mem_stats,
};

/* Pool cleanup: every entry and the table.  No thread uses the store now. */
static apr_status_t mem_cleanup(void *data)
{
    mem_t *m = data;
    for (entry_t *e = m->oldest, *next; e; e = next) {
        next = e->newer;
        free(e);
    }
    free(m->buckets);
    m->buckets = NULL;
    m->oldest = m->newest = NULL;
    m->count = 0;
    return APR_SUCCESS;
}

eid_store_t *eid_store_mem_create(apr_pool_t *p, int max_entries)
{
    if (!p)
        return NULL;
    mem_t *m = apr_pcalloc(p, sizeof(*m));
    m->max = max_entries > 0 ? (apr_uint64_t)max_entries : 10000;
    m->nbuckets = 16;
    while (m->nbuckets < m->max && m->nbuckets < (1u << 20))
        m->nbuckets <<= 1;
    if (apr_thread_mutex_create(&m->mu, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS)
        return NULL;
    m->buckets = calloc(m->nbuckets, sizeof(entry_t *));
    if (!m->buckets)
        return NULL;
    /* registered after the mutex: cleanups run in reverse, so the entries
     * go before the mutex does */
    apr_pool_cleanup_register(p, m, mem_cleanup, apr_pool_cleanup_null);
    return eid_store_create(p, &mem_ops, m);
}

void eid_store_mem_set_clock(eid_store_t *s, eid_store_clock_fn fn, void *baton)
{
    if (!s || eid_store_ops(s) != &mem_ops)
        return;
    mem_t *m = eid_store_backend(s);
    apr_thread_mutex_lock(m->mu);
    m->clock = fn;
    m->clock_baton = baton;
    apr_thread_mutex_unlock(m->mu);
}
