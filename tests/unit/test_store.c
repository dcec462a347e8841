/*
 * Unit tests: the store interface on the memory backend - argument checks
 * of every wrapper, every op, TTL expiry on a controlled clock, the entry
 * bound (expired first, then oldest), index semantics and overflow, the
 * index codec against malformed values, and add() atomicity under threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "eid/eid_store.h"

static apr_pool_t *pool;

/* the controlled clock (read by the store under its mutex; written by the
 * test thread while no other thread uses the store) */
static apr_time_t fake_now;
static apr_time_t fake_clock(void *baton)
{
    (void)baton;
    return fake_now;
}

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

#define K(s) (s), (sizeof(s) - 1)
#define V(s) (const unsigned char *)(s), (sizeof(s) - 1)
#define SEC(n) apr_time_from_sec(n)

static eid_store_t *fresh(apr_pool_t *p, int max)
{
    eid_store_t *s = eid_store_mem_create(p, max);
    assert_non_null(s);
    fake_now = SEC(1700000000);
    eid_store_mem_set_clock(s, fake_clock, NULL);
    return s;
}

static void want_value(eid_store_t *s, apr_pool_t *p, const char *k, apr_size_t kl,
                         const char *want, apr_size_t wl)
{
    unsigned char *v = (unsigned char *)"x";
    apr_size_t n = 99;
    assert_int_equal(eid_store_get(s, p, k, kl, &v, &n), EID_STORE_OK);
    assert_int_equal(n, wl);
    assert_memory_equal(v, want, wl);
    assert_int_equal(v[n], 0); /* NUL after the value */
}

static void want_absent(eid_store_t *s, apr_pool_t *p, const char *k, apr_size_t kl)
{
    unsigned char *v = (unsigned char *)"x";
    apr_size_t n = 99;
    assert_int_equal(eid_store_get(s, p, k, kl, &v, &n), EID_STORE_NOTFOUND);
    assert_null(v);
    assert_int_equal(n, 0);
}

static void test_arguments(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = fresh(p, 0);
    unsigned char *v = (unsigned char *)"x";
    apr_size_t n = 7;
    apr_array_header_t *m = (apr_array_header_t *)1;
    char big[EID_STORE_KEY_MAX + 2];
    memset(big, 'k', sizeof(big));
    static unsigned char bigv[EID_STORE_VALUE_MAX + 1];

    assert_string_equal(eid_store_name(s), "memory");
    assert_string_equal(eid_store_name(NULL), "none");
    assert_true(eid_store_flags(s) & EID_STORE_F_ATOMIC_ADD);
    assert_int_equal(eid_store_flags(NULL), 0);
    assert_null(eid_store_create(p, NULL, NULL));
    eid_store_ops_t partial = {.name = "partial"};
    assert_null(eid_store_create(p, &partial, NULL));
    assert_string_equal(eid_store_rc_str(EID_STORE_EXISTS), "exists");
    assert_string_equal(eid_store_rc_str((eid_store_rc_e)42), "error");

    /* NULL store: every wrapper answers ERROR and clears its outputs */
    assert_int_equal(eid_store_get(NULL, p, K("a"), &v, &n), EID_STORE_ERROR);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_int_equal(eid_store_set(NULL, K("a"), V("v"), SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_add(NULL, K("a"), V("v"), SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_touch(NULL, K("a"), SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_del(NULL, K("a")), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_add(NULL, K("i"), K("m"), SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_take(NULL, p, K("i"), &m), EID_STORE_ERROR);
    assert_non_null(m);
    assert_int_equal(m->nelts, 0);
    eid_store_stats_t st;
    assert_int_equal(eid_store_stats(NULL, &st), EID_STORE_ERROR);
    assert_int_equal(eid_store_stats(s, NULL), EID_STORE_ERROR);

    /* NULL / empty / oversized keys, NULL outputs, NULL pool */
    assert_int_equal(eid_store_get(s, p, NULL, 1, &v, &n), EID_STORE_ERROR);
    assert_int_equal(eid_store_get(s, p, "a", 0, &v, &n), EID_STORE_ERROR);
    assert_int_equal(eid_store_get(s, p, big, EID_STORE_KEY_MAX + 1, &v, &n), EID_STORE_ERROR);
    assert_int_equal(eid_store_get(s, NULL, K("a"), &v, &n), EID_STORE_ERROR);
    assert_int_equal(eid_store_get(s, p, K("a"), NULL, &n), EID_STORE_ERROR);
    assert_int_equal(eid_store_get(s, p, K("a"), &v, NULL), EID_STORE_ERROR);
    assert_int_equal(eid_store_set(s, NULL, 1, V("v"), SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_set(s, "a", 0, V("v"), SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_del(s, NULL, 0), EID_STORE_ERROR);
    assert_int_equal(eid_store_touch(s, "", 0, SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_take(s, NULL, K("i"), &m), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_take(s, p, K("i"), NULL), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_take(s, p, NULL, 3, &m), EID_STORE_ERROR);

    /* values: NULL with a length, oversized */
    assert_int_equal(eid_store_set(s, K("a"), NULL, 3, SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_add(s, K("a"), NULL, 3, SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_set(s, K("a"), bigv, sizeof(bigv), SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_set(s, K("a"), bigv, EID_STORE_VALUE_MAX, SEC(1)), EID_STORE_OK);
    assert_int_equal(eid_store_del(s, K("a")), EID_STORE_OK);

    /* TTL zero or negative */
    assert_int_equal(eid_store_set(s, K("a"), V("v"), 0), EID_STORE_ERROR);
    assert_int_equal(eid_store_set(s, K("a"), V("v"), -5), EID_STORE_ERROR);
    assert_int_equal(eid_store_add(s, K("a"), V("v"), 0), EID_STORE_ERROR);
    assert_int_equal(eid_store_touch(s, K("a"), 0), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_add(s, K("i"), K("m"), 0), EID_STORE_ERROR);

    /* members: NULL, empty, NUL inside, oversized */
    assert_int_equal(eid_store_index_add(s, K("i"), NULL, 1, SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_add(s, K("i"), "m", 0, SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_add(s, K("i"), K("m\0n"), SEC(1)), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_add(s, K("i"), big, EID_STORE_MEMBER_MAX + 1, SEC(1)),
                     EID_STORE_ERROR);

    /* nothing of that was stored */
    assert_int_equal(eid_store_stats(s, &st), EID_STORE_OK);
    assert_int_equal(st.entries, 0);
    apr_pool_destroy(p);
}

static void test_ops(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = fresh(p, 0);

    want_absent(s, p, K("s:one"));
    assert_int_equal(eid_store_set(s, K("s:one"), V("first"), SEC(60)), EID_STORE_OK);
    want_value(s, p, K("s:one"), "first", 5);
    /* set replaces */
    assert_int_equal(eid_store_set(s, K("s:one"), V("second value"), SEC(60)), EID_STORE_OK);
    want_value(s, p, K("s:one"), "second value", 12);
    /* add refuses a present key and leaves the value */
    assert_int_equal(eid_store_add(s, K("s:one"), V("third"), SEC(60)), EID_STORE_EXISTS);
    want_value(s, p, K("s:one"), "second value", 12);
    assert_int_equal(eid_store_add(s, K("u:state"), V("1"), SEC(60)), EID_STORE_OK);
    assert_int_equal(eid_store_add(s, K("u:state"), V("1"), SEC(60)), EID_STORE_EXISTS);
    /* touch */
    assert_int_equal(eid_store_touch(s, K("s:one"), SEC(60)), EID_STORE_OK);
    assert_int_equal(eid_store_touch(s, K("s:none"), SEC(60)), EID_STORE_NOTFOUND);
    /* del */
    assert_int_equal(eid_store_del(s, K("s:one")), EID_STORE_OK);
    assert_int_equal(eid_store_del(s, K("s:one")), EID_STORE_NOTFOUND);
    want_absent(s, p, K("s:one"));
    /* binary keys and values: NUL, CR/LF, high bytes; keys differing after a NUL */
    assert_int_equal(eid_store_set(s, K("k\0a"), V("v\0\r\n\xff"), SEC(60)), EID_STORE_OK);
    assert_int_equal(eid_store_set(s, K("k\0b"), V("other"), SEC(60)), EID_STORE_OK);
    want_value(s, p, K("k\0a"), "v\0\r\n\xff", 5);
    want_value(s, p, K("k\0b"), "other", 5);
    want_absent(s, p, K("k"));
    /* an empty value is a value */
    assert_int_equal(eid_store_set(s, K("empty"), NULL, 0, SEC(60)), EID_STORE_OK);
    want_value(s, p, K("empty"), "", 0);
    apr_pool_destroy(p);
}

static void test_ttl(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = fresh(p, 0);
    apr_time_t t0 = fake_now;

    assert_int_equal(eid_store_set(s, K("a"), V("1"), SEC(10)), EID_STORE_OK);
    assert_int_equal(eid_store_add(s, K("b"), V("2"), SEC(10)), EID_STORE_OK);
    fake_now = t0 + SEC(10) - 1;
    want_value(s, p, K("a"), "1", 1);
    want_value(s, p, K("b"), "2", 1);
    fake_now = t0 + SEC(10); /* expiry is exclusive: at now + ttl it is gone */
    want_absent(s, p, K("a"));
    /* an expired key is absent for add (a new marker), touch and del */
    assert_int_equal(eid_store_touch(s, K("b"), SEC(10)), EID_STORE_NOTFOUND);
    assert_int_equal(eid_store_add(s, K("a"), V("new"), SEC(10)), EID_STORE_OK);
    want_value(s, p, K("a"), "new", 3);

    /* touch moves the expiry to now + ttl (also shorter) */
    t0 = fake_now;
    assert_int_equal(eid_store_set(s, K("c"), V("3"), SEC(5)), EID_STORE_OK);
    fake_now = t0 + SEC(4);
    assert_int_equal(eid_store_touch(s, K("c"), SEC(5)), EID_STORE_OK);
    fake_now = t0 + SEC(8);
    want_value(s, p, K("c"), "3", 1);
    assert_int_equal(eid_store_touch(s, K("c"), SEC(1)), EID_STORE_OK);
    fake_now = t0 + SEC(9);
    want_absent(s, p, K("c"));
    assert_int_equal(eid_store_del(s, K("c")), EID_STORE_NOTFOUND);

    /* set renews the expiry */
    t0 = fake_now;
    assert_int_equal(eid_store_set(s, K("d"), V("4"), SEC(2)), EID_STORE_OK);
    fake_now = t0 + SEC(1);
    assert_int_equal(eid_store_set(s, K("d"), V("5"), SEC(2)), EID_STORE_OK);
    fake_now = t0 + SEC(2) + 1;
    want_value(s, p, K("d"), "5", 1);
    apr_pool_destroy(p);
}

static void test_bound(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = fresh(p, 4);
    eid_store_stats_t st;
    char k[8];

    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(eid_store_set(s, k, 2, V("v"), SEC(100)), EID_STORE_OK);
    }
    /* full: the oldest written (k0) goes */
    assert_int_equal(eid_store_set(s, K("k4"), V("v"), SEC(100)), EID_STORE_OK);
    want_absent(s, p, K("k0"));
    want_value(s, p, K("k1"), "v", 1);
    assert_int_equal(eid_store_stats(s, &st), EID_STORE_OK);
    assert_int_equal(st.entries, 4);
    assert_int_equal(st.max_entries, 4);
    assert_int_equal(st.evicted, 1);

    /* rewriting k1 makes it the newest: k2 is the oldest now */
    assert_int_equal(eid_store_set(s, K("k1"), V("w"), SEC(100)), EID_STORE_OK);
    assert_int_equal(eid_store_set(s, K("k5"), V("v"), SEC(100)), EID_STORE_OK);
    want_absent(s, p, K("k2"));
    want_value(s, p, K("k1"), "w", 1);

    /* an expired entry goes before the oldest live one: k4 (newer than k3)
     * is rewritten with a short TTL and expires; k3 stays */
    assert_int_equal(eid_store_set(s, K("k4"), V("short"), SEC(1)), EID_STORE_OK);
    fake_now += SEC(2);
    assert_int_equal(eid_store_set(s, K("k6"), V("v"), SEC(100)), EID_STORE_OK);
    want_value(s, p, K("k3"), "v", 1);
    want_value(s, p, K("k1"), "w", 1);
    want_value(s, p, K("k5"), "v", 1);
    want_value(s, p, K("k6"), "v", 1);
    assert_int_equal(eid_store_stats(s, &st), EID_STORE_OK);
    assert_int_equal(st.entries, 4);
    assert_int_equal(st.evicted, 2); /* the expired one is not counted */

    /* many more writes than the bound: never more than 4 entries */
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "x%d", i);
        assert_int_equal(eid_store_add(s, k, strlen(k), V("v"), SEC(100)), EID_STORE_OK);
    }
    assert_int_equal(eid_store_stats(s, &st), EID_STORE_OK);
    assert_int_equal(st.entries, 4);
    want_value(s, p, K("x999"), "v", 1);
    want_absent(s, p, K("x995"));
    apr_pool_destroy(p);
}

static void test_index(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = fresh(p, 0);
    apr_array_header_t *m;
    apr_time_t t0 = fake_now;

    assert_int_equal(eid_store_index_take(s, p, K("i:sid:x"), &m), EID_STORE_NOTFOUND);
    assert_int_equal(m->nelts, 0);
    assert_int_equal(eid_store_index_add(s, K("i:sid:x"), K("s:a"), SEC(100)), EID_STORE_OK);
    assert_int_equal(eid_store_index_add(s, K("i:sid:x"), K("s:b"), SEC(10)), EID_STORE_OK);
    /* a duplicate is recorded once */
    assert_int_equal(eid_store_index_add(s, K("i:sid:x"), K("s:a"), SEC(10)), EID_STORE_OK);
    /* the index's expiry is never shortened by a later add: still there at 50 s */
    fake_now = t0 + SEC(50);
    assert_int_equal(eid_store_index_take(s, p, K("i:sid:x"), &m), EID_STORE_OK);
    assert_int_equal(m->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(m, 0, const char *), "s:a");
    assert_string_equal(APR_ARRAY_IDX(m, 1, const char *), "s:b");
    /* taken: gone */
    assert_int_equal(eid_store_index_take(s, p, K("i:sid:x"), &m), EID_STORE_NOTFOUND);
    assert_int_equal(m->nelts, 0);

    /* a later add extends the index's life */
    t0 = fake_now;
    assert_int_equal(eid_store_index_add(s, K("i:sub:y"), K("s:c"), SEC(10)), EID_STORE_OK);
    fake_now = t0 + SEC(5);
    assert_int_equal(eid_store_index_add(s, K("i:sub:y"), K("s:d"), SEC(10)), EID_STORE_OK);
    fake_now = t0 + SEC(12);
    assert_int_equal(eid_store_index_take(s, p, K("i:sub:y"), &m), EID_STORE_OK);
    assert_int_equal(m->nelts, 2);
    /* and an index expires */
    assert_int_equal(eid_store_index_add(s, K("i:sub:y"), K("s:c"), SEC(10)), EID_STORE_OK);
    fake_now += SEC(10);
    assert_int_equal(eid_store_index_take(s, p, K("i:sub:y"), &m), EID_STORE_NOTFOUND);
    apr_pool_destroy(p);
}

static void test_index_overflow(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = fresh(p, 0);
    apr_array_header_t *m;
    eid_store_stats_t st;
    char k[16];

    for (int i = 0; i < EID_STORE_INDEX_MAX; i++) {
        snprintf(k, sizeof(k), "s:%03d", i);
        assert_int_equal(eid_store_set(s, k, strlen(k), V("sess"), SEC(100)), EID_STORE_OK);
        assert_int_equal(eid_store_index_add(s, K("i:sub:u"), k, strlen(k), SEC(100)),
                         EID_STORE_OK);
    }
    want_value(s, p, K("s:000"), "sess", 4);
    /* the 65th: the oldest member leaves the index AND its session ends */
    assert_int_equal(eid_store_set(s, K("s:new"), V("sess"), SEC(100)), EID_STORE_OK);
    assert_int_equal(eid_store_index_add(s, K("i:sub:u"), K("s:new"), SEC(100)), EID_STORE_OK);
    want_absent(s, p, K("s:000"));
    want_value(s, p, K("s:001"), "sess", 4);
    assert_int_equal(eid_store_stats(s, &st), EID_STORE_OK);
    assert_int_equal(st.index_evicted, 1);
    /* a duplicate of a present member in a full index drops nothing */
    assert_int_equal(eid_store_index_add(s, K("i:sub:u"), K("s:005"), SEC(100)), EID_STORE_OK);
    want_value(s, p, K("s:001"), "sess", 4);
    assert_int_equal(eid_store_index_take(s, p, K("i:sub:u"), &m), EID_STORE_OK);
    assert_int_equal(m->nelts, EID_STORE_INDEX_MAX);
    assert_string_equal(APR_ARRAY_IDX(m, 0, const char *), "s:001");
    assert_string_equal(APR_ARRAY_IDX(m, EID_STORE_INDEX_MAX - 1, const char *), "s:new");
    apr_pool_destroy(p);
}

static void test_codec(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    apr_array_header_t *m;
    unsigned char *out;
    apr_size_t olen, evlen;
    const char *ev;

    assert_int_equal(eid_store_index_decode(p, NULL, 0, &m), 0);
    assert_int_equal(m->nelts, 0);
    assert_int_equal(eid_store_index_update(p, NULL, 0, K("ab"), &out, &olen, &ev, &evlen), 0);
    assert_int_equal(olen, 5);
    assert_memory_equal(out, "\x01\x00\x02" "ab", 5);
    assert_null(ev);
    assert_int_equal(eid_store_index_update(p, out, olen, K("ab"), &out, &olen, &ev, &evlen), 1);
    assert_null(out);

    static const struct {
        const char *v;
        apr_size_t n;
    } bad[] = {
        {"\x02\x00\x01" "a", 4},  /* unknown version */
        {"\x01\x00", 2},          /* truncated length */
        {"\x01\x00\x00", 3},      /* zero length */
        {"\x01\x00\x05" "ab", 5}, /* length past the end */
        {"\x01\x00\x02" "a\0", 5}, /* NUL inside */
        {"\x01\x02\x01" "a", 4},  /* over EID_STORE_MEMBER_MAX */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(eid_store_index_decode(p, (const unsigned char *)bad[i].v, bad[i].n, &m),
                         -1);
        assert_int_equal(m->nelts, 0);
        assert_int_equal(eid_store_index_update(p, (const unsigned char *)bad[i].v, bad[i].n,
                                                K("x"), &out, &olen, &ev, &evlen),
                         -1);
    }
    /* more than EID_STORE_INDEX_MAX members is malformed */
    unsigned char many[1 + 3 * (EID_STORE_INDEX_MAX + 1)];
    many[0] = 1;
    for (int i = 0; i <= EID_STORE_INDEX_MAX; i++) {
        many[1 + 3 * i] = 0;
        many[2 + 3 * i] = 1;
        many[3 + 3 * i] = 'a';
    }
    assert_int_equal(eid_store_index_decode(p, many, sizeof(many) - 3, &m), 0);
    assert_int_equal(m->nelts, EID_STORE_INDEX_MAX);
    assert_int_equal(eid_store_index_decode(p, many, sizeof(many), &m), -1);
    apr_pool_destroy(p);
}

/* ---- add() atomicity under threads ----------------------------------------- */

#define NTHREADS 8
#define NKEYS 5000

static atomic_int winners[NKEYS];
static atomic_int winner_of[NKEYS];
static atomic_int ready;

typedef struct {
    eid_store_t *s;
    apr_pool_t *p; /* this thread's own pool */
    int id;
    int won, lost, bad;
} job_t;

static void *APR_THREAD_FUNC racer(apr_thread_t *t, void *arg)
{
    job_t *j = arg;
    char key[32], val[8];
    atomic_fetch_add(&ready, 1);
    while (atomic_load(&ready) < NTHREADS)
        ; /* start together */
    for (int n = 0; n < NKEYS; n++) {
        /* each thread walks the shared keys from its own offset, every other
         * thread in reverse: many collisions at every moment */
        int i = (j->id % 2 ? NKEYS - 1 - n : n + j->id * (NKEYS / NTHREADS)) % NKEYS;
        int kl = snprintf(key, sizeof(key), "u:state-%d", i);
        int vl = snprintf(val, sizeof(val), "%d", j->id);
        eid_store_rc_e rc = eid_store_add(j->s, key, (apr_size_t)kl,
                                          (const unsigned char *)val, (apr_size_t)vl, SEC(600));
        if (rc == EID_STORE_OK) {
            j->won++;
            atomic_fetch_add(&winners[i], 1);
            atomic_store(&winner_of[i], j->id);
        } else if (rc == EID_STORE_EXISTS) {
            j->lost++;
        } else {
            j->bad++;
        }
        /* readers and other ops meanwhile, for the sanitizers */
        if (n % 16 == 0) {
            unsigned char *v;
            apr_size_t vlen;
            if (eid_store_get(j->s, j->p, key, (apr_size_t)kl, &v, &vlen) != EID_STORE_OK)
                j->bad++;
            kl = snprintf(key, sizeof(key), "t:%d:%d", j->id, n);
            if (eid_store_set(j->s, key, (apr_size_t)kl, (const unsigned char *)"x", 1,
                              SEC(600)) != EID_STORE_OK ||
                eid_store_index_add(j->s, K("i:sub:shared"), key, (apr_size_t)kl, SEC(600)) !=
                    EID_STORE_OK ||
                eid_store_del(j->s, key, (apr_size_t)kl) == EID_STORE_ERROR)
                j->bad++;
        }
        if (n % 512 == 0)
            apr_pool_clear(j->p);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_add_race(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = eid_store_mem_create(p, NKEYS * 2);
    assert_non_null(s);
    apr_thread_t *t[NTHREADS];
    job_t j[NTHREADS];
    apr_status_t rv;

    atomic_store(&ready, 0);
    for (int i = 0; i < NKEYS; i++) {
        atomic_store(&winners[i], 0);
        atomic_store(&winner_of[i], -1);
    }
    for (int i = 0; i < NTHREADS; i++) {
        j[i] = (job_t){.s = s, .id = i};
        apr_pool_create(&j[i].p, NULL); /* unmanaged: one per thread */
    }
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(apr_thread_create(&t[i], NULL, racer, &j[i], p), APR_SUCCESS);
    int won = 0, lost = 0;
    for (int i = 0; i < NTHREADS; i++) {
        apr_thread_join(&rv, t[i]);
        assert_int_equal(j[i].bad, 0);
        won += j[i].won;
        lost += j[i].lost;
        apr_pool_destroy(j[i].p);
    }
    /* exactly one winner per key, and the stored value is the winner's */
    assert_int_equal(won, NKEYS);
    assert_int_equal(lost, NKEYS * (NTHREADS - 1));
    for (int i = 0; i < NKEYS; i++) {
        char key[32], want[8];
        int kl = snprintf(key, sizeof(key), "u:state-%d", i);
        assert_int_equal(atomic_load(&winners[i]), 1);
        int wl = snprintf(want, sizeof(want), "%d", atomic_load(&winner_of[i]));
        want_value(s, p, key, (apr_size_t)kl, want, (apr_size_t)wl);
    }
    apr_pool_destroy(p);
}

/* ---- every op on distinct keys from many threads, each result checked -------- */

typedef struct {
    eid_store_t *s;
    int id, bad;
} mix_t;

static void *APR_THREAD_FUNC mixer(apr_thread_t *t, void *arg)
{
    mix_t *j = arg;
    apr_pool_t *p;
    apr_pool_create(&p, NULL); /* this thread's own pool */
    char key[48], val[64], idx[32];
    snprintf(idx, sizeof(idx), "i:sub:t%d", j->id);
    for (int n = 0; n < NKEYS; n++) {
        int kl = snprintf(key, sizeof(key), "s:t%d-k%d", j->id, n);
        int vl = snprintf(val, sizeof(val), "value of thread %d key %d", j->id, n);
        unsigned char *v;
        apr_size_t vn;
        if (eid_store_set(j->s, key, (apr_size_t)kl, (const unsigned char *)val, (apr_size_t)vl,
                          SEC(600)) != EID_STORE_OK ||
            eid_store_get(j->s, p, key, (apr_size_t)kl, &v, &vn) != EID_STORE_OK ||
            vn != (apr_size_t)vl || memcmp(v, val, vn) != 0 ||
            eid_store_touch(j->s, key, (apr_size_t)kl, SEC(600)) != EID_STORE_OK ||
            eid_store_index_add(j->s, idx, strlen(idx), key, (apr_size_t)kl, SEC(600)) !=
                EID_STORE_OK)
            j->bad++;
        if (n % 3 == 0 && (eid_store_del(j->s, key, (apr_size_t)kl) != EID_STORE_OK ||
                           eid_store_get(j->s, p, key, (apr_size_t)kl, &v, &vn) !=
                               EID_STORE_NOTFOUND))
            j->bad++;
        if (n % 500 == 499) {
            /* this thread's index: its last 64 keys, its own only, oldest first */
            apr_array_header_t *m;
            if (eid_store_index_take(j->s, p, idx, strlen(idx), &m) != EID_STORE_OK ||
                m->nelts != EID_STORE_INDEX_MAX)
                j->bad++;
            for (int i = 0; m && i < m->nelts; i++) {
                snprintf(key, sizeof(key), "s:t%d-k%d", j->id, n - EID_STORE_INDEX_MAX + 1 + i);
                if (strcmp(APR_ARRAY_IDX(m, i, const char *), key) != 0)
                    j->bad++;
            }
            apr_pool_clear(p);
        }
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads_distinct_keys(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    /* room for everything: no eviction may hide a wrong answer */
    eid_store_t *s = eid_store_mem_create(p, NTHREADS * NKEYS + 64);
    assert_non_null(s);
    apr_thread_t *t[NTHREADS];
    mix_t j[NTHREADS];
    apr_status_t rv;
    for (int i = 0; i < NTHREADS; i++) {
        j[i] = (mix_t){.s = s, .id = i};
        assert_int_equal(apr_thread_create(&t[i], NULL, mixer, &j[i], p), APR_SUCCESS);
    }
    for (int i = 0; i < NTHREADS; i++) {
        apr_thread_join(&rv, t[i]);
        assert_int_equal(j[i].bad, 0);
    }
    eid_store_stats_t st;
    assert_int_equal(eid_store_stats(s, &st), EID_STORE_OK);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.errors, 0);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_index_overflow),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_add_race),
        cmocka_unit_test(test_threads_distinct_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
