/*
 * eid_claims.c - claims to identity.  The profile and the overrides are
 * compiled into one flat rule list at configuration time; a request walks
 * that list once, one hash lookup per rule.
 */
#include "eid/eid_claims.h"

#include "eid/eid_hsa.h"
#include "eid/eid_jwt.h"
#include "eid/eid_pnr.h"
#include "eid/eid_util.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    K_STR,       /* a string; "" is absent */
    K_MULTI,     /* a string or an array of strings */
    K_SCOPES,    /* like K_MULTI, strings split at spaces */
    K_ACR,       /* a string, also sets loa */
    K_PNR_PIN,   /* personnummer only */
    K_PNR_COORD, /* samordningsnummer only */
    K_PNR_ANY,
    K_HSA,
    K_ORGNR,
    K_ORG_AFFIL  /* <anything>@<org number> */
} kind_e;

typedef struct rule {
    eid_attr_e field;
    const char *claim;
    kind_e kind;
} rule_t;

#define OIDC_SE "https://id.oidc.se/claim/"

static const rule_t common[] = {
    {EID_ATTR_SUBJECT, "sub", K_STR},
    {EID_ATTR_LOA_URI, "acr", K_ACR},
    {EID_ATTR_SCOPES, "scope", K_SCOPES},
    {EID_ATTR_SCOPES, "scp", K_SCOPES},
    {EID_ATTR_CLIENT_ID, "client_id", K_STR}, /* RFC 9068 */
    {EID_ATTR_CLIENT_ID, "azp", K_STR},       /* when client_id is absent */
    {EID_ATTR_TOKEN_ID, "jti", K_STR},
};

static const rule_t generic[] = {
    {EID_ATTR_DISPLAY_NAME, "name", K_STR},
    {EID_ATTR_GIVEN_NAME, "given_name", K_STR},
    {EID_ATTR_SURNAME, "family_name", K_STR},
    {EID_ATTR_EMAIL, "email", K_STR},
};

static const rule_t oidc_sweden[] = {
    {EID_ATTR_PNR, OIDC_SE "personalIdentityNumber", K_PNR_PIN},
    {EID_ATTR_PNR, OIDC_SE "coordinationNumber", K_PNR_COORD},
    {EID_ATTR_ORG_NUMBER, OIDC_SE "orgNumber", K_ORGNR},
    {EID_ATTR_ORG_NUMBER, OIDC_SE "orgAffiliation", K_ORG_AFFIL},
    {EID_ATTR_ORG_NAME, OIDC_SE "orgName", K_STR},
    {EID_ATTR_UNIT_NAME, OIDC_SE "orgUnit", K_STR},
    {EID_ATTR_GIVEN_NAME, "given_name", K_STR},
    {EID_ATTR_SURNAME, "family_name", K_STR},
    {EID_ATTR_DISPLAY_NAME, "name", K_STR},
};

static const rule_t inera[] = {
    {EID_ATTR_HSA_ID, "employeeHsaId", K_HSA},
    {EID_ATTR_COMMISSION_HSA_ID, "commissionHsaId", K_HSA},
    {EID_ATTR_COMMISSION_NAME, "commissionName", K_STR},
    {EID_ATTR_COMMISSION_PURPOSE, "commissionPurpose", K_STR},
    {EID_ATTR_COMMISSION_RIGHTS, "commissionRight", K_MULTI},
    {EID_ATTR_ORG_HSA_ID, "healthCareProviderHsaId", K_HSA},
    {EID_ATTR_ORG_NUMBER, "healthCareProviderOrgNo", K_ORGNR},
    {EID_ATTR_ORG_NAME, "healthCareProviderName", K_STR},
    {EID_ATTR_UNIT_HSA_ID, "healthCareUnitHsaId", K_HSA},
    {EID_ATTR_UNIT_NAME, "healthCareUnitName", K_STR},
    {EID_ATTR_ROLES, "systemRole", K_MULTI},
    {EID_ATTR_PNR, "credentialPersonalIdentityNumber", K_PNR_ANY},
    {EID_ATTR_GIVEN_NAME, "given_name", K_STR},
    {EID_ATTR_SURNAME, "family_name", K_STR},
};

/* Fields a custom mapping may name, and how their value is checked. */
static const struct {
    eid_attr_e field;
    kind_e kind;
} mappable[] = {
    {EID_ATTR_SUBJECT, K_STR}, {EID_ATTR_PNR, K_PNR_ANY}, {EID_ATTR_HSA_ID, K_HSA},
    {EID_ATTR_GIVEN_NAME, K_STR}, {EID_ATTR_SURNAME, K_STR}, {EID_ATTR_DISPLAY_NAME, K_STR},
    {EID_ATTR_EMAIL, K_STR}, {EID_ATTR_UPN, K_STR}, {EID_ATTR_ORG_NUMBER, K_ORGNR},
    {EID_ATTR_ORG_HSA_ID, K_HSA}, {EID_ATTR_ORG_NAME, K_STR}, {EID_ATTR_UNIT_HSA_ID, K_HSA},
    {EID_ATTR_UNIT_NAME, K_STR}, {EID_ATTR_COMMISSION_HSA_ID, K_HSA},
    {EID_ATTR_COMMISSION_NAME, K_STR}, {EID_ATTR_COMMISSION_PURPOSE, K_STR},
    {EID_ATTR_COMMISSION_RIGHTS, K_MULTI}, {EID_ATTR_ROLES, K_MULTI},
    {EID_ATTR_SCOPES, K_SCOPES}, {EID_ATTR_LOA_URI, K_ACR}, {EID_ATTR_CLIENT_ID, K_STR},
};
#define NMAPPABLE (sizeof(mappable) / sizeof(mappable[0]))

struct eid_claims_map {
    apr_pool_t *pool;
    eid_claims_profile_e profile;
    const char *custom[EID_ATTR__COUNT]; /* claim name per field, or NULL */
    apr_hash_t *acr;                     /* uri -> int* level */
    rule_t *rules;                       /* compiled */
    int nrules;
};

static const struct {
    const char *uri;
    int level;
} loa_table[] = {
    {"http://id.elegnamnden.se/loa/1.0/loa2", 2},
    {"http://id.sambi.se/loa/loa2", 2},
    {"http://id.elegnamnden.se/loa/1.0/loa3", 3},
    {"http://id.sambi.se/loa/loa3", 3},
    {"http://id.elegnamnden.se/loa/1.0/eidas-sub", 3},
    {"http://eidas.europa.eu/LoA/substantial", 3},
    {"http://id.elegnamnden.se/loa/1.0/loa4", 4},
    {"http://id.elegnamnden.se/loa/1.0/eidas-high", 4},
    {"http://eidas.europa.eu/LoA/high", 4},
};

/* ---- configuration ------------------------------------------------------------- */

static void add_rules(eid_claims_map_t *m, const rule_t *r, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!m->custom[r[i].field])
            m->rules[m->nrules++] = r[i];
}

/* Profile rules for fields without an override, then the overrides. */
static void compile(eid_claims_map_t *m)
{
    size_t i;

    m->nrules = 0;
    m->rules = apr_palloc(m->pool, sizeof(rule_t) * 64);
    add_rules(m, common, sizeof(common) / sizeof(common[0]));
    switch (m->profile) {
    case EID_CLAIMS_OIDC_SWEDEN:
        add_rules(m, oidc_sweden, sizeof(oidc_sweden) / sizeof(oidc_sweden[0]));
        break;
    case EID_CLAIMS_INERA:
        add_rules(m, inera, sizeof(inera) / sizeof(inera[0]));
        break;
    default:
        add_rules(m, generic, sizeof(generic) / sizeof(generic[0]));
    }
    for (i = 0; i < NMAPPABLE; i++)
        if (m->custom[mappable[i].field]) {
            rule_t *r = &m->rules[m->nrules++];
            r->field = mappable[i].field;
            r->claim = m->custom[mappable[i].field];
            r->kind = mappable[i].kind;
        }
}

eid_claims_map_t *eid_claims_map_create(apr_pool_t *p)
{
    eid_claims_map_t *m = apr_pcalloc(p, sizeof(*m));
    m->pool = p;
    m->acr = apr_hash_make(p);
    compile(m);
    return m;
}

const char *eid_claims_set_profile(eid_claims_map_t *m, const char *name)
{
    if (!strcmp(name, "generic"))
        m->profile = EID_CLAIMS_GENERIC;
    else if (!strcmp(name, "oidc-sweden"))
        m->profile = EID_CLAIMS_OIDC_SWEDEN;
    else if (!strcmp(name, "inera"))
        m->profile = EID_CLAIMS_INERA;
    else
        return "claims: use generic, oidc-sweden or inera";
    compile(m);
    return NULL;
}

const char *eid_claims_set_claim(eid_claims_map_t *m, apr_pool_t *p, const char *field,
                                 const char *claim)
{
    const eid_attr_desc_t *d = eid_attr_by_key(field);
    size_t i;

    if (!claim || !*claim)
        return apr_psprintf(p, "claim.%s: a claim name is required", field);
    for (i = 0; d && i < NMAPPABLE; i++)
        if (mappable[i].field == d->id) {
            m->custom[d->id] = apr_pstrdup(m->pool, claim);
            compile(m);
            return NULL;
        }
    return apr_psprintf(p, "claim.%s: not a field a claim can fill (subject, pnr, hsa-id, "
                        "given-name, surname, display-name, email, upn, org-number, "
                        "org-hsa-id, org-name, unit-hsa-id, unit-name, commission-hsa-id, "
                        "commission-name, commission-purpose, commission-rights, roles, "
                        "scopes, loa-uri)", field);
}

const char *eid_claims_set_acr(eid_claims_map_t *m, apr_pool_t *p, const char *uri,
                               const char *level)
{
    int *lv, n;

    if (!uri || !*uri)
        return "acr.<uri>: the URI is missing";
    if ((n = eid_loa_parse(level, 0)) < 0)
        return apr_psprintf(p, "acr.%s: the level must be 0, 1, 2, 3 or 4", uri);
    lv = apr_palloc(m->pool, sizeof(*lv));
    *lv = n;
    apr_hash_set(m->acr, apr_pstrdup(m->pool, uri), APR_HASH_KEY_STRING, lv);
    return NULL;
}

int eid_claims_acr_loa(const eid_claims_map_t *m, const char *uri)
{
    size_t i;
    const int *lv = m ? apr_hash_get(m->acr, uri, APR_HASH_KEY_STRING) : NULL;

    if (lv)
        return *lv;
    for (i = 0; i < sizeof(loa_table) / sizeof(loa_table[0]); i++)
        if (!strcmp(uri, loa_table[i].uri))
            return loa_table[i].level;
    return 0;
}

/* Which URIs of loa_table a profile asks for (by prefix). */
static int profile_asks(eid_claims_profile_e prof, const char *uri)
{
    switch (prof) {
    case EID_CLAIMS_OIDC_SWEDEN:
        return !strncmp(uri, "http://id.elegnamnden.se/", 25);
    case EID_CLAIMS_INERA:
        return !strncmp(uri, "http://id.sambi.se/", 19);
    default:
        return 1;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

apr_array_header_t *eid_claims_acr_uris(const eid_claims_map_t *m, apr_pool_t *p, int min_loa)
{
    apr_array_header_t *out = apr_array_make(p, 8, sizeof(const char *));
    apr_array_header_t *own = apr_array_make(p, 8, sizeof(const char *));
    apr_hash_index_t *hi;
    int level, i;
    size_t t;

    if (min_loa <= 0)
        return out;
    for (hi = apr_hash_first(p, m->acr); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_hash_this(hi, &k, NULL, NULL);
        APR_ARRAY_PUSH(own, const char *) = k;
    }
    qsort(own->elts, (size_t)own->nelts, sizeof(const char *), cmp_str);
    for (level = min_loa; level <= 4; level++) {
        for (t = 0; t < sizeof(loa_table) / sizeof(loa_table[0]); t++)
            if (profile_asks(m->profile, loa_table[t].uri) &&
                eid_claims_acr_loa(m, loa_table[t].uri) == level)
                APR_ARRAY_PUSH(out, const char *) = loa_table[t].uri;
        for (i = 0; i < own->nelts; i++) {
            const char *u = APR_ARRAY_IDX(own, i, const char *);
            int in_table = 0;
            for (t = 0; t < sizeof(loa_table) / sizeof(loa_table[0]); t++)
                in_table |= profile_asks(m->profile, loa_table[t].uri) &&
                            !strcmp(u, loa_table[t].uri);
            if (!in_table && eid_claims_acr_loa(m, u) == level)
                APR_ARRAY_PUSH(out, const char *) = u;
        }
    }
    return out;
}

/* ---- mapping ------------------------------------------------------------------- */

static const char **str_slot(eid_identity_t *id, eid_attr_e f)
{
    switch (f) {
    case EID_ATTR_SUBJECT: return &id->subject;
    case EID_ATTR_CLIENT_ID: return &id->client_id;
    case EID_ATTR_TOKEN_ID: return &id->token_id;
    case EID_ATTR_PNR: return &id->pnr;
    case EID_ATTR_HSA_ID: return &id->hsa_id;
    case EID_ATTR_GIVEN_NAME: return &id->given_name;
    case EID_ATTR_SURNAME: return &id->surname;
    case EID_ATTR_DISPLAY_NAME: return &id->display_name;
    case EID_ATTR_EMAIL: return &id->email;
    case EID_ATTR_UPN: return &id->upn;
    case EID_ATTR_ORG_NUMBER: return &id->org_number;
    case EID_ATTR_ORG_HSA_ID: return &id->org_hsa_id;
    case EID_ATTR_ORG_NAME: return &id->org_name;
    case EID_ATTR_UNIT_HSA_ID: return &id->unit_hsa_id;
    case EID_ATTR_UNIT_NAME: return &id->unit_name;
    case EID_ATTR_COMMISSION_HSA_ID: return &id->commission_hsa_id;
    case EID_ATTR_COMMISSION_NAME: return &id->commission_name;
    case EID_ATTR_COMMISSION_PURPOSE: return &id->commission_purpose;
    case EID_ATTR_LOA_URI: return &id->loa_uri;
    default: return NULL;
    }
}

static apr_array_header_t **arr_slot(eid_identity_t *id, eid_attr_e f)
{
    switch (f) {
    case EID_ATTR_COMMISSION_RIGHTS: return &id->commission_rights;
    case EID_ATTR_ROLES: return &id->roles;
    case EID_ATTR_SCOPES: return &id->scopes;
    default: return NULL;
    }
}

/* No C0 control, DEL, or C1 control (U+0080-U+009F): values end up in
 * headers, environment variables and log lines.  The values come out of a
 * UTF-8-checking JSON parser (eid_jwt_json, jansson), so only the control
 * characters can make this refuse. */
static int clean(const char *s, apr_size_t n)
{
    return eid_utf8_check((const unsigned char *)s, n, EID_UTF8_NO_CONTROLS) == EID_UTF8_OK;
}

static int push_words(apr_pool_t *p, apr_array_header_t **arr, const char *s, apr_size_t n,
                      int split)
{
    apr_size_t i = 0, j;

    if (!clean(s, n))
        return 0;
    while (i < n) {
        if (split && s[i] == ' ') {
            i++;
            continue;
        }
        for (j = i; j < n && !(split && s[j] == ' '); j++)
            ;
        if (!*arr)
            *arr = apr_array_make(p, 4, sizeof(const char *));
        APR_ARRAY_PUSH(*arr, const char *) = apr_pstrmemdup(p, s + i, j - i);
        i = j;
    }
    return 1;
}

static int map_multi(apr_pool_t *p, eid_identity_t *id, const rule_t *r, json_t *v,
                     eid_result_t *res)
{
    apr_array_header_t **arr = arr_slot(id, r->field);
    int split = r->kind == K_SCOPES;
    const char *bad_type = split ? "EID03413" : "EID03402";
    size_t i;
    json_t *e;

    if (split && *arr)
        return 0; /* `scope` was there: `scp` is only the fallback */
    if (json_is_string(v))
        return push_words(p, arr, json_string_value(v), json_string_length(v), split)
                   ? 0 : eid_fail(res, "EID03403", "a claim contains a control character");
    if (!json_is_array(v))
        return eid_fail(res, bad_type,
                        split ? "scope / scp is not a string or array of strings"
                              : "a multi-valued claim is not a string or array of strings");
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return eid_fail(res, bad_type,
                            split ? "scope / scp array holds a non-string"
                                  : "a multi-valued claim's array holds a non-string");
        if (!push_words(p, arr, json_string_value(e), json_string_length(e), 0))
            return eid_fail(res, "EID03403", "a claim contains a control character");
    }
    return 0;
}

static int map_org_affil(apr_pool_t *p, eid_identity_t *id, const char *s, apr_size_t n,
                         eid_result_t *res)
{
    const char *at = memrchr(s, '@', n);
    apr_size_t off = at ? (apr_size_t)(at - s) + 1 : 0;

    if (!at || !eid_orgnr_ok(s + off, n - off))
        return eid_fail(res, "EID03410", "orgAffiliation is not <id>@<org number>");
    if (!id->org_number)
        id->org_number = apr_pstrmemdup(p, s + off, n - off);
    else if (strlen(id->org_number) != n - off || memcmp(id->org_number, s + off, n - off))
        return eid_fail(res, "EID03411",
                        "orgAffiliation names another organisation than orgNumber");
    return 0;
}

static int map_one(apr_pool_t *p, const eid_claims_map_t *m, eid_identity_t *id,
                   const rule_t *r, json_t *v, eid_result_t *res)
{
    const char **slot = str_slot(id, r->field);
    const char *s;
    apr_size_t n;
    eid_pnr_kind_e k;

    if (r->kind == K_MULTI || r->kind == K_SCOPES)
        return map_multi(p, id, r, v, res);
    if (!json_is_string(v))
        return r->kind == K_ACR
                   ? eid_fail(res, "EID03412", "acr is not a string")
                   : eid_fail(res, "EID03401", "a single-valued claim is not a string");
    s = json_string_value(v);
    n = json_string_length(v);
    if (!clean(s, n))
        return eid_fail(res, "EID03403", "a claim contains a control character");
    switch (r->kind) {
    case K_PNR_PIN:
    case K_PNR_COORD:
    case K_PNR_ANY:
        /* Why refuse two numbers: which one is the person?  Never guess. */
        if (id->pnr)
            return eid_fail(res, "EID03404", "both a personnummer and a samordningsnummer");
        k = eid_pnr_classify(s, n);
        if (r->kind == K_PNR_PIN && k != EID_PNR_PERSONNUMMER)
            return eid_fail(res, "EID03405", "personalIdentityNumber is not a valid personnummer");
        if (r->kind == K_PNR_COORD && k != EID_PNR_SAMORDNINGSNUMMER)
            return eid_fail(res, "EID03406", "coordinationNumber is not a valid samordningsnummer");
        if (k == EID_PNR_INVALID)
            return eid_fail(res, "EID03407", "the personal identity number claim is invalid");
        id->pnr_is_coordination = k == EID_PNR_SAMORDNINGSNUMMER;
        break;
    case K_HSA:
        if (!eid_hsa_ok(s, n, 0, NULL))
            return eid_fail(res, "EID03408", "an HSA-ID claim is not a valid HSA-ID");
        break;
    case K_ORGNR:
        if (!eid_orgnr_ok(s, n))
            return eid_fail(res, "EID03409", "an organisation number claim is invalid");
        break;
    case K_ORG_AFFIL:
        return map_org_affil(p, id, s, n, res);
    case K_ACR:
        if (n == 0)
            return 0;
        id->loa = eid_claims_acr_loa(m, s);
        break;
    default:
        if (n == 0)
            return 0; /* an absent attribute is NULL, never "" */
    }
    if (!*slot)
        *slot = apr_pstrmemdup(p, s, n);
    return 0;
}

/* `aud` (a string or an array of strings) into id->audiences, so that a
 * location can ask for its own audience among the provider's (EidBearerAudience).
 * Other member types are left out (the token rules judged `aud` already). */
static int audiences(apr_pool_t *p, json_t *aud, eid_identity_t *id, eid_result_t *res)
{
    size_t i, n = json_is_array(aud) ? json_array_size(aud) : json_is_string(aud) ? 1 : 0;
    if (n > EID_CLAIMS_MAX_AUDIENCES)
        return eid_fail(res, "EID03415", "more aud values than a token may carry");
    for (i = 0; i < n; i++) {
        json_t *v = json_is_array(aud) ? json_array_get(aud, i) : aud;
        if (!json_is_string(v))
            continue;
        if (!clean(json_string_value(v), json_string_length(v)))
            return eid_fail(res, "EID03403", "a claim contains a control character");
        if (!id->audiences)
            id->audiences = apr_array_make(p, (int)n, sizeof(const char *));
        APR_ARRAY_PUSH(id->audiences, const char *) =
            apr_pstrmemdup(p, json_string_value(v), json_string_length(v));
    }
    return 0;
}

int eid_claims_to_identity(apr_pool_t *p, const eid_claims_map_t *m, json_t *claims,
                           const char *provider, eid_identity_t **out, eid_result_t *res)
{
    eid_identity_t *id = eid_identity_make(p);
    json_t *iss = json_object_get(claims, "iss");
    apr_int64_t t;
    int i, rc;

    *out = NULL;
    id->method = EID_METHOD_BEARER;
    id->profile = provider;
    if (json_is_string(iss) && json_string_length(iss)) {
        /* Checked again here although the token rules compare it with the
         * configured issuer: this function must be safe on its own. */
        if (!clean(json_string_value(iss), json_string_length(iss)))
            return eid_fail(res, "EID03403", "a claim contains a control character");
        id->issuer = apr_pstrmemdup(p, json_string_value(iss), json_string_length(iss));
    }
    if ((rc = audiences(p, json_object_get(claims, "aud"), id, res)) != 0)
        return rc;
    for (i = 0; i < m->nrules; i++) {
        json_t *v = json_object_get(claims, m->rules[i].claim);
        if (v && !json_is_null(v) && (rc = map_one(p, m, id, &m->rules[i], v, res)) != 0)
            return rc;
    }
    switch (eid_jwt_numeric_date(claims, "auth_time", &t)) {
    case 1: id->auth_time = apr_time_from_sec(t); break;
    case 0: break;
    default: return eid_fail(res, "EID03414", "auth_time is not an integer in range");
    }
    if (eid_jwt_numeric_date(claims, "exp", &t) == 1)
        id->expires = apr_time_from_sec(t);
    *out = id;
    return 0;
}
