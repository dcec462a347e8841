/*
 * eid_login_glue.c - starting a login, the provider choice, the callback.
 *
 * A login starts when a browser without a usable session reaches an oidc
 * location (an auth hook: it only sets Location and a state cookie and
 * returns 302 - it never writes a body), or at <EidEndpointPath>/login (the
 * choice page's links, step-up).  What the login must remember (provider,
 * state, nonce, PKCE verifier, where to return, level) is sealed into a
 * state cookie with the session keys: starting a login writes nothing to the
 * store, so anonymous requests cannot fill it.
 *
 * State cookies are "__Host-eid-st-<slot>", slot 0..3: a login takes a free
 * slot (the oldest one when all are taken), so however many tabs start a
 * login at once - in parallel, before any answer arrived - a browser holds
 * at most four: the peers' users hit "request header too large" loops with
 * one cookie per state.  A tab whose cookie was taken over by a later one
 * comes back to the "expired" page (or, when another tab's login already
 * made a session, simply to the site).
 *
 * The callback checks, in this order: the state cookie whose sealed state
 * equals the `state` parameter; its age; the OP's error; single use of state,
 * code and nonce (markers added to the store, EXISTS = replay); the code
 * exchange and ID token (eid_oidc_redeem); then a new session (a new id:
 * never one the browser sent) replaces whatever session the browser had.
 */
#include "eid_login_glue.h"
#include "eid_pages.h"
#include "eid/eid_oidc.h"
#include "eid/eid_redirect.h"
#include "eid/eid_util.h"

#include "apr_strings.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#define MAX_ARGS_LEN 8192

static int has_ctl(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return 1;
    return 0;
}

/* The value of query/form parameter `name` in `args` (x-www-form-urlencoded),
 * decoded, in p; NULL when absent.  *count gets how often it occurs.  A
 * value that does not decode (bad %xx, %00) counts but is not returned. */
const char *eid_form_get(apr_pool_t *p, const char *args, const char *name, int *count)
{
    apr_size_t nl = strlen(name);
    const char *found = NULL;
    *count = 0;
    while (args && *args) {
        const char *amp = strchr(args, '&');
        apr_size_t len = amp ? (apr_size_t)(amp - args) : strlen(args);
        if (len > nl && !strncmp(args, name, nl) && args[nl] == '=') {
            char *v = apr_pstrmemdup(p, args + nl + 1, len - nl - 1);
            (*count)++;
            found = ap_unescape_urlencoded(v) == OK && !has_ctl(v) ? v : NULL;
        }
        else if (len == nl && !strncmp(args, name, nl)) {
            (*count)++;
            found = "";
        }
        args = amp ? amp + 1 : NULL;
    }
    return found;
}

/* One parameter, exactly once (a repeated one is refused: which would the
 * checks have seen?). */
static const char *arg1(request_rec *r, const char *args, const char *name, int *bad)
{
    int n;
    const char *v = eid_form_get(r->pool, args, name, &n);
    if (n > 1 || (n == 1 && !v))
        *bad = 1;
    return n == 1 ? v : NULL;
}

static const char *enc(request_rec *r, const char *v)
{
    return ap_escape_urlencoded(r->pool, v);
}

/* The return-to of a request: its own local URI when a browser can be
 * sent back to it, else "/". */
static const char *return_of(request_rec *r)
{
    /* the URL the browser asked for, also after an internal redirect */
    const char *u = eid_root_request(r)->unparsed_uri;
    if (!u || *u != '/' || strlen(u) > EID_PENDING_MAX_RETURN ||
        eid_redirect_check(u, strlen(u), NULL, 0))
        return "/";
    return u;
}

/* `path` (local, starting with '/') as an absolute URL on the origin of
 * EidRedirectURI: where the session cookie is set.  Why not the Host
 * header: a forged one must not choose where a redirect goes. */
const char *eid_login_abs_url(request_rec *r, const char *path)
{
    const eid_login_srv_t *ls = eid_login_srv(r->server);
    return ls->origin ? apr_pstrcat(r->pool, ls->origin, path, NULL)
                      : ap_construct_url(r->pool, path, r);
}

/* Is `target` allowed after login (local path, or an EidReturnAllow
 * origin)?  NULL, or the checker's reason. */
static const char *check_return(request_rec *r, const char *target)
{
    const eid_login_srv_t *ls = eid_login_srv(r->server);
    const apr_array_header_t *a = ls->return_allow;
    return eid_redirect_check(target, strlen(target),
                              a ? (const char *const *)a->elts : NULL, a ? a->nelts : 0);
}

typedef struct {
    int present[EID_STATE_SLOTS];
    const char *val[EID_STATE_SLOTS];
    apr_size_t len[EID_STATE_SLOTS];
} slots_t;

static int collect_slots(void *b, const char *n, apr_size_t nl, const char *v, apr_size_t vl)
{
    slots_t *s = b;
    apr_size_t pl = sizeof(EID_STATE_COOKIE_PREFIX) - 1;
    if (nl == pl + 1 && !memcmp(n, EID_STATE_COOKIE_PREFIX, pl) && n[pl] >= '0' &&
        n[pl] < '0' + EID_STATE_SLOTS) {
        int i = n[pl] - '0';
        /* a duplicated name: the later one is not ours to trust either way */
        s->present[i]++;
        s->val[i] = v;
        s->len[i] = vl;
    }
    return 0;
}

/* The state cookies of the logins in flight and the session cookie together
 * stay within this many bytes of the Cookie header (name=value; ...).  Four
 * at the sealed state's limit would be ~6 KB: with a site's own cookies that
 * passes httpd's LimitRequestFieldSize (8190), and every request to the site
 * answers 400 until they expire.  The count cap alone does not prevent that. */
#define STATE_COOKIE_BUDGET 4096

static apr_size_t slot_bytes(apr_size_t vlen)
{
    return sizeof(EID_STATE_COOKIE_PREFIX) - 1 + 1 + 1 + vlen + 2; /* "name=value; " */
}

/* The session cookie is sent along with them (a step-up login, a login
 * in another tab after one finished): the budget is for all our cookies, so
 * its bytes are always set aside. */
#define SESSION_COOKIE_BYTES (sizeof(EID_SESSION_COOKIE) - 1 + 1 + EID_SESSION_COOKIE_LEN + 2)

/* The largest state cookie (slot_bytes) that a login with no state cookie
 * spreads over slots 1..SLOTS-1: three of them, one of any size in slot 0
 * and the session cookie fit the budget. */
#define SPREAD_MAX                                                                         \
    ((STATE_COOKIE_BUDGET - SESSION_COOKIE_BYTES - slot_bytes(EID_PENDING_MAX_COOKIE)) /    \
     (EID_STATE_SLOTS - 1))

/* The slot for a new login (its state cookie `len` bytes): the first free
 * one; all taken: the one whose login started first (one that does not open
 * counts as oldest).  None carried at all: parallel first requests (a browser
 * restoring its tabs) do not see each other, and none can prune the others:
 * a small state goes to a slot chosen by the new state among 1..SLOTS-1, so
 * they spread instead of all overwriting one, and a large one (a deep link)
 * to slot 0, so that together they still fit STATE_COOKIE_BUDGET (four large
 * ones made ~6 KB).  Parallel large ones overwrite each other: the last tab
 * logs in, the others come back to the expired page (or, once it made a
 * session, go on). */
static int pick_slot(request_rec *r, const slots_t *s, const char *state, apr_size_t len)
{
    int i, oldest = -1, any = 0;
    apr_time_t t = 0;
    for (i = 0; i < EID_STATE_SLOTS; i++)
        any |= s->present[i];
    if (!any)
        return slot_bytes(len) <= SPREAD_MAX
                   ? 1 + eid_b64url_value((unsigned char)state[0]) % (EID_STATE_SLOTS - 1)
                   : 0;
    for (i = 0; i < EID_STATE_SLOTS; i++)
        if (!s->present[i])
            return i;
    for (i = 0; i < EID_STATE_SLOTS; i++) {
        eid_pending_t *pd;
        eid_result_t res = {0};
        if (eid_pending_open(r->pool, eid_login_g->keys, eid_session_vhost(r), s->val[i],
                             s->len[i], &pd, &res) != 0)
            return i;
        if (oldest < 0 || pd->created < t) {
            oldest = i;
            t = pd->created;
        }
    }
    return oldest < 0 ? 0 : oldest;
}

/* After `slot` took a new state of `len` bytes: expire the other slots,
 * oldest login first (one that does not open counts as oldest), until the
 * state cookies (and a session cookie) fit STATE_COOKIE_BUDGET. */
static void prune_to_budget(request_rec *r, slots_t *s, int slot, apr_size_t len)
{
    apr_size_t total = SESSION_COOKIE_BYTES + slot_bytes(len);
    int i;
    for (i = 0; i < EID_STATE_SLOTS; i++)
        if (i != slot && s->present[i])
            total += slot_bytes(s->len[i]);
    while (total > STATE_COOKIE_BUDGET) {
        int oldest = -1;
        apr_time_t t = 0;
        char name[sizeof(EID_STATE_COOKIE_PREFIX) + 2];
        for (i = 0; i < EID_STATE_SLOTS; i++) {
            eid_pending_t *pd;
            eid_result_t res = {0};
            apr_time_t c;
            if (i == slot || !s->present[i])
                continue;
            c = eid_pending_open(r->pool, eid_login_g->keys, eid_session_vhost(r), s->val[i],
                                 s->len[i], &pd, &res) != 0 ? 0 : pd->created;
            if (oldest < 0 || c < t) {
                oldest = i;
                t = c;
            }
        }
        if (oldest < 0)
            break; /* the new one alone: at most EID_PENDING_MAX_COOKIE */
        apr_snprintf(name, sizeof(name), "%s%d", EID_STATE_COOKIE_PREFIX, oldest);
        eid_cookie_set(r, name, "", 0);
        s->present[oldest] = 0;
        total -= slot_bytes(s->len[oldest]);
    }
}

/* Start a login with `pv`: the state cookie and *location.  OK, or an HTTP
 * status (refused, reason set in st). */
static int login_start(request_rec *r, eid_req_t *st, eid_provider_t *pv, int min_loa,
                       const char *return_to, const char **location)
{
    const eid_login_srv_t *ls = eid_login_srv(r->server);
    eid_oidc_authreq_t ar;
    eid_result_t res = {0};
    eid_pending_t pd;
    slots_t slots;
    const char *sealed;
    char name[sizeof(EID_STATE_COOKIE_PREFIX) + 2];
    int slot;

    if (!ls->redirect_uri || !eid_login_g->keys) {
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, "EID08101",
                   "login needs EidRedirectURI in this virtual host and EidSessionKeyFile");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (eid_oidc_auth_request(r->pool, pv, ls->redirect_uri, min_loa, NULL, 0,
                              r->request_time, &ar, &res) != APR_SUCCESS) {
        int unavailable = res.cls == EID_CLASS_UNAVAILABLE;
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, res.tag ? res.tag : "EID08102",
                   res.reason ? res.reason : "no authorization request");
        if (unavailable)
            apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return unavailable ? HTTP_SERVICE_UNAVAILABLE : HTTP_INTERNAL_SERVER_ERROR;
    }
    memset(&pd, 0, sizeof(pd));
    pd.provider = eid_provider_name(pv);
    pd.state = ar.state;
    pd.nonce = ar.nonce;
    pd.code_verifier = ar.code_verifier;
    pd.return_to = return_to;
    pd.min_loa = min_loa;
    pd.created = r->request_time;
    sealed = eid_pending_seal(r->pool, eid_login_g->keys, eid_session_vhost(r), &pd);
    if (!sealed) {
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, "EID08103",
                   "the login state could not be sealed");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    memset(&slots, 0, sizeof(slots));
    eid_cookie_each(r, collect_slots, &slots);
    slot = pick_slot(r, &slots, ar.state, strlen(sealed));
    prune_to_budget(r, &slots, slot, strlen(sealed));
    apr_snprintf(name, sizeof(name), "%s%d", EID_STATE_COOKIE_PREFIX, slot);
    eid_cookie_set(r, name, sealed,
                   (int)apr_time_sec(eid_oidc_login_timeout(pv)));
    *location = ar.url;
    return OK;
}

/* Where to send a browser to choose among the location's providers. */
static const char *choose_url(request_rec *r, eid_provider_t *const *provs, int n,
                              int min_loa, const char *return_to)
{
    const char *u = apr_pstrcat(r->pool, eid_endpoint_path(r), "/choose?return=",
                                enc(r, return_to), NULL);
    int i;
    if (min_loa)
        u = apr_psprintf(r->pool, "%s&loa=%d", u, min_loa);
    for (i = 0; i < n; i++)
        u = apr_pstrcat(r->pool, u, "&p=", enc(r, eid_provider_name(provs[i])), NULL);
    return eid_login_abs_url(r, u);
}

int eid_login_redirect(request_rec *r, const eid_dir_conf_t *d, int min_loa)
{
    eid_req_t *st = eid_req_get(r, 1);
    eid_provider_t *const *provs;
    int n = eid_login_providers_of(d, &provs), rc;
    const char *loc = NULL, *ret = return_of(r);
    eid_provider_t *pv = NULL;

    if (n == 0 || (n > 1 && !d->login_providers)) {
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, "EID08104",
                   n ? "misconfigured: this location accepts oidc but names no "
                       "EidLoginProviders, and several providers log users in"
                     : "misconfigured: this location accepts oidc but no provider has "
                       "login=on");
        st->outcome = eid_try_refused(st, HTTP_INTERNAL_SERVER_ERROR);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* Step-up: the provider of the session the browser has, if offered. */
    if (st->session && st->session->rec && st->session->rec->provider) {
        int i;
        for (i = 0; i < n; i++)
            if (!strcmp(eid_provider_name(provs[i]), st->session->rec->provider))
                pv = provs[i];
    }
    if (!pv && n == 1)
        pv = provs[0];
    if (pv) {
        if ((rc = login_start(r, st, pv, min_loa, ret, &loc)) != OK) {
            st->outcome = eid_try_refused(st, rc);
            return rc;
        }
    }
    else {
        loc = choose_url(r, provs, n, min_loa, ret);
    }
    st->decision = EID_DECISION_AUTHN;
    st->reason = min_loa ? apr_psprintf(r->pool, "sent to log in at level %d", min_loa)
                         : "no session: sent to log in";
    apr_table_setn(r->headers_out, "Location", loc);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return HTTP_MOVED_TEMPORARILY;
}

void eid_login_stepup(request_rec *r, int loa)
{
    eid_req_t *st = eid_req_get(r, 1);
    const char *u;
    if (!eid_login_may_redirect(r) || !st->id || st->id->method != EID_METHOD_OIDC)
        return;
    st->stepup_loa = loa;
    st->decision = EID_DECISION_AUTHN;
    u = apr_psprintf(r->pool, "%s/login?loa=%d&return=%s", eid_endpoint_path(r), loa,
                     enc(r, return_of(r)));
    if (st->session && st->session->rec && st->session->rec->provider)
        u = apr_pstrcat(r->pool, u, "&provider=", enc(r, st->session->rec->provider), NULL);
    /* An absolute URL: httpd answers the 403 with a 302 to it (ap_die),
     * from its error handling - this hook writes nothing. */
    ap_custom_response(r, HTTP_FORBIDDEN, eid_login_abs_url(r, u));
}

static int refuse_page(request_rec *r, eid_req_t *st, int status, const char *why,
                       const char *tag, const char *reason)
{
    apr_table_t *vars = apr_table_make(r->pool, 2);
    eid_refuse(r, st, status >= 500 ? EID_DECISION_ERROR : EID_DECISION_AUTHN,
               status >= 500 ? APLOG_ERR : APLOG_INFO, tag, reason);
    st->tried = 1;
    st->outcome = eid_try_refused(st, status);
    apr_table_setn(vars, "why", why);
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return eid_page_send(r, EID_PAGE_UNAVAILABLE, status, vars);
    }
    return eid_page_send(r, !strcmp(why, "expired") ? EID_PAGE_EXPIRED : EID_PAGE_REFUSED,
                         status, vars);
}

/* GET <ep>/login?provider=&return=&loa= */
int eid_ep_login(request_rec *r)
{
    eid_req_t *st = eid_req_get(r, 1);
    int bad = 0, loa = 0, rc;
    const char *name = arg1(r, r->args, "provider", &bad);
    const char *ret = arg1(r, r->args, "return", &bad);
    const char *l = arg1(r, r->args, "loa", &bad), *loc;
    eid_provider_t *pv = NULL;

    if (!eid_login_configured())
        return HTTP_NOT_FOUND;

    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    if (r->args && strlen(r->args) > MAX_ARGS_LEN)
        bad = 1;
    if (l && (loa = eid_loa_parse(l, 0)) < 0)
        bad = 1;
    if (!ret)
        ret = "/";
    if (!bad && check_return(r, ret)) {
        return refuse_page(r, st, HTTP_BAD_REQUEST, "invalid", "EID08105",
                           apr_psprintf(r->pool, "login: return-to refused (%s)",
                                        check_return(r, ret)));
    }
    if (!bad && name)
        pv = eid_login_provider(name);
    else if (!bad && eid_login_g->all->nelts == 1)
        pv = APR_ARRAY_IDX(eid_login_g->all, 0, eid_provider_t *);
    else if (!bad) {
        /* No provider named and several exist: the choice page. */
        apr_table_setn(r->headers_out, "Location",
                       choose_url(r, (eid_provider_t *const *)eid_login_g->all->elts,
                                  eid_login_g->all->nelts, loa, ret));
        return HTTP_MOVED_TEMPORARILY;
    }
    if (bad || !pv)
        return refuse_page(r, st, HTTP_BAD_REQUEST, "invalid", "EID08106",
                           "login: malformed request or unknown provider");
    if ((rc = login_start(r, st, pv, loa, ret, &loc)) != OK)
        return refuse_page(r, st, rc, rc == HTTP_SERVICE_UNAVAILABLE ? "unavailable"
                                                                     : "invalid",
                           st->tag, st->reason);
    apr_table_setn(r->headers_out, "Location", loc);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return HTTP_MOVED_TEMPORARILY;
}

/* GET <ep>/choose?return=&loa=&p=a&p=b: the provider choice page; its links
 * start the login at <ep>/login. */
int eid_ep_choose(request_rec *r)
{
    eid_req_t *st = eid_req_get(r, 1);
    apr_table_t *vars = apr_table_make(r->pool, 8);
    int bad = 0, n = 0, loa = 0, i;
    const char *ret = arg1(r, r->args, "return", &bad), *l = arg1(r, r->args, "loa", &bad);
    const char *a = r->args;

    if (!eid_login_configured())
        return HTTP_NOT_FOUND;

    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    if ((l && (loa = eid_loa_parse(l, 0)) < 0) || (r->args && strlen(r->args) > MAX_ARGS_LEN))
        bad = 1;
    if (!ret)
        ret = "/";
    if (bad || check_return(r, ret))
        return refuse_page(r, st, HTTP_BAD_REQUEST, "invalid", "EID08105",
                           "choose: malformed request or return-to refused");
    /* Only providers that log users in are listed, whatever p= says. */
    for (; a && *a && n < 16; a = strchr(a, '&') ? strchr(a, '&') + 1 : NULL) {
        char *v;
        const char *end = strchr(a, '&');
        eid_provider_t *pv;
        if (strncmp(a, "p=", 2))
            continue;
        v = apr_pstrmemdup(r->pool, a + 2, end ? (apr_size_t)(end - a - 2) : strlen(a + 2));
        if (ap_unescape_urlencoded(v) != OK || !(pv = eid_login_provider(v)))
            continue;
        apr_table_setn(vars, apr_psprintf(r->pool, "provider.%d.name", n), v);
        apr_table_setn(vars, apr_psprintf(r->pool, "provider.%d.url", n),
                       apr_psprintf(r->pool, "%s/login?provider=%s&return=%s&loa=%d",
                                    eid_endpoint_path(r), enc(r, v), enc(r, ret), loa));
        n++;
    }
    for (i = 0; !n && i < eid_login_g->all->nelts; i++) {
        const char *v = eid_provider_name(APR_ARRAY_IDX(eid_login_g->all, i, eid_provider_t *));
        apr_table_setn(vars, apr_psprintf(r->pool, "provider.%d.name", i), v);
        apr_table_setn(vars, apr_psprintf(r->pool, "provider.%d.url", i),
                       apr_psprintf(r->pool, "%s/login?provider=%s&return=%s&loa=%d",
                                    eid_endpoint_path(r), enc(r, v), enc(r, ret), loa));
    }
    return eid_page_send(r, EID_PAGE_CHOOSE, HTTP_OK, vars);
}

typedef struct {
    request_rec *r;
    const char *state;
    eid_pending_t *pd;
    char name[sizeof(EID_STATE_COOKIE_PREFIX) + 2];
    int tried;
} state_find_t;

static int match_state(void *b, const char *n, apr_size_t nl, const char *v, apr_size_t vl)
{
    state_find_t *f = b;
    apr_size_t pl = sizeof(EID_STATE_COOKIE_PREFIX) - 1;
    eid_pending_t *pd;
    eid_result_t res = {0};
    if (nl != pl + 1 || memcmp(n, EID_STATE_COOKIE_PREFIX, pl) || n[pl] < '0' ||
        n[pl] >= '0' + EID_STATE_SLOTS || ++f->tried > 2 * EID_STATE_SLOTS)
        return 0;
    if (eid_pending_open(f->r->pool, eid_login_g->keys, eid_session_vhost(f->r), v, vl, &pd,
                         &res) != 0 || !pd->state || strlen(pd->state) != strlen(f->state))
        return 0;
    if (CRYPTO_memcmp(pd->state, f->state, strlen(f->state)))
        return 0;
    f->pd = pd;
    memcpy(f->name, n, nl);
    f->name[nl] = '\0';
    return 1;
}

/* A one-time marker: OK the first time, EXISTS for a replay. */
static eid_store_rc_e marker(request_rec *r, const char *prefix, const char *v,
                             apr_interval_time_t ttl)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    const char *k;
    /* hashed: a code or a state never lies in the store as such */
    SHA256((const unsigned char *)v, strlen(v), h);
    k = apr_pstrcat(r->pool, prefix, eid_b64url_pencode(r->pool, h, sizeof(h)), NULL);
    return eid_store_add(eid_login_g->store, k, strlen(k), (const unsigned char *)"1", 1, ttl);
}

/* Why refused, for the page: the OP's or our reason never reaches it. */
static int store_refusal(request_rec *r, eid_req_t *st, eid_store_rc_e rc, const char *what)
{
    if (rc == EID_STORE_EXISTS)
        return refuse_page(r, st, HTTP_BAD_REQUEST, "invalid", "EID08110",
                           apr_psprintf(r->pool, "callback: %s used twice (replay)", what));
    return refuse_page(r, st, HTTP_SERVICE_UNAVAILABLE, "unavailable", "EID08210",
                       apr_psprintf(r->pool, "callback: the session store failed (%s)",
                                    eid_store_rc_str(rc)));
}

/* GET <ep>/callback?code=&state= (or error=) */
int eid_ep_callback(request_rec *r)
{
    eid_req_t *st = eid_req_get(r, 1);
    const eid_login_srv_t *ls = eid_login_srv(r->server);
    int bad = 0;
    const char *state = arg1(r, r->args, "state", &bad);
    const char *code = arg1(r, r->args, "code", &bad);
    const char *error = arg1(r, r->args, "error", &bad);
    const char *iss = arg1(r, r->args, "iss", &bad);
    state_find_t sf;
    eid_provider_t *pv;
    eid_oidc_login_t lg;
    eid_result_t res = {0};
    eid_session_found_t old;
    eid_store_rc_e rc;
    apr_interval_time_t ttl;
    const char *ret;

    if (!eid_login_configured())
        return HTTP_NOT_FOUND;

    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    st->tried = 1;
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (bad || !state || strlen(state) != EID_OIDC_RANDOM_LEN ||
        (r->args && strlen(r->args) > MAX_ARGS_LEN) || !eid_login_g->keys ||
        !eid_login_g->store)
        return refuse_page(r, st, HTTP_BAD_REQUEST, "invalid", "EID08111",
                           "callback: malformed request (state)");
    memset(&sf, 0, sizeof(sf));
    sf.r = r;
    sf.state = state;
    eid_cookie_each(r, match_state, &sf);
    if (!sf.pd) {
        /* Another tab's login took this one's state cookie, or it expired.
         * When that other login made a session, the browser just goes on. */
        if (eid_session_find(r, &old) == EID_STORE_OK) {
            apr_table_setn(r->headers_out, "Location", eid_login_abs_url(r, "/"));
            st->reason = "callback without its state cookie; a session exists";
            return HTTP_SEE_OTHER;
        }
        return refuse_page(r, st, HTTP_BAD_REQUEST, "expired", "EID08112",
                           "callback: no state cookie matches the state (expired, another "
                           "tab, or not started here)");
    }
    /* Matched: this cookie has done its work, whatever follows. */
    eid_cookie_set(r, sf.name, "", 0);
    pv = eid_login_provider(sf.pd->provider);
    if (!pv)
        return refuse_page(r, st, HTTP_BAD_REQUEST, "invalid", "EID08113",
                           "callback: the login's provider is no longer configured");
    ttl = eid_oidc_login_timeout(pv);
    if (r->request_time - sf.pd->created > ttl || sf.pd->created > r->request_time + ttl)
        return refuse_page(r, st, HTTP_BAD_REQUEST, "expired", "EID08114",
                           "callback: the login took too long");
    /* RFC 9207: when the OP names itself, it must be the one asked. */
    if (iss && strcmp(iss, eid_provider_issuer(pv)))
        return refuse_page(r, st, HTTP_FORBIDDEN, "invalid", "EID08115",
                           "callback: iss parameter of another issuer (mix-up)");
    if ((rc = marker(r, "u:", state, ttl)) != EID_STORE_OK)
        return store_refusal(r, st, rc, "state");
    if (error) {
        /* The OP's words are logged escaped and never shown. */
        return refuse_page(r, st, HTTP_FORBIDDEN, !strcmp(error, "access_denied") ?
                           "no-credential" : "invalid", "EID08116",
                           apr_psprintf(r->pool, "callback: the provider answered error=%s",
                                        ap_escape_logitem(r->pool, apr_pstrndup(r->pool,
                                                                               error, 64))));
    }
    if (!code || !*code || strlen(code) > 2048)
        return refuse_page(r, st, HTTP_BAD_REQUEST, "invalid", "EID08111",
                           "callback: malformed request (code)");
    if ((rc = marker(r, "c:", code, ttl)) != EID_STORE_OK)
        return store_refusal(r, st, rc, "code");
    if ((rc = marker(r, "n:", sf.pd->nonce, ttl)) != EID_STORE_OK)
        return store_refusal(r, st, rc, "nonce");
    memset(&lg, 0, sizeof(lg));
    if (eid_oidc_redeem(r->pool, pv, ls->redirect_uri, code, sf.pd, r->request_time, &lg,
                        &res) != APR_SUCCESS) {
        if (res.cls == EID_CLASS_UNAVAILABLE)
            return refuse_page(r, st, HTTP_SERVICE_UNAVAILABLE, "unavailable", res.tag,
                               res.reason);
        /* Our side cannot complete this login (a client assertion that
         * cannot be signed, userinfo without an endpoint, an encrypted
         * userinfo answer): the operator's to fix, so 500 and an error line
         * as docs/errors.md says, not the "your login was refused" page. */
        if (res.cls == EID_CLASS_MISCONFIGURED)
            return refuse_page(r, st, HTTP_INTERNAL_SERVER_ERROR, "error", res.tag, res.reason);
        if (res.cls == EID_CLASS_FORBIDDEN) {
            apr_table_t *vars = apr_table_make(r->pool, 2);
            eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_INFO, res.tag, res.reason);
            st->outcome = eid_try_refused(st, HTTP_FORBIDDEN);
            apr_table_setn(vars, "why", "level");
            apr_table_setn(vars, "loa", apr_itoa(r->pool, sf.pd->min_loa));
            return eid_page_send(r, EID_PAGE_REFUSED, HTTP_FORBIDDEN, vars);
        }
        return refuse_page(r, st, HTTP_FORBIDDEN, "invalid", res.tag ? res.tag : "EID08117",
                           res.reason ? res.reason : "callback: the login was refused");
    }
    /* The session the browser had (step-up, another tab, another user) is
     * replaced: ended in the store, never reused. */
    if (eid_session_find(r, &old) == EID_STORE_OK)
        eid_session_end(r, old.skey);
    if ((rc = eid_session_create(r, eid_provider_name(pv), &lg)) != EID_STORE_OK)
        return store_refusal(r, st, rc == EID_STORE_EXISTS ? EID_STORE_ERROR : rc, "session");
    ret = sf.pd->return_to && !check_return(r, sf.pd->return_to) ? sf.pd->return_to : "/";
    if (*ret == '/')
        ret = eid_login_abs_url(r, ret);
    st->outcome = EID_TRY_OK;
    st->id = lg.id;
    st->event = "login";
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "EID08120: login with provider %s at level %d",
                  eid_provider_name(pv), lg.id ? lg.id->loa : 0);
    apr_table_setn(r->headers_out, "Location", ret);
    return HTTP_SEE_OTHER;
}
