/*
 * eid_endpoints.c - the module's own URIs under EidEndpointPath (default
 * /.eid): routing, the Require bypass, and the page handlers.
 *
 *   <path>/page/refused        error document of a refusal (internal redirect only)
 *   <path>/page/expired        session expired page
 *   <path>/logged-out          after logout
 *   <path>/choose, /login, /callback, /logout, /backchannel-logout
 *                              login glue (eid_ep_* in mod_auth_eid.h)
 *
 * Routing: a handler hook (APR_HOOK_REALLY_FIRST) compares r->uri with the
 * exact URIs above; no r->handler is involved, so no SetHandler, ProxyPass or
 * .htaccess can take these URIs from us, and a URI that is not exactly one
 * of them ("/.eid/Callback", "/.eid/callback;x", "/.eid/", anything after
 * httpd's own "..", "//" normalisation) is an ordinary URI, protected like
 * any other.  One predicate, eid_endpoint_of(), decides for every hook:
 * map_to_storage (OK: no directory walk, so no .htaccess is read for them),
 * access_checker_ex (OK: Require does not apply - the endpoints authenticate
 * their own input), our auth hooks (skip) and the handler.  It is never true
 * for a subrequest, and the login endpoints are not served through an
 * internal redirect (only the pages are: they are error documents).
 */
#include "mod_auth_eid.h"
#include "eid_pages.h"

#include "apr_lib.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"

#define EID_DEFAULT_ENDPOINT_PATH "/.eid"
#define ENDPOINT_PATH_MAX 64

typedef enum { EP_PAGE_REFUSED, EP_PAGE_EXPIRED, EP_LOGGED_OUT, EP_CHOOSE, EP_LOGIN,
               EP_CALLBACK, EP_LOGOUT, EP_BACKCHANNEL, EP__COUNT } ep_e;

static const struct {
    const char *tail;  /* after "<path>/" */
    int via_redirect;  /* also served as an internal redirect's target */
} endpoints[EP__COUNT] = {
    [EP_PAGE_REFUSED] = {"page/refused", 1}, [EP_PAGE_EXPIRED] = {"page/expired", 1},
    [EP_LOGGED_OUT] = {"logged-out", 1},     [EP_CHOOSE] = {"choose", 0},
    [EP_LOGIN] = {"login", 0},               [EP_CALLBACK] = {"callback", 0},
    [EP_LOGOUT] = {"logout", 0},             [EP_BACKCHANNEL] = {"backchannel-logout", 0},
};

const char *eid_endpoint_path(request_rec *r)
{
    const eid_srv_conf_t *c = ap_get_module_config(r->server->module_config, &auth_eid_module);
    return (c && c->endpoint_path) ? c->endpoint_path : EID_DEFAULT_ENDPOINT_PATH;
}

/* The endpoint r is, or -1. */
static int eid_endpoint_of(request_rec *r)
{
    const char *base, *u = r->uri;
    apr_size_t bl;
    int i;
    if (r->main || !u)
        return -1; /* never in a subrequest (SSI, RewriteCond -U, mod_dir look-ups) */
    base = eid_endpoint_path(r);
    bl = strlen(base);
    if (strncmp(u, base, bl) || u[bl] != '/')
        return -1;
    for (i = 0; i < EP__COUNT; i++)
        if (!strcmp(u + bl + 1, endpoints[i].tail))
            return (r->prev && !endpoints[i].via_redirect) ? -1 : i;
    return -1;
}

int eid_is_endpoint(request_rec *r)
{
    return eid_endpoint_of(r) >= 0;
}

const char *eid_set_endpoint_path(cmd_parms *cmd, void *dcv, const char *path)
{
    eid_srv_conf_t *c = ap_get_module_config(cmd->server->module_config, &auth_eid_module);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    const char *s;
    if (err)
        return err;
    if (path[0] != '/' || !path[1])
        return "EidEndpointPath: must start with '/' and name a path below it, e.g. /.eid";
    if (strlen(path) > ENDPOINT_PATH_MAX)
        return "EidEndpointPath: too long (64 characters at most)";
    if (path[strlen(path) - 1] == '/')
        return "EidEndpointPath: no trailing '/'";
    for (s = path; *s; s++)
        if (!apr_isalnum(*s) && !strchr("/._-~", *s))
            return "EidEndpointPath: only letters, digits and / . _ - ~ are allowed";
    if (strstr(path, "//"))
        return "EidEndpointPath: no empty segment ('//')";
    /* Why dot segments are refused: httpd removes them from request URIs
     * before any hook sees them, so such a path could never match. */
    if (strstr(path, "/./") || strstr(path, "/../") || !strcmp(path + strlen(path) - 2, "/.") ||
        !strcmp(path + strlen(path) - 3, "/.."))
        return "EidEndpointPath: no '.' or '..' segment";
    c->endpoint_path = apr_pstrdup(cmd->pool, path);
    return NULL;
}

/* ---- hooks ---------------------------------------------------------------------- */

static int ep_map_to_storage(request_rec *r)
{
    /* No file behind these URIs: skip the directory walk, and with it any
     * .htaccess in the tree, which must not be able to touch them. */
    return eid_endpoint_of(r) >= 0 ? OK : DECLINED;
}

static int ep_access_ex(request_rec *r)
{
    /* OK only for our exact URIs: Require does not apply to them (their
     * handlers check their own input: state, CSRF, logout token). */
    return eid_endpoint_of(r) >= 0 ? OK : DECLINED;
}

/* What the original request's state says about why it was refused. */
static eid_why_e why_of(const request_rec *orig, int status)
{
    const eid_req_t *st = eid_req_get((request_rec *)orig, 0);
    if (status == HTTP_SERVICE_UNAVAILABLE)
        return EID_WHY_UNAVAILABLE;
    if (!st || !st->tried)
        return status == HTTP_UNAUTHORIZED ? EID_WHY_NO_CREDENTIAL : EID_WHY_NOT_ALLOWED;
    if (st->why > EID_WHY_NONE && st->why < EID_WHY__COUNT)
        return (eid_why_e)st->why;
    if (st->outcome == EID_TRY_ABSENT)
        return EID_WHY_NO_CREDENTIAL;
    if (st->outcome == EID_TRY_REFUSED)
        return st->decision == EID_DECISION_ERROR ? EID_WHY_UNAVAILABLE : EID_WHY_INVALID;
    if (st->loa_needed > 0)
        return EID_WHY_LEVEL;
    return EID_WHY_NOT_ALLOWED;
}

static int page_refused(request_rec *r)
{
    request_rec *orig = r->prev;
    apr_table_t *vars;
    const eid_req_t *st;
    eid_why_e why;
    int status;
    if (!orig) {
        /* only as the error document of a refusal: nothing to show */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "EID08402: %s requested directly, not as an error document: 404",
                      r->uri);
        return HTTP_NOT_FOUND;
    }
    while (orig->prev)
        orig = orig->prev;
    status = ap_is_HTTP_ERROR(r->status) ? r->status : orig->status;
    if (!ap_is_HTTP_ERROR(status))
        status = HTTP_FORBIDDEN;
    why = why_of(orig, status);
    vars = apr_table_make(r->pool, 4);
    if (eid_why_name(why))
        apr_table_setn(vars, "why", eid_why_name(why));
    st = eid_req_get(orig, 0);
    if (why == EID_WHY_LEVEL && st && st->loa_needed > 0)
        apr_table_setn(vars, "loa", apr_itoa(r->pool, st->loa_needed));
    return eid_page_send(r, EID_PAGE_REFUSED, status, vars);
}

static int ep_handler(request_rec *r)
{
    int ep = eid_endpoint_of(r), status;
    if (ep < 0)
        return DECLINED;
    if (ep <= EP_LOGGED_OUT && r->method_number != M_GET) {
        r->allowed = AP_METHOD_BIT << M_GET;
        return HTTP_METHOD_NOT_ALLOWED;
    }
    switch (ep) {
    case EP_PAGE_REFUSED:
        return page_refused(r);
    case EP_PAGE_EXPIRED:
        status = r->prev && ap_is_HTTP_ERROR(r->status) ? r->status : HTTP_OK;
        return eid_page_send(r, EID_PAGE_EXPIRED, status, NULL);
    case EP_LOGGED_OUT:
        return eid_page_send(r, EID_PAGE_LOGGED_OUT, HTTP_OK, NULL);
    case EP_CHOOSE:
        return eid_ep_choose(r);
    case EP_LOGIN:
        return eid_ep_login(r);
    case EP_CALLBACK:
        return eid_ep_callback(r);
    case EP_LOGOUT:
        return eid_ep_logout(r);
    default:
        return eid_ep_backchannel(r);
    }
}

void eid_endpoints_register_hooks(apr_pool_t *p)
{
    ap_hook_map_to_storage(ep_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    /* AP_AUTH_INTERNAL_PER_CONF, like every hook of this module: httpd then
     * skips access control only for an internal request whose configuration
     * equals its main/original request's - the handler still decides by URI,
     * and the skip grants nothing the original did not have. */
    ap_hook_check_access_ex(ep_access_ex, NULL, NULL, APR_HOOK_FIRST,
                            AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_handler(ep_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    eid_pages_register_hooks(p);
}
