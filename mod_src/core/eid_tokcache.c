/*
 * eid_tokcache.c - token cache: apr_hash over SHA-256 keys, an LRU list,
 * identities flattened into one malloc'd block per entry.
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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* flatten() must know every pointer member of eid_identity_t: this fails to
 * compile (on LP64) when the struct changes, before a new string member
 * could be left pointing into a freed request pool. */
_Static_assert(sizeof(void *) != 8 || sizeof(eid_identity_t) ==
                                          29 * sizeof(void *) + 2 * sizeof(apr_time_t),
               "eid_identity_t changed: update flatten() in eid_tokcache.c");

typedef struct entry {
    unsigned char key[EID_TOKCACHE_KEY_LEN];
    const void *owner;
    apr_time_t expires;
    struct entry *prev, *next; /* LRU: head = most recent */
    const eid_identity_t *id;  /* inside this block */
} entry_t;

struct eid_tokcache {
    apr_pool_t *pool; /* the hash table's memory; a child of APR's global pool */
    apr_thread_mutex_t *mu;
    apr_hash_t *h;
    entry_t *head, *tail;
    int count, max;
    apr_interval_time_t max_ttl;
};

static eid_tokcache_t *global;
static EVP_MD *sha256; /* fetched once: an implicit fetch per digest costs */

void eid_tokcache_key(const char *token, apr_size_t len,
                      unsigned char key[EID_TOKCACHE_KEY_LEN])
{
    unsigned int n = 0;
    EVP_Digest(token, len, key, &n, sha256 ? sha256 : EVP_sha256(), NULL);
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

static void unlink_entry(eid_tokcache_t *c, entry_t *e)
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

static void push_front(eid_tokcache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void drop(eid_tokcache_t *c, entry_t *e)
{
    apr_hash_set(c->h, e->key, EID_TOKCACHE_KEY_LEN, NULL);
    unlink_entry(c, e);
    c->count--;
    free(e);
}

static apr_status_t cache_cleanup(void *data)
{
    eid_tokcache_t *c = data;
    entry_t *e = c->head, *next;
    for (; e; e = next) {
        next = e->next;
        free(e);
    }
    c->head = c->tail = NULL;
    c->count = 0;
    if (global == c)
        global = NULL;
    apr_pool_destroy(c->pool);
    return APR_SUCCESS;
}

eid_tokcache_t *eid_tokcache_create(apr_pool_t *p, int entries, apr_interval_time_t max_ttl)
{
    eid_tokcache_t *c = apr_pcalloc(p, sizeof(*c));

    if (!sha256)
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    /* Not a subpool of `p`: the table grows under our own lock, while other
     * threads may allocate from `p`; the global pool's allocator is locked. */
    if (apr_pool_create_ex(&c->pool, NULL, NULL, NULL) != APR_SUCCESS)
        return NULL;
    if (apr_thread_mutex_create(&c->mu, APR_THREAD_MUTEX_DEFAULT, c->pool) != APR_SUCCESS) {
        apr_pool_destroy(c->pool);
        return NULL;
    }
    c->h = apr_hash_make_custom(c->pool, key_hash);
    c->max = entries > 0 ? entries : 1;
    c->max_ttl = max_ttl;
    apr_pool_cleanup_register(p, c, cache_cleanup, apr_pool_cleanup_null);
    return c;
}

int eid_tokcache_get(eid_tokcache_t *c, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                     apr_time_t now, eid_tokcache_accept_fn accept, const void *baton,
                     apr_pool_t *p, eid_identity_t **out)
{
    entry_t *e;
    int hit = 0;

    apr_thread_mutex_lock(c->mu);
    e = apr_hash_get(c->h, key, EID_TOKCACHE_KEY_LEN);
    if (e && e->expires <= now) {
        drop(c, e);
        e = NULL;
    }
    if (e)
        hit = accept ? accept(e->owner, baton) : e->owner == baton;
    if (hit) {
        unlink_entry(c, e);
        push_front(c, e);
        /* Copied under the lock: the entry may be evicted right after. */
        *out = eid_identity_copy(p, e->id);
    }
    apr_thread_mutex_unlock(c->mu);
    return hit;
}

void eid_tokcache_put(eid_tokcache_t *c, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                      const void *owner, const eid_identity_t *id, apr_time_t expires,
                      apr_time_t now)
{
    apr_time_t until = now + c->max_ttl;
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
    e->expires = until;
    e->prev = e->next = NULL;
    flatten((char *)e + ALIGN8(sizeof(entry_t)), id);
    e->id = (const eid_identity_t *)((char *)e + ALIGN8(sizeof(entry_t)));

    apr_thread_mutex_lock(c->mu);
    old = apr_hash_get(c->h, key, EID_TOKCACHE_KEY_LEN);
    if (old)
        drop(c, old);
    while (c->count >= c->max && c->tail)
        drop(c, c->tail);
    apr_hash_set(c->h, e->key, EID_TOKCACHE_KEY_LEN, e);
    push_front(c, e);
    c->count++;
    apr_thread_mutex_unlock(c->mu);
}

int eid_tokcache_count(eid_tokcache_t *c)
{
    int n;
    apr_thread_mutex_lock(c->mu);
    n = c->count;
    apr_thread_mutex_unlock(c->mu);
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
