/*
 * Unit tests: eid_redirect_check / eid_redirect_origin_check.  The hostile
 * table is what a browser (WHATWG URL parsing) would read as another origin
 * or a script, plus malformed input; the good table is what a real service
 * returns to.  Each entry is given with its exact length (embedded NULs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "eid/eid_redirect.h"

#define L(s) {(s), sizeof(s) - 1}

typedef struct {
    const char *t;
    size_t n;
} tcase_t;

static const char *const origins[] = {"https://svc.example.se", "https://portal.example.se:8443",
                                      "http://127.0.0.1:8080", "https://xn--lkare-jua.example",
                                      "https://[2001:db8::1]"};
#define NORIG ((int)(sizeof(origins) / sizeof(*origins)))

static const tcase_t hostile[] = {
    L("//evil.example"),
    L("//evil.example/path"),
    L("/\\evil.example"),
    L("\\\\evil.example"),
    L("/%5cevil.example"),
    L("/%5Cevil.example"),
    L("/a\\b"),
    L("/%2fevil.example"),
    L("/%2Fevil.example"),
    L("%2f%2fevil.example"),
    L("%2F%2Fevil.example"),
    L("/\t/evil.example"),
    L("/\n/evil.example"),
    L("/\r/evil.example"),
    L(" /path"),
    L("/path "),
    L("\x01/path"),
    L("/path\x1f"),
    L("/pa\0th"),
    L("/%09/evil.example"),
    L("/%0d%0aSet-Cookie:x=1"),
    L("/%00"),
    L("/a%7f"),
    L("http:evil.example"),
    L("https:evil.example"),
    L("https:/evil.example"),
    L("https:///evil.example"),
    L("https:\\\\evil.example"),
    L("javascript:alert(1)"),
    L("JavaScript:alert(1)"),
    L("java\tscript:alert(1)"),
    L("data:text/html,<script>alert(1)</script>"),
    L("vbscript:msgbox(1)"),
    L("https://evil.example"),
    L("https://svc.example.se@evil.example/"),
    L("https://user:pw@svc.example.se/"),
    L("https://svc.example.se.evil.example/"),
    L("https://evil.example#https://svc.example.se"),
    L("https://svc.example.se:444/"),
    L("https://portal.example.se/"),          /* default port, 8443 allowed */
    L("http://svc.example.se/"),              /* http to a non-loopback host */
    L("http://127.0.0.1/"),                   /* port 80, 8080 allowed */
    L("https://svc%2eexample.se/"),
    L("https://sv\xc3\xa4.example.se/"),      /* raw Unicode host */
    L("https://svc.example.se:0/"),
    L("https://svc.example.se:99999/"),
    L("https://svc.example.se:/"),
    L("https://svc.example.se:44a/"),
    L("http://127.0.0.1:08080/"),             /* leading zero: refused, not normalised */
    L("ftp://svc.example.se/"),
    L("relative/path"),
    L("evil.example"),
    L("?x=1"),
    L("#frag"),
    L(""),
    L("/%zz"),
    L("/%4"),
    L("/%"),
    L("/\xc3"),                               /* truncated UTF-8 */
    L("/\xc0\xaf"),                           /* overlong '/' */
    L("/\xed\xa0\x80"),                       /* surrogate */
    L("/\xff"),
    L("/./evil"),
    L("/../etc"),
    L("/a/%2e%2e/b"),
    L("/a/.."),
    L("/\"onmouseover=x"),
    L("/<script>"),
    L("https://[::1/"),
};

static const tcase_t good[] = {
    L("/"),
    L("/patient/12?tab=notes"),
    L("/a/b/c.html#section-2"),
    L("/search?q=%C3%A5%20b&x=%2F%2F"),       /* encoded slashes in the query only */
    L("/v\xc3\xa5rd/plan"),                   /* raw UTF-8 in the path */
    L("/my%20file.pdf"),
    L("/a/.hidden/..b/...c"),
    L("https://svc.example.se"),
    L("https://svc.example.se/"),
    L("https://SVC.Example.SE:443/start?x=1"),
    L("HTTPS://svc.example.se/x"),
    L("https://portal.example.se:8443/p"),
    L("http://127.0.0.1:8080/cb"),
    L("https://xn--lkare-jua.example/"),
    L("https://[2001:db8::1]/x"),
    L("https://svc.example.se?x=1"),
    L("https://svc.example.se#top"),
};

static void test_hostile(void **state)
{
    size_t i;
    for (i = 0; i < sizeof(hostile) / sizeof(*hostile); i++) {
        const char *why = eid_redirect_check(hostile[i].t, hostile[i].n, origins, NORIG);
        if (!why)
            fail_msg("accepted hostile target #%zu (%.*s)", i, (int)hostile[i].n, hostile[i].t);
    }
    assert_true(sizeof(hostile) / sizeof(*hostile) >= 40);
}

static void test_good(void **state)
{
    size_t i;
    for (i = 0; i < sizeof(good) / sizeof(*good); i++) {
        const char *why = eid_redirect_check(good[i].t, good[i].n, origins, NORIG);
        if (why)
            fail_msg("refused good target #%zu (%s): %s", i, good[i].t, why);
    }
    assert_true(sizeof(good) / sizeof(*good) >= 10);
}

static void test_no_origins(void **state)
{
    /* Without an allow-list only local paths pass. */
    assert_null(eid_redirect_check("/x", 2, NULL, 0));
    assert_non_null(eid_redirect_check("https://svc.example.se/", 23, NULL, 0));
    assert_non_null(eid_redirect_check(NULL, 0, NULL, 0));
    /* An invalid allow-list entry never matches. */
    {
        const char *bad[] = {"https://svc.example.se/path", "javascript:x", NULL};
        assert_non_null(eid_redirect_check("https://svc.example.se/", 23, bad, 3));
    }
}

static void test_length(void **state)
{
    char buf[EID_REDIRECT_MAX + 2];
    memset(buf, 'a', sizeof(buf));
    buf[0] = '/';
    assert_null(eid_redirect_check(buf, EID_REDIRECT_MAX, NULL, 0));
    assert_non_null(eid_redirect_check(buf, EID_REDIRECT_MAX + 1, NULL, 0));
    /* only len bytes are read */
    assert_null(eid_redirect_check("/ok//evil", 3, NULL, 0));
}

static void test_origin_check(void **state)
{
    assert_null(eid_redirect_origin_check("https://svc.example.se"));
    assert_null(eid_redirect_origin_check("https://svc.example.se:8443"));
    assert_null(eid_redirect_origin_check("http://localhost:8080"));
    assert_null(eid_redirect_origin_check("https://[::1]"));
    assert_non_null(eid_redirect_origin_check("https://svc.example.se/"));
    assert_non_null(eid_redirect_origin_check("http://svc.example.se"));
    assert_non_null(eid_redirect_origin_check("https://u@svc.example.se"));
    assert_non_null(eid_redirect_origin_check("svc.example.se"));
    assert_non_null(eid_redirect_origin_check("https://"));
    assert_non_null(eid_redirect_origin_check(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile),     cmocka_unit_test(test_good),
        cmocka_unit_test(test_no_origins),  cmocka_unit_test(test_length),
        cmocka_unit_test(test_origin_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
