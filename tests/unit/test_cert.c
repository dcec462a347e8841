/*
 * Unit tests: certificate -> identity under trust profiles.
 *
 * Part one runs over the test PKI ($EID_PKI, default build/pki; `make pki`)
 * and its manifest.json: exact codes and identity fields for every user,
 * with the key expectations also written down here so that a broken
 * manifest cannot make the test vacuous.  Part two issues certificates of
 * hostile shapes at run time from a CA of its own (string types, encodings,
 * subjectAltName, policies, forged signatures), which the PKI does not
 * cover.  Part three: configuration errors, validity at chosen times and
 * profile order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eid/eid_cert.h"
#include "eid/eid_pnr.h"

static apr_pool_t *pool;
static const char *pki;
static json_t *manifest;
static eid_trust_profile_t *siths, *eidp;
static const eid_trust_profile_t *both[2];

static const char *pki_path(const char *rel)
{
    return apr_pstrcat(pool, pki, "/", rel, NULL);
}

static X509 *load_pem(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;
    if (!f)
        fail_msg("cannot open %s (run `make pki`, or set EID_PKI)", path);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x)
        fail_msg("no certificate in %s", path);
    return x;
}

static char *slurp(const char *path, size_t *len);

/* Through eid_cert_identify_pem(), the path the Apache glue takes.  A PEM
 * that OpenSSL itself cannot parse comes back as EID_CERT_PARSE. */
static eid_cert_code_e run(const char *user, const eid_trust_profile_t *const *profiles,
                           int n, apr_time_t now, eid_identity_t **id, eid_result_t *res)
{
    size_t len;
    const char *pem = slurp(pki_path(apr_pstrcat(pool, "users/", user, ".pem", NULL)), &len);

    memset(res, 0, sizeof(*res));
    return eid_cert_identify_pem(pool, pem, len, profiles, n, now, id, res);
}

static void expect_str(const char *user, const char *field, const char *got,
                       const char *want)
{
    if (!got && !want)
        return;
    if (!got || !want || strcmp(got, want))
        fail_msg("%s: %s is '%s', expected '%s'", user, field, got ? got : "(null)",
                 want ? want : "(null)");
}

/* ---- part one: the test PKI ------------------------------------------------------ */

/* Written down independently of manifest.json. */
static const struct {
    const char *user;
    eid_cert_code_e code;
    const char *tag;
} pki_users[] = {
    {"nurse-kommun", EID_CERT_OK, NULL},
    {"nurse-kommun-reserve", EID_CERT_OK, NULL},
    {"doctor-region", EID_CERT_OK, NULL},
    {"nurse-pnr", EID_CERT_OK, NULL},
    {"citizen", EID_CERT_OK, NULL},
    {"citizen-coord", EID_CERT_OK, NULL},
    {"citizen-pnose", EID_CERT_OK, NULL},
    {"bmp-cn", EID_CERT_OK, NULL},
    {"function", EID_CERT_FUNCTION, "EID02008"},
    {"other-ca", EID_CERT_UNTRUSTED, "EID02004"},
    {"expired", EID_CERT_EXPIRED, "EID02015"},
    {"notyet", EID_CERT_NOT_YET, "EID02014"},
    {"no-eku", EID_CERT_EKU, "EID02010"},
    {"eku-server", EID_CERT_EKU, "EID02011"},
    {"ku-nonrep", EID_CERT_KEYUSAGE, "EID02012"},
    {"two-serials", EID_CERT_MULTI_SERIAL, "EID02017"},
    {"multivalued-rdn", EID_CERT_MULTI_SERIAL, "EID02018"},
    {"serial-nul", EID_CERT_BAD_STRING, "EID02023"},
    /* OpenSSL 3 does not even parse a name with malformed UTF-8, so which of
     * the string tags this gets depends on the bytes the generator chose. */
    {"cn-bad-utf8", EID_CERT_BAD_STRING, NULL},
    {"given-crlf", EID_CERT_BAD_STRING, "EID02023"},
    {"bad-luhn", EID_CERT_BAD_SERIAL, "EID02025"},
    {"serial-garbage", EID_CERT_BAD_SERIAL, "EID02025"},
    {"no-serial", EID_CERT_NO_SERIAL, "EID02016"},
    {"hsa-from-eid", EID_CERT_ID_KIND, "EID02026"},
    {"dup-cn", EID_CERT_DUP_ATTR, "EID02019"},
};

static const struct {
    const char *name;
    eid_cert_code_e code;
} expect_names[] = {
    {"ok", EID_CERT_OK},               {"untrusted", EID_CERT_UNTRUSTED},
    {"function", EID_CERT_FUNCTION},   {"eku", EID_CERT_EKU},
    {"keyusage", EID_CERT_KEYUSAGE},   {"expired", EID_CERT_EXPIRED},
    {"notyet", EID_CERT_NOT_YET},      {"no_serial", EID_CERT_NO_SERIAL},
    {"multi_serial", EID_CERT_MULTI_SERIAL}, {"bad_serial", EID_CERT_BAD_SERIAL},
    {"id_kind", EID_CERT_ID_KIND},     {"bad_string", EID_CERT_BAD_STRING},
    {"dup_attr", EID_CERT_DUP_ATTR},
};

static int expect_code(const char *user, const char *name)
{
    size_t i;
    for (i = 0; i < sizeof(expect_names) / sizeof(expect_names[0]); i++)
        if (!strcmp(expect_names[i].name, name))
            return expect_names[i].code;
    fail_msg("%s: unknown expectation '%s' in manifest.json", user, name);
    return -1;
}

/* Properties every accepted identity has, whatever the manifest says. */
static void check_identity_shape(const char *user, const eid_identity_t *id)
{
    const char *const strs[] = {id->profile, id->issuer, id->subject, id->serial,
                                id->pnr, id->hsa_id, id->given_name, id->surname,
                                id->display_name, id->email, id->upn, id->org_number,
                                id->org_name, id->loa_uri};
    const char *s;
    size_t i;

    assert_int_equal(id->method, EID_METHOD_CERT);
    assert_non_null(id->profile);
    assert_non_null(id->issuer);
    assert_non_null(id->subject);
    assert_non_null(id->serial);
    for (s = id->serial; *s; s++)
        assert_non_null(strchr("0123456789ABCDEF", *s));
    if ((id->pnr == NULL) == (id->hsa_id == NULL))
        fail_msg("%s: exactly one of pnr and hsa_id must be set", user);
    if (id->pnr && eid_pnr_classify(id->pnr, strlen(id->pnr)) !=
                       (id->pnr_is_coordination ? EID_PNR_SAMORDNINGSNUMMER
                                                : EID_PNR_PERSONNUMMER))
        fail_msg("%s: pnr kind does not match pnr_is_coordination", user);
    if (id->loa < 1 || id->loa > 4)
        fail_msg("%s: loa %d", user, id->loa);
    assert_true(id->expires > apr_time_now());
    for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (!strs[i])
            continue;
        if (!*strs[i])
            fail_msg("%s: empty string instead of NULL", user);
        for (s = strs[i]; *s; s++)
            if ((unsigned char)*s < 0x20 || *s == 0x7f)
                fail_msg("%s: control character in an identity string", user);
    }
}

static const char *mstr(json_t *e, const char *k)
{
    json_t *v = json_object_get(e, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void check_against_manifest(const char *user, json_t *e, const eid_identity_t *id)
{
    const char *kind = mstr(e, "serial_kind");
    json_t *loa = json_object_get(e, "loa");
    static const char *const fields[] = {"hsa_id", "pnr", "given_name", "surname",
                                         "org_number", "email", "upn"};
    const char *got[] = {id->hsa_id, id->pnr, id->given_name, id->surname,
                         id->org_number, id->email, id->upn};
    size_t i;

    if (!kind)
        fail_msg("%s: manifest has no serial_kind", user);
    if (!strcmp(kind, "hsa"))
        assert_non_null(id->hsa_id);
    else if (!strcmp(kind, "pnr"))
        assert_true(id->pnr && !id->pnr_is_coordination);
    else if (!strcmp(kind, "coord"))
        assert_true(id->pnr && id->pnr_is_coordination);
    else
        fail_msg("%s: unknown serial_kind '%s'", user, kind);
    if (!json_is_integer(loa))
        fail_msg("%s: manifest has no integer loa", user);
    if (id->loa != json_integer_value(loa))
        fail_msg("%s: loa %d, expected %d", user, id->loa, (int)json_integer_value(loa));
    /* A field the manifest leaves out must be absent from the identity too. */
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        expect_str(user, fields[i], got[i], mstr(e, fields[i]));
}

static void test_pki_manifest(void **state)
{
    const char *user;
    json_t *e;
    size_t i, seen = 0;

    /* Every user written down above is in the manifest, with the same verdict. */
    for (i = 0; i < sizeof(pki_users) / sizeof(pki_users[0]); i++) {
        e = json_object_get(manifest, pki_users[i].user);
        if (!e)
            fail_msg("manifest.json has no user %s", pki_users[i].user);
        if (expect_code(pki_users[i].user, mstr(e, "expect") ? mstr(e, "expect") : "?") !=
            (int)pki_users[i].code)
            fail_msg("%s: manifest and this test disagree on the verdict", pki_users[i].user);
    }
    json_object_foreach(manifest, user, e) {
        eid_identity_t *id = (eid_identity_t *)1;
        eid_result_t res;
        int want = expect_code(user, mstr(e, "expect") ? mstr(e, "expect") : "?");
        eid_cert_code_e rc = run(user, both, 2, apr_time_now(), &id, &res);

        if ((int)rc != want)
            fail_msg("%s: code %d (%s: %s), expected %d", user, rc,
                     res.tag ? res.tag : "-", res.reason ? res.reason : "-", want);
        assert_int_equal(res.code, rc);
        if (rc != EID_CERT_OK) {
            assert_null(id);
            assert_non_null(res.tag);
            assert_non_null(res.reason);
            assert_true(!strncmp(res.tag, "EID020", 6));
            /* Reasons never quote the certificate: no personnummer, no HSA-ID. */
            assert_null(strstr(res.reason, "1949"));
            assert_null(strstr(res.reason, "SE2"));
            for (i = 0; i < sizeof(pki_users) / sizeof(pki_users[0]); i++)
                if (!strcmp(pki_users[i].user, user) && pki_users[i].tag)
                    expect_str(user, "tag", res.tag, pki_users[i].tag);
        }
        else {
            assert_non_null(id);
            check_identity_shape(user, id);
            check_against_manifest(user, e, id);
        }
        seen++;
    }
    assert_true(seen >= sizeof(pki_users) / sizeof(pki_users[0]));
}

/* The expectations that matter most, independent of the manifest. */
static void test_pki_key_users(void **state)
{
    eid_identity_t *id;
    eid_result_t res;

    assert_int_equal(run("nurse-kommun", both, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    expect_str("nurse-kommun", "profile", id->profile, "siths");
    assert_int_equal(id->loa, 3);
    assert_null(id->pnr);
    assert_true(id->hsa_id && !strncmp(id->hsa_id, "SE", 2) && id->org_number &&
                !strncmp(id->hsa_id + 2, id->org_number, 10));

    assert_int_equal(run("nurse-kommun-reserve", both, 2, apr_time_now(), &id, &res),
                     EID_CERT_OK);
    assert_int_equal(id->loa, 2);
    assert_null(id->loa_uri);

    /* LoA from the policy OID, above the issuer's. */
    assert_int_equal(run("doctor-region", both, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    assert_int_equal(id->loa, 3);
    expect_str("doctor-region", "loa_uri", id->loa_uri, "1.2.752.74.8.512");
    assert_non_null(id->policy_oids);
    assert_true(id->policy_oids->nelts >= 1);

    assert_int_equal(run("nurse-pnr", both, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    assert_true(id->pnr && !id->hsa_id && !id->org_number && id->loa == 3);
    expect_str("nurse-pnr", "profile", id->profile, "siths");

    assert_int_equal(run("citizen", both, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    expect_str("citizen", "profile", id->profile, "eid");
    assert_int_equal(id->pnr_is_coordination, 0);

    assert_int_equal(run("citizen-coord", both, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    assert_int_equal(id->pnr_is_coordination, 1);

    assert_int_equal(run("citizen-pnose", both, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    assert_true(id->pnr && strlen(id->pnr) == 12 && !strstr(id->pnr, "PNO"));

    assert_int_equal(run("bmp-cn", both, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    expect_str("bmp-cn", "display_name", id->display_name, "\xc3\x85sa \xc3\x96" "berg");
    assert_non_null(strstr(id->subject, "CN=\xc3\x85sa \xc3\x96" "berg"));

    assert_int_equal(run("function", both, 2, apr_time_now(), &id, &res), EID_CERT_FUNCTION);
    assert_int_equal(run("other-ca", both, 2, apr_time_now(), &id, &res), EID_CERT_UNTRUSTED);
    assert_int_equal(run("hsa-from-eid", both, 2, apr_time_now(), &id, &res),
                     EID_CERT_ID_KIND);
    assert_int_equal(run("serial-nul", both, 2, apr_time_now(), &id, &res),
                     EID_CERT_BAD_STRING);
}

/* Issuer and subject DNs, serial and expiry as OpenSSL itself renders them. */
static void test_pki_identity_details(void **state)
{
    X509 *x = load_pem(pki_path("users/nurse-kommun.pem"));
    X509 *ca = load_pem(pki_path("ca/hsa3.pem"));
    eid_identity_t *id;
    eid_result_t res;
    BIO *b = BIO_new(BIO_s_mem());
    char *data, serial[128] = "";
    long n;
    struct tm tm;
    int i;
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);

    assert_int_equal(eid_cert_identify(pool, x, both, 2, apr_time_now(), &id, &res),
                     EID_CERT_OK);
    X509_NAME_print_ex(b, X509_get_subject_name(ca), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    n = BIO_get_mem_data(b, &data);
    expect_str("nurse-kommun", "issuer", id->issuer, apr_pstrndup(pool, data, (apr_size_t)n));
    assert_non_null(strstr(id->subject, "serialNumber="));
    for (i = 0; i < ASN1_STRING_length(sn); i++)
        sprintf(serial + 2 * i, "%02X", ASN1_STRING_get0_data(sn)[i]);
    expect_str("nurse-kommun", "serial", id->serial, serial);
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
    assert_int_equal(id->expires, apr_time_from_sec(timegm(&tm)));
    assert_int_equal(id->method, EID_METHOD_CERT);
    BIO_free(b);
    X509_free(x);
    X509_free(ca);
}

/* ---- part three: validity at chosen times, profile order, config errors ------------ */

static void test_validity_at_now(void **state)
{
    X509 *x = load_pem(pki_path("users/nurse-kommun.pem"));
    eid_identity_t *id;
    eid_result_t res;
    struct tm tm;
    apr_time_t nb, na;

    ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm);
    nb = apr_time_from_sec(timegm(&tm));
    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm);
    na = apr_time_from_sec(timegm(&tm));
    assert_int_equal(eid_cert_identify(pool, x, both, 2, na, &id, &res), EID_CERT_OK);
    assert_int_equal(eid_cert_identify(pool, x, both, 2, nb, &id, &res), EID_CERT_OK);
    assert_int_equal(eid_cert_identify(pool, x, both, 2, na + apr_time_from_sec(1), &id, &res),
                     EID_CERT_EXPIRED);
    assert_null(id);
    expect_str("nurse-kommun", "tag", res.tag, "EID02015");
    assert_int_equal(eid_cert_identify(pool, x, both, 2, nb - apr_time_from_sec(1), &id, &res),
                     EID_CERT_NOT_YET);
    expect_str("nurse-kommun", "tag", res.tag, "EID02014");
    X509_free(x);
}

static void test_profile_order(void **state)
{
    eid_trust_profile_t *a = eid_trust_profile_create(pool, "first");
    eid_trust_profile_t *b = eid_trust_profile_create(pool, "second");
    eid_trust_profile_t *none = eid_trust_profile_create(pool, "unrelated");
    const eid_trust_profile_t *ab[2] = {a, b}, *ba[2] = {b, a}, *nb[2] = {none, b};
    eid_identity_t *id;
    eid_result_t res;

    assert_null(eid_trust_profile_add_issuer(a, pool, pki_path("ca/eid.pem"), 2,
                                             EID_IDK_PNR | EID_IDK_COORD, 0));
    assert_null(eid_trust_profile_add_issuer(b, pool, pki_path("ca/eid.pem"), 4,
                                             EID_IDK_PNR | EID_IDK_COORD, 0));
    assert_null(eid_trust_profile_add_issuer(none, pool, pki_path("ca/other.pem"), 3,
                                             EID_IDK_ANY, 0));
    assert_int_equal(run("citizen", ab, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    expect_str("citizen", "profile", id->profile, "first");
    assert_int_equal(id->loa, 2);
    assert_int_equal(run("citizen", ba, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    expect_str("citizen", "profile", id->profile, "second");
    assert_int_equal(id->loa, 4);
    assert_int_equal(run("citizen", nb, 2, apr_time_now(), &id, &res), EID_CERT_OK);
    expect_str("citizen", "profile", id->profile, "second"); /* skips the unrelated one */
    /* The first profile holding the issuer decides: a refusal there is not
     * retried under a later profile that would accept. */
    assert_null(eid_trust_profile_add_issuer(none, pool, pki_path("ca/eid.pem"), 3, EID_IDK_HSA,
                                             0));
    assert_int_equal(run("citizen", nb, 2, apr_time_now(), &id, &res), EID_CERT_ID_KIND);
    assert_int_equal(run("citizen", ba, 1, apr_time_now(), &id, &res), EID_CERT_OK);
    assert_int_equal(run("other-ca", ab, 2, apr_time_now(), &id, &res), EID_CERT_UNTRUSTED);
    assert_int_equal(run("citizen", NULL, 0, apr_time_now(), &id, &res), EID_CERT_UNTRUSTED);
    assert_int_equal(run("nurse-kommun", (const eid_trust_profile_t *const *)&eidp, 1,
                         apr_time_now(), &id, &res), EID_CERT_UNTRUSTED);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    char *buf = apr_pcalloc(pool, 65536);
    size_t n;

    if (!f)
        fail_msg("cannot open %s", path);
    n = fread(buf, 1, 65535, f);
    fclose(f);
    if (len)
        *len = n;
    return buf;
}

static const char *write_tmp(const char *text)
{
    char *path = apr_pstrdup(pool, "/tmp/eid-test-cert-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void expect_err(const char *err, const char *part)
{
    if (!err || !strstr(err, part))
        fail_msg("error '%s' does not contain '%s'", err ? err : "(none)", part);
}

static void test_config_errors(void **state)
{
    eid_trust_profile_t *tp = eid_trust_profile_create(pool, "cfg");
    const char *nocert = write_tmp("just some text\n");
    const char *damaged = write_tmp("-----BEGIN CERTIFICATE-----\nMIIB!!!notbase64\n"
                                    "-----END CERTIFICATE-----\n");
    const char *mixed;

    expect_err(eid_trust_profile_add_issuer(tp, pool, "/nonexistent/ca.pem", 3, EID_IDK_ANY, 0),
               "CA file: cannot open /nonexistent/ca.pem");
    expect_err(eid_trust_profile_add_issuer(tp, pool, "/tmp", 3, EID_IDK_ANY, 0),
               "not a regular file");
    expect_err(eid_trust_profile_add_issuer(tp, pool, nocert, 3, EID_IDK_ANY, 0),
               "no PEM certificate");
    expect_err(eid_trust_profile_add_issuer(tp, pool, damaged, 3, EID_IDK_ANY, 0),
               "certificate 1 in");
    expect_err(eid_trust_profile_add_issuer(tp, pool, pki_path("users/nurse-kommun.pem"), 3,
                                            EID_IDK_ANY, 0), "not a CA certificate");
    expect_err(eid_trust_profile_add_issuer(tp, pool, pki_path("ca/hsa3.pem"), 5, EID_IDK_HSA,
                                            0), "level of assurance 5");
    expect_err(eid_trust_profile_add_issuer(tp, pool, pki_path("ca/hsa3.pem"), -1, EID_IDK_HSA,
                                            0), "level of assurance -1");
    expect_err(eid_trust_profile_add_issuer(tp, pool, pki_path("ca/hsa3.pem"), 3, 0, 0),
               "at least one identifier kind");
    expect_err(eid_trust_profile_add_issuer(tp, pool, pki_path("ca/hsa3.pem"), 3, 0x80, 0),
               "unknown identifier kind");
    /* A CA followed by a non-CA: the whole file is refused, nothing half-loaded. */
    mixed = write_tmp(apr_pstrcat(pool, slurp(pki_path("ca/hsa3.pem"), NULL),
                                  slurp(pki_path("users/nurse-kommun.pem"), NULL), NULL));
    expect_err(eid_trust_profile_add_issuer(tp, pool, mixed, 3, EID_IDK_ANY, 0),
               "holds 2 certificates");
    /* A CA file is capped at 4 MiB (a wrong path must not flood start-up):
     * one good CA followed by padding past the cap is refused as a whole. */
    {
        const char *ca = slurp(pki_path("ca/hsa3.pem"), NULL);
        size_t calen = strlen(ca), total = 4 * 1024 * 1024 + 1;
        char *big = apr_palloc(pool, total + 1);
        const char *bigpath;

        memcpy(big, ca, calen);
        memset(big + calen, '\n', total - calen);
        big[total] = '\0';
        bigpath = write_tmp(big);
        expect_err(eid_trust_profile_add_issuer(tp, pool, bigpath, 3, EID_IDK_HSA, 0),
                   "is larger than 4194304 bytes");
        unlink(bigpath);
    }
    /* A bundle of CAs (roots included) likewise: exactly one CA per file. */
    expect_err(eid_trust_profile_add_issuer(tp, pool, pki_path("ca/client-trust.pem"), 3,
                                            EID_IDK_PNR, 0), "exactly one");
    /* A root alone would refuse every card: only with the explicit flag. */
    expect_err(eid_trust_profile_add_issuer(tp, pool, pki_path("ca/root.pem"), 3, EID_IDK_HSA,
                                            0), "self-signed");
    expect_err(eid_trust_profile_add_issuer(tp, pool, pki_path("ca/hsa3.pem"), 3, EID_IDK_HSA,
                                            0x80), "unknown issuer flag");
    assert_int_equal(eid_trust_profile_issuer_count(tp), 0);
    assert_null(eid_trust_profile_add_issuer(tp, pool, pki_path("ca/root.pem"), 3, EID_IDK_HSA,
                                             EID_ISSUER_ROOT));
    assert_int_equal(eid_trust_profile_issuer_count(tp), 1);
    tp = eid_trust_profile_create(pool, "cfg");
    /* A function CA needs no level and no identifier kinds. */
    assert_null(eid_trust_profile_add_issuer(tp, pool, pki_path("ca/function.pem"), 0, 0, 1));
    assert_int_equal(eid_trust_profile_issuer_count(tp), 1);
    expect_str("cfg", "name", eid_trust_profile_name(tp), "cfg");
    unlink(nocert);
    unlink(damaged);
    unlink(mixed);
}

static void test_policy_config(void **state)
{
    eid_trust_profile_t *tp = eid_trust_profile_create(pool, "pol");
    static const char *const bad[] = {"1..2", "abc", "", "1", "1.", ".1", "1.2.", "3.1",
                                      "1.40", "0.40", "1.02", "01.2", "1.2 ", " 1.2", "1.2\n",
                                      "1.2.-3", "1,2", "1.2.3a", "+1.2"};
    static const char *const good[] = {"1.2.752.74.8.512", "0.39", "1.0", "2.999",
                                       "2.25.329800735698586629295641978511506172918"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!eid_trust_profile_add_policy(tp, pool, bad[i], 3, 0))
            fail_msg("policy OID '%s' was accepted", bad[i]);
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (eid_trust_profile_add_policy(tp, pool, good[i], 3, 0))
            fail_msg("policy OID '%s' was refused", good[i]);
    expect_err(eid_trust_profile_add_policy(tp, pool, "1.2.752.74.8.512", 2, 0),
               "already configured");
    expect_err(eid_trust_profile_add_policy(tp, pool, "1.2.3", 0, 0), "level of assurance 0");
    expect_err(eid_trust_profile_add_policy(tp, pool, "1.2.3", 5, 0), "level of assurance 5");
    assert_null(eid_trust_profile_add_policy(tp, pool, "1.2.3", 0, 1));
}

/* A policy marked "function" makes any certificate carrying it a non-person,
 * and the highest configured policy level wins over the issuer's. */
static void test_policy_mapping(void **state)
{
    eid_trust_profile_t *fn = eid_trust_profile_create(pool, "fn");
    eid_trust_profile_t *hi = eid_trust_profile_create(pool, "hi");
    const eid_trust_profile_t *pf[1] = {fn}, *ph[1] = {hi};
    eid_identity_t *id;
    eid_result_t res;

    /* doctor-region (hsa3) carries the Mobile SITHS policy; nurse-kommun does not */
    assert_null(eid_trust_profile_add_issuer(fn, pool, pki_path("ca/hsa3.pem"), 2, EID_IDK_HSA, 0));
    assert_null(eid_trust_profile_add_policy(fn, pool, "1.2.752.74.8.512", 0, 1));
    assert_int_equal(run("doctor-region", pf, 1, apr_time_now(), &id, &res), EID_CERT_FUNCTION);
    expect_str("doctor-region", "tag", res.tag, "EID02009");
    assert_int_equal(run("nurse-kommun", pf, 1, apr_time_now(), &id, &res), EID_CERT_OK);
    assert_int_equal(id->loa, 2);

    assert_null(eid_trust_profile_add_issuer(hi, pool, pki_path("ca/hsa3.pem"), 2, EID_IDK_HSA, 0));
    assert_null(eid_trust_profile_add_policy(hi, pool, "1.2.752.74.8.512", 4, 0));
    assert_null(eid_trust_profile_add_policy(hi, pool, "1.2.752.74.8.513", 1, 0));
    assert_int_equal(run("doctor-region", ph, 1, apr_time_now(), &id, &res), EID_CERT_OK);
    assert_int_equal(id->loa, 4);
}

static void test_identify_pem(void **state)
{
    size_t n;
    const char *buf = slurp(pki_path("users/nurse-kommun.pem"), &n);
    eid_identity_t *id = (eid_identity_t *)1;
    eid_result_t res;

    assert_int_equal(eid_cert_identify_pem(pool, buf, n, both, 2, apr_time_now(), &id, &res),
                     EID_CERT_OK);
    assert_non_null(id);
    /* What names a refused certificate in logs: the same issuer and serial as
     * the identity of an accepted one. */
    {
        eid_cert_ref_t ref;
        assert_int_equal(eid_cert_ref_pem(pool, buf, n, NULL, 0, &ref), 0);
        expect_str("ref", "issuer", ref.issuer, id->issuer);
        expect_str("ref", "serial", ref.serial, id->serial);
        expect_str("ref", "subject", ref.subject, id->subject);
        assert_int_equal(eid_cert_ref_pem(pool, "garbage", 7, NULL, 0, &ref), -1);
        assert_null(ref.issuer);
        assert_null(ref.serial);
    }
    /* A personal certificate's subject names the person by the pseudonym of
     * the personnummer, in every place the DN repeats it, never in clear. */
    {
        static const unsigned char key[32] = "0123456789abcdef0123456789abcde";
        size_t m;
        const char *cit = slurp(pki_path("users/citizen.pem"), &m);
        const char *pnr = "198503171236"; /* the citizen's (build/pki/manifest.json) */
        eid_cert_ref_t ref;
        assert_int_equal(eid_cert_ref_pem(pool, cit, m, key, sizeof(key), &ref), 0);
        assert_non_null(ref.subject);
        assert_null(strstr(ref.subject, pnr));
        assert_null(strstr(ref.subject, pnr + 2));
        assert_non_null(strstr(ref.subject,
                                apr_pstrcat(pool, "serialNumber=",
                                            eid_pseudonym(pool, key, sizeof(key), pnr), NULL)));
        assert_int_equal(eid_cert_ref_pem(pool, cit, m, NULL, 0, &ref), 0);
        assert_non_null(strstr(ref.subject, "serialNumber=[pnr]"));
    }
    assert_int_equal(eid_cert_identify_pem(pool, buf, n / 2, both, 2, apr_time_now(), &id,
                                           &res), EID_CERT_PARSE);
    assert_null(id);
    expect_str("pem", "tag", res.tag, "EID02002");
    assert_int_equal(eid_cert_identify_pem(pool, "garbage", 7, both, 2, apr_time_now(), &id,
                                           &res), EID_CERT_PARSE);
    assert_int_equal(eid_cert_identify_pem(pool, NULL, 0, both, 2, apr_time_now(), &id, &res),
                     EID_CERT_PARSE);
    assert_int_equal(eid_cert_identify(pool, NULL, both, 2, apr_time_now(), &id, &res),
                     EID_CERT_PARSE);
    expect_str("null", "tag", res.tag, "EID02001");
}

/* ---- part two: hostile shapes, issued at run time by a CA of our own -------------- */

static EVP_PKEY *sh_key, *sh_other_key;
static X509 *sh_ca;
static const char *sh_ca_path;
static eid_trust_profile_t *shp;

typedef struct {
    int nid, type;
    const char *v;
    int len, same_rdn; /* same_rdn: joins the previous entry's RDN */
} ent_t;

typedef struct {
    int kind, type; /* GEN_EMAIL, or GEN_OTHERNAME for a UPN of ASN.1 `type` */
    const char *v;
    int len;
} alt_t;

typedef struct {
    const char *what;
    ent_t ent[5];
    alt_t alt[2];
    const char *pol; /* comma-separated policy OIDs */
    const char *eku; /* NULL: clientAuth; "": none */
    const char *ku;  /* NULL: none */
    int forge;       /* 1: signed by another key; 2: another issuer name; 3: EKU twice */
    eid_cert_code_e code;
    const char *tag;
    const char *cn, *email, *upn, *loa_uri; /* expected when accepted */
    int loa;
} shape_t;

#define S(t, s) {NID_serialNumber, t, s, sizeof(s) - 1, 0}
#define SER S(V_ASN1_PRINTABLESTRING, "194911172296")
#define E(nid, t, s) {nid, t, s, sizeof(s) - 1, 0}
#define CN8(s) E(NID_commonName, V_ASN1_UTF8STRING, s)
#define MAIL(s) {GEN_EMAIL, V_ASN1_IA5STRING, s, sizeof(s) - 1}
#define UPN(t, s) {GEN_OTHERNAME, t, s, sizeof(s) - 1}
#define BAD(c, tag) EID_CERT_##c, tag

static const shape_t shapes[] = {
    {"t61 is Latin-1", {SER, E(NID_commonName, V_ASN1_T61STRING, "\xc5sa")}, .cn = "\xc3\x85sa"},
    {"UniversalString", {SER, E(NID_commonName, V_ASN1_UNIVERSALSTRING, "\0\0\0\xc5\0\0\0s")},
     .cn = "\xc3\x85s"},
    {"utf8 4-byte", {SER, CN8("\xf0\x9f\x98\x80")}, .cn = "\xf0\x9f\x98\x80"},
    {"empty CN is absent", {SER, CN8("")}, .code = EID_CERT_OK},
    /* OpenSSL 3.0 refuses to parse a name whose UTF8String, BMPString or
     * UniversalString is malformed, so those encodings are tried below in the
     * UPN (an ANY, which it does not check); here what does get through. */
    {"CN with NUL", {SER, CN8("a\0b")}, .code = BAD(BAD_STRING, "EID02023")},
    {"BMP CN with NUL", {SER, E(NID_commonName, V_ASN1_BMPSTRING, "\0A\0\0")},
     .code = BAD(BAD_STRING, "EID02023")},
    {"C1 NEL", {SER, CN8("a\xc2\x85")}, .code = BAD(BAD_STRING, "EID02023")},
    {"DEL", {SER, CN8("a\x7f")}, .code = BAD(BAD_STRING, "EID02023")},
    {"TAB in surname", {SER, E(NID_surname, V_ASN1_UTF8STRING, "a\tb")},
     .code = BAD(BAD_STRING, "EID02023")},
    {"T61 C1 byte", {SER, E(NID_commonName, V_ASN1_T61STRING, "a\x85")},
     .code = BAD(BAD_STRING, "EID02023")},
    {"printable with 8-bit byte", {SER, E(NID_commonName, V_ASN1_PRINTABLESTRING, "\xc5sa")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"IA5 email with 8-bit byte", {SER, E(NID_pkcs9_emailAddress, V_ASN1_IA5STRING, "\xc5@b")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"CN as BIT STRING", {SER, E(NID_commonName, V_ASN1_BIT_STRING, "abc")},
     .code = BAD(BAD_STRING, "EID02021")},
    {"serial as BIT STRING", {E(NID_serialNumber, V_ASN1_BIT_STRING, "194911172296")},
     .code = BAD(BAD_STRING, "EID02021")},
    {"UPN BMP", {SER}, {UPN(V_ASN1_BMPSTRING, "\0\xc5\0s")}, .upn = "\xc3\x85s"},
    {"UPN BMP surrogate", {SER}, {UPN(V_ASN1_BMPSTRING, "\xd8\x00\xdc\x00")},
     .code = BAD(BAD_STRING, "EID02022")},
    /* OpenSSL's decoder itself refuses a BMPString of odd length. */
    {"UPN BMP odd length", {SER}, {UPN(V_ASN1_BMPSTRING, "\0A\0")},
     .code = BAD(PARSE, "EID02003")},
    {"UPN universal > U+10FFFF", {SER}, {UPN(V_ASN1_UNIVERSALSTRING, "\0\x11\0\0")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN universal surrogate", {SER}, {UPN(V_ASN1_UNIVERSALSTRING, "\0\0\xdf\xff")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN overlong 2", {SER}, {UPN(V_ASN1_UTF8STRING, "\xc0\xaf")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN overlong 3", {SER}, {UPN(V_ASN1_UTF8STRING, "\xe0\x80\xaf")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN overlong 4", {SER}, {UPN(V_ASN1_UTF8STRING, "\xf0\x80\x80\xaf")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN utf8 surrogate", {SER}, {UPN(V_ASN1_UTF8STRING, "\xed\xa0\x80")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN utf8 > U+10FFFF", {SER}, {UPN(V_ASN1_UTF8STRING, "\xf4\x90\x80\x80")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN utf8 F5", {SER}, {UPN(V_ASN1_UTF8STRING, "\xf5\x80\x80\x80")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN utf8 truncated", {SER}, {UPN(V_ASN1_UTF8STRING, "a\xe2\x82")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN utf8 stray continuation", {SER}, {UPN(V_ASN1_UTF8STRING, "\x80")},
     .code = BAD(BAD_STRING, "EID02022")},
    {"UPN utf8 largest", {SER}, {UPN(V_ASN1_UTF8STRING, "\xf4\x8f\xbf\xbf")},
     .upn = "\xf4\x8f\xbf\xbf"},
    {"UPN utf8 NUL", {SER}, {UPN(V_ASN1_UTF8STRING, "a\0b")},
     .code = BAD(BAD_STRING, "EID02023")},
    {"L twice", {SER, CN8("x"), E(NID_localityName, V_ASN1_UTF8STRING, "a"),
                 E(NID_localityName, V_ASN1_UTF8STRING, "a")}, .code = BAD(DUP_ATTR, "EID02019")},
    {"O in a multi-valued RDN", {SER, E(NID_organizationName, V_ASN1_UTF8STRING, "o"),
                                 {NID_organizationalUnitName, V_ASN1_UTF8STRING, "u", 1, 1}},
     .code = BAD(DUP_ATTR, "EID02020")},
    {"empty serial", {S(V_ASN1_PRINTABLESTRING, "")}, .code = BAD(BAD_SERIAL, "EID02025")},
    {"serial with trailing space", {S(V_ASN1_PRINTABLESTRING, "194911172296 ")},
     .code = BAD(BAD_SERIAL, "EID02025")},
    {"OU as BIT STRING (dumped as hex in the DN)",
     {SER, E(NID_organizationalUnitName, V_ASN1_BIT_STRING, "\xff\n")}, .code = EID_CERT_OK},
    {"OU with C1 (DN unclean)", {SER, E(NID_organizationalUnitName, V_ASN1_UTF8STRING, "\xc2\x85")},
     .code = BAD(BAD_STRING, "EID02028")},
    {"OU with CR is escaped in the DN",
     {SER, E(NID_organizationalUnitName, V_ASN1_UTF8STRING, "a\rb")}, .code = EID_CERT_OK},
    {"SAN email and UPN", {SER}, {MAIL("a@b.se"), UPN(V_ASN1_UTF8STRING, "a@b")},
     .email = "a@b.se", .upn = "a@b"},
    {"SAN same email twice", {SER}, {MAIL("a@b.se"), MAIL("a@b.se")}, .email = "a@b.se"},
    {"SAN two emails", {SER}, {MAIL("a@b.se"), MAIL("c@b.se")}, .code = BAD(DUP_ATTR, "EID02029")},
    {"SAN two UPNs", {SER}, {UPN(V_ASN1_UTF8STRING, "a"), UPN(V_ASN1_UTF8STRING, "b")},
     .code = BAD(DUP_ATTR, "EID02029")},
    {"SAN UPN as OCTET STRING", {SER}, {UPN(V_ASN1_OCTET_STRING, "a@b")},
     .code = BAD(BAD_STRING, "EID02021")},
    {"SAN email with LF", {SER}, {MAIL("a\n@b.se")}, .code = BAD(BAD_STRING, "EID02023")},
    {"SAN email with 8-bit byte", {SER}, {MAIL("\xc5@b.se")}, .code = BAD(BAD_STRING, "EID02022")},
    {"E and SAN differ", {SER, E(NID_pkcs9_emailAddress, V_ASN1_IA5STRING, "x@y.se")},
     {MAIL("z@y.se")}, .code = BAD(DUP_ATTR, "EID02027")},
    {"E and SAN differ in case only", {SER, E(NID_pkcs9_emailAddress, V_ASN1_IA5STRING, "X@y.se")},
     {MAIL("x@y.se")}, .email = "X@y.se"},
    {"policy -> 4", {SER}, .pol = "1.2.3.4", .loa = 4, .loa_uri = "1.2.3.4"},
    {"highest policy wins", {SER}, .pol = "1.2.3.6,1.2.3.4,1.9", .loa = 4, .loa_uri = "1.2.3.4"},
    {"policy -> 2", {SER}, .pol = "1.2.3.6", .loa = 2, .loa_uri = "1.2.3.6"},
    {"unknown policy: issuer level", {SER}, .pol = "1.9"},
    {"function policy", {SER}, .pol = "1.9,1.2.3.5", .code = BAD(FUNCTION, "EID02009")},
    {"policy OID too long", {SER}, .pol = "1.2.3.4,2.25.1234567890123456789012345678901234567890."
     "1234567890123456789012345678901234567890.1234567890123456789012345678901234567890."
     "1234567890123456789012345678901234567890.1234567890123456789012345678901234567890",
     .code = BAD(BAD_STRING, "EID02007")},
    {"no EKU", {SER}, .eku = "", .code = BAD(EKU, "EID02010")},
    {"anyExtendedKeyUsage is not clientAuth", {SER}, .eku = "anyExtendedKeyUsage",
     .code = BAD(EKU, "EID02011")},
    {"serverAuth and clientAuth", {SER}, .eku = "serverAuth,clientAuth"},
    {"keyUsage with digitalSignature", {SER}, .ku = "critical,digitalSignature,nonRepudiation"},
    {"keyUsage without digitalSignature", {SER}, .ku = "keyEncipherment",
     .code = BAD(KEYUSAGE, "EID02012")},
    {"forged signature", {SER}, .forge = 1, .code = BAD(UNTRUSTED, "EID02005")},
    {"other issuer name", {SER}, .forge = 2, .code = BAD(UNTRUSTED, "EID02004")},
    {"EKU extension twice", {SER}, .forge = 3, .code = BAD(PARSE, "EID02003")},
};

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, sh_ca, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static X509 *issue(const shape_t *sh)
{
    static long serial = 1;
    X509 *x = X509_new(), *y;
    X509_NAME *n = X509_NAME_new();
    unsigned char *der = NULL;
    const unsigned char *q;
    int i, len;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    for (i = 0; i < 5 && sh->ent[i].nid; i++) {
        X509_NAME_ENTRY *e = X509_NAME_ENTRY_create_by_NID(
            NULL, sh->ent[i].nid, sh->ent[i].type, (const unsigned char *)sh->ent[i].v,
            sh->ent[i].len);
        if (!e || X509_NAME_add_entry(n, e, -1, sh->ent[i].same_rdn ? -1 : 0) != 1)
            fail_msg("shape '%s': entry %d cannot be made", sh->what, i);
        X509_NAME_ENTRY_free(e);
    }
    if (X509_set_subject_name(x, n) != 1) /* OpenSSL cannot encode the name */
        fail_msg("shape '%s': subject cannot be encoded", sh->what);
    X509_NAME_free(n);
    n = X509_NAME_dup(X509_get_subject_name(sh_ca));
    if (sh->forge == 2)
        X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)"x", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_NAME_free(n);
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 30);
    X509_set_pubkey(x, sh_other_key);
    add_ext(x, NID_authority_key_identifier, "keyid:always");
    if (!sh->eku || *sh->eku)
        add_ext(x, NID_ext_key_usage, sh->eku ? sh->eku : "clientAuth");
    if (sh->forge == 3)
        add_ext(x, NID_ext_key_usage, "clientAuth");
    if (sh->ku)
        add_ext(x, NID_key_usage, sh->ku);
    if (sh->pol) {
        CERTIFICATEPOLICIES *cp = sk_POLICYINFO_new_null();
        char *last, *tok, *list = apr_pstrdup(pool, sh->pol);
        for (tok = apr_strtok(list, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
            POLICYINFO *pi = POLICYINFO_new();
            ASN1_OBJECT_free(pi->policyid);
            pi->policyid = OBJ_txt2obj(tok, 1);
            sk_POLICYINFO_push(cp, pi);
        }
        assert_int_equal(X509_add1_ext_i2d(x, NID_certificate_policies, cp, 0, 0), 1);
        CERTIFICATEPOLICIES_free(cp);
    }
    if (sh->alt[0].v) { /* GEN_OTHERNAME is 0: presence is the value */
        GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        for (i = 0; i < 2 && sh->alt[i].v; i++) {
            GENERAL_NAME *g = GENERAL_NAME_new();
            ASN1_STRING *s = ASN1_STRING_type_new(sh->alt[i].type);
            ASN1_STRING_set(s, sh->alt[i].v, sh->alt[i].len);
            if (sh->alt[i].kind == GEN_EMAIL) {
                GENERAL_NAME_set0_value(g, GEN_EMAIL, s);
            }
            else {
                ASN1_TYPE *t = ASN1_TYPE_new();
                ASN1_TYPE_set(t, sh->alt[i].type, s);
                GENERAL_NAME_set0_othername(g, OBJ_nid2obj(NID_ms_upn), t);
            }
            sk_GENERAL_NAME_push(gens, g);
        }
        if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) != 1)
            fail_msg("shape '%s': subjectAltName cannot be encoded", sh->what);
        GENERAL_NAMES_free(gens);
    }
    assert_true(X509_sign(x, sh->forge == 1 ? sh_other_key : sh_key, EVP_sha256()) > 0);
    /* Round trip through DER, as a certificate arrives from mod_ssl. */
    len = i2d_X509(x, &der);
    assert_true(len > 0);
    q = der;
    y = d2i_X509(NULL, &q, len);
    assert_non_null(y);
    OPENSSL_free(der);
    X509_free(x);
    return y;
}

static void test_shapes(void **state)
{
    const eid_trust_profile_t *pp[1] = {shp};
    size_t i;

    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        const shape_t *sh = &shapes[i];
        X509 *x = issue(sh);
        eid_identity_t *id = (eid_identity_t *)1;
        eid_result_t res = {0};
        eid_cert_code_e rc = eid_cert_identify(pool, x, pp, 1, apr_time_now(), &id, &res);

        X509_free(x);
        if (rc != sh->code || (sh->tag && (!res.tag || strcmp(res.tag, sh->tag))))
            fail_msg("shape '%s': code %d %s (%s), expected %d %s", sh->what, rc,
                     res.tag ? res.tag : "-", res.reason ? res.reason : "-", sh->code,
                     sh->tag ? sh->tag : "-");
        if (rc != EID_CERT_OK) {
            assert_null(id);
            continue;
        }
        check_identity_shape(sh->what, id);
        expect_str(sh->what, "display_name", id->display_name, sh->cn);
        expect_str(sh->what, "email", id->email, sh->email);
        expect_str(sh->what, "upn", id->upn, sh->upn);
        expect_str(sh->what, "loa_uri", id->loa_uri, sh->loa_uri);
        if (id->loa != (sh->loa ? sh->loa : 3))
            fail_msg("shape '%s': loa %d", sh->what, id->loa);
        if (sh->pol && (!id->policy_oids || id->policy_oids->nelts < 1))
            fail_msg("shape '%s': policy OIDs missing", sh->what);
    }
}

static int shapes_setup(void)
{
    X509_NAME *n = X509_NAME_new();
    BIO *b = BIO_new(BIO_s_mem());
    char *d;
    long len;

    sh_key = EVP_EC_gen("P-256");
    sh_other_key = EVP_EC_gen("P-256");
    sh_ca = X509_new();
    X509_set_version(sh_ca, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(sh_ca), 1);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"shapes CA", -1, -1,
                               0);
    X509_set_subject_name(sh_ca, n);
    X509_set_issuer_name(sh_ca, n);
    X509_NAME_free(n);
    X509_gmtime_adj(X509_getm_notBefore(sh_ca), -86400);
    X509_gmtime_adj(X509_getm_notAfter(sh_ca), 86400 * 365);
    X509_set_pubkey(sh_ca, sh_key);
    add_ext(sh_ca, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(sh_ca, NID_key_usage, "critical,keyCertSign");
    add_ext(sh_ca, NID_subject_key_identifier, "hash");
    X509_sign(sh_ca, sh_key, EVP_sha256());
    PEM_write_bio_X509(b, sh_ca);
    len = BIO_get_mem_data(b, &d);
    sh_ca_path = write_tmp(apr_pstrndup(pool, d, (apr_size_t)len));
    BIO_free(b);
    shp = eid_trust_profile_create(pool, "shapes");
    if (eid_trust_profile_add_issuer(shp, pool, sh_ca_path, 3, EID_IDK_ANY, EID_ISSUER_ROOT) ||
        eid_trust_profile_add_policy(shp, pool, "1.2.3.4", 4, 0) ||
        eid_trust_profile_add_policy(shp, pool, "1.2.3.5", 0, 1) ||
        eid_trust_profile_add_policy(shp, pool, "1.2.3.6", 2, 0))
        return -1;
    return 0;
}

static void shapes_teardown(void)
{
    if (sh_ca_path)
        unlink(sh_ca_path);
    X509_free(sh_ca);
    EVP_PKEY_free(sh_key);
    EVP_PKEY_free(sh_other_key);
}

static int setup(void **state)
{
    const char *env = getenv("EID_PKI");
    json_error_t jerr;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    pki = env && *env ? env : "build/pki";
    manifest = json_load_file(pki_path("manifest.json"), 0, &jerr);
    if (!json_is_object(manifest)) {
        fprintf(stderr, "test_cert: cannot load %s: %s (run `make pki` or set EID_PKI)\n",
                pki_path("manifest.json"), jerr.text);
        return -1;
    }
    siths = eid_trust_profile_create(pool, "siths");
    eidp = eid_trust_profile_create(pool, "eid");
    if (eid_trust_profile_add_issuer(siths, pool, pki_path("ca/hsa3.pem"), 3, EID_IDK_HSA, 0) ||
        eid_trust_profile_add_issuer(siths, pool, pki_path("ca/hsa2.pem"), 2, EID_IDK_HSA, 0) ||
        eid_trust_profile_add_issuer(siths, pool, pki_path("ca/id3.pem"), 3, EID_IDK_PNR, 0) ||
        eid_trust_profile_add_issuer(siths, pool, pki_path("ca/function.pem"), 0, 0, 1) ||
        eid_trust_profile_add_policy(siths, pool, "1.2.752.74.8.512", 3, 0) ||
        eid_trust_profile_add_issuer(eidp, pool, pki_path("ca/eid.pem"), 3,
                                     EID_IDK_PNR | EID_IDK_COORD, 0)) {
        fprintf(stderr, "test_cert: cannot configure the test profiles\n");
        return -1;
    }
    both[0] = siths;
    both[1] = eidp;
    return shapes_setup();
}

static int teardown(void **state)
{
    shapes_teardown();
    json_decref(manifest);
    apr_pool_destroy(pool); /* runs the cleanups that free the CA certificates */
    apr_terminate();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pki_manifest),
        cmocka_unit_test(test_pki_key_users),
        cmocka_unit_test(test_pki_identity_details),
        cmocka_unit_test(test_validity_at_now),
        cmocka_unit_test(test_profile_order),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_policy_config),
        cmocka_unit_test(test_policy_mapping),
        cmocka_unit_test(test_identify_pem),
        cmocka_unit_test(test_shapes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
