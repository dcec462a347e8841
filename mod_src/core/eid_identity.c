/*
 * eid_identity.c - the normalised identity, its attribute table, value
 * encoding for the backend, and personnummer pseudonyms.
 */
#include "eid/eid_identity.h"
#include "eid/eid_pnr.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

eid_identity_t *eid_identity_make(apr_pool_t *p)
{
    return apr_pcalloc(p, sizeof(eid_identity_t));
}

static apr_array_header_t *copy_strv(apr_pool_t *p, const apr_array_header_t *src)
{
    apr_array_header_t *dst;
    int i;

    if (!src)
        return NULL;
    dst = apr_array_make(p, src->nelts ? src->nelts : 1, sizeof(const char *));
    for (i = 0; i < src->nelts; i++)
        APR_ARRAY_PUSH(dst, const char *) =
            apr_pstrdup(p, APR_ARRAY_IDX(src, i, const char *));
    return dst;
}

eid_identity_t *eid_identity_copy(apr_pool_t *p, const eid_identity_t *s)
{
    eid_identity_t *d = apr_pmemdup(p, s, sizeof(*s));

    /* Every pointer member is re-pointed into `p`; scalars came with memdup. */
#define DUP(f) d->f = s->f ? apr_pstrdup(p, s->f) : NULL;
#define DUPV(f) d->f = copy_strv(p, s->f);
    EID_IDENTITY_STR_FIELDS(DUP)
    EID_IDENTITY_ARR_FIELDS(DUPV)
#undef DUP
#undef DUPV
    return d;
}

const char *eid_method_name(eid_method_e m)
{
    switch (m) {
    case EID_METHOD_CERT: return "cert";
    case EID_METHOD_OIDC: return "oidc";
    case EID_METHOD_BEARER: return "bearer";
    default: return "none";
    }
}

eid_method_e eid_method_parse(const char *name)
{
    if (!strcasecmp(name, "cert"))
        return EID_METHOD_CERT;
    if (!strcasecmp(name, "oidc"))
        return EID_METHOD_OIDC;
    if (!strcasecmp(name, "bearer"))
        return EID_METHOD_BEARER;
    return EID_METHOD_NONE;
}

/* Indexed by eid_attr_e: the order must match the enum. */
static const eid_attr_desc_t attrs[EID_ATTR__COUNT] = {
    {EID_ATTR_METHOD, "method", "METHOD", "Method"},
    {EID_ATTR_PROFILE, "profile", "PROFILE", "Profile"},
    {EID_ATTR_ISSUER, "issuer", "ISSUER", "Issuer"},
    {EID_ATTR_SUBJECT, "subject", "SUBJECT", "Subject"},
    {EID_ATTR_SERIAL, "serial", "SERIAL", "Serial"},
    {EID_ATTR_PNR, "pnr", "PNR", "Pnr"},
    {EID_ATTR_PNR_PSEUDONYM, "pnr-pseudonym", "PNR_PSEUDONYM", "Pnr-Pseudonym"},
    {EID_ATTR_HSA_ID, "hsa-id", "HSA_ID", "Hsa-Id"},
    {EID_ATTR_GIVEN_NAME, "given-name", "GIVEN_NAME", "Given-Name"},
    {EID_ATTR_SURNAME, "surname", "SURNAME", "Surname"},
    {EID_ATTR_DISPLAY_NAME, "display-name", "DISPLAY_NAME", "Display-Name"},
    {EID_ATTR_EMAIL, "email", "EMAIL", "Email"},
    {EID_ATTR_UPN, "upn", "UPN", "Upn"},
    {EID_ATTR_ORG_NUMBER, "org-number", "ORG_NUMBER", "Org-Number"},
    {EID_ATTR_ORG_HSA_ID, "org-hsa-id", "ORG_HSA_ID", "Org-Hsa-Id"},
    {EID_ATTR_ORG_NAME, "org-name", "ORG_NAME", "Org-Name"},
    {EID_ATTR_UNIT_HSA_ID, "unit-hsa-id", "UNIT_HSA_ID", "Unit-Hsa-Id"},
    {EID_ATTR_UNIT_NAME, "unit-name", "UNIT_NAME", "Unit-Name"},
    {EID_ATTR_COMMISSION_HSA_ID, "commission-hsa-id", "COMMISSION_HSA_ID",
     "Commission-Hsa-Id"},
    {EID_ATTR_COMMISSION_NAME, "commission-name", "COMMISSION_NAME", "Commission-Name"},
    {EID_ATTR_COMMISSION_PURPOSE, "commission-purpose", "COMMISSION_PURPOSE",
     "Commission-Purpose"},
    {EID_ATTR_COMMISSION_RIGHTS, "commission-rights", "COMMISSION_RIGHTS",
     "Commission-Rights"},
    {EID_ATTR_ROLES, "roles", "ROLES", "Roles"},
    {EID_ATTR_SCOPES, "scopes", "SCOPES", "Scopes"},
    {EID_ATTR_CLIENT_ID, "client-id", "CLIENT_ID", "Client-Id"},
    {EID_ATTR_TOKEN_ID, "token-id", "TOKEN_ID", "Token-Id"},
    {EID_ATTR_POLICY_OIDS, "policy-oids", "POLICY_OIDS", "Policy-Oids"},
    {EID_ATTR_LOA, "loa", "LOA", "Loa"},
    {EID_ATTR_LOA_URI, "loa-uri", "LOA_URI", "Loa-Uri"},
    {EID_ATTR_AUTH_TIME, "auth-time", "AUTH_TIME", "Auth-Time"},
    {EID_ATTR_EXPIRES, "expires", "EXPIRES", "Expires"},
    {EID_ATTR_ORG_KIND, "org-kind", "ORG_KIND", "Org-Kind"},
    {EID_ATTR_GROUPS, "groups", "GROUPS", "Groups"},
    {EID_ATTR_DIR_ROLES, "dir-roles", "DIR_ROLES", "Dir-Roles"},
};

const eid_attr_desc_t *eid_attr_desc(eid_attr_e a)
{
    return (a >= 0 && a < EID_ATTR__COUNT) ? &attrs[a] : NULL;
}

const eid_attr_desc_t *eid_attr_by_key(const char *key)
{
    int i;
    for (i = 0; i < EID_ATTR__COUNT; i++)
        if (!strcasecmp(attrs[i].key, key))
            return &attrs[i];
    return NULL;
}

static const char *join(apr_pool_t *p, const apr_array_header_t *a)
{
    if (!a || a->nelts == 0)
        return NULL;
    if (a->nelts == 1)
        return APR_ARRAY_IDX(a, 0, const char *);
    return apr_array_pstrcat(p, a, ',');
}

static const char *secs(apr_pool_t *p, apr_time_t t)
{
    return t ? apr_psprintf(p, "%" APR_TIME_T_FMT, apr_time_sec(t)) : NULL;
}

const char *eid_attr_value(apr_pool_t *p, const eid_identity_t *id, eid_attr_e a,
                           const unsigned char *key, size_t key_len)
{
    switch (a) {
    case EID_ATTR_METHOD: return eid_method_name(id->method);
    case EID_ATTR_PROFILE: return id->profile;
    case EID_ATTR_ISSUER: return id->issuer;
    case EID_ATTR_SUBJECT: return id->subject;
    case EID_ATTR_SERIAL: return id->serial;
    case EID_ATTR_PNR: return id->pnr;
    case EID_ATTR_PNR_PSEUDONYM:
        return (id->pnr && key) ? eid_pseudonym(p, key, key_len, id->pnr) : NULL;
    case EID_ATTR_HSA_ID: return id->hsa_id;
    case EID_ATTR_GIVEN_NAME: return id->given_name;
    case EID_ATTR_SURNAME: return id->surname;
    case EID_ATTR_DISPLAY_NAME: return id->display_name;
    case EID_ATTR_EMAIL: return id->email;
    case EID_ATTR_UPN: return id->upn;
    case EID_ATTR_ORG_NUMBER: return id->org_number;
    case EID_ATTR_ORG_HSA_ID: return id->org_hsa_id;
    case EID_ATTR_ORG_NAME: return id->org_name;
    case EID_ATTR_UNIT_HSA_ID: return id->unit_hsa_id;
    case EID_ATTR_UNIT_NAME: return id->unit_name;
    case EID_ATTR_COMMISSION_HSA_ID: return id->commission_hsa_id;
    case EID_ATTR_COMMISSION_NAME: return id->commission_name;
    case EID_ATTR_COMMISSION_PURPOSE: return id->commission_purpose;
    case EID_ATTR_COMMISSION_RIGHTS: return join(p, id->commission_rights);
    case EID_ATTR_ROLES: return join(p, id->roles);
    case EID_ATTR_SCOPES: return join(p, id->scopes);
    case EID_ATTR_CLIENT_ID: return id->client_id;
    case EID_ATTR_TOKEN_ID: return id->token_id;
    case EID_ATTR_POLICY_OIDS: return join(p, id->policy_oids);
    case EID_ATTR_LOA: return id->loa ? apr_itoa(p, id->loa) : NULL;
    case EID_ATTR_LOA_URI: return id->loa_uri;
    case EID_ATTR_AUTH_TIME: return secs(p, id->auth_time);
    case EID_ATTR_EXPIRES: return secs(p, id->expires);
    case EID_ATTR_ORG_KIND: return id->org_kind;
    case EID_ATTR_GROUPS: return join(p, id->groups);
    case EID_ATTR_DIR_ROLES: return join(p, id->dir_roles);
    default: return NULL;
    }
}

/* SHA-256, fetched once: OpenSSL 3's one-shot HMAC() fetches the MAC and the
 * digest on every call, which cost ten times the hashing itself - and a
 * pseudonym is made on every request that exports or logs one.  Read-only
 * after the fetch (a fetched algorithm is meant to be shared). */
static pthread_once_t pseudo_once = PTHREAD_ONCE_INIT;
static EVP_MD *pseudo_sha256;

static void pseudo_fetch(void)
{
    pseudo_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* HMAC-SHA256 (RFC 2104) over a fetched digest, one context per call. */
static int hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
                       size_t n, unsigned char mac[32])
{
    unsigned char k[64] = {0}, pad[64], inner[32];
    EVP_MD_CTX *c;
    unsigned int len = 0;
    int i, ok;

    pthread_once(&pseudo_once, pseudo_fetch);
    if (!pseudo_sha256 || !(c = EVP_MD_CTX_new()))
        return 0;
    ok = 1;
    if (key_len > sizeof(k))
        ok = EVP_DigestInit_ex(c, pseudo_sha256, NULL) && EVP_DigestUpdate(c, key, key_len) &&
             EVP_DigestFinal_ex(c, k, &len);
    else
        memcpy(k, key, key_len);
    for (i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    ok = ok && EVP_DigestInit_ex(c, pseudo_sha256, NULL) && EVP_DigestUpdate(c, pad, 64) &&
         EVP_DigestUpdate(c, msg, n) && EVP_DigestFinal_ex(c, inner, &len);
    for (i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(c, pseudo_sha256, NULL) && EVP_DigestUpdate(c, pad, 64) &&
         EVP_DigestUpdate(c, inner, sizeof(inner)) && EVP_DigestFinal_ex(c, mac, &len);
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    return ok;
}

/* The last pseudonyms a thread made, keyed by content (the key's bytes and
 * the number): a request asks for the same one two or three times (export,
 * user name, audit record), and keep-alive requests of one user again.  Per
 * thread (C11 thread storage), so no lock and nothing shared; wiped with the
 * thread's storage. */
#define PSEUDO_MEMO 8
typedef struct {
    unsigned char key[64];
    size_t key_len; /* 0: empty slot */
    char pnr[13];
    char out[23];
} pseudo_memo_t;
static _Thread_local pseudo_memo_t pseudo_memo[PSEUDO_MEMO];
static _Thread_local unsigned pseudo_next;

const char *eid_pseudonym(apr_pool_t *p, const unsigned char *key, size_t key_len,
                          const char *pnr)
{
    unsigned char mac[32];
    char *out;
    size_t plen = strlen(pnr);
    int memo = key_len > 0 && key_len <= sizeof(pseudo_memo[0].key) && plen == 12;
    unsigned i;

    for (i = 0; memo && i < PSEUDO_MEMO; i++) {
        const pseudo_memo_t *m = &pseudo_memo[i];
        if (m->key_len == key_len && !memcmp(m->pnr, pnr, 13) && !memcmp(m->key, key, key_len))
            return apr_pstrmemdup(p, m->out, 22);
    }
    if (!hmac_sha256(key, key_len, (const unsigned char *)pnr, plen, mac))
        return NULL;
    /* 22 base64url characters carry 132 bits: the first 17 bytes (23
     * characters) encoded, cut to 22. */
    out = eid_b64url_pencode(p, mac, 17);
    out[22] = '\0';
    if (memo) {
        pseudo_memo_t *m = &pseudo_memo[pseudo_next++ % PSEUDO_MEMO];
        memcpy(m->key, key, key_len);
        m->key_len = key_len;
        memcpy(m->pnr, pnr, 13);
        memcpy(m->out, out, 23);
    }
    return out;
}

/* The spellings of a 12-digit number that a value may hold, longest first:
 * YYYYMMDDNNNC, YYYYMMDD-NNNC, YYMMDD-NNNC, YYMMDD+NNNC, YYMMDDNNNC.  (The
 * ETSI "PNOSE-" form contains the 12 digits.) */
static int pnr_forms(const char *pnr, char forms[5][14])
{
    size_t i;
    for (i = 0; i < 12; i++)
        if (pnr[i] < '0' || pnr[i] > '9')
            return 0;
    if (pnr[12])
        return 0;
    memcpy(forms[0], pnr, 13);
    memcpy(forms[1], pnr, 8);
    forms[1][8] = '-';
    memcpy(forms[1] + 9, pnr + 8, 5);
    memcpy(forms[2], pnr + 2, 6);
    forms[2][6] = '-';
    memcpy(forms[2] + 7, pnr + 8, 5);
    memcpy(forms[3], forms[2], 12);
    forms[3][6] = '+';
    memcpy(forms[4], pnr + 2, 11);
    return 5;
}

/* Length of the form of the number that starts at s, or 0. */
static size_t form_at(const char *s, char forms[5][14], int n)
{
    int k;
    for (k = 0; k < n; k++) {
        size_t len = strlen(forms[k]);
        if (!strncmp(s, forms[k], len))
            return len;
    }
    return 0;
}

const char *eid_pnr_redact(apr_pool_t *p, const char *value, const char *pnr,
                           const unsigned char *key, size_t key_len)
{
    char forms[5][14];
    const char *s, *pseudo, *done;
    int n;
    size_t len, plen, cap;
    char *out, *o;

    /* Every spelling ends with the number's last four digits: a value
     * without them (nearly every value) is answered by one strstr(). */
    if (!value || !pnr || strlen(pnr) != 12 || !strstr(value, pnr + 8) ||
        !(n = pnr_forms(pnr, forms)))
        return value;
    for (s = value; *s && !form_at(s, forms, n); s++)
        ;
    if (!*s)
        return value; /* the common case: nothing to replace, nothing allocated */
    pseudo = key ? eid_pseudonym(p, key, key_len, pnr) : NULL;
    if (!pseudo)
        pseudo = "[pnr]"; /* no key: still never the number */
    plen = strlen(pseudo);
    /* Each replacement takes at least 10 bytes in and gives plen out. */
    cap = strlen(value) + (strlen(value) / 10 + 1) * plen + 1;
    o = out = apr_palloc(p, cap);
    done = value;
    for (s = value; *s;) {
        if ((len = form_at(s, forms, n))) {
            memcpy(o, done, (size_t)(s - done));
            o += s - done;
            memcpy(o, pseudo, plen);
            o += plen;
            s += len;
            done = s;
        }
        else {
            s++;
        }
    }
    memcpy(o, done, (size_t)(s - done) + 1);
    return out;
}

/* Length of a personal-number-shaped sequence at s (see eid_pnr_mask()), or 0. */
static size_t pnr_shape_at(const char *s)
{
    static const struct { int len, sep; } shapes[] = {{12, 0}, {12, 8}, {10, 0}, {10, 6}};
    size_t k;

    if (*s < '0' || *s > '9')
        return 0;
    for (k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        char d[13];
        int i, o = 0, len = shapes[k].len, sep = shapes[k].sep;
        for (i = 0; o < len; i++) {
            if (sep && o == sep && i == sep) {
                if (s[i] != '-' && s[i] != '+' && s[i] != ' ')
                    break;
                continue;
            }
            if (s[i] < '0' || s[i] > '9')
                break;
            d[(len == 10 ? 2 : 0) + o++] = s[i];
        }
        if (o < len)
            continue;
        if (len == 12 && eid_pnr_classify(d, 12) != EID_PNR_INVALID)
            return (size_t)i;
        if (len == 10) {
            memcpy(d, "19", 2);
            if (eid_pnr_classify(d, 12) != EID_PNR_INVALID)
                return (size_t)i;
            memcpy(d, "20", 2);
            if (eid_pnr_classify(d, 12) != EID_PNR_INVALID)
                return (size_t)i;
        }
    }
    return 0;
}

const char *eid_pnr_mask(apr_pool_t *p, const char *value)
{
    static const char mask[] = "[pnr]";
    const char *s, *done;
    char *out, *o;
    size_t len;

    if (!value)
        return NULL;
    for (s = value; *s && !pnr_shape_at(s); s++)
        ;
    if (!*s)
        return value;
    /* each match takes at least 10 bytes in and gives 5 out */
    o = out = apr_palloc(p, strlen(value) + 1);
    done = value;
    while (*s) {
        if ((len = pnr_shape_at(s))) {
            memcpy(o, done, (size_t)(s - done));
            o += s - done;
            memcpy(o, mask, sizeof(mask) - 1);
            o += sizeof(mask) - 1;
            s += len;
            done = s;
        }
        else {
            s++;
        }
    }
    memcpy(o, done, (size_t)(s - done) + 1);
    return out;
}

const char *eid_value_encode(apr_pool_t *p, const char *in, int ascii_only)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s;
    size_t extra = 0;
    char *out, *o;

    for (s = (const unsigned char *)in; *s; s++)
        if (*s < 0x20 || *s == 0x7f || *s == '%' || (ascii_only && *s >= 0x80))
            extra += 2;
    if (!extra)
        return in;
    o = out = apr_palloc(p, (size_t)(s - (const unsigned char *)in) + extra + 1);
    for (s = (const unsigned char *)in; *s; s++) {
        if (*s < 0x20 || *s == 0x7f || *s == '%' || (ascii_only && *s >= 0x80)) {
            *o++ = '%';
            *o++ = hex[*s >> 4];
            *o++ = hex[*s & 0xf];
        }
        else {
            *o++ = (char)*s;
        }
    }
    *o = '\0';
    return out;
}
