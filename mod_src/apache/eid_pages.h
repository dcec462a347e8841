/*
 * eid_pages.h - the pages a user sees (refusal, provider choice, logout,
 * session expired) and the endpoints under EidEndpointPath.
 *
 * Pages come from handlers, never from auth hooks: an auth hook that refuses
 * a browser only arranges (ap_custom_response) that httpd's error handling
 * redirects internally to <EidEndpointPath>/page/refused, whose handler
 * renders the page from the original request's state.
 */
#ifndef EID_PAGES_H
#define EID_PAGES_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"

typedef enum { EID_PAGE_REFUSED, EID_PAGE_CHOOSE, EID_PAGE_LOGGED_OUT, EID_PAGE_LOGOUT_CONFIRM,
               EID_PAGE_EXPIRED, EID_PAGE_UNAVAILABLE, EID_PAGE_LOGOUT_CONTINUE,
               EID_PAGE__COUNT } eid_page_e;

/* The only script a page may run (logout-continue: submit the form to the
 * provider at once); the page's CSP allows exactly this text by its hash.
 * A sysadmin's template that wants the automatic submission copies it
 * verbatim between <script> and </script>. */
#define EID_PAGE_SUBMIT_SCRIPT "document.getElementById(\"eid-continue\").submit();"

/* Why a user was refused, in the words of the page (never a tag or reason). */
typedef enum { EID_WHY_NONE, EID_WHY_NO_CREDENTIAL /* no card / not logged in */,
               EID_WHY_INVALID /* card or login not accepted */, EID_WHY_LEVEL /* LoA too low */,
               EID_WHY_NOT_ALLOWED /* not your organisation / role */, EID_WHY_EXPIRED,
               EID_WHY_UNAVAILABLE, EID_WHY__COUNT } eid_why_e;

/* Writes the page and returns OK (the handler's return value).  Status
 * `status` (0: 200); headers Content-Type text/html; charset=utf-8,
 * Content-Language, Vary: Accept-Language, Cache-Control: no-store,
 * X-Content-Type-Options: nosniff, X-Frame-Options: DENY and a strict
 * Content-Security-Policy.  Language sv or en by Accept-Language (default
 * sv); the sysadmin's EidPageTemplate when set, else the built-in one.
 * `vars` (may be NULL), every value HTML-escaped on substitution:
 *   "request_id"  default: eid_request_id(r)
 *   "why"         one of no-credential, invalid, level, not-allowed, expired,
 *                 unavailable: selects the localised text (never shown raw)
 *   "loa"         the level needed (with why=level)
 *   "csrf"        the logout form's token (logout-confirm)
 *   "link"        where "log in again" / "continue" points (default "/")
 *   "provider.N.name", "provider.N.url" (N = 0, 1, ...): the choose page's
 *                 list, built into {{providers}} (each url must be a local
 *                 path or it is left out)
 *   "end_session" the form's action on logout-continue (the provider's
 *                 end_session_endpoint)
 *   "field.N.name", "field.N.value": that form's hidden inputs, built into
 *                 {{fields}}
 *   "form_action" origins the page's form may post to (CSP form-action)
 * Any other name is ignored. */
int eid_page_send(request_rec *r, eid_page_e page, int status, apr_table_t *vars);

/* The keyword of `why` for vars ("level" ...); NULL for EID_WHY_NONE. */
const char *eid_why_name(eid_why_e why);

/* Does r look like a browser navigation (GET/HEAD, Accept with text/html, no
 * Authorization, no X-Requested-With)?  Such a refusal gets a page. */
int eid_page_is_browser(request_rec *r);

/* The module refuses r with `status`: if r looks like a browser and the
 * sysadmin set no ErrorDocument for that status, arrange (for r only) the
 * internal redirect to <EidEndpointPath>/page/refused.  Never for a
 * subrequest.  Cheap; call it wherever a refusal status is returned. */
void eid_page_arrange_refusal(request_rec *r, int status);

/* The endpoint path of r's server ("/.eid" by default). */
const char *eid_endpoint_path(request_rec *r);

/* Is r a request this module's endpoint handler serves (exact URI under
 * EidEndpointPath, not a subrequest; see eid_endpoints.c)?  Auth hooks skip
 * such requests. */
int eid_is_endpoint(request_rec *r);

/* Configuration: EidPageTemplate, EidEndpointPath setters and hook set-up. */
const char *eid_set_page_template(cmd_parms *cmd, void *dcv, const char *page,
                                  const char *lang, const char *file);
const char *eid_set_endpoint_path(cmd_parms *cmd, void *dcv, const char *path);
void eid_pages_register_hooks(apr_pool_t *p);

/* Built-in templates (eid_pages_text.c): [page][0 sv, 1 en]. */
extern const char *const eid_page_builtin[EID_PAGE__COUNT][2];
/* Localised texts: title, why, advice per eid_why_e and language. */
typedef struct { const char *title, *why, *advice; } eid_page_text_t;
extern const eid_page_text_t eid_why_text[EID_WHY__COUNT][2];
/* Texts of the pages other than refused: [page][lang]. */
extern const eid_page_text_t eid_page_text[EID_PAGE__COUNT][2];
/* sv "Den här sidan kräver tillitsnivå %d" ...: printf formats, one %d. */
extern const char *const eid_level_fmt[2];

#define EID_PAGES_CMDS                                                                     \
    AP_INIT_TAKE3("EidPageTemplate", eid_set_page_template, NULL, RSRC_CONF,               \
                  "<refused|choose|logged-out|logout-confirm|expired|unavailable> <sv|en> " \
                  "<file> - the sysadmin's own page (UTF-8 HTML with {{placeholders}}); "   \
                  "main server only"),                                                      \
    AP_INIT_TAKE1("EidEndpointPath", eid_set_endpoint_path, NULL, RSRC_CONF,               \
                  "<path> - where the module's pages and login endpoints live "            \
                  "(default /.eid); server or virtual host, not in .htaccess"),

#endif
