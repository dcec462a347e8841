/*
 * Unit tests: compact-JWS access-token rules (eid_jwt) against a key set
 * read from a JWKS file.  Keys are generated here with OpenSSL; normal
 * tokens are signed with cjose_jws_sign(), hostile ones by hand so that
 * their bytes (duplicate members, odd types, bad encodings) are exact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <cjose/cjose.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eid/eid_jwt.h"

#define ISS "https://op.example.se"
#define AUD "api://incident"
#define NOW_S 1700000000LL

static apr_pool_t *pool;
static EVP_PKEY *rsa1, *rsa2, *ec1, *ec384, *attacker;
static char tmpdir[64];
static eid_jwks_t *ks;
static eid_jwt_rules_t rules;
static const char *audiences[] = {"api://other", AUD};
static const apr_time_t now = (apr_time_t)NOW_S * APR_USEC_PER_SEC;

/* ---- helpers ------------------------------------------------------------------ */

static char *b64u(apr_pool_t *p, const unsigned char *d, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = apr_palloc(p, n * 4 / 3 + 4), *o = out;
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

static char *b64s(const char *s)
{
    return b64u(pool, (const unsigned char *)s, strlen(s));
}

static char *bn_b64(EVP_PKEY *k, const char *param, size_t pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64u(pool, buf, (size_t)n);
}

static size_t coord(EVP_PKEY *k)
{
    return (size_t)(EVP_PKEY_get_bits(k) + 7) / 8;
}

/* The public JWK of `k`, with kid and alg when non-NULL, plus `extra`. */
static char *jwk(EVP_PKEY *k, const char *kid, const char *alg, const char *extra)
{
    char *s;
    if (EVP_PKEY_is_a(k, "RSA"))
        s = apr_psprintf(pool, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"",
                         bn_b64(k, OSSL_PKEY_PARAM_RSA_N, 0), bn_b64(k, OSSL_PKEY_PARAM_RSA_E, 0));
    else
        s = apr_psprintf(pool, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"",
                         EVP_PKEY_get_bits(k) == 256 ? "P-256" : EVP_PKEY_get_bits(k) == 384
                                                                    ? "P-384" : "P-521",
                         bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, coord(k)),
                         bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, coord(k)));
    if (kid)
        s = apr_psprintf(pool, "%s,\"kid\":\"%s\"", s, kid);
    if (alg)
        s = apr_psprintf(pool, "%s,\"alg\":\"%s\"", s, alg);
    return apr_psprintf(pool, "%s%s}", s, extra ? extra : "");
}

/* The private JWK of `k` (for cjose). */
static char *jwk_priv(EVP_PKEY *k, const char *kid)
{
    char *pub = jwk(k, kid, NULL, NULL);
    pub[strlen(pub) - 1] = '\0';
    if (EVP_PKEY_is_a(k, "RSA"))
        return apr_psprintf(pool, "%s,\"d\":\"%s\",\"p\":\"%s\",\"q\":\"%s\",\"dp\":\"%s\","
                            "\"dq\":\"%s\",\"qi\":\"%s\"}", pub,
                            bn_b64(k, OSSL_PKEY_PARAM_RSA_D, 0),
                            bn_b64(k, OSSL_PKEY_PARAM_RSA_FACTOR1, 0),
                            bn_b64(k, OSSL_PKEY_PARAM_RSA_FACTOR2, 0),
                            bn_b64(k, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0),
                            bn_b64(k, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0),
                            bn_b64(k, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0));
    return apr_psprintf(pool, "%s,\"d\":\"%s\"}", pub,
                        bn_b64(k, OSSL_PKEY_PARAM_PRIV_KEY, coord(k)));
}

static const EVP_MD *md_of(const char *alg)
{
    return strstr(alg, "384") ? EVP_sha384() : strstr(alg, "512") ? EVP_sha512() : EVP_sha256();
}

/* Signature of `input` with `k` for `alg`, base64url. */
static char *sign(EVP_PKEY *k, const char *alg, const char *input)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[1024], raw[200];
    size_t n = sizeof(sig);

    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md_of(alg), NULL, k), 1);
    if (alg[0] == 'P') {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, (const unsigned char *)input,
                                    strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    if (alg[0] == 'E') {
        const unsigned char *q = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)n);
        size_t c = coord(k);
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(es, &r, &s);
        BN_bn2binpad(r, raw, (int)c);
        BN_bn2binpad(s, raw + c, (int)c);
        ECDSA_SIG_free(es);
        return b64u(pool, raw, 2 * c);
    }
    return b64u(pool, sig, n);
}

/* hdr and payload are JSON texts, taken byte for byte. */
static char *tok(EVP_PKEY *k, const char *alg, const char *hdr, const char *payload)
{
    char *input = apr_pstrcat(pool, b64s(hdr), ".", b64s(payload), NULL);
    return apr_pstrcat(pool, input, ".", sign(k, alg, input), NULL);
}

/* Standard claims with `extra` members appended. */
static char *claims(const char *extra)
{
    return apr_psprintf(pool, "{\"iss\":\"" ISS "\",\"sub\":\"u1\",\"aud\":\"" AUD "\","
                        "\"exp\":%" APR_INT64_T_FMT ",\"iat\":%" APR_INT64_T_FMT "%s%s}",
                        (apr_int64_t)(NOW_S + 300), (apr_int64_t)(NOW_S - 10),
                        extra ? "," : "", extra ? extra : "");
}

/* Claims built from scratch. */
static char *claims_only(const char *members)
{
    return apr_psprintf(pool, "{%s}", members);
}

static char *hdr(const char *alg, const char *kid)
{
    return apr_psprintf(pool, "{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", alg, kid);
}

static int validate(const char *t)
{
    eid_jwt_t *jwt;
    eid_result_t res = {0};
    int rc = eid_jwt_validate(pool, t, strlen(t), EID_JWT_DEFAULT_MAX_SIZE, &rules, ks, now,
                              &jwt, &res);
    if (rc) {
        assert_non_null(res.tag);
        assert_int_equal(atoi(res.tag + 3), rc);
        assert_non_null(res.reason);
        /* never the token or a piece of it */
        assert_null(strstr(res.reason, "eyJ"));
    }
    else {
        assert_non_null(jwt);
    }
    return rc;
}

static int setup(void **state)
{
    char path[128];
    FILE *f;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rsa1 = EVP_RSA_gen(2048);
    rsa2 = EVP_RSA_gen(2048);
    attacker = EVP_RSA_gen(2048);
    ec1 = EVP_EC_gen("P-256");
    ec384 = EVP_EC_gen("P-384");
    assert_non_null(rsa1);
    assert_non_null(ec384);
    strcpy(tmpdir, "/tmp/eid_test_jwt.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(path, sizeof(path), "%s/jwks.json", tmpdir);
    f = fopen(path, "w");
    fprintf(f, "{\"keys\":[%s,%s,%s,%s]}", jwk(rsa1, "rsa1", "RS256", ",\"use\":\"sig\""),
            jwk(rsa2, "rsa2", NULL, NULL), jwk(ec1, "ec1", "ES256", NULL),
            jwk(ec384, "ec384", NULL, NULL));
    fclose(f);
    {
        eid_jwks_conf_t c;
        eid_result_t res;
        memset(&c, 0, sizeof(c));
        c.name = "test";
        c.issuer = ISS;
        c.jwks_file = path;
        c.refresh = apr_time_from_sec(3600);
        c.min_refetch = apr_time_from_sec(60);
        c.max_stale = apr_time_from_sec(21600);
        eid_http_opts_default(&c.http);
        ks = eid_jwks_create(pool, &c);
        assert_int_equal(eid_jwks_refresh(ks, pool, now, &res), APR_SUCCESS);
    }
    return 0;
}

static int teardown(void **state)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/jwks.json", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    apr_pool_destroy(pool);
    EVP_PKEY_free(rsa1);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(attacker);
    EVP_PKEY_free(ec1);
    EVP_PKEY_free(ec384);
    apr_terminate();
    return 0;
}

static int reset_rules(void **state)
{
    eid_jwt_rules_default(&rules);
    rules.issuer = ISS;
    rules.audiences = audiences;
    rules.naudiences = 2;
    rules.algs = EID_JWS_ALG_BIT(EID_JWS_RS256) | EID_JWS_ALG_BIT(EID_JWS_ES256) |
                 EID_JWS_ALG_BIT(EID_JWS_PS256) | EID_JWS_ALG_BIT(EID_JWS_ES384);
    return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_cjose_signed(void **state)
{
    cjose_err err;
    cjose_jwk_t *k;
    cjose_header_t *h;
    cjose_jws_t *jws;
    const char *ser, *pay;
    eid_jwt_t *jwt;
    eid_result_t res;
    char *pk;
    EVP_PKEY *keys[2] = {rsa1, ec1};
    const char *algs[2] = {"RS256", "ES256"}, *kids[2] = {"rsa1", "ec1"};
    int i;

    for (i = 0; i < 2; i++) {
        pk = jwk_priv(keys[i], kids[i]);
        k = cjose_jwk_import(pk, strlen(pk), &err);
        assert_non_null(k);
        h = cjose_header_new(&err);
        cjose_header_set(h, CJOSE_HDR_ALG, algs[i], &err);
        cjose_header_set(h, CJOSE_HDR_KID, kids[i], &err);
        cjose_header_set(h, "typ", "at+jwt", &err);
        pay = claims("\"scope\":\"a b\"");
        jws = cjose_jws_sign(k, h, (const uint8_t *)pay, strlen(pay), &err);
        assert_non_null(jws);
        assert_true(cjose_jws_export(jws, &ser, &err));
        assert_int_equal(eid_jwt_validate(pool, ser, strlen(ser), 16384, &rules, ks, now, &jwt,
                                          &res), 0);
        assert_string_equal(jwt->iss, ISS);
        assert_int_equal(jwt->alg, i == 0 ? EID_JWS_RS256 : EID_JWS_ES256);
        assert_int_equal(jwt->kid_len, strlen(kids[i]));
        cjose_jws_release(jws);
        cjose_header_release(h);
        cjose_jwk_release(k);
    }
}

static void test_valid_variants(void **state)
{
    /* PS256 with rsa2 (no alg of its own) */
    assert_int_equal(validate(tok(rsa2, "PS256", hdr("PS256", "rsa2"), claims(NULL))), 0);
    /* P-384 key with ES384 */
    assert_int_equal(validate(tok(ec384, "ES384", hdr("ES384", "ec384"), claims(NULL))), 0);
    /* aud as an array containing ours */
    assert_int_equal(validate(tok(rsa1, "RS256", hdr("RS256", "rsa1"),
                                  claims_only("\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" AUD "\"],"
                                              "\"exp\":1700000300"))), 0);
    /* typ absent, typ in another case, typ JWT */
    assert_int_equal(validate(tok(rsa1, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
                                  claims(NULL))), 0);
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"AT+JWT\"}",
                                  claims(NULL))), 0);
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"JWT\"}",
                                  claims(NULL))), 0);
    /* unknown header members and jku/x5u/jwk/x5c are ignored when the
     * signature is by our key */
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"x-foo\":1,"
                                  "\"jku\":\"https://evil.example/jwks\"}", claims(NULL))), 0);
    /* no kid: tried against the keys that fit */
    assert_int_equal(validate(tok(rsa2, "RS256", "{\"alg\":\"RS256\"}", claims(NULL))), 0);
    assert_int_equal(validate(tok(ec1, "ES256", "{\"alg\":\"ES256\"}", claims(NULL))), 0);
}

static void test_alg_rules(void **state)
{
    char *in, *t;
    unsigned char mac[64];
    unsigned int maclen;
    BIO *bio;
    char *pem;
    long pemlen;

    /* alg none, empty signature */
    in = apr_pstrcat(pool, b64s("{\"alg\":\"none\",\"typ\":\"at+jwt\"}"), ".",
                     b64s(claims(NULL)), ".", NULL);
    assert_int_equal(validate(in), 3111);
    /* none with some signature, and case variants are unknown algs */
    assert_int_equal(validate(apr_pstrcat(pool, in, "AAAA", NULL)), 3111);
    assert_int_equal(validate(tok(rsa1, "RS256", hdr("None", "rsa1"), claims(NULL))), 3113);
    /* HS256 with the RSA public key PEM as the HMAC secret */
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, rsa1);
    pemlen = BIO_get_mem_data(bio, &pem);
    in = apr_pstrcat(pool, b64s(hdr("HS256", "rsa1")), ".", b64s(claims(NULL)), NULL);
    HMAC(EVP_sha256(), pem, (int)pemlen, (const unsigned char *)in, strlen(in), mac, &maclen);
    t = apr_pstrcat(pool, in, ".", b64u(pool, mac, maclen), NULL);
    BIO_free(bio);
    assert_int_equal(validate(t), 3112);
    /* HS* stay refused even if a caller put them into the allow-list */
    rules.algs |= EID_JWS_ALG_BIT(EID_JWS_HMAC);
    assert_int_equal(validate(t), 3112);
    reset_rules(NULL);
    /* unknown alg with an RS256 signature */
    assert_int_equal(validate(tok(rsa1, "RS256", hdr("XS256", "rsa1"), claims(NULL))), 3113);
    /* alg missing, not a string */
    assert_int_equal(validate(tok(rsa1, "RS256", "{\"kid\":\"rsa1\"}", claims(NULL))), 3110);
    assert_int_equal(validate(tok(rsa1, "RS256", "{\"alg\":256,\"kid\":\"rsa1\"}",
                                  claims(NULL))), 3110);
    /* a valid alg that this provider does not allow */
    rules.algs = EID_JWS_ALG_BIT(EID_JWS_RS256);
    assert_int_equal(validate(tok(rsa2, "PS256", hdr("PS256", "rsa2"), claims(NULL))), 3114);
    reset_rules(NULL);
    /* kid of the RSA key, alg and signature of the EC key */
    assert_int_equal(validate(tok(ec1, "ES256", hdr("ES256", "rsa1"), claims(NULL))), 3202);
    /* kid of the EC key, RS256 by the RSA key */
    assert_int_equal(validate(tok(rsa1, "RS256", hdr("RS256", "ec1"), claims(NULL))), 3202);
    /* rsa1 is bound to RS256: PS256 by the same key is refused */
    assert_int_equal(validate(tok(rsa1, "PS256", hdr("PS256", "rsa1"), claims(NULL))), 3203);
    /* ES384 with the P-256 key's kid: wrong curve */
    assert_int_equal(validate(tok(ec384, "ES384", hdr("ES384", "ec1"), claims(NULL))), 3202);
    /* no kid, and no key for ES512 */
    rules.algs |= EID_JWS_ALG_BIT(EID_JWS_ES512);
    assert_int_equal(validate(tok(ec1, "ES256", "{\"alg\":\"ES512\"}", claims(NULL))), 3206);
}

static void test_kid_and_foreign_keys(void **state)
{
    /* unknown kid (throttled refetch of the same file does not help) */
    assert_int_equal(validate(tok(rsa1, "RS256", hdr("RS256", "nope"), claims(NULL))), 3201);
    /* kid is only data: path and CRLF in it */
    assert_int_equal(validate(tok(rsa1, "RS256", hdr("RS256", "../../etc/passwd\\r\\nX: y"),
                                  claims(NULL))), 3201);
    /* kid with an escaped NUL: jansson refuses the header */
    assert_int_equal(validate(tok(rsa1, "RS256", hdr("RS256", "rsa1\\u0000x"), claims(NULL))),
                     3106);
    /* kid not a string */
    assert_int_equal(validate(tok(rsa1, "RS256", "{\"alg\":\"RS256\",\"kid\":1}", claims(NULL))),
                     3115);
    /* attacker key announced in jwk / jku / x5u / x5c, attacker's kid */
    assert_int_equal(validate(tok(attacker, "RS256",
                                  apr_psprintf(pool, "{\"alg\":\"RS256\",\"kid\":\"att\","
                                               "\"jwk\":%s}", jwk(attacker, "att", NULL, NULL)),
                                  claims(NULL))), 3201);
    assert_int_equal(validate(tok(attacker, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"att\",\"jku\":\"https://a/j\"}",
                                  claims(NULL))), 3201);
    /* ... with our kid, or no kid at all: the signature does not verify */
    assert_int_equal(validate(tok(attacker, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"x5u\":\"https://a/c\"}",
                                  claims(NULL))), 3205);
    assert_int_equal(validate(tok(attacker, "RS256",
                                  apr_psprintf(pool, "{\"alg\":\"RS256\",\"jwk\":%s}",
                                               jwk(attacker, NULL, NULL, NULL)),
                                  claims(NULL))), 3205);
    assert_int_equal(validate(tok(attacker, "RS256",
                                  "{\"alg\":\"RS256\",\"x5c\":[\"MIIB\"]}", claims(NULL))),
                     3205);
}

static void test_header_rules(void **state)
{
    /* crit: any name, even a header that is present, and malformed crit */
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"x-u\"],"
                                  "\"x-u\":true}", claims(NULL))), 3116);
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"exp\"]}",
                                  claims(NULL))), 3116);
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[]}",
                                  claims(NULL))), 3116);
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":\"b64\"}",
                                  claims(NULL))), 3116);
    /* typ */
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":7}", claims(NULL))),
                     3118);
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"logout+jwt\"}",
                                  claims(NULL))), 3119);
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"\"}",
                                  claims(NULL))), 3119);
    rules.typ_absent_ok = 0;
    assert_int_equal(validate(tok(rsa1, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
                                  claims(NULL))), 3119);
    reset_rules(NULL);
    /* duplicate header member */
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"alg\":\"RS256\"}",
                                  claims(NULL))), 3107);
    /* not a JSON object */
    assert_int_equal(validate(tok(rsa1, "RS256", "[\"RS256\"]", claims(NULL))), 3106);
    assert_int_equal(validate(tok(rsa1, "RS256", "{\"alg\":\"RS256\"", claims(NULL))), 3106);
    assert_int_equal(validate(tok(rsa1, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"} x",
                                  claims(NULL))), 3106);
}

static void test_id_token(void **state)
{
    const char *h = hdr("RS256", "rsa1");
    assert_int_equal(validate(tok(rsa1, "RS256", h, claims("\"nonce\":\"n\""))), 3120);
    assert_int_equal(validate(tok(rsa1, "RS256", h, claims("\"nonce\":null"))), 3120);
    assert_int_equal(validate(tok(rsa1, "RS256", h, claims("\"at_hash\":\"x\""))), 3120);
    assert_int_equal(validate(tok(rsa1, "RS256", h, claims("\"c_hash\":\"x\""))), 3120);
    assert_int_equal(validate(tok(rsa1, "RS256", h, claims("\"s_hash\":\"x\""))), 3120);
    assert_int_equal(validate(tok(rsa1, "RS256", h, claims("\"typ\":\"ID\""))), 3120);
    /* an ID token whose aud also holds ours, header typ JWT */
    assert_int_equal(validate(tok(rsa1, "RS256",
                                  "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"JWT\"}",
                                  claims_only("\"iss\":\"" ISS "\",\"aud\":[\"portal\",\"" AUD
                                              "\"],\"exp\":1700000300,\"nonce\":\"abc\","
                                              "\"at_hash\":\"q\",\"azp\":\"portal\""))), 3120);
    /* Keycloak's access tokens say typ Bearer: fine */
    assert_int_equal(validate(tok(rsa1, "RS256", h, claims("\"typ\":\"Bearer\",\"azp\":\"p\""))),
                     0);
}

static void test_iss_aud(void **state)
{
    const char *h = hdr("RS256", "rsa1");
#define C(m) claims_only("\"exp\":1700000300," m)
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"aud\":\"" AUD "\""))), 3301);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":[\"" ISS "\"],\"aud\":\"" AUD
                                                      "\""))), 3301);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":null,\"aud\":\"" AUD "\""))),
                     3301);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"https://evil\",\"aud\":\""
                                                      AUD "\""))), 3302);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "/\",\"aud\":\"" AUD
                                                      "\""))), 3302);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "/tenant2\",\"aud\":\""
                                                      AUD "\""))), 3302);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"HTTPS://op.example.se\","
                                                      "\"aud\":\"" AUD "\""))), 3302);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\""))), 3303);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\",\"aud\":7"))), 3304);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\",\"aud\":null"))),
                     3304);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\",\"aud\":[\"" AUD
                                                      "\",7]"))), 3304);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\",\"aud\":[[\"" AUD
                                                      "\"]]"))), 3304);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\",\"aud\":{\"a\":\""
                                                      AUD "\"}"))), 3304);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\",\"aud\":\"api://x\""))),
                     3305);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\",\"aud\":[]"))), 3305);
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\",\"aud\":\"" AUD
                                                      "/\""))), 3305);
    /* the second configured audience matches too */
    assert_int_equal(validate(tok(rsa1, "RS256", h, C("\"iss\":\"" ISS "\",\"aud\":\"api://other\""))),
                     0);
#undef C
}

static void test_times(void **state)
{
    const char *h = hdr("RS256", "rsa1");
#define T(m) claims_only("\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"," m)
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"sub\":\"x\""))), 3306);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":\"9999999999\""))), 3307);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1e300"))), 3307);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000300.0"))), 3307);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000300.5"))), 3307);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":true"))), 3307);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":null"))), 3307);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":[1700000300]"))), 3307);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":0"))), 3308);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":-5"))), 3308);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1099511627776"))), 3308);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1099511627775"))), 0);
    /* too big for a 64-bit integer: jansson refuses the payload */
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":99999999999999999999999"))),
                     3108);
    /* expiry with the 60 s leeway: exp + 60 > now */
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1699999940"))), 3309);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1699999941"))), 0);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1699996400"))), 3309);
    /* nbf */
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000300,\"nbf\":\"1\""))),
                     3310);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000300,\"nbf\":1.0"))), 3310);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000300,\"nbf\":0"))), 3311);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700009999,\"nbf\":1700000061"))),
                     3312);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700009999,\"nbf\":1700000060"))),
                     0);
    /* iat */
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000300,\"iat\":\"x\""))),
                     3313);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000300,\"iat\":-1"))), 3314);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700009999,\"iat\":1700003600"))),
                     3315);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700009999,\"iat\":1700000060"))),
                     0);
    /* leeway 0 */
    rules.leeway = 0;
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000000"))), 3309);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000001"))), 0);
    assert_int_equal(validate(tok(rsa1, "RS256", h, T("\"exp\":1700000300,\"nbf\":1700000001"))),
                     3312);
#undef T
}

static void test_payload_json(void **state)
{
    const char *h = hdr("RS256", "rsa1");
    char *p2 = claims(NULL);
    /* duplicate exp (both in the future) */
    p2[strlen(p2) - 1] = '\0';
    assert_int_equal(validate(tok(rsa1, "RS256", h,
                                  apr_pstrcat(pool, p2, ",\"exp\":1700000900}", NULL))), 3109);
    assert_int_equal(validate(tok(rsa1, "RS256", h,
                                  apr_pstrcat(pool, p2, ",\"iss\":\"" ISS "\"}", NULL))), 3109);
    /* trailing garbage, arrays, scalars, invalid UTF-8 */
    assert_int_equal(validate(tok(rsa1, "RS256", h,
                                  apr_pstrcat(pool, claims(NULL), " {\"sub\":\"a\"} junk", NULL))),
                     3108);
    assert_int_equal(validate(tok(rsa1, "RS256", h, "[1,2]")), 3108);
    assert_int_equal(validate(tok(rsa1, "RS256", h, "\"x\"")), 3108);
    assert_int_equal(validate(tok(rsa1, "RS256", h, "{\"iss\":\"\xff\"}")), 3108);
}

static void test_structure(void **state)
{
    char *good = tok(rsa1, "RS256", hdr("RS256", "rsa1"), claims(NULL));
    char *dot1 = strchr(good, '.'), *dot2 = strrchr(good, '.');
    char *t;
    eid_jwt_t *jwt;
    eid_result_t res;
    size_t n = strlen(good);
    int rc;

    assert_int_equal(validate(good), 0);
    /* size cap first: one byte over the limit, whatever the content */
    assert_int_equal(eid_jwt_parse(pool, good, n, n - 1, &jwt, &res), 3003);
    assert_string_equal(res.tag, "EID03003");
    assert_int_equal(eid_jwt_parse(pool, "x", 1, 0, &jwt, &res), 3003);
    /* segments */
    assert_int_equal(validate(".."), 3102);
    assert_int_equal(validate(""), 3101);
    assert_int_equal(validate("abc"), 3101);
    assert_int_equal(validate("abc.def"), 3101);
    assert_int_equal(validate(apr_pstrcat(pool, good, ".", NULL)), 3101);
    assert_int_equal(validate(apr_pstrcat(pool, good, ".AAAA.BBBB", NULL)), 3101);
    t = apr_pstrdup(pool, good);
    t[dot1 - good + 1] = '\0'; /* header.  */
    assert_int_equal(validate(apr_pstrcat(pool, t, ".sig", NULL)), 3102);
    /* flattened JSON serialization */
    assert_int_equal(validate("{\"protected\":\"eyJ\",\"payload\":\"e30\",\"signature\":\"\"}"),
                     3101);
    /* base64url: alphabet, padding, 4k+1 length, non-canonical last char */
    t = apr_pstrdup(pool, good);
    t[1] = '*';
    assert_int_equal(validate(t), 3103);
    t = apr_pstrdup(pool, good);
    t[(dot1 - good) + 5] = '+';
    assert_int_equal(validate(t), 3104);
    assert_int_equal(validate(apr_pstrcat(pool, good, "=", NULL)), 3105);
    t = apr_pstrdup(pool, good);
    t[(dot2 - good) + 3] = '/';
    assert_int_equal(validate(t), 3105);
    t = apr_pstrndup(pool, good, (apr_size_t)(dot2 - good));
    assert_int_equal(validate(apr_pstrcat(pool, t, ".AAAAA", NULL)), 3105);
    /* "e30" is "{}": "e31" decodes the same bytes with a non-zero pad bit */
    assert_int_equal(validate(apr_pstrcat(pool, b64s(hdr("RS256", "rsa1")), ".e31.AAAA", NULL)),
                     3104);
    assert_int_equal(validate(apr_pstrcat(pool, "eyJ.", b64s(claims(NULL)), ".AAAA", NULL)),
                     3103);
    /* empty signature with a real alg */
    t = apr_pstrndup(pool, good, (apr_size_t)(dot2 - good) + 1);
    assert_int_equal(validate(t), 3117);
    /* truncated signature: wrong length for the key, refused before crypto */
    t = apr_pstrndup(pool, good, (apr_size_t)(dot2 - good) + 1 + 168);
    assert_int_equal(validate(t), 3204);
    /* cut at an odd place the last character usually has stray bits */
    t = apr_pstrndup(pool, good, (apr_size_t)(dot2 - good) + 1 + 171);
    rc = validate(t);
    assert_true(rc == 3204 || rc == 3105);
    /* flipped signature bits */
    t = apr_pstrdup(pool, good);
    t[(dot2 - good) + 10] = t[(dot2 - good) + 10] == 'A' ? 'B' : 'A';
    assert_int_equal(validate(t), 3205);
    /* payload changed after signing */
    t = tok(rsa1, "RS256", hdr("RS256", "rsa1"), claims(NULL));
    dot2 = strrchr(t, '.');
    assert_int_equal(validate(apr_pstrcat(pool, b64s(hdr("RS256", "rsa1")), ".",
                                          b64s(claims("\"admin\":true")), dot2, NULL)), 3205);
    /* ES256 signature of a wrong length (DER instead of raw) */
    t = apr_pstrcat(pool, b64s(hdr("ES256", "ec1")), ".", b64s(claims(NULL)), ".",
                    b64u(pool, (const unsigned char *)"0123456789012345678901234567890123456789"
                                                      "0123456789012345678901234567890", 71),
                    NULL);
    assert_int_equal(validate(t), 3204);
}

static void test_rules_default(void **state)
{
    eid_jwt_rules_t r;
    eid_jwt_rules_default(&r);
    assert_int_equal(r.algs, EID_JWS_ALG_BIT(EID_JWS_RS256));
    assert_int_equal(r.ntypes, 3);
    assert_int_equal(r.typ_absent_ok, 1);
    assert_true(r.leeway == apr_time_from_sec(60));
    assert_int_equal(eid_jwks_alg_parse("RS256", 5), EID_JWS_RS256);
    assert_int_equal(eid_jwks_alg_parse("RS2560", 6), EID_JWS_UNKNOWN);
    assert_int_equal(eid_jwks_alg_parse("RS25", 4), EID_JWS_UNKNOWN);
    assert_int_equal(eid_jwks_alg_parse("HS512", 5), EID_JWS_HMAC);
    assert_int_equal(eid_jwks_alg_parse("none", 4), EID_JWS_NONE);
    assert_int_equal(eid_jwks_alg_parse("NONE", 4), EID_JWS_UNKNOWN);
    assert_string_equal(eid_jwks_alg_name(EID_JWS_ES384), "ES384");
}

static void test_numeric_date(void **state)
{
    json_t *c = json_pack("{s:I, s:s, s:f, s:I, s:I}", "a", (json_int_t)5, "b", "5", "c", 5.0,
                          "d", (json_int_t)0, "e", (json_int_t)EID_JWT_MAX_TIME);
    apr_int64_t t = 0;
    assert_int_equal(eid_jwt_numeric_date(c, "a", &t), 1);
    assert_int_equal((int)t, 5);
    assert_int_equal(eid_jwt_numeric_date(c, "b", &t), -1);
    assert_int_equal(eid_jwt_numeric_date(c, "c", &t), -1);
    assert_int_equal(eid_jwt_numeric_date(c, "d", &t), -2);
    assert_int_equal(eid_jwt_numeric_date(c, "e", &t), -2);
    assert_int_equal(eid_jwt_numeric_date(c, "z", &t), 0);
    json_decref(c);
}

/* The strict JSON reader: same answers as jansson, with the two documented
 * differences. */
static void test_json_reader(void **state)
{
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        int ok;
    } t[] = {
        {"{}", 0, 1},
        {" \t\r\n{ } \n", 0, 1},
        {"{\"a\":[1,-0,0.5,-1.5e+3,2E-2,true,false,null,{},[]],\"b\":{\"c\":\"d\"}}", 0, 1},
        {"{\"e\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e5\\ud83d\\ude00\"}", 0, 1},
        {"{\"i\":9223372036854775807,\"j\":-9223372036854775808}", 0, 1},
        {"{\"\xc3\xa5\xe2\x82\xac\xf0\x9f\x98\x80\":1}", 0, 1},
        {"{\"\":1}", 0, 1},
        {"[]", 0, 0},
        {"\"x\"", 0, 0},
        {"", 0, 0},
        {"{", 0, 0},
        {"{\"a\"}", 0, 0},
        {"{\"a\":}", 0, 0},
        {"{\"a\":1,}", 0, 0},
        {"{,}", 0, 0},
        {"{a:1}", 0, 0},
        {"{'a':1}", 0, 0},
        {"{\"a\":01}", 0, 0},
        {"{\"a\":1.}", 0, 0},
        {"{\"a\":.5}", 0, 0},
        {"{\"a\":1e}", 0, 0},
        {"{\"a\":+1}", 0, 0},
        {"{\"a\":-}", 0, 0},
        {"{\"a\":NaN}", 0, 0},
        {"{\"a\":Infinity}", 0, 0},
        {"{\"a\":1e400}", 0, 0},
        {"{\"a\":9223372036854775808}", 0, 0},
        {"{\"a\":-9223372036854775809}", 0, 0},
        {"{\"a\":tru}", 0, 0},
        {"{\"a\":\"\\u0000\"}", 0, 0},
        {"{\"a\":\"\\ud800\"}", 0, 0},
        {"{\"a\":\"\\udc00\"}", 0, 0},
        {"{\"a\":\"\\ud800\\u0041\"}", 0, 0},
        {"{\"a\":\"\\x41\"}", 0, 0},
        {"{\"a\":\"\\u12g4\"}", 0, 0},
        {"{\"a\":\"\t\"}", 0, 0},
        {"{\"a\":\"\xc3\"}", 0, 0},
        {"{\"a\":\"\xc0\xaf\"}", 0, 0},
        {"{\"a\":\"\xed\xa0\x80\"}", 0, 0},
        {"{\"a\":\"\xf4\x90\x80\x80\"}", 0, 0},
        {"{\"a\":\"\xff\"}", 0, 0},
        {"{\"a\":1} {}", 0, 0},
        {"{\"a\":1}x", 0, 0},
        {"{\"a\":1\0}", 8, 0},
        {"{\"a\":\"x\0\"}", 9, 0},
        {"{} \0", 4, 0},
    };
    size_t i;
    int dup;
    char deep[300];
    json_t *j;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = t[i].len ? t[i].len : strlen(t[i].text);
        j = eid_jwt_json_object(t[i].text, n, &dup);
        if (!!j != t[i].ok)
            fail_msg("case %d: expected %s", (int)i, t[i].ok ? "accept" : "refuse");
        assert_int_equal(dup, 0);
        json_decref(j);
    }
    j = eid_jwt_json_object("{\"a\":[{\"b\":1,\"b\":2}]}", 21, &dup);
    assert_null(j);
    assert_int_equal(dup, 1);
    {
        const char *v = "{\"i\":-0,\"r\":1.25,\"s\":\"\\u00e5\"}";
        j = eid_jwt_json_object(v, strlen(v), &dup);
    }
    assert_non_null(j);
    assert_true(json_is_integer(json_object_get(j, "i")));
    assert_int_equal(json_integer_value(json_object_get(j, "i")), 0);
    assert_true(json_real_value(json_object_get(j, "r")) == 1.25);
    assert_string_equal(json_string_value(json_object_get(j, "s")), "\xc3\xa5");
    json_decref(j);
    /* nesting: 64 containers in all are fine, 65 are not */
    strcpy(deep, "{\"a\":");
    for (i = 0; i < 63; i++)
        strcat(deep, "[");
    for (i = 0; i < 63; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    j = eid_jwt_json_object(deep, strlen(deep), &dup);
    assert_non_null(j);
    json_decref(j);
    strcpy(deep, "{\"a\":");
    for (i = 0; i < 64; i++)
        strcat(deep, "[");
    for (i = 0; i < 64; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    j = eid_jwt_json_object(deep, strlen(deep), &dup);
    assert_null(j);
    assert_int_equal(dup, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_cjose_signed, reset_rules),
        cmocka_unit_test_setup(test_valid_variants, reset_rules),
        cmocka_unit_test_setup(test_alg_rules, reset_rules),
        cmocka_unit_test_setup(test_kid_and_foreign_keys, reset_rules),
        cmocka_unit_test_setup(test_header_rules, reset_rules),
        cmocka_unit_test_setup(test_id_token, reset_rules),
        cmocka_unit_test_setup(test_iss_aud, reset_rules),
        cmocka_unit_test_setup(test_times, reset_rules),
        cmocka_unit_test_setup(test_payload_json, reset_rules),
        cmocka_unit_test_setup(test_structure, reset_rules),
        cmocka_unit_test(test_rules_default),
        cmocka_unit_test(test_numeric_date),
        cmocka_unit_test(test_json_reader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
