/*
 * eid_authn.c - AuthType eid: who is this?
 *
 * Authentication runs in the access_checker phase (after mod_ssl's), not
 * only in check_authn.  Why: mod_authz_core turns a Require denial into 403
 * only when the user is known before its check_access_ex step; a denial
 * after check_authn becomes 401 (unless AuthzSendForbiddenOnFailure), which
 * is wrong for a certificate user and for RFC 6750's insufficient_scope.
 * Knowing the identity early also exports it on locations that admit
 * everyone.  check_authn stays as the backstop that answers "no credential".
 *
 * Rules: methods are tried in the location's order; the first credential
 * present decides - a present but invalid credential is a refusal, never a
 * fall-through to the next method.
 */
#include "mod_auth_eid.h"
#include "eid_bearer_glue.h"
#include "eid_login_glue.h"
#include "eid_pages.h"

#include "apr_strings.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"

static const eid_attr_e default_user_attrs[] = {EID_ATTR_HSA_ID, EID_ATTR_PNR_PSEUDONYM,
                                                EID_ATTR_SUBJECT};

int eid_is_eid_location(request_rec *r)
{
    eid_req_t *st = eid_req_get(r, 0);
    const char *t;
    int is;

    /* Why cached: ap_auth_type() evaluates AuthType (an ap_expr) on every
     * call, and each phase asks.  Keyed by per_dir_config, so a fast
     * redirect (new configuration) asks again; within one configuration
     * every phase gets the same answer. */
    if (st && st->loc_cfg == r->per_dir_config)
        return st->loc_is_eid;
    t = ap_auth_type(r);
    is = t && !strcasecmp(t, EID_AUTH_TYPE);
    if (st) {
        st->loc_cfg = r->per_dir_config;
        st->loc_is_eid = is;
    }
    return is;
}

eid_req_t *eid_req_get(request_rec *r, int create)
{
    eid_req_t *st = ap_get_module_config(r->request_config, &auth_eid_module);
    if (!st && create) {
        st = apr_pcalloc(r->pool, sizeof(*st));
        ap_set_module_config(r->request_config, &auth_eid_module, st);
    }
    return st;
}

void eid_refuse(request_rec *r, eid_req_t *st, eid_decision_e decision, int level,
                const char *tag, const char *reason)
{
    st->decision = decision;
    st->reason = reason;
    st->tag = tag ? tag : "EID01000";
    ap_log_rerror(APLOG_MARK, level, 0, r, "%s: %s", st->tag, reason);
}

const char *eid_safe_user(request_rec *r, const eid_identity_t *id)
{
    if (!r->user || !id || !id->pnr)
        return r->user;
    if (!strcmp(r->user, id->pnr))
        return eid_pseudonym(r->pool, eid_g->pseudonym_key, eid_g->pseudonym_key_len,
                             id->pnr);
    /* any other value holding the number (normally redacted already by
     * user_name(), but r->user may come from elsewhere) */
    return eid_pnr_redact(r->pool, r->user, id->pnr, eid_g->pseudonym_key,
                          eid_g->pseudonym_key_len);
}

/* The first user attribute the identity has becomes r->user.  Only the `pnr`
 * attribute itself puts the personnummer there (an explicit, documented
 * choice); in any other attribute (a subject DN "serialNumber=19..", a UPN)
 * the number is replaced by its pseudonym.  Why: r->user goes into the
 * access log (%u), into httpd's own error-log lines (AH01631) and into the
 * audit record; the backend finds the real value in EID_SUBJECT etc. */
static const char *user_name(request_rec *r, const eid_dir_conf_t *d,
                             const eid_identity_t *id)
{
    const eid_attr_e *attrs = d->nuser_attrs ? d->user_attrs : default_user_attrs;
    int n = d->nuser_attrs ? d->nuser_attrs
                           : (int)(sizeof(default_user_attrs) / sizeof(*default_user_attrs));
    int i;
    for (i = 0; i < n; i++) {
        const char *v = eid_attr_value(r->pool, id, attrs[i], eid_g->pseudonym_key,
                                       eid_g->pseudonym_key_len);
        if (v && *v)
            return attrs[i] == EID_ATTR_PNR
                       ? v
                       : eid_pnr_redact(r->pool, v, id->pnr, eid_g->pseudonym_key,
                                        eid_g->pseudonym_key_len);
    }
    return NULL;
}

static eid_try_e try_method(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                      eid_method_e m, eid_identity_t **id)
{
    switch (m) {
    case EID_METHOD_CERT:
        return eid_try_cert(r, d, st, id);
    case EID_METHOD_BEARER:
        return eid_try_bearer(r, d, st, id);
    case EID_METHOD_OIDC:
        return eid_try_session(r, d, st, id);
    default:
        return EID_TRY_ABSENT;
    }
}

/* Is r (an internal redirect, or a subrequest of one) the error document of
 * a request that this module refused, or that was denied before it reached
 * fixups (fixed_cfg unset: a Require line said no)?  Why: such an error
 * document in another AuthType eid location would authenticate the very
 * credential just refused (or the user just denied) and hand its identity
 * to the error page.  An error after admission (a handler's 403 or 404) is
 * not a refusal: its error document authenticates as usual. */
static int after_refusal(request_rec *r)
{
    request_rec *q;
    for (q = r->main ? r->main : r->prev; q; q = q->main ? q->main : q->prev) {
        const eid_req_t *qs = eid_req_get(q, 0);
        if (qs && qs->tried && ap_is_HTTP_ERROR(q->status) &&
            (qs->outcome == EID_TRY_REFUSED || !qs->fixed_cfg))
            return 1;
    }
    return 0;
}

/* Run the location's methods once per request; the outcome is kept in st. */
static eid_req_t *authenticate(request_rec *r)
{
    const eid_dir_conf_t *d = ap_get_module_config(r->per_dir_config, &auth_eid_module);
    eid_req_t *st = eid_req_get(r, 1);
    static const eid_method_e default_methods[] = {EID_METHOD_CERT};
    const eid_method_e *methods = d->nmethods ? d->methods : default_methods;
    int n = d->nmethods ? d->nmethods : 1, i;

    if (st->tried)
        return st;
    st->tried = 1;
    st->outcome = EID_TRY_ABSENT;
    if ((r->prev || r->main) && after_refusal(r))
        return st; /* no credential, whatever the connection carries */
    for (i = 0; i < n; i++) {
        eid_identity_t *id = NULL;
        eid_try_e rc = try_method(r, d, st, methods[i], &id);
        if (rc == EID_TRY_ABSENT)
            continue;
        if (rc == EID_TRY_OK) {
            const char *user = user_name(r, d, id);
            if (!user) {
                eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_WARNING, "EID01006",
                           "the identity has none of the EidUserAttribute attributes");
                st->outcome = eid_try_refused(st, HTTP_FORBIDDEN);
                return st;
            }
            st->id = id;
            r->user = (char *)user;
            r->ap_auth_type = (char *)EID_AUTH_TYPE;
        }
        st->outcome = rc;
        return st;
    }
    return st;
}

/* No credential at all: what to answer when a user is required. */
static int absent_status(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st)
{
    const eid_method_e *m = d->methods;
    int i, oidc = 0;
    st->decision = EID_DECISION_AUTHN;
    for (i = 0; i < d->nmethods; i++)
        oidc |= m[i] == EID_METHOD_OIDC;
    /* A browser is sent to log in (Location and a state cookie only: the
     * redirect's body is httpd's); anything else is never redirected. */
    if (oidc && eid_login_may_redirect(r))
        return eid_login_redirect(r, d, d->login_loa > st->stepup_loa ? d->login_loa
                                                                       : st->stepup_loa);
    for (i = 0; i < d->nmethods; i++)
        if (m[i] == EID_METHOD_BEARER) {
            /* RFC 6750 3.1: no error code when no credential was sent. */
            st->reason = "no credential";
            eid_bearer_challenge(r, d, NULL, NULL);
            return HTTP_UNAUTHORIZED;
        }
    if (oidc) {
        st->reason = "no session";
        return HTTP_UNAUTHORIZED;
    }
    /* A certificate cannot be asked for with a 401 challenge: 403. */
    st->reason = "no client certificate";
    return HTTP_FORBIDDEN;
}

int eid_access_checker(request_rec *r)
{
    eid_req_t *st;

    /* The module's endpoints authenticate their own input (eid_endpoints.c). */
    if (!eid_is_eid_location(r) || eid_is_endpoint(r))
        return DECLINED;
    st = authenticate(r);
    st->loc_cfg = r->per_dir_config; /* the answer above, for the later phases */
    st->loc_is_eid = 1;
    /* Success or nothing presented: let the Require lines decide (they ask
     * for a user through check_authn when they need one). */
    if (st->outcome != EID_TRY_REFUSED)
        return DECLINED;
    eid_page_arrange_refusal(r, st->status);
    return st->status;
}

int eid_check_authn(request_rec *r)
{
    const eid_dir_conf_t *d;
    eid_req_t *st;

    int status;

    if (!eid_is_eid_location(r) || eid_is_endpoint(r))
        return DECLINED;
    d = ap_get_module_config(r->per_dir_config, &auth_eid_module);
    st = authenticate(r);
    switch (st->outcome) {
    case EID_TRY_OK:
        return OK;
    case EID_TRY_ABSENT:
        status = absent_status(r, d, st);
        break;
    default:
        status = st->status;
    }
    eid_page_arrange_refusal(r, status);
    return status;
}
