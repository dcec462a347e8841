/*
 * eid_directory_resolve.c - the load-time half of the directory that runs
 * once the whole file is read: group members to indices (unknown ones
 * refused at the group's line), cycles among groups (named in full), the
 * flattened, sorted group list of every organisation, and the names used in
 * role rules.  Called by the loader (eid_directory.c) only.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "eid_directory_int.h"

/* Members as indices; unknown organisations and groups are refused at the
 * group's line. */
static apr_status_t resolve_members(eid_dir_ctx_t *c)
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
                    return eid_dir_fail(c, g->line, "unknown organisation %s in group \"%s\"", m,
                                        g->name);
                g->orgs[g->norgs++] = o->stamp; /* stamp holds the index here */
            } else {
                eid_dir_group_t *s = apr_hash_get(d->group_by_name, m, APR_HASH_KEY_STRING);
                if (!s)
                    return eid_dir_fail(c, g->line, "unknown group \"%s\" in group \"%s\"", m,
                                        g->name);
                g->subs[g->nsubs++] = s->stamp;
            }
        }
        g->words = NULL;
    }
    return APR_SUCCESS;
}

/* Depth-first search without recursion (a file may chain many groups);
 * a member on the current path closes a cycle, which is named in full. */
static apr_status_t find_cycles(eid_dir_ctx_t *c)
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
                    return eid_dir_fail(c, g->line, "cycle among groups: %s%s", path, sg->name);
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
static void flatten(eid_dir_ctx_t *c)
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
static apr_status_t check_rules(eid_dir_ctx_t *c)
{
    eid_directory_t *d = c->dir;
    int i, j;

    for (i = 0; i < d->nrules; i++) {
        eid_dir_rule_t *r = d->rules[i];
        for (j = 0; j < r->cond[EID_DC_GROUP].n; j++) {
            eid_dir_group_t *g = apr_hash_get(d->group_by_name, r->cond[EID_DC_GROUP].vals[j],
                                              APR_HASH_KEY_STRING);
            if (!g)
                return eid_dir_fail(c, r->line, "unknown group \"%s\" in rule for role \"%s\"",
                                    r->cond[EID_DC_GROUP].vals[j], r->role);
            r->cond[EID_DC_GROUP].vals[j] = g->name;
        }
        for (j = 0; j < r->cond[EID_DC_ORG].n; j++)
            if (!apr_hash_get(d->org_by_number, r->cond[EID_DC_ORG].vals[j], APR_HASH_KEY_STRING))
                return eid_dir_fail(c, r->line, "unknown organisation %s in rule for role \"%s\"",
                                    r->cond[EID_DC_ORG].vals[j], r->role);
    }
    return APR_SUCCESS;
}

apr_status_t eid_dir_resolve(eid_dir_ctx_t *c)
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

