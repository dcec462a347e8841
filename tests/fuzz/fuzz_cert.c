/*
 * fuzz_cert - DER bytes -> d2i_X509 -> eid_cert_identify() under a fixed CA.
 *
 * Each input is tried twice: as it is (almost every mutation breaks the
 * signature, so this mostly exercises parsing and the trust decision), and
 * re-issued - issuer set to the fuzz CA and re-signed with its test-only key
 * (fuzz_cert_ca.key) - which carries the mutated subject, extensions and
 * strings past the signature check to every rule behind it.  The second
 * try goes through eid_cert_identify_pem().  Invariants on every verdict:
 * result and identity agree, tags are ours, identity strings are clean
 * UTF-8, identifiers have their documented shapes, and OpenSSL's error
 * queue is left empty.
 *
 * The CA is found via $EID_FUZZ_DIR, else relative to the binary
 * (build/fuzz/ -> tests/fuzz/), else tests/fuzz/ under the current directory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "eid/eid_cert.h"
#include "eid/eid_hsa.h"
#include "eid/eid_pnr.h"

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_cert: invariant failed: %s (line %d)\n", #c,         \
                    __LINE__);                                                         \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* 2030-01-01T00:00:00Z: inside the seeds' validity, fixed for reproducibility. */
#define FUZZ_NOW (apr_time_from_sec(1893456000))

static apr_pool_t *root;
static const eid_trust_profile_t *profiles[1];
static X509 *ca_cert;
static EVP_PKEY *ca_key;

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

/* At exit, before LeakSanitizer looks: APR may keep pool memory in mmap()ed
 * blocks that LSan does not scan, so the CA certificates held by the
 * profile would look leaked. */
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
    eid_trust_profile_t *tp;
    const char *err = NULL;
    char *bin_dir, *slash;
    int i;

    apr_initialize();
    apr_pool_create(&root, NULL);
    bin_dir = apr_pstrdup(root, (*argv)[0]);
    slash = strrchr(bin_dir, '/');
    bin_dir = slash ? (*slash = '\0', bin_dir) : (char *)".";
    dirs[0] = env;
    dirs[1] = apr_pstrcat(root, bin_dir, "/../../tests/fuzz", NULL);
    dirs[2] = "tests/fuzz";
    for (i = 0; i < 3 && !ca_cert; i++)
        if (dirs[i] && (ca_cert = load(dirs[i], "fuzz_cert_ca.pem", 0)) &&
            (ca_key = load(dirs[i], "fuzz_cert_ca.key", 1))) {
            tp = eid_trust_profile_create(root, "fuzz");
            /* Person CA for personnummer and HSA-IDs but not samordningsnummer,
             * so that the identifier-kind rule is reachable too. */
            err = eid_trust_profile_add_issuer(
                tp, root, apr_pstrcat(root, dirs[i], "/fuzz_cert_ca.pem", NULL), 3,
                EID_IDK_PNR | EID_IDK_HSA, EID_ISSUER_ROOT /* a self-signed test CA */);
            if (!err)
                err = eid_trust_profile_add_policy(tp, root, "1.2.752.74.8.512", 4, 0);
            if (!err)
                err = eid_trust_profile_add_policy(tp, root, "1.2.3.5", 0, 1);
            profiles[0] = tp;
        }
    if (!ca_cert || !ca_key || err) {
        fprintf(stderr, "fuzz_cert: cannot set up the fuzz CA (%s); set EID_FUZZ_DIR\n",
                err ? err : "fuzz_cert_ca.pem/.key not found");
        exit(1);
    }
    atexit(teardown);
    return 0;
}

/* Independent of the code under test: strict UTF-8, no C0, DEL or C1. */
static int clean_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned long cp;
        int n, i;
        if (*p < 0x80) {
            if (*p < 0x20 || *p == 0x7f)
                return 0;
            p++;
            continue;
        }
        n = (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0)
            return 0;
        cp = *p & (0x3F >> n);
        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F))
            return 0;
        p += n + 1;
    }
    return 1;
}

static void check_verdict(eid_cert_code_e rc, const eid_identity_t *id, const eid_result_t *res)
{
    CHECK(ERR_peek_error() == 0);
    CHECK((int)rc >= EID_CERT_OK && rc <= EID_CERT_DUP_ATTR);
    CHECK(res->code == (int)rc);
    if (rc != EID_CERT_OK) {
        CHECK(id == NULL);
        CHECK(res->tag && strlen(res->tag) == 8 && !strncmp(res->tag, "EID020", 6));
        CHECK(res->reason && *res->reason && clean_utf8(res->reason));
        return;
    }
    CHECK(id != NULL);
    CHECK(id->method == EID_METHOD_CERT && id->profile && !strcmp(id->profile, "fuzz"));
    CHECK(id->loa >= 1 && id->loa <= 4);
    CHECK(id->issuer && id->subject && id->serial && id->expires >= FUZZ_NOW);
    CHECK((id->pnr == NULL) != (id->hsa_id == NULL));
    if (id->pnr) {
        CHECK(eid_pnr_classify(id->pnr, strlen(id->pnr)) ==
              (id->pnr_is_coordination ? EID_PNR_SAMORDNINGSNUMMER : EID_PNR_PERSONNUMMER));
        CHECK(!id->pnr_is_coordination); /* the fuzz CA does not vouch for them */
        CHECK(id->org_number == NULL);
    }
    else {
        CHECK(eid_hsa_ok(id->hsa_id, strlen(id->hsa_id), 0, NULL));
        CHECK(id->org_number && !memcmp(id->org_number, id->hsa_id + 2, 10) &&
              strlen(id->org_number) == 10);
    }
    {
        const char *strs[] = {id->issuer, id->subject, id->serial, id->pnr, id->hsa_id,
                              id->given_name, id->surname, id->display_name, id->email,
                              id->upn, id->org_number, id->org_name, id->loa_uri};
        size_t i;
        for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
            CHECK(!strs[i] || clean_utf8(strs[i]));
        for (i = 0; id->policy_oids && i < (size_t)id->policy_oids->nelts; i++)
            CHECK(clean_utf8(APR_ARRAY_IDX(id->policy_oids, i, const char *)));
    }
}

/* The certificate re-issued by the fuzz CA, as PEM text; NULL if OpenSSL
 * cannot re-encode what it parsed. */
static char *reissue(apr_pool_t *p, X509 *x, size_t *len)
{
    X509 *y = X509_dup(x);
    BIO *b = NULL;
    char *pem = NULL, *data;
    long n;

    if (y && X509_set_issuer_name(y, X509_get_subject_name(ca_cert)) &&
        X509_sign(y, ca_key, EVP_sha256()) > 0 && (b = BIO_new(BIO_s_mem())) &&
        PEM_write_bio_X509(b, y) && (n = BIO_get_mem_data(b, &data)) > 0) {
        pem = apr_pstrmemdup(p, data, (apr_size_t)n);
        *len = (size_t)n;
    }
    BIO_free(b);
    X509_free(y);
    ERR_clear_error();
    return pem;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *q = data;
    X509 *x = d2i_X509(NULL, &q, (long)size);
    eid_identity_t *id;
    eid_result_t res;
    eid_cert_code_e rc;
    apr_pool_t *p;
    size_t len = 0;
    char *pem;

    ERR_clear_error();
    if (!x)
        return 0;
    apr_pool_create(&p, root);

    id = (eid_identity_t *)p; /* must be overwritten */
    memset(&res, 0, sizeof(res));
    rc = eid_cert_identify(p, x, profiles, 1, FUZZ_NOW, &id, &res);
    check_verdict(rc, id, &res);

    if ((pem = reissue(p, x, &len))) {
        id = (eid_identity_t *)p;
        memset(&res, 0, sizeof(res));
        rc = eid_cert_identify_pem(p, pem, len, profiles, 1, FUZZ_NOW, &id, &res);
        check_verdict(rc, id, &res);
        /* Re-issued by the CA, so it is never refused as untrusted. */
        CHECK(rc != EID_CERT_UNTRUSTED || res.tag == NULL || strcmp(res.tag, "EID02004"));
    }
    X509_free(x);
    apr_pool_destroy(p);
    return 0;
}
