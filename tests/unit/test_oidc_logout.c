/*
 * Unit tests: eid_oidc - back-channel logout tokens (one test per rule of
 * Back-Channel Logout 1.0 2.6 and SECURITY.md), the login endpoints from a
 * discovery document (loopback), the end-session URL, and threads racing
 * for the first discovery and redeeming at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "oidc_fixture.h"
#include "loopback_http.h"

#include <apr_thread_proc.h>

/* the retry throttle of a failed discovery is reset through the provider */
#include "../../mod_src/core/eid_provider_int.h"

#define LHDR "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"logout+jwt\"}"
#define EV "\"events\":{\"" EID_OIDC_BCL_EVENT "\":{}}"

static eid_provider_t *op1, *op2, *bearer;

static int setup(void **state)
{
    fixture_up("test_oidc_logout");
    start_server();
    op1 = provider_v((const char *[]){"issuer", ISS, "jwks_file", jwks_path, "login", "on",
        "client_id", CID, "client_secret_file", secret_path, "authorization_endpoint",
        "https://op/a", "token_endpoint", "https://op/t", "end_session_endpoint",
        "https://op.example.se/logout?lang=sv", NULL});
    op2 = provider_v((const char *[]){"issuer", "https://op2.example.se", "jwks_file",
        jwks_path, "login", "on", "client_id", "rp2", "client_secret_file", secret_path,
        "authorization_endpoint", "https://op/a", "token_endpoint", "https://op/t", NULL});
    bearer = provider_v((const char *[]){"issuer", "https://api.example.se", "jwks_file",
        jwks_path, "audience", CID, NULL});
    return 0;
}

static int teardown(void **state)
{
    stop_server();
    fixture_down();
    return 0;
}

static char *lclaims(const char *iss, const char *aud, long iat, const char *extra)
{
    return apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%ld,\"jti\":\"j-1\","
                        "\"sid\":\"sid-1\",\"sub\":\"user-1\"," EV "%s%s}", iss, aud, iat,
                        extra ? "," : "", extra ? extra : "");
}

static apr_status_t logout(const char *tok, eid_provider_t **pv, const char **sid,
                           const char **sub, const char **jti, eid_result_t *res)
{
    eid_provider_t *provs[3] = {op1, op2, bearer};
    return eid_oidc_logout_token(pool, provs, 3, tok, strlen(tok), now, pv, sid, sub, jti, res);
}

static void lrefused(const char *hdr, const char *cl, EVP_PKEY *k, const char *tag)
{
    eid_provider_t *pv = (eid_provider_t *)1;
    const char *sid = "x", *sub = "x", *jti = "x";
    eid_result_t res = {0};
    const char *t = sign(k ? k : op_key, hdr ? hdr : LHDR, cl);
    if (logout(t, &pv, &sid, &sub, &jti, &res) == APR_SUCCESS)
        fail_msg("expected %s, got success", tag);
    if (!res.tag || strcmp(res.tag, tag))
        fail_msg("expected %s, got %s (%s)", tag, res.tag, res.reason);
    assert_null(pv);
    assert_null(sid);
    assert_null(sub);
    assert_null(jti);
}

static void test_logout_ok(void **state)
{
    eid_provider_t *pv;
    const char *sid, *sub, *jti;
    eid_result_t res = {0};

    assert_int_equal(logout(sign(op_key, LHDR, lclaims(ISS, CID, NOW_S - 10, NULL)), &pv, &sid,
                            &sub, &jti, &res), APR_SUCCESS);
    assert_ptr_equal(pv, op1);
    assert_string_equal(sid, "sid-1");
    assert_string_equal(sub, "user-1");
    assert_string_equal(jti, "j-1");
    /* the second provider, by its issuer; aud as an array; sub only; no typ */
    assert_int_equal(logout(sign(op_key, "{\"alg\":\"RS256\",\"kid\":\"k1\"}",
                                 apr_psprintf(pool, "{\"iss\":\"https://op2.example.se\","
                                              "\"aud\":[\"x\",\"rp2\"],\"iat\":%ld,\"jti\":"
                                              "\"j\",\"sub\":\"u\"," EV "}", NOW_S)),
                            &pv, &sid, &sub, &jti, &res), APR_SUCCESS);
    assert_ptr_equal(pv, op2);
    assert_null(sid);
    assert_string_equal(sub, "u");
    /* typ application/logout+jwt, exp in the future */
    assert_int_equal(logout(sign(op_key, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":"
                                 "\"application/logout+jwt\"}", lclaims(ISS, CID, NOW_S,
                                 "\"exp\":1700000100")), &pv, &sid, &sub, &jti, &res),
                     APR_SUCCESS);
}

static void test_logout_rules(void **state)
{
    long t = NOW_S - 10;
    lrefused(NULL, lclaims(ISS, CID, t, NULL), evil_key, "EID03205");      /* signature */
    lrefused(NULL, lclaims("https://evil", CID, t, NULL), NULL, "EID07501");  /* iss */
    /* a bearer-only provider's issuer takes no logout tokens */
    lrefused(NULL, lclaims("https://api.example.se", CID, t, NULL), NULL, "EID07501");
    lrefused(NULL, lclaims(ISS, "rp2", t, NULL), NULL, "EID03305");          /* aud */
    lrefused(NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"iat\":%ld,\"jti\":\"j\",\"sid\":"
             "\"s\"," EV "}", ISS, t), NULL, "EID03303");                    /* no aud */
    lrefused(NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"jti\":\"j\","
             "\"sid\":\"s\"," EV "}", ISS, CID), NULL, "EID07503");           /* no iat */
    lrefused(NULL, lclaims(ISS, CID, NOW_S - 361, NULL), NULL, "EID07504");  /* too old */
    lrefused(NULL, lclaims(ISS, CID, NOW_S + 120, NULL), NULL, "EID03315");  /* future */
    lrefused(NULL, lclaims(ISS, CID, t, "\"exp\":1699999900"), NULL, "EID03309"); /* exp */
    lrefused(NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%ld,\"sid\":"
             "\"s\"," EV "}", ISS, CID, t), NULL, "EID07505");                /* no jti */
    lrefused(NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%ld,\"jti\":1,"
             "\"sid\":\"s\"," EV "}", ISS, CID, t), NULL, "EID07505");        /* jti type */
    lrefused(NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%ld,\"jti\":"
             "\"j\",\"sid\":\"s\"}", ISS, CID, t), NULL, "EID07506");         /* no events */
    lrefused(NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%ld,\"jti\":"
             "\"j\",\"sid\":\"s\",\"events\":{\"" EID_OIDC_BCL_EVENT "\":true}}", ISS, CID, t),
             NULL, "EID07506");                                               /* not object */
    lrefused(NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%ld,\"jti\":"
             "\"j\",\"sid\":\"s\",\"events\":{\"urn:other\":{}}}", ISS, CID, t), NULL,
             "EID07506");                                                     /* other event */
    lrefused(NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%ld,\"jti\":"
             "\"j\"," EV "}", ISS, CID, t), NULL, "EID07507");                /* no sid/sub */
    lrefused(NULL, apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%ld,\"jti\":"
             "\"j\",\"sid\":7," EV "}", ISS, CID, t), NULL, "EID07511");      /* sid type */
    lrefused(NULL, lclaims(ISS, CID, t, "\"nonce\":\"n\""), NULL, "EID07508"); /* nonce */
    /* an ID token or an access token cannot end sessions */
    lrefused("{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", lclaims(ISS, CID, t, NULL),
             NULL, "EID07502");
    lrefused("{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}",
             lclaims(ISS, CID, t, NULL), NULL, "EID07502");
    lrefused("{\"alg\":\"HS256\",\"kid\":\"k1\"}", lclaims(ISS, CID, t, NULL), NULL,
             "EID03112");
}

static void test_logout_callers(void **state)
{
    eid_provider_t *pv, *twins[2] = {op1, op1}, *none[1] = {bearer};
    const char *sid, *sub, *jti, *t = sign(op_key, LHDR, lclaims(ISS, CID, NOW_S, NULL));
    eid_result_t res = {0};

    assert_int_not_equal(eid_oidc_logout_token(pool, twins, 2, t, strlen(t), now, &pv, &sid,
                                               &sub, &jti, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID07510");
    assert_int_equal(res.cls, EID_CLASS_MISCONFIGURED);
    assert_int_not_equal(eid_oidc_logout_token(pool, none, 1, t, strlen(t), now, &pv, &sid,
                                               &sub, &jti, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID07509");
    assert_int_not_equal(eid_oidc_logout_token(pool, twins, 1, "", 0, now, &pv, &sid, &sub,
                                               &jti, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID07512");
    assert_int_not_equal(eid_oidc_logout_token(pool, twins, 1, "a.b", 3, now, &pv, &sid, &sub,
                                               &jti, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID03101");
}

/* ---- end session, discovery ------------------------------------------------------------- */

static void test_end_session(void **state)
{
    const char *u = eid_oidc_end_session_url(pool, op1, "id.tok.en", "https://rp/bye?a=1",
                                             "st 1");
    assert_string_equal(u, "https://op.example.se/logout?lang=sv&id_token_hint=id.tok.en"
                        "&client_id=rp%3A1+x&post_logout_redirect_uri=https%3A%2F%2Frp%2Fbye"
                        "%3Fa%3D1&state=st+1");
    u = eid_oidc_end_session_url(pool, op1, NULL, NULL, NULL);
    assert_string_equal(u, "https://op.example.se/logout?lang=sv&client_id=rp%3A1+x");
    assert_null(eid_oidc_end_session_url(pool, op2, "x", NULL, NULL));
}

static const char *disc_doc(const char *iss)
{
    return apr_psprintf(pool, "{\"issuer\":\"%s\",\"jwks_uri\":\"%s\",\"authorization_endpoint"
                        "\":\"https://op.example.se/auth\",\"token_endpoint\":\"%s\","
                        "\"userinfo_endpoint\":\"%s\",\"end_session_endpoint\":"
                        "\"https://op.example.se/end\"}", iss, url("/jwks"), url("/token"),
                        url("/userinfo"));
}

static eid_provider_t *disc_provider(const char *path, const char *extra_k, const char *extra_v)
{
    return provider_v((const char *[]){"issuer", ISS, "discovery", url(path), "login", "on",
        "client_id", CID, "client_secret_file", secret_path, "userinfo", "on",
        extra_k, extra_v, NULL});
}

static void test_discovery(void **state)
{
    const char *a, *t, *ui, *es;
    eid_result_t res = {0};
    eid_provider_t *pv, *over;
    int hits;

    route("/jwks", 200, apr_pstrcat(pool, "{\"keys\":[", jwk(op_key, "k1"), "]}", NULL));
    route("/disc", 200, disc_doc(ISS));
    pv = disc_provider("/disc", NULL, NULL); /* the parent's init fetched it once */
    hits = srv_hits;
    assert_int_equal(eid_oidc_endpoints(pool, pv, &a, &t, &ui, &es, &res), APR_SUCCESS);
    assert_string_equal(a, "https://op.example.se/auth");
    assert_string_equal(t, url("/token"));
    assert_string_equal(ui, url("/userinfo"));
    assert_string_equal(es, "https://op.example.se/end");
    assert_int_equal(srv_hits, hits); /* kept: no second fetch */
    /* a configured endpoint overrides the document's */
    over = disc_provider("/disc", "end_session_endpoint", "https://op.example.se/mine");
    assert_int_equal(eid_oidc_endpoints(pool, over, NULL, NULL, NULL, &es, &res), APR_SUCCESS);
    assert_string_equal(es, "https://op.example.se/mine");

    /* another issuer: misconfigured (the parent's failed fetch does not hold
     * the children back: the first login asks again at once), then throttled */
    route("/disc2", 200, disc_doc("https://other.example.se"));
    pv = disc_provider("/disc2", NULL, NULL);
    assert_int_not_equal(eid_oidc_endpoints(pool, pv, &a, &t, NULL, NULL, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID07002");
    assert_int_not_equal(eid_oidc_endpoints(pool, pv, &a, &t, NULL, NULL, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID07001"); /* within 10 s of that failure */
    /* down at start-up: unavailable, retried at most every 10 s, kept once it answers */
    route("/disc3", 503, "");
    pv = disc_provider("/disc3", NULL, NULL);
    pv->login.disc_failed = 0; /* as if the retry interval had passed */
    assert_int_not_equal(eid_oidc_endpoints(pool, pv, &a, &t, NULL, NULL, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID07001");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);
    hits = srv_hits;
    assert_int_not_equal(eid_oidc_endpoints(pool, pv, &a, &t, NULL, NULL, &res), APR_SUCCESS);
    assert_int_equal(srv_hits, hits); /* throttled: not asked again at once */
    route("/disc3", 200, disc_doc(ISS));
    pv->login.disc_failed = 0;
    assert_int_equal(eid_oidc_endpoints(pool, pv, &a, &t, NULL, NULL, &res), APR_SUCCESS);
    assert_string_equal(a, "https://op.example.se/auth");
    /* a document naming a plain-http endpoint elsewhere, or lacking userinfo */
    route("/disc4", 200, apr_psprintf(pool, "{\"issuer\":\"%s\",\"authorization_endpoint\":"
          "\"https://op/a\",\"token_endpoint\":\"http://op.example.se/t\"}", ISS));
    pv = disc_provider("/disc4", NULL, NULL);
    pv->login.disc_failed = 0;
    assert_int_not_equal(eid_oidc_endpoints(pool, pv, &a, &t, NULL, NULL, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID07001");
    {
        eid_provider_t *wrong = disc_provider("/disc2", NULL, NULL);
        wrong->login.disc_failed = 0;
        assert_int_not_equal(eid_oidc_endpoints(pool, wrong, &a, &t, NULL, NULL, &res),
                             APR_SUCCESS);
        assert_string_equal(res.tag, "EID07002");
        assert_int_equal(res.cls, EID_CLASS_MISCONFIGURED);
    }
}

/* ---- threads ------------------------------------------------------------------------- */

#define NTHREADS 4
static eid_provider_t *racer;
static const char *seen[NTHREADS];

static void *APR_THREAD_FUNC race(apr_thread_t *th, void *data)
{
    int i = (int)(intptr_t)data, k;
    apr_pool_t *p;
    eid_result_t res = {0};
    const char *a = NULL;
    apr_pool_create(&p, NULL);
    for (k = 0; k < 20; k++) {
        eid_oidc_authreq_t ar;
        if (eid_oidc_auth_request(p, racer, "https://rp/cb", 0, NULL, 0, now, &ar, &res) ==
            APR_SUCCESS && !strncmp(ar.url, "https://op.example.se/auth?", 27))
            a = "ok";
        else
            a = "refused";
        if (k % 5 == 4)
            apr_pool_clear(p);
    }
    seen[i] = a;
    apr_pool_destroy(p);
    apr_thread_exit(th, APR_SUCCESS);
    return NULL;
}

/* A provider whose parent fetch failed: the child's threads race for the
 * first discovery; every one sees the same endpoints, nothing leaks. */
static void test_discovery_race(void **state)
{
    apr_thread_t *t[NTHREADS];
    apr_status_t rv;
    int i;

    route("/disc5", 500, "");
    racer = disc_provider("/disc5", NULL, NULL);
    route("/disc5", 200, disc_doc(ISS));
    racer->login.disc_failed = 0;
    for (i = 0; i < NTHREADS; i++)
        apr_thread_create(&t[i], NULL, race, (void *)(intptr_t)i, pool);
    for (i = 0; i < NTHREADS; i++)
        apr_thread_join(&rv, t[i]);
    for (i = 0; i < NTHREADS; i++)
        assert_string_equal(seen[i], "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logout_ok),
        cmocka_unit_test(test_logout_rules),
        cmocka_unit_test(test_logout_callers),
        cmocka_unit_test(test_end_session),
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_discovery_race),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
