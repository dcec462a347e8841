/*
 * eid_cert.c - X.509 client certificate -> identity, under trust profiles.
 *
 * The order of the checks is fixed and documented in eid_cert_identify():
 * trust first (nothing else in an untrusted certificate deserves a look),
 * then what the certificate is for (function, EKU, keyUsage), its dates,
 * the shape of the subject, and only then its strings.  Every refusal has
 * its own tag; reasons name the attribute at fault but never quote a value
 * from the certificate, which may be hostile or a personnummer.
 * Trust profiles are built in eid_cert_trust.c; strings are read as text in
 * eid_cert_str.c (eid_cert_int.h is what the three share).
 */
#include "eid_cert_int.h"

#include "eid/eid_hsa.h"
#include "eid/eid_identity.h"
#include "eid/eid_pnr.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define POLICY_TEXT_MAX 200 /* a policy OID read from a certificate, dotted */

/* ---- identifiers ---------------------------------------------------------- */

eid_serial_kind_e eid_cert_classify_serial(const char *s, size_t len, char out[32])
{
    eid_pnr_kind_e k;

    out[0] = '\0';
    if (!s)
        return EID_SERIAL_INVALID;
    if ((k = eid_pnr_classify(s, len)) != EID_PNR_INVALID) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    else if ((k = eid_pnr_classify_etsi(s, len, out)) != EID_PNR_INVALID) {
        /* out already holds the 12 digits */
    }
    else if (eid_hsa_ok(s, len, 0, NULL)) {
        memcpy(out, s, len); /* len <= EID_HSA_MAXLEN < 32 */
        out[len] = '\0';
        return EID_SERIAL_HSA;
    }
    else {
        return EID_SERIAL_INVALID;
    }
    return k == EID_PNR_SAMORDNINGSNUMMER ? EID_SERIAL_COORD : EID_SERIAL_PNR;
}

/* ---- the checks, in the order eid_cert_identify() runs them --------------------- */

#define FAIL(code, tag, msg) return eid_result_set(res, NULL, (code), (tag), msg)

/* Why the signature is verified although mod_ssl built a chain: mod_ssl may
 * trust more CAs than this location (several virtual hosts, several CA
 * sets), and a name plus key-identifier match alone is something any CA
 * trusted there could forge. */
static int issued_by(X509 *cert, const eid_cert_issuer_t *iss, int *name_seen)
{
    EVP_PKEY *key;

    if (X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(iss->cert)) != 0)
        return 0;
    *name_seen = 1;
    if (X509_check_issued(iss->cert, cert) != X509_V_OK)
        return 0;
    key = X509_get0_pubkey(iss->cert);
    return key && X509_verify(cert, key) == 1;
}

static int find_issuer(X509 *cert, const eid_trust_profile_t *const *profiles, int n,
                       const eid_trust_profile_t **tp, const eid_cert_issuer_t **iss,
                       eid_result_t *res)
{
    int i, j, name_seen = 0;

    for (i = 0; i < n; i++) {
        if (!profiles || !profiles[i])
            continue;
        for (j = 0; j < profiles[i]->issuers->nelts; j++) {
            const eid_cert_issuer_t *c = &APR_ARRAY_IDX(profiles[i]->issuers, j, eid_cert_issuer_t);
            if (issued_by(cert, c, &name_seen)) {
                *tp = profiles[i];
                *iss = c;
                return EID_CERT_OK;
            }
        }
    }
    if (name_seen)
        FAIL(EID_CERT_UNTRUSTED, "EID02005",
             "certificate names a configured issuing CA but was not issued by it "
             "(key identifier or signature mismatch)");
    FAIL(EID_CERT_UNTRUSTED, "EID02004", "issuer is not an issuing CA of any trust profile");
}

typedef struct {
    apr_array_header_t *oids; /* const char *, dotted */
    int loa;                  /* 0 when no configured policy is present */
    const char *loa_oid;
    int is_function;
} policies_t;

static int read_policies(apr_pool_t *p, X509 *cert, const eid_trust_profile_t *tp,
                         policies_t *pol, eid_result_t *res)
{
    CERTIFICATEPOLICIES *cp;
    int crit = -1, i, j, rc = EID_CERT_OK;

    memset(pol, 0, sizeof(*pol));
    cp = X509_get_ext_d2i(cert, NID_certificate_policies, &crit, NULL);
    if (!cp) {
        if (crit == -1)
            return EID_CERT_OK;
        FAIL(EID_CERT_PARSE, "EID02006",
             "certificatePolicies extension is repeated or cannot be decoded");
    }
    pol->oids = apr_array_make(p, sk_POLICYINFO_num(cp) + 1, sizeof(const char *));
    for (i = 0; i < sk_POLICYINFO_num(cp); i++) {
        const ASN1_OBJECT *obj = sk_POLICYINFO_value(cp, i)->policyid;
        const unsigned char *der = OBJ_get0_data(obj);
        int der_len = (int)OBJ_length(obj), tlen;
        char *text;

        tlen = OBJ_obj2txt(NULL, 0, obj, 1);
        if (tlen <= 0 || tlen > POLICY_TEXT_MAX) {
            rc = eid_result_set(res, NULL, EID_CERT_BAD_STRING, "EID02007",
                                "a certificate policy OID is empty or too long");
            goto leave;
        }
        text = apr_palloc(p, (apr_size_t)tlen + 1);
        OBJ_obj2txt(text, tlen + 1, obj, 1);
        APR_ARRAY_PUSH(pol->oids, const char *) = text;
        for (j = 0; j < tp->policies->nelts; j++) {
            const eid_cert_policy_t *c = &APR_ARRAY_IDX(tp->policies, j, eid_cert_policy_t);
            if (c->der_len != der_len || memcmp(c->der, der, (size_t)der_len))
                continue;
            if (c->is_function)
                pol->is_function = 1;
            else if (c->loa > pol->loa) {
                pol->loa = c->loa;
                pol->loa_oid = text;
            }
        }
    }
leave:
    CERTIFICATEPOLICIES_free(cp);
    return rc;
}

static int check_usage(X509 *cert, eid_result_t *res)
{
    uint32_t flags = X509_get_extension_flags(cert);

    /* X509_get_extended_key_usage() answers "everything" when the extension
     * is absent; an e-ID without EKU is not accepted for client auth. */
    if (!(flags & EXFLAG_XKUSAGE))
        FAIL(EID_CERT_EKU, "EID02010",
             "certificate has no extendedKeyUsage (clientAuth required)");
    if (!(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT))
        FAIL(EID_CERT_EKU, "EID02011", "extendedKeyUsage does not contain clientAuth");
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE))
        FAIL(EID_CERT_KEYUSAGE, "EID02012",
             "keyUsage without digitalSignature (a signing, not an authentication, certificate)");
    return EID_CERT_OK;
}

static int asn1_time_sec(const ASN1_TIME *t, apr_int64_t *out)
{
    struct tm tm;

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    *out = eid_days_from_civil((apr_int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
                               (unsigned)tm.tm_mday) * 86400 +
           tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    return 1;
}

static int check_validity(X509 *cert, apr_time_t now, apr_time_t *expires, eid_result_t *res)
{
    apr_int64_t nb, na, t = apr_time_sec(now);

    if (!asn1_time_sec(X509_get0_notBefore(cert), &nb) ||
        !asn1_time_sec(X509_get0_notAfter(cert), &na))
        FAIL(EID_CERT_PARSE, "EID02013", "certificate validity dates cannot be read");
    if (t < nb)
        FAIL(EID_CERT_NOT_YET, "EID02014", "certificate is not yet valid");
    if (t > na)
        FAIL(EID_CERT_EXPIRED, "EID02015", "certificate has expired");
    *expires = apr_time_from_sec(na);
    return EID_CERT_OK;
}

/* The subject attributes we read, each at most once and alone in its RDN. */
enum { A_SERIAL, A_CN, A_GIVEN, A_SURNAME, A_O, A_L, A_EMAIL, A__COUNT };
static const struct {
    int nid;
    const char *label;
} subject_attrs[A__COUNT] = {
    {NID_serialNumber, "serialNumber"}, {NID_commonName, "CN"},
    {NID_givenName, "givenName"},       {NID_surname, "surname"},
    {NID_organizationName, "O"},        {NID_localityName, "L"},
    {NID_pkcs9_emailAddress, "emailAddress"},
};

static int in_multi_rdn(const X509_NAME *name, int i, int n)
{
    int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i));
    return (i > 0 && X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i - 1)) == set) ||
           (i + 1 < n && X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i + 1)) == set);
}

/* Reads the subject into val[] (UTF-8 in p; NULL when absent). */
static int read_subject(apr_pool_t *p, X509 *cert, const char *val[A__COUNT],
                        eid_result_t *res)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    int n = X509_NAME_entry_count(name), count[A__COUNT] = {0}, multi[A__COUNT] = {0};
    int where[A__COUNT] = {0}, i, k;

    for (i = 0; i < n; i++) {
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(name, i)));
        for (k = 0; k < A__COUNT; k++)
            if (subject_attrs[k].nid == nid) {
                count[k]++;
                where[k] = i;
                multi[k] |= in_multi_rdn(name, i, n);
            }
    }
    /* Never "first match wins": two identities in one certificate, or one
     * hidden in a multi-valued RDN that consumers order differently, is a
     * refusal, not a choice. */
    if (count[A_SERIAL] == 0)
        FAIL(EID_CERT_NO_SERIAL, "EID02016", "subject has no serialNumber");
    if (count[A_SERIAL] > 1)
        FAIL(EID_CERT_MULTI_SERIAL, "EID02017", "subject has more than one serialNumber");
    if (multi[A_SERIAL])
        FAIL(EID_CERT_MULTI_SERIAL, "EID02018", "subject serialNumber is in a multi-valued RDN");
    for (k = 0; k < A__COUNT; k++) {
        if (count[k] > 1)
            return eid_result_set(res, p, EID_CERT_DUP_ATTR, "EID02019",
                                  "subject attribute %s occurs more than once",
                                  subject_attrs[k].label);
        if (multi[k])
            return eid_result_set(res, p, EID_CERT_DUP_ATTR, "EID02020",
                                  "subject attribute %s is in a multi-valued RDN",
                                  subject_attrs[k].label);
    }
    for (k = 0; k < A__COUNT; k++) {
        eid_cert_str_err_e e;
        val[k] = NULL;
        if (!count[k])
            continue;
        e = eid_cert_asn1_to_utf8(p, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, where[k])),
                         &val[k]);
        if (e != STR_OK)
            return eid_result_set(res, p, EID_CERT_BAD_STRING, eid_cert_str_err_tag[e],
                                  "subject attribute %s %s", subject_attrs[k].label,
                                  eid_cert_str_err_text[e]);
        if (k != A_SERIAL && !*val[k])
            val[k] = NULL; /* an empty name is an absent one */
    }
    return EID_CERT_OK;
}

/* Sets *slot to v, refusing a second, different value. */
static int set_once(apr_pool_t *p, const char **slot, const char *v, const char *label,
                    eid_result_t *res)
{
    if (*slot && strcmp(*slot, v))
        return eid_result_set(res, p, EID_CERT_DUP_ATTR, "EID02029",
                              "%s occurs more than once with different values", label);
    *slot = v;
    return EID_CERT_OK;
}

/* subjectAltName rfc822Name and otherName UPN (1.3.6.1.4.1.311.20.2.3). */
static int read_san(apr_pool_t *p, X509 *cert, const char **email, const char **upn,
                    eid_result_t *res)
{
    GENERAL_NAMES *gens;
    int crit = -1, i, rc = EID_CERT_OK;

    *email = *upn = NULL;
    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    if (!gens) {
        if (crit == -1)
            return EID_CERT_OK;
        FAIL(EID_CERT_PARSE, "EID02024",
             "subjectAltName extension is repeated or cannot be decoded");
    }
    for (i = 0; i < sk_GENERAL_NAME_num(gens) && rc == EID_CERT_OK; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const ASN1_STRING *s = NULL;
        const char *label, **slot, *v = NULL;
        eid_cert_str_err_e e;

        if (g->type == GEN_EMAIL) {
            s = g->d.rfc822Name;
            label = "subjectAltName rfc822Name";
            slot = email;
        }
        else if (g->type == GEN_OTHERNAME && OBJ_obj2nid(g->d.otherName->type_id) == NID_ms_upn) {
            const ASN1_TYPE *t = g->d.otherName->value;
            /* Only a string member of the union may be read as one. */
            if (t && eid_cert_is_string_type(t->type))
                s = t->value.asn1_string;
            label = "subjectAltName UPN";
            slot = upn;
        }
        else {
            continue;
        }
        e = s ? eid_cert_asn1_to_utf8(p, s, &v) : STR_BAD_TYPE;
        if (e != STR_OK)
            rc = eid_result_set(res, p, EID_CERT_BAD_STRING, eid_cert_str_err_tag[e], "%s %s",
                                label, eid_cert_str_err_text[e]);
        else if (*v)
            rc = set_once(p, slot, v, label, res);
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

/* Indexed by eid_serial_kind_e. */
static const unsigned kind_bit[] = {0, EID_IDK_PNR, EID_IDK_COORD, EID_IDK_HSA};
static const char *const kind_name[] = {"", "personnummer", "samordningsnummer", "HSA-ID"};

/* The body of eid_cert_identify(); the caller clears OpenSSL's error queue. */
static int identify(apr_pool_t *p, X509 *cert, const eid_trust_profile_t *const *profiles,
                    int nprofiles, apr_time_t now, eid_identity_t **out, eid_result_t *res)
{
    const eid_trust_profile_t *tp = NULL;
    const eid_cert_issuer_t *iss = NULL;
    const char *val[A__COUNT], *email, *upn, *issuer_dn, *subject_dn;
    char ident[32], orgnr[11];
    eid_serial_kind_e kind;
    eid_identity_t *id;
    apr_time_t expires = 0;
    policies_t pol;
    int rc;

    if (!p || !cert)
        FAIL(EID_CERT_PARSE, "EID02001", "no certificate");
    if (X509_get_extension_flags(cert) & EXFLAG_INVALID)
        FAIL(EID_CERT_PARSE, "EID02003",
             "certificate extensions are repeated or cannot be decoded");
    if ((rc = find_issuer(cert, profiles, nprofiles, &tp, &iss, res)))
        return rc;
    if ((rc = read_policies(p, cert, tp, &pol, res)))
        return rc;
    /* Function before EKU: a server certificate from the function CA is
     * refused for what it is, whatever its key usages say. */
    if (iss->is_function)
        FAIL(EID_CERT_FUNCTION, "EID02008", "issuer is a function-certificate CA");
    if (pol.is_function)
        FAIL(EID_CERT_FUNCTION, "EID02009", "certificate carries a function-certificate policy");
    if ((rc = check_usage(cert, res)) || (rc = check_validity(cert, now, &expires, res)) ||
        (rc = read_subject(p, cert, val, res)))
        return rc;

    kind = eid_cert_classify_serial(val[A_SERIAL], strlen(val[A_SERIAL]), ident);
    if (kind == EID_SERIAL_INVALID)
        FAIL(EID_CERT_BAD_SERIAL, "EID02025",
             "subject serialNumber is neither a personnummer, a samordningsnummer nor an HSA-ID");
    if (!(iss->id_kinds & kind_bit[kind]))
        return eid_result_set(res, p, EID_CERT_ID_KIND, "EID02026",
                              "issuer does not vouch for %s identifiers (profile %s)",
                              kind_name[kind], tp->name);
    if ((rc = read_san(p, cert, &email, &upn, res)))
        return rc;
    if (val[A_EMAIL] && email && strcasecmp(val[A_EMAIL], email))
        FAIL(EID_CERT_DUP_ATTR, "EID02027",
             "subject emailAddress and subjectAltName rfc822Name differ");
    issuer_dn = eid_cert_dn_string(p, X509_get_issuer_name(cert));
    subject_dn = eid_cert_dn_string(p, X509_get_subject_name(cert));
    if (!issuer_dn || !subject_dn)
        FAIL(EID_CERT_BAD_STRING, "EID02028",
             "issuer or subject name cannot be rendered as clean UTF-8 text");

    id = eid_identity_make(p);
    id->method = EID_METHOD_CERT;
    id->profile = apr_pstrdup(p, tp->name);
    id->issuer = *issuer_dn ? issuer_dn : NULL;
    id->subject = *subject_dn ? subject_dn : NULL;
    id->serial = eid_cert_serial_hex(p, X509_get0_serialNumber(cert));
    if (kind == EID_SERIAL_HSA) {
        id->hsa_id = apr_pstrdup(p, ident);
        if (eid_hsa_ok(ident, strlen(ident), 0, orgnr))
            id->org_number = apr_pstrdup(p, orgnr);
    }
    else {
        id->pnr = apr_pstrdup(p, ident);
        id->pnr_is_coordination = kind == EID_SERIAL_COORD;
    }
    id->display_name = val[A_CN];
    id->given_name = val[A_GIVEN];
    id->surname = val[A_SURNAME];
    id->org_name = val[A_O];
    id->email = val[A_EMAIL] ? val[A_EMAIL] : email;
    id->upn = upn;
    id->policy_oids = pol.oids && pol.oids->nelts ? pol.oids : NULL;
    id->loa = pol.loa ? pol.loa : iss->loa;
    id->loa_uri = pol.loa ? pol.loa_oid : NULL;
    id->expires = expires;
    *out = id;
    return eid_result_set(res, NULL, EID_CERT_OK, NULL, "ok");
}

eid_cert_code_e eid_cert_identify(apr_pool_t *p, X509 *cert,
                                  const eid_trust_profile_t *const *profiles,
                                  int nprofiles, apr_time_t now,
                                  eid_identity_t **out, eid_result_t *res)
{
    eid_identity_t *id = NULL;
    int rc = identify(p, cert, profiles, nprofiles, now, &id, res);

    /* Why the queue is cleared: failed OpenSSL calls above (a mismatching
     * signature, an undecodable extension) leave entries in this thread's
     * error queue, and mod_ssl's next SSL_get_error() on the thread would
     * read them as a TLS failure. */
    ERR_clear_error();
    if (out)
        *out = rc == EID_CERT_OK ? id : NULL;
    return (eid_cert_code_e)rc;
}

eid_cert_code_e eid_cert_identify_pem(apr_pool_t *p, const char *pem, size_t len,
                                      const eid_trust_profile_t *const *profiles,
                                      int nprofiles, apr_time_t now,
                                      eid_identity_t **out, eid_result_t *res)
{
    eid_cert_code_e rc;
    X509 *x = NULL;
    BIO *b;

    if (out)
        *out = NULL;
    if (pem && len > 0 && len <= INT_MAX && (b = BIO_new_mem_buf(pem, (int)len))) {
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    if (!x) {
        ERR_clear_error();
        return (eid_cert_code_e)eid_result_set(res, NULL, EID_CERT_PARSE, "EID02002",
                                               "client certificate PEM cannot be parsed");
    }
    rc = eid_cert_identify(p, x, profiles, nprofiles, now, out, res);
    X509_free(x);
    return rc;
}

/* The subject DN for a log line or an audit record.  A personnummer or
 * samordningsnummer in its serialNumber is replaced by its pseudonym wherever
 * it stands in the DN (a CN may repeat it); a serialNumber of no known kind,
 * which may still be a personal number in a shape we do not parse, withholds
 * the whole subject.  Redacted before it is cut, so no partial number stays. */
static const char *safe_subject(apr_pool_t *p, const X509_NAME *name,
                                const unsigned char *key, size_t key_len)
{
    const char *dn = eid_cert_dn_string(p, name);
    int i = -1;

    if (!dn)
        return NULL;
    while ((i = X509_NAME_get_index_by_NID(name, NID_serialNumber, i)) >= 0) {
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        unsigned char *u = NULL;
        int n = ASN1_STRING_to_UTF8(&u, v);
        char ident[32];
        eid_serial_kind_e k = EID_SERIAL_INVALID;

        if (n > 0 && n < (int)sizeof(ident))
            k = eid_cert_classify_serial((const char *)u, (size_t)n, ident);
        OPENSSL_free(u);
        if (k == EID_SERIAL_INVALID)
            return "[withheld: serialNumber of unknown form]";
        if (k != EID_SERIAL_HSA)
            dn = eid_pnr_redact(p, dn, ident, key, key_len);
    }
    /* Why a second pass: a personal number elsewhere in the DN (a CN with
     * the pnr beside an HSA-ID serialNumber, a name with no serialNumber, a
     * spelling eid_pnr_redact() does not know) is not the serialNumber's. */
    return eid_cert_text_bounded(p, eid_pnr_mask(p, dn));
}

int eid_cert_ref_pem(apr_pool_t *p, const char *pem, size_t len, const unsigned char *key,
                     size_t key_len, eid_cert_ref_t *out)
{
    X509 *x = NULL;
    BIO *b;

    memset(out, 0, sizeof(*out));
    if (pem && len > 0 && len <= INT_MAX && (b = BIO_new_mem_buf(pem, (int)len))) {
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    if (!x) {
        ERR_clear_error();
        return -1;
    }
    /* the issuer masked as well: an unverified (EID01002) certificate's
     * issuer is as free-form as its subject (self-signed: the same name) */
    out->issuer = eid_cert_text_bounded(
        p, eid_pnr_mask(p, eid_cert_dn_string(p, X509_get_issuer_name(x))));
    out->subject = safe_subject(p, X509_get_subject_name(x), key, key_len);
    out->serial = eid_cert_serial_hex(p, X509_get0_serialNumber(x));
    X509_free(x);
    ERR_clear_error();
    return 0;
}
