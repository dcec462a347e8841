/*
 * eid_export.c - hand the identity to the backend, and make sure nobody
 * else can.
 *
 * Inbound headers whose names are ones the module writes are removed for
 * every request, before any other module looks at them (post_read_request):
 * the comparison ignores case and treats '-' and '_' as equal, because CGI,
 * FastCGI and most frameworks map both to the same variable.  Only the exact
 * names are removed (prefix + attribute, prefix + Request-Id), never "every
 * header starting with the prefix": a prefix such as "Content-" must not cost
 * other requests their Content-Type.  A prefix can only be set where it is
 * known at that moment - in the server configuration, never in .htaccess - and
 * each server scrubs the names of its own prefixes and the main server's.
 *
 * Subrequests and internal redirects (rule, see docs/architecture.md):
 * they inherit nothing from the request they belong to except
 *  - the request id (kept in the root request's state, in the root's pool);
 *  - for a subrequest that httpd runs with the main request's very
 *    configuration (it then skips authentication and copies r->user), the
 *    main request's identity, read-only;
 * a subrequest or redirect into another eid location authenticates on its own
 * and exports what that location's configuration says; one into a location
 * without AuthType eid gets no identity.  Whatever the copied tables carry of
 * ours (EID_* / REDIRECT_EID_* variables, identity headers) is removed first.
 */
#include "mod_auth_eid.h"

#include "apr_lib.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http_main.h"
#include "http_request.h"

/* Names for the default prefix, built in post_config (one thread) in pconf
 * and read-only while requests run. */
static const char *env_names[EID_ATTR__COUNT];
static const char **default_header_names;
static apr_hash_t *default_scrub;

/* Longest header name that can be ours: prefixes are at most 64 bytes. */
#define NAME_MAX_LEN 128

/* `name` lower-cased with '_' as '-', into buf; 0 if it is too long. */
static int norm(const char *name, char buf[NAME_MAX_LEN])
{
    size_t i;
    for (i = 0; name[i]; i++) {
        char c;
        if (i + 1 >= NAME_MAX_LEN)
            return 0;
        c = apr_tolower(name[i]);
        buf[i] = c == '_' ? '-' : c;
    }
    buf[i] = '\0';
    return 1;
}

static void add_names(apr_hash_t *h, apr_pool_t *p, const char *prefix)
{
    char buf[NAME_MAX_LEN];
    int i;
    for (i = 0; i <= EID_ATTR__COUNT; i++) {
        const char *n = apr_pstrcat(p, prefix,
                                    i < EID_ATTR__COUNT ? eid_attr_desc((eid_attr_e)i)->header
                                                        : "Request-Id", NULL);
        if (norm(n, buf))
            apr_hash_set(h, apr_pstrdup(p, buf), APR_HASH_KEY_STRING, "");
    }
}

void eid_header_prefix_register(server_rec *s, apr_pool_t *p, const char *prefix)
{
    eid_srv_conf_t *c = ap_get_module_config(s->module_config, &auth_eid_module);
    if (!c->own_header_names)
        c->own_header_names = apr_hash_make(p);
    add_names(c->own_header_names, p, prefix);
}

static void ensure_names(apr_pool_t *p)
{
    int i;
    if (env_names[0])
        return;
    for (i = 0; i < EID_ATTR__COUNT; i++)
        env_names[i] = apr_pstrcat(p, EID_ENV_PREFIX, eid_attr_desc((eid_attr_e)i)->env,
                                   NULL);
}

/* Called from post_config: names for the default prefix, built once. */
void eid_export_init(apr_pool_t *pconf)
{
    int i;
    for (i = 0; i < EID_ATTR__COUNT; i++)
        env_names[i] = NULL;
    ensure_names(pconf);
    default_header_names = eid_header_names(pconf, EID_DEFAULT_HEADER_PREFIX);
    default_scrub = apr_hash_make(pconf);
    add_names(default_scrub, pconf, EID_DEFAULT_HEADER_PREFIX);
}

/* Could the module write a header called `name` for a request of server s? */
static int is_ours(const server_rec *s, const char *name)
{
    const eid_srv_conf_t *c = ap_get_module_config(s->module_config, &auth_eid_module);
    const eid_srv_conf_t *m =
        ap_get_module_config(ap_server_conf->module_config, &auth_eid_module);
    char buf[NAME_MAX_LEN];
    if (!norm(name, buf))
        return 0;
    return apr_hash_get(default_scrub, buf, APR_HASH_KEY_STRING) ||
           (c->own_header_names && apr_hash_get(c->own_header_names, buf,
                                                APR_HASH_KEY_STRING)) ||
           (m->own_header_names && apr_hash_get(m->own_header_names, buf,
                                                APR_HASH_KEY_STRING));
}

/* Remove our header names from `t`; log them when `log` (client input). */
static void scrub_table(request_rec *r, apr_table_t *t, int log)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *doomed = NULL;
    int i;

    for (i = 0; i < arr->nelts; i++) {
        if (!e[i].key || !is_ours(r->server, e[i].key))
            continue;
        if (!doomed)
            doomed = apr_array_make(r->pool, 2, sizeof(const char *));
        APR_ARRAY_PUSH(doomed, const char *) = e[i].key;
    }
    for (i = 0; doomed && i < doomed->nelts; i++) {
        if (log)
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "EID01201: removed inbound header that collides with the "
                          "identity headers: %.60s",
                          APR_ARRAY_IDX(doomed, i, const char *));
        apr_table_unset(t, APR_ARRAY_IDX(doomed, i, const char *));
    }
}

int eid_scrub_headers(request_rec *r)
{
    scrub_table(r, r->headers_in, 1);
    return DECLINED;
}

/* Remove EID_* variables we did not set (e.g. copied by SetEnvIf from a
 * client header), and the REDIRECT_EID_* copies httpd makes of ours for an
 * internal redirect, so the backend can trust every EID_ variable it sees. */
static void scrub_env(request_rec *r)
{
    const apr_array_header_t *arr = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;
    for (i = arr->nelts - 1; i >= 0; i--) {
        const char *k = e[i].key;
        if (!k)
            continue;
        while (!strncasecmp(k, "REDIRECT_", 9))
            k += 9;
        if (!strncasecmp(k, EID_ENV_PREFIX, sizeof(EID_ENV_PREFIX) - 1))
            apr_table_unset(r->subprocess_env, e[i].key);
    }
}

/* The encoded values of one identity.  An identity that several requests
 * share (a certificate's on its connection, a kept browser session's) has a
 * memo (eid_id_memo_t): its encoding of every attribute is made once, there,
 * for whichever location the next request is in, instead of ~30 look-ups
 * and scans per request.  Any other identity is this request's: what its
 * location exports is encoded, in the request pool. */
typedef struct {
    const char *env[EID_ATTR__COUNT]; /* NULL: absent */
    const char *hdr[EID_ATTR__COUNT];
} export_cache_t;

static const export_cache_t *encoded(request_rec *r, const eid_dir_conf_t *d,
                                     const eid_identity_t *id, eid_id_memo_t *memo, int env,
                                     int hdr)
{
    export_cache_t *ec;
    apr_pool_t *p = r->pool;
    int i, all = 0;

    if (memo && memo->id == id && memo->pool) {
        if (memo->export)
            return memo->export;
        p = memo->pool;
        all = 1;
    }
    ec = apr_pcalloc(p, sizeof(*ec));
    for (i = 0; i < EID_ATTR__COUNT; i++) {
        const char *v;
        if (!all && d->export_mask_set && !d->export_mask[i])
            continue;
        v = eid_attr_value(p, id, (eid_attr_e)i, eid_g->pseudonym_key,
                           eid_g->pseudonym_key_len);
        if (!v)
            continue;
        /* Values come from verified credentials, but names may hold any
         * Unicode and claims any byte: CR, LF and NUL never pass. */
        if (all || env)
            ec->env[i] = eid_value_encode(p, v, 0);
        if (all || hdr)
            ec->hdr[i] = eid_value_encode(p, v, 1);
    }
    if (all)
        memo->export = ec;
    return ec;
}

/* A subrequest's environment starts as a copy of its main request's, where
 * mod_include, for one, has put REMOTE_USER and AUTH_TYPE; an internal
 * redirect gets them as REDIRECT_*.  Where this request has no identity of
 * ours, the root's user (authenticated by us) is removed from them. */
static void scrub_inherited_user(request_rec *r, const request_rec *root)
{
    const apr_array_header_t *arr = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;
    for (i = arr->nelts - 1; i >= 0; i--) {
        const char *k = e[i].key;
        if (!k || !e[i].val)
            continue;
        while (!strncasecmp(k, "REDIRECT_", 9))
            k += 9;
        if ((!strcasecmp(k, "REMOTE_USER") && root->user && !strcmp(e[i].val, root->user)) ||
            (!strcasecmp(k, "AUTH_TYPE") && !strcasecmp(e[i].val, EID_AUTH_TYPE)))
            apr_table_unset(r->subprocess_env, e[i].key);
    }
}

/* The identity this request may export: its own, or - for a subrequest that
 * httpd runs with the main request's configuration, skipping authentication -
 * the main request's.  Never one of a location without AuthType eid. */
static const eid_identity_t *identity_for(request_rec *r, eid_id_memo_t **memo)
{
    const eid_req_t *st;
    *memo = NULL;
    if (!eid_is_eid_location(r))
        return NULL;
    /* (a state that only records fixed_cfg or the root's request id is not
     * an authentication of this request) */
    if ((st = eid_req_get(r, 0)) && st->tried) {
        if (st->outcome != EID_TRY_OK)
            return NULL;
        *memo = st->memo;
        return st->id;
    }
    if (r->main && !r->prev && r->per_dir_config == r->main->per_dir_config &&
        (st = eid_req_get(r->main, 0)) && st->outcome == EID_TRY_OK && st->id &&
        r->user == r->main->user) {
        *memo = st->memo;
        return st->id;
    }
    return NULL;
}

/* httpd runs an internal redirect whose configuration equals its original's
 * without authentication and copies r->user (and the auth type).  When the
 * original was refused - it never reached fixups, which only run once access
 * is granted - the error document must not see the refused user as
 * REMOTE_USER/AUTH_TYPE: they are dropped from the redirect (the original's
 * audit record keeps the user). */
static void drop_refused_user(request_rec *r)
{
    const eid_req_t *pst;
    if (!r->prev || !r->user || r->user != r->prev->user ||
        r->per_dir_config != r->prev->per_dir_config ||
        ((pst = eid_req_get(r, 0)) && pst->tried))
        return;
    pst = eid_req_get(r->prev, 0);
    if (pst && pst->tried && pst->id && !pst->fixed_cfg) {
        r->user = NULL;
        r->ap_auth_type = NULL;
    }
}

int eid_fixups_final(request_rec *r)
{
    eid_req_t *st = eid_req_get(r, 0);
    /* mod_dir's fast redirect (ap_internal_fast_redirect) gave r the index
     * subrequest's per_dir_config after eid_fixups had exported under the
     * directory's, and overlaid the subrequest's variables: what was exported
     * for the old configuration is removed, the export is done again for the
     * one that now serves the request (no identity where it has no AuthType
     * eid, only the attributes it exports). */
    if (!st || !st->fixed_cfg || st->fixed_cfg == r->per_dir_config)
        return DECLINED;
    scrub_table(r, r->headers_in, 0);
    return eid_fixups(r);
}

int eid_fixups(request_rec *r)
{
    const eid_dir_conf_t *d;
    const eid_identity_t *id;
    request_rec *root = eid_root_request(r);
    eid_req_t *own = eid_req_get(r, 0);
    const eid_req_t *rst;
    const export_cache_t *ec = NULL;
    eid_id_memo_t *memo;
    const char **hnames;
    int env, hdr, i;
    /* A subrequest or redirect starts with copies of (or, for headers_in of a
     * redirect, the very table of) the main request's tables, which may hold
     * our values: they are removed first, then set. */
    void (*put)(apr_table_t *, const char *, const char *) =
        root != r ? apr_table_setn : apr_table_addn;

    if (own)
        own->fixed_cfg = r->per_dir_config;
    drop_refused_user(r);
    scrub_env(r);
    id = identity_for(r, &memo);
    rst = eid_req_get(root, 0);
    if (root != r) {
        /* httpd gives a subrequest its main request's headers_in table itself
         * (and a redirect the previous request's): never write ours into it -
         * values of this request's pool would outlive it there. */
        r->headers_in = apr_table_copy(r->pool, r->headers_in);
        scrub_table(r, r->headers_in, 0);
        if (!id && rst && rst->id)
            scrub_inherited_user(r, root);
    }
    /* The request id goes with an identity, and into every subrequest or
     * redirect of a request the module authenticated (an error page can show
     * it; it matches the audit record). */
    if (!id && !(root != r && rst && rst->tried))
        return DECLINED;
    d = ap_get_module_config(r->per_dir_config, &auth_eid_module);
    env = eid_dir_export_env(d);
    hdr = eid_dir_export_headers(d);
    if (!env && !hdr)
        return DECLINED;
    /* What is put now must be taken back should a fast redirect change the
     * configuration later (eid_fixups_final) - also for a subrequest that
     * shares its main request's identity and has no state of its own. */
    if (!own)
        own = eid_req_get(r, 1);
    own->fixed_cfg = r->per_dir_config;
    hnames = d->header_names ? d->header_names : default_header_names;
    if (id)
        ec = encoded(r, d, id, memo, env, hdr);
    for (i = 0; ec && i < EID_ATTR__COUNT; i++) {
        if (d->export_mask_set && !d->export_mask[i])
            continue;
        if (env && ec->env[i])
            put(r->subprocess_env, env_names[i], ec->env[i]);
        if (hdr && ec->hdr[i])
            put(r->headers_in, hnames[i], ec->hdr[i]);
    }
    if (env)
        put(r->subprocess_env, EID_ENV_PREFIX "REQUEST_ID", eid_request_id(r));
    if (hdr)
        put(r->headers_in,
            d->header_prefix ? d->request_id_header : EID_DEFAULT_HEADER_PREFIX "Request-Id",
            eid_request_id(r));
    return DECLINED;
}
