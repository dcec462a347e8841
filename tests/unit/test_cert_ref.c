/*
 * Unit test: how a refused certificate is named in logs and audit records
 * (eid_cert_ref_pem()) when its names are hostile.  Certificates are made here
 * with OpenSSL, self-signed (as a client can present one that mod_ssl did not
 * verify: EID01002).  Nowhere in issuer, subject or serial may a personnummer
 * or samordningsnummer stand in clear, in any spelling; a DN is cut at
 * EID_CERT_REF_DN_MAX bytes on a UTF-8 boundary.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "eid/eid_cert.h"
#include "eid/eid_identity.h"

static apr_pool_t *pool;
static EVP_PKEY *key;
static const unsigned char pkey[32] = "0123456789abcdef0123456789abcde";

/* Luhn over the last 10 of 12 digits, computed here (an independent oracle):
 * writes the check digit into d[11]. */
static void luhn_fix(char d[13])
{
    int i, sum = 0;
    for (i = 0; i < 9; i++) {
        int v = (d[2 + i] - '0') * (i % 2 == 0 ? 2 : 1);
        sum += v > 9 ? v - 9 : v;
    }
    d[11] = (char)('0' + (10 - sum % 10) % 10);
    d[12] = '\0';
}

typedef struct {
    int nid;
    const char *v;
} ent_t;

/* A self-signed certificate with subject = issuer = `ent` (up to 8), PEM. */
static const char *make(const ent_t *ent, long serial, size_t *len)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long l;
    const char *pem;
    int i;

    for (i = 0; i < 8 && ent[i].v; i++)
        assert_int_equal(X509_NAME_add_entry_by_NID(n, ent[i].nid, MBSTRING_UTF8,
                                                    (const unsigned char *)ent[i].v, -1,
                                                    -1, 0), 1);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    PEM_write_bio_X509(b, x);
    l = BIO_get_mem_data(b, &data);
    pem = apr_pstrmemdup(pool, data, (apr_size_t)l);
    *len = (size_t)l;
    BIO_free(b);
    X509_NAME_free(n);
    X509_free(x);
    return pem;
}

/* No spelling of the 12-digit `p` in `s`. */
static void no_pnr(const char *what, const char *s, const char *p)
{
    char f[8][16];
    int i;
    if (!s)
        return;
    snprintf(f[0], sizeof(f[0]), "%s", p);
    snprintf(f[1], sizeof(f[1]), "%.8s-%s", p, p + 8);
    snprintf(f[2], sizeof(f[2]), "%.6s-%s", p + 2, p + 8);
    snprintf(f[3], sizeof(f[3]), "%.6s+%s", p + 2, p + 8);
    snprintf(f[4], sizeof(f[4]), "%s", p + 2);
    snprintf(f[5], sizeof(f[5]), "%.8s %s", p, p + 8);
    snprintf(f[6], sizeof(f[6]), "%.6s %s", p + 2, p + 8);
    snprintf(f[7], sizeof(f[7]), "%.8s+%s", p, p + 8);
    for (i = 0; i < 8; i++)
        if (strstr(s, f[i]))
            fail_msg("%s: \"%s\" holds %s", what, s, f[i]);
}

static void check(const char *what, const ent_t *ent, const char *pnr)
{
    size_t n;
    const char *pem = make(ent, 4711, &n);
    eid_cert_ref_t ref;
    assert_int_equal(eid_cert_ref_pem(pool, pem, n, pkey, sizeof(pkey), &ref), 0);
    no_pnr(what, ref.issuer, pnr);
    no_pnr(what, ref.subject, pnr);
    no_pnr(what, ref.serial, pnr);
    assert_int_equal(eid_cert_ref_pem(pool, pem, n, NULL, 0, &ref), 0);
    no_pnr(what, ref.issuer, pnr);
    no_pnr(what, ref.subject, pnr);
}

static void test_hostile_subjects(void **state)
{
    char coord[13] = "19850377123";
    const char *pnr = "198503171236";
    (void)state;
    luhn_fix(coord);
    {   /* an HSA-ID in serialNumber, the personnummer in the CN */
        ent_t e[] = {{NID_commonName, "Anna Andersson 198503171236"},
                     {NID_serialNumber, "SE2321000016-1234"}, {0, NULL}};
        check("hsa+cn", e, pnr);
    }
    {   /* no serialNumber at all; the number in CN and OU, several spellings */
        ent_t e[] = {{NID_commonName, "Anna 850317-1236"},
                     {NID_organizationalUnitName, "19850317 1236"},
                     {NID_organizationName, "x8503171236y"}, {0, NULL}};
        check("no serial", e, pnr);
    }
    {   /* a samordningsnummer in serialNumber, repeated short in the CN */
        char cn[64];
        ent_t e[] = {{NID_commonName, cn}, {NID_serialNumber, coord}, {0, NULL}};
        snprintf(cn, sizeof(cn), "Bo %.6s-%s", coord + 2, coord + 8);
        check("coord", e, coord);
    }
    {   /* ETSI form, and two serialNumbers (the pnr, then an HSA-ID) */
        ent_t e[] = {{NID_commonName, "PNOSE-198503171236"},
                     {NID_serialNumber, "PNOSE-198503171236"},
                     {NID_serialNumber, "SE2321000016-1234"}, {0, NULL}};
        check("etsi+two", e, pnr);
    }
    {   /* characters that need RFC 2253 escaping around the number */
        ent_t e[] = {{NID_commonName, "A,=+<>#;\"\\198503171236\\"},
                     {NID_serialNumber, "SE2321000016-1234"}, {0, NULL}};
        check("escapes", e, pnr);
    }
}

/* A long DN is cut to EID_CERT_REF_DN_MAX bytes, never inside a UTF-8
 * sequence, and a number in it is masked before the cut (no half number). */
static void test_long_dn_cut(void **state)
{
    char cn[16], eu[64];
    size_t n, i;
    const char *pem;
    eid_cert_ref_t ref;
    ent_t e[] = {{NID_commonName, cn},
                 {NID_organizationalUnitName, "unit 198503171236 (OU max 64 characters)"},
                 {NID_organizationalUnitName, eu}, {NID_organizationalUnitName, eu},
                 {NID_organizationalUnitName, eu}, {NID_organizationalUnitName, eu},
                 {NID_organizationName, "x 850317-1236"}, {0, NULL}};
    (void)state;
    for (i = 0; i < 20; i++)
        memcpy(eu + 3 * i, "\xe2\x82\xac", 3); /* 3-byte UTF-8 */
    eu[60] = '\0';
    /* a shift of 0..3 bytes puts the cut at every position of a sequence */
    for (int shift = 0; shift < 4; shift++) {
        snprintf(cn, sizeof(cn), "%.*s", shift, "aaa");
        if (!shift)
            snprintf(cn, sizeof(cn), "b");
        pem = make(e, 1, &n);
        assert_int_equal(eid_cert_ref_pem(pool, pem, n, pkey, sizeof(pkey), &ref), 0);
        assert_non_null(ref.subject);
        assert_true(strlen(ref.subject) > EID_CERT_REF_DN_MAX - 8); /* it was cut */
        assert_true(strlen(ref.subject) <= EID_CERT_REF_DN_MAX);
        assert_true(strlen(ref.issuer) <= EID_CERT_REF_DN_MAX);
        no_pnr("long", ref.subject, "198503171236");
        no_pnr("long", ref.issuer, "198503171236");
        /* valid UTF-8: no dangling lead byte before the "..." */
        for (i = 0; ref.subject[i]; i++) {
            unsigned char c = (unsigned char)ref.subject[i];
            size_t k = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0, j;
            for (j = 1; j <= k; j++)
                assert_true(((unsigned char)ref.subject[i + j] & 0xC0) == 0x80);
            i += k;
        }
    }
}

/* A name with organisation numbers and HSA-IDs only is not masked. */
static void test_no_false_alarm(void **state)
{
    size_t n;
    eid_cert_ref_t ref;
    ent_t e[] = {{NID_commonName, "Region 2321000016"},
                 {NID_serialNumber, "SE2321000016-1234"}, {0, NULL}};
    const char *pem = make(e, 2, &n);
    (void)state;
    assert_int_equal(eid_cert_ref_pem(pool, pem, n, pkey, sizeof(pkey), &ref), 0);
    assert_non_null(strstr(ref.subject, "Region 2321000016"));
    assert_non_null(strstr(ref.subject, "SE2321000016-1234"));
}

static int setup(void **state)
{
    (void)state;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    key = EVP_EC_gen("P-256");
    return key ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_subjects),
        cmocka_unit_test(test_long_dn_cut),
        cmocka_unit_test(test_no_false_alarm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
