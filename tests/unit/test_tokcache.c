/*
 * Unit tests: the token cache on its own - keys, expiry, owners, eviction
 * order, replacement, identities shared with a request that outlive their
 * entry, shards, and many entries from many threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <stdio.h>
#include <string.h>

#include "eid/eid_tokcache.h"

static apr_pool_t *pool;
static const apr_time_t now = apr_time_from_sec(1700000000);
static int owner_a, owner_b;

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

static apr_array_header_t *strv(apr_pool_t *p, const char *a, const char *b)
{
    apr_array_header_t *v = apr_array_make(p, 1, sizeof(const char *));
    if (a)
        APR_ARRAY_PUSH(v, const char *) = a;
    if (b)
        APR_ARRAY_PUSH(v, const char *) = b;
    return v;
}

static eid_identity_t *identity(apr_pool_t *p, const char *subject)
{
    eid_identity_t *id = eid_identity_make(p);
    id->method = EID_METHOD_BEARER;
    id->profile = "op";
    id->subject = subject;
    id->pnr = "191212121212";
    /* odd-length strings between arrays: every array header must still be
     * aligned in the flattened copy */
    id->commission_rights = strv(p, "abc", "L\xc3\xa4sa;Alla;VG");
    id->roles = strv(p, "r1", "r22");
    id->scopes = strv(p, NULL, NULL);
    id->loa = 3;
    id->loa_uri = "http://id.sambi.se/loa/loa3";
    id->auth_time = now - apr_time_from_sec(5);
    id->expires = now + apr_time_from_sec(300);
    return id;
}

static void test_put_get(void **state)
{
    apr_pool_t *p;
    eid_tokcache_t *c;
    eid_identity_t *id, *out;
    unsigned char k1[EID_TOKCACHE_KEY_LEN], k2[EID_TOKCACHE_KEY_LEN];

    apr_pool_create(&p, pool);
    c = eid_tokcache_create(p, 10, apr_time_from_sec(300));
    id = identity(p, "s");
    eid_tokcache_key("a", 1, k1);
    eid_tokcache_key("b", 1, k2);
    assert_memory_not_equal(k1, k2, EID_TOKCACHE_KEY_LEN);
    /* no expiry of its own: max_ttl; an expiry not after now: not stored */
    eid_tokcache_put(c, k1, &owner_a, id, 0, now);
    eid_tokcache_put(c, k2, &owner_a, id, now, now);
    assert_int_equal(eid_tokcache_count(c), 1);
    assert_int_equal(eid_tokcache_get(c, k2, now, NULL, &owner_a, p, &out), 0);
    /* another owner: no hit */
    assert_int_equal(eid_tokcache_get(c, k1, now, NULL, &owner_b, p, &out), 0);
    assert_int_equal(eid_tokcache_get(c, k1, now + apr_time_from_sec(299), NULL, &owner_a, p,
                                      &out), 1);
    assert_ptr_not_equal(out, id);
    assert_string_equal(out->subject, "s");
    assert_string_equal(out->profile, "op");
    assert_string_equal(out->pnr, "191212121212");
    assert_int_equal(out->commission_rights->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(out->commission_rights, 1, const char *),
                        "L\xc3\xa4sa;Alla;VG");
    assert_int_equal(out->roles->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(out->roles, 1, const char *), "r22");
    assert_non_null(out->scopes);
    assert_int_equal(out->scopes->nelts, 0);
    assert_null(out->policy_oids);
    assert_null(out->hsa_id);
    assert_int_equal(out->loa, 3);
    assert_true(out->auth_time == id->auth_time);
    /* the struct is the caller's: changing its scalars does not touch the cache */
    out->loa = 1;
    out->subject = "changed";
    assert_int_equal(eid_tokcache_get(c, k1, now, NULL, &owner_a, p, &out), 1);
    assert_int_equal(out->loa, 3);
    assert_string_equal(out->subject, "s");
    /* expired at max_ttl, and dropped on that lookup */
    assert_int_equal(eid_tokcache_get(c, k1, now + apr_time_from_sec(300), NULL, &owner_a, p,
                                      &out), 0);
    assert_int_equal(eid_tokcache_count(c), 0);
    apr_pool_destroy(p);
}

/* A hit's identity belongs to the entry: it must stay readable in the
 * request until the request's pool goes, even when the entry is evicted,
 * replaced or the whole cache destroyed meanwhile (ASan/valgrind watch). */
static void test_held_past_eviction(void **state)
{
    apr_pool_t *p, *req;
    eid_tokcache_t *c;
    eid_identity_t *held, *held2, *out;
    unsigned char k[EID_TOKCACHE_KEY_LEN];
    char tok[16];
    int i;

    apr_pool_create(&p, pool);
    apr_pool_create(&req, pool);
    c = eid_tokcache_create(p, 2, apr_time_from_sec(300));
    eid_tokcache_key("held", 4, k);
    eid_tokcache_put(c, k, &owner_a, identity(p, "held-subject"), 0, now);
    assert_int_equal(eid_tokcache_get(c, k, now, NULL, &owner_a, req, &held), 1);
    assert_int_equal(eid_tokcache_get(c, k, now, NULL, &owner_a, req, &held2), 1);
    /* replaced, then evicted by newer entries */
    eid_tokcache_put(c, k, &owner_a, identity(p, "replacement"), 0, now);
    for (i = 0; i < 5; i++) {
        snprintf(tok, sizeof(tok), "t%d", i);
        eid_tokcache_key(tok, strlen(tok), k);
        eid_tokcache_put(c, k, &owner_a, identity(p, tok), 0, now);
    }
    assert_int_equal(eid_tokcache_count(c), 2);
    assert_string_equal(held->subject, "held-subject");
    assert_string_equal(APR_ARRAY_IDX(held2->roles, 1, const char *), "r22");
    /* the cache itself goes before the request does */
    eid_tokcache_key("t4", 2, k);
    assert_int_equal(eid_tokcache_get(c, k, now, NULL, &owner_a, req, &out), 1);
    apr_pool_destroy(p);
    assert_string_equal(held->subject, "held-subject");
    assert_string_equal(out->subject, "t4");
    apr_pool_destroy(req);
}

/* A large cache is split into shards: the bound still holds exactly, and
 * every key is found in its own shard. */
static void test_shards(void **state)
{
    apr_pool_t *p;
    eid_tokcache_t *c;
    eid_identity_t *out, *id;
    unsigned char k[EID_TOKCACHE_KEY_LEN];
    char tok[16];
    int i, hits = 0;

    apr_pool_create(&p, pool);
    c = eid_tokcache_create(p, 4099, apr_time_from_sec(300));
    id = identity(p, "s");
    for (i = 0; i < 3000; i++) {
        snprintf(tok, sizeof(tok), "k%d", i);
        eid_tokcache_key(tok, strlen(tok), k);
        eid_tokcache_put(c, k, &owner_a, id, 0, now);
    }
    assert_int_equal(eid_tokcache_count(c), 3000);
    for (i = 0; i < 3000; i++) {
        snprintf(tok, sizeof(tok), "k%d", i);
        eid_tokcache_key(tok, strlen(tok), k);
        hits += eid_tokcache_get(c, k, now, NULL, &owner_a, p, &out);
    }
    assert_int_equal(hits, 3000);
    /* far more than fit: never above the configured total */
    for (i = 3000; i < 20000; i++) {
        snprintf(tok, sizeof(tok), "k%d", i);
        eid_tokcache_key(tok, strlen(tok), k);
        eid_tokcache_put(c, k, &owner_a, id, 0, now);
    }
    assert_true(eid_tokcache_count(c) <= 4099);
    assert_true(eid_tokcache_count(c) > 4099 * 3 / 4);
    /* the newest are there */
    eid_tokcache_key("k19999", 6, k);
    assert_int_equal(eid_tokcache_get(c, k, now, NULL, &owner_a, p, &out), 1);
    apr_pool_destroy(p);
}

static void test_expiry_replace_evict(void **state)
{
    apr_pool_t *p;
    eid_tokcache_t *c;
    eid_identity_t *out;
    unsigned char k[5][EID_TOKCACHE_KEY_LEN];
    int i;

    apr_pool_create(&p, pool);
    c = eid_tokcache_create(p, 3, apr_time_from_sec(600));
    for (i = 0; i < 5; i++)
        eid_tokcache_key(apr_itoa(p, i), 1, k[i]);
    /* the token's own expiry is earlier than max_ttl */
    eid_tokcache_put(c, k[0], &owner_a, identity(p, "t0"), now + apr_time_from_sec(10), now);
    assert_int_equal(eid_tokcache_get(c, k[0], now + apr_time_from_sec(9), NULL, &owner_a, p,
                                      &out), 1);
    assert_int_equal(eid_tokcache_get(c, k[0], now + apr_time_from_sec(10), NULL, &owner_a, p,
                                      &out), 0);
    /* replacement keeps one entry */
    eid_tokcache_put(c, k[1], &owner_a, identity(p, "old"), 0, now);
    eid_tokcache_put(c, k[1], &owner_b, identity(p, "new"), 0, now);
    assert_int_equal(eid_tokcache_count(c), 1);
    assert_int_equal(eid_tokcache_get(c, k[1], now, NULL, &owner_a, p, &out), 0);
    assert_int_equal(eid_tokcache_get(c, k[1], now, NULL, &owner_b, p, &out), 1);
    assert_string_equal(out->subject, "new");
    /* LRU: k1 k2 k3 stored, k1 used, k4 stored -> k2 evicted */
    eid_tokcache_put(c, k[2], &owner_a, identity(p, "2"), 0, now);
    eid_tokcache_put(c, k[3], &owner_a, identity(p, "3"), 0, now);
    assert_int_equal(eid_tokcache_get(c, k[1], now, NULL, &owner_b, p, &out), 1);
    eid_tokcache_put(c, k[4], &owner_a, identity(p, "4"), 0, now);
    assert_int_equal(eid_tokcache_count(c), 3);
    assert_int_equal(eid_tokcache_get(c, k[2], now, NULL, &owner_a, p, &out), 0);
    assert_int_equal(eid_tokcache_get(c, k[1], now, NULL, &owner_b, p, &out), 1);
    assert_int_equal(eid_tokcache_get(c, k[3], now, NULL, &owner_a, p, &out), 1);
    assert_int_equal(eid_tokcache_get(c, k[4], now, NULL, &owner_a, p, &out), 1);
    apr_pool_destroy(p);
}

static int accept_b(const void *owner, apr_uint32_t gen, const void *baton)
{
    (void)baton;
    return owner == &owner_b;
}

static void test_accept_fn_and_global(void **state)
{
    apr_pool_t *p;
    eid_tokcache_t *c;
    eid_identity_t *out;
    unsigned char k[EID_TOKCACHE_KEY_LEN];

    apr_pool_create(&p, pool);
    assert_int_equal(eid_tokcache_init(p, 0, 0), APR_SUCCESS);
    assert_null(eid_tokcache_global());
    assert_int_equal(eid_tokcache_init(p, 5, apr_time_from_sec(60)), APR_SUCCESS);
    c = eid_tokcache_global();
    assert_non_null(c);
    eid_tokcache_key("tok", 3, k);
    eid_tokcache_put(c, k, &owner_b, identity(p, "b"), 0, now);
    assert_int_equal(eid_tokcache_get(c, k, now, accept_b, NULL, p, &out), 1);
    eid_tokcache_put(c, k, &owner_a, identity(p, "a"), 0, now);
    assert_int_equal(eid_tokcache_get(c, k, now, accept_b, NULL, p, &out), 0);
    /* the cache goes with its pool */
    apr_pool_destroy(p);
    assert_null(eid_tokcache_global());
}

/* The generation is the baton: an entry of another one is outdated. */
static int accept_gen(const void *owner, apr_uint32_t gen, const void *baton)
{
    if (owner != &owner_a)
        return 0;
    return gen == *(const apr_uint32_t *)baton ? 1 : -1;
}

static void test_generation(void **state)
{
    apr_pool_t *p;
    eid_tokcache_t *c;
    eid_identity_t *out;
    unsigned char k[EID_TOKCACHE_KEY_LEN], k2[EID_TOKCACHE_KEY_LEN];
    apr_uint32_t cur = 7;

    apr_pool_create(&p, pool);
    c = eid_tokcache_create(p, 10, apr_time_from_sec(60));
    eid_tokcache_key("t1", 2, k);
    eid_tokcache_key("t2", 2, k2);
    eid_tokcache_put_gen(c, k, &owner_a, 7, identity(p, "a"), 0, now);
    eid_tokcache_put_gen(c, k2, &owner_b, 3, identity(p, "b"), 0, now);
    assert_int_equal(eid_tokcache_get(c, k, now, accept_gen, &cur, p, &out), 1);
    assert_string_equal(out->subject, "a");
    /* another owner's entry is not for us, but it stays */
    assert_int_equal(eid_tokcache_get(c, k2, now, accept_gen, &cur, p, &out), 0);
    assert_int_equal(eid_tokcache_count(c), 2);
    /* the owner's state moved on: a miss, and the entry is gone */
    cur = 8;
    assert_int_equal(eid_tokcache_get(c, k, now, accept_gen, &cur, p, &out), 0);
    assert_int_equal(eid_tokcache_count(c), 1);
    cur = 7;
    assert_int_equal(eid_tokcache_get(c, k, now, accept_gen, &cur, p, &out), 0);
    /* eid_tokcache_put() stores generation 0 */
    eid_tokcache_put(c, k, &owner_a, identity(p, "a0"), 0, now);
    cur = 0;
    assert_int_equal(eid_tokcache_get(c, k, now, accept_gen, &cur, p, &out), 1);
    apr_pool_destroy(p);
}

typedef struct job {
    eid_tokcache_t *c;
    int base, hits, bad; /* cmocka asserts only in the main thread */
} job_t;

static void *APR_THREAD_FUNC worker(apr_thread_t *t, void *data)
{
    job_t *j = data;
    apr_pool_t *p;
    int i;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (i = 0; i < 2000; i++) {
        unsigned char k[EID_TOKCACHE_KEY_LEN];
        const char *tok = apr_psprintf(p, "%d", j->base + i % 300);
        eid_identity_t *out;
        eid_tokcache_key(tok, strlen(tok), k);
        if (eid_tokcache_get(j->c, k, now, NULL, &owner_a, p, &out)) {
            j->bad += strcmp(out->subject, tok) != 0;
            j->hits++;
        }
        else
            eid_tokcache_put(j->c, k, &owner_a, identity(p, tok), 0, now);
        if (i % 100 == 0)
            apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads(void **state)
{
    apr_pool_t *p;
    apr_thread_t *t[4];
    job_t j[4];
    apr_status_t rv;
    int i;

    apr_pool_create(&p, pool);
    for (i = 0; i < 4; i++) {
        j[i].c = i == 0 ? eid_tokcache_create(p, 500, apr_time_from_sec(60)) : j[0].c;
        j[i].base = (i % 2) * 200; /* overlapping key ranges */
        j[i].hits = j[i].bad = 0;
        apr_thread_create(&t[i], NULL, worker, &j[i], p);
    }
    for (i = 0; i < 4; i++)
        apr_thread_join(&rv, t[i]);
    assert_true(eid_tokcache_count(j[0].c) <= 500);
    assert_int_equal(j[0].bad + j[1].bad + j[2].bad + j[3].bad, 0);
    assert_true(j[0].hits + j[1].hits + j[2].hits + j[3].hits > 0);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_expiry_replace_evict),
        cmocka_unit_test(test_accept_fn_and_global),
        cmocka_unit_test(test_generation),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_held_past_eviction),
        cmocka_unit_test(test_shards),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
