/*
 * eid_store_redis_glue.c - the redis session store in httpd (see
 * eid_store_redis_glue.h and docs/redis.md).
 *
 * Shared state: `conf` and `store` below, written only while the
 * configuration is read and in post_config / child_init (one thread), read
 * afterwards; both live in pconf, and a pconf cleanup clears them so that a
 * graceful restart starts from nothing.
 */
#include "eid_store_redis_glue.h"
#include "mod_auth_eid.h"

#include "apr_strings.h"
#include "http_log.h"

#include "eid/eid_store_redis.h"

static const eid_redis_conf_t *conf;
static eid_store_t *store;

static apr_status_t reset(void *data)
{
    conf = NULL;
    store = NULL;
    return APR_SUCCESS;
}

int eid_redis_glue_is_spec(const char *spec)
{
    return spec && (strncmp(spec, "redis://", 8) == 0 || strncmp(spec, "unix:", 5) == 0 ||
                    strncmp(spec, "sentinel://", 11) == 0);
}

const char *eid_redis_glue_define(cmd_parms *cmd, int argc, char *const argv[])
{
    eid_redis_conf_t *c;
    const char *err = eid_redis_conf_parse(cmd->pool, argv[0], argc - 1,
                                           (const char *const *)argv + 1, &c);
    if (err)
        return apr_pstrcat(cmd->pool, "EidSessionStore: ", err, NULL);
    if (!conf)
        apr_pool_cleanup_register(cmd->pool, NULL, reset, apr_pool_cleanup_null);
    conf = c;
    return NULL;
}

int eid_redis_glue_defined(void)
{
    return conf != NULL;
}

eid_store_t *eid_redis_glue_post_config(apr_pool_t *pconf, server_rec *s)
{
    if (!conf)
        return NULL;
    if (!store && !(store = eid_store_redis_create(pconf, conf)))
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "EID06320 redis session store: cannot "
                     "create its mutex");
    return store;
}

void eid_redis_glue_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (!store)
        return;
    apr_status_t rv = eid_store_redis_child_init(store, pchild);
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "EID06321 redis session store: cannot start "
                     "the cache's invalidation thread: the cache stays off in this process");
}
