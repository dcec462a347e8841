/*
 * Unit tests: eid_session's plain codecs on hostile encodings (built here
 * byte by byte from the format in eid_session.h, not with the code under
 * test), what the encoder refuses, and the session timeouts.  Round trips
 * and everything keyed are in test_session.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eid/eid_session.h"
#include "eid/eid_util.h"
#include "session_fixtures.h"
/* ---- hostile encodings ------------------------------------------------------------- */

/* Slots of the record encoding after the 4 header bytes and 5 times:
 * 0..23 the identity's strings, 24..30 its arrays, 31..35 provider, sid,
 * sub, id_token, csrf.  Every slot is NULL (FF FF) except `slot`, which
 * gets `raw` (its length/count bytes included). */
#define SLOT_PNR 6
#define SLOT_ARR0 24
#define SLOT_ID_TOKEN 34
#define SLOT_CSRF 35
static unsigned char hb[70000];

static apr_size_t mk(const char *hdr, int slot, const void *raw, size_t rawlen)
{
    apr_size_t n = 0;
    int i;

    memcpy(hb, hdr, 4);
    n = 4;
    memset(hb + n, 0, 40);
    n += 40;
    for (i = 0; i < 36; i++) {
        if (i == slot) {
            memcpy(hb + n, raw, rawlen);
            n += rawlen;
        }
        else {
            hb[n++] = 0xff;
            hb[n++] = 0xff;
        }
    }
    return n;
}

#define OK_HDR "\x01\x02\x00\x03"
#define R(s) s, sizeof(s) - 1

static int dec(apr_size_t n)
{
    eid_session_rec_t *rec = NULL;
    int rc = eid_session_decode(pool, hb, n, &rec);
    if (rc)
        assert_null(rec);
    return rc;
}

static void test_decode_hostile(void **state)
{
    unsigned char *big;
    apr_size_t n;
    int i;

    assert_int_equal(dec(mk(OK_HDR, -1, NULL, 0)), 0);
    /* header */
    assert_int_equal(dec(mk("\x00\x02\x00\x03", -1, NULL, 0)), -1);
    assert_int_equal(dec(mk("\x02\x02\x00\x03", -1, NULL, 0)), -1);
    assert_int_equal(dec(mk("\x01\x04\x00\x03", -1, NULL, 0)), -1);
    assert_int_equal(dec(mk("\x01\x03\x01\x04", -1, NULL, 0)), 0);
    assert_int_equal(dec(mk("\x01\x02\x02\x03", -1, NULL, 0)), -1);
    assert_int_equal(dec(mk("\x01\x02\x00\x05", -1, NULL, 0)), -1);
    assert_int_equal(dec(mk("\x01\x02\x00\xff", -1, NULL, 0)), -1);
    /* strings */
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x03" "abc"))), 0);
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x00"))), 0);
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x05" "\xc3\xa5\xe2\x82\xac"))), 0);
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x02" "\xc3\x28"))), -1);     /* bad continuation */
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x02" "\xc0\xaf"))), -1);     /* overlong */
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x03" "\xed\xa0\x80"))), -1); /* surrogate */
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x01" "\xc3"))), -1);         /* cut sequence */
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x03" "a\x00" "b"))), -1);    /* NUL inside */
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x01" "\n"))), -1);
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x02" "\xc2\x85"))), -1);     /* C1 NEL */
    assert_int_equal(dec(mk(OK_HDR, 0, R("\x00\x01" "\x7f"))), -1);
    /* a length past the end (last slot), and the largest length */
    assert_int_equal(dec(mk(OK_HDR, SLOT_CSRF, R("\x00\x2b" "AAAAAAAAAA"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_CSRF, R("\xff\xfe"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_CSRF, R("\x00"))), -1);
    /* pnr */
    assert_int_equal(dec(mk(OK_HDR, SLOT_PNR, R("\x00\x0c" "194911172296"))), 0);
    assert_int_equal(dec(mk(OK_HDR, SLOT_PNR, R("\x00\x0b" "19491117229"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_PNR, R("\x00\x0d" "1949111722960"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_PNR, R("\x00\x0c" "19491117229X"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_PNR, R("\x00\x00"))), -1);
    /* csrf */
    assert_int_equal(dec(mk(OK_HDR, SLOT_CSRF, R("\x00\x2b" "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdE"))), 0);
    assert_int_equal(dec(mk(OK_HDR, SLOT_CSRF, R("\x00\x2b" "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+_abcdE"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_CSRF, R("\x00\x2a" "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd"))), -1);
    /* string size cap */
    big = malloc(2 + 16385);
    memset(big, 'a', 2 + 16385);
    big[0] = 0x40;
    big[1] = 0x00;
    assert_int_equal(dec(mk(OK_HDR, SLOT_ID_TOKEN, big, 2 + 16384)), 0);
    big[1] = 0x01;
    assert_int_equal(dec(mk(OK_HDR, SLOT_ID_TOKEN, big, 2 + 16385)), -1);
    free(big);
    /* arrays: huge counts, a count past the end, a NULL member, a bad member */
    assert_int_equal(dec(mk(OK_HDR, SLOT_ARR0, R("\xff\xfe"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_ARR0, R("\x01\x01"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_ARR0, R("\x00\x00"))), 0);
    assert_int_equal(dec(mk(OK_HDR, SLOT_ARR0, R("\x00\x02" "\x00\x01" "a" "\xff\xff"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_ARR0, R("\x00\x02" "\x00\x01" "a" "\x00\x01" "\x80"))), -1);
    assert_int_equal(dec(mk(OK_HDR, SLOT_ARR0, R("\x00\x02" "\x00\x01" "a" "\x00\x01" "b"))), 0);
    {
        unsigned char arr[2 + 257 * 2];
        memset(arr, 0, sizeof(arr));
        arr[0] = 0x01; /* 256 empty members */
        assert_int_equal(dec(mk(OK_HDR, SLOT_ARR0, arr, 2 + 256 * 2)), 0);
        arr[1] = 0x01; /* 257 */
        assert_int_equal(dec(mk(OK_HDR, SLOT_ARR0, arr, sizeof(arr))), -1);
    }
    /* every prefix of a valid encoding, and trailing bytes */
    n = mk(OK_HDR, SLOT_ARR0, R("\x00\x02" "\x00\x01" "a" "\x00\x01" "b"));
    for (i = 0; i < (int)n; i++) {
        unsigned char *cut = malloc(i ? (size_t)i : 1);
        eid_session_rec_t *rec = NULL;
        memcpy(cut, hb, (size_t)i);
        assert_int_equal(eid_session_decode(pool, cut, (apr_size_t)i, &rec), -1);
        assert_null(rec);
        free(cut);
    }
    hb[n] = 0;
    assert_int_equal(dec(n + 1), -1);
    /* over the total cap, NULL */
    big = calloc(1, EID_SESSION_MAX_ENCODED + 1);
    {
        eid_session_rec_t *rec = NULL;
        assert_int_equal(eid_session_decode(pool, big, EID_SESSION_MAX_ENCODED + 1, &rec), -1);
        assert_int_equal(eid_session_decode(pool, NULL, 0, &rec), -1);
    }
    free(big);
}

static void test_encode_refused(void **state)
{
    unsigned char *out;
    apr_size_t n;
    eid_session_rec_t *rec;
    char *s;
    int i;

#define REFUSED(stmt)                                                                   \
    do {                                                                                \
        rec = full_rec();                                                               \
        stmt;                                                                           \
        assert_int_equal(eid_session_encode(pool, rec, &out, &n), APR_EINVAL);         \
    } while (0)
    assert_int_equal(eid_session_encode(pool, NULL, &out, &n), APR_EINVAL);
    REFUSED(rec->id = NULL);
    REFUSED(rec->id->pnr = "123");
    REFUSED(rec->id->pnr = "19491117229a");
    REFUSED(rec->id->loa = 5);
    REFUSED(rec->id->loa = -1);
    REFUSED(rec->id->method = (eid_method_e)7);
    REFUSED(rec->id->pnr_is_coordination = 2);
    REFUSED(rec->id->org_name = "a\nb");
    REFUSED(rec->id->surname = "\xff");
    REFUSED(rec->sid = "tab\there");
    REFUSED(rec->csrf = "short");
    REFUSED(APR_ARRAY_PUSH(rec->id->roles, const char *) = NULL);
    REFUSED(APR_ARRAY_PUSH(rec->id->groups, const char *) = "\x01");
    REFUSED(for (i = 0; i < 255; i++) APR_ARRAY_PUSH(rec->id->groups, const char *) = "g");
    s = apr_palloc(pool, 16386);
    memset(s, 'x', 16385);
    s[16385] = 0;
    REFUSED(rec->id_token = s);
    s[16384] = 0;
    REFUSED((rec->id_token = s, rec->id->subject = s));
    /* at the caps exactly: fine */
    rec = full_rec();
    rec->id_token = s;
    for (i = 0; i < 254; i++)
        APR_ARRAY_PUSH(rec->id->groups, const char *) = "g";
    assert_int_equal(rec->id->groups->nelts, 256);
    assert_int_equal(eid_session_encode(pool, rec, &out, &n), APR_SUCCESS);
#undef REFUSED
}


static void test_pending_decode_hostile(void **state)
{
    static const char tail[] = "\x00\x01" "p" "\x00\x01" "s" "\x00\x01" "n" "\x00\x01" "v";
    unsigned char b[1200];
    eid_pending_t *pd;
    apr_size_t n;

#define PD(hdr, ret, rlen)                                                              \
    (memcpy(b, hdr, 10), memcpy(b + 10, tail, sizeof(tail) - 1),                        \
     memcpy(b + 10 + sizeof(tail) - 1, ret, rlen), n = 10 + sizeof(tail) - 1 + rlen,     \
     eid_pending_decode(pool, b, n, &pd))
    assert_int_equal(PD("\x01\x03" "\0\0\0\0\0\0\0\1", "\xff\xff", 2), 0);
    assert_null(pd->return_to);
    assert_string_equal(pd->state, "s");
    assert_int_equal(PD("\x01\x03" "\0\0\0\0\0\0\0\1", "\x00\x01/", 3), 0);
    assert_string_equal(pd->return_to, "/");
    assert_int_equal(PD("\x02\x03" "\0\0\0\0\0\0\0\1", "\xff\xff", 2), -1);
    assert_int_equal(PD("\x01\x05" "\0\0\0\0\0\0\0\1", "\xff\xff", 2), -1);
    assert_int_equal(PD("\x01\x03" "\0\0\0\0\0\0\0\1", "\x00\x01\x00", 3), -1);
    assert_int_equal(PD("\x01\x03" "\0\0\0\0\0\0\0\1", "\x00\x02/", 3), -1);
    assert_int_equal(PD("\x01\x03" "\0\0\0\0\0\0\0\1", "\xff\xff\x00", 3), -1);
    {
        unsigned char ret[2 + 1025];
        memset(ret, 'a', sizeof(ret));
        ret[0] = 0x04;
        ret[1] = 0x00; /* 1024: fine */
        assert_int_equal(PD("\x01\x03" "\0\0\0\0\0\0\0\1", ret, 2 + 1024), 0);
        ret[1] = 0x01; /* 1025 */
        assert_int_equal(PD("\x01\x03" "\0\0\0\0\0\0\0\1", ret, sizeof(ret)), -1);
    }
    /* a token of a character outside RFC 7636's set, a NULL token */
    memcpy(b, "\x01\x03" "\0\0\0\0\0\0\0\1" "\x00\x01" "p" "\x00\x01" "+" "\x00\x01" "n"
              "\x00\x01" "v" "\xff\xff", 24);
    assert_int_equal(eid_pending_decode(pool, b, 24, &pd), -1);
    memcpy(b, "\x01\x03" "\0\0\0\0\0\0\0\1" "\x00\x01" "p" "\xff\xff" "\x00\x01" "n"
              "\x00\x01" "v" "\xff\xff", 23);
    assert_int_equal(eid_pending_decode(pool, b, 23, &pd), -1);
    assert_int_equal(eid_pending_decode(pool, b, 0, &pd), -1);
    assert_int_equal(eid_pending_decode(pool, NULL, 0, &pd), -1);
#undef PD
}


/* ---- timeouts -------------------------------------------------------------------------- */

static void test_live(void **state)
{
    eid_session_rec_t r = {0};
    apr_time_t now = (apr_time_t)1700000000 * APR_USEC_PER_SEC;
    apr_interval_time_t idle = apr_time_from_sec(1800);

    assert_int_equal(eid_session_live(NULL, now, idle), 0);
    assert_int_equal(eid_session_live(&r, now, idle), 0); /* no end set */
    r.expires = now + 1;
    r.last_seen = now;
    assert_int_equal(eid_session_live(&r, now, idle), 1);
    assert_int_equal(eid_session_live(&r, now, 0), 1);
    r.expires = now;
    assert_int_equal(eid_session_live(&r, now, idle), 0); /* absolute end reached */
    r.expires = now + apr_time_from_sec(36000);
    r.last_seen = now - idle;
    assert_int_equal(eid_session_live(&r, now, idle), 0); /* idle */
    assert_int_equal(eid_session_live(&r, now, 0), 1);    /* no idle timeout */
    r.last_seen = now - idle + 1;
    assert_int_equal(eid_session_live(&r, now, idle), 1);
    r.last_seen = INT64_MIN; /* no overflow */
    assert_int_equal(eid_session_live(&r, now, idle), 0);
    r.last_seen = now + 5; /* clock step back */
    assert_int_equal(eid_session_live(&r, now, idle), 1);
    r.expires = -1;
    assert_int_equal(eid_session_live(&r, now, idle), 0);
    /* extreme clocks (found by fuzz_session_record under UBSan): no overflow
     * of now - idle, the verdict as for ordinary numbers */
    r.expires = 1;
    r.last_seen = INT64_MIN;
    assert_int_equal(eid_session_live(&r, INT64_MIN, idle), 1);
    assert_int_equal(eid_session_live(&r, INT64_MIN + idle - 1, idle), 1);
    assert_int_equal(eid_session_live(&r, INT64_MIN + idle, idle), 0);
    r.expires = INT64_MAX;
    r.last_seen = INT64_MAX - 5;
    assert_int_equal(eid_session_live(&r, INT64_MAX - 1, INT64_MAX), 1);
    r.last_seen = INT64_MIN;
    assert_int_equal(eid_session_live(&r, INT64_MAX - 1, INT64_MAX), 0);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_hostile),
        cmocka_unit_test(test_encode_refused),
        cmocka_unit_test(test_pending_decode_hostile),
        cmocka_unit_test(test_live),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
