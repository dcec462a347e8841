/*
 * Unit tests: eid_session - key files, cookie ids, store keys, the record and
 * pending-login codecs, AES-256-GCM sealing (tamper, truncation, swapped
 * bind, wrong purpose, rotation) and timeouts.
 *
 * The hostile encodings are built here byte by byte from the format in
 * eid_session.h, not with the code under test; the store-key test computes
 * HKDF and HMAC with OpenSSL directly, pinning the derivation (a change
 * would lose every stored session at an upgrade).
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

static apr_pool_t *pool;
static unsigned char key_a[32], key_b[32], key_c[32];

#define BIND "s:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define VHOST "www.example.se"

static eid_session_keys_t *keys(const unsigned char *cur, const unsigned char *prev)
{
    eid_session_keys_t *k = NULL;
    assert_null(eid_session_keys_from_bytes(pool, cur, prev, &k));
    assert_non_null(k);
    return k;
}

static apr_array_header_t *strv(int n, ...)
{
    apr_array_header_t *a = apr_array_make(pool, n ? n : 1, sizeof(const char *));
    va_list ap;
    int i;

    va_start(ap, n);
    for (i = 0; i < n; i++)
        APR_ARRAY_PUSH(a, const char *) = va_arg(ap, const char *);
    va_end(ap);
    return a;
}

/* A record with every field of the identity set (distinct values). */
static eid_session_rec_t *full_rec(void)
{
    eid_session_rec_t *rec = apr_pcalloc(pool, sizeof(*rec));
    eid_identity_t *id = eid_identity_make(pool);
    int n = 0;

#define SETS(f) id->f = apr_psprintf(pool, "%s-%d-åäö €", #f, ++n);
    EID_IDENTITY_STR_FIELDS(SETS)
#undef SETS
    id->method = EID_METHOD_OIDC;
    id->pnr = "194911172296";
    id->pnr_is_coordination = 1;
    id->loa = 3;
    id->auth_time = (apr_time_t)1700000000 * APR_USEC_PER_SEC + 123;
    id->expires = -5; /* any time value survives */
    id->commission_rights = strv(2, "Läsa;Vård och behandling", "Skriva");
    id->roles = strv(3, "BIF;Spärradministratör", "r2", "");
    id->scopes = strv(0);
    id->policy_oids = strv(1, "1.2.752.129.2.1.2.1");
    id->groups = strv(2, "g1", "g2");
    id->dir_roles = strv(1, "läkare");
    rec->id = id;
    rec->provider = "inera";
    rec->sid = "08a5019c-17e1-4977-8f42-65a12843ea02";
    rec->sub = "sub-value";
    rec->id_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    rec->csrf = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdE";
    rec->created = 1000;
    rec->last_seen = 2000;
    rec->expires = (apr_time_t)1 << 62;
    return rec;
}

static void assert_str_same(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_arr_same(const apr_array_header_t *a, const apr_array_header_t *b)
{
    int i;

    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_int_equal(a->nelts, b->nelts);
    for (i = 0; i < a->nelts; i++)
        assert_string_equal(APR_ARRAY_IDX(a, i, const char *), APR_ARRAY_IDX(b, i, const char *));
}

static void assert_rec_same(const eid_session_rec_t *a, const eid_session_rec_t *b)
{
#define CMPS(f) assert_str_same(a->id->f, b->id->f);
#define CMPA(f) assert_arr_same(a->id->f, b->id->f);
    EID_IDENTITY_STR_FIELDS(CMPS)
    EID_IDENTITY_ARR_FIELDS(CMPA)
#undef CMPS
#undef CMPA
    assert_int_equal(a->id->method, b->id->method);
    assert_int_equal(a->id->pnr_is_coordination, b->id->pnr_is_coordination);
    assert_int_equal(a->id->loa, b->id->loa);
    assert_true(a->id->auth_time == b->id->auth_time);
    assert_true(a->id->expires == b->id->expires);
    assert_str_same(a->provider, b->provider);
    assert_str_same(a->sid, b->sid);
    assert_str_same(a->sub, b->sub);
    assert_str_same(a->id_token, b->id_token);
    assert_str_same(a->csrf, b->csrf);
    assert_true(a->created == b->created);
    assert_true(a->last_seen == b->last_seen);
    assert_true(a->expires == b->expires);
}

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
    assert_int_equal(elen, 4 + 5 * 8 + (23 + 6 + 5) * 2);
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

static eid_pending_t *pending(const char *ret)
{
    eid_pending_t *pd = apr_pcalloc(pool, sizeof(*pd));
    pd->provider = "inera";
    pd->state = "s0123456789abcdefghijABCDEFGHIJ-_0123456789";
    pd->nonce = "n0123456789abcdefghijABCDEFGHIJ-_0123456789";
    pd->code_verifier = "v0123456789abcdefghijABCDEFGHIJ-_0123456789";
    pd->return_to = ret;
    pd->min_loa = 3;
    pd->created = (apr_time_t)1700000000 * APR_USEC_PER_SEC;
    return pd;
}

static void assert_pending_same(const eid_pending_t *a, const eid_pending_t *b)
{
    assert_str_same(a->provider, b->provider);
    assert_str_same(a->state, b->state);
    assert_str_same(a->nonce, b->nonce);
    assert_str_same(a->code_verifier, b->code_verifier);
    assert_str_same(a->return_to, b->return_to);
    assert_int_equal(a->min_loa, b->min_loa);
    assert_true(a->created == b->created);
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

/* ---- hostile encodings ------------------------------------------------------------- */

/* Slots of the record encoding after the 4 header bytes and 5 times:
 * 0..22 the identity's strings, 23..28 its arrays, 29..33 provider, sid,
 * sub, id_token, csrf.  Every slot is NULL (FF FF) except `slot`, which
 * gets `raw` (its length/count bytes included). */
#define SLOT_PNR 6
#define SLOT_ARR0 23
#define SLOT_ID_TOKEN 32
#define SLOT_CSRF 33
static unsigned char hb[70000];

static apr_size_t mk(const char *hdr, int slot, const void *raw, size_t rawlen)
{
    apr_size_t n = 0;
    int i;

    memcpy(hb, hdr, 4);
    n = 4;
    memset(hb + n, 0, 40);
    n += 40;
    for (i = 0; i < 34; i++) {
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
        cmocka_unit_test(test_decode_hostile),
        cmocka_unit_test(test_encode_refused),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_pending_decode_hostile),
        cmocka_unit_test(test_live),
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
