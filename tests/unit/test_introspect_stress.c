/*
 * Stress: the introspection refusal table (introspect_negative_cache), the
 * rate bucket (introspect_rate) and the bounds on calls in flight (per
 * provider and process-wide) shared by many threads validating thousands of
 * distinct opaque tokens at once.  What must hold whatever the interleaving:
 * no token is ever admitted (the endpoint says "not active"), every answer
 * is one of the documented refusals, the endpoint is called at most the
 * rate's budget (the clock is held still, so the bucket never refills), and
 * a second pass over the same tokens makes no call.  Run under
 * ThreadSanitizer by make test-tsan.
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
#include <sched.h>
#include <unistd.h>

#include "eid/eid_bearer.h"
#include "eid/eid_http.h"
#include "eid/eid_introspect.h"

#define AUD "api://incident"
#define NOW_S 1700000000L
#define THREADS 8
#define TOKENS 500 /* per thread: 4000 distinct tokens */
#define RATE 40

static apr_pool_t *pool;
static char dir[64], secret_path[128];
static const apr_time_t now = (apr_time_t)NOW_S * APR_USEC_PER_SEC;

#include "loopback_http.h"

typedef struct {
    eid_provider_t *pv;
    int id, pass;
    int invalid, unavailable, bad;
} job_t;

static atomic_int gate;

static void *APR_THREAD_FUNC worker(apr_thread_t *t, void *data)
{
    job_t *j = data;
    apr_pool_t *p;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    atomic_fetch_sub(&gate, 1);
    while (atomic_load(&gate) > 0)
        sched_yield(); /* all threads start together */
    for (i = 0; i < TOKENS; i++) {
        const char *tok = apr_psprintf(p, "stress-%d-%d-%08x", j->id, i, (unsigned)i * 2654435761u);
        eid_identity_t *id = NULL;
        eid_result_t res = {0};
        eid_bearer_code_e c = eid_bearer_validate(p, &j->pv, 1, tok, strlen(tok), now, &id, &res);
        if (c == EID_BEARER_INVALID && res.tag && !strcmp(res.tag, "EID03504") && !id)
            j->invalid++;
        else if (c == EID_BEARER_UNAVAILABLE && res.tag && !id &&
                 (!strcmp(res.tag, "EID03505") || !strcmp(res.tag, "EID03506")))
            j->unavailable++;
        else
            j->bad++;
        if (i % 32 == 0)
            apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void run(eid_provider_t *pv, job_t *j)
{
    apr_thread_t *th[THREADS];
    apr_status_t rv;
    int i;

    atomic_store(&gate, THREADS);
    for (i = 0; i < THREADS; i++) {
        memset(&j[i], 0, sizeof(j[i]));
        j[i].pv = pv;
        j[i].id = i;
        assert_int_equal(apr_thread_create(&th[i], NULL, worker, &j[i], pool), APR_SUCCESS);
    }
    for (i = 0; i < THREADS; i++)
        apr_thread_join(&rv, th[i]);
}

static eid_provider_t *provider(const char *name, const char *inflight)
{
    eid_provider_t *pv = eid_provider_create(pool, name);
    const char *o[] = {"issuer", url(""), "audience", AUD, "introspect", url("/introspect"),
                       "client_id", "c", "client_secret_file", secret_path,
                       "introspect_negative_cache", "60", "introspect_rate", "40",
                       "introspect_max_inflight", inflight, NULL};
    const char *const *k;
    const char *err;
    for (k = o; *k; k += 2)
        if ((err = eid_provider_set(pv, pool, k[0], k[1])) != NULL)
            fail_msg("%s: %s", k[0], err);
    if ((err = eid_provider_check(pv, pool)) != NULL)
        fail_msg("check: %s", err);
    assert_int_equal(eid_provider_init(pv, pool, 1), APR_SUCCESS);
    return pv;
}

static void check(eid_provider_t *pv)
{
    job_t j[THREADS];
    int i, inv = 0, un = 0, bad = 0, hits;

    srv_hits = 0;
    run(pv, j);
    for (i = 0; i < THREADS; i++) {
        inv += j[i].invalid;
        un += j[i].unavailable;
        bad += j[i].bad;
    }
    hits = srv_hits;
    assert_int_equal(bad, 0);
    assert_int_equal(inv + un, THREADS * TOKENS);
    assert_true(hits >= 1);
    assert_true(hits <= RATE); /* the clock stands still: one bucket's worth */
    assert_true(inv <= hits);  /* a refusal answered "not active" came from a call */
    /* again: remembered refusals and an empty bucket, no call at all */
    run(pv, j);
    bad = 0;
    for (i = 0; i < THREADS; i++)
        bad += j[i].bad;
    assert_int_equal(bad, 0);
    assert_int_equal(srv_hits, hits);
}

static void test_many_threads_many_tokens(void **state)
{
    (void)state;
    route("/introspect", 200, "{\"active\":false}");
    check(provider("stress-a", "4"));
}

static void test_many_threads_process_bound(void **state)
{
    (void)state;
    route("/introspect", 200, "{\"active\":false}");
    routes[0].delay_ms = 2;
    eid_introspect_set_process_limit(2);
    check(provider("stress-b", "8"));
    eid_introspect_set_process_limit(0);
    routes[0].delay_ms = 0;
}

static int setup(void **state)
{
    FILE *f;
    (void)state;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    strcpy(dir, "/tmp/eid_test_istress.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
    assert_non_null(f = fopen(secret_path, "w"));
    fputs("s3cr3t\n", f);
    fclose(f);
    eid_http_global_init();
    eid_tokcache_init(pool, 0, 0);
    start_server();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_server();
    unlink(secret_path);
    rmdir(dir);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_threads_many_tokens),
        cmocka_unit_test(test_many_threads_process_bound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
