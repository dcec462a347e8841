/*
 * Fault drills of test_store_redis.c (included there once, after its
 * helpers): breaker, restart, SIGSTOP, AUTH, maxmemory, the process cache
 * and its invalidation, sentinel failover.  Each uses its own redis-server
 * (or its own prefix on the shared one) and stops what it starts.
 */

/* get until OK (or the limit); seconds it took, or -1 */
static double until_ok(eid_store_t *s, apr_pool_t *p, const char *k, apr_size_t kl,
                       double limit)
{
    double t0 = rfix_now();
    while (rfix_now() - t0 < limit) {
        unsigned char *v;
        apr_size_t n;
        if (eid_store_get(s, p, k, kl, &v, &n) == EID_STORE_OK)
            return rfix_now() - t0;
        usleep(10000);
    }
    return -1;
}

static void test_breaker(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    rfix_t f = {0};
    assert_int_equal(rfix_start(&f), 0);
    assert_int_equal(rfix_cli(&f, NULL, 0, "SET eid:k v"), 0);
    rfix_kill(&f, SIGKILL); /* nothing listens on the port now */
    eid_store_t *s = store_on(p, apr_psprintf(p, "redis://127.0.0.1:%d", f.port),
                              "breaker=3/200", "timeout=300", NULL);
    log_reset();
    for (int i = 0; i < 20; i++)
        want_rc(s, p, K("k"), EID_STORE_ERROR);
    eid_redis_stats_t st;
    assert_int_equal(eid_store_redis_stats(s, &st), 0);
    assert_int_equal(st.breaker_open, 1);
    assert_true(st.fast_fails >= 15); /* not 20 connection attempts */
    assert_true(st.connects == 0);
    /* one line per kind, not one per request */
    assert_int_equal(atomic_load(&log_lines[1]), 1); /* EID06301 */
    assert_int_equal(atomic_load(&log_lines[7]), 1); /* EID06307 */
    /* back: the next probe (<= 200 ms) closes the breaker */
    assert_int_equal(rfix_start(&f), 0);
    assert_int_equal(rfix_cli(&f, NULL, 0, "SET eid:k v"), 0);
    double t = until_ok(s, p, K("k"), 5);
    assert_true(t >= 0 && t < 1.0 * rfix_slack());
    assert_int_equal(atomic_load(&log_lines[8]), 1); /* EID06308 reachable again */
    assert_int_equal(eid_store_redis_stats(s, &st), 0);
    assert_int_equal(st.breaker_open, 0);
    rfix_stop(&f);
    apr_pool_destroy(p);
}

static void test_restart(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    rfix_t f = {.extra = {"--appendonly", "yes", "--appendfsync", "always", NULL}};
    assert_int_equal(rfix_start(&f), 0);
    eid_store_t *s = store_on(p, apr_psprintf(p, "redis://127.0.0.1:%d", f.port), NULL, NULL,
                              NULL);
    assert_int_equal(eid_store_set(s, K("s:kept"), V("session"), MS(60000)), EID_STORE_OK);
    eid_redis_stats_t st;
    assert_int_equal(eid_store_redis_stats(s, &st), 0);
    assert_int_equal(st.idle, 1);
    rfix_kill(&f, SIGTERM); /* graceful: the AOF is complete */
    assert_int_equal(rfix_start(&f), 0);
    /* the pooled socket is dead: replaced on the spot, no error, the session survived */
    double t0 = rfix_now();
    want_value(s, p, K("s:kept"), "session", 7);
    assert_true(rfix_now() - t0 < 1.0 * rfix_slack());
    assert_int_equal(eid_store_redis_stats(s, &st), 0);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.connects, 2);
    /* a non-idempotent add is not retried on a dead pooled socket, but
     * fails closed once and then works */
    rfix_kill(&f, SIGTERM);
    assert_int_equal(rfix_start(&f), 0);
    eid_store_rc_e rc = eid_store_add(s, K("u:x"), V("1"), MS(60000));
    assert_true(rc == EID_STORE_ERROR || rc == EID_STORE_OK);
    if (rc == EID_STORE_ERROR)
        assert_true(until_ok(s, p, K("s:kept"), 2) >= 0);
    rfix_stop(&f);
    apr_pool_destroy(p);
}

typedef struct {
    eid_store_t *s;
    double took;
    eid_store_rc_e rc;
} burst_t;

static void *APR_THREAD_FUNC burster(apr_thread_t *t, void *data)
{
    burst_t *b = data;
    apr_pool_t *tp;
    apr_pool_create_unmanaged_ex(&tp, NULL, NULL);
    double t0 = rfix_now();
    unsigned char *v;
    apr_size_t n;
    b->rc = eid_store_get(b->s, tp, K("k"), &v, &n);
    b->took = rfix_now() - t0;
    apr_pool_destroy(tp);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_sigstop(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    rfix_t f = {0};
    assert_int_equal(rfix_start(&f), 0);
    eid_store_t *s = store_on(p, apr_psprintf(p, "redis://127.0.0.1:%d", f.port), "timeout=300",
                              "breaker=3/200", NULL);
    assert_int_equal(eid_store_set(s, K("k"), V("v"), MS(60000)), EID_STORE_OK);
    kill(f.pid, SIGSTOP);
    double t0 = rfix_now();
    want_rc(s, p, K("k"), EID_STORE_ERROR);
    double took = rfix_now() - t0;
    assert_true(took >= 0.25 && took < 0.6 * rfix_slack());
    /* a burst: every op answers within the command timeout (new connections
     * are accepted by the kernel, their command times out), then fail fast */
    apr_thread_t *th[NTHREADS];
    burst_t bs[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        bs[i] = (burst_t){.s = s};
        assert_int_equal(apr_thread_create(&th[i], NULL, burster, &bs[i], p), APR_SUCCESS);
    }
    for (int i = 0; i < NTHREADS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        assert_int_equal(bs[i].rc, EID_STORE_ERROR);
        assert_true(bs[i].took < 0.6 * rfix_slack());
    }
    kill(f.pid, SIGCONT);
    double t = until_ok(s, p, K("k"), 5);
    assert_true(t >= 0 && t < 1.0 * rfix_slack());
    rfix_stop(&f);
    apr_pool_destroy(p);
}

static const char *pwfile(apr_pool_t *p, const char *pw)
{
    char *path = apr_pstrdup(p, "/tmp/eid-redis-pw-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pw, strlen(pw)), (ssize_t)strlen(pw));
    close(fd);
    return path;
}

#define ACL_ON "ACL SETUSER eidapp on '>pw-1' '~t-auth:*' resetchannels '&__redis__:invalidate' " \
               "+get +set +pexpire +pttl +del +eval +zscore +zrange +zadd +zcard +zpopmin +ping " \
               "+select +role '+client|id' '+client|tracking' +subscribe"

static void test_auth(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    const char *good = pwfile(p, "pw-1\n"), *bad = pwfile(p, "wrong");
    assert_int_equal(rfix_cli(&R, NULL, 0, ACL_ON), 0);
    const char *url = apr_psprintf(p, "redis://eidapp@127.0.0.1:%d", R.port);
    eid_store_t *s = store_on(p, url, apr_pstrcat(p, "password_file=", good, NULL),
                              "prefix=t-auth:", "breaker=3/100");
    eid_store_t *w = store_on(p, url, apr_pstrcat(p, "password_file=", bad, NULL),
                              "prefix=t-auth:", NULL);
    assert_int_equal(eid_store_set(s, K("k"), V("v"), MS(60000)), EID_STORE_OK);
    want_value(s, p, K("k"), "v", 1);
    apr_array_header_t *m;
    assert_int_equal(eid_store_index_add(s, K("i:sid:a"), K("k"), MS(60000)), EID_STORE_OK);
    assert_int_equal(eid_store_index_take(s, p, K("i:sid:a"), &m), EID_STORE_OK);
    log_reset();
    for (int i = 0; i < 5; i++)
        want_rc(w, p, K("k"), EID_STORE_ERROR);
    assert_int_equal(atomic_load(&log_lines[2]), 1); /* EID06302 once */
    /* revoked: Redis closes the user's connections; every op fails closed */
    assert_int_equal(rfix_cli(&R, NULL, 0, "ACL DELUSER eidapp"), 0);
    want_rc(s, p, K("k"), EID_STORE_ERROR);
    assert_int_equal(eid_store_set(s, K("k"), V("x"), MS(60000)), EID_STORE_ERROR);
    /* restored */
    assert_int_equal(rfix_cli(&R, NULL, 0, ACL_ON), 0);
    double t = until_ok(s, p, K("k"), 5);
    assert_true(t >= 0 && t < 1.0 * rfix_slack());
    want_value(s, p, K("k"), "v", 1);
    /* a key outside the user's pattern: NOPERM, an error (no crash) */
    eid_store_t *o = store_on(p, url, apr_pstrcat(p, "password_file=", good, NULL),
                              "prefix=other:", NULL);
    want_rc(o, p, K("k"), EID_STORE_ERROR);
    assert_int_equal(rfix_cli(&R, NULL, 0, "ACL DELUSER eidapp"), 0);
    unlink(good);
    unlink(bad);
    apr_pool_destroy(p);
}

static void test_maxmemory(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    rfix_t f = {.extra = {"--maxmemory-policy", "noeviction", NULL}};
    assert_int_equal(rfix_start(&f), 0);
    eid_store_t *s = store_on(p, apr_psprintf(p, "redis://127.0.0.1:%d", f.port), NULL, NULL,
                              NULL);
    assert_int_equal(eid_store_set(s, K("first"), V("v"), MS(60000)), EID_STORE_OK);
    assert_int_equal(rfix_cli(&f, NULL, 0, "CONFIG SET maxmemory 3mb"), 0);
    static unsigned char big[EID_STORE_VALUE_MAX];
    memset(big, 'x', sizeof(big));
    log_reset();
    int errors = 0;
    for (int i = 0; i < 400 && errors < 5; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "s:%d", i);
        if (eid_store_set(s, k, n, big, sizeof(big), MS(60000)) == EID_STORE_ERROR)
            errors++;
    }
    assert_int_equal(errors, 5);
    assert_int_equal(atomic_load(&log_lines[5]), 1); /* EID06305 (OOM) once */
    want_value(s, p, K("first"), "v", 1);              /* reads still work */
    eid_redis_stats_t st;
    assert_int_equal(eid_store_redis_stats(s, &st), 0);
    assert_int_equal(st.breaker_open, 0); /* the server answers: no fail-fast */
    assert_int_equal(rfix_cli(&f, NULL, 0, "CONFIG SET maxmemory 0"), 0);
    assert_int_equal(eid_store_set(s, K("after"), V("v"), MS(60000)), EID_STORE_OK);
    rfix_stop(&f);
    apr_pool_destroy(p);
}

static int wait_live(eid_store_t *s, int want, double limit)
{
    double t0 = rfix_now();
    eid_redis_stats_t st;
    while (rfix_now() - t0 < limit) {
        eid_store_redis_stats(s, &st);
        if (st.cache_live == want)
            return 1;
        usleep(5000);
    }
    return 0;
}

/* seconds until a get of k on s answers want (NOTFOUND, or OK with value v) */
static double until_seen(eid_store_t *s, apr_pool_t *p, const char *k, apr_size_t kl,
                         eid_store_rc_e want, const char *v, double limit)
{
    double t0 = rfix_now();
    while (rfix_now() - t0 < limit) {
        unsigned char *got;
        apr_size_t n;
        eid_store_rc_e rc = eid_store_get(s, p, k, kl, &got, &n);
        if (rc == want && (!v || (n == strlen(v) && memcmp(got, v, n) == 0)))
            return rfix_now() - t0;
        usleep(1000);
    }
    return -1;
}

static void test_cache(void **state)
{
    apr_pool_t *p, *child;
    apr_pool_create(&p, pool);
    apr_pool_create(&child, p);
    const char *url = apr_psprintf(p, "redis://127.0.0.1:%d", R.port);
    eid_store_t *a = store_on(p, url, "prefix=t-cache:", "cache=100", NULL);
    eid_store_t *b = store_on(p, url, "prefix=t-cache:", "cache=100", NULL);
    assert_int_equal(eid_store_redis_child_init(a, child), APR_SUCCESS);
    assert_int_equal(eid_store_redis_child_init(b, child), APR_SUCCESS);
    assert_true(wait_live(a, 1, 3 * rfix_slack()) && wait_live(b, 1, 3 * rfix_slack()));
    assert_int_equal(eid_store_set(b, K("s:1"), V("v1"), MS(60000)), EID_STORE_OK);
    want_value(a, p, K("s:1"), "v1", 2);
    /* From the cache: no command; a touch within the interval is spared too.
     * Tried again while the channel is not live: under valgrind a PONG can
     * miss its 500 ms and the cache is bypassed (rightly) for a moment. */
    {
        eid_redis_stats_t st0, st;
        int tries, ok = 0;
        for (tries = 0; tries < 20 && !ok; tries++) {
            assert_true(wait_live(a, 1, 3 * rfix_slack()));
            eid_store_redis_stats(a, &st0);
            want_value(a, p, K("s:1"), "v1", 2);
            assert_int_equal(eid_store_touch(a, K("s:1"), MS(60000)), EID_STORE_OK);
            eid_store_redis_stats(a, &st);
            ok = st.cache_hits == st0.cache_hits + 1 && st.commands == st0.commands;
        }
        assert_true(ok);
    }
    /* logout on the other server: seen here within 100 ms */
    assert_int_equal(eid_store_del(b, K("s:1")), EID_STORE_OK);
    double t = until_seen(a, p, K("s:1"), EID_STORE_NOTFOUND, NULL, 2);
    assert_true(t >= 0 && t < 0.1 * rfix_slack());
    /* a change too, and one made by anyone (an operator) */
    want_rc(a, p, K("s:1"), EID_STORE_NOTFOUND);
    assert_int_equal(eid_store_set(b, K("s:1"), V("v2"), MS(60000)), EID_STORE_OK);
    want_value(a, p, K("s:1"), "v2", 2);
    want_value(a, p, K("s:1"), "v2", 2);
    assert_int_equal(rfix_cli(&R, NULL, 0, "SET t-cache:s:1 v3"), 0);
    t = until_seen(a, p, K("s:1"), EID_STORE_OK, "v3", 2);
    assert_true(t >= 0 && t < 0.1 * rfix_slack());
    /* expiry in Redis bounds the cached copy */
    assert_int_equal(eid_store_set(b, K("s:2"), V("short"), MS(300)), EID_STORE_OK);
    want_value(a, p, K("s:2"), "short", 5);
    usleep(450000);
    want_rc(a, p, K("s:2"), EID_STORE_NOTFOUND);
    /* the channel killed: bypassed at once (never a stale answer), back soon */
    log_reset();
    want_value(a, p, K("s:1"), "v3", 2);
    assert_int_equal(rfix_cli(&R, NULL, 0, "CLIENT KILL TYPE pubsub"), 0);
    assert_true(wait_live(a, 0, 1) || 1); /* may already be back */
    assert_true(wait_live(a, 1, 2 * rfix_slack()));
    assert_true(atomic_load(&log_lines[30]) >= 1 && atomic_load(&log_lines[31]) >= 1);
    assert_int_equal(rfix_cli(&R, NULL, 0, "DEL t-cache:s:1"), 0);
    t = until_seen(a, p, K("s:1"), EID_STORE_NOTFOUND, NULL, 2);
    assert_true(t >= 0 && t < 0.1 * rfix_slack());
    apr_pool_destroy(child); /* joins the subscriber threads */
    apr_pool_destroy(p);
}

/* seconds until s's deletion generation is no longer `g` (or is absent) */
static double until_gen_moves(eid_store_t *s, apr_uint32_t g, double limit)
{
    double t0 = rfix_now();
    while (rfix_now() - t0 < limit) {
        apr_uint32_t now;
        if (!eid_store_generation(s, &now) || now != g)
            return rfix_now() - t0;
        usleep(1000);
    }
    return -1;
}

/* the generation now (the channel live first); fails the test when absent */
static apr_uint32_t gen_now(eid_store_t *s)
{
    apr_uint32_t g = 0;
    assert_true(wait_live(s, 1, 3 * rfix_slack()));
    assert_int_equal(eid_store_generation(s, &g), 1);
    return g;
}

/* The deletion generation (eid_store.h): moved by every ending of any
 * process (marker x:, k:, the delete after a marker), local deletes and
 * takes, index evictions elsewhere, and channel changes; absent while the
 * channel is down and without cache=; not moved by writes (touches). */
static void test_generation(void **state)
{
    apr_pool_t *p, *child;
    apr_pool_create(&p, pool);
    apr_pool_create(&child, p);
    const char *url = apr_psprintf(p, "redis://127.0.0.1:%d", R.port);
    eid_store_t *a = store_on(p, url, "prefix=t-gen:", "cache=100", NULL);
    eid_store_t *b = store_on(p, url, "prefix=t-gen:", "cache=100", NULL);
    eid_store_t *nocache = store_on(p, url, "prefix=t-gen:", NULL, NULL);
    apr_uint32_t g, g2;
    double t;
    assert_int_equal(eid_store_generation(nocache, &g), 0);
    /* not before the child starts its channel */
    assert_int_equal(eid_store_generation(a, &g), 0);
    assert_int_equal(eid_store_redis_child_init(a, child), APR_SUCCESS);
    assert_int_equal(eid_store_redis_child_init(b, child), APR_SUCCESS);
    assert_true(wait_live(b, 1, 3 * rfix_slack()));
    /* writes, touches, gets and other keys' invalidations: no move (tried
     * again if the channel blinked under valgrind) */
    {
        int tries, ok = 0;
        for (tries = 0; tries < 10 && !ok; tries++) {
            g = gen_now(a);
            assert_int_equal(eid_store_set(b, K("s:1"), V("v1"), MS(60000)), EID_STORE_OK);
            assert_int_equal(eid_store_touch(b, K("s:1"), MS(60000)), EID_STORE_OK);
            assert_int_equal(eid_store_set(b, K("u:state"), V("1"), MS(60000)), EID_STORE_OK);
            assert_int_equal(eid_store_index_add(b, K("i:sid:p:1"), "s:1", 3, MS(60000)),
                             EID_STORE_OK);
            want_value(a, p, K("s:1"), "v1", 2);
            usleep(150000);
            ok = eid_store_generation(a, &g2) == 1 && g2 == g;
        }
        assert_true(ok);
    }
    /* an ending on the other "server": the marker moves it within 100 ms */
    g = gen_now(a);
    assert_int_equal(eid_store_set(b, K("x:s:1"), V("1"), MS(60000)), EID_STORE_OK);
    t = until_gen_moves(a, g, 2);
    assert_true(t >= 0 && t < 0.1 * rfix_slack());
    /* ... and the delete after it again (a reader may have read the number
     * after the marker's message but fetched before the delete ran) */
    g = gen_now(a);
    assert_int_equal(eid_store_del(b, K("s:1")), EID_STORE_OK);
    t = until_gen_moves(a, g, 2);
    assert_true(t >= 0 && t < 0.1 * rfix_slack());
    /* ... and a late re-write of the ended key (a touch that read it before
     * the ending) and its second delete, each */
    g = gen_now(a);
    assert_int_equal(eid_store_set(b, K("s:1"), V("late"), MS(60000)), EID_STORE_OK);
    t = until_gen_moves(a, g, 2);
    assert_true(t >= 0 && t < 0.1 * rfix_slack());
    g = gen_now(a);
    assert_int_equal(eid_store_del(b, K("s:1")), EID_STORE_OK);
    t = until_gen_moves(a, g, 2);
    assert_true(t >= 0 && t < 0.1 * rfix_slack());
    /* a write of a key without a marker does not (a touch of a session) */
    g = gen_now(a);
    assert_int_equal(eid_store_set(b, K("s:9"), V("v2"), MS(60000)), EID_STORE_OK);
    usleep(150000);
    assert_true(eid_store_generation(a, &g2) == 0 || g2 == g);
    /* a back-channel logout's marker */
    g = gen_now(a);
    assert_int_equal(eid_store_set(b, K("k:i:sid:p:1"), V("123"), MS(60000)), EID_STORE_OK);
    t = until_gen_moves(a, g, 2);
    assert_true(t >= 0 && t < 0.1 * rfix_slack());
    /* this process's own delete and take: at once, no message awaited */
    g = gen_now(a);
    assert_int_equal(eid_store_del(a, K("s:nothing")), EID_STORE_NOTFOUND);
    assert_int_equal(eid_store_generation(a, &g2), 1);
    assert_true(g2 != g);
    g = g2;
    apr_array_header_t *m;
    assert_int_equal(eid_store_index_take(a, p, K("i:sid:p:none"), &m), EID_STORE_NOTFOUND);
    assert_int_equal(eid_store_generation(a, &g2), 1);
    assert_true(g2 != g);
    /* an index eviction elsewhere: the evicted member gets its marker */
    for (int i = 0; i < EID_STORE_INDEX_MAX; i++) {
        char k[16];
        snprintf(k, sizeof(k), "s:e%d", i);
        assert_int_equal(eid_store_set(b, k, strlen(k), V("v"), MS(60000)), EID_STORE_OK);
        assert_int_equal(eid_store_index_add(b, K("i:sub:p:e"), k, strlen(k), MS(60000)),
                         EID_STORE_OK);
    }
    g = gen_now(a);
    assert_int_equal(eid_store_set(b, K("s:e-last"), V("v"), MS(60000)), EID_STORE_OK);
    assert_int_equal(eid_store_index_add(b, K("i:sub:p:e"), K("s:e-last"), MS(60000)),
                     EID_STORE_OK);
    t = until_gen_moves(a, g, 2);
    assert_true(t >= 0 && t < 0.1 * rfix_slack());
    char out[64];
    assert_int_equal(rfix_cli(&R, out, sizeof(out), "EXISTS t-gen:s:e0 t-gen:x:s:e0"), 0);
    assert_string_equal(out, "1\n"); /* the session gone, its marker there */
    assert_int_equal(rfix_cli(&R, out, sizeof(out), "PTTL t-gen:x:s:e0"), 0);
    assert_true(atol(out) > 50000);
    /* the channel killed: absent while down, a new number when back */
    g = gen_now(a);
    assert_int_equal(rfix_cli(&R, NULL, 0, "CLIENT KILL TYPE pubsub"), 0);
    {
        double t0 = rfix_now();
        int absent = 0;
        while (!absent && rfix_now() - t0 < 2) {
            absent = !eid_store_generation(a, &g2);
            if (!absent && g2 != g)
                absent = 1; /* already back: it moved at least */
            usleep(500);
        }
        assert_true(absent);
    }
    g2 = gen_now(a);
    assert_true(g2 != g);
    apr_pool_destroy(child);
    /* the threads stopped: no channel, no number */
    assert_int_equal(eid_store_generation(a, &g), 0);
    apr_pool_destroy(p);
}

/* a user without SUBSCRIBE: the cache never goes live; every read asks Redis */
static void test_cache_denied(void **state)
{
    apr_pool_t *p, *child;
    apr_pool_create(&p, pool);
    apr_pool_create(&child, p);
    const char *pw = pwfile(p, "pw-2");
    assert_int_equal(rfix_cli(&R, NULL, 0, "ACL SETUSER nosub on '>pw-2' '~t-deny:*' +get +set "
                                           "+del +pexpire +pttl +ping '+client|id' "
                                           "'+client|tracking'"),
                     0);
    const char *url = apr_psprintf(p, "redis://nosub@127.0.0.1:%d", R.port);
    log_reset();
    eid_store_t *a = store_on(p, url, apr_pstrcat(p, "password_file=", pw, NULL),
                              "prefix=t-deny:", "cache=100");
    assert_int_equal(eid_store_redis_child_init(a, child), APR_SUCCESS);
    usleep(300000);
    assert_false(wait_live(a, 1, 0.3));
    assert_int_equal(eid_store_set(a, K("k"), V("v"), MS(60000)), EID_STORE_OK);
    want_value(a, p, K("k"), "v", 1);
    assert_int_equal(rfix_cli(&R, NULL, 0, "DEL t-deny:k"), 0);
    want_rc(a, p, K("k"), EID_STORE_NOTFOUND); /* at once: nothing was cached */
    eid_redis_stats_t st;
    eid_store_redis_stats(a, &st);
    assert_int_equal(st.cache_hits, 0);
    assert_true(atomic_load(&log_lines[30]) >= 1);
    apr_pool_destroy(child);
    assert_int_equal(rfix_cli(&R, NULL, 0, "ACL DELUSER nosub"), 0);
    unlink(pw);
    apr_pool_destroy(p);
}

#define FAULT_TESTS                                                                        \
    cmocka_unit_test(test_breaker), cmocka_unit_test(test_restart),                         \
        cmocka_unit_test(test_sigstop), cmocka_unit_test(test_auth),                        \
        cmocka_unit_test(test_maxmemory), cmocka_unit_test(test_cache),                     \
        cmocka_unit_test(test_generation), cmocka_unit_test(test_cache_denied)

/* master + replica + one sentinel; the master killed: the store follows */
static void test_sentinel(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    /* no 5 s wait before the replica's first (diskless) sync */
    rfix_t m = {.extra = {"--repl-diskless-sync-delay", "0", NULL}}, r = {0}, sn = {0};
    assert_int_equal(rfix_start(&m), 0);
    char mport[16];
    snprintf(mport, sizeof(mport), "%d", m.port);
    r.extra[0] = "--replicaof";
    r.extra[1] = "127.0.0.1";
    r.extra[2] = mport;
    assert_int_equal(rfix_start(&r), 0);
    sn.sentinel_conf = apr_psprintf(p, "sentinel monitor mm 127.0.0.1 %d 1\n"
                                       "sentinel down-after-milliseconds mm 1000\n"
                                       "sentinel failover-timeout mm 3000\n", m.port);
    assert_int_equal(rfix_start(&sn), 0);
    /* the replica is in sync before the drill */
    char out[256];
    for (int i = 0; i < 750; i++) { /* 15 s at most */
        rfix_cli(&r, out, sizeof(out), "INFO replication");
        if (strstr(out, "master_link_status:up"))
            break;
        usleep(20000);
    }
    assert_non_null(strstr(out, "master_link_status:up"));
    /* a dead sentinel first in the list: the next one answers */
    int dead = rfix_free_port();
    eid_store_t *s = store_on(p, apr_psprintf(p, "sentinel://127.0.0.1:%d,127.0.0.1:%d/mm", dead,
                                              sn.port),
                              "prefix=t-sen:", "breaker=3/100", NULL);
    assert_int_equal(eid_store_set(s, K("s:1"), V("before"), MS(60000)), EID_STORE_OK);
    want_value(s, p, K("s:1"), "before", 6);
    eid_redis_stats_t st;
    eid_store_redis_stats(s, &st);
    assert_int_equal(st.discoveries, 1);
    /* replicated before the master dies.  Not with WAIT from redis-cli: WAIT
     * waits for the calling connection's own writes, and that connection wrote
     * nothing, so it answered at once while the store's SET could still be on
     * its way (the failure seen in about one CI run of six: the promoted
     * replica never had s:1).  Redis replication is asynchronous; a write the
     * master acknowledged and died with is lost (docs/redis.md), which is not
     * what this test is about. */
    for (int i = 0; i < 250; i++) { /* 5 s at most */
        rfix_cli(&r, out, sizeof(out), "EXISTS t-sen:s:1");
        if (strcmp(out, "1\n") == 0)
            break;
        usleep(20000);
    }
    assert_string_equal(out, "1\n");
    /* the master dies: pooled connections fail, the sentinels promote the
     * replica (down-after 1 s), the store finds it */
    rfix_kill(&m, SIGKILL);
    /* writes follow the new master within the failover time */
    char rport[16];
    snprintf(rport, sizeof(rport), "%d", r.port);
    for (int i = 0; i < 200; i++) {
        rfix_cli(&sn, out, sizeof(out), "SENTINEL get-master-addr-by-name mm");
        if (strstr(out, rport))
            break;
        usleep(50000);
    }
    assert_non_null(strstr(out, rport));
    double t0 = rfix_now();
    eid_store_rc_e rc = EID_STORE_ERROR;
    while (rc != EID_STORE_OK && rfix_now() - t0 < 10) {
        rc = eid_store_set(s, K("s:2"), V("after"), MS(60000));
        if (rc != EID_STORE_OK)
            usleep(50000);
    }
    assert_int_equal(rc, EID_STORE_OK);
    assert_int_equal(rfix_cli(&r, out, sizeof(out), "GET t-sen:s:2"), 0);
    assert_string_equal(out, "after\n"); /* written on the promoted replica */
    /* sessions survived */
    unsigned char *v1 = NULL;
    apr_size_t n1 = 0;
    eid_store_rc_e rc1 = eid_store_get(s, p, K("s:1"), &v1, &n1);
    assert_int_equal(rc1, EID_STORE_OK);
    assert_int_equal(n1, 6);
    assert_memory_equal(v1, "before", 6);
    eid_store_redis_stats(s, &st);
    assert_true(st.discoveries >= 2);
    rfix_stop(&sn);
    rfix_stop(&r);
    rfix_stop(&m);
    apr_pool_destroy(p);
}

#undef FAULT_TESTS
#define FAULT_TESTS                                                                        \
    cmocka_unit_test(test_breaker), cmocka_unit_test(test_restart),                         \
        cmocka_unit_test(test_sigstop), cmocka_unit_test(test_auth),                        \
        cmocka_unit_test(test_maxmemory), cmocka_unit_test(test_cache),                     \
        cmocka_unit_test(test_generation), cmocka_unit_test(test_cache_denied),             \
        cmocka_unit_test(test_sentinel)
