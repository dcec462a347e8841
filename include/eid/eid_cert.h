/*
 * eid_cert.h - X.509 client certificate -> identity.
 *
 * The certificate has already been verified by mod_ssl (chain, dates at the
 * handshake).  This unit decides whether it is acceptable *as a person's
 * e-ID* under one of the configured trust profiles, and builds the identity:
 *
 *   - the issuer must be one of a profile's issuing CAs (name match, key
 *     identifier match, and the certificate's signature verified with that
 *     CA's key), otherwise the certificate is refused even if mod_ssl
 *     accepted the chain;
 *   - EKU must contain clientAuth; keyUsage, if present, digitalSignature;
 *   - now must be within notBefore..notAfter;
 *   - the subject has exactly one serialNumber (2.5.4.5), classified by
 *     shape as personnummer / samordningsnummer / PNOSE- / HSA-ID, and its
 *     kind must be one the issuer vouches for;
 *   - every subject attribute read (serialNumber, CN, givenName, surname, O,
 *     emailAddress) occurs at most once, is not part of a multi-valued RDN,
 *     and is valid UTF-8 without control characters or NUL;
 *   - a certificate from an issuer or with a policy marked "function" is a
 *     function/system certificate and never a person.
 * LoA: the highest level among configured policy OIDs present in the
 * certificate; when none is present, the issuer's level.
 */
#ifndef EID_CERT_H
#define EID_CERT_H

#include <apr_pools.h>
#include <apr_time.h>
#include <openssl/x509.h>

#include "eid/eid_identity.h"
#include "eid/eid_result.h"

/* Identifier kinds an issuer vouches for (bit set). */
#define EID_IDK_PNR 0x1   /* personnummer (also PNOSE- form) */
#define EID_IDK_COORD 0x2 /* samordningsnummer */
#define EID_IDK_HSA 0x4   /* HSA-ID */
#define EID_IDK_ANY (EID_IDK_PNR | EID_IDK_COORD | EID_IDK_HSA)

/* Reason codes in eid_result_t.code from eid_cert_identify*(). */
typedef enum {
    EID_CERT_OK = 0,
    EID_CERT_PARSE,        /* not a certificate */
    EID_CERT_UNTRUSTED,    /* issuer in no trust profile */
    EID_CERT_FUNCTION,     /* function / system certificate */
    EID_CERT_EKU,          /* no clientAuth */
    EID_CERT_KEYUSAGE,     /* keyUsage without digitalSignature */
    EID_CERT_EXPIRED,      /* now > notAfter */
    EID_CERT_NOT_YET,      /* now < notBefore */
    EID_CERT_NO_SERIAL,    /* no subject serialNumber */
    EID_CERT_MULTI_SERIAL, /* more than one, or inside a multi-valued RDN */
    EID_CERT_BAD_SERIAL,   /* serialNumber of no known shape */
    EID_CERT_ID_KIND,      /* a kind this issuer does not vouch for */
    EID_CERT_BAD_STRING,   /* NUL, invalid UTF-8, control char, bad type */
    EID_CERT_DUP_ATTR      /* a name attribute twice */
} eid_cert_code_e;

/* What a subject serialNumber is. */
typedef enum {
    EID_SERIAL_INVALID = 0,
    EID_SERIAL_PNR,   /* personnummer (12 digits, or PNOSE- form) */
    EID_SERIAL_COORD, /* samordningsnummer */
    EID_SERIAL_HSA    /* HSA-ID */
} eid_serial_kind_e;

/*
 * Classify a serialNumber value by its shape.  On success writes the
 * normalised identifier (12 digits, PNOSE- stripped; or the HSA-ID) plus NUL
 * into out (size >= 32).  Never matches a prefix or a substring.
 */
eid_serial_kind_e eid_cert_classify_serial(const char *s, size_t len, char out[32]);

typedef struct eid_trust_profile eid_trust_profile_t;

/* A new, empty trust profile named `name`, allocated in `p` (pconf). */
eid_trust_profile_t *eid_trust_profile_create(apr_pool_t *p, const char *name);

const char *eid_trust_profile_name(const eid_trust_profile_t *tp);

/* Flags of eid_trust_profile_add_issuer(). */
#define EID_ISSUER_FUNCTION 0x1 /* a function-certificate CA: never a person */
#define EID_ISSUER_ROOT 0x2     /* allow a self-signed (root) CA that issues
                                   end-entity certificates directly */

/*
 * Add the issuing CA certificate in the PEM file `path`: an issuer with level
 * `loa` (0-4) vouching for the identifier kinds in `id_kinds`.  The file must
 * hold exactly one certificate, a CA certificate: a bundle would make every CA
 * in it (roots included) an issuer of people's certificates.  A self-signed
 * certificate (a root) is refused unless `flags` has EID_ISSUER_ROOT; with
 * EID_ISSUER_FUNCTION it is a function-certificate CA.  The certificate is
 * kept in an OpenSSL object freed by a cleanup on `p`.  Returns NULL or an
 * error message in `p` (unreadable file, no or several certificates, not a
 * CA certificate, a root without EID_ISSUER_ROOT, a CA the profile holds
 * already).
 */
const char *eid_trust_profile_add_issuer(eid_trust_profile_t *tp, apr_pool_t *p,
                                         const char *path, int loa,
                                         unsigned id_kinds, unsigned flags);

/*
 * Map certificate policy `oid` (dotted form) to level `loa` (1-4), or with
 * `is_function` mark it as a function-certificate policy.  Returns NULL or an
 * error message (not a valid OID).
 */
const char *eid_trust_profile_add_policy(eid_trust_profile_t *tp, apr_pool_t *p,
                                         const char *oid, int loa, int is_function);

/* Number of issuers in the profile (a profile with none is a config error). */
int eid_trust_profile_issuer_count(const eid_trust_profile_t *tp);

/*
 * The subject (RFC 2253 text, in `p`) of an issuing CA that both profiles
 * hold - same subject name and same public key, so it issues the same
 * certificates - or NULL when they share none.  Both profiles must be
 * complete (read-only); no error of its own.
 */
const char *eid_trust_profiles_shared_ca(apr_pool_t *p, const eid_trust_profile_t *a,
                                         const eid_trust_profile_t *b);

/*
 * Build the identity of `cert` under the first of `profiles` (in order) whose
 * issuer issued it.  `now` is the time to check validity against.
 * On success returns EID_CERT_OK and sets *out (allocated in `p`); otherwise
 * returns a reason code, fills `res` and leaves *out NULL.  Thread-safe:
 * profiles are read-only after configuration.
 */
eid_cert_code_e eid_cert_identify(apr_pool_t *p, X509 *cert,
                                  const eid_trust_profile_t *const *profiles,
                                  int nprofiles, apr_time_t now,
                                  eid_identity_t **out, eid_result_t *res);

/* What names a certificate in a log line or an audit record. */
typedef struct {
    const char *issuer;  /* RFC 2253 issuer DN, clean UTF-8, at most
                            EID_CERT_REF_DN_MAX bytes (longer ones are cut and
                            end in "..."); NULL when it cannot be rendered */
    const char *serial;  /* certificate serial number, upper-case hex */
    const char *subject; /* subject DN as `issuer`, with a personnummer or
                            samordningsnummer replaced by its pseudonym wherever it
                            stands; "[withheld: ...]" when its serialNumber is of no
                            known kind; NULL when it cannot be rendered */
} eid_cert_ref_t;

#define EID_CERT_REF_DN_MAX 256

/*
 * Fill `out` (strings in `p`) for the certificate in `pem`; `key` is the
 * pseudonym key (eid_pseudonym(); NULL: "[pnr]").  Returns 0, or -1 when the
 * PEM cannot be parsed (then every field is NULL).  For refusals: the verdict
 * itself never depends on it.  Nothing in `out` holds a personal number in
 * clear.
 */
int eid_cert_ref_pem(apr_pool_t *p, const char *pem, size_t len, const unsigned char *key,
                     size_t key_len, eid_cert_ref_t *out);

/* As eid_cert_identify(), from a PEM text (e.g. mod_ssl's SSL_CLIENT_CERT). */
eid_cert_code_e eid_cert_identify_pem(apr_pool_t *p, const char *pem, size_t len,
                                      const eid_trust_profile_t *const *profiles,
                                      int nprofiles, apr_time_t now,
                                      eid_identity_t **out, eid_result_t *res);

#endif
