/*
 * eid_expr.c - the identity in httpd's own expression language, and named
 * policies.
 *
 * Sysadmins already write `Require expr` and `<If>`; this unit makes the
 * identity visible there instead of adding a second policy language:
 *   %{EID_<ATTR>}        every attribute of the export table (eid_identity.h),
 *                        e.g. %{EID_ORG_NUMBER}, %{EID_LOA}, %{EID_ORG_KIND};
 *                        multi-valued ones joined with "," as in the export
 *   eid_list('<attr>')   a list function for `-in`: groups, dir-roles, roles,
 *                        scopes, commission-rights, policy-oids
 * The names are resolved when httpd parses the expression (at start-up, or
 * when .htaccess is read): an unknown EID_ variable or list name is a parse
 * error naming the file and line.  Evaluation reads only the request's own
 * identity (eid_req_t of r; see identity_of() in eid_authz.c for why not
 * the main request's), in r->pool; nothing here writes shared state.
 *
 * Named policies: `EidPolicy <name> <expression>` (main server) parses the
 * expression once with ap_expr; `Require eid-policy <name>...` (eid_authz.c)
 * evaluates it and names it in the audit record.
 */
#include "mod_auth_eid.h"
#include "eid_expr.h"

#include "ap_expr.h"
#include "apr_lib.h"
#include "apr_strings.h"

#define VAR_PREFIX "EID_"

static const eid_identity_t *identity(ap_expr_eval_ctx_t *ctx)
{
    const eid_req_t *st = ctx->r ? eid_req_get(ctx->r, 0) : NULL;
    return st ? st->id : NULL;
}

/* ---- variables ------------------------------------------------------------ */

static const char *var_value(ap_expr_eval_ctx_t *ctx, const void *data)
{
    const eid_attr_desc_t *a = data;
    const eid_identity_t *id = identity(ctx);
    if (!id)
        return "";
    /* The personnummer's pseudonym needs the key; every other attribute is
     * the identity's own value (the export mask does not apply: a policy is
     * configuration, not something passed to the backend). */
    return eid_attr_value(ctx->p, id, a->id, eid_g->pseudonym_key, eid_g->pseudonym_key_len);
}

static const eid_attr_desc_t *attr_by_env(const char *suffix)
{
    int i;
    for (i = 0; i < EID_ATTR__COUNT; i++) {
        const eid_attr_desc_t *a = eid_attr_desc((eid_attr_e)i);
        if (!strcmp(a->env, suffix))
            return a;
    }
    return NULL;
}

/* ---- list function -------------------------------------------------------- */

typedef enum {
    L_GROUPS, L_DIR_ROLES, L_ROLES, L_SCOPES, L_RIGHTS, L_POLICY_OIDS, L__COUNT
} list_e;

static const char *const list_names[L__COUNT] = {
    "groups", "dir-roles", "roles", "scopes", "commission-rights", "policy-oids"};

static int list_parse(const char *name)
{
    int i;
    for (i = 0; name && i < L__COUNT; i++)
        if (!strcmp(name, list_names[i]))
            return i;
    return -1;
}

static const apr_array_header_t *list_of(const eid_identity_t *id, list_e which)
{
    switch (which) {
    case L_GROUPS: return id->groups;
    case L_DIR_ROLES: return id->dir_roles;
    case L_ROLES: return id->roles;
    case L_SCOPES: return id->scopes;
    case L_RIGHTS: return id->commission_rights;
    default: return id->policy_oids;
    }
}

/* `data` is the list chosen at parse time (a literal argument); NULL when the
 * argument is computed, then it is looked up now (an unknown name gives the
 * empty list: evaluation has no way to report it other than a log line). */
static apr_array_header_t *list_value(ap_expr_eval_ctx_t *ctx, const void *data,
                                      const char *arg)
{
    const eid_identity_t *id = identity(ctx);
    int which = data ? (int)(*(const list_e *)data) : list_parse(arg);
    const apr_array_header_t *l;
    if (which < 0) {
        if (ctx->r)
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, ctx->r,
                          "EID01110: eid_list(): unknown list name (use one of groups, "
                          "dir-roles, roles, scopes, commission-rights, policy-oids)");
        return NULL;
    }
    if (!id || !(l = list_of(id, (list_e)which)))
        return NULL;
    /* Not copied: the interpreter only reads a list (the `-in` operator is
     * its one consumer), and the identity outlives the evaluation. */
    return (apr_array_header_t *)l;
}

static const list_e list_ids[L__COUNT] = {L_GROUPS, L_DIR_ROLES, L_ROLES,
                                         L_SCOPES, L_RIGHTS, L_POLICY_OIDS};

static int expr_lookup(ap_expr_lookup_parms *parms)
{
    if (parms->type == AP_EXPR_FUNC_VAR && !strncmp(parms->name, VAR_PREFIX, 4)) {
        const eid_attr_desc_t *a = attr_by_env(parms->name + 4);
        if (!a) {
            *parms->err = apr_psprintf(parms->ptemp, "EID01111: unknown variable %s "
                                       "(the EID_* names are those of the export table "
                                       "in docs/directives.md)", parms->name);
            return !OK;
        }
        *parms->func = (const void *)var_value;
        *parms->data = a;
        return OK;
    }
    if (parms->type == AP_EXPR_FUNC_LIST && !strcmp(parms->name, "eid_list")) {
        int which = -1;
        if (parms->arg) {
            which = list_parse(parms->arg);
            if (which < 0) {
                *parms->err = apr_psprintf(parms->ptemp, "EID01112: eid_list('%s'): unknown "
                                           "list (groups, dir-roles, roles, scopes, "
                                           "commission-rights, policy-oids)", parms->arg);
                return !OK;
            }
        }
        *parms->func = (const void *)list_value;
        *parms->data = which < 0 ? NULL : &list_ids[which];
        return OK;
    }
    return DECLINED;
}

void eid_register_expr(apr_pool_t *p)
{
    (void)p;
    /* FIRST: the names are ours alone (EID_ prefix, eid_list), and core's
     * lookup would refuse an unknown variable before we see it. */
    ap_hook_expr_lookup(expr_lookup, NULL, NULL, APR_HOOK_FIRST);
}

/* ---- named policies ------------------------------------------------------- */

/* Set while EidPolicy parses its expression: did a name resolve to anything
 * but ours (a request variable, a function or operator of httpd's)?  Written
 * only while the configuration is read - one thread; EidPolicy is refused in
 * .htaccess - and read right after the parse. */
static int policy_reads_request;

static int policy_lookup(ap_expr_lookup_parms *parms)
{
    int rc = expr_lookup(parms);
    if (rc != DECLINED)
        return rc;
    policy_reads_request = 1;
    return ap_expr_lookup_default(parms);
}

const char *eid_set_policy(cmd_parms *cmd, void *dc, const char *name, const char *expr)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    eid_policy_t *pol;
    const char *s;
    (void)dc;
    if (err)
        return err;
    if (!*name)
        return "EidPolicy: the name is empty";
    for (s = name; *s; s++)
        if (!apr_isalnum(*s) && *s != '-' && *s != '_' && *s != '.')
            return apr_psprintf(cmd->pool, "EidPolicy: '%s' is not a valid name (letters, "
                                "digits, '-', '_', '.')", name);
    if (apr_hash_get(eid_g->policies, name, APR_HASH_KEY_STRING))
        return apr_psprintf(cmd->pool, "EidPolicy: '%s' is defined twice", name);
    pol = apr_pcalloc(cmd->pool, sizeof(*pol));
    pol->name = apr_pstrdup(cmd->pool, name);
    pol->text = apr_pstrdup(cmd->pool, expr);
    policy_reads_request = 0;
    pol->expr = ap_expr_parse_cmd(cmd, expr, 0, &err, policy_lookup);
    pol->identity_only = !policy_reads_request;
    if (err)
        return apr_psprintf(cmd->pool, "EidPolicy %s: cannot parse the expression: %s", name,
                            err);
    apr_hash_set(eid_g->policies, pol->name, APR_HASH_KEY_STRING, pol);
    return NULL;
}

const eid_policy_t *eid_policy_get(const char *name)
{
    return eid_g->policies ? apr_hash_get(eid_g->policies, name, APR_HASH_KEY_STRING) : NULL;
}
