/*
 * eid_cert_int.h - what the parts of the certificate unit share (internal:
 * not installed, not for the glue).
 *
 *   eid_cert_trust.c  trust profiles: issuing CAs and policy OIDs, checked
 *                     when the configuration is read
 *   eid_cert.c        certificate -> identity, every rule in a fixed order
 *   eid_cert_str.c    ASN.1 strings to clean UTF-8, DNs and serials as text
 */
#ifndef EID_CERT_INT_H
#define EID_CERT_INT_H

#include "eid/eid_cert.h"

#include <openssl/asn1.h>
#include <openssl/x509.h>

typedef struct {
    X509 *cert; /* owned; freed by a cleanup on the pool given to add_issuer */
    int loa;
    unsigned id_kinds;
    int is_function;
} eid_cert_issuer_t;

typedef struct {
    const unsigned char *der; /* OID content octets, compared byte for byte */
    int der_len;
    const char *oid; /* canonical dotted text */
    int loa;
    int is_function;
} eid_cert_policy_t;

/* Read-only once the configuration has been read (any number of threads). */
struct eid_trust_profile {
    const char *name;
    apr_array_header_t *issuers;  /* eid_cert_issuer_t */
    apr_array_header_t *policies; /* eid_cert_policy_t */
};

typedef enum { STR_OK = 0, STR_BAD_TYPE, STR_BAD_ENCODING, STR_CONTROL } eid_cert_str_err_e;

/* Indexed by eid_cert_str_err_e: the reason's wording and its tag. */
extern const char *const eid_cert_str_err_text[];
extern const char *const eid_cert_str_err_tag[];

/* An ASN.1 string of a type a name may use, as clean UTF-8 in `p` (*out);
 * STR_OK or why not (no control characters, strict encodings). */
eid_cert_str_err_e eid_cert_asn1_to_utf8(apr_pool_t *p, const ASN1_STRING *a,
                                         const char **out);

/* Whether an ASN.1 type tag is one of the string types. */
int eid_cert_is_string_type(int t);

/* RFC 2253 text of a name, clean UTF-8 with non-ASCII kept; NULL when it
 * cannot be rendered so. */
const char *eid_cert_dn_string(apr_pool_t *p, const X509_NAME *name);

/* As eid_cert_dn_string(), at most EID_CERT_REF_DN_MAX bytes (cut at a
 * character boundary, ending in "..."). */
const char *eid_cert_dn_bounded(apr_pool_t *p, const X509_NAME *name);
/* At most EID_CERT_REF_DN_MAX bytes of `s` (cut at a character boundary,
 * marked "..."); `s` itself when short enough or NULL. */
const char *eid_cert_text_bounded(apr_pool_t *p, const char *s);

/* A serial number as upper-case hex, every content byte ("-" when negative). */
const char *eid_cert_serial_hex(apr_pool_t *p, const ASN1_INTEGER *sn);

#endif
