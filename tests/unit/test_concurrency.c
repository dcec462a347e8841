/*
 * Stress tests: every structure of the core that threads share, driven by
 * several threads at once with thousands of distinct keys, every answer
 * checked against the key it was asked for (the identity is derived from the
 * token, so a wrong identity is seen, not only a crash).
 *
 *  - the token cache in three sizes: 16384 entries (16 shards, no eviction),
 *    the introspection cache's 4096 (8 shards, eviction) and 1000 (4 shards,
 *    constant eviction);
 *  - a key set: readers select and verify while other threads re-fetch a
 *    document whose keys rotate;
 *  - eid_bearer_validate() through the process-wide cache while the
 *    provider's key set rotates (a key withdrawn under a cached token).
 *
 * Run plainly, under valgrind and under ThreadSanitizer (make test-tsan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <cjose/cjose.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eid/eid_bearer.h"
#include "eid/eid_jwks.h"
#include "eid/eid_tokcache.h"

#define THREADS 4
#define ISS "https://op.stress"
#define AUD "api://stress"
#define NOW_S 1700000000L

static apr_pool_t *pool;
static const apr_time_t now = (apr_time_t)NOW_S * APR_USEC_PER_SEC;

static int setup(void **state)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

/* Threads start (and change phase) together so that they really overlap. */
static pthread_barrier_t line;

static void start_line(void)
{
    pthread_barrier_wait(&line);
}

static void run_threads(void *(APR_THREAD_FUNC *fn)(apr_thread_t *, void *), void *jobs,
                        size_t job_size, int n)
{
    apr_thread_t *t[16];
    apr_status_t rv;
    int i;
    pthread_barrier_init(&line, NULL, (unsigned)n);
    for (i = 0; i < n; i++)
        assert_int_equal(apr_thread_create(&t[i], NULL, fn, (char *)jobs + job_size * (size_t)i,
                                           pool), APR_SUCCESS);
    for (i = 0; i < n; i++)
        apr_thread_join(&rv, t[i]);
    pthread_barrier_destroy(&line);
}

/* ---- token cache ----------------------------------------------------------------- */

#define TOKENS 2000

typedef struct cjob {
    eid_tokcache_t *c;
    int id, evicting;
    int hits, misses, bad; /* cmocka asserts only in the main thread */
} cjob_t;

static const char *token_of(apr_pool_t *p, int thread, int i)
{
    return apr_psprintf(p, "token-%d-%05d", thread, i);
}

static eid_identity_t *identity_of(apr_pool_t *p, const char *tok)
{
    eid_identity_t *id = eid_identity_make(p);
    apr_array_header_t *roles = apr_array_make(p, 2, sizeof(const char *));
    id->method = EID_METHOD_BEARER;
    id->profile = "stress";
    id->subject = tok;
    id->pnr = apr_pstrcat(p, "pnr-", tok, NULL);
    APR_ARRAY_PUSH(roles, const char *) = apr_pstrcat(p, "role-", tok, NULL);
    id->roles = roles;
    id->expires = now + apr_time_from_sec(600);
    return id;
}

/* Is `id` exactly the identity stored for `tok`? */
static int matches(const eid_identity_t *id, const char *tok)
{
    return id && id->subject && !strcmp(id->subject, tok) && id->pnr && !strncmp(id->pnr, "pnr-", 4) &&
           !strcmp(id->pnr + 4, tok) && id->roles && id->roles->nelts == 1 &&
           !strcmp(APR_ARRAY_IDX(id->roles, 0, const char *) + 5, tok);
}

static int owner;

static void lookup(cjob_t *j, apr_pool_t *p, const char *tok, int must_hit)
{
    unsigned char k[EID_TOKCACHE_KEY_LEN];
    eid_identity_t *out = NULL;
    eid_tokcache_key(tok, strlen(tok), k);
    if (eid_tokcache_get(j->c, k, now, NULL, &owner, p, &out)) {
        j->hits++;
        j->bad += !matches(out, tok);
    }
    else {
        j->misses++;
        j->bad += must_hit;
    }
}

static void *APR_THREAD_FUNC cache_worker(apr_thread_t *t, void *data)
{
    cjob_t *j = data;
    apr_pool_t *p;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    start_line();
    /* every thread inserts its own tokens: new keys in every shard at once */
    for (i = 0; i < TOKENS; i++) {
        unsigned char k[EID_TOKCACHE_KEY_LEN];
        const char *tok = token_of(p, j->id, i);
        eid_tokcache_key(tok, strlen(tok), k);
        eid_tokcache_put(j->c, k, &owner, identity_of(p, tok), 0, now);
        /* and reads another thread's while it is being written */
        if (i % 4 == 0)
            lookup(j, p, token_of(p, (j->id + 1) % THREADS, i), 0);
        if (i % 64 == 0)
            apr_pool_clear(p);
    }
    apr_pool_clear(p);
    start_line(); /* every put is done */
    for (i = 0; i < TOKENS; i++) {
        lookup(j, p, token_of(p, j->id, i), !j->evicting);
        lookup(j, p, token_of(p, (j->id + 2) % THREADS, TOKENS - 1 - i), !j->evicting);
        if (i % 64 == 0)
            apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void cache_stress(int entries, int evicting)
{
    apr_pool_t *p;
    cjob_t j[THREADS];
    int i, hits = 0, bad = 0;

    apr_pool_create(&p, pool);
    memset(j, 0, sizeof(j));
    for (i = 0; i < THREADS; i++) {
        j[i].c = i == 0 ? eid_tokcache_create(p, entries, apr_time_from_sec(300)) : j[0].c;
        assert_non_null(j[i].c);
        j[i].id = i;
        j[i].evicting = evicting;
    }
    run_threads(cache_worker, j, sizeof(j[0]), THREADS);
    for (i = 0; i < THREADS; i++) {
        hits += j[i].hits;
        bad += j[i].bad;
    }
    assert_int_equal(bad, 0);
    assert_true(hits >= (evicting ? 1 : 2 * THREADS * TOKENS));
    assert_true(eid_tokcache_count(j[0].c) <= entries);
    if (!evicting)
        assert_int_equal(eid_tokcache_count(j[0].c), THREADS * TOKENS);
    apr_pool_destroy(p);
}

static void test_tokcache_no_eviction(void **state)
{
    cache_stress(16384, 0);
}

static void test_tokcache_introspection_size(void **state)
{
    cache_stress(4096, 1);
}

static void test_tokcache_constant_eviction(void **state)
{
    cache_stress(1000, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokcache_no_eviction),
        cmocka_unit_test(test_tokcache_introspection_size),
        cmocka_unit_test(test_tokcache_constant_eviction),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
