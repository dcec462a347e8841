/*
 * Unit tests: the redis store backend against a real redis-server started
 * here on a free loopback port (killed at the end): location/option parsing,
 * every op with binary keys and values, TTLs, indexes, add atomicity from 8
 * threads, the pool under threads, Unix socket + SELECT, the circuit breaker,
 * a Redis restart (pooled sockets dead), SIGSTOP (timeout), AUTH with an ACL
 * user (wrong, revoked, restored), maxmemory + noeviction, the process cache
 * with server-pushed invalidation, and once-per-outage logging.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <fcntl.h>
#include <stdatomic.h>

#include "eid/eid_result.h"
#include "eid/eid_store_redis.h"
#include "redis_fixture.h"

static apr_pool_t *pool;
static rfix_t R;

/* the log sink: lines per tag (any thread) */
static atomic_int log_lines[100];
static void sink(void *baton, eid_log_level_e level, const char *tag, const char *msg)
{
    (void)baton;
    (void)level;
    (void)msg;
    if (tag && strncmp(tag, "EID063", 6) == 0)
        atomic_fetch_add(&log_lines[atoi(tag + 6)], 1);
}
__attribute__((unused)) static void log_reset(void)
{
    for (int i = 0; i < 100; i++)
        atomic_store(&log_lines[i], 0);
}

static int setup(void **state)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    eid_log_set(sink, NULL);
    if (rfix_start(&R) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    rfix_stop(&R);
    rfix_stop_all();
    eid_log_set(NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

#define K(s) (s), (sizeof(s) - 1)
#define V(s) (const unsigned char *)(s), (sizeof(s) - 1)
#define MS(n) apr_time_from_msec(n)

/* a store on R (TCP) with extra options; from p */
static eid_store_t *store_on(apr_pool_t *p, const char *url, const char *o1, const char *o2,
                             const char *o3)
{
    const char *opts[3];
    int n = 0;
    if (o1)
        opts[n++] = o1;
    if (o2)
        opts[n++] = o2;
    if (o3)
        opts[n++] = o3;
    eid_redis_conf_t *c;
    const char *err = eid_redis_conf_parse(p, url, n, opts, &c);
    if (err)
        fprintf(stderr, "conf: %s\n", err);
    assert_null(err);
    eid_store_t *s = eid_store_redis_create(p, c);
    assert_non_null(s);
    return s;
}

static eid_store_t *store(apr_pool_t *p, const char *prefix)
{
    return store_on(p, apr_psprintf(p, "redis://127.0.0.1:%d", R.port), prefix, NULL, NULL);
}

static void want_value(eid_store_t *s, apr_pool_t *p, const char *k, apr_size_t kl,
                       const char *want, apr_size_t wl)
{
    unsigned char *v = NULL;
    apr_size_t n = 99;
    assert_int_equal(eid_store_get(s, p, k, kl, &v, &n), EID_STORE_OK);
    assert_int_equal(n, wl);
    assert_memory_equal(v, want, wl);
    assert_int_equal(v[n], 0);
}

static void want_rc(eid_store_t *s, apr_pool_t *p, const char *k, apr_size_t kl,
                    eid_store_rc_e want)
{
    unsigned char *v = NULL;
    apr_size_t n = 99;
    assert_int_equal(eid_store_get(s, p, k, kl, &v, &n), want);
    assert_null(v);
    assert_int_equal(n, 0);
}

/* ---- configuration ---------------------------------------------------- */

static void test_conf(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_redis_conf_t *c;
    /* a user without password_file is refused */
    assert_non_null(eid_redis_conf_parse(p, "redis://app@127.0.0.1:6380/3", 0, NULL, &c));
    assert_null(c);
    char pw[] = "/tmp/eid-redis-pw-XXXXXX";
    int fd = mkstemp(pw);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "secret\n", 7), 7);
    close(fd);
    const char *o[] = {apr_pstrcat(p, "password_file=", pw, NULL), "timeout=250",
                       "prefix=site1:", "breaker=5/100", "cache=1000", "touch_interval=30"};
    assert_null(eid_redis_conf_parse(p, "redis://app@127.0.0.1:6380/3", 6, o, &c));
    assert_int_equal(c->kind, EID_REDIS_TCP);
    assert_string_equal(c->host, "127.0.0.1");
    assert_int_equal(c->port, 6380);
    assert_int_equal(c->db, 3);
    assert_string_equal(c->user, "app");
    assert_int_equal(c->command_timeout, MS(250));
    assert_int_equal(c->connect_timeout, MS(250));
    assert_string_equal(c->prefix, "site1:");
    assert_int_equal(c->breaker_failures, 5);
    assert_int_equal(c->breaker_backoff, MS(100));
    assert_int_equal(c->cache_entries, 1000);
    assert_int_equal(c->touch_interval, apr_time_from_sec(30));
    /* group-readable is fine, world-readable is refused */
    chmod(pw, 0644);
    assert_non_null(eid_redis_conf_parse(p, "redis://app@127.0.0.1:6380/3", 1, o, &c));
    unlink(pw);
    /* defaults */
    assert_null(eid_redis_conf_parse(p, "redis://localhost", 0, NULL, &c));
    assert_int_equal(c->port, 6379);
    assert_int_equal(c->db, 0);
    assert_int_equal(c->command_timeout, apr_time_from_sec(1));
    assert_string_equal(c->prefix, "eid:");
    assert_int_equal(c->cache_entries, 0);
    assert_null(eid_redis_conf_parse(p, "unix:/run/redis/redis.sock?db=2", 0, NULL, &c));
    assert_int_equal(c->kind, EID_REDIS_UNIX);
    assert_string_equal(c->path, "/run/redis/redis.sock");
    assert_int_equal(c->db, 2);
    assert_null(eid_redis_conf_parse(p, "sentinel://127.0.0.1:26379,[::1]:26380/mymaster/1", 0,
                                     NULL, &c));
    assert_int_equal(c->kind, EID_REDIS_SENTINEL);
    assert_int_equal(c->nsentinels, 2);
    assert_string_equal(c->sentinel_host[1], "::1");
    assert_int_equal(c->sentinel_port[1], 26380);
    assert_string_equal(c->master_name, "mymaster");
    assert_int_equal(c->db, 1);
    /* refused, each with a reason */
    const char *bad[] = {"http://x", "redis://", "redis://h:0", "redis://h:70000",
                         "redis://h/16", "redis://h/x", "redis://u:pw@h", "redis://h h",
                         "unix:relative", "unix:/x?db=99", "sentinel://h:1", "sentinel:///m",
                         "sentinel://h:1/m m", "redis://[::1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        const char *e = eid_redis_conf_parse(p, bad[i], 0, NULL, &c);
        if (!e)
            fail_msg("accepted %s", bad[i]);
        assert_null(c);
    }
    const char *badopt[] = {"timeout=0", "timeout=x", "prefix=a b", "breaker=5", "pool=-1",
                            "nosuch=1", "password_file=relative", "password_file=/nonexistent",
                            "cache=abc", "noequals"};
    for (size_t i = 0; i < sizeof(badopt) / sizeof(*badopt); i++) {
        const char *e = eid_redis_conf_parse(p, "redis://h", 1, &badopt[i], &c);
        if (!e)
            fail_msg("accepted option %s", badopt[i]);
    }
    apr_pool_destroy(p);
}

/* ---- every op ----------------------------------------------------------- */

static void test_ops(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = store(p, "prefix=t-ops:");
    assert_string_equal(eid_store_name(s), "redis");
    assert_true(eid_store_is_redis(s));
    assert_true(eid_store_flags(s) & EID_STORE_F_ATOMIC_ADD);
    want_rc(s, p, K("a"), EID_STORE_NOTFOUND);
    assert_int_equal(eid_store_set(s, K("a"), V("one"), MS(5000)), EID_STORE_OK);
    want_value(s, p, K("a"), "one", 3);
    assert_int_equal(eid_store_set(s, K("a"), V("two!"), MS(5000)), EID_STORE_OK);
    want_value(s, p, K("a"), "two!", 4);
    assert_int_equal(eid_store_add(s, K("a"), V("x"), MS(5000)), EID_STORE_EXISTS);
    want_value(s, p, K("a"), "two!", 4);
    assert_int_equal(eid_store_add(s, K("b"), V(""), MS(5000)), EID_STORE_OK);
    want_value(s, p, K("b"), "", 0);
    assert_int_equal(eid_store_touch(s, K("b"), MS(9000)), EID_STORE_OK);
    assert_int_equal(eid_store_touch(s, K("nope"), MS(9000)), EID_STORE_NOTFOUND);
    assert_int_equal(eid_store_del(s, K("b")), EID_STORE_OK);
    assert_int_equal(eid_store_del(s, K("b")), EID_STORE_NOTFOUND);
    want_rc(s, p, K("b"), EID_STORE_NOTFOUND);
    /* the prefix is applied: the raw key in Redis */
    char out[64];
    assert_int_equal(rfix_cli(&R, out, sizeof(out), "GET t-ops:a"), 0);
    assert_string_equal(out, "two!\n");
    /* the TTL reached Redis in milliseconds */
    assert_int_equal(eid_store_set(s, K("ttl"), V("v"), MS(200)), EID_STORE_OK);
    assert_int_equal(rfix_cli(&R, out, sizeof(out), "PTTL t-ops:ttl"), 0);
    long pttl = atol(out);
    assert_true(pttl > 0 && pttl <= 200);
    usleep(350000);
    want_rc(s, p, K("ttl"), EID_STORE_NOTFOUND);
    /* touch extends */
    assert_int_equal(eid_store_set(s, K("t2"), V("v"), MS(300)), EID_STORE_OK);
    assert_int_equal(eid_store_touch(s, K("t2"), MS(60000)), EID_STORE_OK);
    usleep(400000);
    want_value(s, p, K("t2"), "v", 1);
    /* add after expiry succeeds */
    assert_int_equal(eid_store_add(s, K("u"), V("1"), MS(150)), EID_STORE_OK);
    assert_int_equal(eid_store_add(s, K("u"), V("2"), MS(150)), EID_STORE_EXISTS);
    usleep(300000);
    assert_int_equal(eid_store_add(s, K("u"), V("3"), MS(150)), EID_STORE_OK);
    /* a wrong-typed key is an error, not a crash */
    assert_int_equal(rfix_cli(&R, NULL, 0, "LPUSH t-ops:list x"), 0);
    want_rc(s, p, K("list"), EID_STORE_ERROR);
    apr_pool_destroy(p);
}

static void test_binary(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = store(p, "prefix=t-bin:");
    static const char key[] = "s:%00 %0d\r\n\0 *3\r\n$3\r\nDEL\r\n\xff";
    static const char val[] = "\0\0v a l\r\n%s%n\0\xfe\r\n*1\r\n$8\r\nFLUSHALL\r\n";
    assert_int_equal(eid_store_set(s, key, sizeof(key) - 1, (const unsigned char *)val,
                                   sizeof(val) - 1, MS(5000)),
                     EID_STORE_OK);
    want_value(s, p, key, sizeof(key) - 1, val, sizeof(val) - 1);
    /* a key that differs only after the NUL is another key */
    want_rc(s, p, key, 3, EID_STORE_NOTFOUND);
    assert_int_equal(eid_store_add(s, key, sizeof(key) - 1, V("x"), MS(5000)), EID_STORE_EXISTS);
    assert_int_equal(eid_store_touch(s, key, sizeof(key) - 1, MS(5000)), EID_STORE_OK);
    /* a large value, every byte value */
    unsigned char *big = malloc(EID_STORE_VALUE_MAX);
    for (int i = 0; i < EID_STORE_VALUE_MAX; i++)
        big[i] = (unsigned char)(i * 7);
    assert_int_equal(eid_store_set(s, K("big"), big, EID_STORE_VALUE_MAX, MS(5000)), EID_STORE_OK);
    want_value(s, p, K("big"), (const char *)big, EID_STORE_VALUE_MAX);
    free(big);
    assert_int_equal(eid_store_del(s, key, sizeof(key) - 1), EID_STORE_OK);
    /* nothing was injected: the server still holds our other key */
    char out[16];
    assert_int_equal(rfix_cli(&R, out, sizeof(out), "EXISTS t-bin:big"), 0);
    assert_string_equal(out, "1\n");
    apr_pool_destroy(p);
}

static void test_index(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = store(p, "prefix=t-idx:");
    apr_array_header_t *m;
    assert_int_equal(eid_store_index_take(s, p, K("i:sid:x"), &m), EID_STORE_NOTFOUND);
    assert_int_equal(m->nelts, 0);
    for (int i = 0; i < EID_STORE_INDEX_MAX + 2; i++) {
        const char *k = apr_psprintf(p, "s:%02d %%\r\n", i);
        assert_int_equal(eid_store_set(s, k, strlen(k), V("sess"), MS(60000)), EID_STORE_OK);
        assert_int_equal(eid_store_index_add(s, K("i:sid:x"), k, strlen(k), MS(60000)),
                         EID_STORE_OK);
        /* a duplicate changes nothing */
        assert_int_equal(eid_store_index_add(s, K("i:sid:x"), k, strlen(k), MS(1000)),
                         EID_STORE_OK);
    }
    /* the two oldest fell out AND their keys were deleted */
    want_rc(s, p, K("s:00 %\r\n"), EID_STORE_NOTFOUND);
    want_rc(s, p, K("s:01 %\r\n"), EID_STORE_NOTFOUND);
    want_value(s, p, K("s:02 %\r\n"), "sess", 4);
    eid_store_stats_t st;
    assert_int_equal(eid_store_stats(s, &st), EID_STORE_OK);
    assert_int_equal(st.index_evicted, 2);
    /* a shorter TTL never shortens the index's life */
    char out[32];
    assert_int_equal(rfix_cli(&R, out, sizeof(out), "PTTL t-idx:i:sid:x"), 0);
    assert_true(atol(out) > 50000);
    assert_int_equal(eid_store_index_take(s, p, K("i:sid:x"), &m), EID_STORE_OK);
    assert_int_equal(m->nelts, EID_STORE_INDEX_MAX);
    assert_string_equal(APR_ARRAY_IDX(m, 0, const char *), "s:02 %\r\n"); /* oldest first */
    assert_string_equal(APR_ARRAY_IDX(m, EID_STORE_INDEX_MAX - 1, const char *), "s:65 %\r\n");
    assert_int_equal(eid_store_index_take(s, p, K("i:sid:x"), &m), EID_STORE_NOTFOUND);
    /* an index TTL reaches Redis */
    assert_int_equal(eid_store_index_add(s, K("i:sub:y"), K("s:a"), MS(200)), EID_STORE_OK);
    usleep(350000);
    assert_int_equal(eid_store_index_take(s, p, K("i:sub:y"), &m), EID_STORE_NOTFOUND);
    /* a wrong-typed index is an error */
    assert_int_equal(eid_store_set(s, K("i:sid:str"), V("x"), MS(5000)), EID_STORE_OK);
    assert_int_equal(eid_store_index_add(s, K("i:sid:str"), K("s:a"), MS(5000)), EID_STORE_ERROR);
    assert_int_equal(eid_store_index_take(s, p, K("i:sid:str"), &m), EID_STORE_ERROR);
    apr_pool_destroy(p);
}

/* ---- threads ------------------------------------------------------------ */

#define NTHREADS 8
#define NKEYS 100
typedef struct {
    eid_store_t *s;
    int id;
    atomic_int *wins;
    int errors;
} race_t;

static void *APR_THREAD_FUNC racer(apr_thread_t *t, void *data)
{
    race_t *r = data;
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        int n = snprintf(key, sizeof(key), "u:state-%d", k);
        eid_store_rc_e rc = eid_store_add(r->s, key, n, (const unsigned char *)&r->id,
                                          sizeof(r->id), MS(30000));
        if (rc == EID_STORE_OK)
            atomic_fetch_add(&r->wins[k], 1);
        else if (rc != EID_STORE_EXISTS)
            r->errors++;
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_add_race(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    /* two stores: two "servers" on one Redis */
    eid_store_t *s1 = store(p, "prefix=t-race:"), *s2 = store(p, "prefix=t-race:");
    atomic_int wins[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        atomic_init(&wins[k], 0);
    apr_thread_t *th[NTHREADS];
    race_t rs[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        rs[i] = (race_t){.s = i % 2 ? s1 : s2, .id = i, .wins = wins};
        assert_int_equal(apr_thread_create(&th[i], NULL, racer, &rs[i], p), APR_SUCCESS);
    }
    for (int i = 0; i < NTHREADS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        assert_int_equal(rs[i].errors, 0);
    }
    for (int k = 0; k < NKEYS; k++)
        assert_int_equal(atomic_load(&wins[k]), 1);
    /* the pool: never more connections than threads at once */
    eid_redis_stats_t st1, st2;
    assert_int_equal(eid_store_redis_stats(s1, &st1), 0);
    assert_int_equal(eid_store_redis_stats(s2, &st2), 0);
    assert_true(st1.connects <= NTHREADS / 2 && st2.connects <= NTHREADS / 2);
    assert_true(st1.idle >= 1 && st1.idle == (int)st1.connects);
    apr_pool_destroy(p);
}

typedef struct {
    eid_store_t *s;
    int id, bad;
} churn_t;

static void *APR_THREAD_FUNC churner(apr_thread_t *t, void *data)
{
    churn_t *c = data;
    apr_pool_t *tp;
    apr_pool_create_unmanaged_ex(&tp, NULL, NULL);
    for (int i = 0; i < 300; i++) {
        char key[32], val[32];
        int kl = snprintf(key, sizeof(key), "s:%d:%d", c->id, i % 10);
        int vl = snprintf(val, sizeof(val), "v%d.%d", c->id, i);
        if (eid_store_set(c->s, key, kl, (unsigned char *)val, vl, MS(10000)) != EID_STORE_OK)
            c->bad++;
        unsigned char *v;
        apr_size_t n;
        if (eid_store_get(c->s, tp, key, kl, &v, &n) != EID_STORE_OK || n != (apr_size_t)vl ||
            memcmp(v, val, vl) != 0)
            c->bad++;
        apr_pool_clear(tp);
    }
    apr_pool_destroy(tp);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_pool_threads(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *s = store_on(p, apr_psprintf(p, "redis://127.0.0.1:%d", R.port),
                              "prefix=t-pool:", "pool=4", NULL);
    apr_thread_t *th[NTHREADS];
    churn_t cs[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        cs[i] = (churn_t){.s = s, .id = i};
        assert_int_equal(apr_thread_create(&th[i], NULL, churner, &cs[i], p), APR_SUCCESS);
    }
    for (int i = 0; i < NTHREADS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        assert_int_equal(cs[i].bad, 0);
    }
    eid_redis_stats_t st;
    assert_int_equal(eid_store_redis_stats(s, &st), 0);
    assert_true(st.idle <= 4); /* pool= bounds the idle list */
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.commands, NTHREADS * 300 * 2);
    apr_pool_destroy(p);
}

static void test_unix_select(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    eid_store_t *u = store_on(p, apr_psprintf(p, "unix:%s?db=3", R.sock), "prefix=t-u:", NULL,
                              NULL);
    eid_store_t *t3 = store_on(p, apr_psprintf(p, "redis://127.0.0.1:%d/3", R.port),
                               "prefix=t-u:", NULL, NULL);
    eid_store_t *t0 = store(p, "prefix=t-u:");
    assert_int_equal(eid_store_set(u, K("k"), V("in db 3"), MS(5000)), EID_STORE_OK);
    want_value(t3, p, K("k"), "in db 3", 7);
    want_rc(t0, p, K("k"), EID_STORE_NOTFOUND);
    apr_pool_destroy(p);
}

#include "redis_faults.h"

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_add_race),
        cmocka_unit_test(test_pool_threads),
        cmocka_unit_test(test_unix_select),
        FAULT_TESTS
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
