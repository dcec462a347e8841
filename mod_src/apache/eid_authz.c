/*
 * eid_authz.c - the Require providers: eid-method, eid-loa, eid-org,
 * eid-hsa-id, eid-scope, and over the organisation directory eid-group,
 * eid-role, eid-org-kind, eid-commission.
 *
 * Each parses its arguments once, when the configuration is read (errors name
 * the Require line), into a small struct; the per-request check only compares.
 * They compose with <RequireAll>/<RequireAny>/<RequireNone> like any provider.
 */
#include "mod_auth_eid.h"
#include "eid_dir_glue.h"
#include "eid_login_glue.h"
#include "eid_pages.h"
#include "eid_expr.h"

#include "apr_strings.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_auth.h"

#include "eid/eid_hsa.h"
#include "eid/eid_pnr.h"
#include "eid/eid_util.h"

typedef struct req_args req_args_t;

/*
 * One Require provider: what it adds to the shared parse (parse_line) and
 * per-request check (check_line).  Static and read-only.
 */
typedef struct {
    const char *name;      /* "eid-hsa-id" */
    int one_word;          /* exactly one word (else: at least one) */
    const char *count_err; /* when the line has not that many words */
    /* One word of the line: NULL, or why it is refused (in p); may record
     * what it read in `a`. */
    const char *(*word)(apr_pool_t *p, req_args_t *a, const char *w);
    /* The request's identity against the line: NULL when it grants, else
     * why not (in r->pool). */
    const char *(*match)(request_rec *r, eid_req_t *st, const req_args_t *a);
    authz_provider provider;
} req_kind_t;

/* A parsed Require line; in the configuration pool, read-only afterwards. */
struct req_args {
    const req_kind_t *kind;
    const char *text;          /* the Require line, for logs and audit */
    apr_array_header_t *words; /* const char * */
    unsigned mask;             /* eid-method: bit per eid_method_e */
    int loa;                   /* eid-loa */
    const char *purpose;       /* eid-commission */
    apr_array_header_t *rights; /* eid-commission: const char *, all required */
    const eid_policy_t *policy; /* eid-policy */
};

static req_args_t *split_args(cmd_parms *cmd, const char *line, const char *name)
{
    req_args_t *a = apr_pcalloc(cmd->pool, sizeof(*a));
    const char *w;
    a->text = apr_pstrcat(cmd->pool, name, " ", line, NULL);
    a->words = apr_array_make(cmd->pool, 4, sizeof(const char *));
    while (*(w = ap_getword_conf(cmd->pool, &line)))
        APR_ARRAY_PUSH(a->words, const char *) = w;
    return a;
}

#define WORD(a, i) APR_ARRAY_IDX((a)->words, (i), const char *)

/* A Require eid-* line where no AuthType eid applies: a configuration error
 * that only .htaccess can still make (the check_config hook below refuses the
 * rest at start-up).  Answered with 500, a tagged log line and, for a request
 * from the client, an audit record. */
static authz_status misconfigured(request_rec *r, const req_args_t *a)
{
    eid_req_t *st = eid_req_get(r, 1);
    if (!st->tried) {
        st->tried = 1;
        st->outcome = eid_try_refused(st, HTTP_INTERNAL_SERVER_ERROR);
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, "EID01102",
                   apr_pstrcat(r->pool, "'", a->text, "' where no AuthType eid applies",
                               NULL));
    }
    return AUTHZ_GENERAL_ERROR;
}

/* The identity behind r->user, or why there is none.  Only this request's own
 * state counts: httpd runs the Require lines of a subrequest or redirect only
 * when its configuration differs from the main request's, and then our
 * access checker has authenticated it on its own.  (Reading the main request's
 * state here used to write the subrequest's memory into it, in deny().) */
static authz_status identity_of(request_rec *r, const req_args_t *a, eid_req_t **st)
{
    if (!eid_is_eid_location(r))
        return misconfigured(r, a);
    if (!r->user)
        return AUTHZ_DENIED_NO_USER;
    *st = eid_req_get(r, 0);
    return (*st && (*st)->id) ? AUTHZ_GRANTED : AUTHZ_DENIED;
}

/* Writes only r's own state, in r's pool (see identity_of). */
static authz_status deny(request_rec *r, eid_req_t *st, const req_args_t *a,
                         const char *why)
{
    st->reason = apr_pstrcat(r->pool, a->text, ": ", why, NULL);
    st->tag = "EID01101";
    /* for the refusal page: the level a user needs to log in with */
    if (!strcmp(a->kind->name, "eid-loa") && a->loa > st->loa_needed)
        st->loa_needed = a->loa;
    /* A login session below the level: a browser logs in again at it
     * (step-up) instead of seeing a refusal. */
    if (!strcmp(a->kind->name, "eid-loa") && st->id && st->id->method == EID_METHOD_OIDC)
        eid_login_stepup(r, a->loa);
    eid_page_arrange_refusal(r, HTTP_FORBIDDEN);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "EID01101: user %s denied by '%s': %s",
                  eid_safe_user(r, st->id), a->text, why);
    return AUTHZ_DENIED;
}

/* Parse a Require line of kind `k`: its words, counted and each checked. */
static const char *parse_line(cmd_parms *cmd, const char *line, const void **parsed,
                              const req_kind_t *k)
{
    req_args_t *a = split_args(cmd, line, k->name);
    const char *err;
    int i;
    if (k->one_word ? a->words->nelts != 1 : a->words->nelts == 0)
        return k->count_err;
    for (i = 0; i < a->words->nelts; i++)
        if ((err = k->word(cmd->pool, a, WORD(a, i))) != NULL)
            return err;
    a->kind = k;
    *parsed = a;
    return NULL;
}

/* The check of every provider: the identity, then the kind's own match. */
static authz_status check_line(request_rec *r, const char *line, const void *parsed)
{
    const req_args_t *a = parsed;
    eid_req_t *st = NULL;
    authz_status s = identity_of(r, a, &st);
    const char *why;
    /* No user yet: a login started for this request asks for the level the
     * eid-loa lines here need (one login instead of a login and a step-up). */
    if (s == AUTHZ_DENIED_NO_USER && !strcmp(a->kind->name, "eid-loa")) {
        eid_req_t *rs = eid_req_get(r, 1);
        if (a->loa > rs->stepup_loa)
            rs->stepup_loa = a->loa;
    }
    if (s != AUTHZ_GRANTED)
        return s;
    why = a->kind->match(r, st, a);
    /* The audit record names the lines that decided (bounded: a location's
     * Require lines are few; a trail longer than that is cut, not grown). */
    if (!st->authz_trail)
        st->authz_trail = apr_array_make(r->pool, 2, sizeof(const char *));
    if (st->authz_trail->nelts < EID_MAX_AUTHZ_TRAIL)
        APR_ARRAY_PUSH(st->authz_trail, const char *) =
            apr_pstrcat(r->pool, a->text, why ? ": denied" : ": granted", NULL);
    return why ? deny(r, st, a, why) : AUTHZ_GRANTED;
}

/* ---- eid-method ---------------------------------------------------------- */

static const char *method_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    eid_method_e m = eid_method_parse(w);
    if (m == EID_METHOD_NONE)
        return apr_psprintf(p, "eid-method: unknown method '%s'", w);
    a->mask |= 1u << m;
    return NULL;
}

static const char *method_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    if (a->mask & (1u << st->id->method))
        return NULL;
    return apr_psprintf(r->pool, "authenticated by %s", eid_method_name(st->id->method));
}

/* ---- eid-loa ------------------------------------------------------------- */

static const char *loa_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    if ((a->loa = eid_loa_parse(w, 1)) < 0)
        return apr_psprintf(p, "eid-loa: '%s' is not a level from 1 to 4", w);
    return NULL;
}

static const char *loa_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    if (st->id->loa >= a->loa)
        return NULL;
    return apr_psprintf(r->pool, "level of assurance %d", st->id->loa);
}

/* ---- eid-org ------------------------------------------------------------- */

static const char *org_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    size_t n = strlen(w);
    if (!eid_orgnr_ok(w, n) && !eid_hsa_prefix_ok(w, n))
        return apr_psprintf(p, "eid-org: '%s' is neither a valid organisation "
                            "number (10 digits, Luhn) nor an HSA-ID prefix "
                            "(SE + 10 digits + '-' ...)", w);
    return NULL;
}

static int has_prefix(const char *s, const char *prefix)
{
    return s && !strncasecmp(s, prefix, strlen(prefix));
}

static const char *org_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    int i;
    for (i = 0; i < a->words->nelts; i++) {
        const char *w = WORD(a, i);
        if (w[0] == 'S' || w[0] == 's') {
            if (has_prefix(st->id->hsa_id, w) || has_prefix(st->id->org_hsa_id, w))
                return NULL;
        }
        else if (st->id->org_number && !strcmp(st->id->org_number, w)) {
            return NULL;
        }
    }
    return "organisation not listed";
}

/* ---- eid-hsa-id ---------------------------------------------------------- */

static const char *hsa_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    if (!eid_hsa_ok(w, strlen(w), 0, NULL))
        return apr_psprintf(p, "eid-hsa-id: '%s' is not an HSA-ID", w);
    return NULL;
}

static const char *hsa_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    int i;
    for (i = 0; st->id->hsa_id && i < a->words->nelts; i++)
        if (!strcasecmp(st->id->hsa_id, WORD(a, i)))
            return NULL;
    return "HSA-ID not listed";
}

/* ---- eid-scope ------------------------------------------------------------ */

static const char *scope_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    const char *s;
    for (s = w; *s; s++) /* RFC 6749 scope-token characters */
        if (*s < 0x21 || *s == '"' || *s == '\\' || *s > 0x7e)
            return apr_psprintf(p, "eid-scope: '%s' is not a valid scope", w);
    return NULL;
}

/* Every listed scope must be granted (use RequireAny for alternatives). */
static const char *scope_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    int i, j;
    for (i = 0; i < a->words->nelts; i++) {
        const apr_array_header_t *have = st->id->scopes;
        int found = 0;
        for (j = 0; have && j < have->nelts && !found; j++)
            found = !strcmp(APR_ARRAY_IDX(have, j, const char *), WORD(a, i));
        if (!found) {
            st->scope_needed = apr_array_pstrcat(r->pool, a->words, ' ');
            return apr_pstrcat(r->pool, "scope ", WORD(a, i), " not granted", NULL);
        }
    }
    return NULL;
}

/* ---- eid-group, eid-role: names the directory defines -------------------- */

static const char *dir_name_word(apr_pool_t *p, const char *w, int role)
{
    const char *what = role ? "eid-role" : "eid-group";
    int has = eid_dir_any_has(w, role);
    /* Checked at start-up against every directory: a misspelt group would
     * otherwise deny everyone, silently. */
    if (has < 0)
        return apr_psprintf(p, "%s: no EidDirectory is defined before this line", what);
    if (!has)
        return apr_psprintf(p, "%s: no directory defines %s '%s'", what,
                            role ? "a rule giving the role" : "the group", w);
    return NULL;
}

static const char *group_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    return dir_name_word(p, w, 0);
}

static const char *role_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    return dir_name_word(p, w, 1);
}

static int in_list(const apr_array_header_t *have, const char *w)
{
    int j;
    for (j = 0; have && j < have->nelts; j++)
        if (!strcmp(APR_ARRAY_IDX(have, j, const char *), w))
            return 1;
    return 0;
}

/* Any listed name grants (RequireAll for "every one of"). */
static const char *group_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    int i;
    for (i = 0; i < a->words->nelts; i++)
        if (in_list(st->id->groups, WORD(a, i)))
            return NULL;
    return st->id->groups ? "not in a listed group" : "in no group of the directory";
}

static const char *role_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    int i;
    for (i = 0; i < a->words->nelts; i++)
        if (in_list(st->id->dir_roles, WORD(a, i)))
            return NULL;
    return "no listed role";
}

/* ---- eid-org-kind ---------------------------------------------------------- */

static const char *kind_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    if (eid_org_kind_parse(w) == EID_ORG_KIND_NONE)
        return apr_psprintf(p, "eid-org-kind: unknown kind '%s' (municipality, region, "
                            "private-care, state-agency)", w);
    if (eid_g->directory_order->nelts == 0)
        return "eid-org-kind: no EidDirectory is defined before this line";
    return NULL;
}

static const char *kind_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    int i;
    for (i = 0; st->id->org_kind && i < a->words->nelts; i++)
        if (!strcmp(st->id->org_kind, WORD(a, i)))
            return NULL;
    return st->id->org_kind ? apr_pstrcat(r->pool, "organisation kind ", st->id->org_kind,
                                          NULL)
                            : "no organisation in the directory";
}

/* ---- eid-commission purpose=<text> [right=<right>]... ---------------------- */

static const char *commission_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    if (!strncasecmp(w, "purpose=", 8) && w[8]) {
        if (a->purpose)
            return "eid-commission: purpose= given twice";
        a->purpose = w + 8;
        return NULL;
    }
    if (!strncasecmp(w, "right=", 6) && w[6]) {
        if (!a->rights)
            a->rights = apr_array_make(p, 2, sizeof(const char *));
        APR_ARRAY_PUSH(a->rights, const char *) = w + 6;
        return NULL;
    }
    return apr_psprintf(p, "eid-commission: '%s' is not purpose=<text> or right=<right> "
                        "(quote the whole word: \"purpose=Vård och behandling\")", w);
}

/* The selected commission's purpose is exactly `purpose`, and it holds every
 * right= listed. */
static const char *commission_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    int i;
    if (!st->id->commission_purpose)
        return "no commission";
    if (strcmp(st->id->commission_purpose, a->purpose))
        return "commission purpose differs";
    for (i = 0; a->rights && i < a->rights->nelts; i++)
        if (!in_list(st->id->commission_rights, APR_ARRAY_IDX(a->rights, i, const char *)))
            return apr_pstrcat(r->pool, "commission lacks right ",
                               APR_ARRAY_IDX(a->rights, i, const char *), NULL);
    return NULL;
}

/* ---- eid-policy <name>: a named expression (eid_expr.c) ------------------- */

static const char *policy_word(apr_pool_t *p, req_args_t *a, const char *w)
{
    /* Resolved now: a misspelt name would otherwise deny everyone. */
    if (!(a->policy = eid_policy_get(w)))
        return apr_psprintf(p, "eid-policy: no EidPolicy '%s' is defined before this line", w);
    return NULL;
}

/* A verdict kept for this identity, or -1. */
static int policy_memo_get(const eid_id_memo_t *m, const eid_policy_t *pol)
{
    int i;
    for (i = 0; m && pol->identity_only && i < m->n; i++)
        if (!strcmp(m->name[i], pol->name))
            return m->granted[i];
    return -1;
}

static const char *policy_match(request_rec *r, eid_req_t *st, const req_args_t *a)
{
    const eid_policy_t *pol = a->policy;
    /* Only a memo that is still of this request's identity (see
     * eid_id_memo_t.id): else evaluate, and keep nothing. */
    eid_id_memo_t *m = st->memo && st->memo->id == st->id ? st->memo : NULL;
    const char *err = NULL;
    int rc = policy_memo_get(m, pol);
    if (rc < 0) {
        rc = ap_expr_exec(r, pol->expr, &err);
        /* An identity-only verdict holds for every request of the identity
         * that holds the memo (a certificate's, on its connection). */
        if (rc >= 0 && m && pol->identity_only && m->n < EID_POLICY_MEMO_SLOTS) {
            m->name[m->n] = pol->name;
            m->granted[m->n++] = (unsigned char)(rc > 0);
        }
    }
    if (rc > 0)
        return NULL;
    if (rc < 0) {
        /* Fails closed: an expression that cannot be evaluated denies. */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "EID01113: policy %s: %s", a->policy->name,
                      err ? err : "evaluation failed");
        return "the policy could not be evaluated";
    }
    return "the policy's expression is false";
}

/* ---- the providers --------------------------------------------------------- */

/* httpd's parse callback takes no context: one line of glue per kind. */
static const char *method_parse(cmd_parms *cmd, const char *line, const void **parsed);
static const char *loa_parse(cmd_parms *cmd, const char *line, const void **parsed);
static const char *org_parse(cmd_parms *cmd, const char *line, const void **parsed);
static const char *hsa_parse(cmd_parms *cmd, const char *line, const void **parsed);
static const char *scope_parse(cmd_parms *cmd, const char *line, const void **parsed);
static const char *group_parse(cmd_parms *cmd, const char *line, const void **parsed);
static const char *role_parse(cmd_parms *cmd, const char *line, const void **parsed);
static const char *kind_parse(cmd_parms *cmd, const char *line, const void **parsed);
static const char *commission_parse(cmd_parms *cmd, const char *line, const void **parsed);
static const char *policy_parse(cmd_parms *cmd, const char *line, const void **parsed);

static const req_kind_t k_method = {"eid-method", 0,
                                    "eid-method: name at least one of cert, bearer, oidc",
                                    method_word, method_match, {check_line, method_parse}};
static const req_kind_t k_loa = {"eid-loa", 1, "eid-loa: takes exactly one level (1-4)",
                                 loa_word, loa_match, {check_line, loa_parse}};
static const req_kind_t k_org = {"eid-org", 0,
                                 "eid-org: name at least one organisation number or HSA-ID "
                                 "prefix", org_word, org_match, {check_line, org_parse}};
static const req_kind_t k_hsa = {"eid-hsa-id", 0, "eid-hsa-id: name at least one HSA-ID",
                                 hsa_word, hsa_match, {check_line, hsa_parse}};
static const req_kind_t k_scope = {"eid-scope", 0, "eid-scope: name at least one scope",
                                   scope_word, scope_match, {check_line, scope_parse}};

static const req_kind_t k_group = {"eid-group", 0, "eid-group: name at least one group",
                                   group_word, group_match, {check_line, group_parse}};
static const req_kind_t k_role = {"eid-role", 0, "eid-role: name at least one role",
                                  role_word, role_match, {check_line, role_parse}};
static const req_kind_t k_kind = {"eid-org-kind", 0,
                                  "eid-org-kind: name at least one organisation kind",
                                  kind_word, kind_match, {check_line, kind_parse}};
static const req_kind_t k_commission = {"eid-commission", 0,
                                        "eid-commission: purpose=<text> [right=<right>]...",
                                        commission_word, commission_match,
                                        {check_line, commission_parse}};

static const req_kind_t k_policy = {"eid-policy", 1, "eid-policy: takes exactly one policy "
                                    "name (use <RequireAny> for alternatives)",
                                    policy_word, policy_match, {check_line, policy_parse}};

static const char *policy_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_line(cmd, line, parsed, &k_policy);
}

static const char *group_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_line(cmd, line, parsed, &k_group);
}
static const char *role_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_line(cmd, line, parsed, &k_role);
}
static const char *kind_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_line(cmd, line, parsed, &k_kind);
}
static const char *commission_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    const char *err = parse_line(cmd, line, parsed, &k_commission);
    if (!err && !((const req_args_t *)*parsed)->purpose)
        return "eid-commission: purpose=<text> is required";
    return err;
}

static const char *method_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_line(cmd, line, parsed, &k_method);
}
static const char *loa_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_line(cmd, line, parsed, &k_loa);
}
static const char *org_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_line(cmd, line, parsed, &k_org);
}
static const char *hsa_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_line(cmd, line, parsed, &k_hsa);
}
static const char *scope_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_line(cmd, line, parsed, &k_scope);
}

/* ---- start-up check: Require eid-* needs AuthType eid ---------------------- */

/* Is there an "AuthType eid" among the siblings starting at `n`? */
static int authtype_eid_among(apr_pool_t *p, const ap_directive_t *n)
{
    for (; n; n = n->next) {
        const char *args = n->args;
        if (!strcasecmp(n->directive, "AuthType") &&
            !strcasecmp(ap_getword_conf(p, &args), EID_AUTH_TYPE))
            return 1;
    }
    return 0;
}

/* The first "Require [not] eid-..." under `n` whose section and enclosing
 * sections have no AuthType eid, or NULL. */
static const ap_directive_t *bare_require(apr_pool_t *p, const ap_directive_t *n)
{
    for (; n; n = n->next) {
        if (!strcasecmp(n->directive, "Require")) {
            const char *args = n->args, *w = ap_getword_conf(p, &args);
            if (!strcasecmp(w, "not"))
                w = ap_getword_conf(p, &args);
            if (!strncasecmp(w, "eid-", 4)) {
                const ap_directive_t *up = n;
                int found = 0;
                while (up && !found) {
                    found = authtype_eid_among(p, up->parent ? up->parent->first_child
                                                             : ap_conftree);
                    up = up->parent;
                }
                if (!found)
                    return n;
            }
        }
        if (n->first_child) {
            const ap_directive_t *bad = bare_require(p, n->first_child);
            if (bad)
                return bad;
        }
    }
    return NULL;
}

/* check_config: refuse at "apachectl -t" a Require eid-* line that no
 * AuthType eid reaches (it would answer 500 to every request).  Only the same
 * section or an enclosing one is looked at - not other sections that may
 * merge for some URL - so the rule is: put AuthType eid next to the Require
 * lines or around them. */
static int check_require_authtype(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                  server_rec *s)
{
    const ap_directive_t *bad = bare_require(ptemp, ap_conftree);
    if (!bad)
        return OK;
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                 "EID01103: Syntax error on line %d of %s: Require %s: no AuthType eid "
                 "in this section or an enclosing one", bad->line_num, bad->filename,
                 bad->args);
    return HTTP_INTERNAL_SERVER_ERROR;
}

void eid_register_authz_providers(apr_pool_t *p)
{
    /* The names as literals: make check-docs finds the providers by them. */
    ap_hook_check_config(check_require_authtype, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-method", AUTHZ_PROVIDER_VERSION,
                              &k_method.provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-loa", AUTHZ_PROVIDER_VERSION,
                              &k_loa.provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-org", AUTHZ_PROVIDER_VERSION,
                              &k_org.provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-hsa-id", AUTHZ_PROVIDER_VERSION,
                              &k_hsa.provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-scope", AUTHZ_PROVIDER_VERSION,
                              &k_scope.provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-group", AUTHZ_PROVIDER_VERSION,
                              &k_group.provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-role", AUTHZ_PROVIDER_VERSION,
                              &k_role.provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-org-kind",
                              AUTHZ_PROVIDER_VERSION, &k_kind.provider,
                              AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-policy", AUTHZ_PROVIDER_VERSION,
                              &k_policy.provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "eid-commission",
                              AUTHZ_PROVIDER_VERSION, &k_commission.provider,
                              AP_AUTH_INTERNAL_PER_CONF);
}

/* A 403 caused by eid-scope on a bearer request carries RFC 6750's
 * insufficient_scope challenge; it is added only to the error response, so
 * a RequireAny that granted by another branch never shows it. */
void eid_insert_error_filter(request_rec *r)
{
    eid_req_t *st;
    request_rec *o = r;
    while (o->prev)
        o = o->prev;
    st = eid_req_get(o, 0);
    if (r->status != HTTP_FORBIDDEN || !st || !st->scope_needed || !st->id ||
        st->id->method != EID_METHOD_BEARER)
        return;
    apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                   apr_psprintf(r->pool, "Bearer error=\"insufficient_scope\", "
                                "scope=\"%s\"", st->scope_needed));
}
