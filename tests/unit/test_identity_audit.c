/*
 * Unit tests: identity attributes, value encoding for the backend,
 * pseudonyms, and the audit record format.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "eid/eid_audit.h"
#include "eid/eid_identity.h"
#include "eid/eid_util.h"

#include <openssl/hmac.h>

static apr_pool_t *pool;

static const unsigned char KEY[32] = "0123456789abcdef0123456789abcdef";

static eid_identity_t *nurse(void)
{
    eid_identity_t *id = eid_identity_make(pool);
    id->method = EID_METHOD_CERT;
    id->profile = "siths";
    id->hsa_id = "SE2120001231-P123";
    id->given_name = "Åsa";
    id->surname = "Öberg";
    id->org_number = "2120001231";
    id->loa = 3;
    id->roles = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(id->roles, const char *) = "BIF;Spärradministratör";
    APR_ARRAY_PUSH(id->roles, const char *) = "X;Läsare";
    return id;
}

static void test_value_encode(void **s)
{
    const char *plain = "abc def";
    assert_ptr_equal(eid_value_encode(pool, plain, 1), plain); /* no copy needed */
    assert_string_equal(eid_value_encode(pool, "a\r\nb", 0), "a%0D%0Ab");
    assert_string_equal(eid_value_encode(pool, "100%", 0), "100%25");
    assert_string_equal(eid_value_encode(pool, "Åsa", 0), "Åsa");
    assert_string_equal(eid_value_encode(pool, "Åsa", 1), "%C3%85sa");
    assert_string_equal(eid_value_encode(pool, "\x7f\x01", 1), "%7F%01");
}

static void test_attr_table(void **s)
{
    int i;
    for (i = 0; i < EID_ATTR__COUNT; i++) {
        const eid_attr_desc_t *d = eid_attr_desc((eid_attr_e)i);
        assert_non_null(d);
        assert_int_equal(d->id, i); /* table order matches the enum */
        assert_ptr_equal(eid_attr_by_key(d->key), d);
    }
    assert_null(eid_attr_by_key("shoe-size"));
    assert_ptr_equal(eid_attr_by_key("HSA-ID"), eid_attr_desc(EID_ATTR_HSA_ID));
}

static void test_attr_values(void **s)
{
    eid_identity_t *id = nurse();
    assert_string_equal(eid_attr_value(pool, id, EID_ATTR_METHOD, NULL, 0), "cert");
    assert_string_equal(eid_attr_value(pool, id, EID_ATTR_LOA, NULL, 0), "3");
    assert_string_equal(eid_attr_value(pool, id, EID_ATTR_ROLES, NULL, 0),
                        "BIF;Spärradministratör,X;Läsare");
    assert_null(eid_attr_value(pool, id, EID_ATTR_PNR, NULL, 0));
    assert_null(eid_attr_value(pool, id, EID_ATTR_PNR_PSEUDONYM, KEY, 32));
    id->pnr = "194911172296";
    assert_null(eid_attr_value(pool, id, EID_ATTR_PNR_PSEUDONYM, NULL, 0));
    assert_string_equal(eid_attr_value(pool, id, EID_ATTR_PNR_PSEUDONYM, KEY, 32),
                        eid_pseudonym(pool, KEY, 32, "194911172296"));
    id->expires = apr_time_from_sec(1700000000);
    assert_string_equal(eid_attr_value(pool, id, EID_ATTR_EXPIRES, NULL, 0), "1700000000");
}

static void test_pseudonym(void **s)
{
    const char *a = eid_pseudonym(pool, KEY, 32, "194911172296");
    const char *b = eid_pseudonym(pool, KEY, 32, "194911172296");
    const char *c = eid_pseudonym(pool, KEY, 32, "197010632391");
    const char *d = eid_pseudonym(pool, (const unsigned char *)"another key of 32 bytes!!!!!!!!",
                                  32, "194911172296");
    size_t i;
    assert_int_equal(strlen(a), 22);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    {
        /* the per-thread memo is keyed by the key's bytes, not its address:
         * the same buffer with another key (a reloaded key file) */
        unsigned char k2[32];
        memcpy(k2, KEY, 32);
        assert_string_equal(eid_pseudonym(pool, k2, 32, "194911172296"), a);
        k2[31] ^= 1;
        assert_string_not_equal(eid_pseudonym(pool, k2, 32, "194911172296"), a);
    }
    for (i = 0; i < 22; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                               a[i]));
    assert_null(strstr(a, "1949"));
}

/* Known answers (computed independently: HMAC-SHA256, base64url, first 22
 * characters); built with -fsanitize=undefined the shift must not trip. */
static void test_pseudonym_known_answer(void **s)
{
    assert_string_equal(eid_pseudonym(pool, KEY, 32, "198503171236"),
                        "Br9Ac9ACQXElvkXS0Gluc9");
    assert_string_equal(eid_pseudonym(pool, KEY, 32, "199008834575"),
                        "F7kpx231wXSvfXxqwJyXFN");
}

/* The module's own HMAC (a fetched digest, no one-shot HMAC()) gives OpenSSL's
 * answer for keys shorter than, equal to and longer than SHA-256's block. */
static void test_pseudonym_key_lengths(void **s)
{
    static const size_t lens[] = {1, 31, 32, 63, 64, 65, 100, 200};
    unsigned char key[200], mac[32];
    unsigned int mlen = 0;
    size_t i;

    for (i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)(i * 7 + 3);
    for (i = 0; i < sizeof(lens) / sizeof(*lens); i++) {
        char want[44];
        assert_non_null(HMAC(EVP_sha256(), key, (int)lens[i],
                             (const unsigned char *)"191212121212", 12, mac, &mlen));
        eid_b64url_encode(want, mac, 17);
        want[22] = '\0';
        assert_string_equal(eid_pseudonym(pool, key, lens[i], "191212121212"), want);
    }
}

static void test_pnr_redact(void **s)
{
    const char *pnr = "198503171236", *ps = "Br9Ac9ACQXElvkXS0Gluc9";
    const char *dn = "serialNumber=198503171236,CN=Lars";
    const char *plain = "CN=Nobody,serialNumber=SE2120001231-P123";
    const char *forms[] = {"198503171236", "19850317-1236", "8503171236", "850317-1236",
                           "850317+1236", "PNOSE-198503171236"};
    size_t i;

    assert_ptr_equal(eid_pnr_redact(pool, plain, pnr, KEY, 32), plain); /* no copy */
    assert_null(eid_pnr_redact(pool, NULL, pnr, KEY, 32));
    assert_ptr_equal(eid_pnr_redact(pool, dn, NULL, KEY, 32), dn);
    assert_ptr_equal(eid_pnr_redact(pool, dn, "1985", KEY, 32), dn); /* not 12 digits */
    assert_string_equal(eid_pnr_redact(pool, dn, pnr, KEY, 32),
                        apr_pstrcat(pool, "serialNumber=", ps, ",CN=Lars", NULL));
    for (i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
        const char *v = apr_pstrcat(pool, "a ", forms[i], " b ", forms[i], NULL);
        const char *r = eid_pnr_redact(pool, v, pnr, KEY, 32);
        assert_null(strstr(r, "850317"));
        assert_null(strstr(r, "1236"));
        assert_non_null(strstr(strstr(r, ps) + 1, ps)); /* both occurrences */
    }
    /* adjacent occurrences, and the whole value */
    assert_string_equal(eid_pnr_redact(pool, "1985031712368503171236", pnr, KEY, 32),
                        apr_pstrcat(pool, ps, ps, NULL));
    assert_string_equal(eid_pnr_redact(pool, pnr, pnr, NULL, 0), "[pnr]");
}

static void test_copy_is_deep(void **s)
{
    apr_pool_t *sub;
    eid_identity_t *src, *dst;
    apr_pool_create(&sub, pool);
    src = eid_identity_make(sub);
    src->hsa_id = apr_pstrdup(sub, "SE2321000016-ABC");
    src->scopes = apr_array_make(sub, 1, sizeof(const char *));
    APR_ARRAY_PUSH(src->scopes, const char *) = apr_pstrdup(sub, "read");
    src->loa = 2;
    dst = eid_identity_copy(pool, src);
    apr_pool_destroy(sub); /* the copy must not point into the source's pool */
    assert_string_equal(dst->hsa_id, "SE2321000016-ABC");
    assert_int_equal(dst->scopes->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(dst->scopes, 0, const char *), "read");
    assert_int_equal(dst->loa, 2);
    assert_null(dst->roles);
}

static json_t *parse_line(const char *line, apr_size_t len)
{
    json_error_t err;
    json_t *j;
    assert_true(len > 2);
    assert_int_equal(line[len - 1], '\n');
    assert_null(memchr(line, '\n', len - 1)); /* exactly one line */
    j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        fail_msg("not JSON: %s in %s", err.text, line);
    return j;
}

static void test_audit_allow(void **s)
{
    eid_audit_rec_t rec = {0};
    eid_audit_opts_t o = {1, KEY, 32};
    apr_size_t len;
    const char *line;
    json_t *j;

    rec.time = apr_time_from_sec(1700000000) + 123456;
    rec.request_id = "abc";
    rec.http_method = "GET";
    rec.resource = "/journal";
    rec.id = nurse();
    rec.user = "SE2120001231-P123";
    rec.decision = EID_DECISION_ALLOW;
    rec.status = 200;
    line = eid_audit_format(pool, &rec, &o, &len);
    j = parse_line(line, len);
    assert_string_equal(json_string_value(json_object_get(j, "time")),
                        "2023-11-14T22:13:20.123456Z");
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "allow");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "loa")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "hsa_id")), "SE2120001231-P123");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "roles"), 0)),
                        "BIF;Spärradministratör");
    assert_null(json_object_get(j, "reason"));
    json_decref(j);
}

static void test_audit_tag(void **s)
{
    eid_audit_rec_t rec = {0};
    apr_size_t len;
    const char *line;
    json_t *j;

    rec.request_id = "abc";
    rec.decision = EID_DECISION_DENY;
    rec.reason = "Require eid-loa 3: level of assurance 2";
    rec.tag = "EID01101";
    rec.status = 403;
    line = eid_audit_format(pool, &rec, NULL, &len);
    j = parse_line(line, len);
    assert_string_equal(json_string_value(json_object_get(j, "tag")), "EID01101");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), rec.reason);
    json_decref(j);
    rec.tag = NULL;
    line = eid_audit_format(pool, &rec, NULL, &len);
    j = parse_line(line, len);
    assert_null(json_object_get(j, "tag"));
    json_decref(j);
}

/* The record's time is computed without gmtime_r(): it must agree with it
 * on every kind of date (leap days, century years, the epoch, far ahead). */
static void test_audit_time_matches_gmtime(void **s)
{
    static const apr_int64_t fixed[] = {
        0, 59, 86399, 86400, 951782400 /* 2000-02-29 */, 951868800 /* 2000-03-01 */,
        1709164800 /* 2024-02-29 */, 4107542400LL /* 2100-03-01 */,
        1735689599 /* 2024-12-31T23:59:59 */, 253402300799LL /* 9999-12-31T23:59:59 */};
    eid_audit_rec_t rec = {0};
    apr_uint64_t x = 88172645463325252ULL;
    int i;

    rec.decision = EID_DECISION_ALLOW;
    for (i = 0; i < 2000; i++) {
        apr_int64_t sec;
        time_t tt;
        struct tm tm;
        char want[64];
        const char *line;
        json_t *j;
        apr_size_t len;
        int usec;

        x ^= x << 13; /* xorshift: any second from 1970 to 9999 */
        x ^= x >> 7;
        x ^= x << 17;
        sec = i < (int)(sizeof(fixed) / sizeof(*fixed)) ? fixed[i]
                                                         : (apr_int64_t)(x % 253402300800ULL);
        usec = (int)(x % 1000000);
        tt = (time_t)sec;
        assert_non_null(gmtime_r(&tt, &tm));
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
        rec.time = apr_time_from_sec(sec) + usec;
        line = eid_audit_format(pool, &rec, NULL, &len);
        j = parse_line(line, len);
        assert_string_equal(json_string_value(json_object_get(j, "time")), want);
        json_decref(j);
    }
}

static void test_audit_pnr_pseudonymised(void **s)
{
    eid_audit_rec_t rec = {0};
    eid_audit_opts_t on = {1, KEY, 32}, off = {0, NULL, 0};
    apr_size_t len;
    const char *line;
    json_t *j;

    rec.id = nurse();
    ((eid_identity_t *)rec.id)->pnr = "194911172296";
    rec.decision = EID_DECISION_DENY;
    rec.reason = "eid-loa 3: level of assurance 2";
    rec.status = 403;
    line = eid_audit_format(pool, &rec, &on, &len);
    assert_null(strstr(line, "194911172296"));
    j = parse_line(line, len);
    assert_string_equal(json_string_value(json_object_get(j, "pnr_pseudonym")),
                        eid_pseudonym(pool, KEY, 32, "194911172296"));
    assert_null(json_object_get(j, "pnr"));
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "deny");
    json_decref(j);

    line = eid_audit_format(pool, &rec, &off, &len);
    j = parse_line(line, len);
    assert_string_equal(json_string_value(json_object_get(j, "pnr")), "194911172296");
    json_decref(j);
}

/* The identity fields made once (a memo of a shared identity) and handed in
 * as id_fields give the very line formatting them from the identity gives,
 * for both pseudonymisation settings and with hostile bytes in the values. */
static void test_audit_identity_fields_same_line(void **s)
{
    eid_audit_opts_t opts[2] = {{0, NULL, 0}, {1, KEY, 32}};
    eid_identity_t *id = nurse();
    int k;

    id->pnr = "194911172296";
    id->org_name = "Region \"Ex\\empel\"\n\x01\xff";
    for (k = 0; k < 2; k++) {
        eid_audit_rec_t rec = {0};
        apr_size_t l1, l2, flen;
        const char *a, *b, *f;
        rec.time = apr_time_from_sec(1700000000);
        rec.request_id = "r1";
        rec.resource = "/x";
        rec.status = 200;
        rec.id = id;
        a = eid_audit_format(pool, &rec, &opts[k], &l1);
        f = eid_audit_identity_format(pool, id, &opts[k], &flen);
        assert_int_equal(strlen(f), flen);
        assert_non_null(strstr(f, ",\"hsa_id\":"));
        rec.id_fields = f;
        rec.id_fields_len = flen;
        b = eid_audit_format(pool, &rec, &opts[k], &l2);
        assert_int_equal(l1, l2);
        assert_memory_equal(a, b, l1);
        json_decref(parse_line(b, l2));
        assert_true(k ? strstr(b, "pnr_pseudonym") && !strstr(b, "194911172296")
                      : strstr(b, "\"pnr\":\"194911172296\"") != NULL);
    }
}

static void test_audit_hostile_strings(void **s)
{
    eid_audit_rec_t rec = {0};
    apr_size_t len;
    const char *line;
    json_t *j;

    rec.resource = "/a\"b\\c\r\n\x01\x7f";
    rec.http_method = "G\xff\xfeT";    /* invalid UTF-8 */
    rec.user = "\xed\xa0\x80x";       /* encoded surrogate */
    rec.reason = "\xc0\xafoverlong"; /* overlong '/' */
    rec.decision = EID_DECISION_AUTHN;
    rec.status = 401;
    line = eid_audit_format(pool, &rec, NULL, &len);
    j = parse_line(line, len);
    assert_string_equal(json_string_value(json_object_get(j, "resource")),
                        "/a\"b\\c\r\n\x01\x7f");
    assert_string_equal(json_string_value(json_object_get(j, "http_method")),
                        "G\xef\xbf\xbd\xef\xbf\xbdT");
    assert_string_equal(json_string_value(json_object_get(j, "user")),
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx");
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "unauthenticated");
    assert_null(json_object_get(j, "hsa_id"));
    json_decref(j);
}

static void test_audit_long_values(void **s)
{
    eid_audit_rec_t rec = {0};
    apr_size_t len;
    char *big = apr_palloc(pool, 10001);
    json_t *j;
    const char *line;
    memset(big, 'x', 10000);
    big[10000] = '\0';
    rec.resource = big;
    line = eid_audit_format(pool, &rec, NULL, &len);
    j = parse_line(line, len);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "resource"))), 10000);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pseudonym_key_lengths),
        cmocka_unit_test(test_value_encode),
        cmocka_unit_test(test_attr_table),
        cmocka_unit_test(test_attr_values),
        cmocka_unit_test(test_pseudonym),
        cmocka_unit_test(test_pseudonym_known_answer),
        cmocka_unit_test(test_pnr_redact),
        cmocka_unit_test(test_audit_tag),
        cmocka_unit_test(test_copy_is_deep),
        cmocka_unit_test(test_audit_allow),
        cmocka_unit_test(test_audit_time_matches_gmtime),
        cmocka_unit_test(test_audit_pnr_pseudonymised),
        cmocka_unit_test(test_audit_identity_fields_same_line),
        cmocka_unit_test(test_audit_hostile_strings),
        cmocka_unit_test(test_audit_long_values),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
