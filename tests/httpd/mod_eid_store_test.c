/*
 * mod_eid_store_test.c - TEST ONLY (built into build/ by `make`
 * build/mod_eid_store_test.so for tests/httpd/test_store_shm.py, never
 * installed): drives the "shm" store (eid_store_socache.c) from HTTP
 * requests, so that a real httpd with several children and threads can be
 * raced from outside.
 *
 *   EidStoreTest shm[:bytes]             (server config: defines the store)
 *   <Location /store> SetHandler eid-store-test </Location>
 *   GET /store?op=get|set|add|del|touch|idx_add|idx_take
 *             &key=..&val=..&member=..&ttl_ms=..
 * Arguments are percent-decoded byte for byte (%00, %0d%0a, "+" stays "+").
 * Answer: 200, text/plain, header X-Store-Pid (the serving process), body
 * "<rc>\n" then for get the value's raw bytes, for idx_take the members,
 * each percent-encoded on a line of its own.  A malformed request: 400.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include "apr_hash.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include <unistd.h>

#include "eid_store_socache.h"

module AP_MODULE_DECLARE_DATA eid_store_test_module;

typedef struct {
    eid_store_socache_t *sc; /* pconf; NULL when EidStoreTest is absent */
} test_conf_t;

static void *create_srv(apr_pool_t *p, server_rec *s)
{
    return apr_pcalloc(p, sizeof(test_conf_t));
}

static const char *set_store(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    test_conf_t *c = ap_get_module_config(cmd->server->module_config, &eid_store_test_module);
    return eid_store_socache_define(cmd->pool, arg, &c->sc);
}

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    return eid_store_socache_pre_config(pconf) == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    test_conf_t *c = ap_get_module_config(s->module_config, &eid_store_test_module);
    if (!c->sc)
        return OK;
    return eid_store_socache_post_config(c->sc, pconf, ptemp, s) == APR_SUCCESS
               ? OK
               : HTTP_INTERNAL_SERVER_ERROR;
}

static void child_init(apr_pool_t *pchild, server_rec *s)
{
    test_conf_t *c = ap_get_module_config(s->module_config, &eid_store_test_module);
    if (c->sc)
        eid_store_socache_child_init(c->sc, pchild, s);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode [s, s+n) into p; -1 on a bad escape. */
static long decode(apr_pool_t *p, const char *s, apr_size_t n, char **out)
{
    char *d = apr_palloc(p, n + 1);
    apr_size_t o = 0;
    for (apr_size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            d[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = 0;
    *out = d;
    return (long)o;
}

typedef struct {
    const char *v;
    apr_size_t n;
} arg_t;

/* The query's arguments by name (the last of a name wins). */
static int parse_args(request_rec *r, apr_hash_t *h)
{
    const char *a = r->args ? r->args : "";
    while (*a) {
        const char *amp = strchr(a, '&');
        apr_size_t len = amp ? (apr_size_t)(amp - a) : strlen(a);
        const char *eq = memchr(a, '=', len);
        if (!eq)
            return -1;
        char *name, *val;
        if (decode(r->pool, a, (apr_size_t)(eq - a), &name) < 0)
            return -1;
        long vn = decode(r->pool, eq + 1, len - (apr_size_t)(eq - a) - 1, &val);
        if (vn < 0)
            return -1;
        arg_t *x = apr_palloc(r->pool, sizeof(*x));
        x->v = val;
        x->n = (apr_size_t)vn;
        apr_hash_set(h, name, APR_HASH_KEY_STRING, x);
        a += len;
        if (*a == '&')
            a++;
    }
    return 0;
}

static void put_escaped(request_rec *r, const char *m)
{
    for (; *m; m++) {
        unsigned char c = (unsigned char)*m;
        if (apr_isalnum(c) || c == ':' || c == '-' || c == '_' || c == '.')
            ap_rputc(c, r);
        else
            ap_rprintf(r, "%%%02X", c);
    }
    ap_rputc('\n', r);
}

static int handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, "eid-store-test") != 0)
        return DECLINED;
    test_conf_t *c = ap_get_module_config(r->server->module_config, &eid_store_test_module);
    if (!c->sc)
        return HTTP_INTERNAL_SERVER_ERROR;
    eid_store_t *s = eid_store_socache_store(c->sc);
    apr_hash_t *h = apr_hash_make(r->pool);
    if (parse_args(r, h) != 0)
        return HTTP_BAD_REQUEST;
    arg_t *op = apr_hash_get(h, "op", APR_HASH_KEY_STRING);
    arg_t *key = apr_hash_get(h, "key", APR_HASH_KEY_STRING);
    arg_t *val = apr_hash_get(h, "val", APR_HASH_KEY_STRING);
    arg_t *mem = apr_hash_get(h, "member", APR_HASH_KEY_STRING);
    arg_t *ttl_ms = apr_hash_get(h, "ttl_ms", APR_HASH_KEY_STRING);
    apr_interval_time_t ttl = ttl_ms ? (apr_interval_time_t)apr_atoi64(ttl_ms->v) * 1000
                                     : apr_time_from_sec(60);
    if (!op || !key)
        return HTTP_BAD_REQUEST;
    /* an absent value is NULL, so that the wrappers' checks are reachable */
    const unsigned char *v = val ? (const unsigned char *)val->v : NULL;
    apr_size_t vn = val ? val->n : 0;
    unsigned char *got = NULL;
    apr_size_t gotlen = 0;
    apr_array_header_t *members = NULL;
    eid_store_rc_e rc;
    if (!strcmp(op->v, "get"))
        rc = eid_store_get(s, r->pool, key->v, key->n, &got, &gotlen);
    else if (!strcmp(op->v, "set"))
        rc = eid_store_set(s, key->v, key->n, v, vn, ttl);
    else if (!strcmp(op->v, "add"))
        rc = eid_store_add(s, key->v, key->n, v, vn, ttl);
    else if (!strcmp(op->v, "del"))
        rc = eid_store_del(s, key->v, key->n);
    else if (!strcmp(op->v, "touch"))
        rc = eid_store_touch(s, key->v, key->n, ttl);
    else if (!strcmp(op->v, "idx_add"))
        rc = eid_store_index_add(s, key->v, key->n, mem ? mem->v : NULL, mem ? mem->n : 0, ttl);
    else if (!strcmp(op->v, "idx_take"))
        rc = eid_store_index_take(s, r->pool, key->v, key->n, &members);
    else
        return HTTP_BAD_REQUEST;
    ap_set_content_type(r, "text/plain");
    apr_table_setn(r->headers_out, "X-Store-Pid", apr_psprintf(r->pool, "%ld", (long)getpid()));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rprintf(r, "%s\n", eid_store_rc_str(rc));
    if (got)
        ap_rwrite(got, (int)gotlen, r);
    for (int i = 0; members && i < members->nelts; i++)
        put_escaped(r, APR_ARRAY_IDX(members, i, const char *));
    return OK;
}

static const command_rec cmds[] = {
    AP_INIT_TAKE1("EidStoreTest", set_store, NULL, RSRC_CONF,
                  "test only: shm[:bytes] - the store the eid-store-test handler drives"),
    {NULL}};

static void register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(eid_store_test) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, create_srv, NULL, cmds, register_hooks,
#if defined(AP_MODULE_FLAG_NONE)
    AP_MODULE_FLAG_NONE
#endif
};
