/*
 * mod_eid_rev_test.c - TEST ONLY (built by `make build/mod_eid_rev_test.so`
 * for tests/httpd/test_revocation_share.py, never installed): reads and
 * writes mod_auth_eid's OWN session store (EidSessionStore) from HTTP
 * requests, so that a test can look at a shared revocation answer and
 * tamper with it as someone else with write access to a Redis would.
 *
 * It has no store code of its own: eid_login_g and eid_store_* are
 * mod_auth_eid.so's (httpd loads modules RTLD_GLOBAL; load this one after
 * it).  Every response carries X-Eid-Pid: the process that served it.
 *
 *   <Location /revtest> SetHandler eid-rev-test </Location>
 *   GET /revtest?op=get&key=HEX             -> "<rc>\n<value as hex>"
 *   GET /revtest?op=set&key=HEX&val=HEX&ttl_ms=N -> "<rc>\n"
 * A malformed request: 400.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include "apr_strings.h"

#include <unistd.h>

#include "eid_login_glue.h"

module AP_MODULE_DECLARE_DATA eid_rev_test_module;

static int pid_header(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "X-Eid-Pid",
                   apr_psprintf(r->pool, "%ld", (long)getpid()));
    return DECLINED;
}

static int unhex(apr_pool_t *p, const char *s, unsigned char **out, apr_size_t *len)
{
    apr_size_t n = s ? strlen(s) : 0, i;
    unsigned char *b;

    if (n % 2)
        return -1;
    b = apr_palloc(p, n / 2 + 1);
    for (i = 0; i < n / 2; i++) {
        unsigned int v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        b[i] = (unsigned char)v;
    }
    *out = b;
    *len = n / 2;
    return 0;
}

static const char *arg(request_rec *r, const char *name)
{
    char *q = r->args ? apr_pstrdup(r->pool, r->args) : NULL, *last, *w;
    apr_size_t n = strlen(name);

    for (w = q ? apr_strtok(q, "&", &last) : NULL; w; w = apr_strtok(NULL, "&", &last))
        if (!strncmp(w, name, n) && w[n] == '=')
            return w + n + 1;
    return NULL;
}

static int handler(request_rec *r)
{
    const char *op = arg(r, "op"), *ttl = arg(r, "ttl_ms");
    eid_store_t *st = eid_login_g ? eid_login_g->store : NULL;
    unsigned char *key, *val = NULL;
    apr_size_t klen, vlen = 0, i;
    eid_store_rc_e rc;

    if (!r->handler || strcmp(r->handler, "eid-rev-test"))
        return DECLINED;
    if (!op || !st || unhex(r->pool, arg(r, "key"), &key, &klen) || !klen)
        return HTTP_BAD_REQUEST;
    ap_set_content_type(r, "text/plain");
    if (!strcmp(op, "get")) {
        rc = eid_store_get(st, r->pool, (const char *)key, klen, &val, &vlen);
        ap_rprintf(r, "%s\n", eid_store_rc_str(rc));
        for (i = 0; i < vlen; i++)
            ap_rprintf(r, "%02x", val[i]);
        return OK;
    }
    if (!strcmp(op, "set") && ttl && !unhex(r->pool, arg(r, "val"), &val, &vlen)) {
        rc = eid_store_set(st, (const char *)key, klen, val, vlen,
                           (apr_interval_time_t)apr_atoi64(ttl) * 1000);
        ap_rprintf(r, "%s\n", eid_store_rc_str(rc));
        return OK;
    }
    return HTTP_BAD_REQUEST;
}

static void register_hooks(apr_pool_t *p)
{
    ap_hook_post_read_request(pid_header, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(handler, NULL, NULL, APR_HOOK_MIDDLE);
}

/* Not AP_DECLARE_MODULE: mod_auth_eid.h (via eid_login_glue.h) already names
 * mod_auth_eid's log index. */
module AP_MODULE_DECLARE_DATA eid_rev_test_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks,
#if defined(AP_MODULE_FLAG_NONE)
    AP_MODULE_FLAG_NONE
#endif
};
