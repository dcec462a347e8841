/*
 * Unit tests: the bearer facade - provider options and start-up checks,
 * eid_bearer_validate() codes, the token cache through the facade (hits,
 * owners, expiry; the cache itself is in test_tokcache.c), and
 * the HTTP paths (discovery, jwks_uri, introspection) against a small HTTP
 * server running in this process on a loopback port.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "eid/eid_bearer.h"
#include "eid/eid_http.h"

#define ISS "https://op.example.se"
#define AUD "api://incident"
#define NOW_S 1700000000L

static apr_pool_t *pool;
static EVP_PKEY *rsa1, *rsa2;
static char dir[64], jwks_path[128], jwks2_path[128], secret_path[128];
static const apr_time_t now = (apr_time_t)NOW_S * APR_USEC_PER_SEC;

/* ---- token helpers --------------------------------------------------------------- */

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

static char *jwk(EVP_PKEY *k, const char *kid)
{
    BIGNUM *n = NULL, *e = NULL;
    unsigned char b[512];
    char *ns, *es;
    int l;
    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
    l = BN_bn2bin(n, b);
    ns = b64u(b, (size_t)l);
    l = BN_bn2bin(e, b);
    es = b64u(b, (size_t)l);
    BN_free(n);
    BN_free(e);
    return apr_psprintf(pool, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}", kid,
                        ns, es);
}

static char *tok(EVP_PKEY *k, const char *kid, const char *claims)
{
    const char *h = apr_psprintf(pool, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
                                 kid);
    char *in = apr_pstrcat(pool, b64u((const unsigned char *)h, strlen(h)), ".",
                           b64u((const unsigned char *)claims, strlen(claims)), NULL);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char sig[512];
    size_t sl = sizeof(sig);
    EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k);
    EVP_DigestSign(c, sig, &sl, (const unsigned char *)in, strlen(in));
    EVP_MD_CTX_free(c);
    return apr_pstrcat(pool, in, ".", b64u(sig, sl), NULL);
}

static char *claims(const char *iss, const char *aud, long exp, const char *extra)
{
    return apr_psprintf(pool, "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"u1\",\"exp\":%ld,"
                        "\"iat\":%ld%s%s}", iss, aud, exp, NOW_S - 5, extra ? "," : "",
                        extra ? extra : "");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- a loopback HTTP server ------------------------------------------------------- */

#include "loopback_http.h"

/* ---- fixtures ------------------------------------------------------------------------ */

static int setup(void **state)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rsa1 = EVP_RSA_gen(2048);
    rsa2 = EVP_RSA_gen(2048);
    strcpy(dir, "/tmp/eid_test_bearer.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", dir);
    snprintf(jwks2_path, sizeof(jwks2_path), "%s/jwks2.json", dir);
    snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
    write_file(jwks_path, apr_pstrcat(pool, "{\"keys\":[", jwk(rsa1, "k1"), "]}", NULL));
    write_file(jwks2_path, apr_pstrcat(pool, "{\"keys\":[", jwk(rsa2, "k2"), "]}", NULL));
    write_file(secret_path, "s3cr3t:&=+ x\n");
    eid_http_global_init();
    start_server();
    return 0;
}

static int teardown(void **state)
{
    stop_server();
    unlink(jwks_path);
    unlink(jwks2_path);
    unlink(secret_path);
    rmdir(dir);
    apr_pool_destroy(pool);
    EVP_PKEY_free(rsa1);
    EVP_PKEY_free(rsa2);
    apr_terminate();
    return 0;
}

static eid_provider_t *provider(const char *name, const char *const *opts)
{
    eid_provider_t *pv = eid_provider_create(pool, name);
    const char *err;
    for (; *opts; opts += 2)
        if ((err = eid_provider_set(pv, pool, opts[0], opts[1])) != NULL)
            fail_msg("%s=%s: %s", opts[0], opts[1], err);
    if ((err = eid_provider_check(pv, pool)) != NULL)
        fail_msg("check: %s", err);
    assert_int_equal(eid_provider_init(pv, pool, 0), APR_SUCCESS);
    assert_int_equal(eid_provider_init(pv, pool, 1), APR_SUCCESS);
    return pv;
}

static eid_bearer_code_e check(eid_provider_t *const *pvs, int n, const char *t,
                               const char *want_tag, eid_identity_t **out)
{
    eid_identity_t *id = (eid_identity_t *)1;
    eid_result_t res = {0};
    eid_bearer_code_e c = eid_bearer_validate(pool, pvs, n, t, strlen(t), now, &id, &res);
    if (c == EID_BEARER_OK) {
        assert_non_null(id);
        if (want_tag)
            fail_msg("expected %s, got OK", want_tag);
    }
    else {
        assert_null(id);
        if (!want_tag || strcmp(res.tag, want_tag))
            fail_msg("expected %s, got %s (%s)", want_tag ? want_tag : "OK", res.tag,
                     res.reason);
        assert_int_equal(eid_bearer_code(&res), c);
    }
    if (out)
        *out = id;
    return c;
}

/* ---- configuration -------------------------------------------------------------------- */

static void test_options(void **state)
{
    eid_provider_t *pv = eid_provider_create(pool, "p");
    assert_string_equal(eid_provider_name(pv), "p");
    assert_null(eid_provider_issuer(pv));
    assert_null(eid_provider_set(pv, pool, "issuer", ISS));
    assert_string_equal(eid_provider_issuer(pv), ISS);
    assert_null(eid_provider_set(pv, pool, "audience", "a, b ,c"));
    assert_null(eid_provider_set(pv, pool, "audience", "d"));
    assert_null(eid_provider_set(pv, pool, "algs", "RS256, ES256,PS384"));
    assert_null(eid_provider_set(pv, pool, "claims", "inera"));
    assert_null(eid_provider_set(pv, pool, "claim.roles", "groups"));
    assert_null(eid_provider_set(pv, pool, "acr.urn:x", "2"));
    assert_null(eid_provider_set(pv, pool, "leeway", "0"));
    assert_null(eid_provider_set(pv, pool, "jwks_refresh", "600"));
    assert_null(eid_provider_set(pv, pool, "jwks_min_refetch", "30"));
    assert_null(eid_provider_set(pv, pool, "jwks_max_stale", "86400"));
    assert_null(eid_provider_set(pv, pool, "fetch_timeout", "1"));
    assert_null(eid_provider_set(pv, pool, "fetch_max_bytes", "100000"));
    assert_null(eid_provider_set(pv, pool, "token_types", "at+jwt,absent"));
    assert_null(eid_provider_set(pv, pool, "max_token_size", "8192"));
    assert_null(eid_provider_set(pv, pool, "introspect_cache", "0"));
    assert_null(eid_provider_set(pv, pool, "jwks_file", jwks_path));
    assert_null(eid_provider_check(pv, pool));
    /* refused values */
    pv = eid_provider_create(pool, "q");
    assert_non_null(eid_provider_set(pv, pool, "algs", "HS256"));
    assert_non_null(eid_provider_set(pv, pool, "algs", "RS256,none"));
    assert_non_null(eid_provider_set(pv, pool, "algs", "RS256,XS1"));
    assert_non_null(eid_provider_set(pv, pool, "algs", " , "));
    assert_non_null(eid_provider_set(pv, pool, "issuer", ""));
    assert_non_null(eid_provider_set(pv, pool, "audience", ","));
    assert_non_null(eid_provider_set(pv, pool, "claims", "saml"));
    assert_non_null(eid_provider_set(pv, pool, "claim.nope", "x"));
    assert_non_null(eid_provider_set(pv, pool, "acr.urn:x", "9"));
    assert_non_null(eid_provider_set(pv, pool, "leeway", "-1"));
    assert_non_null(eid_provider_set(pv, pool, "leeway", "60s"));
    assert_non_null(eid_provider_set(pv, pool, "leeway", "601"));
    assert_non_null(eid_provider_set(pv, pool, "leeway", "99999999999999999999999"));
    assert_non_null(eid_provider_set(pv, pool, "leeway", ""));
    assert_non_null(eid_provider_set(pv, pool, "jwks_min_refetch", "0"));
    assert_non_null(eid_provider_set(pv, pool, "fetch_timeout", "0"));
    assert_non_null(eid_provider_set(pv, pool, "max_token_size", "100"));
    assert_non_null(eid_provider_set(pv, pool, "token_types", ","));
    assert_non_null(eid_provider_set(pv, pool, "jwks_uri", "http://op.example.se/jwks"));
    assert_non_null(eid_provider_set(pv, pool, "jwks_uri", "ftp://op.example.se/jwks"));
    assert_non_null(eid_provider_set(pv, pool, "jwks_uri", "file:///etc/passwd"));
    assert_non_null(eid_provider_set(pv, pool, "discovery", "op.example.se"));
    assert_non_null(eid_provider_set(pv, pool, "introspect", "http://10.0.0.1/i"));
    {
        static const char *const ok[] = {"http://127.0.0.1:8080/jwks", "http://localhost/jwks",
                                         "http://[::1]:80/jwks", "https://op.example.se/jwks"};
        size_t i;
        for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
            assert_null(eid_provider_set(eid_provider_create(pool, "u"), pool, "jwks_uri",
                                         ok[i]));
    }
    /* a second issuer / key source for one provider: no "last one wins" */
    assert_null(eid_provider_set(pv, pool, "jwks_uri", "https://op.example.se/jwks"));
    assert_non_null(eid_provider_set(pv, pool, "jwks_uri", "https://other.example/jwks"));
    assert_null(eid_provider_set(pv, pool, "issuer", ISS));
    assert_non_null(eid_provider_set(pv, pool, "issuer", "https://other.example"));
    assert_non_null(eid_provider_set(pv, pool, "client_secret_file", "/nonexistent/x"));
    assert_non_null(eid_provider_set(pv, pool, "nonsense", "1"));
    assert_non_null(eid_provider_set(pv, pool, "issuer", NULL));
}

static const char *check_err(const char *const *opts)
{
    eid_provider_t *pv = eid_provider_create(pool, "c");
    for (; *opts; opts += 2)
        assert_null(eid_provider_set(pv, pool, opts[0], opts[1]));
    return eid_provider_check(pv, pool);
}

static void test_check(void **state)
{
    const char *e;
    char empty[160], big[160];
    FILE *f;

#define OPTS(...) ((const char *const[]){__VA_ARGS__, NULL})
    e = check_err(OPTS("audience", AUD, "jwks_file", jwks_path));
    assert_non_null(strstr(e, "issuer"));
    e = check_err(OPTS("issuer", ISS, "jwks_file", jwks_path));
    assert_non_null(strstr(e, "audience"));
    e = check_err(OPTS("issuer", ISS, "audience", AUD));
    assert_non_null(strstr(e, "no key source"));
    e = check_err(OPTS("issuer", ISS, "audience", AUD, "jwks_file", jwks_path, "jwks_uri",
                       "https://op/jwks"));
    assert_non_null(strstr(e, "one of"));
    e = check_err(OPTS("issuer", ISS, "audience", AUD, "introspect", "https://op/i"));
    assert_non_null(strstr(e, "client_id"));
    e = check_err(OPTS("issuer", ISS, "audience", AUD, "introspect", "https://op/i",
                       "client_id", "c"));
    assert_non_null(strstr(e, "client_secret_file"));
    e = check_err(OPTS("issuer", ISS, "audience", AUD, "jwks_file", "/nonexistent.json"));
    assert_non_null(strstr(e, "cannot open"));
    e = check_err(OPTS("issuer", ISS, "audience", AUD, "jwks_file", jwks_path, "algs", "ES256"));
    assert_non_null(strstr(e, "no usable key"));
    e = check_err(OPTS("issuer", ISS, "audience", AUD, "jwks_file", jwks_path, "jwks_refresh",
                       "7200", "jwks_max_stale", "3600"));
    assert_non_null(strstr(e, "jwks_max_stale"));
    e = check_err(OPTS("issuer", ISS, "audience", AUD, "jwks_file", jwks_path, "jwks_refresh",
                       "60", "jwks_min_refetch", "120"));
    assert_non_null(strstr(e, "jwks_min_refetch"));
    e = check_err(OPTS("issuer", ISS, "audience", AUD, "jwks_file", jwks_path, "ca_file",
                       "/nonexistent.pem"));
    assert_non_null(strstr(e, "ca_file"));
    e = check_err(OPTS("issuer", "http://op.example.se", "audience", AUD, "discovery", "on"));
    assert_non_null(strstr(e, "http"));
    e = check_err(OPTS("issuer", "https://op.example.se/", "audience", AUD, "discovery", "on"));
    assert_null(e);
    /* secret files: empty, multi-line, too big */
    snprintf(empty, sizeof(empty), "%s/empty", dir);
    write_file(empty, "\n");
    {
        eid_provider_t *pv = eid_provider_create(pool, "s");
        e = eid_provider_set(pv, pool, "client_secret_file", empty);
        assert_non_null(strstr(e, "empty"));
        write_file(empty, "line1\nline2\n");
        e = eid_provider_set(pv, pool, "client_secret_file", empty);
        assert_non_null(strstr(e, "one line"));
        assert_null(strstr(e, "line1"));
        snprintf(big, sizeof(big), "%s/big", dir);
        f = fopen(big, "w");
        for (int i = 0; i < 5000; i++)
            fputc('x', f);
        fclose(f);
        assert_non_null(eid_provider_set(pv, pool, "client_secret_file", big));
        unlink(big);
    }
    unlink(empty);
#undef OPTS
}

/* ---- validation ----------------------------------------------------------------------- */

static const char *base_opts[] = {"issuer", ISS, "audience", AUD, "jwks_file", NULL, NULL};

static eid_provider_t *file_provider(const char *name, const char *aud, const char *path)
{
    const char *o[] = {"issuer", ISS, "audience", aud, "jwks_file", path, "claims",
                       "generic", NULL};
    return provider(name, o);
}

static void test_validate_codes(void **state)
{
    eid_provider_t *pv = file_provider("op", AUD, jwks_path);
    eid_identity_t *id;
    char *good = tok(rsa1, "k1", claims(ISS, AUD, NOW_S + 300, "\"name\":\"Ann\""));
    char *big;

    (void)base_opts;
    eid_tokcache_init(pool, 0, 0);
    assert_int_equal(check(&pv, 1, good, NULL, &id), EID_BEARER_OK);
    assert_int_equal(id->method, EID_METHOD_BEARER);
    assert_string_equal(id->profile, "op");
    assert_string_equal(id->issuer, ISS);
    assert_string_equal(id->subject, "u1");
    assert_string_equal(id->display_name, "Ann");
    assert_true(id->expires == apr_time_from_sec(NOW_S + 300));
    /* 400: not a bearer token at all */
    assert_int_equal(check(&pv, 1, "", "EID03001", NULL), EID_BEARER_MALFORMED);
    assert_int_equal(check(&pv, 1, "abc def", "EID03002", NULL), EID_BEARER_MALFORMED);
    assert_int_equal(check(&pv, 1, "abc\r\n", "EID03002", NULL), EID_BEARER_MALFORMED);
    assert_int_equal(check(&pv, 1, "=abc", "EID03002", NULL), EID_BEARER_MALFORMED);
    assert_int_equal(check(&pv, 1, "ab=c", "EID03002", NULL), EID_BEARER_MALFORMED);
    assert_int_equal(check(&pv, 1, "{\"protected\":\"x\"}", "EID03002", NULL),
                     EID_BEARER_MALFORMED);
    {
        eid_identity_t *x;
        eid_result_t res;
        assert_int_equal(eid_bearer_validate(pool, &pv, 1, "ab\0cd", 5, now, &x, &res),
                         EID_BEARER_MALFORMED);
    }
    /* 401 */
    assert_int_equal(check(&pv, 1, "opaque-token-xyz==", "EID03004", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&pv, 1, "a.b", "EID03101", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&pv, 1, "a.b.c.d.e", "EID03101", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&pv, 1, "..", "EID03102", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&pv, 1, tok(rsa1, "k1", claims("https://evil", AUD, NOW_S + 300, NULL)),
                           "EID03005", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&pv, 1, tok(rsa1, "k1", "{\"aud\":\"" AUD "\",\"exp\":1800000000}"),
                           "EID03301", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&pv, 1, tok(rsa1, "k1", claims(ISS, "api://x", NOW_S + 300, NULL)),
                           "EID03305", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&pv, 1, tok(rsa2, "k1", claims(ISS, AUD, NOW_S + 300, NULL)),
                           "EID03205", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&pv, 1, tok(rsa1, "k1", claims(ISS, AUD, NOW_S - 3600, NULL)),
                           "EID03309", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&pv, 1, tok(rsa1, "k1", claims(ISS, AUD, NOW_S + 300,
                                                          "\"nonce\":\"x\"")),
                           "EID03120", NULL), EID_BEARER_INVALID);
    /* size: over every provider's maximum */
    big = apr_pcalloc(pool, 20000);
    memset(big, 'A', 16385);
    assert_int_equal(check(&pv, 1, big, "EID03003", NULL), EID_BEARER_INVALID);
    /* no providers at all */
    {
        eid_identity_t *x;
        eid_result_t res;
        assert_int_equal(eid_bearer_validate(pool, NULL, 0, good, strlen(good), now, &x, &res),
                         EID_BEARER_MISCONFIGURED);
        assert_string_equal(res.tag, "EID03006");
        assert_int_equal(res.cls, EID_CLASS_MISCONFIGURED);
    }
}

static void test_multiple_providers(void **state)
{
    eid_provider_t *a = file_provider("a", AUD, jwks_path);
    eid_provider_t *b = file_provider("b", "api://b", jwks2_path);
    const char *o[] = {"issuer", "https://other.example", "audience", AUD, "jwks_file",
                       jwks2_path, NULL};
    eid_provider_t *c = provider("c", o);
    eid_provider_t *ab[2] = {a, b}, *ba[2] = {b, a}, *ac[2] = {a, c};
    eid_identity_t *id;
    char *for_b = tok(rsa2, "k2", claims(ISS, "api://b", NOW_S + 300, NULL));
    char *for_a = tok(rsa1, "k1", claims(ISS, AUD, NOW_S + 300, NULL));

    eid_tokcache_init(pool, 0, 0);
    /* same issuer, two providers: never "the first that accepts wins" (the
     * most lenient profile would decide) - the list is misconfigured, for a
     * token either would accept, and for one both refuse */
    assert_int_equal(check(&b, 1, for_b, NULL, NULL), EID_BEARER_OK);
    assert_int_equal(check(&a, 1, for_a, NULL, NULL), EID_BEARER_OK);
    assert_int_equal(check(ab, 2, for_b, "EID03008", NULL), EID_BEARER_MISCONFIGURED);
    assert_int_equal(check(ba, 2, for_b, "EID03008", NULL), EID_BEARER_MISCONFIGURED);
    assert_int_equal(check(ba, 2, for_a, "EID03008", NULL), EID_BEARER_MISCONFIGURED);
    assert_int_equal(check(ab, 2, tok(rsa1, "k1", claims(ISS, "api://none", NOW_S + 300, NULL)),
                           "EID03008", NULL), EID_BEARER_MISCONFIGURED);
    /* ... also when the token is in the process-wide cache from a location
     * that accepts only one of them */
    assert_int_equal(eid_tokcache_init(pool, 16, apr_time_from_sec(60)), APR_SUCCESS);
    assert_int_equal(check(&a, 1, for_a, NULL, NULL), EID_BEARER_OK);
    assert_int_equal(check(&a, 1, for_a, NULL, NULL), EID_BEARER_OK);
    assert_int_equal(check(ab, 2, for_a, "EID03008", NULL), EID_BEARER_MISCONFIGURED);
    eid_tokcache_init(pool, 0, 0);
    /* another issuer in the list does not make it ambiguous */
    {
        eid_provider_t *ca[2] = {c, a};
        assert_int_equal(check(ca, 2, for_a, NULL, &id), EID_BEARER_OK);
        assert_string_equal(id->profile, "a");
    }
    /* the issuer picks the provider */
    assert_int_equal(check(ac, 2, tok(rsa2, "k2", claims("https://other.example", AUD,
                                                         NOW_S + 300, NULL)), NULL, &id),
                     EID_BEARER_OK);
    assert_string_equal(id->profile, "c");
    /* a's key set does not know b's key */
    assert_int_equal(check(&a, 1, for_b, "EID03201", NULL), EID_BEARER_INVALID);
    assert_int_equal(check(&c, 1, for_a, "EID03005", NULL), EID_BEARER_INVALID);
}

static int enrich_calls;

static void count_enrich(void *baton, apr_pool_t *p, eid_identity_t *id)
{
    enrich_calls++;
    id->org_kind = baton;
    id->groups = apr_array_make(p, 1, sizeof(const char *));
    APR_ARRAY_PUSH(id->groups, const char *) = apr_pstrdup(p, "g1");
}

/* eid_bearer_validate_ex(): the enrichment runs once, on the miss, and the
 * cache keeps what it added; a hit does not run it again. */
static void test_enrich_once_per_entry(void **state)
{
    eid_provider_t *a = file_provider("ea", AUD, jwks_path);
    char *t = tok(rsa1, "k1", claims(ISS, AUD, NOW_S + 100, NULL));
    eid_identity_t *id = NULL;
    eid_result_t res = {0};
    int i;

    assert_int_equal(eid_tokcache_init(pool, 8, apr_time_from_sec(60)), APR_SUCCESS);
    enrich_calls = 0;
    for (i = 0; i < 3; i++) {
        apr_pool_t *rp;
        apr_pool_create(&rp, pool); /* a request pool: gone before the next hit */
        assert_int_equal(eid_bearer_validate_ex(rp, &a, 1, t, strlen(t), now + i, count_enrich,
                                                (void *)"region", &id, &res),
                         EID_BEARER_OK);
        assert_string_equal(id->org_kind, "region");
        assert_int_equal(id->groups->nelts, 1);
        assert_string_equal(APR_ARRAY_IDX(id->groups, 0, const char *), "g1");
        apr_pool_destroy(rp);
    }
    assert_int_equal(enrich_calls, 1);
    /* without a cache every validation enriches */
    eid_tokcache_init(pool, 0, 0);
    assert_int_equal(eid_bearer_validate_ex(pool, &a, 1, t, strlen(t), now, count_enrich,
                                            (void *)"region", &id, &res), EID_BEARER_OK);
    assert_int_equal(enrich_calls, 2);
}

static void test_token_cache(void **state)
{
    eid_provider_t *a = file_provider("ca", AUD, jwks_path);
    eid_provider_t *b = file_provider("cb", "api://b", jwks_path);
    eid_identity_t *id, *id2;
    eid_result_t res;
    char *t = tok(rsa1, "k1", claims(ISS, AUD, NOW_S + 100, "\"roles\":1,\"scope\":\"a b\""));
    char *tb = tok(rsa1, "k1", claims(ISS, "api://b", NOW_S + 100, NULL));
    unsigned char key[EID_TOKCACHE_KEY_LEN];

    assert_int_equal(eid_tokcache_init(pool, 2, apr_time_from_sec(60)), APR_SUCCESS);
    assert_non_null(eid_tokcache_global());
    assert_int_equal(check(&a, 1, t, NULL, &id), EID_BEARER_OK);
    assert_int_equal(eid_tokcache_count(eid_tokcache_global()), 1);
    /* a hit: a deep copy in the caller's pool */
    assert_int_equal(eid_bearer_validate(pool, &a, 1, t, strlen(t), now + 1, &id2, &res),
                     EID_BEARER_OK);
    assert_ptr_not_equal(id, id2);
    assert_string_equal(id2->subject, "u1");
    assert_string_equal(id2->profile, "ca");
    assert_int_equal(id2->scopes->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(id2->scopes, 1, const char *), "b");
    /* a location that does not accept provider `ca` gets no hit from it */
    assert_int_equal(check(&b, 1, t, "EID03305", NULL), EID_BEARER_INVALID);
    /* never the raw token as key, and nothing past max_ttl (60 s) */
    eid_tokcache_key(t, strlen(t), key);
    assert_int_equal(eid_tokcache_get(eid_tokcache_global(), key, now + apr_time_from_sec(59),
                                      NULL, a, pool, &id2), 1);
    assert_int_equal(eid_tokcache_get(eid_tokcache_global(), key, now + apr_time_from_sec(60),
                                      NULL, a, pool, &id2), 0);
    assert_int_equal(eid_tokcache_count(eid_tokcache_global()), 0);
    /* eviction: at most 2 entries */
    assert_int_equal(check(&a, 1, t, NULL, NULL), EID_BEARER_OK);
    assert_int_equal(check(&b, 1, tb, NULL, NULL), EID_BEARER_OK);
    assert_int_equal(check(&a, 1, tok(rsa1, "k1", claims(ISS, AUD, NOW_S + 200, NULL)), NULL,
                           NULL), EID_BEARER_OK);
    assert_int_equal(eid_tokcache_count(eid_tokcache_global()), 2);
    /* the token's own exp bounds a hit (then the leeway still applies to a
     * full validation, 60 s later it is refused) */
    assert_int_equal(eid_bearer_validate(pool, &b, 1, tb, strlen(tb),
                                         now + apr_time_from_sec(161), &id2, &res),
                     EID_BEARER_INVALID);
    assert_string_equal(res.tag, "EID03309");
    assert_int_equal(eid_tokcache_init(pool, 0, 0), APR_SUCCESS);
    assert_null(eid_tokcache_global());
}

/* ---- over HTTP ------------------------------------------------------------------------ */

static void test_discovery_and_jwks_uri(void **state)
{
    const char *iss = url("");
    const char *jwks = apr_pstrcat(pool, "{\"keys\":[", jwk(rsa1, "k1"), "]}", NULL);
    const char *o[] = {"issuer", iss, "audience", AUD, "discovery", "on", "fetch_timeout", "1",
                       NULL};
    eid_provider_t *pv;
    char *t = tok(rsa1, "k1", claims(iss, AUD, NOW_S + 300, NULL));
    eid_jwks_stats_t st;

    eid_tokcache_init(pool, 0, 0);
    route("/.well-known/openid-configuration", 200,
          apr_psprintf(pool, "{\"issuer\":\"%s\",\"jwks_uri\":\"%s\"}", iss, url("/jwks")));
    route("/jwks", 200, jwks);
    srv_hits = 0;
    pv = provider("disc", o); /* the parent fetches once */
    assert_int_equal(srv_hits, 2);
    assert_int_equal(check(&pv, 1, t, NULL, NULL), EID_BEARER_OK);
    assert_int_equal(srv_hits, 2);

    /* the document names another issuer: its keys are not used */
    route("/.well-known/openid-configuration", 200,
          apr_psprintf(pool, "{\"issuer\":\"%s/x\",\"jwks_uri\":\"%s\"}", iss, url("/jwks")));
    pv = provider("disc2", o);
    eid_jwks_stats(eid_provider_jwks(pv), &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(check(&pv, 1, t, "EID03207", NULL), EID_BEARER_UNAVAILABLE);
    /* jwks_uri elsewhere over plain http */
    route("/.well-known/openid-configuration", 200,
          apr_psprintf(pool, "{\"issuer\":\"%s\",\"jwks_uri\":\"http://10.1.1.1/jwks\"}", iss));
    pv = provider("disc3", o);
    eid_jwks_stats(eid_provider_jwks(pv), &st);
    assert_int_equal(st.keys, 0);
    assert_true(st.failures >= 1);

    /* jwks_uri directly: errors, sizes, timeouts */
    {
        const char *o2[] = {"issuer", iss, "audience", AUD, "jwks_uri", url("/jwks2"),
                            "fetch_timeout", "1", NULL};
        eid_http_resp_t r;
        eid_result_t res;
        eid_http_opts_t ho;
        route("/jwks2", 500, "{}");
        pv = provider("uri", o2);
        assert_int_equal(check(&pv, 1, t, "EID03207", NULL), EID_BEARER_UNAVAILABLE);
        route("/jwks2", 200, jwks);
        eid_http_opts_default(&ho);
        ho.max_bytes = 100;
        assert_int_equal(eid_http_get(pool, url("/jwks2"), &ho, &r, &res), APR_ENOSPC);
        assert_string_equal(res.tag, "EID03604");
        ho.max_bytes = 1 << 20;
        assert_int_equal(eid_http_get(pool, url("/jwks2"), &ho, &r, &res), APR_SUCCESS);
        assert_int_equal(r.status, 200);
        assert_int_equal((int)r.len, (int)strlen(jwks));
        assert_string_equal(r.content_type, "application/json");
        routes[nroutes - 1].delay_ms = 1500;
        ho.timeout = apr_time_from_msec(300);
        assert_int_equal(eid_http_get(pool, url("/jwks2"), &ho, &r, &res), APR_TIMEUP);
        assert_string_equal(res.tag, "EID03603");
        routes[nroutes - 1].delay_ms = 0;
        assert_int_equal(eid_http_get(pool, "http://127.0.0.1:1/x", &ho, &r, &res),
                         APR_EGENERAL);
        assert_string_equal(res.tag, "EID03602");
        assert_int_equal(eid_http_get(pool, "gopher://127.0.0.1/x", &ho, &r, &res), APR_EINVAL);
        assert_string_equal(res.tag, "EID03601");
        /* redirects are not followed (the server is still busy with the
         * slow answer for a moment: wait for it) */
        ho.timeout = apr_time_from_sec(3);
        route("/moved", 302, "");
        assert_int_equal(eid_http_get(pool, url("/moved"), &ho, &r, &res), APR_SUCCESS);
        assert_int_equal(r.status, 302);
    }
}

static void test_introspection(void **state)
{
    const char *iss = url("");
    const char *o[] = {"issuer", iss, "audience", AUD, "introspect", url("/introspect"),
                       "client_id", "api client", "client_secret_file", secret_path,
                       "claims", "inera", "introspect_cache", "30", NULL};
    eid_provider_t *pv = provider("intro", o);
    eid_identity_t *id;
    const char *opaque = "0paque-T0ken_~+/==";

    eid_tokcache_init(pool, 100, apr_time_from_sec(300));
    route("/introspect", 200,
          apr_psprintf(pool, "{\"active\":true,\"iss\":\"%s\",\"aud\":[\"" AUD "\"],\"exp\":%ld,"
                       "\"sub\":\"x\",\"employeeHsaId\":\"SE2321000016-P0001N\","
                       "\"scope\":\"incident:read\"}", iss, NOW_S + 600));
    srv_hits = 0;
    assert_int_equal(check(&pv, 1, opaque, NULL, &id), EID_BEARER_OK);
    assert_string_equal(id->hsa_id, "SE2321000016-P0001N");
    assert_string_equal(id->profile, "intro");
    assert_string_equal(id->issuer, iss);
    assert_int_equal(srv_hits, 1);
    /* RFC 7662 request: form-encoded token, Basic with form-encoded id/secret */
    assert_string_equal(last_body,
                        "token=0paque-T0ken_~%2B%2F%3D%3D&token_type_hint=access_token");
    {
        char *cred = apr_pstrcat(pool, "api+client:", "s3cr3t%3A%26%3D%2B+x", NULL);
        char *b64 = apr_palloc(pool, 200);
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)cred, (int)strlen(cred));
        assert_string_equal(last_auth, apr_pstrcat(pool, "Basic ", b64, NULL));
    }
    /* cached in the provider's cache for at most introspect_cache */
    assert_int_equal(check(&pv, 1, opaque, NULL, NULL), EID_BEARER_OK);
    assert_int_equal(srv_hits, 1);
    {
        eid_identity_t *x;
        eid_result_t res;
        assert_int_equal(eid_bearer_validate(pool, &pv, 1, opaque, strlen(opaque),
                                             now + apr_time_from_sec(31), &x, &res),
                         EID_BEARER_OK);
        assert_int_equal(srv_hits, 2);
    }
    /* answers */
#define ANSWER(status, body, tag, code)                                                    \
    do {                                                                                   \
        route("/introspect", status, body);                                                \
        assert_int_equal(check(&pv, 1, apr_psprintf(pool, "t%d", __LINE__), tag, NULL), code); \
    } while (0)
    ANSWER(200, "{\"active\":false}", "EID03504", EID_BEARER_INVALID);
    ANSWER(200, "{\"active\":\"true\"}", "EID03504", EID_BEARER_INVALID);
    ANSWER(200, "{\"active\":1}", "EID03504", EID_BEARER_INVALID);
    ANSWER(200, "{\"sub\":\"x\"}", "EID03504", EID_BEARER_INVALID);
    ANSWER(200, "{\"active\":true,\"active\":false}", "EID03503", EID_BEARER_UNAVAILABLE);
    ANSWER(200, "<html>", "EID03503", EID_BEARER_UNAVAILABLE);
    ANSWER(401, "{\"error\":\"invalid_client\"}", "EID03502", EID_BEARER_UNAVAILABLE);
#define ACTIVE(iss_, aud_, exp_, extra)                                                    \
    apr_psprintf(pool, "{\"active\":true,\"iss\":%s,\"aud\":%s,\"exp\":%s%s}", iss_, aud_,    \
                 exp_, extra)
    {
        const char *qiss = apr_psprintf(pool, "\"%s\"", iss), *qaud = "\"" AUD "\"";
        const char *qexp = apr_psprintf(pool, "%ld", NOW_S + 600);
        ANSWER(200, ACTIVE("\"https://evil\"", qaud, qexp, ""), "EID03302", EID_BEARER_INVALID);
        ANSWER(200, ACTIVE(qiss, "\"api://other\"", qexp, ""), "EID03305", EID_BEARER_INVALID);
        ANSWER(200, ACTIVE(qiss, qaud, "1600000000", ""), "EID03309", EID_BEARER_INVALID);
        ANSWER(200, ACTIVE(qiss, qaud, "\"1800000000\"", ""), "EID03307", EID_BEARER_INVALID);
        ANSWER(200, ACTIVE(qiss, qaud, qexp, ",\"employeeHsaId\":\"bad\""), "EID03408",
               EID_BEARER_INVALID);
        ANSWER(200, ACTIVE(qiss, qaud, qexp, ",\"sub\":\"y\""), NULL, EID_BEARER_OK);
        /* RFC 7662 makes them optional; here aud, iss and exp are required */
        ANSWER(200, "{\"active\":true,\"sub\":\"y\"}", "EID03303", EID_BEARER_INVALID);
        ANSWER(200, apr_psprintf(pool, "{\"active\":true,\"iss\":%s,\"exp\":%s}", qiss, qexp),
               "EID03303", EID_BEARER_INVALID);
        ANSWER(200, apr_psprintf(pool, "{\"active\":true,\"aud\":%s,\"exp\":%s}", qaud, qexp),
               "EID03301", EID_BEARER_INVALID);
        ANSWER(200, apr_psprintf(pool, "{\"active\":true,\"iss\":%s,\"aud\":%s}", qiss, qaud),
               "EID03306", EID_BEARER_INVALID);
        /* a JWS whose issuer only introspects goes to introspection */
        route("/introspect", 200, ACTIVE(qiss, qaud, qexp, ",\"sub\":\"j\""));
    }
#undef ACTIVE
#undef ANSWER
    /* unreachable endpoint */
    {
        const char *o2[] = {"issuer", iss, "audience", AUD, "introspect",
                            "http://127.0.0.1:1/introspect", "client_id", "c",
                            "client_secret_file", secret_path, NULL};
        eid_provider_t *dead = provider("dead", o2);
        assert_int_equal(check(&dead, 1, "zzz", "EID03602", NULL), EID_BEARER_UNAVAILABLE);
    }
    assert_int_equal(check(&pv, 1, tok(rsa1, "k1", claims(iss, AUD, NOW_S + 300, NULL)), NULL,
                           &id), EID_BEARER_OK);
    assert_string_equal(id->subject, "j");
    eid_tokcache_init(pool, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_validate_codes),
        cmocka_unit_test(test_multiple_providers),
        cmocka_unit_test(test_token_cache),
        cmocka_unit_test(test_enrich_once_per_entry),
        cmocka_unit_test(test_discovery_and_jwks_uri),
        cmocka_unit_test(test_introspection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
