/*
 * eid_directory.c - the directory file loader: tokenising (httpd-style
 * lines), the three statements, and the load-time resolution of groups
 * (unknown members, cycles, flattening per organisation).
 * The format is described in docs/directory.md; the lookups are in
 * eid_directory_match.c.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <apr_strings.h>

#include "eid/eid_hsa.h"
#include "eid/eid_pnr.h"
#include "eid/eid_util.h"
#include "eid_directory_int.h"

/* One word of a line: its text (quotes removed) and where its first unquoted
 * '=' is (-1 when none: a positional word). */
typedef struct {
    char *text;
    int eq;
} word_t;

typedef struct {
    apr_pool_t *p;       /* the directory's pool */
    apr_pool_t *tmp;     /* scratch, destroyed when the load ends */
    const char *name;    /* file name for error texts */
    eid_directory_t *dir;
    apr_array_header_t *orgs, *groups, *rules; /* of pointers, copied into dir at the end */
    apr_hash_t *rule_keys; /* canonical rule -> eid_dir_rule_t * (duplicates) */
    const char *err;
} ctx_t;

/* ---- errors ------------------------------------------------------------------ */

static apr_status_t fail(ctx_t *c, int line, const char *fmt, ...)
{
    va_list ap;
    const char *what;

    va_start(ap, fmt);
    what = apr_pvsprintf(c->p, fmt, ap);
    va_end(ap);
    c->err = apr_psprintf(c->p, "%s:%d: %s", c->name, line, what);
    return APR_EINVAL;
}

/* A word for an error text: at most 64 bytes, cut on a UTF-8 boundary (the
 * line was checked to be UTF-8 without control characters). */
static const char *quote(ctx_t *c, const char *w)
{
    size_t n = strlen(w);

    if (n <= 64)
        return w;
    n = 64;
    while (n > 0 && ((unsigned char)w[n] & 0xC0) == 0x80)
        n--;
    return apr_pstrcat(c->p, apr_pstrndup(c->p, w, n), "...", NULL);
}

/* ---- lexical --------------------------------------------------------------- */

/*
 * Split `s` (one line, NUL-terminated, tabs allowed) into words in place:
 * blanks separate words; "..." quotes blanks, '#' and '=' (inside, \" and \\
 * stand for " and \); a '#' at the start of a word begins a comment.
 * Returns the word count, or -1 for an unterminated quote.
 */
static int tokenize(char *s, word_t *w, int max)
{
    int n = 0;
    char *p = s;

    for (;;) {
        char *o, *start;
        int eq = -1, end;

        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || n == max)
            break;
        start = o = p;
        while (*p && *p != ' ' && *p != '\t') {
            if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    *o++ = *p++;
                }
                if (!*p)
                    return -1;
                p++;
                continue;
            }
            if (*p == '=' && eq < 0)
                eq = (int)(o - start);
            *o++ = *p++;
        }
        end = (*p == '\0');
        *o = '\0'; /* o <= p: the terminator never overwrites unread text */
        w[n].text = start;
        w[n].eq = eq;
        n++;
        if (end)
            break;
        p++;
    }
    return n;
}

/* A group or role name: a letter, then letters, digits, '.', '_', '-'. */
static int name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > EID_DIRECTORY_MAX_NAME)
        return 0;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return 0;
    for (i = 1; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

/* An organisation number as "2321000230" or "232100-0230": the 10 digits in
 * `p` when valid (eid_orgnr_ok: Luhn, third digit >= 2), else NULL. */
static const char *orgnr(apr_pool_t *p, const char *s)
{
    char d[11];
    size_t n = strlen(s);

    if (n == 11 && s[6] == '-') {
        memcpy(d, s, 6);
        memcpy(d + 6, s + 7, 4);
    } else if (n == 10) {
        memcpy(d, s, 10);
    } else {
        return NULL;
    }
    d[10] = '\0';
    return eid_orgnr_ok(d, 10) ? apr_pstrdup(p, d) : NULL;
}

/* Split a comma-separated option value into a fresh array of non-empty
 * items; NULL when an item is empty. */
static apr_array_header_t *split(apr_pool_t *p, const char *v)
{
    apr_array_header_t *a = apr_array_make(p, 2, sizeof(const char *));

    for (;;) {
        const char *comma = strchr(v, ',');
        size_t n = comma ? (size_t)(comma - v) : strlen(v);
        if (n == 0)
            return NULL;
        APR_ARRAY_PUSH(a, const char *) = apr_pstrndup(p, v, n);
        if (!comma)
            return a;
        v = comma + 1;
    }
}

/* ---- statements ------------------------------------------------------------ */

static apr_status_t st_org(ctx_t *c, int line, word_t *w, int n)
{
    eid_dir_org_t *o, *old;
    const char *kind = NULL;
    int i;

    if (n < 2 || w[1].eq >= 0)
        return fail(c, line, "Organisation needs an organisation number first");
    o = apr_pcalloc(c->p, sizeof(*o));
    o->line = line;
    if (!(o->number = orgnr(c->p, w[1].text)))
        return fail(c, line, "malformed organisation number \"%s\"", quote(c, w[1].text));
    if ((old = apr_hash_get(c->dir->org_by_number, o->number, APR_HASH_KEY_STRING)))
        return fail(c, line, "duplicate organisation %s (first at line %d)", o->number, old->line);
    for (i = 2; i < n; i++) {
        const char *key, *val;
        if (w[i].eq < 0)
            return fail(c, line, "unexpected word \"%s\" (options are key=value)",
                        quote(c, w[i].text));
        key = apr_pstrndup(c->tmp, w[i].text, (apr_size_t)w[i].eq);
        val = w[i].text + w[i].eq + 1;
        if (*val == '\0')
            return fail(c, line, "empty value for %s=", quote(c, key));
        if (!strcasecmp(key, "kind")) {
            if (kind)
                return fail(c, line, "kind= given twice");
            kind = val;
            if ((o->kind = eid_org_kind_parse(val)) == EID_ORG_KIND_NONE)
                return fail(c, line,
                            "unknown kind \"%s\" (municipality, region, private-care, "
                            "state-agency)", quote(c, val));
        } else if (!strcasecmp(key, "name")) {
            if (o->name)
                return fail(c, line, "name= given twice");
            o->name = apr_pstrdup(c->p, val);
        } else if (!strcasecmp(key, "hsa")) {
            apr_array_header_t *a = split(c->tmp, val);
            int j;
            if (!a)
                return fail(c, line, "empty item in hsa=");
            for (j = 0; j < a->nelts; j++) {
                const char *pre = APR_ARRAY_IDX(a, j, const char *);
                size_t len = strlen(pre);
                if (!eid_hsa_prefix_ok(pre, len))
                    return fail(c, line,
                                "malformed HSA-ID prefix \"%s\" (SE, the owner's 10 digits, "
                                "\"-\", then letters or digits)", quote(c, pre));
                if ((old = apr_hash_get(c->dir->org_by_prefix, pre, (apr_ssize_t)len)))
                    return fail(c, line, "HSA-ID prefix %s is already organisation %s's (line %d)",
                                pre, old->number, old->line);
                pre = apr_pstrdup(c->p, pre);
                apr_hash_set(c->dir->org_by_prefix, pre, (apr_ssize_t)len, o);
                if ((int)len > c->dir->max_prefix)
                    c->dir->max_prefix = (int)len;
            }
        } else {
            return fail(c, line, "unknown option \"%s\" for Organisation (kind=, name=, hsa=)",
                        quote(c, key));
        }
    }
    if (!kind)
        return fail(c, line, "Organisation %s needs kind=", o->number);
    apr_hash_set(c->dir->org_by_number, o->number, APR_HASH_KEY_STRING, o);
    APR_ARRAY_PUSH(c->orgs, eid_dir_org_t *) = o;
    return APR_SUCCESS;
}

static apr_status_t st_group(ctx_t *c, int line, word_t *w, int n)
{
    eid_dir_group_t *g, *old;
    int i;

    if (n < 2 || w[1].eq >= 0 || !name_ok(w[1].text))
        return fail(c, line,
                    "Group needs a name first (a letter, then letters, digits, \".\", \"_\" "
                    "or \"-\"; at most %d)", EID_DIRECTORY_MAX_NAME);
    if ((old = apr_hash_get(c->dir->group_by_name, w[1].text, APR_HASH_KEY_STRING)))
        return fail(c, line, "duplicate group \"%s\" (first at line %d)", w[1].text, old->line);
    if (n < 3)
        return fail(c, line, "group \"%s\" has no members", w[1].text);
    g = apr_pcalloc(c->p, sizeof(*g));
    g->name = apr_pstrdup(c->p, w[1].text);
    g->line = line;
    g->words = apr_array_make(c->tmp, n - 2, sizeof(const char *));
    for (i = 2; i < n; i++) {
        const char *m = w[i].text;
        if (w[i].eq >= 0)
            return fail(c, line, "unknown option \"%s\" for Group (it takes members only)",
                        quote(c, apr_pstrndup(c->tmp, m, (apr_size_t)w[i].eq)));
        if (m[0] >= '0' && m[0] <= '9') {
            if (!(m = orgnr(c->tmp, m)))
                return fail(c, line, "malformed organisation number \"%s\"", quote(c, w[i].text));
        } else if (!name_ok(m)) {
            return fail(c, line, "bad member \"%s\" (an organisation number or a group name)",
                        quote(c, m));
        } else {
            m = apr_pstrdup(c->tmp, m);
        }
        APR_ARRAY_PUSH(g->words, const char *) = m;
    }
    apr_hash_set(c->dir->group_by_name, g->name, APR_HASH_KEY_STRING, g);
    APR_ARRAY_PUSH(c->groups, eid_dir_group_t *) = g;
    return APR_SUCCESS;
}

static const struct {
    const char *key;
    eid_dir_cond_e kind;
    int list; /* comma-separated items (identifiers); else the value whole (text) */
} cond_keys[] = {
    {"system-role", EID_DC_SYSTEM_ROLE, 0}, {"purpose", EID_DC_PURPOSE, 0},
    {"right", EID_DC_RIGHT, 0},             {"org-kind", EID_DC_ORG_KIND, 1},
    {"group", EID_DC_GROUP, 1},             {"org", EID_DC_ORG, 1},
    {"hsa-id", EID_DC_HSA_ID, 1},
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One value of a condition, checked and normalised; NULL after fail(). */
static const char *cond_value(ctx_t *c, int line, eid_dir_cond_t *cd, eid_dir_cond_e kind,
                              const char *v)
{
    eid_org_kind_e k;

    switch (kind) {
    case EID_DC_ORG_KIND:
        if ((k = eid_org_kind_parse(v)) == EID_ORG_KIND_NONE) {
            fail(c, line, "unknown kind \"%s\" (municipality, region, private-care, state-agency)",
                 quote(c, v));
            return NULL;
        }
        cd->kinds |= 1u << k;
        return v;
    case EID_DC_ORG:
        if (!(v = orgnr(c->p, v)))
            fail(c, line, "malformed organisation number in org=");
        return v; /* known? checked once the whole file is read */
    case EID_DC_GROUP:
        if (!name_ok(v))
            fail(c, line, "bad group name \"%s\" in group=", quote(c, v));
        return name_ok(v) ? v : NULL;
    case EID_DC_HSA_ID:
        if (!eid_hsa_ok(v, strlen(v), 0, NULL)) {
            fail(c, line, "malformed HSA-ID \"%s\" in hsa-id=", quote(c, v));
            return NULL;
        }
        return v;
    default:
        return v;
    }
}

static apr_status_t st_role(ctx_t *c, int line, word_t *w, int n)
{
    eid_dir_rule_t *r, *old;
    apr_array_header_t *vals[EID_DC__COUNT] = {0};
    const char *canon;
    int i, k, any = 0;

    if (n < 2 || w[1].eq >= 0 || !name_ok(w[1].text))
        return fail(c, line,
                    "Role needs a role name first (a letter, then letters, digits, \".\", \"_\" "
                    "or \"-\"; at most %d)", EID_DIRECTORY_MAX_NAME);
    r = apr_pcalloc(c->p, sizeof(*r));
    r->role = apr_pstrdup(c->p, w[1].text);
    r->line = line;
    for (i = 2; i < n; i++) {
        const char *key, *val;
        apr_array_header_t *items;
        size_t j;
        int m;

        if (w[i].eq < 0)
            return fail(c, line, "unexpected word \"%s\" (conditions are key=value)",
                        quote(c, w[i].text));
        key = apr_pstrndup(c->tmp, w[i].text, (apr_size_t)w[i].eq);
        val = w[i].text + w[i].eq + 1;
        if (!strcasecmp(key, "title"))
            /* Why refused rather than accepted: no method puts a title code into
             * the identity yet, so such a rule could never match - a policy
             * that silently admits nobody is a trap. */
            return fail(c, line, "title= is not supported yet: no method provides a title code");
        for (j = 0; j < sizeof(cond_keys) / sizeof(cond_keys[0]); j++)
            if (!strcasecmp(key, cond_keys[j].key))
                break;
        if (j == sizeof(cond_keys) / sizeof(cond_keys[0]))
            return fail(c, line,
                        "unknown condition \"%s\" for Role (system-role=, purpose=, right=, "
                        "org-kind=, group=, org=, hsa-id=)", quote(c, key));
        if (*val == '\0')
            return fail(c, line, "empty value for %s=", cond_keys[j].key);
        k = cond_keys[j].kind;
        if (cond_keys[j].list) {
            if (!(items = split(c->tmp, val)))
                return fail(c, line, "empty item in %s=", cond_keys[j].key);
        } else {
            items = apr_array_make(c->tmp, 1, sizeof(const char *));
            APR_ARRAY_PUSH(items, const char *) = val;
        }
        if (!vals[k])
            vals[k] = apr_array_make(c->tmp, items->nelts, sizeof(const char *));
        for (m = 0; m < items->nelts; m++) {
            const char *v = cond_value(c, line, &r->cond[k], (eid_dir_cond_e)k,
                                       APR_ARRAY_IDX(items, m, const char *));
            if (!v)
                return APR_EINVAL;
            APR_ARRAY_PUSH(vals[k], const char *) = apr_pstrdup(c->p, v);
        }
    }
    /* Canonical form (conditions in a fixed order, values sorted) to find a
     * rule written twice. */
    canon = r->role;
    for (k = 0; k < EID_DC__COUNT; k++) {
        if (!vals[k])
            continue;
        any = 1;
        qsort(vals[k]->elts, (size_t)vals[k]->nelts, sizeof(const char *), cmp_str);
        r->cond[k].vals = (const char **)vals[k]->elts;
        r->cond[k].n = vals[k]->nelts;
        canon = apr_psprintf(c->tmp, "%s\n%d", canon, k);
        for (i = 0; i < vals[k]->nelts; i++)
            canon = apr_pstrcat(c->tmp, canon, "\n", r->cond[k].vals[i], NULL);
    }
    if (!any)
        /* Why: a rule without a condition would give the role to everybody,
         * citizens included - almost certainly a mistake. */
        return fail(c, line, "rule for role \"%s\" has no condition", r->role);
    /* The arrays live in tmp: move the value lists into the directory's pool. */
    for (k = 0; k < EID_DC__COUNT; k++)
        if (r->cond[k].vals)
            r->cond[k].vals = apr_pmemdup(c->p, r->cond[k].vals,
                                          sizeof(const char *) * (size_t)r->cond[k].n);
    if ((old = apr_hash_get(c->rule_keys, canon, APR_HASH_KEY_STRING)))
        return fail(c, line, "duplicate rule for role \"%s\" (first at line %d)", r->role,
                    old->line);
    apr_hash_set(c->rule_keys, canon, APR_HASH_KEY_STRING, r);
    if (!apr_hash_get(c->dir->role_names, r->role, APR_HASH_KEY_STRING))
        apr_hash_set(c->dir->role_names, r->role, APR_HASH_KEY_STRING, r);
    APR_ARRAY_PUSH(c->rules, eid_dir_rule_t *) = r;
    return APR_SUCCESS;
}

/* ---- lines ------------------------------------------------------------------- */

static apr_status_t parse_line(ctx_t *c, int line, char *s, size_t len, word_t *w)
{
    size_t i;
    int n;

    for (i = 0; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '\t')
            s[i] = ' ';
        else if (b < 0x20 || b == 0x7f)
            return fail(c, line, "control character (byte 0x%02x)", b);
    }
    switch (eid_utf8_check((const unsigned char *)s, len, EID_UTF8_NO_CONTROLS)) {
    case EID_UTF8_OK:
        break;
    case EID_UTF8_CONTROL:
        return fail(c, line, "control character");
    default:
        return fail(c, line, "not UTF-8 text");
    }
    s[len] = '\0';
    n = tokenize(s, w, EID_DIRECTORY_MAX_LINE / 2 + 1);
    if (n < 0)
        return fail(c, line, "unterminated quote");
    if (n == 0)
        return APR_SUCCESS;
    if (w[0].eq >= 0)
        return fail(c, line, "a line starts with a keyword (Organisation, Group or Role)");
    if (!strcasecmp(w[0].text, "Organisation"))
        return st_org(c, line, w, n);
    if (!strcasecmp(w[0].text, "Group"))
        return st_group(c, line, w, n);
    if (!strcasecmp(w[0].text, "Role"))
        return st_role(c, line, w, n);
    return fail(c, line, "unknown keyword \"%s\" (Organisation, Group or Role)",
                quote(c, w[0].text));
}

/* ---- resolution -------------------------------------------------------------- */

/* Members as indices; unknown organisations and groups are refused at the
 * group's line. */
static apr_status_t resolve_members(ctx_t *c)
{
    eid_directory_t *d = c->dir;
    int i, j;

    for (i = 0; i < d->ngroups; i++) {
        eid_dir_group_t *g = d->groups[i];
        int nw = g->words->nelts;

        g->orgs = apr_palloc(c->p, sizeof(int) * (size_t)nw);
        g->subs = apr_palloc(c->p, sizeof(int) * (size_t)nw);
        for (j = 0; j < nw; j++) {
            const char *m = APR_ARRAY_IDX(g->words, j, const char *);
            if (m[0] >= '0' && m[0] <= '9') {
                eid_dir_org_t *o = apr_hash_get(d->org_by_number, m, APR_HASH_KEY_STRING);
                if (!o)
                    return fail(c, g->line, "unknown organisation %s in group \"%s\"", m,
                                g->name);
                g->orgs[g->norgs++] = o->stamp; /* stamp holds the index here */
            } else {
                eid_dir_group_t *s = apr_hash_get(d->group_by_name, m, APR_HASH_KEY_STRING);
                if (!s)
                    return fail(c, g->line, "unknown group \"%s\" in group \"%s\"", m, g->name);
                g->subs[g->nsubs++] = s->stamp;
            }
        }
        g->words = NULL;
    }
    return APR_SUCCESS;
}

/* Depth-first search without recursion (a file may chain many groups);
 * a member on the current path closes a cycle, which is named in full. */
static apr_status_t find_cycles(ctx_t *c)
{
    eid_directory_t *d = c->dir;
    int *stk = apr_palloc(c->tmp, sizeof(int) * (size_t)(d->ngroups + 1));
    int *pos = apr_palloc(c->tmp, sizeof(int) * (size_t)(d->ngroups + 1));
    int i;

    for (i = 0; i < d->ngroups; i++) {
        int top = 0;
        if (d->groups[i]->color)
            continue;
        stk[0] = i;
        pos[0] = 0;
        d->groups[i]->color = 1;
        while (top >= 0) {
            eid_dir_group_t *g = d->groups[stk[top]];
            if (pos[top] == g->nsubs) {
                g->color = 2;
                top--;
                continue;
            }
            {
                int s = g->subs[pos[top]++];
                eid_dir_group_t *sg = d->groups[s];
                if (sg->color == 1) {
                    const char *path = "";
                    int k = top;
                    while (stk[k] != s)
                        k--;
                    for (; k <= top; k++)
                        path = apr_pstrcat(c->tmp, path, d->groups[stk[k]]->name, " -> ", NULL);
                    return fail(c, g->line, "cycle among groups: %s%s", path, sg->name);
                }
                if (sg->color == 0) {
                    sg->color = 1;
                    top++;
                    stk[top] = s;
                    pos[top] = 0;
                }
            }
        }
    }
    return APR_SUCCESS;
}

static int cmp_group(const void *a, const void *b)
{
    return strcmp((*(eid_dir_group_t *const *)a)->name, (*(eid_dir_group_t *const *)b)->name);
}

/* Every organisation gets the sorted list of the groups it is in, directly
 * or through groups of groups.  Groups are visited in name order, so each
 * list comes out sorted; stamps keep an organisation or a group from being
 * counted twice for the same group. */
static void flatten(ctx_t *c)
{
    eid_directory_t *d = c->dir;
    eid_dir_group_t **byname = apr_pmemdup(c->tmp, d->groups,
                                           sizeof(*byname) * (size_t)(d->ngroups + 1));
    int *stk = apr_palloc(c->tmp, sizeof(int) * (size_t)(d->ngroups + 1));
    int pass, i, j;

    for (i = 0; i < d->ngroups; i++)
        d->groups[i]->stamp = i; /* index of the group, for the stack below */
    qsort(byname, (size_t)d->ngroups, sizeof(*byname), cmp_group);
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < d->norgs; i++)
            d->orgs[i]->stamp = -1;
        for (i = 0; i < d->ngroups; i++)
            d->groups[i]->color = -1;
        for (i = 0; i < d->ngroups; i++) {
            eid_dir_group_t *root = byname[i];
            int top = 0;
            stk[0] = root->stamp;
            root->color = i;
            while (top >= 0) {
                eid_dir_group_t *g = d->groups[stk[top--]];
                for (j = 0; j < g->norgs; j++) {
                    eid_dir_org_t *o = d->orgs[g->orgs[j]];
                    if (o->stamp == i)
                        continue;
                    o->stamp = i;
                    if (pass == 1)
                        o->groups[o->ngroups] = root->name;
                    o->ngroups++;
                }
                for (j = 0; j < g->nsubs; j++) {
                    eid_dir_group_t *s = d->groups[g->subs[j]];
                    if (s->color != i) {
                        s->color = i;
                        stk[++top] = g->subs[j];
                    }
                }
            }
        }
        for (i = 0; i < d->norgs && pass == 0; i++) {
            eid_dir_org_t *o = d->orgs[i];
            o->groups = o->ngroups ? apr_palloc(c->p, sizeof(char *) * (size_t)o->ngroups) : NULL;
            o->ngroups = 0;
        }
    }
}

/* Names in rules must exist: groups and organisations are checked once the
 * whole file is read, so a rule may come before the group it names. */
static apr_status_t check_rules(ctx_t *c)
{
    eid_directory_t *d = c->dir;
    int i, j;

    for (i = 0; i < d->nrules; i++) {
        eid_dir_rule_t *r = d->rules[i];
        for (j = 0; j < r->cond[EID_DC_GROUP].n; j++) {
            eid_dir_group_t *g = apr_hash_get(d->group_by_name, r->cond[EID_DC_GROUP].vals[j],
                                              APR_HASH_KEY_STRING);
            if (!g)
                return fail(c, r->line, "unknown group \"%s\" in rule for role \"%s\"",
                            r->cond[EID_DC_GROUP].vals[j], r->role);
            r->cond[EID_DC_GROUP].vals[j] = g->name;
        }
        for (j = 0; j < r->cond[EID_DC_ORG].n; j++)
            if (!apr_hash_get(d->org_by_number, r->cond[EID_DC_ORG].vals[j], APR_HASH_KEY_STRING))
                return fail(c, r->line, "unknown organisation %s in rule for role \"%s\"",
                            r->cond[EID_DC_ORG].vals[j], r->role);
    }
    return APR_SUCCESS;
}

static apr_status_t finish(ctx_t *c)
{
    eid_directory_t *d = c->dir;
    apr_status_t rv;
    int i;

    d->orgs = (eid_dir_org_t **)c->orgs->elts;
    d->norgs = c->orgs->nelts;
    d->groups = (eid_dir_group_t **)c->groups->elts;
    d->ngroups = c->groups->nelts;
    d->rules = (eid_dir_rule_t **)c->rules->elts;
    d->nrules = c->rules->nelts;
    for (i = 0; i < d->norgs; i++)
        d->orgs[i]->stamp = i;
    for (i = 0; i < d->ngroups; i++)
        d->groups[i]->stamp = i;
    if ((rv = resolve_members(c)) != APR_SUCCESS || (rv = find_cycles(c)) != APR_SUCCESS)
        return rv;
    flatten(c);
    return check_rules(c);
}

apr_status_t eid_directory_parse(apr_pool_t *p, const char *name, const char *buf,
                                 apr_size_t len, eid_directory_t **dir, const char **err)
{
    ctx_t c = {0};
    apr_status_t rv = APR_SUCCESS;
    apr_size_t off = 0;
    char *line;
    word_t *w;
    int lineno = 0;

    c.p = p;
    c.name = name ? name : "(directory)";
    if (apr_pool_create(&c.tmp, p) != APR_SUCCESS) {
        *err = "out of memory";
        return APR_ENOMEM;
    }
    c.dir = apr_pcalloc(p, sizeof(*c.dir));
    c.dir->name = apr_pstrdup(p, c.name);
    c.dir->org_by_number = apr_hash_make(p);
    c.dir->org_by_prefix = apr_hash_make(p);
    c.dir->group_by_name = apr_hash_make(p);
    c.dir->role_names = apr_hash_make(p);
    c.orgs = apr_array_make(p, 64, sizeof(eid_dir_org_t *));
    c.groups = apr_array_make(p, 16, sizeof(eid_dir_group_t *));
    c.rules = apr_array_make(p, 16, sizeof(eid_dir_rule_t *));
    c.rule_keys = apr_hash_make(c.tmp);
    line = apr_palloc(c.tmp, EID_DIRECTORY_MAX_LINE + 1);
    w = apr_palloc(c.tmp, sizeof(word_t) * (EID_DIRECTORY_MAX_LINE / 2 + 1));
    while (off < len && rv == APR_SUCCESS) {
        const char *nl = memchr(buf + off, '\n', len - off);
        apr_size_t n = nl ? (apr_size_t)(nl - (buf + off)) : len - off;
        apr_size_t next = off + n + (nl ? 1 : 0);

        lineno++;
        if (n > 0 && buf[off + n - 1] == '\r')
            n--; /* CRLF files */
        if (n > EID_DIRECTORY_MAX_LINE) {
            rv = fail(&c, lineno, "line longer than %d bytes", EID_DIRECTORY_MAX_LINE);
            break;
        }
        memcpy(line, buf + off, n);
        rv = parse_line(&c, lineno, line, n, w);
        off = next;
    }
    if (rv == APR_SUCCESS)
        rv = finish(&c);
    apr_pool_destroy(c.tmp);
    if (rv != APR_SUCCESS) {
        *err = c.err;
        return rv;
    }
    *dir = c.dir;
    return APR_SUCCESS;
}

apr_status_t eid_directory_load(apr_pool_t *p, const char *path, apr_size_t max,
                                eid_directory_t **dir, const char **err)
{
    char *buf;
    apr_size_t len;
    apr_pool_t *tmp;
    apr_status_t rv;

    if (apr_pool_create(&tmp, p) != APR_SUCCESS) {
        *err = "out of memory";
        return APR_ENOMEM;
    }
    rv = eid_file_read(tmp, path, max ? max : EID_DIRECTORY_MAX_BYTES, 0, &buf, &len, err);
    if (rv == APR_SUCCESS)
        rv = eid_directory_parse(p, path, buf, len, dir, err);
    else
        *err = apr_pstrdup(p, *err); /* the text lives in tmp */
    apr_pool_destroy(tmp); /* the file's bytes are not kept */
    return rv;
}
