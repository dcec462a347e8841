/*
 * Unit tests: JWK Set import rules, key/alg fit, the cached key set (kid
 * lookup, throttled refetch on an unknown kid, periodic refresh, failed
 * fetches, rotation, staleness, single flight) with an injected clock and
 * an injected document source; and the JWKS file source.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eid/eid_jwks.h"

static apr_pool_t *pool;
static EVP_PKEY *rsa[6], *rsa1024, *p256, *p384, *p521, *k256;

/* ---- helpers ------------------------------------------------------------------- */

static char *b64u(const unsigned char *d, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = apr_palloc(pool, n * 4 / 3 + 4), *o = out;
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        *o++ = tab[d[i] >> 2];
        *o++ = tab[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
        *o++ = tab[((d[i + 1] & 15) << 2) | (d[i + 2] >> 6)];
        *o++ = tab[d[i + 2] & 63];
    }
    if (n - i == 1) {
        *o++ = tab[d[i] >> 2];
        *o++ = tab[(d[i] & 3) << 4];
    }
    else if (n - i == 2) {
        *o++ = tab[d[i] >> 2];
        *o++ = tab[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
        *o++ = tab[(d[i + 1] & 15) << 2];
    }
    *o = '\0';
    return out;
}

static char *bn(EVP_PKEY *k, const char *param, int pad)
{
    BIGNUM *b = NULL;
    unsigned char buf[1024];
    int n;
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &b), 1);
    n = pad ? BN_bn2binpad(b, buf, pad) : BN_bn2bin(b, buf);
    BN_free(b);
    return b64u(buf, (size_t)n);
}

/* Public JWK members of k (no braces), e.g. "\"kty\":\"RSA\",\"n\":..." */
static char *members(EVP_PKEY *k, const char *crv)
{
    int c = (EVP_PKEY_get_bits(k) + 7) / 8;
    if (EVP_PKEY_is_a(k, "RSA"))
        return apr_psprintf(pool, "\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"",
                            bn(k, OSSL_PKEY_PARAM_RSA_N, 0), bn(k, OSSL_PKEY_PARAM_RSA_E, 0));
    return apr_psprintf(pool, "\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"", crv,
                        bn(k, OSSL_PKEY_PARAM_EC_PUB_X, c), bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, c));
}

static char *key(EVP_PKEY *k, const char *kid, const char *extra)
{
    const char *crv = EVP_PKEY_get_bits(k) == 384 ? "P-384" : EVP_PKEY_get_bits(k) == 521
                                                                  ? "P-521" : "P-256";
    return apr_psprintf(pool, "{%s%s%s%s%s%s}", members(k, crv), kid ? ",\"kid\":\"" : "",
                        kid ? kid : "", kid ? "\"" : "", extra ? "," : "", extra ? extra : "");
}

/* Log capture: how often each tag was logged. */
static char logged[4096];

static void logfn(void *baton, eid_log_level_e level, const char *tag, const char *msg)
{
    (void)baton;
    (void)level;
    (void)msg;
    if (strlen(logged) + strlen(tag) + 2 < sizeof(logged)) {
        strcat(logged, tag);
        strcat(logged, " ");
    }
}

static int count_logged(const char *tag)
{
    int n = 0;
    const char *s = logged;
    while ((s = strstr(s, tag)) != NULL) {
        n++;
        s++;
    }
    return n;
}

/* Document source with a call counter; can fail or block. */
static const char *src_doc;
static int src_calls, src_fail, src_block, src_entered, src_released;
static apr_thread_mutex_t *src_mu;
static apr_thread_cond_t *src_cv;

static apr_status_t source(void *baton, apr_pool_t *p, const char **doc, apr_size_t *len,
                           eid_result_t *res)
{
    (void)baton;
    apr_thread_mutex_lock(src_mu);
    src_calls++;
    if (src_block) {
        src_entered = 1;
        apr_thread_cond_broadcast(src_cv);
        while (!src_released)
            apr_thread_cond_wait(src_cv, src_mu);
    }
    apr_thread_mutex_unlock(src_mu);
    if (src_fail) {
        res->code = 3208;
        res->tag = "EID03208";
        res->reason = "test source down";
        return APR_EGENERAL;
    }
    *doc = apr_pstrdup(p, src_doc);
    *len = strlen(src_doc);
    return APR_SUCCESS;
}

#define SEC(s) apr_time_from_sec(s)
#define T0 SEC(1000000)

static eid_jwks_t *make_set(apr_pool_t *p, const char *file)
{
    eid_jwks_conf_t c;
    eid_jwks_t *ks;
    memset(&c, 0, sizeof(c));
    c.name = "t";
    c.issuer = "https://op";
    c.jwks_file = file;
    c.refresh = SEC(3600);
    c.min_refetch = SEC(60);
    c.max_stale = SEC(7200);
    eid_http_opts_default(&c.http);
    ks = eid_jwks_create(p, &c);
    if (!file)
        eid_jwks_set_source(ks, source, NULL);
    assert_int_equal(eid_jwks_child_init(ks, p), APR_SUCCESS);
    return ks;
}

static int sel(eid_jwks_t *ks, apr_time_t now, const char *kid, eid_jws_alg_e alg,
               eid_jwks_sel_t *s)
{
    eid_result_t res = {0};
    int rc = eid_jwks_select(ks, pool, now, kid, kid ? strlen(kid) : 0, alg, s, &res);
    if (rc) {
        assert_int_equal(atoi(res.tag + 3), rc);
        assert_null(s->snap);
    }
    return rc;
}

/* select, check, release */
static int find(eid_jwks_t *ks, apr_time_t now, const char *kid)
{
    eid_jwks_sel_t s;
    int rc = sel(ks, now, kid, EID_JWS_RS256, &s);
    if (!rc) {
        assert_int_equal(s.n, 1);
        assert_int_equal(s.keys[0]->kid_len, strlen(kid));
        assert_memory_equal(s.keys[0]->kid, kid, strlen(kid));
        eid_jwks_release(ks, &s);
    }
    return rc;
}

static int setup(void **state)
{
    int i;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    for (i = 0; i < 6; i++)
        rsa[i] = EVP_RSA_gen(2048);
    rsa1024 = EVP_RSA_gen(1024);
    p256 = EVP_EC_gen("P-256");
    p384 = EVP_EC_gen("P-384");
    p521 = EVP_EC_gen("P-521");
    k256 = EVP_EC_gen("secp256k1");
    apr_thread_mutex_create(&src_mu, APR_THREAD_MUTEX_DEFAULT, pool);
    apr_thread_cond_create(&src_cv, pool);
    eid_log_set(logfn, NULL);
    return 0;
}

static int teardown(void **state)
{
    int i;
    eid_log_set(NULL, NULL);
    apr_pool_destroy(pool);
    for (i = 0; i < 6; i++)
        EVP_PKEY_free(rsa[i]);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(k256);
    apr_terminate();
    return 0;
}

static int reset(void **state)
{
    logged[0] = '\0';
    src_calls = src_fail = src_block = src_entered = src_released = 0;
    src_doc = NULL;
    return 0;
}

/* ---- import -------------------------------------------------------------------- */

static void test_parse_import_rules(void **state)
{
    apr_pool_t *p;
    eid_jwks_keys_t *set;
    eid_result_t res;
    const char *doc = apr_pstrcat(
        pool, "{\"keys\":[",
        key(rsa[0], "r0", "\"use\":\"sig\",\"alg\":\"RS256\",\"x5c\":[\"MIIB\"]"), ",",
        key(p256, "e256", "\"key_ops\":[\"verify\"]"), ",", key(p384, "e384", NULL), ",",
        key(p521, "e521", "\"alg\":\"ES512\""), ",",
        key(rsa[1], NULL, NULL), ",",
        /* skipped: */
        key(rsa[2], "enc", "\"use\":\"enc\""), ",",
        "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"hmac\"}", ",",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
        ",", apr_psprintf(pool, "{%s,\"kid\":\"k1\"}", members(k256, "secp256k1")), ",",
        key(rsa[3], "priv", "\"d\":\"AAAA\""), ",",
        key(rsa1024, "short", NULL), ",",
        key(rsa[4], "hs", "\"alg\":\"HS256\""), ",",
        key(rsa[4], "es-on-rsa", "\"alg\":\"ES256\""), ",",
        key(p256, "rs-on-ec", "\"alg\":\"RS256\""), ",",
        key(p384, "es256-on-p384", "\"alg\":\"ES256\""), ",",
        key(rsa[5], "ops", "\"key_ops\":[\"encrypt\"]"), ",",
        key(rsa[5], "r0", NULL), ",",
        "{\"kty\":\"RSA\",\"kid\":7,\"n\":\"AQAB\",\"e\":\"AQAB\"}", ",",
        "\"not an object\",",
        "{\"kty\":\"RSA\",\"kid\":\"no-n\",\"e\":\"AQAB\"}", ",",
        "{\"kty\":\"RSA\",\"kid\":\"junk-n\",\"n\":\"!!!\",\"e\":\"AQAB\"}", ",",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"bad-point\",\"x\":\"AAAA\",\"y\":\"AAAA\"}", ",",
        /* base64url of length 4k+1 makes cjose 0.6.2 abort: never passed on */
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"b64\",\"x\":\"AAAAA\",\"y\":\"AAAA\"}", ",",
        "{\"kty\":\"RSA\",\"kid\":\"b64e\",\"n\":\"AAAA\",\"e\":\"AQABA\"}", ",",
        "{\"kty\":\"RSA\",\"kid\":\"pad\",\"n\":\"AAAA\",\"e\":\"AQAB=\"}",
        "]}", NULL);

    apr_pool_create(&p, pool);
    assert_int_equal(eid_jwks_parse(p, doc, strlen(doc), T0, "t", &set, &res), 0);
    assert_int_equal(set->n, 5);
    assert_string_equal(set->key[0].kid, "r0");
    assert_int_equal(set->key[0].type, EID_JWK_RSA);
    assert_int_equal(set->key[0].alg, EID_JWS_RS256);
    assert_int_equal((int)set->key[0].sig_len, 256);
    assert_int_equal(set->key[1].type, EID_JWK_EC_P256);
    assert_int_equal((int)set->key[1].sig_len, 64);
    assert_int_equal(set->key[2].type, EID_JWK_EC_P384);
    assert_int_equal((int)set->key[2].sig_len, 96);
    assert_int_equal(set->key[3].type, EID_JWK_EC_P521);
    assert_int_equal((int)set->key[3].sig_len, 132);
    assert_null(set->key[4].kid);
    assert_true(set->key[4].seen == T0);
    assert_int_equal(count_logged("EID03210"), 1);
    assert_int_equal(count_logged("EID03211"), 3);
    assert_int_equal(count_logged("EID03214"), 1);
    assert_int_equal(count_logged("EID03215"), 1);
    assert_int_equal(count_logged("EID03216"), 4);
    assert_int_equal(count_logged("EID03222"), 1);
    assert_int_equal(count_logged("EID03212"), 1);
    assert_int_equal(count_logged("EID03213"), 8);
    apr_pool_destroy(p);
}

static void test_parse_documents(void **state)
{
    eid_jwks_keys_t *set;
    eid_result_t res;
    static const char *bad[] = {
        "", "[]", "{}", "{\"keys\":{}}", "{\"keys\":\"x\"}", "not json",
        "{\"keys\":[]} trailing", "{\"keys\":[],\"keys\":[]}", "\x00\xff<html>",
    };
    size_t i;
    char many[64 * 1200];
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(eid_jwks_parse(pool, bad[i], strlen(bad[i]), T0, "t", &set, &res), 3209);
    assert_string_equal(res.tag, "EID03209");
    assert_int_equal(eid_jwks_parse(pool, "{\"keys\":[]}", 11, T0, NULL, &set, &res), 0);
    assert_int_equal(set->n, 0);
    /* at most EID_JWKS_MAX_KEYS keys */
    strcpy(many, "{\"keys\":[");
    for (i = 0; i < EID_JWKS_MAX_KEYS + 3; i++) {
        char *k = key(rsa[0], apr_psprintf(pool, "k%d", (int)i), NULL);
        strcat(many, i ? "," : "");
        strcat(many, k);
    }
    strcat(many, "]}");
    assert_int_equal(eid_jwks_parse(pool, many, strlen(many), T0, "t", &set, &res), 0);
    assert_int_equal(set->n, EID_JWKS_MAX_KEYS);
    assert_int_equal(count_logged("EID03223"), 1);
}

static void test_fit(void **state)
{
    eid_jwk_t k;
    memset(&k, 0, sizeof(k));
    k.type = EID_JWK_RSA;
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_RS256), EID_JWK_FITS);
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_PS512), EID_JWK_FITS);
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_ES256), EID_JWK_WRONG_TYPE);
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_HMAC), EID_JWK_WRONG_TYPE);
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_NONE), EID_JWK_WRONG_TYPE);
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_UNKNOWN), EID_JWK_WRONG_TYPE);
    k.alg = EID_JWS_RS256;
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_PS256), EID_JWK_WRONG_ALG);
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_RS384), EID_JWK_WRONG_ALG);
    k.type = EID_JWK_EC_P256;
    k.alg = EID_JWS_UNKNOWN;
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_ES256), EID_JWK_FITS);
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_ES384), EID_JWK_WRONG_TYPE);
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_RS256), EID_JWK_WRONG_TYPE);
    k.type = EID_JWK_EC_P384;
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_ES384), EID_JWK_FITS);
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_ES256), EID_JWK_WRONG_TYPE);
    k.type = EID_JWK_EC_P521;
    assert_int_equal(eid_jwks_fit(&k, EID_JWS_ES512), EID_JWK_FITS);
}

/* ---- the cached set ---------------------------------------------------------------- */

static const char *doc_of(int a, int b)
{
    return apr_pstrcat(pool, "{\"keys\":[", key(rsa[a], apr_psprintf(pool, "k%d", a), NULL), ",",
                       key(rsa[b], apr_psprintf(pool, "k%d", b), NULL), "]}", NULL);
}

static void test_kid_lookup(void **state)
{
    apr_pool_t *p;
    eid_jwks_t *ks;
    eid_jwks_sel_t s;
    eid_result_t res;
    eid_jwks_stats_t st;
    const char *doc;

    apr_pool_create(&p, pool);
    ks = make_set(p, NULL);
    /* nothing fetched yet and the source fails: unavailable */
    src_fail = 1;
    assert_int_equal(find(ks, T0, "k0"), 3207);
    assert_int_equal(src_calls, 1);
    src_fail = 0;
    doc = apr_pstrcat(pool, "{\"keys\":[", key(rsa[0], "k0", NULL), ",", key(rsa[1], "k00", NULL),
                      ",", key(rsa[2], NULL, NULL), ",", key(rsa[3], NULL, NULL), ",",
                      key(rsa[4], NULL, NULL), ",", key(rsa[5], NULL, NULL), ",",
                      key(rsa[1], "", NULL), ",", key(p256, "ec", NULL), "]}", NULL);
    src_doc = doc;
    assert_int_equal(eid_jwks_refresh(ks, pool, T0, &res), APR_SUCCESS);
    assert_int_equal(find(ks, T0, "k0"), 0);
    assert_int_equal(find(ks, T0, "k00"), 0);
    assert_int_equal(find(ks, T0, ""), 0);
    assert_int_equal(find(ks, T0, "k"), 3201);
    assert_int_equal(find(ks, T0, "k000"), 3201);
    assert_int_equal(find(ks, T0, "K0"), 3201);
    /* the kid's key whatever its type: the caller tells the reason */
    assert_int_equal(sel(ks, T0, "ec", EID_JWS_RS256, &s), 0);
    assert_int_equal(s.keys[0]->type, EID_JWK_EC_P256);
    eid_jwks_release(ks, &s);
    /* kid compared over its length, not as a C string */
    assert_int_equal(eid_jwks_select(ks, pool, T0, "k0\0x", 4, EID_JWS_RS256, &s, &res), 3201);
    /* without kid: the fitting keys, at most EID_JWKS_MAX_TRY */
    assert_int_equal(sel(ks, T0, NULL, EID_JWS_RS256, &s), 0);
    assert_int_equal(s.n, EID_JWKS_MAX_TRY);
    eid_jwks_release(ks, &s);
    assert_int_equal(sel(ks, T0, NULL, EID_JWS_ES256, &s), 0);
    assert_int_equal(s.n, 1);
    eid_jwks_release(ks, &s);
    assert_int_equal(sel(ks, T0, NULL, EID_JWS_ES384, &s), 3206);
    eid_jwks_stats(ks, &st);
    assert_int_equal(st.keys, 8);
    assert_true(st.fetched == T0);
    apr_pool_destroy(p);
}

static void test_throttled_refetch(void **state)
{
    apr_pool_t *p;
    eid_jwks_t *ks;

    apr_pool_create(&p, pool);
    ks = make_set(p, NULL);
    src_doc = doc_of(0, 1);
    /* the first lookup fetches */
    assert_int_equal(find(ks, T0, "k0"), 0);
    assert_int_equal(src_calls, 1);
    /* a flood of unknown kids within min_refetch costs no fetch */
    assert_int_equal(find(ks, T0 + SEC(1), "x1"), 3201);
    assert_int_equal(find(ks, T0 + SEC(59), "x2"), 3201);
    assert_int_equal(src_calls, 1);
    /* after min_refetch one fetch, then quiet again */
    assert_int_equal(find(ks, T0 + SEC(60), "x3"), 3201);
    assert_int_equal(src_calls, 2);
    assert_int_equal(find(ks, T0 + SEC(61), "x4"), 3201);
    assert_int_equal(find(ks, T0 + SEC(119), "x5"), 3201);
    assert_int_equal(src_calls, 2);
    /* rotation: the new kid is found by the next allowed fetch */
    src_doc = doc_of(1, 2);
    assert_int_equal(find(ks, T0 + SEC(100), "k2"), 3201);
    assert_int_equal(src_calls, 2);
    assert_int_equal(find(ks, T0 + SEC(120), "k2"), 0);
    assert_int_equal(src_calls, 3);
    /* known kids never fetch */
    assert_int_equal(find(ks, T0 + SEC(500), "k1"), 0);
    assert_int_equal(src_calls, 3);
    /* periodic refresh once the set is `refresh` old (fetched at T0+120) */
    assert_int_equal(find(ks, T0 + SEC(120 + 3599), "k1"), 0);
    assert_int_equal(src_calls, 3);
    assert_int_equal(find(ks, T0 + SEC(120 + 3600), "k1"), 0);
    assert_int_equal(src_calls, 4);
    /* a clock that jumps back does not stop refetching for good */
    assert_int_equal(find(ks, T0 - SEC(1000), "zz"), 3201);
    assert_int_equal(src_calls, 5);
    apr_pool_destroy(p);
}

static void test_failures_and_staleness(void **state)
{
    apr_pool_t *p;
    eid_jwks_t *ks;
    eid_result_t res;
    eid_jwks_stats_t st;

    apr_pool_create(&p, pool);
    ks = make_set(p, NULL);
    src_doc = doc_of(0, 1);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0, &res), APR_SUCCESS);
    /* the provider goes down: old keys serve, fetches stay throttled */
    src_fail = 1;
    assert_int_equal(find(ks, T0 + SEC(3600), "k0"), 0);
    assert_int_equal(src_calls, 2);
    assert_int_equal(count_logged("EID03208"), 1);
    assert_int_equal(find(ks, T0 + SEC(3630), "k0"), 0);
    assert_int_equal(src_calls, 2);
    assert_int_equal(find(ks, T0 + SEC(3660), "k0"), 0);
    assert_int_equal(src_calls, 3);
    /* max_stale (7200 s) after the last success: no keys at all */
    assert_int_equal(find(ks, T0 + SEC(7199), "k0"), 0);
    assert_int_equal(find(ks, T0 + SEC(7200), "k0"), 3207);
    assert_int_equal(find(ks, T0 + SEC(7300), "k1"), 3207);
    eid_jwks_stats(ks, &st);
    assert_true(st.failures >= 3);
    /* it comes back */
    src_fail = 0;
    assert_int_equal(find(ks, T0 + SEC(7400), "k1"), 0);
    /* a document without usable keys is a failure, not an empty set */
    src_doc = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}";
    assert_int_equal(eid_jwks_refresh(ks, pool, T0 + SEC(7500), &res), APR_EGENERAL);
    assert_string_equal(res.tag, "EID03219");
    src_doc = "garbage";
    assert_int_equal(eid_jwks_refresh(ks, pool, T0 + SEC(7600), &res), APR_EGENERAL);
    assert_string_equal(res.tag, "EID03209");
    assert_int_equal(find(ks, T0 + SEC(7600), "k1"), 0);
    apr_pool_destroy(p);
}

/* An unknown kid while the provider is down: the keys held cannot say
 * whether the provider rotated, so the answer is "unavailable" (503), never
 * "invalid" (401: the client would drop a good token).  Within min_refetch
 * after that failed fetch too; once a fetch succeeds, an unknown kid is
 * invalid again. */
static void test_unknown_kid_provider_down(void **state)
{
    apr_pool_t *p;
    eid_jwks_t *ks;
    eid_result_t res = {0};

    apr_pool_create(&p, pool);
    ks = make_set(p, NULL);
    src_doc = doc_of(0, 1);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0, &res), APR_SUCCESS);
    src_fail = 1;
    assert_int_equal(find(ks, T0 + SEC(60), "new"), 3208);
    assert_int_equal(src_calls, 2);
    assert_int_equal(eid_result_class("EID03208"), EID_CLASS_UNAVAILABLE);
    assert_int_equal(find(ks, T0 + SEC(61), "new2"), 3208); /* throttled, still down */
    assert_int_equal(src_calls, 2);
    assert_int_equal(find(ks, T0 + SEC(62), "k0"), 0); /* known kids serve */
    /* a document with no usable key is the provider's fault too */
    src_fail = 0;
    src_doc = "garbage";
    assert_int_equal(find(ks, T0 + SEC(120), "new"), 3209);
    assert_int_equal(eid_result_class("EID03209"), EID_CLASS_UNAVAILABLE);
    src_doc = doc_of(0, 1);
    assert_int_equal(find(ks, T0 + SEC(180), "new"), 3201);
    assert_int_equal(find(ks, T0 + SEC(181), "new"), 3201);
    apr_pool_destroy(p);
}

/* A key the document no longer lists is gone with the first successful fetch
 * (no grace until max_stale: that is for failed fetches), and the set's
 * generation moves on so that decisions cached under it are dropped. */
static void test_rotation_drops_withdrawn_keys(void **state)
{
    apr_pool_t *p;
    eid_jwks_t *ks;
    eid_result_t res;
    eid_jwks_sel_t held;
    apr_uint32_t g0, g1;

    apr_pool_create(&p, pool);
    ks = make_set(p, NULL);
    src_doc = doc_of(0, 1);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0, &res), APR_SUCCESS);
    g0 = eid_jwks_generation(ks);
    assert_int_equal(eid_jwks_current(ks, g0, T0 + SEC(100)), 1);
    /* a reader holds k0 while the set is swapped */
    assert_int_equal(sel(ks, T0, "k0", EID_JWS_RS256, &held), 0);
    /* the same keys again, in another order: nothing withdrawn */
    src_doc = doc_of(1, 0);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0 + SEC(50), &res), APR_SUCCESS);
    assert_int_equal(eid_jwks_generation(ks), g0);
    /* k0 withdrawn: gone at once, k1 and the new k2 serve */
    src_doc = doc_of(1, 2);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0 + SEC(100), &res), APR_SUCCESS);
    g1 = eid_jwks_generation(ks);
    assert_int_not_equal(g1, g0);
    assert_int_equal(eid_jwks_current(ks, g0, T0 + SEC(100)), 0);
    assert_int_equal(eid_jwks_current(ks, g1, T0 + SEC(100)), 1);
    assert_int_equal(find(ks, T0 + SEC(100), "k0"), 3201);
    assert_int_equal(find(ks, T0 + SEC(100), "k1"), 0);
    assert_int_equal(find(ks, T0 + SEC(100), "k2"), 0);
    /* the held key (old snapshot) is still intact for its reader */
    assert_string_equal(held.keys[0]->kid, "k0");
    assert_non_null(held.keys[0]->cjose);
    assert_int_equal(cjose_jwk_get_kty(held.keys[0]->cjose, NULL), CJOSE_JWK_KTY_RSA);
    eid_jwks_release(ks, &held);
    /* a kid that now names other key material is a withdrawal too */
    src_doc = apr_pstrcat(pool, "{\"keys\":[", key(rsa[3], "k1", NULL), ",",
                          key(rsa[2], "k2", NULL), "]}", NULL);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0 + SEC(200), &res), APR_SUCCESS);
    assert_int_equal(eid_jwks_current(ks, g1, T0 + SEC(200)), 0);
    g1 = eid_jwks_generation(ks);
    /* a failed fetch keeps the keys and the generation, until max_stale
     * (7200 s) after the last success */
    src_fail = 1;
    assert_int_equal(eid_jwks_refresh(ks, pool, T0 + SEC(300), &res), APR_EGENERAL);
    assert_int_equal(find(ks, T0 + SEC(300), "k2"), 0);
    assert_int_equal(eid_jwks_generation(ks), g1);
    assert_int_equal(eid_jwks_current(ks, g1, T0 + SEC(200 + 7199)), 1);
    assert_int_equal(eid_jwks_current(ks, g1, T0 + SEC(200 + 7200)), 0);
    assert_int_equal(find(ks, T0 + SEC(200 + 7200), "k2"), 3207);
    apr_pool_destroy(p);
}

static void test_jwks_file(void **state)
{
    char dir[64], path[128];
    FILE *f;
    apr_pool_t *p;
    eid_jwks_t *ks;
    eid_result_t res;

    strcpy(dir, "/tmp/eid_test_jwks.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    f = fopen(path, "w");
    fputs(doc_of(0, 1), f);
    fclose(f);
    apr_pool_create(&p, pool);
    ks = make_set(p, path);
    assert_int_equal(find(ks, T0, "k1"), 0);
    /* the file changes: seen at the next allowed re-read */
    f = fopen(path, "w");
    fputs(doc_of(3, 4), f);
    fclose(f);
    assert_int_equal(find(ks, T0 + SEC(30), "k3"), 3201);
    assert_int_equal(find(ks, T0 + SEC(90), "k3"), 0);
    /* removed file: old keys kept, failure logged */
    unlink(path);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0 + SEC(200), &res), APR_ENOENT);
    assert_string_equal(res.tag, "EID03208");
    assert_int_equal(find(ks, T0 + SEC(200), "k4"), 0);
    /* too large */
    f = fopen(path, "w");
    for (int i = 0; i < 300000; i++)
        fputc(' ', f);
    fclose(f);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0 + SEC(300), &res), APR_ENOSPC);
    unlink(path);
    rmdir(dir);
    apr_pool_destroy(p);
}

/* A jwks_file the children's user may not read (httpd: read by root at
 * start-up, re-read by www-data): a tagged error of its own (EID03220, also
 * in the failure log line), the keys read before are kept. */
static void test_jwks_file_not_readable(void **state)
{
    char dir[64], path[128];
    FILE *f;
    apr_pool_t *p;
    eid_jwks_t *ks;
    eid_result_t res;
    pid_t pid;
    int st = -1;

    strcpy(dir, "/tmp/eid_test_jwks.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    f = fopen(path, "w");
    fputs(doc_of(0, 1), f);
    fclose(f);
    apr_pool_create(&p, pool);
    ks = make_set(p, path);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0, &res), APR_SUCCESS);
    /* only its owner may read it now */
    assert_int_equal(chmod(path, 0600), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child gives up root like httpd's children (no cmocka here) */
        int bad = 0;
        if (geteuid() == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(90);
        }
        else if (chmod(path, 0) != 0) /* not root: its owner may not read it either */
            _exit(91);
        logged[0] = '\0';
        bad |= eid_jwks_refresh(ks, pool, T0 + SEC(100), &res) != APR_EACCES;
        bad |= !res.tag || strcmp(res.tag, "EID03220") != 0;
        bad |= !res.reason || !strstr(res.reason, path);
        bad |= count_logged("EID03220") != 1 ? 2 : 0;
        bad |= find(ks, T0 + SEC(100), "k1") != 0 ? 4 : 0;
        _exit(bad);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    unlink(path);
    rmdir(dir);
    apr_pool_destroy(p);
}

/* ---- single flight ------------------------------------------------------------------- */

typedef struct job {
    eid_jwks_t *ks;
    apr_time_t now;
    const char *kid;
    int rc;
    volatile int done;
} job_t;

static void *APR_THREAD_FUNC lookup_thread(apr_thread_t *t, void *data)
{
    job_t *j = data;
    apr_pool_t *p;
    eid_jwks_sel_t s;
    eid_result_t res;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    j->rc = eid_jwks_select(j->ks, p, j->now, j->kid, strlen(j->kid), EID_JWS_RS256, &s, &res);
    if (!j->rc)
        eid_jwks_release(j->ks, &s);
    apr_pool_destroy(p);
    j->done = 1;
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void wait_entered(void)
{
    apr_thread_mutex_lock(src_mu);
    while (!src_entered)
        apr_thread_cond_wait(src_cv, src_mu);
    apr_thread_mutex_unlock(src_mu);
}

static void release_source(void)
{
    apr_thread_mutex_lock(src_mu);
    src_released = 1;
    apr_thread_cond_broadcast(src_cv);
    apr_thread_mutex_unlock(src_mu);
}

static void test_single_flight(void **state)
{
    apr_pool_t *p;
    eid_jwks_t *ks;
    eid_result_t res;
    apr_thread_t *ta, *tb;
    apr_status_t rv;
    job_t a, b;
    int i;

    apr_pool_create(&p, pool);
    ks = make_set(p, NULL);
    src_doc = doc_of(0, 1);
    assert_int_equal(eid_jwks_refresh(ks, pool, T0, &res), APR_SUCCESS);
    /* thread A triggers the periodic refresh and blocks inside the fetch */
    src_block = 1;
    src_doc = doc_of(1, 2);
    a.ks = ks;
    a.now = T0 + SEC(4000);
    a.kid = "k0";
    a.done = 0;
    apr_thread_create(&ta, NULL, lookup_thread, &a, pool);
    wait_entered();
    /* meanwhile: known kids answer from the current set, unknown kids
     * fail fast as unavailable (the fetch under way may bring their key);
     * nobody fetches a second time */
    for (i = 0; i < 50; i++) {
        assert_int_equal(find(ks, T0 + SEC(4000), "k1"), 0);
        assert_int_equal(find(ks, T0 + SEC(4000), "new"), 3208);
        assert_int_equal(eid_jwks_refresh(ks, pool, T0 + SEC(4000), &res), APR_EBUSY);
    }
    assert_int_equal(src_calls, 2);
    assert_int_equal(a.done, 0);
    release_source();
    apr_thread_join(&rv, ta);
    assert_int_equal(a.rc, 3201); /* k0 withdrawn by the new document */
    assert_int_equal(find(ks, T0 + SEC(4000), "k2"), 0);
    assert_int_equal(src_calls, 2);
    apr_pool_destroy(p);

    /* no set at all yet: a second thread waits for the first fetch */
    reset(NULL);
    apr_pool_create(&p, pool);
    ks = make_set(p, NULL);
    src_doc = doc_of(3, 4);
    src_block = 1;
    a.ks = b.ks = ks;
    a.now = b.now = T0;
    a.kid = "k3";
    b.kid = "k4";
    a.done = b.done = 0;
    apr_thread_create(&ta, NULL, lookup_thread, &a, pool);
    wait_entered();
    apr_thread_create(&tb, NULL, lookup_thread, &b, pool);
    usleep(100000);
    assert_int_equal(b.done, 0);
    release_source();
    apr_thread_join(&rv, ta);
    apr_thread_join(&rv, tb);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_int_equal(src_calls, 1);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_parse_import_rules, reset),
        cmocka_unit_test_setup(test_parse_documents, reset),
        cmocka_unit_test(test_fit),
        cmocka_unit_test_setup(test_kid_lookup, reset),
        cmocka_unit_test_setup(test_throttled_refetch, reset),
        cmocka_unit_test_setup(test_failures_and_staleness, reset),
        cmocka_unit_test_setup(test_unknown_kid_provider_down, reset),
        cmocka_unit_test_setup(test_rotation_drops_withdrawn_keys, reset),
        cmocka_unit_test_setup(test_jwks_file, reset),
        cmocka_unit_test_setup(test_jwks_file_not_readable, reset),
        cmocka_unit_test_setup(test_single_flight, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
