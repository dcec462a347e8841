/*
 * fuzz_revocation - responder and CRL input: bytes -> eid_ocsp_resp_check()
 * (as the OCSP answer to a fixed request) and -> eid_crl_parse() +
 * eid_crl_check().
 *
 * Each input is tried as it is (mutations almost always break the signature,
 * so this exercises parsing and the signer checks), and, when OpenSSL can
 * parse it, re-signed with the fuzz CA's test-only key (fuzz_cert_ca.key):
 * a basic OCSP response re-signed by the issuer, a CRL re-signed with its
 * issuer name set to the CA's - which carries the mutated certIds, times,
 * nonces, extensions and entries past the signature to every check behind
 * it.  Invariants: a success has a known status and the right source, a
 * failure carries one of our EID05xxx tags with a class, and OpenSSL's
 * error queue is left empty.
 *
 * The CA is found like fuzz_cert's: $EID_FUZZ_DIR, else relative to the
 * binary (build/fuzz/ -> tests/fuzz/), else tests/fuzz/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "eid/eid_revocation.h"

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_revocation: invariant failed: %s (line %d)\n", #c,   \
                    __LINE__);                                                         \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static apr_pool_t *root;
static X509 *ca_cert;
static EVP_PKEY *ca_key;
static eid_ocsp_req_t *req;
static eid_ocsp_opts_t opts;

static void *load(const char *dir, const char *name, int key)
{
    char path[4096];
    FILE *f;
    void *obj;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "r")))
        return NULL;
    obj = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL)
              : (void *)PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return obj;
}

static void teardown(void)
{
    apr_pool_destroy(root);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    apr_terminate();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *env = getenv("EID_FUZZ_DIR"), *dirs[3];
    eid_result_t res = {0};
    char *bin_dir, *slash;
    int i;

    (void)argc;
    apr_initialize();
    apr_pool_create(&root, NULL);
    bin_dir = apr_pstrdup(root, (*argv)[0]);
    slash = strrchr(bin_dir, '/');
    bin_dir = slash ? (*slash = '\0', bin_dir) : (char *)".";
    dirs[0] = env;
    dirs[1] = apr_pstrcat(root, bin_dir, "/../../tests/fuzz", NULL);
    dirs[2] = "tests/fuzz";
    for (i = 0; i < 3 && !ca_cert; i++)
        if (dirs[i] && (ca_cert = load(dirs[i], "fuzz_cert_ca.pem", 0)))
            ca_key = load(dirs[i], "fuzz_cert_ca.key", 1);
    eid_ocsp_opts_default(&opts);
    opts.nonce = 0; /* a fixed request: the seeds answer exactly it */
    /* The request is for the CA's own certificate under itself: any
     * certificate makes a certId, and the seeds need only one file. */
    if (!ca_cert || !ca_key ||
        eid_ocsp_req_make(root, ca_cert, ca_cert, &opts, &req, &res) != APR_SUCCESS) {
        fprintf(stderr, "fuzz_revocation: cannot set up (fuzz_cert_ca.pem/.key); set "
                        "EID_FUZZ_DIR\n");
        exit(1);
    }
    atexit(teardown);
    return 0;
}

static void check_ocsp_result(apr_status_t rv, const eid_rev_answer_t *a,
                              const eid_result_t *res)
{
    if (rv == APR_SUCCESS) {
        CHECK(a->source == EID_REV_SRC_OCSP);
        CHECK(a->status == EID_REV_GOOD || a->status == EID_REV_REVOKED ||
              a->status == EID_REV_UNKNOWN);
        CHECK(a->this_update > 0 && a->fetched > 0);
    }
    else {
        CHECK(res->tag && !strncmp(res->tag, "EID051", 6) && res->reason);
        CHECK(res->cls == EID_CLASS_UNAVAILABLE);
    }
    CHECK(ERR_peek_error() == 0);
}

static void fuzz_ocsp(apr_pool_t *p, const uint8_t *data, size_t size)
{
    eid_rev_answer_t a;
    eid_result_t res = {0};
    const unsigned char *cur = data;
    OCSP_RESPONSE *resp;
    OCSP_BASICRESP *bs;
    unsigned char *der = NULL;
    int n;

    check_ocsp_result(eid_ocsp_resp_check(p, req, data, size, &opts, &a, &res), &a, &res);
    /* Re-signed by the issuer: the checks after the signature. */
    resp = d2i_OCSP_RESPONSE(NULL, &cur, (long)size);
    bs = resp ? OCSP_response_get1_basic(resp) : NULL;
    if (bs && OCSP_basic_sign(bs, ca_cert, ca_key, EVP_sha256(), NULL, OCSP_NOCERTS) == 1) {
        OCSP_RESPONSE *re = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
        if (re && (n = i2d_OCSP_RESPONSE(re, &der)) > 0) {
            eid_result_t r2 = {0};
            check_ocsp_result(eid_ocsp_resp_check(p, req, der, (apr_size_t)n, &opts, &a, &r2),
                              &a, &r2);
        }
        OCSP_RESPONSE_free(re);
        OPENSSL_free(der);
    }
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
}

static void check_crl(apr_pool_t *p, X509_CRL *crl)
{
    eid_rev_answer_t a;
    eid_result_t res = {0};
    apr_status_t rv = eid_crl_check(p, crl, ca_cert, ca_cert, 0, apr_time_from_sec(300), &a,
                                    &res);
    if (rv == APR_SUCCESS) {
        CHECK(a.source == EID_REV_SRC_CRL);
        CHECK(a.status == EID_REV_GOOD || a.status == EID_REV_REVOKED);
        CHECK(a.next_update > 0 && a.fetched > 0);
    }
    else
        CHECK(res.tag && !strncmp(res.tag, "EID052", 6) && res.reason &&
              res.cls != EID_CLASS_NONE);
    CHECK(ERR_peek_error() == 0);
}

static void fuzz_crl(apr_pool_t *p, const uint8_t *data, size_t size)
{
    eid_result_t res = {0};
    X509_CRL *crl;

    if (eid_crl_parse(p, (const char *)data, size, &crl, &res) != APR_SUCCESS) {
        CHECK(res.tag && !strcmp(res.tag, "EID05202"));
        CHECK(ERR_peek_error() == 0);
        return;
    }
    check_crl(p, crl);
    /* Re-signed by the CA under its name (crl is freed with the pool). */
    if (X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) &&
        X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0)
        check_crl(p, crl);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;

    apr_pool_create(&p, root);
    fuzz_ocsp(p, data, size);
    fuzz_crl(p, data, size);
    apr_pool_destroy(p);
    return 0;
}
