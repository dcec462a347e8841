/*
 * eid_session_glue.c - the `oidc` method: a login session's cookie ->
 * identity; making, re-sealing and ending sessions.
 *
 * Per request: the one `__Host-eid-session` cookie -> its id (43 canonical
 * base64url characters, else no session: no store look-up for a malformed
 * id) -> store key with the current key, then the previous one -> the
 * sealed record -> open (AAD binds the store key and the virtual host) ->
 * live (idle and absolute timeouts) -> identity, in r->pool.  A duplicated,
 * garbage, oversized or foreign cookie is "no session", never a 500.  A
 * store error is a 503 with Retry-After, the cookie is kept: never a login
 * redirect (which would loop while the store is down) and never an admit.
 *
 * Why "dead markers": a session is re-written at most once a minute (or a
 * quarter of a shorter idle timeout): its last use, or a re-seal under a
 * new key.  A logout that deletes it
 * between another request's read and write would be undone by that write.
 * So an ending writes `x:<store key>` first and deletes second, and a
 * re-write checks for that marker after writing (and deletes again):
 * whichever order the two requests run in, the session stays ended.
 */
#include "eid_login_glue.h"
#include "eid_dir_glue.h"
#include "eid/eid_util.h"

#include "apr_strings.h"
#include "http_core.h"
#include "http_main.h"
#include "http_protocol.h"

#define TOUCH_EVERY apr_time_from_sec(60)

/* How often a session's last use is written: once a minute, or a quarter of
 * the idle timeout when that is shorter.  Why: the idle check reads the
 * last use as written, so a write interval not well below the timeout ended
 * sessions in continuous use (EidSessionIdleTimeout 60: every session died
 * a minute after its login, however busy). */
static apr_interval_time_t touch_every(void)
{
    apr_interval_time_t q = eid_login_g->idle / 4;
    return q > 0 && q < TOUCH_EVERY ? q : TOUCH_EVERY;
}
#define MAX_COOKIE_HEADER 16384

int eid_cookie_each(request_rec *r, eid_cookie_fn fn, void *baton)
{
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_size_t total = 0;
    int i;
    for (i = 0; i < arr->nelts; i++) {
        const char *h = e[i].val;
        if (!e[i].key || strcasecmp(e[i].key, "Cookie") || !h)
            continue;
        /* Bounded work whatever a client sends (httpd limits each header
         * line to 8190 bytes by default, not their number). */
        total += strlen(h);
        if (total > MAX_COOKIE_HEADER)
            return -1;
        while (*h) {
            const char *n, *v, *end;
            apr_size_t nl, vl;
            while (*h == ' ' || *h == '\t' || *h == ';')
                h++;
            if (!*h)
                break;
            n = h;
            while (*h && *h != '=' && *h != ';')
                h++;
            nl = (apr_size_t)(h - n);
            while (nl && (n[nl - 1] == ' ' || n[nl - 1] == '\t'))
                nl--;
            if (*h != '=') {
                continue; /* a name without a value: not ours */
            }
            v = ++h;
            while (*h && *h != ';')
                h++;
            end = h;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            vl = (apr_size_t)(end - v);
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v++;
                vl -= 2;
            }
            if (fn(baton, n, nl, v, vl))
                return 1;
        }
    }
    return 0;
}

typedef struct {
    const char *name;
    apr_size_t nlen;
    int count;
    const char *val;
    apr_size_t vlen;
} one_cookie_t;

static int find_one(void *b, const char *n, apr_size_t nl, const char *v, apr_size_t vl)
{
    one_cookie_t *c = b;
    if (nl == c->nlen && !memcmp(n, c->name, nl)) {
        c->count++;
        c->val = v;
        c->vlen = vl;
    }
    return 0;
}

void eid_cookie_set(request_rec *r, const char *name, const char *value, int max_age)
{
    /* __Host-: Secure, Path=/, no Domain - the browser keeps it to this
     * host.  SameSite=Lax: sent on the top-level GET back from the OP. */
    const char *v = apr_psprintf(r->pool, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Lax%s",
                                 name, value,
                                 max_age < 0 ? "" : apr_psprintf(r->pool, "; Max-Age=%d",
                                                                 max_age));
    apr_table_addn(r->err_headers_out, "Set-Cookie", v);
}

int eid_login_is_browser(request_rec *r)
{
    const char *accept = apr_table_get(r->headers_in, "Accept"), *mode, *dest;
    if (r->method_number != M_GET)
        return 0; /* HEAD is M_GET with header_only */
    if (apr_table_get(r->headers_in, "Authorization") ||
        apr_table_get(r->headers_in, "X-Requested-With"))
        return 0;
    if (accept && ap_strcasestr(accept, "json") && !ap_strcasestr(accept, "text/html"))
        return 0;
    /* Fetch metadata: a browser says what a request is for; fetch(), an
     * image or an iframe must not be sent to a login page (a cross-site
     * redirect it cannot follow, or a login inside a frame). */
    mode = apr_table_get(r->headers_in, "Sec-Fetch-Mode");
    if (mode && strcasecmp(mode, "navigate"))
        return 0;
    dest = apr_table_get(r->headers_in, "Sec-Fetch-Dest");
    if (dest && strcasecmp(dest, "document"))
        return 0;
    return 1;
}

int eid_login_may_redirect(request_rec *r)
{
    /* Never a subrequest, nor the error document of an error: the browser
     * must get that error, not a login it did not ask for. */
    return !r->main && !(r->prev && ap_is_HTTP_ERROR(r->prev->status)) &&
           eid_login_is_browser(r);
}

const char *eid_session_vhost(request_rec *r)
{
    const eid_login_srv_t *ls = eid_login_srv(r->server);
    return ls->vhost_id ? ls->vhost_id : r->server->server_hostname;
}

static const char *bind_of(apr_pool_t *p, const char *skey, const char *vhost)
{
    return apr_pstrcat(p, skey, "@", vhost, NULL);
}

/*
 * The session a connection used last, opened, so that its keep-alive
 * requests skip the store key, the store (its global mutex), the AEAD open
 * and the decode.  Kept only while the store's deletion generation is the one
 * read before the session was fetched (eid_store_generation(): every ending of
 * a session - logout, back-channel logout, index eviction - in any process
 * moves it: shm on every delete, Redis on every marker and the deletes that
 * follow, and Redis has none while its invalidation channel is down; see
 * eid_store.h); the timeouts are checked on every request, and the last use is written
 * as before.  Keyed by content: the cookie's value and the virtual host the
 * session is bound to.  A connection is served by one thread at a time.
 *
 * With it, once per kept session and directory, the identity enriched by
 * that directory and its memo (eid_id_memo_t: the export encoding, the audit
 * fields, identity-only policy verdicts): the requests share that identity
 * read-only, as a certificate's requests share the connection's.
 *
 * Everything of a kept session lives in one sub-pool of the connection's
 * (kept_pool_t).  Replacing it (a touch, another cookie, a new generation)
 * does not destroy that pool while a request that used it may still point
 * into it (its identity, the record's strings, the export in its
 * subprocess_env): every root request that used it holds a reference, let
 * go by a cleanup of the root's pool - after the request is logged, which
 * with pipelining (an HTTP/1.1 sync MPM such as worker or prefork) happens
 * only when its response, held back in the output filter, is written, after
 * later requests of the connection ran and replaced the kept session.  The
 * pool is destroyed when it is replaced and the last such request is done
 * (or with the connection).  The kept_pool_t structs are the connection
 * pool's, reused: at most one per pool alive, so a long connection with many
 * cookie switches does not grow.
 */
typedef struct kept_pool {
    apr_pool_t *pool;          /* NULL once destroyed */
    int refs;                  /* root requests that may still point into it */
    int replaced;              /* no longer the kept session: destroy at refs 0 */
    const request_rec *pinned; /* the root request that holds the last reference */
    struct conn_session *cs;
    struct kept_pool *next_free;
} kept_pool_t;

typedef struct conn_session {
    kept_pool_t *kp; /* the kept session's pool; NULL: none kept */
    char cookie[EID_SESSION_COOKIE_LEN + 1];
    const char *vhost;
    eid_session_found_t f; /* f.rec in kp->pool */
    /* The identity enriched by `dir` (NULL until a request asks; pconf,
     * immutable, compared by address as the certificate slots do) and what
     * is derived from it; in kp->pool. */
    const eid_directory_t *dir;
    eid_identity_t *id;
    eid_id_memo_t memo;
    kept_pool_t *free; /* kept_pool_t structs to reuse */
} conn_session_t;

#define CONN_SESSION_KEY "eid.session"

static conn_session_t *conn_session(request_rec *r)
{
    void *v = NULL;
    apr_pool_userdata_get(&v, CONN_SESSION_KEY, r->connection->pool);
    return v;
}

static eid_session_rec_t *rec_copy(apr_pool_t *p, const eid_session_rec_t *s)
{
    eid_session_rec_t *d = apr_pmemdup(p, s, sizeof(*s));
    d->id = eid_identity_copy(p, s->id);
#define DUP(f) d->f = s->f ? apr_pstrdup(p, s->f) : NULL;
    DUP(provider) DUP(sid) DUP(sub) DUP(id_token) DUP(csrf)
#undef DUP
    return d;
}

/* The request's own copy of a kept session: the record and the identity
 * structs (the request writes their fields: method, the directory's
 * enrichment, last use), sharing the strings and arrays, which nobody
 * changes. */
static eid_session_rec_t *rec_for_request(apr_pool_t *p, const eid_session_rec_t *s)
{
    eid_session_rec_t *d = apr_pmemdup(p, s, sizeof(*s));
    d->id = apr_pmemdup(p, s->id, sizeof(*s->id));
    return d;
}

/* The pool went (destroyed by us or with the connection): its struct may be
 * reused once no request holds it any more. */
static apr_status_t kept_pool_gone(void *data)
{
    kept_pool_t *k = data;
    k->pool = NULL;
    if (!k->refs) {
        k->next_free = k->cs->free;
        k->cs->free = k;
    }
    return APR_SUCCESS;
}

static void kept_pool_release(kept_pool_t *k)
{
    if (k->pool && k->replaced && !k->refs)
        apr_pool_destroy(k->pool); /* kept_pool_gone() */
}

/* A cleanup of a root request's pool: the request is logged and done. */
static apr_status_t kept_pool_unpin(void *data)
{
    kept_pool_t *k = data;
    k->pinned = NULL;
    if (--k->refs == 0) {
        if (k->pool)
            kept_pool_release(k);
        else {
            k->next_free = k->cs->free;
            k->cs->free = k;
        }
    }
    return APR_SUCCESS;
}

/* r (its root request, till that is done) may point into the kept pool. */
static void kept_pool_pin(request_rec *r, kept_pool_t *k)
{
    request_rec *root = eid_root_request(r);
    if (k->pinned == root)
        return;
    k->pinned = root;
    k->refs++;
    apr_pool_cleanup_register(root->pool, k, kept_pool_unpin, apr_pool_cleanup_null);
}

/* The kept session is no longer (see conn_session_t). */
static void conn_session_retire(conn_session_t *cs)
{
    kept_pool_t *k = cs->kp;
    cs->kp = NULL;
    cs->id = NULL;
    cs->dir = NULL;
    memset(&cs->memo, 0, sizeof(cs->memo));
    if (k) {
        k->replaced = 1;
        kept_pool_release(k);
    }
}

/* Keep `f` (just found or touched) for the connection's next requests. */
static void conn_session_put(request_rec *r, eid_session_found_t *f, const char *cookie,
                             const char *vhost)
{
    conn_session_t *cs = conn_session(r);
    apr_pool_t *sub;
    kept_pool_t *k;
    f->kept = NULL;
    if (!f->have_gen || !cookie)
        return;
    if (!cs) {
        cs = apr_pcalloc(r->connection->pool, sizeof(*cs));
        apr_pool_userdata_setn(cs, CONN_SESSION_KEY, NULL, r->connection->pool);
    }
    conn_session_retire(cs);
    if (apr_pool_create(&sub, r->connection->pool) != APR_SUCCESS)
        return;
    apr_pool_tag(sub, "eid_session_kept");
    if ((k = cs->free))
        cs->free = k->next_free;
    else
        k = apr_palloc(r->connection->pool, sizeof(*k));
    memset(k, 0, sizeof(*k));
    k->pool = sub;
    k->cs = cs;
    apr_pool_cleanup_register(sub, k, kept_pool_gone, apr_pool_cleanup_null);
    cs->f = *f;
    cs->f.rec = rec_copy(sub, f->rec);
    memcpy(cs->cookie, cookie, EID_SESSION_COOKIE_LEN);
    cs->cookie[EID_SESSION_COOKIE_LEN] = '\0';
    cs->vhost = apr_pstrdup(sub, vhost);
    cs->kp = k;
    /* the request may take the kept identity (kept_identity) */
    kept_pool_pin(r, k);
    f->kept = cs;
}

/* The kept session for this cookie, if it may still be used. */
static int conn_session_get(request_rec *r, eid_session_found_t *f, const char *cookie,
                            const char *vhost, apr_uint32_t gen)
{
    conn_session_t *cs = conn_session(r);
    if (!cs || !cs->kp || cs->f.gen != gen || strcmp(cs->vhost, vhost) ||
        memcmp(cs->cookie, cookie, EID_SESSION_COOKIE_LEN) ||
        !eid_session_live(cs->f.rec, r->request_time, eid_login_g->idle))
        return 0;
    /* the request's record shares the kept one's strings */
    kept_pool_pin(r, cs->kp);
    *f = cs->f;
    f->rec = rec_for_request(r->pool, cs->f.rec);
    f->kept = cs;
    return 1;
}

/* The kept session's identity enriched by `dir`, made on the first request
 * that asks, with its memo; NULL when f is not the kept session or the kept
 * identity was enriched by another directory (the request enriches its own
 * copy then). */
static eid_identity_t *kept_identity(request_rec *r, const eid_session_found_t *f,
                                     const eid_directory_t *dir, eid_id_memo_t **memo)
{
    conn_session_t *cs = conn_session(r);
    if (!cs || !cs->kp || f->kept != cs)
        return NULL;
    if (!cs->id) {
        apr_pool_t *p = cs->kp->pool;
        cs->id = apr_pmemdup(p, cs->f.rec->id, sizeof(*cs->id));
        cs->id->method = EID_METHOD_OIDC;
        eid_dir_apply(p, dir, cs->id);
        cs->dir = dir;
        memset(&cs->memo, 0, sizeof(cs->memo));
        cs->memo.id = cs->id;
        cs->memo.pool = p;
    }
    if (cs->dir != dir)
        return NULL;
    *memo = &cs->memo;
    return cs->id;
}

eid_store_rc_e eid_session_logout_mark(request_rec *r, const char *provider, const char *kind,
                                       const char *v, apr_time_t when)
{
    const char *k = apr_pstrcat(r->pool, "k:", eid_session_index_key(r->pool, kind, provider, v),
                                NULL);
    const char *t;
    if (when) {
        /* A retry writes its first delivery's time: never over a later
         * logout's marker (the sessions between would come back). */
        unsigned char *old;
        apr_size_t n;
        eid_store_rc_e rc = eid_store_get(eid_login_g->store, r->pool, k, strlen(k), &old, &n);
        if (rc == EID_STORE_ERROR)
            return rc;
        if (rc == EID_STORE_OK && apr_atoi64(apr_pstrmemdup(r->pool, (const char *)old, n)) >=
                                      when)
            return EID_STORE_OK;
    }
    /* microseconds: a login right after the logout is not caught by it */
    t = apr_psprintf(r->pool, "%" APR_TIME_T_FMT, when ? when : apr_time_now());
    return eid_store_set(eid_login_g->store, k, strlen(k), (const unsigned char *)t, strlen(t),
                         eid_login_g->max_age);
}

int eid_session_created_at(request_rec *r, const char *skey, apr_time_t *created)
{
    unsigned char *val;
    apr_size_t vlen;
    server_rec *s;
    eid_store_rc_e rc = eid_store_get(eid_login_g->store, r->pool, skey, strlen(skey), &val,
                                      &vlen);
    if (rc == EID_STORE_NOTFOUND)
        return 0;
    if (rc != EID_STORE_OK)
        return -1;
    /* Sealed for the virtual host it was made in: the back-channel request
     * may come to another one. */
    for (s = ap_server_conf; s; s = s->next) {
        const eid_login_srv_t *ls = eid_login_srv(s);
        const char *vhost = ls->vhost_id ? ls->vhost_id : s->server_hostname;
        eid_session_rec_t *rec;
        eid_result_t res = {0};
        int rotated = 0;
        if (vhost && eid_session_open(r->pool, eid_login_g->keys, bind_of(r->pool, skey, vhost),
                                      val, vlen, &rec, &rotated, &res) == 0) {
            *created = rec->created;
            return 1;
        }
    }
    return 0;
}

/* Did a back-channel logout name this session's sid or sub after it was
 * created?  1 yes, 0 no, -1 the store failed. */
static int logged_out_marker(request_rec *r, const eid_session_rec_t *rec)
{
    const char *kinds[2] = {"i:sid:", "i:sub:"}, *vals[2] = {rec->sid, rec->sub};
    int i;
    for (i = 0; i < 2; i++) {
        const char *k;
        unsigned char *v;
        apr_size_t n;
        eid_store_rc_e rc;
        if (!vals[i] || !rec->provider)
            continue;
        k = apr_pstrcat(r->pool, "k:", eid_session_index_key(r->pool, kinds[i], rec->provider,
                                                             vals[i]), NULL);
        rc = eid_store_get(eid_login_g->store, r->pool, k, strlen(k), &v, &n);
        if (rc == EID_STORE_ERROR)
            return -1;
        if (rc == EID_STORE_OK && apr_atoi64((const char *)v) >= rec->created)
            return 1;
    }
    return 0;
}

eid_store_rc_e eid_session_find(request_rec *r, eid_session_found_t *f)
{
    one_cookie_t c = {EID_SESSION_COOKIE, sizeof(EID_SESSION_COOKIE) - 1, 0, NULL, 0};
    const char *vhost = eid_session_vhost(r);
    eid_store_t *store = eid_login_g->store;
    int which;

    memset(f, 0, sizeof(*f));
    if (!store || !eid_login_g->keys)
        return EID_STORE_NOTFOUND;
    if (eid_cookie_each(r, find_one, &c) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "EID08201: Cookie headers over %d bytes: no session", MAX_COOKIE_HEADER);
        return EID_STORE_NOTFOUND;
    }
    if (c.count == 0)
        return EID_STORE_NOTFOUND;
    f->had_cookie = 1;
    if (c.count > 1) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "EID08201: %d session cookies in one request: no session", c.count);
        return EID_STORE_NOTFOUND;
    }
    /* Read before the store: a delete after this moment changes it. */
    f->have_gen = eid_store_generation(store, &f->gen);
    /* The connection's kept session, when the cookie is the very one it was
     * found with (parsed then). */
    if (f->have_gen && c.vlen == EID_SESSION_COOKIE_LEN &&
        conn_session_get(r, f, c.val, vhost, f->gen)) {
        f->had_cookie = 1;
        return EID_STORE_OK;
    }
    if (eid_session_cookie_parse(c.val, c.vlen, f->id) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "EID08202: malformed session cookie: no session");
        return EID_STORE_NOTFOUND;
    }
    for (which = 0; which < 2; which++) {
        unsigned char *val;
        apr_size_t vlen;
        eid_result_t res = {0};
        eid_store_rc_e rc;
        if (eid_session_store_key(eid_login_g->keys, which, vhost, f->id, f->skey) != 0)
            break;
        rc = eid_store_get(store, r->pool, f->skey, strlen(f->skey), &val, &vlen);
        if (rc == EID_STORE_NOTFOUND)
            continue;
        if (rc != EID_STORE_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "EID08210: session store '%s' failed (%s): 503",
                          eid_store_name(store), eid_store_rc_str(rc));
            return EID_STORE_ERROR;
        }
        if (eid_session_open(r->pool, eid_login_g->keys, bind_of(r->pool, f->skey, vhost),
                             val, vlen, &f->rec, &f->rotated, &res) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "EID08203: a stored session does not open (%s: %s): no session",
                          res.tag ? res.tag : "-", res.reason ? res.reason : "-");
            f->rec = NULL;
            return EID_STORE_NOTFOUND;
        }
        f->which = which;
        if (!eid_session_live(f->rec, r->request_time, eid_login_g->idle)) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "EID08204: the session has expired: no session");
            eid_store_del(store, f->skey, strlen(f->skey));
            f->rec = NULL;
            f->expired = 1;
            return EID_STORE_NOTFOUND;
        }
        /* Only where the store may drop an index on its own (shm: shmcb
         * evicts), and only when a session is fetched, not per kept request.
         * Redis keeps indexes (Lua, noeviction): no two extra reads. */
        switch ((eid_store_flags(store) & EID_STORE_F_LOSSY_INDEX) ? logged_out_marker(r, f->rec)
                                                                   : 0) {
        case 1:
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "EID08207: the provider logged this session out (back-channel): "
                          "no session");
            eid_session_end(r, f->skey);
            f->rec = NULL;
            return EID_STORE_NOTFOUND;
        case -1:
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "EID08210: session store '%s' failed: 503", eid_store_name(store));
            f->rec = NULL;
            return EID_STORE_ERROR;
        default:
            break;
        }
        /* A key was rotated out from under the store key: from now on the
         * current key's store key holds it (see eid_session_touch). */
        f->rotated |= which == 1;
        if (!f->rotated)
            conn_session_put(r, f, c.val, vhost);
        return EID_STORE_OK;
    }
    return EID_STORE_NOTFOUND;
}

static char *marker_key(apr_pool_t *p, const char *skey)
{
    return apr_pstrcat(p, "x:", skey, NULL);
}

static void index_session(request_rec *r, const eid_session_rec_t *rec, const char *skey,
                          apr_interval_time_t ttl)
{
    eid_store_t *store = eid_login_g->store;
    eid_store_rc_e rc = EID_STORE_OK;
    if (rec->sid) {
        const char *i = eid_session_index_key(r->pool, "i:sid:", rec->provider, rec->sid);
        rc = eid_store_index_add(store, i, strlen(i), skey, strlen(skey), ttl);
    }
    if (rec->sub && rc == EID_STORE_OK) {
        const char *i = eid_session_index_key(r->pool, "i:sub:", rec->provider, rec->sub);
        rc = eid_store_index_add(store, i, strlen(i), skey, strlen(skey), ttl);
    }
    if (rc != EID_STORE_OK)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "EID08212: the session could not be indexed for back-channel logout "
                      "(%s)", eid_store_rc_str(rc));
}

const char *eid_session_index_key(apr_pool_t *p, const char *kind, const char *provider,
                                  const char *v)
{
    return apr_pstrcat(p, kind, provider, ":", v, NULL);
}

/* Has an ending of the session at `skey` begun (its marker)? */
static int marked(request_rec *r, const char *skey)
{
    const char *mk = marker_key(r->pool, skey);
    unsigned char *v;
    apr_size_t n;
    return eid_store_get(eid_login_g->store, r->pool, mk, strlen(mk), &v, &n) ==
           EID_STORE_OK;
}

/* Re-write a live session: its last use, under the current key.  A failed
 * write keeps the request (the session it read is valid), logged. */
static int session_touch(request_rec *r, eid_session_found_t *f)
{
    eid_store_t *store = eid_login_g->store;
    const char *vhost = eid_session_vhost(r);
    eid_session_rec_t *rec = f->rec;
    char nkey[48], okey[48];
    const char *skey = f->skey;
    unsigned char *sealed;
    apr_size_t slen;
    apr_interval_time_t ttl = rec->expires - r->request_time;
    eid_store_rc_e rc;

    if (ttl <= 0)
        return 0;
    rec->last_seen = r->request_time;
    if (f->rotated) {
        if (eid_session_store_key(eid_login_g->keys, 0, vhost, f->id, nkey) != 0)
            return 0;
        skey = nkey;
    }
    if (eid_session_seal(r->pool, eid_login_g->keys, bind_of(r->pool, skey, vhost), rec,
                         &sealed, &slen) != APR_SUCCESS)
        return 0;
    rc = eid_store_set(store, skey, strlen(skey), sealed, slen, ttl);
    if (rc != EID_STORE_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "EID08211: the session's last use could not be stored (%s)",
                      eid_store_rc_str(rc));
        return 0;
    }
    /* Its index entries too, every time: shmcb drops the oldest copies of a
     * full ring first, and an index written only at the login would go
     * long before a session in use - a back-channel logout would then miss
     * it.  Re-adding a member re-writes the index (its expiry never
     * shortens). */
    index_session(r, rec, skey, ttl);
    memcpy(okey, f->skey, sizeof(okey));
    if (f->rotated) {
        eid_store_del(store, okey, strlen(okey));
        memcpy(f->skey, nkey, sizeof(nkey));
        f->rotated = 0;
    }
    /* An ending that ran meanwhile wrote its marker before deleting - under
     * the store key it found: the old one during a re-seal. */
    if (!marked(r, f->skey) && (!strcmp(okey, f->skey) || !marked(r, okey)))
        return 0;
    /* Ended as any ending is (marker first): a server that read the
     * re-written session in between and kept it sees the marker. */
    eid_session_end(r, f->skey);
    return -1;
}

eid_store_rc_e eid_session_end(request_rec *r, const char *skey)
{
    eid_store_t *store = eid_login_g->store;
    const char *mk = marker_key(r->pool, skey);
    eid_store_rc_e rc = eid_store_set(store, mk, strlen(mk), (const unsigned char *)"1", 1,
                                      eid_login_g->max_age);
    if (rc != EID_STORE_OK)
        return rc;
    rc = eid_store_del(store, skey, strlen(skey));
    return rc == EID_STORE_NOTFOUND ? EID_STORE_OK : rc;
}

/* Why every store key: during a key rotation rolled out server by server,
 * another server may have re-sealed the session under its store key of the
 * other key (and deleted this one: no ending, so a connection that kept the
 * session still holds the old store key).  Ending only the key it was found
 * under would leave the session alive there. */
eid_store_rc_e eid_session_end_found(request_rec *r, const eid_session_found_t *f)
{
    const char *vhost = eid_session_vhost(r);
    eid_store_rc_e rc = eid_session_end(r, f->skey);
    int which;
    for (which = 0; which < 2 && rc == EID_STORE_OK; which++) {
        char k[48];
        if (eid_session_store_key(eid_login_g->keys, which, vhost, f->id, k) != 0)
            break;
        if (strcmp(k, f->skey))
            rc = eid_session_end(r, k);
    }
    return rc;
}

static int accepts_provider(const eid_dir_conf_t *d, const char *name)
{
    eid_provider_t *const *provs;
    int n = eid_login_providers_of(d, &provs), i;
    for (i = 0; name && i < n; i++)
        if (!strcmp(eid_provider_name(provs[i]), name))
            return 1;
    return 0;
}

eid_try_e eid_try_session(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                          eid_identity_t **id)
{
    eid_session_found_t *f = apr_pcalloc(r->pool, sizeof(*f));
    eid_store_rc_e rc = eid_session_find(r, f);
    const eid_directory_t *dir;

    if (rc == EID_STORE_ERROR) {
        /* logged at error by eid_session_find() already */
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_DEBUG, "EID08210",
                   "the session store failed");
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return eid_try_refused(st, HTTP_SERVICE_UNAVAILABLE);
    }
    if (rc != EID_STORE_OK)
        return EID_TRY_ABSENT;
    /* A session from a provider this location does not offer is not a
     * credential here: the browser logs in with one it does. */
    if (!accepts_provider(d, f->rec->provider)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "EID08205: the session's provider '%s' is not offered here",
                      f->rec->provider ? f->rec->provider : "-");
        return EID_TRY_ABSENT;
    }
    if (f->rotated || r->request_time - f->rec->last_seen >= touch_every()) {
        char cookie[EID_SESSION_COOKIE_LEN + 1];
        if (session_touch(r, f) < 0)
            return EID_TRY_ABSENT;
        /* the kept copy learns the new last use (and store key) */
        eid_session_cookie_value(f->id, cookie);
        conn_session_put(r, f, cookie, eid_session_vhost(r));
    }
    st->session = f;
    f->rec->id->method = EID_METHOD_OIDC;
    /* Below the location's level: a browser logs in again at it (its
     * session stays until that login completes); an API client is refused. */
    if (d->login_loa && f->rec->id->loa < d->login_loa) {
        if (eid_login_may_redirect(r)) {
            st->status = eid_login_redirect(r, d, d->login_loa);
            return EID_TRY_REFUSED;
        }
        eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_INFO, "EID08206",
                   apr_psprintf(r->pool, "the session's level of assurance %d is below "
                                "EidLoginLoA %d", f->rec->id->loa, d->login_loa));
        return eid_try_refused(st, HTTP_FORBIDDEN);
    }
    if (eid_dir_for(r, d, st, &dir))
        return EID_TRY_REFUSED;
    if (!(*id = kept_identity(r, f, dir, &st->memo))) {
        *id = f->rec->id;
        eid_dir_apply(r->pool, dir, *id);
    }
    return EID_TRY_OK;
}

eid_store_rc_e eid_session_create(request_rec *r, const char *provider,
                                  const eid_oidc_login_t *lg)
{
    eid_store_t *store = eid_login_g->store;
    const char *vhost = eid_session_vhost(r);
    eid_session_rec_t rec;
    unsigned char id[EID_SESSION_ID_LEN], *sealed;
    char cookie[EID_SESSION_COOKIE_LEN + 1], csrf[EID_SESSION_COOKIE_LEN + 1], skey[48];
    apr_size_t slen;
    apr_interval_time_t ttl = eid_login_g->max_age;
    eid_store_rc_e rc;

    /* Why a new id at every login, never the one the browser sent: an
     * attacker who planted a cookie (session fixation) must not find it
     * logged in. */
    if (eid_session_new_id(id) != APR_SUCCESS || eid_session_new_token(csrf) != APR_SUCCESS ||
        eid_session_store_key(eid_login_g->keys, 0, vhost, id, skey) != 0)
        return EID_STORE_ERROR;
    memset(&rec, 0, sizeof(rec));
    rec.id = lg->id;
    rec.id->method = EID_METHOD_OIDC;
    rec.provider = provider;
    rec.sid = lg->sid;
    rec.sub = lg->sub;
    rec.id_token = lg->id_token;
    rec.csrf = csrf;
    rec.created = rec.last_seen = r->request_time;
    rec.expires = r->request_time + ttl;
    /* the credential's end is the session's, not the ID token's */
    rec.id->expires = rec.expires;
    if (eid_session_seal(r->pool, eid_login_g->keys, bind_of(r->pool, skey, vhost), &rec,
                         &sealed, &slen) != APR_SUCCESS)
        return EID_STORE_ERROR;
    /* add, not set: 256 random bits never collide, and if they did the
     * other session must not be overwritten. */
    rc = eid_store_add(store, skey, strlen(skey), sealed, slen, ttl);
    if (rc != EID_STORE_OK)
        return rc == EID_STORE_EXISTS ? EID_STORE_ERROR : rc;
    index_session(r, &rec, skey, ttl);
    eid_session_cookie_value(id, cookie);
    eid_cookie_set(r, EID_SESSION_COOKIE, cookie, -1);
    return EID_STORE_OK;
}
