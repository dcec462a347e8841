/*
 * Unit tests: eid_session - key files, cookie ids, store keys, round trips,
 * AES-256-GCM sealing (tamper, truncation, swapped bind, wrong purpose,
 * rotation), pending-login cookies and many threads on one key set.
 * Hostile encodings and timeouts: test_session_codec.c.
 *
 * The store-key test computes HKDF and HMAC with OpenSSL directly, pinning
 * the derivation (a change would lose every stored session at an upgrade).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eid/eid_session.h"
#include "eid/eid_util.h"
#include "session_fixtures.h"


/* ---- round trips ------------------------------------------------------------------- */

static void test_roundtrip_full(void **state)
{
    eid_session_keys_t *k = keys(key_a, NULL);
    eid_session_rec_t *rec = full_rec(), *got = NULL, empty = {0};
    unsigned char *enc, *enc2, *sealed, *sealed2;
    apr_size_t elen, elen2, slen, slen2;
    eid_result_t res = {0};
    int rotated = -1;

    /* codec: decode(encode(x)) == x and re-encodes to the same bytes */
    assert_int_equal(eid_session_encode(pool, rec, &enc, &elen), APR_SUCCESS);
    assert_int_equal(eid_session_decode(pool, enc, elen, &got), 0);
    assert_rec_same(rec, got);
    assert_ptr_not_equal(got->id->roles, rec->id->roles); /* copies, not aliases */
    assert_int_equal(eid_session_encode(pool, got, &enc2, &elen2), APR_SUCCESS);
    assert_int_equal(elen, elen2);
    assert_memory_equal(enc, enc2, elen);

    /* sealed */
    assert_int_equal(eid_session_seal(pool, k, BIND, rec, &sealed, &slen), APR_SUCCESS);
    assert_int_equal(slen, elen + 1 + 4 + 12 + 16);
    assert_int_equal(sealed[0], 1);
    got = NULL;
    assert_int_equal(eid_session_open(pool, k, BIND, sealed, slen, &got, &rotated, &res), 0);
    assert_int_equal(rotated, 0);
    assert_int_equal(res.code, 0);
    assert_rec_same(rec, got);
    /* a fresh IV each time: the same record never seals to the same bytes */
    assert_int_equal(eid_session_seal(pool, k, BIND, rec, &sealed2, &slen2), APR_SUCCESS);
    assert_int_equal(slen, slen2);
    assert_memory_not_equal(sealed + 5, sealed2 + 5, 12);
    assert_memory_not_equal(sealed + 17, sealed2 + 17, slen - 17);

    /* everything absent: NULL stays NULL (not ""), an empty array stays empty */
    empty.id = eid_identity_make(pool);
    assert_int_equal(eid_session_encode(pool, &empty, &enc, &elen), APR_SUCCESS);
    assert_int_equal(elen, 4 + 5 * 8 + (24 + 7 + 5) * 2);
    assert_int_equal(eid_session_decode(pool, enc, elen, &got), 0);
    assert_rec_same(&empty, got);
    assert_null(got->id->roles);
    assert_int_equal(eid_session_decode(pool, enc, elen - 1, &got), -1);
}

/* ---- tampering ------------------------------------------------------------------------ */

static void sealed_full(eid_session_keys_t *k, const char *bind, unsigned char **s, apr_size_t *n)
{
    assert_int_equal(eid_session_seal(pool, k, bind, full_rec(), s, n), APR_SUCCESS);
}

static void test_tamper_every_byte(void **state)
{
    eid_session_keys_t *k = keys(key_a, key_b);
    unsigned char *s, *m;
    apr_size_t n, i;
    static const unsigned char flips[] = {0x01, 0x80, 0xff};
    size_t f;

    sealed_full(k, BIND, &s, &n);
    m = apr_pmemdup(pool, s, n);
    for (i = 0; i < n; i++) {
        for (f = 0; f < sizeof(flips); f++) {
            eid_session_rec_t *got = NULL;
            eid_result_t res = {0};
            const char *want = i == 0 ? "EID06102" : i < 5 ? "EID06103" : "EID06104";

            m[i] ^= flips[f];
            assert_int_equal(eid_session_open(pool, k, BIND, m, n, &got, NULL, &res), -1);
            assert_null(got);
            assert_string_equal(res.tag, want);
            assert_int_equal(res.cls, EID_CLASS_INVALID);
            m[i] ^= flips[f];
        }
    }
    /* the untouched copy still opens */
    assert_memory_equal(m, s, n);
    {
        eid_session_rec_t *got;
        assert_int_equal(eid_session_open(pool, k, BIND, m, n, &got, NULL, NULL), 0);
    }
}

static void test_truncation_and_extension(void **state)
{
    eid_session_keys_t *k = keys(key_a, NULL);
    eid_session_rec_t *got;
    unsigned char *s, *longer;
    apr_size_t n, i;
    eid_result_t res;

    sealed_full(k, BIND, &s, &n);
    for (i = 0; i < n; i++) {
        /* a fresh copy of exactly i bytes, so that valgrind/ASan see any read past it */
        unsigned char *cut = malloc(i ? i : 1);
        memcpy(cut, s, i);
        got = NULL;
        memset(&res, 0, sizeof(res));
        assert_int_equal(eid_session_open(pool, k, BIND, cut, i, &got, NULL, &res), -1);
        assert_null(got);
        assert_string_equal(res.tag, i < 33 ? "EID06101" : "EID06104");
        free(cut);
    }
    longer = apr_palloc(pool, n + 1);
    memcpy(longer, s, n);
    longer[n] = 0;
    assert_int_equal(eid_session_open(pool, k, BIND, longer, n + 1, &got, NULL, NULL), -1);
    assert_int_equal(eid_session_open(pool, k, BIND, NULL, 0, &got, NULL, NULL), -1);
    assert_int_equal(eid_session_open(pool, NULL, BIND, s, n, &got, NULL, NULL), -1);
    assert_int_equal(eid_session_open(pool, k, NULL, s, n, &got, NULL, NULL), -1);
}

static void test_swapped_bind(void **state)
{
    eid_session_keys_t *k = keys(key_a, NULL);
    unsigned char id[EID_SESSION_ID_LEN], id2[EID_SESSION_ID_LEN], *s;
    char sk[48], sk_other_vhost[48], sk_other_id[48];
    eid_session_rec_t *got;
    eid_result_t res = {0};
    apr_size_t n;

    assert_int_equal(eid_session_new_id(id), APR_SUCCESS);
    assert_int_equal(eid_session_new_id(id2), APR_SUCCESS);
    assert_int_equal(eid_session_store_key(k, 0, VHOST, id, sk), 0);
    assert_int_equal(eid_session_store_key(k, 0, "other.example.se", id, sk_other_vhost), 0);
    assert_int_equal(eid_session_store_key(k, 0, VHOST, id2, sk_other_id), 0);
    sealed_full(k, sk, &s, &n);
    assert_int_equal(eid_session_open(pool, k, sk, s, n, &got, NULL, NULL), 0);
    assert_int_equal(eid_session_open(pool, k, sk_other_vhost, s, n, &got, NULL, &res), -1);
    assert_string_equal(res.tag, "EID06104");
    assert_int_equal(eid_session_open(pool, k, sk_other_id, s, n, &got, NULL, &res), -1);
    assert_string_equal(res.tag, "EID06104");
    /* a bind that only extends the other one */
    assert_int_equal(eid_session_open(pool, k, apr_pstrcat(pool, sk, "x", NULL), s, n, &got,
                                      NULL, &res), -1);
    assert_int_equal(eid_session_open(pool, k, "", s, n, &got, NULL, &res), -1);
}

static void test_wrong_purpose(void **state)
{
    eid_session_keys_t *k = keys(key_a, NULL);
    const char *cookie = eid_pending_seal(pool, k, VHOST, pending("/x"));
    unsigned char raw[EID_PENDING_MAX_COOKIE], *s;
    apr_size_t rlen, n;
    eid_session_rec_t *rec;
    eid_pending_t *pd;
    eid_result_t res = {0};
    char *text;

    assert_non_null(cookie);
    assert_int_equal(eid_pending_open(pool, k, VHOST, cookie, strlen(cookie), &pd, &res), 0);
    /* a state cookie's bytes handed to the session opener, with the same bind */
    assert_true(eid_b64url_decode(cookie, strlen(cookie), raw, &rlen));
    assert_int_equal(eid_session_open(pool, k, VHOST, raw, rlen, &rec, NULL, &res), -1);
    assert_string_equal(res.tag, "EID06104");
    /* a session record offered as a state cookie, bound to the vhost */
    sealed_full(k, VHOST, &s, &n);
    assert_int_equal(eid_session_open(pool, k, VHOST, s, n, &rec, NULL, NULL), 0);
    text = eid_b64url_pencode(pool, s, n);
    if (strlen(text) <= EID_PENDING_MAX_COOKIE) {
        assert_int_equal(eid_pending_open(pool, k, VHOST, text, strlen(text), &pd, &res), -1);
        assert_string_equal(res.tag, "EID06104");
    }
    /* a small session record (fits the cookie size) */
    {
        eid_session_rec_t small = {0};
        small.id = eid_identity_make(pool);
        small.expires = 5;
        assert_int_equal(eid_session_seal(pool, k, VHOST, &small, &s, &n), APR_SUCCESS);
        text = eid_b64url_pencode(pool, s, n);
        assert_true(strlen(text) <= EID_PENDING_MAX_COOKIE);
        assert_int_equal(eid_pending_open(pool, k, VHOST, text, strlen(text), &pd, &res), -1);
        assert_string_equal(res.tag, "EID06104");
    }
}

/* ---- rotation ---------------------------------------------------------------------- */

static void test_rotation(void **state)
{
    eid_session_keys_t *a = keys(key_a, NULL), *ba = keys(key_b, key_a), *ab = keys(key_a, key_b);
    eid_session_keys_t *bc = keys(key_b, key_c);
    unsigned char id[EID_SESSION_ID_LEN], *s, *s2;
    char k_a[48], k_ba_prev[48], k_ba_cur[48];
    eid_session_rec_t *got;
    eid_result_t res = {0};
    apr_size_t n, n2;
    int rotated = -1;

    assert_int_equal(eid_session_keys_count(a), 1);
    assert_int_equal(eid_session_keys_count(ba), 2);
    memset(id, 7, sizeof(id));
    /* the previous key still finds the session under the same store key */
    assert_int_equal(eid_session_store_key(a, 0, VHOST, id, k_a), 0);
    assert_int_equal(eid_session_store_key(a, 1, VHOST, id, k_ba_prev), -1);
    assert_int_equal(eid_session_store_key(ba, 1, VHOST, id, k_ba_prev), 0);
    assert_int_equal(eid_session_store_key(ba, 0, VHOST, id, k_ba_cur), 0);
    assert_int_equal(eid_session_store_key(ba, 2, VHOST, id, k_ba_cur + 0), -1);
    assert_int_equal(eid_session_store_key(ba, -1, VHOST, id, k_ba_cur + 0), -1);
    assert_int_equal(eid_session_store_key(ba, 0, VHOST, id, k_ba_cur), 0);
    assert_string_equal(k_a, k_ba_prev);
    assert_string_not_equal(k_a, k_ba_cur);

    sealed_full(a, k_a, &s, &n);
    assert_int_equal(eid_session_open(pool, ba, k_a, s, n, &got, &rotated, &res), 0);
    assert_int_equal(rotated, 1);
    assert_int_equal(eid_session_open(pool, ab, k_a, s, n, &got, &rotated, &res), 0);
    assert_int_equal(rotated, 0);
    /* two rotations later the key is gone */
    rotated = -1;
    assert_int_equal(eid_session_open(pool, bc, k_a, s, n, &got, &rotated, &res), -1);
    assert_string_equal(res.tag, "EID06103");
    assert_int_equal(rotated, 0);
    /* the previous key only opens: a seal with `ba` carries b's key id */
    sealed_full(ba, k_a, &s2, &n2);
    assert_memory_not_equal(s2 + 1, s + 1, 4);
    assert_int_equal(eid_session_open(pool, a, k_a, s2, n2, &got, NULL, &res), -1);
    assert_string_equal(res.tag, "EID06103");
    assert_int_equal(eid_session_open(pool, bc, k_a, s2, n2, &got, &rotated, &res), 0);
    assert_int_equal(rotated, 0);
    /* pending cookies rotate too */
    {
        const char *c = eid_pending_seal(pool, a, VHOST, pending(NULL));
        eid_pending_t *pd;
        assert_int_equal(eid_pending_open(pool, ba, VHOST, c, strlen(c), &pd, &res), 0);
        assert_null(pd->return_to);
        assert_int_equal(eid_pending_open(pool, bc, VHOST, c, strlen(c), &pd, &res), -1);
        assert_string_equal(res.tag, "EID06103");
    }
    /* a key given twice is refused */
    {
        eid_session_keys_t *kk = NULL;
        const char *err = eid_session_keys_from_bytes(pool, key_a, key_a, &kk);
        assert_non_null(err);
        assert_non_null(strstr(err, "EID06004"));
        assert_null(kk);
        assert_non_null(eid_session_keys_from_bytes(pool, NULL, NULL, &kk));
    }
}

/* ---- key files ----------------------------------------------------------------------- */

static const char *tmpdir;

static const char *write_file(const char *name, const char *content, size_t n, mode_t mode)
{
    const char *path = apr_pstrcat(pool, tmpdir, "/", name, NULL);
    FILE *f;

    unlink(path);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static const char *hex(const unsigned char *k)
{
    char *h = apr_palloc(pool, 65);
    int i;
    for (i = 0; i < 32; i++)
        sprintf(h + 2 * i, "%02x", k[i]);
    return h;
}

/* Load `content` (mode 0600 unless said) and expect the message to contain
 * every one of the NULL-terminated fragments, and never a piece of a key. */
static void expect_refused(const char *content, mode_t mode, ...)
{
    const char *path = write_file("keys", content, strlen(content), mode);
    eid_session_keys_t *k = NULL;
    const char *err = eid_session_keys_load(pool, path, &k), *frag;
    va_list ap;

    assert_non_null(err);
    assert_null(k);
    assert_non_null(strstr(err, path));
    va_start(ap, mode);
    while ((frag = va_arg(ap, const char *)) != NULL) {
        if (!strstr(err, frag))
            fail_msg("\"%s\" not in \"%s\"", frag, err);
    }
    va_end(ap);
    assert_null(strstr(err, apr_pstrndup(pool, hex(key_a), 8)));
    assert_null(strstr(err, apr_pstrndup(pool, hex(key_b), 8)));
}

static void test_keys_file(void **state)
{
    const char *ha = hex(key_a), *hb = hex(key_b), *path, *err;
    eid_session_keys_t *k = NULL, *ref = keys(key_a, key_b), *ref1 = keys(key_a, NULL);
    unsigned char id[EID_SESSION_ID_LEN];
    char want[48], got[48], *upper, *text;
    struct stat st;
    int i;

    memset(id, 3, sizeof(id));
    /* two keys, "\n" ends, trailing newline: the same keys as from bytes */
    text = apr_pstrcat(pool, ha, "\n", hb, "\n", NULL);
    path = write_file("keys", text, strlen(text), 0600);
    assert_null(eid_session_keys_load(pool, path, &k));
    assert_int_equal(eid_session_keys_count(k), 2);
    for (i = 0; i < 2; i++) {
        assert_int_equal(eid_session_store_key(ref, i, VHOST, id, want), 0);
        assert_int_equal(eid_session_store_key(k, i, VHOST, id, got), 0);
        assert_string_equal(want, got);
    }
    /* one key, CRLF, upper case, no final newline; mode 0400 */
    upper = apr_pstrdup(pool, ha);
    for (i = 0; upper[i]; i++)
        if (upper[i] >= 'a' && upper[i] <= 'f')
            upper[i] = (char)(upper[i] - 'a' + 'A');
    text = apr_pstrcat(pool, upper, "\r\n", NULL);
    path = write_file("keys", text, strlen(text), 0400);
    k = NULL;
    assert_null(eid_session_keys_load(pool, path, &k));
    assert_int_equal(eid_session_keys_count(k), 1);
    assert_int_equal(eid_session_store_key(ref1, 0, VHOST, id, want), 0);
    assert_int_equal(eid_session_store_key(k, 0, VHOST, id, got), 0);
    assert_string_equal(want, got);
    path = write_file("keys", ha, 64, 0600);
    assert_null(eid_session_keys_load(pool, path, &k));

    /* permissions: any access by group or others */
    expect_refused(apr_pstrcat(pool, ha, "\n", NULL), 0640, "EID06002", "0640", "chmod 600", NULL);
    expect_refused(apr_pstrcat(pool, ha, "\n", NULL), 0604, "EID06002", "0604", NULL);
    expect_refused(apr_pstrcat(pool, ha, "\n", NULL), 0620, "EID06002", NULL);
    /* format */
    expect_refused("", 0600, "EID06003", "is empty", NULL);
    expect_refused("\n", 0600, "EID06003", "line 1", "0 characters", NULL);
    expect_refused(apr_pstrndup(pool, ha, 63), 0600, "EID06003", "line 1", "63 characters", NULL);
    expect_refused(apr_pstrcat(pool, ha, "0\n", NULL), 0600, "EID06003", "65 characters", NULL);
    text = apr_pstrcat(pool, ha, "\n", NULL);
    text[10] = 'g';
    expect_refused(text, 0600, "EID06003", "line 1", "not a hex digit", NULL);
    text = apr_pstrcat(pool, ha, "\n", hb, "\n", NULL);
    text[65 + 63] = ' ';
    expect_refused(text, 0600, "EID06003", "line 2", "not a hex digit", NULL);
    expect_refused(apr_pstrcat(pool, " ", ha, NULL), 0600, "EID06003", "65 characters", NULL);
    expect_refused(apr_pstrcat(pool, ha, "\n\n", NULL), 0600, "EID06003", "line 2", NULL);
    expect_refused(apr_pstrcat(pool, ha, "\n", hb, "\n", ha, "\n", NULL), 0600, "EID06003",
                   "more than two lines", NULL);
    expect_refused(apr_pstrcat(pool, ha, "\n", hb, "\n\n", NULL), 0600, "EID06003",
                   "more than two lines", NULL);
    expect_refused(apr_pstrcat(pool, ha, "\n", ha, "\n", NULL), 0600, "EID06004", "same", NULL);
    /* a NUL inside a line */
    text = apr_pstrcat(pool, ha, "\n", NULL);
    text[5] = '\0';
    path = write_file("keys", text, 65, 0600);
    k = NULL;
    assert_non_null(err = eid_session_keys_load(pool, path, &k));
    assert_non_null(strstr(err, "not a hex digit"));
    assert_null(k);
    /* not there, not a file, too large, no name */
    k = NULL;
    err = eid_session_keys_load(pool, apr_pstrcat(pool, tmpdir, "/missing", NULL), &k);
    assert_non_null(err);
    assert_non_null(strstr(err, "EID06001"));
    assert_non_null(strstr(err, "/missing"));
    assert_non_null(err = eid_session_keys_load(pool, tmpdir, &k));
    assert_non_null(strstr(err, "EID06001"));
    assert_non_null(strstr(err, "not a regular file"));
    text = apr_palloc(pool, 1025);
    memset(text, '0', 1025);
    path = write_file("keys", text, 1025, 0600);
    assert_non_null(err = eid_session_keys_load(pool, path, &k));
    assert_non_null(strstr(err, "EID06001"));
    assert_non_null(strstr(err, "larger than"));
    assert_non_null(err = eid_session_keys_load(pool, NULL, &k));
    assert_non_null(strstr(err, "EID06001"));
    assert_null(k);
    assert_int_equal(stat(path, &st), 0);
}

static int keys_setup(void **state)
{
    char *t = apr_pstrdup(pool, "/tmp/eid-test-session-XXXXXX");
    if (!mkdtemp(t))
        return -1;
    tmpdir = t;
    return 0;
}

static int keys_teardown(void **state)
{
    unlink(apr_pstrcat(pool, tmpdir, "/keys", NULL));
    return rmdir(tmpdir);
}

/* ---- cookies and store keys --------------------------------------------------------- */

static void test_cookie_parse(void **state)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char id[EID_SESSION_ID_LEN], got[EID_SESSION_ID_LEN];
    char v[EID_SESSION_COOKIE_LEN + 1], m[EID_SESSION_COOKIE_LEN + 2];
    int i, c;

    for (i = 0; i < 200; i++) {
        assert_int_equal(eid_session_new_id(id), APR_SUCCESS);
        eid_session_cookie_value(id, v);
        assert_int_equal(strlen(v), EID_SESSION_COOKIE_LEN);
        assert_true(eid_b64url_valid(v, EID_SESSION_COOKIE_LEN));
        assert_int_equal(eid_session_cookie_parse(v, EID_SESSION_COOKIE_LEN, got), 0);
        assert_memory_equal(id, got, sizeof(id));
    }
    /* every value of the last character: canonical iff its 2 low bits are 0 */
    memcpy(m, v, sizeof(v));
    for (i = 0; i < 64; i++) {
        m[42] = alpha[i];
        assert_int_equal(eid_session_cookie_parse(m, 43, got), (i & 3) ? -1 : 0);
    }
    /* every byte value in every position: only the alphabet passes */
    for (i = 0; i < 43; i++) {
        memcpy(m, v, sizeof(v));
        m[42] = 'A';
        for (c = 0; c < 256; c++) {
            int ok;
            m[i] = (char)c;
            ok = c && strchr(alpha, c) && (i != 42 || (eid_b64url_value((unsigned char)c) & 3) == 0);
            assert_int_equal(eid_session_cookie_parse(m, 43, got), ok ? 0 : -1);
        }
    }
    /* lengths, padding, NULL */
    memcpy(m, v, sizeof(v));
    assert_int_equal(eid_session_cookie_parse(m, 42, got), -1);
    assert_int_equal(eid_session_cookie_parse(m, 0, got), -1);
    m[43] = 'A';
    m[44] = 0;
    assert_int_equal(eid_session_cookie_parse(m, 44, got), -1);
    m[43] = '=';
    assert_int_equal(eid_session_cookie_parse(m, 44, got), -1);
    memcpy(m, v, sizeof(v));
    m[42] = '=';
    assert_int_equal(eid_session_cookie_parse(m, 43, got), -1);
    assert_int_equal(eid_session_cookie_parse(NULL, 43, got), -1);
    assert_int_equal(eid_session_cookie_parse("\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", 43, got),
                     -1);
    assert_int_equal(eid_session_cookie_parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 43, got),
                     0);
    for (i = 0; i < 32; i++)
        assert_int_equal(got[i], 0);
    assert_int_equal(eid_session_cookie_parse("__________________________________________8", 43,
                                              got), 0);
    for (i = 0; i < 32; i++)
        assert_int_equal(got[i], 0xff);
}

static void test_csrf_token(void **state)
{
    char a[EID_SESSION_COOKIE_LEN + 1], b[EID_SESSION_COOKIE_LEN + 1];

    assert_int_equal(eid_session_new_token(a), APR_SUCCESS);
    assert_int_equal(eid_session_new_token(b), APR_SUCCESS);
    assert_int_equal(strlen(a), 43);
    assert_true(eid_b64url_valid(a, 43));
    assert_string_not_equal(a, b);
}

/* HKDF-SHA256 the long way, with OpenSSL's EVP_KDF API directly. */
static void ref_hkdf(const unsigned char *ikm, const char *info, unsigned char *out, size_t n)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    static const char salt[] = "mod_auth_eid session keys v1";

    assert_non_null(c);
    assert_int_equal(EVP_PKEY_derive_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_salt(c, (const unsigned char *)salt, sizeof(salt) - 1), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(c, ikm, 32), 1);
    assert_int_equal(EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)info, (int)strlen(info)), 1);
    assert_int_equal(EVP_PKEY_derive(c, out, &n), 1);
    EVP_PKEY_CTX_free(c);
}

static void test_store_key(void **state)
{
    eid_session_keys_t *k = keys(key_a, NULL);
    unsigned char id[EID_SESSION_ID_LEN], mk[32], msg[64], mac[32], kid[4], *s;
    unsigned int ml = 0;
    char out[48], want[48], v[44], other[48];
    apr_size_t n;

    memset(out, '#', sizeof(out));
    assert_int_equal(eid_session_new_id(id), APR_SUCCESS);
    assert_int_equal(eid_session_store_key(k, 0, VHOST, id, out), 0);
    assert_int_equal(strlen(out), EID_SESSION_STORE_KEY_LEN);
    assert_memory_equal(out, "s:", 2);
    assert_true(eid_b64url_valid(out + 2, 43));
    /* known answer: "s:" + b64url(HMAC(HKDF(master, "eid-session id mac"), vhost || 0 || id)) */
    ref_hkdf(key_a, "eid-session id mac", mk, 32);
    memcpy(msg, VHOST, sizeof(VHOST)); /* with its NUL */
    memcpy(msg + sizeof(VHOST), id, 32);
    assert_non_null(HMAC(EVP_sha256(), mk, 32, msg, sizeof(VHOST) + 32, mac, &ml));
    want[0] = 's';
    want[1] = ':';
    eid_b64url_encode(want + 2, mac, 32);
    assert_string_equal(out, want);
    /* the key id is HKDF(master, "eid-session key id"), 4 bytes */
    ref_hkdf(key_a, "eid-session key id", kid, 4);
    assert_int_equal(eid_session_seal(pool, k, out, full_rec(), &s, &n), APR_SUCCESS);
    assert_memory_equal(s + 1, kid, 4);
    /* the store key reveals no cookie: it is not the cookie, and changes with the key */
    eid_session_cookie_value(id, v);
    assert_null(strstr(out, v));
    assert_int_equal(eid_session_store_key(keys(key_b, NULL), 0, VHOST, id, other), 0);
    assert_string_not_equal(out, other);
    assert_int_equal(eid_session_store_key(k, 0, "www.example.s", id, other), 0);
    assert_string_not_equal(out, other);
    assert_int_equal(eid_session_store_key(k, 0, NULL, id, other), -1);
    assert_int_equal(eid_session_store_key(NULL, 0, VHOST, id, other), -1);
}

/* ---- pending logins ------------------------------------------------------------------- */

static void test_pending(void **state)
{
    eid_session_keys_t *k = keys(key_a, NULL);
    eid_pending_t *in = pending("/app/page?x=1"), *out = NULL;
    eid_result_t res = {0};
    const char *c;
    char *m, *ret;
    size_t len, i, r;

    c = eid_pending_seal(pool, k, VHOST, in);
    assert_non_null(c);
    len = strlen(c);
    assert_true(len <= EID_PENDING_MAX_COOKIE);
    assert_true(eid_b64url_valid(c, len));
    assert_int_equal(eid_pending_open(pool, k, VHOST, c, len, &out, &res), 0);
    assert_pending_same(in, out);
    /* another vhost */
    assert_int_equal(eid_pending_open(pool, k, "evil.example.se", c, len, &out, &res), -1);
    assert_string_equal(res.tag, "EID06104");
    /* every character changed to another of the alphabet, every truncation */
    m = apr_pstrdup(pool, c);
    for (i = 0; i < len; i++) {
        char o = m[i];
        m[i] = o == 'A' ? 'B' : 'A';
        out = NULL;
        assert_int_equal(eid_pending_open(pool, k, VHOST, m, len, &out, &res), -1);
        assert_null(out);
        m[i] = o;
    }
    for (i = 0; i < len; i++) {
        char *cut = malloc(i + 1);
        memcpy(cut, c, i);
        cut[i] = 0;
        assert_int_equal(eid_pending_open(pool, k, VHOST, cut, i, &out, &res), -1);
        free(cut);
    }
    /* not base64url, too long, NULL */
    m[3] = '+';
    assert_int_equal(eid_pending_open(pool, k, VHOST, m, len, &out, &res), -1);
    assert_string_equal(res.tag, "EID06106");
    m = apr_palloc(pool, EID_PENDING_MAX_COOKIE + 2);
    memset(m, 'A', EID_PENDING_MAX_COOKIE + 1);
    m[EID_PENDING_MAX_COOKIE + 1] = 0;
    assert_int_equal(eid_pending_open(pool, k, VHOST, m, EID_PENDING_MAX_COOKIE + 1, &out, &res), -1);
    assert_string_equal(res.tag, "EID06106");
    assert_int_equal(eid_pending_open(pool, k, VHOST, NULL, 0, &out, &res), -1);
    assert_null(eid_pending_seal(pool, k, NULL, in));
    assert_null(eid_pending_seal(pool, k, VHOST, NULL));

    /* return_to: kept while the cookie fits, else "/" (never cut) */
    ret = apr_palloc(pool, EID_PENDING_MAX_RETURN + 2);
    for (r = 850; r <= EID_PENDING_MAX_RETURN + 1; r++) {
        /* sealed = 33 + encoding (10 + 7 + 3 * 45 + 2 + r) */
        int fits = eid_b64url_encoded_len(33 + 154 + r) <= EID_PENDING_MAX_COOKIE &&
                   r <= EID_PENDING_MAX_RETURN;
        memset(ret, 'p', r);
        ret[0] = '/';
        ret[r] = 0;
        in = pending(ret);
        c = eid_pending_seal(pool, k, VHOST, in);
        assert_non_null(c);
        assert_true(strlen(c) <= EID_PENDING_MAX_COOKIE);
        assert_int_equal(eid_pending_open(pool, k, VHOST, c, strlen(c), &out, &res), 0);
        assert_string_equal(out->return_to, fits ? ret : "/");
        if (r == 938)
            assert_true(fits);
    }
    /* what the codec refuses is not sealed */
#define NOSEAL(stmt) do { in = pending("/"); stmt; assert_null(eid_pending_seal(pool, k, VHOST, in)); } while (0)
    NOSEAL(in->provider = NULL);
    NOSEAL(in->provider = "");
    NOSEAL(in->provider = "a\rb");
    NOSEAL(in->state = NULL);
    NOSEAL(in->nonce = "has space");
    NOSEAL(in->code_verifier = "plus+");
    NOSEAL(in->state = "");
    NOSEAL(in->min_loa = 5);
    NOSEAL(in->min_loa = -1);
    NOSEAL(in->return_to = "/a\nb");
#undef NOSEAL
    in = pending("/");
    in->state = "a.b~c-_";
    assert_non_null(eid_pending_seal(pool, k, VHOST, in));
}

/* ---- threads: one key set, many sealers and openers ------------------------------- */

#define NTHREADS 4
#define NITER 150

static eid_session_keys_t *shared_keys;

static void *worker(void *arg)
{
    apr_pool_t *tp;
    long bad = 0;
    int i;

    apr_pool_create(&tp, NULL);
    for (i = 0; i < NITER; i++) {
        unsigned char id[EID_SESSION_ID_LEN], back[EID_SESSION_ID_LEN], *s;
        char v[44], sk[48];
        eid_session_rec_t rec = {0}, *got = NULL;
        eid_pending_t pd = {0}, *gpd = NULL;
        const char *c;
        apr_size_t n;
        int rot = -1;

        rec.id = eid_identity_make(tp);
        rec.id->hsa_id = apr_psprintf(tp, "SE2321000016-%ld-%d", (long)(intptr_t)arg, i);
        rec.expires = 10;
        bad += eid_session_new_id(id) != APR_SUCCESS;
        eid_session_cookie_value(id, v);
        bad += eid_session_cookie_parse(v, 43, back) != 0 || memcmp(id, back, 32) != 0;
        bad += eid_session_store_key(shared_keys, i & 1, VHOST, back, sk) != 0;
        bad += eid_session_seal(tp, shared_keys, sk, &rec, &s, &n) != APR_SUCCESS;
        bad += eid_session_open(tp, shared_keys, sk, s, n, &got, &rot, NULL) != 0 || rot != 0 ||
               strcmp(got->id->hsa_id, rec.id->hsa_id) != 0;
        pd.provider = "p";
        pd.state = pd.nonce = pd.code_verifier = v;
        c = eid_pending_seal(tp, shared_keys, VHOST, &pd);
        bad += !c || eid_pending_open(tp, shared_keys, VHOST, c, strlen(c), &gpd, NULL) != 0 ||
               strcmp(gpd->state, v) != 0;
        apr_pool_clear(tp);
    }
    apr_pool_destroy(tp);
    return (void *)(intptr_t)bad;
}

static void test_threads(void **state)
{
    pthread_t t[NTHREADS];
    intptr_t i;

    shared_keys = keys(key_a, key_b);
    for (i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (i = 0; i < NTHREADS; i++) {
        void *rv;
        assert_int_equal(pthread_join(t[i], &rv), 0);
        assert_int_equal((intptr_t)rv, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_full),
        cmocka_unit_test(test_tamper_every_byte),
        cmocka_unit_test(test_truncation_and_extension),
        cmocka_unit_test(test_swapped_bind),
        cmocka_unit_test(test_wrong_purpose),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test_setup_teardown(test_keys_file, keys_setup, keys_teardown),
        cmocka_unit_test(test_cookie_parse),
        cmocka_unit_test(test_csrf_token),
        cmocka_unit_test(test_store_key),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_threads),
    };
    int rc, i;

    for (i = 0; i < 32; i++) {
        key_a[i] = (unsigned char)i;
        key_b[i] = (unsigned char)(0x20 + i);
        key_c[i] = (unsigned char)(0x40 + i);
    }
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
