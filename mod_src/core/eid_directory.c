/*
 * eid_directory.c - the directory file loader: lines, tokenising
 * (httpd-style words), the three statements.  What needs the whole file
 * (group members, cycles, flattening, names in rules) is in
 * eid_directory_resolve.c; the lookups are in eid_directory_match.c.
 * The format is described in docs/directory.md.
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

/* ---- errors ------------------------------------------------------------------ */

apr_status_t eid_dir_fail(eid_dir_ctx_t *c, int line, const char *fmt, ...)
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
static const char *quote(eid_dir_ctx_t *c, const char *w)
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

static apr_status_t st_org(eid_dir_ctx_t *c, int line, word_t *w, int n)
{
    eid_dir_org_t *o, *old;
    const char *kind = NULL;
    int i;

    if (n < 2 || w[1].eq >= 0)
        return eid_dir_fail(c, line, "Organisation needs an organisation number first");
    o = apr_pcalloc(c->p, sizeof(*o));
    o->line = line;
    if (!(o->number = orgnr(c->p, w[1].text)))
        return eid_dir_fail(c, line, "malformed organisation number \"%s\"", quote(c, w[1].text));
    if ((old = apr_hash_get(c->dir->org_by_number, o->number, APR_HASH_KEY_STRING)))
        return eid_dir_fail(c, line, "duplicate organisation %s (first at line %d)", o->number,
                            old->line);
    for (i = 2; i < n; i++) {
        const char *key, *val;
        if (w[i].eq < 0)
            return eid_dir_fail(c, line, "unexpected word \"%s\" (options are key=value)",
                                quote(c, w[i].text));
        key = apr_pstrndup(c->tmp, w[i].text, (apr_size_t)w[i].eq);
        val = w[i].text + w[i].eq + 1;
        if (*val == '\0')
            return eid_dir_fail(c, line, "empty value for %s=", quote(c, key));
        if (!strcasecmp(key, "kind")) {
            if (kind)
                return eid_dir_fail(c, line, "kind= given twice");
            kind = val;
            if ((o->kind = eid_org_kind_parse(val)) == EID_ORG_KIND_NONE)
                return eid_dir_fail(c, line,
                                    "unknown kind \"%s\" (municipality, region, private-care, "
                                    "state-agency)",
                                    quote(c, val));
        } else if (!strcasecmp(key, "name")) {
            if (o->name)
                return eid_dir_fail(c, line, "name= given twice");
            o->name = apr_pstrdup(c->p, val);
        } else if (!strcasecmp(key, "hsa")) {
            apr_array_header_t *a = split(c->tmp, val);
            const char *ukey;
            int j;
            if (!a)
                return eid_dir_fail(c, line, "empty item in hsa=");
            for (j = 0; j < a->nelts; j++) {
                const char *pre = APR_ARRAY_IDX(a, j, const char *);
                size_t len = strlen(pre);
                if (!eid_hsa_prefix_ok(pre, len))
                    return eid_dir_fail(
                        c, line,
                        "malformed HSA-ID prefix \"%s\" (SE, the owner's 10 digits, "
                        "\"-\", then letters or digits)",
                        quote(c, pre));
                /* Kept in upper case, looked up so (eid_directory_match.c):
                 * HSA-IDs are compared without regard to case, as
                 * Require eid-hsa-id does - else a lower-case local part
                 * would miss a longer prefix and land in a shorter one. */
                ukey = eid_dir_upper(c->p, pre);
                if ((old = apr_hash_get(c->dir->org_by_prefix, ukey, (apr_ssize_t)len)))
                    return eid_dir_fail(c, line,
                                        "HSA-ID prefix %s is already organisation %s's (line %d)",
                                        pre, old->number, old->line);
                apr_hash_set(c->dir->org_by_prefix, ukey, (apr_ssize_t)len, o);
                if ((int)len > c->dir->max_prefix)
                    c->dir->max_prefix = (int)len;
            }
        } else {
            return eid_dir_fail(c, line,
                                "unknown option \"%s\" for Organisation (kind=, name=, hsa=)",
                                quote(c, key));
        }
    }
    if (!kind)
        return eid_dir_fail(c, line, "Organisation %s needs kind=", o->number);
    apr_hash_set(c->dir->org_by_number, o->number, APR_HASH_KEY_STRING, o);
    APR_ARRAY_PUSH(c->orgs, eid_dir_org_t *) = o;
    return APR_SUCCESS;
}

static apr_status_t st_group(eid_dir_ctx_t *c, int line, word_t *w, int n)
{
    eid_dir_group_t *g, *old;
    int i;

    if (n < 2 || w[1].eq >= 0 || !name_ok(w[1].text))
        return eid_dir_fail(
            c, line,
            "Group needs a name first (a letter, then letters, digits, \".\", \"_\" "
            "or \"-\"; at most %d)",
            EID_DIRECTORY_MAX_NAME);
    if ((old = apr_hash_get(c->dir->group_by_name, w[1].text, APR_HASH_KEY_STRING)))
        return eid_dir_fail(c, line, "duplicate group \"%s\" (first at line %d)", w[1].text,
                            old->line);
    if (n < 3)
        return eid_dir_fail(c, line, "group \"%s\" has no members", w[1].text);
    g = apr_pcalloc(c->p, sizeof(*g));
    g->name = apr_pstrdup(c->p, w[1].text);
    g->line = line;
    g->words = apr_array_make(c->tmp, n - 2, sizeof(const char *));
    for (i = 2; i < n; i++) {
        const char *m = w[i].text;
        if (w[i].eq >= 0)
            return eid_dir_fail(c, line, "unknown option \"%s\" for Group (it takes members only)",
                                quote(c, apr_pstrndup(c->tmp, m, (apr_size_t)w[i].eq)));
        if (m[0] >= '0' && m[0] <= '9') {
            if (!(m = orgnr(c->tmp, m)))
                return eid_dir_fail(c, line, "malformed organisation number \"%s\"",
                                    quote(c, w[i].text));
        } else if (!name_ok(m)) {
            return eid_dir_fail(
                c, line, "bad member \"%s\" (an organisation number or a group name)", quote(c, m));
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

/* One value of a condition, checked and normalised; NULL after eid_dir_fail(). */
static const char *cond_value(eid_dir_ctx_t *c, int line, eid_dir_cond_t *cd, eid_dir_cond_e kind,
                              const char *v)
{
    eid_org_kind_e k;

    switch (kind) {
    case EID_DC_ORG_KIND:
        if ((k = eid_org_kind_parse(v)) == EID_ORG_KIND_NONE) {
            eid_dir_fail(c, line,
                         "unknown kind \"%s\" (municipality, region, private-care, state-agency)",
                         quote(c, v));
            return NULL;
        }
        cd->kinds |= 1u << k;
        return v;
    case EID_DC_ORG:
        if (!(v = orgnr(c->p, v)))
            eid_dir_fail(c, line, "malformed organisation number in org=");
        return v; /* known? checked once the whole file is read */
    case EID_DC_GROUP:
        if (!name_ok(v))
            eid_dir_fail(c, line, "bad group name \"%s\" in group=", quote(c, v));
        return name_ok(v) ? v : NULL;
    case EID_DC_HSA_ID:
        if (!eid_hsa_ok(v, strlen(v), 0, NULL)) {
            eid_dir_fail(c, line, "malformed HSA-ID \"%s\" in hsa-id=", quote(c, v));
            return NULL;
        }
        return eid_dir_upper(c->p, v); /* compared without regard to case */
    default:
        return v;
    }
}

static apr_status_t st_role(eid_dir_ctx_t *c, int line, word_t *w, int n)
{
    eid_dir_rule_t *r, *old;
    apr_array_header_t *vals[EID_DC__COUNT] = {0};
    const char *canon;
    int i, k, any = 0;

    if (n < 2 || w[1].eq >= 0 || !name_ok(w[1].text))
        return eid_dir_fail(
            c, line,
            "Role needs a role name first (a letter, then letters, digits, \".\", \"_\" "
            "or \"-\"; at most %d)",
            EID_DIRECTORY_MAX_NAME);
    r = apr_pcalloc(c->p, sizeof(*r));
    r->role = apr_pstrdup(c->p, w[1].text);
    r->line = line;
    for (i = 2; i < n; i++) {
        const char *key, *val;
        apr_array_header_t *items;
        size_t j;
        int m;

        if (w[i].eq < 0)
            return eid_dir_fail(c, line, "unexpected word \"%s\" (conditions are key=value)",
                                quote(c, w[i].text));
        key = apr_pstrndup(c->tmp, w[i].text, (apr_size_t)w[i].eq);
        val = w[i].text + w[i].eq + 1;
        if (!strcasecmp(key, "title"))
            /* Why refused rather than accepted: no method puts a title code into
             * the identity yet, so such a rule could never match - a policy
             * that silently admits nobody is a trap. */
            return eid_dir_fail(c, line,
                                "title= is not supported yet: no method provides a title code");
        for (j = 0; j < sizeof(cond_keys) / sizeof(cond_keys[0]); j++)
            if (!strcasecmp(key, cond_keys[j].key))
                break;
        if (j == sizeof(cond_keys) / sizeof(cond_keys[0]))
            return eid_dir_fail(
                c, line,
                "unknown condition \"%s\" for Role (system-role=, purpose=, right=, "
                "org-kind=, group=, org=, hsa-id=)",
                quote(c, key));
        if (*val == '\0')
            return eid_dir_fail(c, line, "empty value for %s=", cond_keys[j].key);
        k = cond_keys[j].kind;
        if (cond_keys[j].list) {
            if (!(items = split(c->tmp, val)))
                return eid_dir_fail(c, line, "empty item in %s=", cond_keys[j].key);
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
        return eid_dir_fail(c, line, "rule for role \"%s\" has no condition", r->role);
    /* The arrays live in tmp: move the value lists into the directory's pool. */
    for (k = 0; k < EID_DC__COUNT; k++)
        if (r->cond[k].vals)
            r->cond[k].vals = apr_pmemdup(c->p, r->cond[k].vals,
                                          sizeof(const char *) * (size_t)r->cond[k].n);
    if ((old = apr_hash_get(c->rule_keys, canon, APR_HASH_KEY_STRING)))
        return eid_dir_fail(c, line, "duplicate rule for role \"%s\" (first at line %d)", r->role,
                            old->line);
    apr_hash_set(c->rule_keys, canon, APR_HASH_KEY_STRING, r);
    if (!apr_hash_get(c->dir->role_names, r->role, APR_HASH_KEY_STRING))
        apr_hash_set(c->dir->role_names, r->role, APR_HASH_KEY_STRING, r);
    APR_ARRAY_PUSH(c->rules, eid_dir_rule_t *) = r;
    return APR_SUCCESS;
}

/* ---- lines ------------------------------------------------------------------- */

static apr_status_t parse_line(eid_dir_ctx_t *c, int line, char *s, size_t len, word_t *w)
{
    size_t i;
    int n;

    for (i = 0; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '\t')
            s[i] = ' ';
        else if (b < 0x20 || b == 0x7f)
            return eid_dir_fail(c, line, "control character (byte 0x%02x)", b);
    }
    switch (eid_utf8_check((const unsigned char *)s, len, EID_UTF8_NO_CONTROLS)) {
    case EID_UTF8_OK:
        break;
    case EID_UTF8_CONTROL:
        return eid_dir_fail(c, line, "control character");
    default:
        return eid_dir_fail(c, line, "not UTF-8 text");
    }
    s[len] = '\0';
    n = tokenize(s, w, EID_DIRECTORY_MAX_LINE / 2 + 1);
    if (n < 0)
        return eid_dir_fail(c, line, "unterminated quote");
    if (n == 0)
        return APR_SUCCESS;
    if (w[0].eq >= 0)
        return eid_dir_fail(c, line, "a line starts with a keyword (Organisation, Group or Role)");
    if (!strcasecmp(w[0].text, "Organisation"))
        return st_org(c, line, w, n);
    if (!strcasecmp(w[0].text, "Group"))
        return st_group(c, line, w, n);
    if (!strcasecmp(w[0].text, "Role"))
        return st_role(c, line, w, n);
    return eid_dir_fail(c, line, "unknown keyword \"%s\" (Organisation, Group or Role)",
                        quote(c, w[0].text));
}

apr_status_t eid_directory_parse(apr_pool_t *p, const char *name, const char *buf,
                                 apr_size_t len, eid_directory_t **dir, const char **err)
{
    eid_dir_ctx_t c = {0};
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
            rv = eid_dir_fail(&c, lineno, "line longer than %d bytes", EID_DIRECTORY_MAX_LINE);
            break;
        }
        memcpy(line, buf + off, n);
        rv = parse_line(&c, lineno, line, n, w);
        off = next;
    }
    if (rv == APR_SUCCESS)
        rv = eid_dir_resolve(&c);
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
