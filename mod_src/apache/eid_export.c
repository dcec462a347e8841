/*
 * eid_export.c - hand the identity to the backend, and make sure nobody
 * else can.
 *
 * Inbound headers whose names collide with ours are removed for every
 * request, before any other module looks at them (post_read_request): the
 * comparison ignores case and treats '-' and '_' as equal, because CGI,
 * FastCGI and most frameworks map both to the same variable.  Subrequests and
 * internal redirects copy the already-scrubbed table.
 */
#include "mod_auth_eid.h"

#include "apr_lib.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http_request.h"

static const char *env_names[EID_ATTR__COUNT];
static const char **default_header_names;

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
}

/* Does header `name` start with `prefix`, ignoring case and '-' vs '_'? */
static int collides(const char *name, const char *prefix)
{
    for (; *prefix; name++, prefix++) {
        char a = apr_tolower(*name), b = apr_tolower(*prefix);
        if (a == '_')
            a = '-';
        if (b == '_')
            b = '-';
        if (a != b || !*name)
            return 0;
    }
    return 1;
}

int eid_scrub_headers(request_rec *r)
{
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    const apr_array_header_t *prefixes = eid_g->header_prefixes;
    apr_array_header_t *doomed = NULL;
    int i, j;

    for (i = 0; i < arr->nelts; i++) {
        if (!e[i].key)
            continue;
        for (j = 0; j < prefixes->nelts; j++)
            if (collides(e[i].key, APR_ARRAY_IDX(prefixes, j, const char *))) {
                if (!doomed)
                    doomed = apr_array_make(r->pool, 2, sizeof(const char *));
                APR_ARRAY_PUSH(doomed, const char *) = e[i].key;
                break;
            }
    }
    for (i = 0; doomed && i < doomed->nelts; i++) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "EID01201: removed inbound header that collides with the "
                      "identity headers: %.60s",
                      APR_ARRAY_IDX(doomed, i, const char *));
        apr_table_unset(r->headers_in, APR_ARRAY_IDX(doomed, i, const char *));
    }
    return DECLINED;
}

/* Remove EID_* variables we did not set (e.g. copied by SetEnvIf from a
 * client header) so the backend can trust every EID_ variable it sees. */
static void scrub_env(request_rec *r)
{
    const apr_array_header_t *arr = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;
    for (i = arr->nelts - 1; i >= 0; i--)
        if (e[i].key && !strncasecmp(e[i].key, EID_ENV_PREFIX, sizeof(EID_ENV_PREFIX) - 1))
            apr_table_unset(r->subprocess_env, e[i].key);
}

/* The encoded values of one identity.  A certificate identity lives as long
 * as its connection, so keep-alive requests reuse the encoding instead of
 * redoing ~30 look-ups and scans per request. */
typedef struct {
    const eid_identity_t *id;
    const char *env[EID_ATTR__COUNT]; /* NULL: absent */
    const char *hdr[EID_ATTR__COUNT];
} export_cache_t;

static const export_cache_t *encoded(request_rec *r, const eid_dir_conf_t *d,
                                     const eid_identity_t *id, int env, int hdr)
{
    conn_rec *c = r->connection;
    export_cache_t *ec = NULL;
    apr_pool_t *p = r->pool;
    int i, all = 0;

    if (id->method == EID_METHOD_CERT) {
        /* the identity is in the connection pool: so is its encoding, of
         * every attribute, for whichever location the next request is in */
        apr_pool_userdata_get((void **)&ec, "eid_export", c->pool);
        if (ec && ec->id == id)
            return ec;
        p = c->pool;
        all = 1;
        if (!ec) {
            ec = apr_pcalloc(p, sizeof(*ec));
            apr_pool_userdata_setn(ec, "eid_export", NULL, c->pool);
        }
    }
    else {
        /* a token's identity is this request's: encode what it exports */
        ec = apr_pcalloc(p, sizeof(*ec));
    }
    ec->id = id;
    for (i = 0; i < EID_ATTR__COUNT; i++) {
        const char *v;
        ec->env[i] = ec->hdr[i] = NULL;
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
    return ec;
}

int eid_fixups(request_rec *r)
{
    const eid_dir_conf_t *d;
    eid_req_t *st = eid_req_get(r, 0);
    const export_cache_t *ec;
    const char **hnames;
    const char *rid;
    int env, hdr, i;
    /* A subrequest starts with copies of the main request's tables, which
     * may hold our values already: replace there, append elsewhere (the
     * tables were scrubbed, so appending cannot duplicate). */
    void (*put)(apr_table_t *, const char *, const char *) =
        r->main ? apr_table_setn : apr_table_addn;

    /* A subrequest with the main request's configuration shares its user.
     * An internal redirect does not inherit: an ErrorDocument after a denial
     * must not receive the identity of the user who was just refused, and a
     * redirect into a protected location authenticates on its own. */
    if (!st && r->main)
        st = eid_req_get(r->main, 0);
    scrub_env(r);
    if (!st || !st->id)
        return DECLINED;
    d = ap_get_module_config(r->per_dir_config, &auth_eid_module);
    env = eid_dir_export_env(d);
    hdr = eid_dir_export_headers(d);
    if (!env && !hdr)
        return DECLINED;
    ec = encoded(r, d, st->id, env, hdr);
    hnames = d->header_names ? d->header_names : default_header_names;
    for (i = 0; i < EID_ATTR__COUNT; i++) {
        if (d->export_mask_set && !d->export_mask[i])
            continue;
        if (env && ec->env[i])
            put(r->subprocess_env, env_names[i], ec->env[i]);
        if (hdr && ec->hdr[i])
            put(r->headers_in, hnames[i], ec->hdr[i]);
    }
    rid = eid_request_id(r, st);
    if (env)
        put(r->subprocess_env, EID_ENV_PREFIX "REQUEST_ID", rid);
    if (hdr)
        put(r->headers_in,
            d->header_prefix ? d->request_id_header : EID_DEFAULT_HEADER_PREFIX "Request-Id",
            rid);
    return DECLINED;
}
