/*
 * eid_cert_trust.c - trust profiles: which CA issues whose certificates, at
 * which level of assurance, and which policy OIDs raise the level or mark a
 * function certificate.  Everything is checked while the configuration is
 * read; afterwards a profile is only read, by any number of threads.
 */
#include "eid_cert_int.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

#define OID_TEXT_MAX 128 /* a configured policy OID, dotted */
#define CA_FILE_MAX (4 * 1024 * 1024) /* a CA file: far more than one PEM certificate */

eid_trust_profile_t *eid_trust_profile_create(apr_pool_t *p, const char *name)
{
    eid_trust_profile_t *tp = apr_pcalloc(p, sizeof(*tp));
    tp->name = apr_pstrdup(p, name ? name : "");
    tp->issuers = apr_array_make(p, 4, sizeof(eid_cert_issuer_t));
    tp->policies = apr_array_make(p, 4, sizeof(eid_cert_policy_t));
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
/* One CA for the rules of issued_by() in eid_cert.c: the same subject name
 * and the same key sign (and verify) the same certificates. */
static int same_ca(X509 *a, X509 *b)
{
    return X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0 &&
           EVP_PKEY_eq(X509_get0_pubkey(a), X509_get0_pubkey(b)) == 1;
}

const char *eid_trust_profiles_shared_ca(apr_pool_t *p, const eid_trust_profile_t *a,
                                         const eid_trust_profile_t *b)
{
    int i, j;
    if (!p || !a || !b)
        return NULL;
    for (i = 0; i < a->issuers->nelts; i++)
        for (j = 0; j < b->issuers->nelts; j++) {
            X509 *x = APR_ARRAY_IDX(a->issuers, i, eid_cert_issuer_t).cert;
            if (same_ca(x, APR_ARRAY_IDX(b->issuers, j, eid_cert_issuer_t).cert)) {
                const char *dn = eid_cert_dn_string(p, X509_get_subject_name(x));
                return dn ? dn : "(unprintable subject)";
            }
        }
    return NULL;
}

static const char *check_issuer_cert(apr_pool_t *p, X509 *x, int i, const char *path)
{
    const char *subj = eid_cert_dn_string(p, X509_get_subject_name(x));

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
    unsigned long e;
    BIO *bio = NULL;
    X509 *x;
    char *pem;
    apr_size_t pem_len;
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
    /* A regular file only (a directory or a FIFO is refused by name), read
     * whole and capped, so that a wrong path cannot hang or flood start-up. */
    if (eid_file_read(p, path, CA_FILE_MAX, 0, &pem, &pem_len, &err) != APR_SUCCESS) {
        err = apr_pstrcat(p, "CA file: ", err, NULL);
        goto leave;
    }
    ERR_clear_error();
    if (!(bio = BIO_new_mem_buf(pem, (int)pem_len)) || !(certs = sk_X509_new_null())) {
        err = "out of memory";
        goto leave;
    }
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
        const char *subj = eid_cert_dn_string(p, X509_get_subject_name(x));
        err = apr_psprintf(p, "the certificate in %s (%s) is self-signed: a root CA. Name "
                           "the issuing CA below it, or add the option root-issuer if this "
                           "root itself issues the end-entity certificates", path,
                           subj ? subj : "(unprintable subject)");
        goto leave;
    }

    /* Why a CA only once per profile: the first line for it decides (level,
     * identifier kinds, function), so a second line with other settings
     * looked configured but never applied. */
    for (i = 0; i < tp->issuers->nelts; i++)
        if (same_ca(APR_ARRAY_IDX(tp->issuers, i, eid_cert_issuer_t).cert, x)) {
            const char *subj = eid_cert_dn_string(p, X509_get_subject_name(x));
            err = apr_psprintf(p, "the CA in %s (%s) is already an issuer of profile %s: "
                               "one line per issuing CA (a second one would never apply)",
                               path, subj ? subj : "(unprintable subject)", tp->name);
            goto leave;
        }

    /* All good: move the certificates into the profile.  X509_check_ca()
     * above also filled OpenSSL's extension cache, so the shared objects are
     * only read from now on, by any number of threads. */
    while ((x = sk_X509_shift(certs)) != NULL) {
        eid_cert_issuer_t *iss = apr_array_push(tp->issuers);
        iss->cert = x;
        iss->loa = loa;
        iss->id_kinds = id_kinds;
        iss->is_function = is_function ? 1 : 0;
        apr_pool_cleanup_register(p, x, x509_cleanup, apr_pool_cleanup_null);
    }

leave:
    sk_X509_pop_free(certs, X509_free);
    BIO_free(bio);
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
    eid_cert_policy_t *pol;
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
        if (!strcmp(APR_ARRAY_IDX(tp->policies, i, eid_cert_policy_t).oid, text)) {
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
