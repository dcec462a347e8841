/*
 * eid_cert.c - X.509 client certificate -> identity, under trust profiles.
 *
 * The order of the checks is fixed and documented in eid_cert_identify():
 * trust first (nothing else in an untrusted certificate deserves a look),
 * then what the certificate is for (function, EKU, keyUsage), its dates,
 * the shape of the subject, and only then its strings.  Every refusal has
 * its own tag; reasons name the attribute at fault but never quote a value
 * from the certificate, which may be hostile or a personnummer.
 */
#include "eid/eid_cert.h"

#include "eid/eid_hsa.h"
#include "eid/eid_pnr.h"

#include <apr_strings.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define OID_TEXT_MAX 128   /* a configured policy OID, dotted */
#define POLICY_TEXT_MAX 200 /* a policy OID read from a certificate, dotted */

typedef struct {
    X509 *cert; /* owned; freed by a cleanup on the pool given to add_issuer */
    int loa;
    unsigned id_kinds;
    int is_function;
} cert_issuer_t;

typedef struct {
    const unsigned char *der; /* OID content octets, compared byte for byte */
    int der_len;
    const char *oid; /* canonical dotted text */
    int loa;
    int is_function;
} cert_policy_t;

struct eid_trust_profile {
    const char *name;
    apr_array_header_t *issuers;  /* cert_issuer_t */
    apr_array_header_t *policies; /* cert_policy_t */
};

/* ---- strings --------------------------------------------------------------- */

typedef enum { STR_OK = 0, STR_BAD_TYPE, STR_BAD_ENCODING, STR_CONTROL } str_err_e;

static const char *const str_err_text[] = {"ok", "has a string type that is not allowed",
                                           "is not valid in its encoding",
                                           "contains NUL or a control character"};
static const char *const str_err_tag[] = {NULL, "EID02021", "EID02022", "EID02023"};

/* C0, DEL and C1.  Why C1 as well: U+0085 (NEL) is a line break to some
 * consumers, and none of these has a place in a name or an identifier. */
static int is_control(unsigned long cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF, no truncated sequence; and no control character. */
static str_err_e utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i], lo = 0x80, hi = 0xBF;
        unsigned long cp;
        size_t need, k;

        if (c < 0x80) {
            if (is_control(c))
                return STR_CONTROL;
            i++;
            continue;
        }
        /* The second byte's range rules out overlong forms (E0, F0),
         * surrogates (ED) and code points above U+10FFFF (F4). */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        }
        else {
            return STR_BAD_ENCODING;
        }
        cp = c & (0x3F >> need);
        if (n - i - 1 < need)
            return STR_BAD_ENCODING;
        for (k = 1; k <= need; k++) {
            unsigned char cc = s[i + k];
            if (cc < lo || cc > hi)
                return STR_BAD_ENCODING;
            lo = 0x80;
            hi = 0xBF;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (is_control(cp))
            return STR_CONTROL;
        i += need + 1;
    }
    return STR_OK;
}

static char *utf8_put(char *o, unsigned long cp)
{
    static const unsigned char lead[] = {0x00, 0xC0, 0xE0, 0xF0};
    int n = cp < 0x80 ? 0 : cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;

    *o++ = (char)(lead[n] | (cp >> (6 * n)));
    while (n-- > 0)
        *o++ = (char)(0x80 | ((cp >> (6 * n)) & 0x3F));
    return o;
}

/* Fixed-width encodings: Latin-1 (T61 as OpenSSL and mod_ssl read it),
 * UCS-2 (BMPString) and UCS-4 (UniversalString), big-endian. */
static str_err_e wide_to_utf8(apr_pool_t *p, const unsigned char *d, size_t n, size_t width,
                              const char **out)
{
    char *buf, *o;
    size_t i;

    if (n % width)
        return STR_BAD_ENCODING;
    o = buf = apr_palloc(p, n / width * 4 + 1);
    for (i = 0; i < n; i += width) {
        unsigned long cp = 0;
        size_t k;
        for (k = 0; k < width; k++)
            cp = (cp << 8) | d[i + k];
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return STR_BAD_ENCODING;
        if (is_control(cp))
            return STR_CONTROL;
        o = utf8_put(o, cp);
    }
    *o = '\0';
    *out = buf;
    return STR_OK;
}

static str_err_e utf8_copy(apr_pool_t *p, const unsigned char *d, size_t n, const char **out)
{
    str_err_e e = utf8_check(d, n);
    if (e == STR_OK)
        *out = n ? apr_pstrmemdup(p, (const char *)d, n) : "";
    return e;
}

/*
 * An ASN.1 string as UTF-8 in `p`.  Only the string types a name may use are
 * accepted.  Why the 7-bit types are checked for bytes >= 0x80 instead of
 * being read as Latin-1: the same bytes would then mean one text to us and
 * another to a consumer that reads them as UTF-8.
 */
static str_err_e asn1_to_utf8(apr_pool_t *p, const ASN1_STRING *a, const char **out)
{
    const unsigned char *d = ASN1_STRING_get0_data(a);
    int len = ASN1_STRING_length(a);
    size_t n, i;

    *out = NULL;
    if (len < 0 || (len > 0 && !d))
        return STR_BAD_ENCODING;
    n = (size_t)len;
    switch (ASN1_STRING_type(a)) {
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_NUMERICSTRING:
    case V_ASN1_VISIBLESTRING:
        for (i = 0; i < n; i++)
            if (d[i] >= 0x80)
                return STR_BAD_ENCODING;
        return utf8_copy(p, d, n, out); /* 7-bit ASCII is UTF-8 */
    case V_ASN1_UTF8STRING:
        return utf8_copy(p, d, n, out);
    case V_ASN1_T61STRING:
        return wide_to_utf8(p, d, n, 1, out);
    case V_ASN1_BMPSTRING:
        return wide_to_utf8(p, d, n, 2, out);
    case V_ASN1_UNIVERSALSTRING:
        return wide_to_utf8(p, d, n, 4, out);
    default:
        return STR_BAD_TYPE;
    }
}

/* RFC 2253 text of a name, UTF-8 with non-ASCII kept; NULL when OpenSSL
 * cannot render it or the result is not clean UTF-8. */
static const char *dn_string(apr_pool_t *p, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *s = NULL;
    char *data;
    long n;

    if (!b)
        return NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
        (n = BIO_get_mem_data(b, &data)) >= 0 &&
        utf8_check((const unsigned char *)data, (size_t)n) == STR_OK)
        s = apr_pstrmemdup(p, n ? data : "", (apr_size_t)n);
    BIO_free(b);
    return s;
}

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

/* ---- trust profiles ---------------------------------------------------------- */

eid_trust_profile_t *eid_trust_profile_create(apr_pool_t *p, const char *name)
{
    eid_trust_profile_t *tp = apr_pcalloc(p, sizeof(*tp));
    tp->name = apr_pstrdup(p, name ? name : "");
    tp->issuers = apr_array_make(p, 4, sizeof(cert_issuer_t));
    tp->policies = apr_array_make(p, 4, sizeof(cert_policy_t));
    return tp;
}

const char *eid_trust_profile_name(const eid_trust_profile_t *tp)
{
    return tp->name;
}

int eid_trust_profile_issuer_count(const eid_trust_profile_t *tp)
{
    return tp ? tp->issuers->nelts : 0;
}

static apr_status_t x509_cleanup(void *data)
{
    X509_free(data);
    return APR_SUCCESS;
}

/* Why X509_check_ca() == 1 exactly: only basicConstraints cA=TRUE (with
 * keyCertSign if keyUsage is present) makes an issuer; OpenSSL's lenient
 * answers (v1 self-signed, keyUsage alone, Netscape types) do not. */
static const char *check_issuer_cert(apr_pool_t *p, X509 *x, int i, const char *path)
{
    const char *subj = dn_string(p, X509_get_subject_name(x));

    if (!subj)
        subj = "(unprintable subject)";
    if (X509_get_extension_flags(x) & EXFLAG_INVALID)
        return apr_psprintf(p, "certificate %d in %s (%s) has extensions that cannot be "
                            "decoded", i, path, subj);
    if (X509_check_ca(x) != 1)
        return apr_psprintf(p, "certificate %d in %s (%s) is not a CA certificate "
                            "(basicConstraints cA=TRUE required)", i, path, subj);
    if (!X509_get0_pubkey(x))
        return apr_psprintf(p, "certificate %d in %s (%s) has an unusable public key", i,
                            path, subj);
    return NULL;
}

const char *eid_trust_profile_add_issuer(eid_trust_profile_t *tp, apr_pool_t *p,
                                         const char *path, int loa,
                                         unsigned id_kinds, unsigned flags)
{
    const int is_function = (flags & EID_ISSUER_FUNCTION) != 0;
    STACK_OF(X509) *certs = NULL;
    const char *err = NULL;
    struct stat st;
    unsigned long e;
    BIO *bio = NULL;
    FILE *f = NULL;
    X509 *x;
    char ebuf[128];
    int i;

    if (!tp || !p || !path)
        return "no trust profile or CA file given";
    if (loa < 0 || loa > 4)
        return apr_psprintf(p, "level of assurance %d is not in 0-4", loa);
    if (id_kinds & ~(unsigned)EID_IDK_ANY)
        return "unknown identifier kind";
    if (flags & ~(unsigned)(EID_ISSUER_FUNCTION | EID_ISSUER_ROOT))
        return "unknown issuer flag";
    if (!is_function && !id_kinds)
        return "a person-certificate issuer must vouch for at least one identifier kind";
    /* fopen() also "opens" a directory; fstat() tells it from a file. */
    if (!(f = fopen(path, "r")) || fstat(fileno(f), &st) != 0) {
        err = apr_psprintf(p, "cannot read CA file %s: %s", path,
                           apr_strerror(APR_FROM_OS_ERROR(errno), ebuf, sizeof(ebuf)));
        goto leave;
    }
    if (!S_ISREG(st.st_mode)) {
        err = apr_psprintf(p, "CA file %s is not a regular file", path);
        goto leave;
    }
    ERR_clear_error();
    if (!(bio = BIO_new_fp(f, BIO_CLOSE)) || !(certs = sk_X509_new_null())) {
        err = "out of memory";
        goto leave;
    }
    f = NULL; /* the BIO owns it now */
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            err = "out of memory";
            goto leave;
        }
    }
    /* The reader stops with "no start line" at the end of the file; any
     * other error is a damaged certificate, and a file with one damaged
     * certificate is refused as a whole rather than half-loaded. */
    e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        err = apr_psprintf(p, "certificate %d in %s cannot be parsed", sk_X509_num(certs) + 1,
                           path);
        goto leave;
    }
    if (sk_X509_num(certs) == 0) {
        err = apr_psprintf(p, "no PEM certificate in %s", path);
        goto leave;
    }
    /* Why exactly one: a bundle (roots, other issuing CAs) made every CA in
     * it an issuer of this profile, at this level and for these identifier
     * kinds - a reserve-card CA got LoA 3, an HSA-ID CA vouched for
     * personnummer.  One directive per issuing CA says what each one is. */
    if (sk_X509_num(certs) != 1) {
        err = apr_psprintf(p, "%s holds %d certificates: the file must hold exactly one "
                           "issuing CA certificate (one EidTrustIssuer line per issuing "
                           "CA; roots belong in SSLCACertificateFile only)", path,
                           sk_X509_num(certs));
        goto leave;
    }
    for (i = 0; i < sk_X509_num(certs); i++)
        if ((err = check_issuer_cert(p, sk_X509_value(certs, i), i + 1, path)))
            goto leave;
    /* A root issues CAs, not people: as an issuer it refuses every card at
     * run time (they are issued by the CA below it), unless the operator says
     * that this root signs end-entity certificates itself. */
    x = sk_X509_value(certs, 0);
    if (!(flags & EID_ISSUER_ROOT) &&
        X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0) {
        const char *subj = dn_string(p, X509_get_subject_name(x));
        err = apr_psprintf(p, "the certificate in %s (%s) is self-signed: a root CA. Name "
                           "the issuing CA below it, or add the option root-issuer if this "
                           "root itself issues the end-entity certificates", path,
                           subj ? subj : "(unprintable subject)");
        goto leave;
    }

    /* All good: move the certificates into the profile.  X509_check_ca()
     * above also filled OpenSSL's extension cache, so the shared objects are
     * only read from now on, by any number of threads. */
    while ((x = sk_X509_shift(certs)) != NULL) {
        cert_issuer_t *iss = apr_array_push(tp->issuers);
        iss->cert = x;
        iss->loa = loa;
        iss->id_kinds = id_kinds;
        iss->is_function = is_function ? 1 : 0;
        apr_pool_cleanup_register(p, x, x509_cleanup, apr_pool_cleanup_null);
    }

leave:
    sk_X509_pop_free(certs, X509_free);
    BIO_free(bio);
    if (f)
        fclose(f);
    ERR_clear_error();
    return err;
}

/* Dotted decimal, at least two arcs, no empty arc, no leading zero, first
 * arc 0-2 and second arc 0-39 under 0 and 1.  OpenSSL's own parser accepts
 * "1..2" and "1.02", which would silently configure another OID. */
static int oid_syntax_ok(const char *s)
{
    size_t len = strlen(s), i = 0, arcs = 0;

    if (len == 0 || len > OID_TEXT_MAX)
        return 0;
    while (i <= len) {
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start || (s[start] == '0' && i - start > 1))
            return 0;
        if (arcs == 0 && (i - start != 1 || s[start] > '2'))
            return 0;
        if (arcs == 1 && s[0] < '2' &&
            (i - start > 2 || (i - start == 2 && s[start] > '3')))
            return 0;
        arcs++;
        if (i == len)
            break;
        if (s[i] != '.')
            return 0;
        i++;
    }
    return arcs >= 2;
}

const char *eid_trust_profile_add_policy(eid_trust_profile_t *tp, apr_pool_t *p,
                                         const char *oid, int loa, int is_function)
{
    ASN1_OBJECT *obj;
    cert_policy_t *pol;
    char text[OID_TEXT_MAX + 1];
    int i, n;

    if (!tp || !p || !oid)
        return "no trust profile or policy OID given";
    if (!is_function && (loa < 1 || loa > 4))
        return apr_psprintf(p, "level of assurance %d is not in 1-4", loa);
    obj = oid_syntax_ok(oid) ? OBJ_txt2obj(oid, 1) : NULL;
    n = obj ? OBJ_obj2txt(text, sizeof(text), obj, 1) : 0;
    if (n <= 0 || (size_t)n >= sizeof(text) || OBJ_length(obj) == 0) {
        ASN1_OBJECT_free(obj);
        ERR_clear_error();
        return apr_psprintf(p, "'%s' is not a dotted-decimal OID", oid);
    }
    for (i = 0; i < tp->policies->nelts; i++)
        if (!strcmp(APR_ARRAY_IDX(tp->policies, i, cert_policy_t).oid, text)) {
            ASN1_OBJECT_free(obj);
            return apr_psprintf(p, "policy %s is already configured in profile %s", text,
                                tp->name);
        }
    pol = apr_array_push(tp->policies);
    pol->der_len = (int)OBJ_length(obj);
    pol->der = apr_pmemdup(p, OBJ_get0_data(obj), (apr_size_t)pol->der_len);
    pol->oid = apr_pstrdup(p, text);
    pol->loa = is_function ? 0 : loa;
    pol->is_function = is_function ? 1 : 0;
    ASN1_OBJECT_free(obj);
    return NULL;
}

/* ---- the checks, in the order eid_cert_identify() runs them --------------------- */

#define FAIL(code, tag, msg) return eid_result_set(res, NULL, (code), (tag), msg)

/* Why the signature is verified although mod_ssl built a chain: mod_ssl may
 * trust more CAs than this location (several virtual hosts, several CA
 * sets), and a name plus key-identifier match alone is something any CA
 * trusted there could forge. */
static int issued_by(X509 *cert, const cert_issuer_t *iss, int *name_seen)
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
                       const eid_trust_profile_t **tp, const cert_issuer_t **iss,
                       eid_result_t *res)
{
    int i, j, name_seen = 0;

    for (i = 0; i < n; i++) {
        if (!profiles || !profiles[i])
            continue;
        for (j = 0; j < profiles[i]->issuers->nelts; j++) {
            const cert_issuer_t *c = &APR_ARRAY_IDX(profiles[i]->issuers, j, cert_issuer_t);
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
            const cert_policy_t *c = &APR_ARRAY_IDX(tp->policies, j, cert_policy_t);
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

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static apr_int64_t days_from_civil(apr_int64_t y, unsigned m, unsigned d)
{
    apr_int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (apr_int64_t)doe - 719468;
}

static int asn1_time_sec(const ASN1_TIME *t, apr_int64_t *out)
{
    struct tm tm;

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    *out = days_from_civil((apr_int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
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
        str_err_e e;
        val[k] = NULL;
        if (!count[k])
            continue;
        e = asn1_to_utf8(p, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, where[k])),
                         &val[k]);
        if (e != STR_OK)
            return eid_result_set(res, p, EID_CERT_BAD_STRING, str_err_tag[e],
                                  "subject attribute %s %s", subject_attrs[k].label,
                                  str_err_text[e]);
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

static int is_string_type(int t)
{
    return t == V_ASN1_UTF8STRING || t == V_ASN1_PRINTABLESTRING || t == V_ASN1_IA5STRING ||
           t == V_ASN1_NUMERICSTRING || t == V_ASN1_VISIBLESTRING || t == V_ASN1_T61STRING ||
           t == V_ASN1_BMPSTRING || t == V_ASN1_UNIVERSALSTRING;
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
        str_err_e e;

        if (g->type == GEN_EMAIL) {
            s = g->d.rfc822Name;
            label = "subjectAltName rfc822Name";
            slot = email;
        }
        else if (g->type == GEN_OTHERNAME && OBJ_obj2nid(g->d.otherName->type_id) == NID_ms_upn) {
            const ASN1_TYPE *t = g->d.otherName->value;
            /* Only a string member of the union may be read as one. */
            if (t && is_string_type(t->type))
                s = t->value.asn1_string;
            label = "subjectAltName UPN";
            slot = upn;
        }
        else {
            continue;
        }
        e = s ? asn1_to_utf8(p, s, &v) : STR_BAD_TYPE;
        if (e != STR_OK)
            rc = eid_result_set(res, p, EID_CERT_BAD_STRING, str_err_tag[e], "%s %s", label,
                                str_err_text[e]);
        else if (*v)
            rc = set_once(p, slot, v, label, res);
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

static const char *serial_hex(apr_pool_t *p, const ASN1_INTEGER *sn)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *d = ASN1_STRING_get0_data(sn);
    int n = ASN1_STRING_length(sn), i;
    char *out, *o;

    if (!d || n <= 0)
        return "00";
    o = out = apr_palloc(p, (apr_size_t)n * 2 + 2);
    if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER)
        *o++ = '-';
    for (i = 0; i < n; i++) {
        *o++ = hex[d[i] >> 4];
        *o++ = hex[d[i] & 0xF];
    }
    *o = '\0';
    return out;
}

/* Indexed by eid_serial_kind_e. */
static const unsigned kind_bit[] = {0, EID_IDK_PNR, EID_IDK_COORD, EID_IDK_HSA};
static const char *const kind_name[] = {"", "personnummer", "samordningsnummer", "HSA-ID"};

/* The body of eid_cert_identify(); the caller clears OpenSSL's error queue. */
static int identify(apr_pool_t *p, X509 *cert, const eid_trust_profile_t *const *profiles,
                    int nprofiles, apr_time_t now, eid_identity_t **out, eid_result_t *res)
{
    const eid_trust_profile_t *tp = NULL;
    const cert_issuer_t *iss = NULL;
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
    issuer_dn = dn_string(p, X509_get_issuer_name(cert));
    subject_dn = dn_string(p, X509_get_subject_name(cert));
    if (!issuer_dn || !subject_dn)
        FAIL(EID_CERT_BAD_STRING, "EID02028",
             "issuer or subject name cannot be rendered as clean UTF-8 text");

    id = eid_identity_make(p);
    id->method = EID_METHOD_CERT;
    id->profile = apr_pstrdup(p, tp->name);
    id->issuer = *issuer_dn ? issuer_dn : NULL;
    id->subject = *subject_dn ? subject_dn : NULL;
    id->serial = serial_hex(p, X509_get0_serialNumber(cert));
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

/* A DN for a log line: clean UTF-8 (dn_string), cut at a character boundary. */
static const char *dn_bounded(apr_pool_t *p, const X509_NAME *name)
{
    const char *s = dn_string(p, name);
    size_t n;

    if (!s || strlen(s) <= EID_CERT_REF_DN_MAX)
        return s;
    n = EID_CERT_REF_DN_MAX - 3;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* not inside a multi-byte sequence */
    return apr_pstrcat(p, apr_pstrmemdup(p, s, n), "...", NULL);
}

int eid_cert_ref_pem(apr_pool_t *p, const char *pem, size_t len, eid_cert_ref_t *out)
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
    out->issuer = dn_bounded(p, X509_get_issuer_name(x));
    out->subject = dn_bounded(p, X509_get_subject_name(x));
    out->serial = serial_hex(p, X509_get0_serialNumber(x));
    X509_free(x);
    ERR_clear_error();
    return 0;
}
