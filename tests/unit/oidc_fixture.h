/*
 * oidc_fixture.h - shared by the eid_oidc unit tests: an OP signing key and
 * a second (foreign) key, client keys for private_key_jwt, token signing,
 * base64url, form decoding, and login providers built from option lists.
 * Include after cmocka and before loopback_http.h; defines `pool`.
 */
#ifndef OIDC_FIXTURE_H
#define OIDC_FIXTURE_H

#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eid/eid_bearer.h"
#include "eid/eid_claims.h"
#include "eid/eid_http.h"
#include "eid/eid_oidc.h"

#define ISS "https://op.example.se"
#define CID "rp:1 x"              /* a client id that needs form-encoding */
#define NOW_S 1700000000L
#define REDIR "https://rp.example.se/.eid/callback"

static apr_pool_t *pool;
static EVP_PKEY *op_key, *evil_key, *client_rsa, *client_ec;
static char dir[64], jwks_path[128], secret_path[128], rsa_pem[128], ec_pem[128];
static const apr_time_t now = (apr_time_t)NOW_S * APR_USEC_PER_SEC;

static __attribute__((unused)) char *b64u(const unsigned char *d, size_t n)
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

/* base64url decode (test inputs are well-formed), into the pool. */
static __attribute__((unused)) unsigned char *unb64u(const char *s, size_t n, size_t *outlen)
{
    char *std = apr_palloc(pool, n + 4);
    unsigned char *out = apr_palloc(pool, n + 4);
    size_t i, m = n;
    int l;
    for (i = 0; i < n; i++)
        std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (m % 4)
        std[m++] = '=';
    l = EVP_DecodeBlock(out, (const unsigned char *)std, (int)m);
    assert_true(l >= 0);
    *outlen = (size_t)l - (m - n);
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

/* A compact JWS, RS256 with `k`, over the given header and claims. */
static char *sign(EVP_PKEY *k, const char *header, const char *claims)
{
    char *in = apr_pstrcat(pool, b64u((const unsigned char *)header, strlen(header)), ".",
                           b64u((const unsigned char *)claims, strlen(claims)), NULL);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char sig[512];
    size_t sl = sizeof(sig);
    EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k);
    EVP_DigestSign(c, sig, &sl, (const unsigned char *)in, strlen(in));
    EVP_MD_CTX_free(c);
    return apr_pstrcat(pool, in, ".", b64u(sig, sl), NULL);
}

/* at_hash / c_hash for RS256: base64url of the left half of SHA-256. */
static __attribute__((unused)) char *half_hash(const char *v)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)v, strlen(v), h);
    return b64u(h, 16);
}

/* application/x-www-form-urlencoded value decoding. */
static __attribute__((unused)) char *form_decode(const char *s, size_t n)
{
    char *out = apr_palloc(pool, n + 1), *o = out;
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] == '+')
            *o++ = ' ';
        else if (s[i] == '%' && i + 2 < n) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        else
            *o++ = s[i];
    }
    *o = '\0';
    return out;
}

/* The parameters of a query string or form body: name -> decoded value;
 * fails the test on a repeated name. */
static __attribute__((unused)) apr_table_t *params(const char *q)
{
    apr_table_t *t = apr_table_make(pool, 16);
    const char *s = q;
    while (*s) {
        const char *amp = strchr(s, '&'), *eq;
        size_t n = amp ? (size_t)(amp - s) : strlen(s);
        char *pair = apr_pstrmemdup(pool, s, n);
        eq = strchr(pair, '=');
        assert_non_null(eq);
        {
            char *name = apr_pstrmemdup(pool, pair, (size_t)(eq - pair));
            if (apr_table_get(t, name))
                fail_msg("parameter %s twice", name);
            apr_table_setn(t, name, form_decode(eq + 1, strlen(eq + 1)));
        }
        s += n;
        if (*s)
            s++;
    }
    return t;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void fixture_up(const char *name)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    op_key = EVP_RSA_gen(2048);
    evil_key = EVP_RSA_gen(2048);
    client_rsa = EVP_RSA_gen(2048);
    client_ec = EVP_EC_gen("P-256");
    snprintf(dir, sizeof(dir), "/tmp/eid_%s.XXXXXX", name);
    assert_non_null(mkdtemp(dir));
    snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", dir);
    snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
    snprintf(rsa_pem, sizeof(rsa_pem), "%s/client-rsa.pem", dir);
    snprintf(ec_pem, sizeof(ec_pem), "%s/client-ec.pem", dir);
    write_file(jwks_path, apr_pstrcat(pool, "{\"keys\":[", jwk(op_key, "k1"), "]}", NULL));
    write_file(secret_path, "s3cr3t:&=+ x\n");
    write_key(rsa_pem, client_rsa);
    write_key(ec_pem, client_ec);
    eid_http_global_init();
}

static void fixture_down(void)
{
    unlink(jwks_path);
    unlink(secret_path);
    unlink(rsa_pem);
    unlink(ec_pem);
    rmdir(dir);
    apr_pool_destroy(pool);
    EVP_PKEY_free(op_key);
    EVP_PKEY_free(evil_key);
    EVP_PKEY_free(client_rsa);
    EVP_PKEY_free(client_ec);
    apr_terminate();
}

/* Options, then eid_provider_check(): NULL and *out, or the first error. */
static const char *try_provider(const char *const *opts, eid_provider_t **out)
{
    eid_provider_t *pv = eid_provider_create(pool, "op1");
    const char *err;
    *out = pv;
    for (; *opts; opts += 2)
        if ((err = eid_provider_set(pv, pool, opts[0], opts[1])) != NULL)
            return apr_psprintf(pool, "%s=%s: %s", opts[0], opts[1], err);
    return eid_provider_check(pv, pool);
}

static eid_provider_t *provider_v(const char *const *opts)
{
    eid_provider_t *pv;
    const char *err = try_provider(opts, &pv);
    if (err)
        fail_msg("provider: %s", err);
    assert_int_equal(eid_provider_init(pv, pool, 0), APR_SUCCESS);
    assert_int_equal(eid_provider_init(pv, pool, 1), APR_SUCCESS);
    return pv;
}

#endif
