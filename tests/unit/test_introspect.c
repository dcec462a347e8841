/*
 * Unit tests: the error model (result classes, eid_bearer_code() by class)
 * and introspection hardening - required answer members (aud, iss, exp), the
 * refusal cache, the bound on calls in flight, the rate limit, caches bound
 * to one provider's checks - through eid_bearer_validate() against the
 * loopback HTTP server.
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
#include <unistd.h>

#include "eid/eid_bearer.h"
#include "eid/eid_http.h"
#include "eid/eid_introspect.h"

#define AUD "api://incident"
#define NOW_S 1700000000L

static apr_pool_t *pool;
static char dir[64], secret_path[128];
static const apr_time_t now = (apr_time_t)NOW_S * APR_USEC_PER_SEC;

#include "loopback_http.h"

static int setup(void **state)
{
    FILE *f;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    strcpy(dir, "/tmp/eid_test_intro.XXXXXX");
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
    stop_server();
    unlink(secret_path);
    rmdir(dir);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

/* A provider that only introspects at /introspect, plus `extra` options
 * (key, value pairs, NULL-terminated). */
static eid_provider_t *intro_provider(const char *name, const char *aud, const char *const *extra)
{
    eid_provider_t *pv = eid_provider_create(pool, name);
    const char *base[] = {"issuer", url(""), "audience", aud, "introspect", url("/introspect"),
                          "client_id", "c", "client_secret_file", secret_path, NULL};
    const char *const *o;
    const char *err;

    for (o = base; *o; o += 2)
        assert_null(eid_provider_set(pv, pool, o[0], o[1]));
    for (o = extra; o && *o; o += 2)
        if ((err = eid_provider_set(pv, pool, o[0], o[1])) != NULL)
            fail_msg("%s=%s: %s", o[0], o[1], err);
    if ((err = eid_provider_check(pv, pool)) != NULL)
        fail_msg("check: %s", err);
    assert_int_equal(eid_provider_init(pv, pool, 1), APR_SUCCESS);
    return pv;
}

/* Validate `t` at `when`; compare the tag (NULL: success) and return the code. */
static eid_bearer_code_e at(eid_provider_t *pv, const char *t, apr_time_t when,
                            const char *want_tag)
{
    eid_identity_t *id;
    eid_result_t res = {0};
    eid_bearer_code_e c = eid_bearer_validate(pool, &pv, 1, t, strlen(t), when, &id, &res);

    if (c == EID_BEARER_OK) {
        assert_non_null(id);
        if (want_tag)
            fail_msg("expected %s, got OK", want_tag);
    }
    else {
        if (!want_tag || strcmp(res.tag, want_tag))
            fail_msg("expected %s, got %s (%s)", want_tag ? want_tag : "OK", res.tag,
                     res.reason);
        assert_int_equal(res.cls, eid_result_class(res.tag));
        assert_int_equal(eid_bearer_code(&res), c);
    }
    return c;
}

/* An active answer with iss, aud and exp, plus `extra` members. */
static const char *answer(const char *aud, const char *extra)
{
    return apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%ld,"
                        "\"sub\":\"u\"%s}", url(""), aud, NOW_S + 600, extra ? extra : "");
}

/* ---- the error model ----------------------------------------------------------------- */

static void test_error_model(void **state)
{
    eid_result_t r = {0};

    /* {0} is success of class NONE */
    assert_int_equal(r.cls, EID_CLASS_NONE);
    assert_int_equal(eid_bearer_code(&r), EID_BEARER_OK);
    assert_int_equal(eid_bearer_code(NULL), EID_BEARER_OK);
    /* classes by tag (and tag family) */
    assert_int_equal(eid_result_class(NULL), EID_CLASS_NONE);
    assert_int_equal(eid_result_class("EID03001"), EID_CLASS_MALFORMED);
    assert_int_equal(eid_result_class("EID03002"), EID_CLASS_MALFORMED);
    assert_int_equal(eid_result_class("EID03006"), EID_CLASS_MISCONFIGURED);
    assert_int_equal(eid_result_class("EID03007"), EID_CLASS_MISCONFIGURED);
    assert_int_equal(eid_result_class("EID03008"), EID_CLASS_MISCONFIGURED);
    assert_int_equal(eid_result_class("EID03207"), EID_CLASS_UNAVAILABLE);
    assert_int_equal(eid_result_class("EID03502"), EID_CLASS_UNAVAILABLE);
    assert_int_equal(eid_result_class("EID03503"), EID_CLASS_UNAVAILABLE);
    assert_int_equal(eid_result_class("EID03505"), EID_CLASS_UNAVAILABLE);
    assert_int_equal(eid_result_class("EID03601"), EID_CLASS_UNAVAILABLE);
    assert_int_equal(eid_result_class("EID03699"), EID_CLASS_UNAVAILABLE);
    /* anything not in the table refuses the credential */
    assert_int_equal(eid_result_class("EID03504"), EID_CLASS_INVALID);
    assert_int_equal(eid_result_class("EID03305"), EID_CLASS_INVALID);
    assert_int_equal(eid_result_class("EID03700"), EID_CLASS_INVALID);
    assert_int_equal(eid_result_class("EID99999"), EID_CLASS_INVALID);
    /* eid_fail() and eid_result_set() set the class with the tag */
    assert_int_equal(eid_fail(&r, "EID03603", "timeout"), 3603);
    assert_int_equal(r.cls, EID_CLASS_UNAVAILABLE);
    assert_int_equal(eid_bearer_code(&r), EID_BEARER_UNAVAILABLE);
    eid_result_set(&r, pool, 3008, "EID03008", "x %d", 1);
    assert_int_equal(r.cls, EID_CLASS_MISCONFIGURED);
    assert_int_equal(eid_bearer_code(&r), EID_BEARER_MISCONFIGURED);
    eid_fail(&r, "EID03002", "syntax");
    assert_int_equal(eid_bearer_code(&r), EID_BEARER_MALFORMED);
    eid_fail(&r, "EID03305", "aud");
    assert_int_equal(eid_bearer_code(&r), EID_BEARER_INVALID);
    eid_result_set(&r, NULL, 0, NULL, "ok");
    assert_int_equal(r.cls, EID_CLASS_NONE);
    /* the bearer code follows the class, not the number */
    r.code = 3602;
    r.tag = "EID03602";
    r.cls = EID_CLASS_INVALID;
    assert_int_equal(eid_bearer_code(&r), EID_BEARER_INVALID);
    r.code = 3305;
    r.cls = EID_CLASS_UNAVAILABLE;
    assert_int_equal(eid_bearer_code(&r), EID_BEARER_UNAVAILABLE);
    r.cls = EID_CLASS_FORBIDDEN;
    assert_int_equal(eid_bearer_code(&r), EID_BEARER_INVALID);
    r.cls = EID_CLASS_NONE; /* a code without a class never reads as OK */
    assert_int_equal(eid_bearer_code(&r), EID_BEARER_INVALID);
}

/* ---- required members -------------------------------------------------------------- */

static void test_required_members(void **state)
{
    eid_provider_t *pv = intro_provider("req", AUD, NULL);
    const char *iss = url("");
    const char *waive[] = {"introspect_require", "aud", "introspect_cache", "30", NULL};
    eid_provider_t *lax;
    eid_provider_t *bad = eid_provider_create(pool, "bad");

    route("/introspect", 200, answer(AUD, NULL));
    assert_int_equal(at(pv, "full", now, NULL), EID_BEARER_OK);
    route("/introspect", 200, apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"exp\":%ld}",
                                           iss, NOW_S + 600));
    assert_int_equal(at(pv, "no-aud", now, "EID03303"), EID_BEARER_INVALID);
    route("/introspect", 200, answer("api://someone-else", NULL));
    assert_int_equal(at(pv, "foreign-aud", now, "EID03305"), EID_BEARER_INVALID);
    route("/introspect", 200, apr_psprintf(pool, "{\"active\":true,\"aud\":\"" AUD "\","
                                           "\"exp\":%ld}", NOW_S + 600));
    assert_int_equal(at(pv, "no-iss", now, "EID03301"), EID_BEARER_INVALID);
    route("/introspect", 200, apr_psprintf(pool, "{\"active\":true,\"aud\":\"" AUD "\","
                                           "\"iss\":\"%s\"}", iss));
    assert_int_equal(at(pv, "no-exp", now, "EID03306"), EID_BEARER_INVALID);
    /* the opt-out waives iss and exp, never aud; without exp an answer is
     * cached for introspect_cache only */
    lax = intro_provider("lax", AUD, waive);
    route("/introspect", 200, "{\"active\":true,\"aud\":\"" AUD "\"}");
    srv_hits = 0;
    assert_int_equal(at(lax, "lax", now, NULL), EID_BEARER_OK);
    assert_int_equal(at(lax, "lax", now + apr_time_from_sec(29), NULL), EID_BEARER_OK);
    assert_int_equal(srv_hits, 1);
    assert_int_equal(at(lax, "lax", now + apr_time_from_sec(31), NULL), EID_BEARER_OK);
    assert_int_equal(srv_hits, 2);
    route("/introspect", 200, "{\"active\":true,\"iss\":\"x\"}");
    assert_int_equal(at(lax, "lax-no-aud", now, "EID03303"), EID_BEARER_INVALID);
    /* configuration */
    assert_non_null(eid_provider_set(bad, pool, "introspect_require", "iss,exp"));
    assert_non_null(strstr(eid_provider_set(bad, pool, "introspect_require", "iss,exp"),
                           "aud cannot be waived"));
    assert_non_null(eid_provider_set(bad, pool, "introspect_require", "aud,nbf"));
    assert_non_null(eid_provider_set(bad, pool, "introspect_require", ""));
    assert_null(eid_provider_set(bad, pool, "introspect_require", " exp , aud "));
    assert_non_null(eid_provider_set(bad, pool, "introspect_negative_cache", "301"));
    assert_non_null(eid_provider_set(bad, pool, "introspect_negative_cache", "-1"));
    assert_null(eid_provider_set(bad, pool, "introspect_negative_cache", "0"));
    assert_non_null(eid_provider_set(bad, pool, "introspect_max_inflight", "0"));
    assert_non_null(eid_provider_set(bad, pool, "introspect_max_inflight", "1025"));
    assert_null(eid_provider_set(bad, pool, "introspect_max_inflight", "1"));
}

/* ---- the refusal cache --------------------------------------------------------------- */

static void test_negative_cache(void **state)
{
    const char *o[] = {"introspect_negative_cache", "5", NULL};
    const char *off[] = {"introspect_negative_cache", "0", NULL};
    eid_provider_t *pv = intro_provider("neg", AUD, o);
    eid_provider_t *other = intro_provider("neg2", AUD, o);
    eid_provider_t *none = intro_provider("neg0", AUD, off);
    eid_identity_t *id;
    eid_result_t res = {0};
    apr_time_t later = now + apr_time_from_sec(6);

    route("/introspect", 200, "{\"active\":false}");
    srv_hits = 0;
    assert_int_equal(at(pv, "unknown-1", now, "EID03504"), EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 1);
    /* remembered: the same tag, no call */
    assert_int_equal(at(pv, "unknown-1", now + apr_time_from_sec(4), "EID03504"),
                     EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 1);
    eid_bearer_validate(pool, &pv, 1, "unknown-1", 9, now, &id, &res);
    assert_non_null(strstr(res.reason, "remembered"));
    /* per provider: another provider asks itself */
    assert_int_equal(at(other, "unknown-1", now, "EID03504"), EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 2);
    /* another token is not a hit */
    assert_int_equal(at(pv, "unknown-2", now, "EID03504"), EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 3);
    /* expiry: after introspect_negative_cache the server is asked again,
     * and a token that became active is admitted */
    route("/introspect", 200, answer(AUD, NULL));
    assert_int_equal(at(pv, "unknown-1", later, NULL), EID_BEARER_OK);
    assert_int_equal(srv_hits, 4);
    /* refusals by the checks are remembered too */
    route("/introspect", 200, answer("api://someone-else", NULL));
    assert_int_equal(at(pv, "foreign", now, "EID03305"), EID_BEARER_INVALID);
    route("/introspect", 200, answer(AUD, NULL));
    assert_int_equal(at(pv, "foreign", now, "EID03305"), EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 5);
    /* "unavailable" is never remembered */
    route("/introspect", 503, "{}");
    assert_int_equal(at(pv, "while-down", now, "EID03502"), EID_BEARER_UNAVAILABLE);
    route("/introspect", 200, answer(AUD, NULL));
    assert_int_equal(at(pv, "while-down", now, NULL), EID_BEARER_OK);
    assert_int_equal(srv_hits, 7);
    /* bounded: a refusal of a token whose key falls into the same slot
     * replaces the older one, which is then asked about again */
    {
        unsigned char k0[EID_TOKCACHE_KEY_LEN], k[EID_TOKCACHE_KEY_LEN];
        const char *t0 = "slot-0", *t = NULL;
        unsigned s0, s1;
        int i;
        eid_tokcache_key(t0, strlen(t0), k0);
        s0 = ((unsigned)k0[0] | (unsigned)k0[1] << 8 | (unsigned)k0[2] << 16 |
              (unsigned)k0[3] << 24) % EID_INTROSPECT_NEG_SLOTS;
        for (i = 1; !t && i < 200000; i++) {
            const char *c = apr_psprintf(pool, "slot-%d", i);
            eid_tokcache_key(c, strlen(c), k);
            s1 = ((unsigned)k[0] | (unsigned)k[1] << 8 | (unsigned)k[2] << 16 |
                  (unsigned)k[3] << 24) % EID_INTROSPECT_NEG_SLOTS;
            if (s1 == s0)
                t = c;
        }
        assert_non_null(t);
        route("/introspect", 200, "{\"active\":false}");
        srv_hits = 0;
        assert_int_equal(at(pv, t0, now, "EID03504"), EID_BEARER_INVALID);
        assert_int_equal(at(pv, t0, now, "EID03504"), EID_BEARER_INVALID);
        assert_int_equal(srv_hits, 1);
        assert_int_equal(at(pv, t, now, "EID03504"), EID_BEARER_INVALID);
        assert_int_equal(at(pv, t, now, "EID03504"), EID_BEARER_INVALID);
        assert_int_equal(srv_hits, 2);
        assert_int_equal(at(pv, t0, now, "EID03504"), EID_BEARER_INVALID);
        assert_int_equal(srv_hits, 3);
    }
    /* off: every refusal is asked again */
    route("/introspect", 200, "{\"active\":false}");
    srv_hits = 0;
    assert_int_equal(at(none, "unknown-3", now, "EID03504"), EID_BEARER_INVALID);
    assert_int_equal(at(none, "unknown-3", now, "EID03504"), EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 2);
}

/* ---- the bound on calls in flight ---------------------------------------------------- */

typedef struct {
    eid_provider_t *pv;
    const char *token;
    eid_bearer_code_e code;
} call_t;

static void *APR_THREAD_FUNC slow_call(apr_thread_t *t, void *data)
{
    call_t *c = data;
    apr_pool_t *p;
    eid_identity_t *id;
    eid_result_t res = {0};

    apr_pool_create(&p, NULL);
    c->code = eid_bearer_validate(p, &c->pv, 1, c->token, strlen(c->token), now, &id, &res);
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_inflight_bound(void **state)
{
    const char *o[] = {"introspect_max_inflight", "1", NULL};
    eid_provider_t *pv = intro_provider("busy", AUD, o);
    call_t c = {pv, "slow-token", EID_BEARER_INVALID};
    apr_thread_t *th;
    apr_status_t rv;
    apr_time_t t0;
    int i;

    route("/introspect", 200, answer(AUD, NULL));
    routes[0].delay_ms = 600;
    srv_hits = 0;
    apr_thread_create(&th, NULL, slow_call, &c, pool);
    /* wait until the first call is on its way */
    for (i = 0; i < 300 && srv_hits == 0; i++)
        usleep(5000);
    assert_int_equal(srv_hits, 1);
    /* the bound is reached: refused at once, no second call */
    t0 = apr_time_now();
    assert_int_equal(at(pv, "another-token", now, "EID03505"), EID_BEARER_UNAVAILABLE);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(200));
    apr_thread_join(&rv, th);
    assert_int_equal(c.code, EID_BEARER_OK);
    assert_int_equal(srv_hits, 1);
    /* the slot is free again */
    routes[0].delay_ms = 0;
    assert_int_equal(at(pv, "another-token", now, NULL), EID_BEARER_OK);
    assert_int_equal(srv_hits, 2);
}

/* The process-wide bound: two providers, each free to call, share it. */
static void test_process_bound(void **state)
{
    eid_provider_t *a = intro_provider("all-a", AUD, NULL);
    eid_provider_t *b = intro_provider("all-b", AUD, NULL);
    call_t c = {a, "slow-token-a", EID_BEARER_INVALID};
    apr_thread_t *th;
    apr_status_t rv;
    int i;

    eid_introspect_set_process_limit(1);
    route("/introspect", 200, answer(AUD, NULL));
    routes[0].delay_ms = 600;
    srv_hits = 0;
    apr_thread_create(&th, NULL, slow_call, &c, pool);
    for (i = 0; i < 300 && srv_hits == 0; i++)
        usleep(5000);
    assert_int_equal(srv_hits, 1);
    /* provider b has no call of its own running, but the process has one */
    assert_int_equal(at(b, "another-token-b", now, "EID03505"), EID_BEARER_UNAVAILABLE);
    apr_thread_join(&rv, th);
    assert_int_equal(c.code, EID_BEARER_OK);
    assert_int_equal(srv_hits, 1);
    routes[0].delay_ms = 0;
    assert_int_equal(at(b, "another-token-b", now, NULL), EID_BEARER_OK);
    /* no bound: back to the default */
    eid_introspect_set_process_limit(0);
    assert_int_equal(at(b, "third-token-b", now, NULL), EID_BEARER_OK);
    assert_int_equal(srv_hits, 3);
}

/* ---- the rate limit --------------------------------------------------------------------- */

static void test_rate_limit(void **state)
{
    const char *o[] = {"introspect_rate", "2", NULL};
    const char *off[] = {"introspect_rate", "0", NULL};
    eid_provider_t *pv = intro_provider("rate", AUD, o);
    eid_provider_t *free_pv = intro_provider("no-rate", AUD, off);
    eid_provider_t *bad = eid_provider_create(pool, "bad-rate");
    int i;

    route("/introspect", 200, "{\"active\":false}");
    srv_hits = 0;
    /* a second's worth (2) at once, then refused without a call */
    assert_int_equal(at(pv, "r1", now, "EID03504"), EID_BEARER_INVALID);
    assert_int_equal(at(pv, "r2", now, "EID03504"), EID_BEARER_INVALID);
    assert_int_equal(at(pv, "r3", now, "EID03506"), EID_BEARER_UNAVAILABLE);
    assert_int_equal(at(pv, "r4", now + apr_time_from_msec(400), "EID03506"),
                     EID_BEARER_UNAVAILABLE);
    assert_int_equal(srv_hits, 2);
    /* refilled at 2 per second; a refused token is not remembered */
    assert_int_equal(at(pv, "r3", now + apr_time_from_msec(600), "EID03504"),
                     EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 3);
    /* a remembered refusal costs no call and is not limited */
    for (i = 0; i < 5; i++)
        assert_int_equal(at(pv, "r1", now + apr_time_from_msec(600), "EID03504"),
                         EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 3);
    /* never more than a second's worth, however long it was idle */
    assert_int_equal(at(pv, "i1", now + apr_time_from_sec(60), "EID03504"), EID_BEARER_INVALID);
    assert_int_equal(at(pv, "i2", now + apr_time_from_sec(60), "EID03504"), EID_BEARER_INVALID);
    assert_int_equal(at(pv, "i3", now + apr_time_from_sec(60), "EID03506"),
                     EID_BEARER_UNAVAILABLE);
    /* 0: no limit */
    srv_hits = 0;
    for (i = 0; i < 150; i++)
        assert_int_equal(at(free_pv, apr_psprintf(pool, "f%d", i), now, "EID03504"),
                         EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 150);
    assert_non_null(eid_provider_set(bad, pool, "introspect_rate", "-1"));
    assert_non_null(eid_provider_set(bad, pool, "introspect_rate", "100001"));
    assert_null(eid_provider_set(bad, pool, "introspect_rate", "0"));
}

/* ---- caches bound to one provider's checks --------------------------------------------- */

static void test_cache_per_checks(void **state)
{
    eid_provider_t *a = intro_provider("for-a", "api://a", NULL);
    eid_provider_t *b = intro_provider("for-b", "api://b", NULL);

    /* the same endpoint and token: A's admission is no admission for B */
    route("/introspect", 200, answer("api://a", NULL));
    srv_hits = 0;
    assert_int_equal(at(a, "shared", now, NULL), EID_BEARER_OK);
    assert_int_equal(at(b, "shared", now, "EID03305"), EID_BEARER_INVALID);
    assert_int_equal(srv_hits, 2);
    /* and B's refusal no refusal for A (A's answer cache decides) */
    assert_int_equal(at(a, "shared", now, NULL), EID_BEARER_OK);
    assert_int_equal(srv_hits, 2);
}

/* ---- hostile answer shapes ------------------------------------------------------------ */

/* Duplicate members (which one would count?), an "active" that is not JSON
 * true, aud/iss/exp of the wrong type or spelling: refused, never admitted. */
static void test_hostile_answers(void **state)
{
    const char *off[] = {"introspect_negative_cache", "0", "introspect_cache", "0", NULL};
    eid_provider_t *pv = intro_provider("hostile", AUD, off);
    const char *iss = url("");
    struct {
        const char *body;
        int admitted;
    } cases[] = {
        {apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"aud\":\"%s\","
                      "\"aud\":\"api://other\",\"exp\":%ld}", iss, AUD, NOW_S + 600), 0},
        {apr_psprintf(pool, "{\"active\":false,\"active\":true,\"iss\":\"%s\","
                      "\"aud\":\"%s\",\"exp\":%ld}", iss, AUD, NOW_S + 600), 0},
        {apr_psprintf(pool, "{\"active\":\"true\",\"iss\":\"%s\",\"aud\":\"%s\","
                      "\"exp\":%ld}", iss, AUD, NOW_S + 600), 0},
        {apr_psprintf(pool, "{\"active\":1,\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%ld}",
                      iss, AUD, NOW_S + 600), 0},
        {apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s/\",\"aud\":\"%s\","
                      "\"exp\":%ld}", iss, AUD, NOW_S + 600), 0},
        {apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"aud\":[[\"%s\"]],"
                      "\"exp\":%ld}", iss, AUD, NOW_S + 600), 0},
        {apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"aud\":\"%s\","
                      "\"exp\":\"%ld\"}", iss, AUD, NOW_S + 600), 0},
        {apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"aud\":\"%s\","
                      "\"exp\":1e300}", iss, AUD), 0},
        {apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"aud\":\"%s\","
                      "\"exp\":9223372036854775807}", iss, AUD), 0},
        {apr_psprintf(pool, "[{\"active\":true,\"iss\":\"%s\",\"aud\":\"%s\","
                      "\"exp\":%ld}]", iss, AUD, NOW_S + 600), 0},
        {apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"aud\":\"%s\","
                      "\"exp\":%ld} trailing", iss, AUD, NOW_S + 600), 0},
        /* the control: the same answer, well-formed */
        {answer(AUD, NULL), 1},
        {apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"aud\":[\"x\",\"%s\"],"
                      "\"exp\":%ld}", iss, AUD, NOW_S + 600), 1},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        eid_identity_t *id = NULL;
        eid_result_t res = {0};
        const char *tok = apr_psprintf(pool, "hostile-%d", (int)i);
        eid_bearer_code_e c;

        route("/introspect", 200, cases[i].body);
        c = eid_bearer_validate(pool, &pv, 1, tok, strlen(tok), now, &id, &res);
        if (cases[i].admitted != (c == EID_BEARER_OK))
            fail_msg("case %d (%s): code %d, %s %s", (int)i, cases[i].body, (int)c,
                     res.tag ? res.tag : "-", res.reason ? res.reason : "-");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_model),
        cmocka_unit_test(test_required_members),
        cmocka_unit_test(test_negative_cache),
        cmocka_unit_test(test_inflight_bound),
        cmocka_unit_test(test_process_bound),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_cache_per_checks),
        cmocka_unit_test(test_hostile_answers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
