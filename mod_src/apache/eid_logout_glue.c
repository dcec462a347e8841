/*
 * eid_logout_glue.c - ending sessions: RP-initiated logout and the OP's
 * back-channel logout.
 *
 * <ep>/logout: GET shows a confirmation page whose form carries the
 * session's CSRF token; only a POST with that token ends the session (a GET
 * never changes state: an <img> on another site must not log anybody out).
 * Then the browser goes to the provider's end_session_endpoint with
 * id_token_hint and post_logout_redirect_uri = this site's logged-out page
 * (or, without such an endpoint, straight there): by a 303 (GET), or with
 * the provider's end_session_method=post by a page whose form POSTs them.
 *
 * <ep>/backchannel-logout: POST logout_token=<JWS> from the OP (OIDC
 * Back-Channel Logout 1.0): the token is checked by eid_oidc_logout_token
 * (signature, iss, aud, iat, events, sid/sub, no nonce), its jti is a
 * one-time marker (replay -> 400; pending until the ending finished, so the
 * OP's retry after a 503 is no replay), and every session of that sid / sub
 * is ended through the store's index.  Answers 200, 400 for a bad token,
 * Cache-Control: no-store (§2.8); 503 when the store fails.
 */
#include "eid_login_glue.h"
#include "eid_pages.h"
#include "eid/eid_oidc.h"
#include "eid/eid_redirect.h"

#include "apr_strings.h"
#include "apr_uri.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"

#include <openssl/crypto.h>

#define MAX_LOGOUT_FORM 4096
#define MAX_BACKCHANNEL_FORM 16384

/* The request body (x-www-form-urlencoded), at most `max` bytes, in r->pool;
 * NULL when it is longer, not a form, or unreadable. */
static const char *read_form(request_rec *r, apr_size_t max)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    char *buf, tmp[1024];
    apr_size_t len = 0;
    long n;

    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
        (ct[33] && ct[33] != ';' && ct[33] != ' '))
        return NULL;
    if (ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK) != OK)
        return NULL;
    buf = apr_palloc(r->pool, max + 1);
    if (ap_should_client_block(r)) {
        while ((n = ap_get_client_block(r, tmp, sizeof(tmp))) > 0) {
            if (len + (apr_size_t)n > max)
                return NULL;
            memcpy(buf + len, tmp, (apr_size_t)n);
            len += (apr_size_t)n;
        }
        if (n < 0)
            return NULL;
    }
    buf[len] = '\0';
    return strlen(buf) == len ? buf : NULL;
}

static const char *logged_out_url(request_rec *r)
{
    return eid_login_abs_url(r, apr_pstrcat(r->pool, eid_endpoint_path(r), "/logged-out",
                                            NULL));
}

static int see_other(request_rec *r, const char *url)
{
    apr_table_setn(r->headers_out, "Location", url);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return HTTP_SEE_OTHER;
}

static int unavailable(request_rec *r, eid_req_t *st, eid_store_rc_e rc)
{
    eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, "EID08210",
               apr_psprintf(r->pool, "logout: the session store failed (%s)",
                            eid_store_rc_str(rc)));
    st->outcome = eid_try_refused(st, HTTP_SERVICE_UNAVAILABLE);
    apr_table_setn(r->err_headers_out, "Retry-After", "5");
    return eid_page_send(r, EID_PAGE_UNAVAILABLE, HTTP_SERVICE_UNAVAILABLE, NULL);
}

/* scheme://host[:port] of an absolute URL, or NULL.  apr_uri_parse() gives
 * an IPv6 literal without its brackets: put back, or "https://::1:8443" is no
 * origin, form-action leaves the provider out and the browser does not go
 * there. */
static const char *url_origin(apr_pool_t *p, const char *url)
{
    apr_uri_t u;
    const char *host;
    if (!url || apr_uri_parse(p, url, &u) != APR_SUCCESS || !u.scheme || !u.hostname)
        return NULL;
    host = strchr(u.hostname, ':') ? apr_pstrcat(p, "[", u.hostname, "]", NULL) : u.hostname;
    return u.port_str ? apr_psprintf(p, "%s://%s:%s", u.scheme, host, u.port_str)
                      : apr_psprintf(p, "%s://%s", u.scheme, host);
}

/* Where the logout form's answer may lead the browser: the provider's
 * end-session origin and the EidLogoutRedirectAllow origins (browsers apply
 * the page's CSP form-action to every redirect after the submission; with
 * 'self' alone Chromium stops at the provider). */
static const char *logout_form_targets(request_rec *r, const eid_login_srv_t *ls,
                                       const eid_session_rec_t *rec)
{
    eid_provider_t *pv = rec->provider ? eid_login_provider(rec->provider) : NULL;
    const char *end = pv ? eid_oidc_end_session_url(r->pool, pv, NULL, NULL, NULL) : NULL;
    const char *o = url_origin(r->pool, end), *out = o ? o : "";
    int i;
    for (i = 0; ls->logout_allow && i < ls->logout_allow->nelts; i++)
        out = apr_pstrcat(r->pool, out, " ", APR_ARRAY_IDX(ls->logout_allow, i, const char *),
                          NULL);
    return out;
}

/* end_session_method=post: the session is ended; a page whose form POSTs the
 * end-session parameters to the provider (submitted by its one allowed
 * script, or by the user's button), so the ID token never is in a URL. */
static int end_session_post(request_rec *r, eid_provider_t *pv, const char *endpoint,
                            const char *id_token)
{
    apr_table_t *vars = apr_table_make(r->pool, 8);
    const char *names[3] = {"id_token_hint", "client_id", "post_logout_redirect_uri"};
    const char *vals[3] = {id_token, eid_oidc_client_id(pv), logged_out_url(r)};
    const char *o = url_origin(r->pool, endpoint);
    int i, n = 0;

    apr_table_setn(vars, "end_session", endpoint);
    for (i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        apr_table_setn(vars, apr_psprintf(r->pool, "field.%d.name", n), names[i]);
        apr_table_setn(vars, apr_psprintf(r->pool, "field.%d.value", n), vals[i]);
        n++;
    }
    if (o)
        apr_table_setn(vars, "form_action", o);
    return eid_page_send(r, EID_PAGE_LOGOUT_CONTINUE, HTTP_OK, vars);
}

/* GET: confirmation page; POST csrf=...[&return=...]: end the session. */
int eid_ep_logout(request_rec *r)
{
    eid_req_t *st = eid_req_get(r, 1);
    const eid_login_srv_t *ls = eid_login_srv(r->server);
    eid_session_found_t f;
    eid_store_rc_e rc;
    const char *form, *csrf, *ret, *target, *end;
    eid_provider_t *pv;
    int n, m;

    if (!eid_login_configured())
        return HTTP_NOT_FOUND;

    if (r->method_number != M_GET && r->method_number != M_POST)
        return HTTP_METHOD_NOT_ALLOWED;
    st->tried = 1;
    rc = eid_session_find(r, &f);
    if (rc == EID_STORE_ERROR)
        return unavailable(r, st, rc);
    if (r->method_number == M_GET) {
        apr_table_t *vars = apr_table_make(r->pool, 2);
        if (rc != EID_STORE_OK)
            return see_other(r, logged_out_url(r));
        st->id = f.rec->id;
        apr_table_setn(vars, "csrf", f.rec->csrf ? f.rec->csrf : "");
        apr_table_setn(vars, "form_action", logout_form_targets(r, ls, f.rec));
        return eid_page_send(r, EID_PAGE_LOGOUT_CONFIRM, HTTP_OK, vars);
    }
    form = read_form(r, MAX_LOGOUT_FORM);
    if (rc != EID_STORE_OK) {
        /* Nothing to end; a stale cookie goes. */
        if (f.had_cookie)
            eid_cookie_set(r, EID_SESSION_COOKIE, "", 0);
        return see_other(r, logged_out_url(r));
    }
    st->id = f.rec->id;
    csrf = form ? eid_form_get(r->pool, form, "csrf", &n) : NULL;
    ret = form ? eid_form_get(r->pool, form, "return", &m) : NULL;
    if (!csrf || n != 1 || !f.rec->csrf || strlen(csrf) != strlen(f.rec->csrf) ||
        CRYPTO_memcmp(csrf, f.rec->csrf, strlen(csrf))) {
        apr_table_t *vars = apr_table_make(r->pool, 1);
        eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_WARNING, "EID08301",
                   "logout: missing or wrong CSRF token; the session stays");
        st->outcome = eid_try_refused(st, HTTP_FORBIDDEN);
        apr_table_setn(vars, "why", "invalid");
        return eid_page_send(r, EID_PAGE_REFUSED, HTTP_FORBIDDEN, vars);
    }
    if ((rc = eid_session_end_found(r, &f)) != EID_STORE_OK)
        return unavailable(r, st, rc);
    eid_cookie_set(r, EID_SESSION_COOKIE, "", 0);
    st->event = "logout";
    st->outcome = EID_TRY_OK;
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "EID08302: logout (provider %s)",
                  f.rec->provider ? f.rec->provider : "-");
    target = logged_out_url(r);
    if (ret && m == 1 && *ret) {
        const apr_array_header_t *a = ls->logout_allow;
        if (eid_redirect_check(ret, strlen(ret), a ? (const char *const *)a->elts : NULL,
                               a ? a->nelts : 0)) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "EID08303: logout: return refused (not a local path or an "
                          "EidLogoutRedirectAllow origin); the logged-out page instead");
        }
        else {
            target = *ret == '/' ? eid_login_abs_url(r, ret) : ret;
        }
    }
    pv = f.rec->provider ? eid_login_provider(f.rec->provider) : NULL;
    /* The OP ends its own session, then sends the browser to our page (its
     * post_logout_redirect_uri must be registered: always the same one). */
    if (pv && (end = eid_oidc_end_session_form(r->pool, pv)) != NULL)
        return end_session_post(r, pv, end, f.rec->id_token);
    end = pv ? eid_oidc_end_session_url(r->pool, pv, f.rec->id_token, logged_out_url(r),
                                        NULL)
             : NULL;
    return see_other(r, end ? end : target);
}

static int bcl_answer(request_rec *r, int status, const char *error)
{
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    r->status = status;
    if (error) {
        const char *body = apr_psprintf(r->pool, "{\"error\":\"%s\"}", error);
        ap_set_content_type(r, "application/json");
        ap_set_content_length(r, (apr_off_t)strlen(body));
        ap_rputs(body, r);
    }
    else {
        ap_set_content_length(r, 0);
    }
    return OK;
}

/* End every session listed in index `idx`; the number ended, or -1.  With
 * `before` (a retried token: its first delivery's time) a session created
 * after it is a later login, not one the provider logged out: it stays, and
 * back in the index. */
static int end_indexed(request_rec *r, const char *idx, apr_time_t before)
{
    apr_array_header_t *members = NULL;
    eid_store_rc_e rc = eid_store_index_take(eid_login_g->store, r->pool, idx, strlen(idx),
                                             &members);
    int i, n = 0;
    if (rc == EID_STORE_NOTFOUND)
        return 0;
    if (rc != EID_STORE_OK)
        return -1;
    for (i = 0; members && i < members->nelts; i++) {
        const char *skey = APR_ARRAY_IDX(members, i, const char *);
        apr_time_t created = 0;
        if (before) {
            int c = eid_session_created_at(r, skey, &created);
            if (c < 0)
                return -1;
            if (c == 1 && created > before) {
                if (eid_store_index_add(eid_login_g->store, idx, strlen(idx), skey,
                                        strlen(skey), eid_login_g->max_age) != EID_STORE_OK)
                    return -1;
                continue;
            }
        }
        if (eid_session_end(r, skey) != EID_STORE_OK)
            return -1;
        n++;
    }
    return n;
}

int eid_ep_backchannel(request_rec *r)
{
    eid_req_t *st = eid_req_get(r, 1);
    const char *form, *tok, *sid = NULL, *sub = NULL, *jti = NULL, *k, *first;
    apr_time_t before = 0;
    eid_provider_t *pv = NULL;
    eid_result_t res = {0};
    eid_store_rc_e rc;
    int n, a = 0, b = 0;

    if (!eid_login_configured())
        return HTTP_NOT_FOUND;

    if (r->method_number != M_POST)
        return HTTP_METHOD_NOT_ALLOWED;
    st->tried = 1;
    if (!eid_login_g->store || !eid_login_g->all->nelts)
        return HTTP_NOT_FOUND;
    form = read_form(r, MAX_BACKCHANNEL_FORM);
    tok = form ? eid_form_get(r->pool, form, "logout_token", &n) : NULL;
    if (!tok || n != 1 || !*tok) {
        eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_INFO, "EID08310",
                   "back-channel logout: no single logout_token in a form body");
        st->outcome = eid_try_refused(st, HTTP_BAD_REQUEST);
        return bcl_answer(r, HTTP_BAD_REQUEST, "invalid_request");
    }
    if (eid_oidc_logout_token(r->pool, (eid_provider_t *const *)eid_login_g->all->elts,
                              eid_login_g->all->nelts, tok, strlen(tok), r->request_time,
                              &pv, &sid, &sub, &jti, &res) != APR_SUCCESS) {
        int down = res.cls == EID_CLASS_UNAVAILABLE;
        eid_refuse(r, st, down ? EID_DECISION_ERROR : EID_DECISION_AUTHN,
                   down ? APLOG_ERR : APLOG_INFO, res.tag ? res.tag : "EID08311",
                   res.reason ? res.reason : "back-channel logout: token refused");
        st->outcome = eid_try_refused(st, down ? HTTP_SERVICE_UNAVAILABLE : HTTP_BAD_REQUEST);
        if (down)
            apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return bcl_answer(r, down ? HTTP_SERVICE_UNAVAILABLE : HTTP_BAD_REQUEST,
                          down ? "temporarily_unavailable" : "invalid_request");
    }
    /* One-time: a replayed logout token is refused (SECURITY.md).  The jti
     * marker says "p" (pending) until every session is ended, then "d"
     * (done).  Only a done marker makes a replay: when the store fails
     * half-way, the OP's retry of the same token (it gets 503) ends the
     * sessions instead of being refused, which would leave them open.
     * Delivering a pending token twice at once only ends the same sessions
     * twice.  The marker lives as long as the token can be accepted (iat up
     * to leeway ahead, then MAX_AGE + leeway): a fixed 2 * MAX_AGE expired
     * first with a leeway over 150 s, and the token was taken again. */
    k = apr_pstrcat(r->pool, "j:", eid_provider_name(pv), ":", jti, NULL);
    /* "p<time>": the first delivery's time.  A retry ends only the sessions
     * made before it - a pending marker must not let the token (replayed by
     * whoever holds it, within its minutes) end the user's next login. */
    first = apr_psprintf(r->pool, "p%" APR_TIME_T_FMT, apr_time_now());
    rc = eid_store_add(eid_login_g->store, k, strlen(k), (const unsigned char *)first,
                       strlen(first), eid_oidc_logout_jti_ttl(pv));
    if (rc == EID_STORE_EXISTS) {
        unsigned char *v;
        apr_size_t vn;
        rc = eid_store_get(eid_login_g->store, r->pool, k, strlen(k), &v, &vn);
        if (rc == EID_STORE_OK && vn >= 1 && v[0] == 'p') {
            /* "p" alone (a server before this one): no time, all of them */
            before = vn > 1 ? apr_atoi64(apr_pstrmemdup(r->pool, (const char *)v + 1, vn - 1))
                            : 0;
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "EID08314: back-channel logout: "
                          "the token again, its first delivery did not finish: ending now");
        }
        else if (rc != EID_STORE_ERROR) { /* done, or expired in between */
            eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_WARNING, "EID08312",
                       "back-channel logout: jti used twice (replay)");
            st->outcome = eid_try_refused(st, HTTP_BAD_REQUEST);
            return bcl_answer(r, HTTP_BAD_REQUEST, "invalid_request");
        }
    }
    /* Markers first: a session whose index the store dropped (shmcb evicts
     * the oldest copies of a full ring) is ended when it is next looked up. */
    if (rc == EID_STORE_OK && sid)
        rc = eid_session_logout_mark(r, eid_provider_name(pv), "i:sid:", sid, before);
    if (rc == EID_STORE_OK && sub)
        rc = eid_session_logout_mark(r, eid_provider_name(pv), "i:sub:", sub, before);
    if (rc == EID_STORE_OK && sid)
        a = end_indexed(r, eid_session_index_key(r->pool, "i:sid:", eid_provider_name(pv), sid),
                        before);
    if (rc == EID_STORE_OK && sub && a >= 0)
        b = end_indexed(r, eid_session_index_key(r->pool, "i:sub:", eid_provider_name(pv), sub),
                        before);
    if (rc != EID_STORE_OK || a < 0 || b < 0) {
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, "EID08210",
                   "back-channel logout: the session store failed");
        st->outcome = eid_try_refused(st, HTTP_SERVICE_UNAVAILABLE);
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return bcl_answer(r, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable");
    }
    /* Done: from now on the token is a replay.  If this write fails the
     * marker stays pending, and a replay ends the same sessions again: the
     * logout itself happened, so it is not answered 503. */
    if (eid_store_set(eid_login_g->store, k, strlen(k), (const unsigned char *)"d", 1,
                      eid_oidc_logout_jti_ttl(pv)) != EID_STORE_OK)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "EID08315: back-channel logout: "
                      "the sessions were ended but the token could not be marked used");
    st->event = "backchannel-logout";
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "EID08313: back-channel logout from %s ended %d session(s)",
                  eid_provider_name(pv), a + b);
    return bcl_answer(r, HTTP_OK, NULL);
}
