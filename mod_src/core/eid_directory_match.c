/*
 * eid_directory_match.c - request-time lookups in a loaded directory:
 * organisation by number or longest HSA-ID prefix, flattened groups, role
 * rules.  Everything here only reads the directory (apr_hash_get() without
 * iteration state), so it is safe from any number of threads at once.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eid_directory_int.h"
#include "eid/eid_hsa.h"

#include <apr_strings.h>

static const char *const kind_names[] = {NULL, "municipality", "region", "private-care",
                                         "state-agency"};

const char *eid_org_kind_name(eid_org_kind_e k)
{
    if ((int)k <= 0 || (size_t)k >= sizeof(kind_names) / sizeof(kind_names[0]))
        return NULL;
    return kind_names[k];
}

eid_org_kind_e eid_org_kind_parse(const char *name)
{
    size_t i;

    for (i = 1; name && i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
        if (!strcmp(name, kind_names[i]))
            return (eid_org_kind_e)i;
    return EID_ORG_KIND_NONE;
}

const char *eid_directory_name(const eid_directory_t *dir)
{
    return dir->name;
}

int eid_directory_org_count(const eid_directory_t *dir)
{
    return dir ? dir->norgs : 0;
}

int eid_directory_group_count(const eid_directory_t *dir)
{
    return dir ? dir->ngroups : 0;
}

int eid_directory_rule_count(const eid_directory_t *dir)
{
    return dir ? dir->nrules : 0;
}

int eid_directory_has_group(const eid_directory_t *dir, const char *name)
{
    return dir && name && apr_hash_get(dir->group_by_name, name, APR_HASH_KEY_STRING) != NULL;
}

int eid_directory_has_role(const eid_directory_t *dir, const char *name)
{
    return dir && name && apr_hash_get(dir->role_names, name, APR_HASH_KEY_STRING) != NULL;
}

char *eid_dir_upper(apr_pool_t *p, const char *s)
{
    char *u = apr_pstrdup(p, s), *q;

    for (q = u; *q; q++)
        if (*q >= 'a' && *q <= 'z')
            *q = (char)(*q - 'a' + 'A');
    return u;
}

/* The organisation whose HSA-ID prefix is the longest one `hsa` starts with,
 * without regard to case (the prefixes are kept in upper case); at most
 * max_prefix hash lookups, no allocation. */
static const eid_dir_org_t *by_prefix(const eid_directory_t *d, const char *hsa)
{
    char up[EID_HSA_MAXLEN + 1];
    size_t n, i;

    if (!hsa || d->max_prefix == 0)
        return NULL;
    n = strlen(hsa);
    if (n > (size_t)d->max_prefix)
        n = (size_t)d->max_prefix;
    if (n > EID_HSA_MAXLEN) /* prefixes are HSA-ID-shaped: never longer */
        n = EID_HSA_MAXLEN;
    for (i = 0; i < n; i++)
        up[i] = (hsa[i] >= 'a' && hsa[i] <= 'z') ? (char)(hsa[i] - 'a' + 'A') : hsa[i];
    for (; n > 0; n--) {
        const eid_dir_org_t *o = apr_hash_get(d->org_by_prefix, up, (apr_ssize_t)n);
        if (o)
            return o;
    }
    return NULL;
}

/* Is the identity's organisation number only the one inside its own HSA-ID
 * (SE<number>-...)?  That is what a certificate carries (eid_cert.c reads it
 * out of the HSA-ID); a token's number is a claim of its own. */
static int number_from_hsa_id(const eid_identity_t *id)
{
    size_t n;

    if (id->method != EID_METHOD_CERT || !id->hsa_id || !id->org_number)
        return 0;
    n = strlen(id->org_number);
    return strlen(id->hsa_id) > n + 2 && (id->hsa_id[0] == 'S' || id->hsa_id[0] == 's') &&
           (id->hsa_id[1] == 'E' || id->hsa_id[1] == 'e') &&
           !memcmp(id->hsa_id + 2, id->org_number, n) && id->hsa_id[n + 2] == '-';
}

static const eid_dir_org_t *find_org(const eid_directory_t *d, const eid_identity_t *id)
{
    const eid_dir_org_t *o = NULL;

    /* Why the prefix first for such a number: it says no more than the
     * HSA-ID, and a longer prefix the directory gives another organisation
     * (a private provider's staff in the region's catalogue) would otherwise
     * lose to it - the provider's staff would be the region's on a card and
     * the provider's with a token. */
    if (number_from_hsa_id(id) && (o = by_prefix(d, id->hsa_id)) != NULL)
        return o;
    if (id->org_number)
        o = apr_hash_get(d->org_by_number, id->org_number, APR_HASH_KEY_STRING);
    if (!o)
        o = by_prefix(d, id->org_hsa_id);
    if (!o)
        o = by_prefix(d, id->hsa_id);
    return o;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Does the array of strings `have` hold one of the condition's values? */
static int any_in(const apr_array_header_t *have, const eid_dir_cond_t *c)
{
    int i, j;

    for (i = 0; have && i < have->nelts; i++) {
        const char *h = APR_ARRAY_IDX(have, i, const char *);
        for (j = 0; h && j < c->n; j++)
            if (!strcmp(h, c->vals[j]))
                return 1;
    }
    return 0;
}

static int one_of(const char *s, const eid_dir_cond_t *c)
{
    int j;

    for (j = 0; s && j < c->n; j++)
        if (!strcmp(s, c->vals[j]))
            return 1;
    return 0;
}

static int cond_holds(eid_dir_cond_e k, const eid_dir_cond_t *c, const eid_identity_t *id,
                      const eid_dir_org_t *o)
{
    int j;

    switch (k) {
    case EID_DC_SYSTEM_ROLE:
        return any_in(id->roles, c);
    case EID_DC_PURPOSE:
        return one_of(id->commission_purpose, c);
    case EID_DC_RIGHT:
        return any_in(id->commission_rights, c);
    case EID_DC_ORG_KIND:
        return o && (c->kinds & (1u << o->kind)) != 0;
    case EID_DC_GROUP:
        /* The organisation's list is sorted: a binary search per value. */
        for (j = 0; o && o->ngroups && j < c->n; j++)
            if (bsearch(&c->vals[j], o->groups, (size_t)o->ngroups, sizeof(char *), cmp_str))
                return 1;
        return 0;
    case EID_DC_ORG:
        return o && one_of(o->number, c);
    case EID_DC_HSA_ID: /* the values are in upper case (eid_directory.c) */
        for (j = 0; id->hsa_id && j < c->n; j++)
            if (!strcasecmp(id->hsa_id, c->vals[j]))
                return 1;
        return 0;
    default:
        return 0;
    }
}

static int rule_holds(const eid_dir_rule_t *r, const eid_identity_t *id, const eid_dir_org_t *o)
{
    int k;

    for (k = 0; k < EID_DC__COUNT; k++)
        if (r->cond[k].vals && !cond_holds((eid_dir_cond_e)k, &r->cond[k], id, o))
            return 0;
    return 1;
}

void eid_directory_enrich(apr_pool_t *p, const eid_directory_t *dir, const eid_identity_t *id,
                          eid_dir_info_t *out)
{
    const eid_dir_org_t *o = NULL;
    int i, j;

    memset(out, 0, sizeof(*out));
    if (dir && id)
        o = find_org(dir, id);
    out->groups = apr_array_make(p, o && o->ngroups ? o->ngroups : 1, sizeof(const char *));
    out->roles = apr_array_make(p, 4, sizeof(const char *));
    if (o) {
        out->org_kind = o->kind;
        out->org_number = o->number;
        out->org_name = o->name;
        for (i = 0; i < o->ngroups; i++)
            APR_ARRAY_PUSH(out->groups, const char *) = o->groups[i];
    }
    if (!dir || !id)
        return;
    for (i = 0; i < dir->nrules; i++) {
        const eid_dir_rule_t *r = dir->rules[i];
        if (!rule_holds(r, id, o))
            continue;
        for (j = 0; j < out->roles->nelts; j++)
            if (!strcmp(APR_ARRAY_IDX(out->roles, j, const char *), r->role))
                break;
        if (j == out->roles->nelts)
            APR_ARRAY_PUSH(out->roles, const char *) = r->role;
    }
    qsort(out->roles->elts, (size_t)out->roles->nelts, sizeof(const char *), cmp_str);
}
