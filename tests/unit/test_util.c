/*
 * Unit tests: the shared helpers of eid_util - strict UTF-8, base64url, the
 * level-of-assurance text, civil dates and the bounded file reader.
 *
 * The UTF-8 and date tests check the code against independent oracles (bit
 * arithmetic from RFC 3629's table; a day-by-day calendar walk with the
 * Gregorian leap rule) over every case that can differ, not against a copy
 * of the same algorithm.  Fixed dates were computed with Python's datetime.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eid/eid_identity.h"
#include "eid/eid_util.h"

static apr_pool_t *pool;

/* A literal with its exact length, so embedded NULs are part of the input. */
#define U(s) (const unsigned char *)(s), (sizeof(s) - 1)

/* ---- UTF-8 ------------------------------------------------------------------- */

/* RFC 3629 section 3 from first principles: the lead byte's high bits give
 * the length, the payload bits the code point; well-formed means shortest
 * form, a scalar value (no surrogate) and at most U+10FFFF. */
static int oracle_seq(const unsigned char *b, size_t n, uint32_t *cp)
{
    size_t len, i, shortest;
    uint32_t v;

    if (n == 0)
        return 0;
    if (b[0] < 0x80) {
        *cp = b[0];
        return 1;
    }
    if ((b[0] & 0xe0) == 0xc0)
        len = 2, v = b[0] & 0x1f;
    else if ((b[0] & 0xf0) == 0xe0)
        len = 3, v = b[0] & 0x0f;
    else if ((b[0] & 0xf8) == 0xf0)
        len = 4, v = b[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((b[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (b[i] & 0x3f);
    }
    shortest = v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4;
    if (shortest != len || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return (int)len;
}

static void test_utf8_seq_oracle(void **state)
{
    /* Every lead and second byte; the bytes after them from the values at
     * the edges of every range that matters. */
    static const unsigned char tail[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
                                         0x9f, 0xa0, 0xbf, 0xc0, 0xf4, 0xff};
    unsigned a, b, c, d;
    size_t n;

    for (a = 0; a < 256; a++)
        for (b = 0; b < 256; b++)
            for (c = 0; c < sizeof(tail); c++)
                for (d = 0; d < sizeof(tail); d++) {
                    unsigned char s[4] = {(unsigned char)a, (unsigned char)b, tail[c], tail[d]};
                    for (n = 0; n <= 4; n++) {
                        uint32_t want_cp = 0xffffffff, got_cp = 0xffffffff;
                        int want = oracle_seq(s, n, &want_cp);
                        int got = eid_utf8_seq(s, n, &got_cp);
                        if (got != want || (want && got_cp != want_cp))
                            fail_msg("%02x %02x %02x %02x n=%zu: got %d U+%X, want %d U+%X", a,
                                     b, tail[c], tail[d], n, got, got_cp, want, want_cp);
                        assert_int_equal(eid_utf8_seq(s, n, NULL), want);
                    }
                }
}

static void test_utf8_seq_edges(void **state)
{
    uint32_t cp = 0;

    assert_int_equal(eid_utf8_seq(U("A"), &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(eid_utf8_seq(U("\0"), &cp), 1); /* NUL is a sequence */
    assert_int_equal(cp, 0);
    assert_int_equal(eid_utf8_seq(U("\xc3\xa5"), &cp), 2); /* å */
    assert_int_equal(cp, 0xe5);
    assert_int_equal(eid_utf8_seq(U("\xe2\x82\xac"), &cp), 3); /* € */
    assert_int_equal(cp, 0x20ac);
    assert_int_equal(eid_utf8_seq(U("\xf4\x8f\xbf\xbf"), &cp), 4); /* the largest */
    assert_int_equal(cp, 0x10ffff);
    assert_int_equal(eid_utf8_seq(U("\xf0\x90\x80\x80"), &cp), 4); /* the smallest 4-byte */
    assert_int_equal(cp, 0x10000);
    assert_int_equal(eid_utf8_seq(U("\xef\xbf\xbf"), &cp), 3);
    assert_int_equal(cp, 0xffff);
    assert_int_equal(eid_utf8_seq(U("\xed\x9f\xbf"), &cp), 3); /* U+D7FF, below the surrogates */
    assert_int_equal(eid_utf8_seq(U("\xee\x80\x80"), &cp), 3); /* U+E000, above them */
    /* overlong forms */
    assert_int_equal(eid_utf8_seq(U("\xc0\x80"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xc1\xbf"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xe0\x80\xaf"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xe0\x9f\xbf"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xf0\x8f\xbf\xbf"), NULL), 0);
    /* surrogates */
    assert_int_equal(eid_utf8_seq(U("\xed\xa0\x80"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xed\xbf\xbf"), NULL), 0);
    /* above U+10FFFF, and leads that can only start such */
    assert_int_equal(eid_utf8_seq(U("\xf4\x90\x80\x80"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xf5\x80\x80\x80"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xff"), NULL), 0);
    /* stray continuation, truncated sequences (by n and by a NUL) */
    assert_int_equal(eid_utf8_seq(U("\x80"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xc3"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xe2\x82"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xf0\x9f\x98"), NULL), 0);
    assert_int_equal(eid_utf8_seq((const unsigned char *)"\xe2\x82\xac", 2, NULL), 0);
    assert_int_equal(eid_utf8_seq(U("\xe2\0\xac"), NULL), 0);
    assert_int_equal(eid_utf8_seq(U(""), NULL), 0);
}

static void test_utf8_check(void **state)
{
    const unsigned NC = EID_UTF8_NO_CONTROLS;

    assert_int_equal(eid_utf8_check(U(""), NC), EID_UTF8_OK);
    assert_int_equal(eid_utf8_check(U("\xc3\x85sa \xc3\x96" "berg"), NC), EID_UTF8_OK);
    assert_int_equal(eid_utf8_check(U("\xf0\x9f\x98\x80"), NC), EID_UTF8_OK);
    assert_int_equal(eid_utf8_check(U("\xf4\x8f\xbf\xbf"), NC), EID_UTF8_OK);
    /* controls: C0 (NUL too), DEL, C1 - only with the flag */
    assert_int_equal(eid_utf8_check(U("a\0b"), NC), EID_UTF8_CONTROL);
    assert_int_equal(eid_utf8_check(U("a\0b"), 0), EID_UTF8_OK);
    assert_int_equal(eid_utf8_check(U("a\nb"), NC), EID_UTF8_CONTROL);
    assert_int_equal(eid_utf8_check(U("\x1f"), NC), EID_UTF8_CONTROL);
    assert_int_equal(eid_utf8_check(U("\x7f"), NC), EID_UTF8_CONTROL);
    assert_int_equal(eid_utf8_check(U("\xc2\x80"), NC), EID_UTF8_CONTROL);
    assert_int_equal(eid_utf8_check(U("\xc3\x85sa\xc2\x85\xc3\x96"), NC), EID_UTF8_CONTROL);
    assert_int_equal(eid_utf8_check(U("\xc2\x9f"), NC), EID_UTF8_CONTROL);
    assert_int_equal(eid_utf8_check(U("\xc2\x9f"), 0), EID_UTF8_OK);
    assert_int_equal(eid_utf8_check(U("\xc2\xa0"), NC), EID_UTF8_OK); /* NBSP is not C1 */
    assert_int_equal(eid_utf8_check(U(" ~"), NC), EID_UTF8_OK);
    /* encoding errors, with and without the flag */
    assert_int_equal(eid_utf8_check(U("\xed\xa0\x80"), NC), EID_UTF8_BAD);
    assert_int_equal(eid_utf8_check(U("\xed\xa0\x80"), 0), EID_UTF8_BAD);
    assert_int_equal(eid_utf8_check(U("\xf4\x90\x80\x80"), NC), EID_UTF8_BAD);
    assert_int_equal(eid_utf8_check(U("\xf5\x80\x80\x80"), NC), EID_UTF8_BAD);
    assert_int_equal(eid_utf8_check(U("a\xe2\x82"), NC), EID_UTF8_BAD);
    assert_int_equal(eid_utf8_check(U("\x80"), NC), EID_UTF8_BAD);
    assert_int_equal(eid_utf8_check(U("\xc0\xaf"), 0), EID_UTF8_BAD);
    assert_int_equal(eid_utf8_check(U("ok\xc3"), 0), EID_UTF8_BAD);
    /* the first fault decides */
    assert_int_equal(eid_utf8_check(U("\x01\xff"), NC), EID_UTF8_CONTROL);
    assert_int_equal(eid_utf8_check(U("\xff\x01"), NC), EID_UTF8_BAD);
    /* only n bytes are looked at */
    assert_int_equal(eid_utf8_check((const unsigned char *)"ab\xff", 2, NC), EID_UTF8_OK);
}

static void test_utf8_is_control(void **state)
{
    uint32_t cp;
    for (cp = 0; cp < 0x200; cp++)
        assert_int_equal(eid_utf8_is_control(cp), cp < 0x20 || (cp >= 0x7f && cp <= 0x9f));
    assert_int_equal(eid_utf8_is_control(0x2028), 0);
    assert_int_equal(eid_utf8_is_control(0x10ffff), 0);
}

static void test_utf8_put(void **state)
{
    char o[4];
    uint32_t cp, back;

    /* Every scalar value round-trips through eid_utf8_seq with the
     * shortest length. */
    for (cp = 0; cp <= 0x10ffff; cp++) {
        size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        size_t n;
        if (cp == 0xd800)
            cp = 0xe000;
        n = eid_utf8_put(o, cp);
        if (n != want || eid_utf8_seq((unsigned char *)o, n, &back) != (int)n || back != cp)
            fail_msg("U+%X: put %zu bytes, want %zu", cp, n, want);
    }
    memcpy(o, "xxxx", 4);
    assert_int_equal(eid_utf8_put(o, 0xd800), 0);
    assert_int_equal(eid_utf8_put(o, 0xdfff), 0);
    assert_int_equal(eid_utf8_put(o, 0x110000), 0);
    assert_int_equal(eid_utf8_put(o, 0xffffffff), 0);
    assert_memory_equal(o, "xxxx", 4); /* nothing written */
    assert_int_equal(eid_utf8_put(o, 0x20ac), 3);
    assert_memory_equal(o, "\xe2\x82\xac", 3);
    assert_int_equal(eid_utf8_put(o, 0x10ffff), 4);
    assert_memory_equal(o, "\xf4\x8f\xbf\xbf", 4);
}

/* ---- base64url ---------------------------------------------------------------- */

static void test_b64url_vectors(void **state)
{
    /* RFC 4648 section 10, unpadded; then the two characters that differ
     * from base64 ('-' and '_' for '+' and '/'). */
    static const struct {
        const char *raw, *enc;
        size_t n;
    } v[] = {
        {"", "", 0},           {"f", "Zg", 1},         {"fo", "Zm8", 2},
        {"foo", "Zm9v", 3},    {"foob", "Zm9vYg", 4},  {"fooba", "Zm9vYmE", 5},
        {"foobar", "Zm9vYmFy", 6}, {"\xfb\xff", "-_8", 2}, {"\xfb\xef\xbe", "----", 3},
        {"\xff\xff\xff", "____", 3}, {"\0\0\0", "AAAA", 3}, {"\0", "AA", 1},
    };
    char out[16];
    unsigned char dec[16];
    size_t i, n;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_int_equal(eid_b64url_encoded_len(v[i].n), strlen(v[i].enc));
        assert_int_equal(eid_b64url_encode(out, (const unsigned char *)v[i].raw, v[i].n),
                         strlen(v[i].enc));
        assert_string_equal(out, v[i].enc);
        assert_string_equal(eid_b64url_pencode(pool, (const unsigned char *)v[i].raw, v[i].n),
                            v[i].enc);
        assert_true(eid_b64url_valid(v[i].enc, strlen(v[i].enc)));
        assert_int_equal(eid_b64url_decoded_len(strlen(v[i].enc)), v[i].n);
        n = 99;
        assert_true(eid_b64url_decode(v[i].enc, strlen(v[i].enc), dec, &n));
        assert_int_equal(n, v[i].n);
        assert_memory_equal(dec, v[i].raw, n);
    }
}

static void test_b64url_roundtrip(void **state)
{
    unsigned char raw[100], dec[100];
    char enc[140];
    size_t n, k, m;

    for (n = 0; n <= sizeof(raw); n++) {
        for (k = 0; k < n; k++)
            raw[k] = (unsigned char)(k * 37 + n * 11 + 0xa5);
        m = eid_b64url_encode(enc, raw, n);
        assert_int_equal(m, eid_b64url_encoded_len(n));
        assert_int_equal(strlen(enc), m);
        assert_int_not_equal(m % 4, 1);
        assert_true(eid_b64url_valid(enc, m));
        assert_int_equal(eid_b64url_decoded_len(m), n);
        assert_true(eid_b64url_decode(enc, m, dec, &k));
        assert_int_equal(k, n);
        assert_memory_equal(dec, raw, n);
    }
}

static void test_b64url_strict(void **state)
{
    static const char *const bad[] = {
        "A", "AAAAA", "Zm9vY",          /* 4k+1 characters */
        "Zh", "QR", "Zm9", "QUF",       /* unused bits not zero ("Zg", "QQ", "Zm8", "QUE" are) */
        "Zg==", "Zg=", "Zm9vYg==",      /* padding */
        "Zm+v", "Zm/v", "Zm 9v", "Zm9v\n", "Zm.v", "\xc3\xa5\x41\x41",
    };
    unsigned char dec[16];
    size_t i, n;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = 77;
        if (eid_b64url_valid(bad[i], strlen(bad[i])))
            fail_msg("'%s' accepted as base64url", bad[i]);
        assert_false(eid_b64url_decode(bad[i], strlen(bad[i]), dec, &n));
        assert_int_equal(n, 77); /* untouched */
    }
    assert_false(eid_b64url_valid("AA\0A", 4)); /* NUL inside the length */
    assert_true(eid_b64url_valid("", 0));
    assert_true(eid_b64url_valid("QQ", 2));
    assert_true(eid_b64url_valid("QUE", 3));
    assert_true(eid_b64url_valid("Zm9v!!", 4)); /* only n characters */
}

/* eid_b64url_valid and eid_b64url_decode agree on every string of up to two
 * bytes and every 3-character string over the alphabet and its neighbours. */
static void test_b64url_valid_is_decodable(void **state)
{
    static const char chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \x80";
    unsigned char dec[4];
    char s[3];
    size_t a, b, c, n, nc = sizeof(chars) - 1;
    int ok;

    for (a = 0; a < 256; a++) {
        s[0] = (char)a;
        assert_int_equal(eid_b64url_valid(s, 1), 0);
        assert_int_equal(eid_b64url_value((unsigned char)a) >= 0,
                         (a >= 'A' && a <= 'Z') || (a >= 'a' && a <= 'z') ||
                             (a >= '0' && a <= '9') || a == '-' || a == '_');
        for (b = 0; b < 256; b++) {
            s[1] = (char)b;
            ok = eid_b64url_valid(s, 2);
            assert_int_equal(eid_b64url_decode(s, 2, dec, &n), ok);
        }
    }
    for (a = 0; a < nc; a++)
        for (b = 0; b < nc; b++)
            for (c = 0; c < nc; c++) {
                s[0] = chars[a], s[1] = chars[b], s[2] = chars[c];
                ok = eid_b64url_valid(s, 3);
                assert_int_equal(eid_b64url_decode(s, 3, dec, &n), ok);
                if (ok)
                    assert_int_equal(n, 2);
            }
    assert_int_equal(eid_b64url_value('A'), 0);
    assert_int_equal(eid_b64url_value('_'), 63);
    assert_int_equal(eid_b64url_value('-'), 62);
    assert_int_equal(eid_b64url_value('='), -1);
}

/* The pseudonym is the first 22 characters of base64url(HMAC-SHA256): so
 * eid_identity.c can use eid_b64url_encode() without changing one. */
static void test_b64url_matches_pseudonym(void **state)
{
    static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
    static const char *const pnrs[] = {"194911172296", "191212121212", "x", ""};
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len;
    char enc[64];
    size_t i;

    for (i = 0; i < sizeof(pnrs) / sizeof(pnrs[0]); i++) {
        assert_non_null(HMAC(EVP_sha256(), key, 32, (const unsigned char *)pnrs[i],
                             strlen(pnrs[i]), mac, &mac_len));
        eid_b64url_encode(enc, mac, 17);
        enc[22] = '\0';
        assert_string_equal(eid_pseudonym(pool, key, 32, pnrs[i]), enc);
    }
}

/* ---- level of assurance ---------------------------------------------------------- */

static void test_loa_parse(void **state)
{
    static const char *const bad[] = {"", " 3", "3 ", "+3", "-1", "03", "5", "9", "a",
                                      "1.0", "\xef\xbc\x93", "3\n", "loa3", "10"};
    size_t i;
    int min;

    for (min = 0; min <= 1; min++) {
        assert_int_equal(eid_loa_parse("0", min), min ? -1 : 0);
        assert_int_equal(eid_loa_parse("1", min), 1);
        assert_int_equal(eid_loa_parse("2", min), 2);
        assert_int_equal(eid_loa_parse("3", min), 3);
        assert_int_equal(eid_loa_parse("4", min), 4);
        assert_int_equal(eid_loa_parse(NULL, min), -1);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            if (eid_loa_parse(bad[i], min) != -1)
                fail_msg("'%s' accepted as a level (min %d)", bad[i], min);
    }
    assert_int_equal(eid_loa_parse("3", 4), -1);
    assert_int_equal(eid_loa_parse("4", 4), 4);
}

static void test_uint_parse(void **state)
{
    static const char *const syntax[] = {"", " 1", "1 ", "+1", "-1", "1a", "0x10", "1.0",
                                         "1\n", "\xef\xbc\x91", "1,000"};
    apr_int64_t n = 42;
    size_t i;

    assert_int_equal(eid_uint_parse("0", 0, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(eid_uint_parse("10", 0, 10, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(eid_uint_parse("007", 0, 10, &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(eid_uint_parse("1024", 1024, 16777216, &n), 0);
    assert_int_equal(eid_uint_parse("16777216", 1024, 16777216, &n), 0);
    assert_int_equal(n, 16777216);
    n = 42;
    assert_int_equal(eid_uint_parse("16777217", 1024, 16777216, &n), -2);
    assert_int_equal(eid_uint_parse("1023", 1024, 16777216, &n), -2);
    assert_int_equal(eid_uint_parse("11", 0, 10, &n), -2);
    assert_int_equal(eid_uint_parse("5", 0, 3, &n), -2); /* a digit above a small max */
    assert_int_equal(eid_uint_parse("0", 1, 3, &n), -2);
    assert_int_equal(n, 42); /* untouched on error */
    /* far beyond 64 bits: out of range, not wrapped */
    assert_int_equal(eid_uint_parse("99999999999999999999999999", 0, 100, &n), -2);
    assert_int_equal(eid_uint_parse("18446744073709551617", 0, APR_INT64_MAX, &n), -2);
    assert_int_equal(eid_uint_parse("9223372036854775807", 0, APR_INT64_MAX, &n), 0);
    assert_true(n == APR_INT64_MAX);
    assert_int_equal(eid_uint_parse("9223372036854775808", 0, APR_INT64_MAX, &n), -2);
    /* syntax first: a bad character anywhere, even after too many digits */
    assert_int_equal(eid_uint_parse("99999999999999999999999x", 0, 100, &n), -1);
    assert_int_equal(eid_uint_parse(NULL, 0, 10, &n), -1);
    for (i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++)
        if (eid_uint_parse(syntax[i], 0, 100, &n) != -1)
            fail_msg("'%s' accepted as a number", syntax[i]);
}

/* ---- dates ----------------------------------------------------------------------- */

static void test_days_fixed(void **state)
{
    static const struct {
        int y;
        unsigned m, d;
        long days;
    } v[] = {
        {1970, 1, 1, 0},        {1969, 12, 31, -1},     {2000, 2, 29, 11016},
        {2000, 3, 1, 11017},    {2100, 2, 28, 47540},   {2100, 3, 1, 47541},
        {9999, 12, 31, 2932896}, {1, 1, 1, -719162},    {1600, 2, 29, -135081},
        {2038, 1, 19, 24855},   {0, 3, 1, -719468},
    };
    apr_int64_t y;
    unsigned m, d;
    size_t i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_int_equal(eid_days_from_civil(v[i].y, v[i].m, v[i].d), v[i].days);
        eid_civil_from_days(v[i].days, &y, &m, &d);
        assert_int_equal(y, v[i].y);
        assert_int_equal(m, v[i].m);
        assert_int_equal(d, v[i].d);
    }
    /* 2100 is not a leap year: its 29 February is 1 March. */
    assert_int_equal(eid_days_from_civil(2100, 2, 29), 47541);
    /* before year 0 */
    eid_civil_from_days(-719469, &y, &m, &d);
    assert_int_equal(y, 0);
    assert_int_equal(m, 2);
    assert_int_equal(d, 29); /* year 0 (1 BC) is a leap year */
    eid_civil_from_days(-719529, &y, &m, &d);
    assert_int_equal(y, -1);
    assert_int_equal(m, 12);
    assert_int_equal(d, 31);
    assert_int_equal(eid_days_from_civil(-1, 12, 31), -719529);
}

static unsigned month_days(apr_int64_t y, unsigned m)
{
    static const unsigned len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : len[m - 1];
}

/* A walk from 31 December of year -1 to 31 December 9999, day by day: each
 * day must be the calendar's successor of the one before, both ways. */
static void test_days_walk(void **state)
{
    apr_int64_t day, y = -1, yy;
    unsigned m = 12, d = 31, mm, dd;

    for (day = -719529; day <= 2932896; day++) {
        eid_civil_from_days(day, &yy, &mm, &dd);
        if (yy != y || mm != m || dd != d)
            fail_msg("day %ld: %ld-%u-%u, want %ld-%u-%u", (long)day, (long)yy, mm, dd,
                     (long)y, m, d);
        if (eid_days_from_civil(y, m, d) != day)
            fail_msg("%ld-%u-%u is not day %ld", (long)y, m, d, (long)day);
        if (++d > month_days(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
}

/* ---- files ----------------------------------------------------------------------- */

static const char *tmpdir;

static const char *write_file(const char *name, const char *data, size_t n)
{
    const char *path = apr_pstrcat(pool, tmpdir, "/", name, NULL);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void expect_file_err(const char *err, const char *part)
{
    if (!err || !strstr(err, part))
        fail_msg("error '%s' does not contain '%s'", err ? err : "(none)", part);
}

static void test_file_read(void **state)
{
    char *buf = NULL, *missing;
    apr_size_t len = 99;
    const char *path, *err = NULL;

    /* exactly max, and its NUL */
    path = write_file("ten", "0123456789", 10);
    assert_int_equal(eid_file_read(pool, path, 10, 0, &buf, &len, &err), APR_SUCCESS);
    assert_int_equal(len, 10);
    assert_string_equal(buf, "0123456789");
    assert_int_equal(eid_file_read(pool, path, 1000, EID_FILE_SECRET, &buf, &len, NULL),
                     APR_SUCCESS);
    assert_string_equal(buf, "0123456789");
    /* one more than max: refused, and the error quotes no content */
    buf = NULL;
    len = 99;
    assert_int_equal(eid_file_read(pool, path, 9, 0, &buf, &len, &err), APR_ENOSPC);
    expect_file_err(err, apr_psprintf(pool, "%s is larger than 9 bytes", path));
    assert_null(strstr(err, "0123"));
    assert_null(buf); /* outputs untouched on error */
    assert_int_equal(len, 99);
    assert_int_equal(eid_file_read(pool, path, 0, EID_FILE_SECRET, &buf, &len, &err),
                     APR_ENOSPC);
    expect_file_err(err, "larger than 0");
    assert_int_equal(eid_file_read(pool, path, 9, 0, &buf, &len, NULL), APR_ENOSPC);
    /* empty */
    path = write_file("empty", "", 0);
    assert_int_equal(eid_file_read(pool, path, 0, 0, &buf, &len, &err), APR_SUCCESS);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    /* NUL bytes are content, counted in len */
    path = write_file("nul", "a\0b", 3);
    assert_int_equal(eid_file_read(pool, path, 3, 0, &buf, &len, &err), APR_SUCCESS);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "a\0b", 4);
    /* missing, a directory, a FIFO (refused without waiting for a writer) */
    missing = apr_pstrcat(pool, tmpdir, "/missing", NULL);
    assert_int_equal(eid_file_read(pool, missing, 10, 0, &buf, &len, &err), APR_ENOENT);
    expect_file_err(err, apr_psprintf(pool, "cannot open %s: ", missing));
    expect_file_err(err, "No such file");
    assert_int_equal(eid_file_read(pool, tmpdir, 10, 0, &buf, &len, &err), APR_EINVAL);
    expect_file_err(err, apr_psprintf(pool, "%s is not a regular file", tmpdir));
    path = apr_pstrcat(pool, tmpdir, "/fifo", NULL);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(eid_file_read(pool, path, 10, 0, &buf, &len, &err), APR_EINVAL);
    expect_file_err(err, "is not a regular file");
    assert_int_equal(eid_file_read(pool, NULL, 10, 0, &buf, &len, &err), APR_EINVAL);
    assert_string_equal(err, "no file name given");
    assert_int_equal(eid_file_read(pool, "", 10, 0, &buf, &len, &err), APR_EINVAL);
    assert_string_equal(err, "no file name given");
    assert_int_equal(len, 3); /* still from the last success */
}

/* A file whose size fstat() gets wrong (procfs says 0): read to the end,
 * still under the cap. */
static void test_file_read_size_hint(void **state)
{
    const char *err;
    char *buf;
    apr_size_t len;

    assert_int_equal(eid_file_read(pool, "/proc/self/status", 1 << 20, 0, &buf, &len, &err),
                     APR_SUCCESS);
    assert_true(len > 20);
    assert_int_equal(strlen(buf), len);
    assert_non_null(strstr(buf, "Name:"));
    assert_int_equal(eid_file_read(pool, "/proc/self/status", 20, EID_FILE_SECRET, &buf, &len,
                                   &err), APR_ENOSPC);
    expect_file_err(err, "is larger than 20 bytes");
}

static int file_setup(void **state)
{
    char *t = apr_pstrdup(pool, "/tmp/eid-test-util-XXXXXX");
    if (!mkdtemp(t))
        return -1;
    tmpdir = t;
    return 0;
}

static int file_teardown(void **state)
{
    static const char *const names[] = {"ten", "empty", "nul", "fifo"};
    size_t i;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unlink(apr_pstrcat(pool, tmpdir, "/", names[i], NULL));
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_seq_oracle),
        cmocka_unit_test(test_utf8_seq_edges),
        cmocka_unit_test(test_utf8_check),
        cmocka_unit_test(test_utf8_is_control),
        cmocka_unit_test(test_utf8_put),
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_b64url_roundtrip),
        cmocka_unit_test(test_b64url_strict),
        cmocka_unit_test(test_b64url_valid_is_decodable),
        cmocka_unit_test(test_b64url_matches_pseudonym),
        cmocka_unit_test(test_uint_parse),
        cmocka_unit_test(test_loa_parse),
        cmocka_unit_test(test_days_fixed),
        cmocka_unit_test(test_days_walk),
        cmocka_unit_test_setup_teardown(test_file_read, file_setup, file_teardown),
        cmocka_unit_test(test_file_read_size_hint),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
