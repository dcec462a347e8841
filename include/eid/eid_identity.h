/*
 * eid_identity.h - the normalised identity that every authentication method
 * (client certificate, OIDC session, bearer token) produces, and that
 * policies, the backend export and the audit record read.
 *
 * All strings are NUL-terminated, valid UTF-8 without control characters
 * (the producers guarantee this), and live in the pool the identity was
 * built in.  An absent attribute is NULL, never "".
 */
#ifndef EID_IDENTITY_H
#define EID_IDENTITY_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef enum {
    EID_METHOD_NONE = 0,
    EID_METHOD_CERT = 1,
    EID_METHOD_OIDC = 2,
    EID_METHOD_BEARER = 3
} eid_method_e;

typedef struct eid_identity {
    eid_method_e method;
    const char *profile;   /* trust profile (cert) or provider name (token) */
    const char *issuer;    /* issuer DN (RFC 2253) or token `iss` */
    const char *subject;   /* subject DN (RFC 2253) or token `sub` */
    const char *serial;    /* certificate serial, hex; NULL for tokens */
    const char *client_id; /* the OAuth client that presented the token (client_id, azp) */
    const char *token_id;  /* the token's `jti` */

    const char *pnr;       /* 12 digits: personnummer or samordningsnummer */
    int pnr_is_coordination; /* 1 when `pnr` is a samordningsnummer */
    const char *hsa_id;    /* the person's HSA-ID */

    const char *given_name;
    const char *surname;
    const char *display_name; /* CN or `name` */
    const char *email;
    const char *upn;

    const char *org_number; /* 10 digits */
    const char *org_hsa_id; /* care provider's HSA-ID */
    const char *org_name;
    const char *unit_hsa_id; /* care unit */
    const char *unit_name;

    const char *commission_hsa_id; /* the selected commission (medarbetaruppdrag) */
    const char *commission_name;
    const char *commission_purpose;
    apr_array_header_t *commission_rights; /* const char * */

    apr_array_header_t *roles;       /* const char *, e.g. "BIF;Spärradministratör" */
    apr_array_header_t *scopes;      /* const char *, OAuth scopes (bearer) */
    apr_array_header_t *policy_oids; /* const char *, certificate policies (cert) */
    apr_array_header_t *audiences;   /* const char *, the token's `aud` values (bearer, oidc) */

    /* From the organisation directory (EidUseDirectory), set once per
     * identity by the glue; NULL when no directory applies. */
    const char *org_kind;            /* "municipality", "region", ... */
    apr_array_header_t *groups;      /* const char *, sorted */
    apr_array_header_t *dir_roles;   /* const char *, the directory's role names */
    const char *directory;           /* the directory (eid_directory_name()) that set the
                                        three above; NULL: not enriched */

    int loa;               /* 0 (none) .. 4 */
    const char *loa_uri;   /* the original acr / policy URI, if any */
    apr_time_t auth_time;  /* 0 if unknown */
    apr_time_t expires;    /* certificate notAfter / token exp; 0 if none */
} eid_identity_t;

/* The string and string-array members, for code that must visit every one
 * (deep copies, flattening into the token cache). */
#define EID_IDENTITY_STR_FIELDS(X)                                                       \
    X(profile) X(issuer) X(subject) X(serial) X(client_id) X(token_id) X(pnr) X(hsa_id)  \
    X(given_name) X(surname) X(display_name) X(email) X(upn) X(org_number)               \
    X(org_hsa_id) X(org_name) X(unit_hsa_id) X(unit_name) X(commission_hsa_id)           \
    X(commission_name) X(commission_purpose) X(loa_uri) X(org_kind) X(directory)
#define EID_IDENTITY_ARR_FIELDS(X)                                                       \
    X(commission_rights) X(roles) X(scopes) X(policy_oids) X(groups) X(dir_roles) X(audiences)

/* A new, empty identity in `p`. */
eid_identity_t *eid_identity_make(apr_pool_t *p);

/* Deep copy of `src` into `p`: every string and array is the copy's own. */
eid_identity_t *eid_identity_copy(apr_pool_t *p, const eid_identity_t *src);

/* "cert", "oidc", "bearer" or "none". */
const char *eid_method_name(eid_method_e m);

/* Parse a method name; returns EID_METHOD_NONE for an unknown name. */
eid_method_e eid_method_parse(const char *name);

/*
 * The attributes an identity exports (to the backend, to r->user, to the
 * audit record).  The table is fixed; each entry names the attribute in three
 * spellings.  eid_attr_value() returns the value as a string allocated in `p`
 * (multi-valued attributes are joined with ","), or NULL when absent.
 */
typedef enum {
    EID_ATTR_METHOD, EID_ATTR_PROFILE, EID_ATTR_ISSUER, EID_ATTR_SUBJECT,
    EID_ATTR_SERIAL, EID_ATTR_PNR, EID_ATTR_PNR_PSEUDONYM, EID_ATTR_HSA_ID,
    EID_ATTR_GIVEN_NAME, EID_ATTR_SURNAME, EID_ATTR_DISPLAY_NAME,
    EID_ATTR_EMAIL, EID_ATTR_UPN, EID_ATTR_ORG_NUMBER, EID_ATTR_ORG_HSA_ID,
    EID_ATTR_ORG_NAME, EID_ATTR_UNIT_HSA_ID, EID_ATTR_UNIT_NAME,
    EID_ATTR_COMMISSION_HSA_ID, EID_ATTR_COMMISSION_NAME,
    EID_ATTR_COMMISSION_PURPOSE, EID_ATTR_COMMISSION_RIGHTS, EID_ATTR_ROLES,
    EID_ATTR_SCOPES, EID_ATTR_CLIENT_ID, EID_ATTR_TOKEN_ID, EID_ATTR_POLICY_OIDS, EID_ATTR_LOA, EID_ATTR_LOA_URI,
    EID_ATTR_AUTH_TIME, EID_ATTR_EXPIRES, EID_ATTR_ORG_KIND, EID_ATTR_GROUPS,
    EID_ATTR_DIR_ROLES,
    EID_ATTR__COUNT
} eid_attr_e;

typedef struct eid_attr_desc {
    eid_attr_e id;
    const char *key;    /* config spelling: "hsa-id" */
    const char *env;    /* environment suffix: "HSA_ID" (EID_HSA_ID) */
    const char *header; /* header suffix: "Hsa-Id" (X-Eid-Hsa-Id) */
} eid_attr_desc_t;

/* The descriptor of attribute `a`, or of the one whose key is `key`
 * (case-insensitive; NULL when unknown). */
const eid_attr_desc_t *eid_attr_desc(eid_attr_e a);
const eid_attr_desc_t *eid_attr_by_key(const char *key);

/* The value of `a` in `id`, in `p`; NULL when absent.  EID_ATTR_PNR_PSEUDONYM
 * needs `pseudonym_key` (see eid_pseudonym()); with no key it is absent. */
const char *eid_attr_value(apr_pool_t *p, const eid_identity_t *id, eid_attr_e a,
                           const unsigned char *pseudonym_key, size_t key_len);

/*
 * A stable pseudonym for a personnummer: base64url(HMAC-SHA256(key, pnr))
 * truncated to 22 characters (128 bits).  The same key gives the same
 * pseudonym across servers and restarts, so the audit trail stays linkable
 * without holding the number itself.
 */
const char *eid_pseudonym(apr_pool_t *p, const unsigned char *key, size_t key_len,
                          const char *pnr);

/*
 * `value` with every occurrence of the 12-digit personnummer or
 * samordningsnummer `pnr` replaced by its pseudonym (eid_pseudonym(), or
 * "[pnr]" when `key` is NULL), in any of the spellings YYYYMMDDNNNC,
 * YYYYMMDD-NNNC, YYMMDDNNNC, YYMMDD-NNNC, YYMMDD+NNNC (so also inside
 * "PNOSE-...").  For any value derived from an identity (a subject DN, a UPN)
 * that goes where the number itself would be pseudonymised: logs, audit
 * records, REMOTE_USER.  Returns `value` itself when nothing matches or when
 * `value` or `pnr` is NULL or `pnr` is not 12 digits; else a string in `p`.
 */
const char *eid_pnr_redact(apr_pool_t *p, const char *value, const char *pnr,
                           const unsigned char *key, size_t key_len);

/*
 * `value` with every digit sequence shaped like a personnummer or
 * samordningsnummer replaced by "[pnr]": 12 digits (YYYYMMDDNNNC, or with
 * '-', '+' or ' ' before NNNC) that eid_pnr_classify() accepts, or 10 digits
 * (YYMMDDNNNC, YYMMDD-NNNC, YYMMDD+NNNC, YYMMDD NNNC) that it accepts with
 * either century - also inside longer digit runs.  For text whose numbers are
 * not known beforehand (the names of a refused certificate); run
 * eid_pnr_redact() first where the number is known, for a linkable
 * pseudonym.  Returns `value` itself when nothing matches; else in `p`.
 */
const char *eid_pnr_mask(apr_pool_t *p, const char *value);

/*
 * Encode `in` for a request header or an environment variable: bytes below
 * 0x20, 0x7f and '%' become %XX; with `ascii_only`, bytes >= 0x80 do too (so a
 * header is pure visible ASCII and decodes with any URL decoder).  Returns
 * `in` itself when nothing needs encoding.
 */
const char *eid_value_encode(apr_pool_t *p, const char *in, int ascii_only);

#endif
