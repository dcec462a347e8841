/*
 * eid_tokcache.c - token cache: shards of apr_hash over SHA-256 keys, an
 * LRU list per shard, identities flattened into one malloc'd, reference-
 * counted block per entry (a hit shares it with the request, no copy).
 *
 * Why one block and not a pool per entry: an APR pool costs at least one
 * 8 KiB node, a flattened identity well under 1 KiB; with ten thousand
 * entries per process the difference is tens of megabytes.
 */
#include "eid/eid_tokcache.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* flatten() must know every pointer member of eid_identity_t: this fails to
 * compile (on LP64) when the struct changes, before a new string member
 * could be left pointing into a freed request pool. */
_Static_assert(sizeof(void *) != 8 || sizeof(eid_identity_t) ==
                                          34 * sizeof(void *) + 2 * sizeof(apr_time_t),
               "eid_identity_t changed: update flatten() in eid_tokcache.c");

typedef struct shard shard_t;

typedef struct entry {
    unsigned char key[EID_TOKCACHE_KEY_LEN];
    const void *owner;
    apr_uint32_t gen;          /* the owner's state the decision depended on */
    apr_time_t expires;
    struct entry *prev, *next; /* LRU: head = most recent */
    /* One reference for the table while the entry is in it, one per request
     * pool that holds its identity: the block is freed when the last goes,
     * without the shard's lock (a request may outlive the cache at exit).
     * C11 atomics, not apr_atomic: ThreadSanitizer must see the ordering. */
    atomic_uint refs;
    const eid_identity_t *id;  /* inside this block */
} entry_t;

/* The table is split by key so that threads of a busy child rarely wait on
 * each other; within a shard, eviction is least-recently-used.
 * Why a pool per shard: apr_hash_set() allocates (new entries, a doubled
 * bucket array) from the table's pool, and an APR pool is not thread-safe -
 * its allocator's mutex guards only the allocator's free lists, not the
 * pool's active node.  With one pool for all shards, two threads inserting
 * into two shards (two locks) corrupted the heap and handed out other
 * tokens' identities.  A shard's pool is touched only under its lock. */
struct shard {
    apr_thread_mutex_t *mu;
    apr_pool_t *pool; /* the table's memory and the lock; a child of APR's global pool */
    apr_hash_t *h;
    entry_t *head, *tail;
    int count, max;
};

#define MAX_SHARDS 16
/* Below this many entries per shard, one shard: a small cache keeps exact LRU. */
#define MIN_SHARD_ENTRIES 256

struct eid_tokcache {
    shard_t shard[MAX_SHARDS];
    unsigned nshards; /* a power of two */
    apr_interval_time_t max_ttl;
};

/* Set by eid_tokcache_init() at child start-up, before any thread reads it. */
static eid_tokcache_t *global;
/* Fetched once (pthread_once): an implicit fetch per digest costs.  Read-only
 * after that; OpenSSL's EVP_MD objects may be shared between threads. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
/* A digest context per thread (thread-specific data, freed at thread exit):
 * never shared, so never locked. */
static pthread_key_t md_ctx_key;
static pthread_once_t md_ctx_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void md_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void md_ctx_key_create(void)
{
    if (pthread_key_create(&md_ctx_key, md_ctx_free) != 0)
        md_ctx_key = (pthread_key_t)-1;
}

/* A digest context per thread, kept: creating one per token costs an
 * allocation and a provider look-up each time. */
static EVP_MD_CTX *thread_md_ctx(void)
{
    EVP_MD_CTX *ctx;
    pthread_once(&md_ctx_once, md_ctx_key_create);
    if (md_ctx_key == (pthread_key_t)-1)
        return NULL;
    if ((ctx = pthread_getspecific(md_ctx_key)) == NULL && (ctx = EVP_MD_CTX_new()) != NULL &&
        pthread_setspecific(md_ctx_key, ctx) != 0) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

void eid_tokcache_key(const char *token, apr_size_t len,
                      unsigned char key[EID_TOKCACHE_KEY_LEN])
{
    const EVP_MD *md;
    EVP_MD_CTX *ctx = thread_md_ctx();
    unsigned int n = 0;

    pthread_once(&sha256_once, sha256_fetch);
    md = sha256 ? sha256 : EVP_sha256();

    if (ctx && EVP_DigestInit_ex2(ctx, md, NULL) && EVP_DigestUpdate(ctx, token, len) &&
        EVP_DigestFinal_ex(ctx, key, &n) && n == EID_TOKCACHE_KEY_LEN)
        return;
    /* No context could be had: the one-shot path (its own allocation). */
    if (!EVP_Digest(token, len, key, &n, md, NULL) || n != EID_TOKCACHE_KEY_LEN)
        abort(); /* SHA-256 is not optional: a wrong key would be a wrong identity */
}

/* The key is already a uniformly distributed hash. */
static unsigned int key_hash(const char *key, apr_ssize_t *klen)
{
    unsigned int h;
    (void)klen;
    memcpy(&h, key, sizeof(h));
    return h;
}

/* ---- flattening ------------------------------------------------------------------ */

#define ALIGN8(n) (((n) + 7) & ~(apr_size_t)7)

static apr_size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static apr_size_t arr_size(const apr_array_header_t *a)
{
    apr_size_t n = 0;
    int i;
    if (!a)
        return 0;
    /* 7 bytes of slack: put_arr() aligns the header after earlier strings */
    n = 7 + ALIGN8(sizeof(apr_array_header_t)) + ALIGN8(sizeof(char *) * (apr_size_t)a->nelts);
    for (i = 0; i < a->nelts; i++)
        n += str_size(APR_ARRAY_IDX(a, i, const char *));
    return n;
}

#define STR_FIELDS EID_IDENTITY_STR_FIELDS
#define ARR_FIELDS EID_IDENTITY_ARR_FIELDS

static apr_size_t flat_size(const eid_identity_t *id)
{
    apr_size_t n = ALIGN8(sizeof(eid_identity_t));
#define S(f) n += str_size(id->f);
#define A(f) n += arr_size(id->f);
    STR_FIELDS(S) ARR_FIELDS(A)
#undef S
#undef A
    return n;
}

static char *put_str(char **cur, const char *s)
{
    char *d;
    apr_size_t n;
    if (!s)
        return NULL;
    n = strlen(s) + 1;
    d = *cur;
    memcpy(d, s, n);
    *cur += n;
    return d;
}

/* An array header that is only ever read: pool NULL, never pushed to. */
static apr_array_header_t *put_arr(char **cur, const apr_array_header_t *a)
{
    apr_array_header_t *d;
    char **elts;
    int i;
    if (!a)
        return NULL;
    *cur = (char *)(((uintptr_t)*cur + 7) & ~(uintptr_t)7);
    d = (apr_array_header_t *)*cur;
    *cur += ALIGN8(sizeof(*d));
    elts = (char **)*cur;
    *cur += ALIGN8(sizeof(char *) * (apr_size_t)a->nelts);
    for (i = 0; i < a->nelts; i++)
        elts[i] = put_str(cur, APR_ARRAY_IDX(a, i, const char *));
    d->pool = NULL;
    d->elt_size = sizeof(char *);
    d->nelts = a->nelts;
    d->nalloc = a->nelts;
    d->elts = (char *)elts;
    return d;
}

/* The block is malloc'd (suitably aligned); each array header and pointer
 * table is placed at the next 8-byte boundary, strings anywhere. */
static void flatten(char *block, const eid_identity_t *src)
{
    eid_identity_t *d = (eid_identity_t *)block;
    char *cur = block + ALIGN8(sizeof(eid_identity_t));

    *d = *src;
#define A(f) d->f = put_arr(&cur, src->f);
#define S(f) d->f = put_str(&cur, src->f);
    ARR_FIELDS(A) STR_FIELDS(S)
#undef A
#undef S
}

/* ---- the cache -------------------------------------------------------------------- */

static shard_t *shard_of(eid_tokcache_t *c, const unsigned char *key)
{
    /* the last byte: key_hash() already uses the first four */
    return &c->shard[key[EID_TOKCACHE_KEY_LEN - 1] & (c->nshards - 1)];
}

static void unref(entry_t *e)
{
    /* acq_rel: the last owner sees every other owner's reads finished */
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        free(e);
}

static apr_status_t release_entry(void *data)
{
    unref(data);
    return APR_SUCCESS;
}

static void unlink_entry(shard_t *s, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(shard_t *s, entry_t *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head)
        s->head->prev = e;
    s->head = e;
    if (!s->tail)
        s->tail = e;
}

/* Out of the table; freed once no request holds it any more. */
static void drop(shard_t *s, entry_t *e)
{
    apr_hash_set(s->h, e->key, EID_TOKCACHE_KEY_LEN, NULL);
    unlink_entry(s, e);
    s->count--;
    unref(e);
}

static apr_status_t cache_cleanup(void *data)
{
    eid_tokcache_t *c = data;
    unsigned i;

    for (i = 0; i < c->nshards; i++) {
        shard_t *s = &c->shard[i];
        entry_t *e = s->head, *next;
        for (; e; e = next) {
            next = e->next;
            unref(e);
        }
        s->head = s->tail = NULL;
        s->count = 0;
        apr_pool_destroy(s->pool);
    }
    if (global == c)
        global = NULL;
    return APR_SUCCESS;
}

eid_tokcache_t *eid_tokcache_create(apr_pool_t *p, int entries, apr_interval_time_t max_ttl)
{
    eid_tokcache_t *c = apr_pcalloc(p, sizeof(*c));
    unsigned i;

    if (entries < 1)
        entries = 1;
    pthread_once(&sha256_once, sha256_fetch);
    c->nshards = 1;
    while (c->nshards < MAX_SHARDS && entries / (int)(c->nshards * 2) >= MIN_SHARD_ENTRIES)
        c->nshards *= 2;
    for (i = 0; i < c->nshards; i++) {
        shard_t *s = &c->shard[i];
        /* Not subpools of `p`: other threads may allocate from `p` (pchild)
         * while a shard grows.  Children of APR's global pool: creating and
         * destroying them takes the global allocator's mutex. */
        if (apr_pool_create_ex(&s->pool, NULL, NULL, NULL) != APR_SUCCESS ||
            apr_thread_mutex_create(&s->mu, APR_THREAD_MUTEX_DEFAULT, s->pool) != APR_SUCCESS) {
            if (s->pool)
                apr_pool_destroy(s->pool);
            while (i-- > 0)
                apr_pool_destroy(c->shard[i].pool);
            return NULL;
        }
        s->h = apr_hash_make_custom(s->pool, key_hash);
        /* the first shards take the remainder: the total is exactly `entries` */
        s->max = entries / (int)c->nshards + ((int)i < entries % (int)c->nshards);
    }
    c->max_ttl = max_ttl;
    apr_pool_cleanup_register(p, c, cache_cleanup, apr_pool_cleanup_null);
    return c;
}

int eid_tokcache_get(eid_tokcache_t *c, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                     apr_time_t now, eid_tokcache_accept_fn accept, const void *baton,
                     apr_pool_t *p, eid_identity_t **out)
{
    shard_t *s = shard_of(c, key);
    entry_t *e;
    int hit = 0;

    apr_thread_mutex_lock(s->mu);
    e = apr_hash_get(s->h, key, EID_TOKCACHE_KEY_LEN);
    if (e && e->expires <= now) {
        drop(s, e);
        e = NULL;
    }
    if (e) {
        hit = accept ? accept(e->owner, e->gen, baton) : e->owner == baton;
        if (hit < 0) { /* what the decision depended on has changed */
            drop(s, e);
            hit = 0;
        }
    }
    if (hit) {
        if (s->head != e) { /* a hot token is at the head already: no writes */
            unlink_entry(s, e);
            push_front(s, e);
        }
        /* relaxed: the table's reference keeps it alive while we hold the lock */
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    }
    apr_thread_mutex_unlock(s->mu);
    if (!hit)
        return 0;
    /* The pool holds a reference: the entry may be evicted or replaced at
     * once, its block lives until `p` is cleared.  The struct is copied, so
     * the caller may change its own scalars; strings and arrays are shared. */
    apr_pool_cleanup_register(p, e, release_entry, apr_pool_cleanup_null);
    *out = apr_pmemdup(p, e->id, sizeof(*e->id));
    return 1;
}

void eid_tokcache_put(eid_tokcache_t *c, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                      const void *owner, const eid_identity_t *id, apr_time_t expires,
                      apr_time_t now)
{
    eid_tokcache_put_gen(c, key, owner, 0, id, expires, now);
}

void eid_tokcache_put_gen(eid_tokcache_t *c, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                          const void *owner, apr_uint32_t gen, const eid_identity_t *id,
                          apr_time_t expires, apr_time_t now)
{
    apr_time_t until = now + c->max_ttl;
    shard_t *s = shard_of(c, key);
    apr_size_t size;
    entry_t *e, *old;

    if (expires && expires < until)
        until = expires;
    if (until <= now)
        return;
    /* Built outside the lock; only linking happens under it. */
    size = ALIGN8(sizeof(entry_t)) + flat_size(id);
    e = malloc(size);
    if (!e)
        return;
    memcpy(e->key, key, EID_TOKCACHE_KEY_LEN);
    e->owner = owner;
    e->gen = gen;
    e->expires = until;
    e->prev = e->next = NULL;
    atomic_init(&e->refs, 1);
    flatten((char *)e + ALIGN8(sizeof(entry_t)), id);
    e->id = (const eid_identity_t *)((char *)e + ALIGN8(sizeof(entry_t)));

    apr_thread_mutex_lock(s->mu);
    old = apr_hash_get(s->h, key, EID_TOKCACHE_KEY_LEN);
    if (old)
        drop(s, old);
    while (s->count >= s->max && s->tail)
        drop(s, s->tail);
    apr_hash_set(s->h, e->key, EID_TOKCACHE_KEY_LEN, e);
    push_front(s, e);
    s->count++;
    apr_thread_mutex_unlock(s->mu);
}

int eid_tokcache_count(eid_tokcache_t *c)
{
    unsigned i;
    int n = 0;
    for (i = 0; i < c->nshards; i++) {
        apr_thread_mutex_lock(c->shard[i].mu);
        n += c->shard[i].count;
        apr_thread_mutex_unlock(c->shard[i].mu);
    }
    return n;
}

apr_status_t eid_tokcache_init(apr_pool_t *pchild, int entries, apr_interval_time_t max_ttl)
{
    eid_tokcache_t *c;

    global = NULL;
    if (entries <= 0)
        return APR_SUCCESS;
    c = eid_tokcache_create(pchild, entries, max_ttl);
    if (!c)
        return APR_ENOMEM;
    global = c;
    return APR_SUCCESS;
}

eid_tokcache_t *eid_tokcache_global(void)
{
    return global;
}
