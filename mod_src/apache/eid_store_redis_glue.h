/*
 * eid_store_redis_glue.h - `EidSessionStore redis://... | unix:... |
 * sentinel://...` in httpd: the directive's redis branch, the store made in
 * post_config, the child's set-up.  docs/redis.md.
 */
#ifndef EID_STORE_REDIS_GLUE_H
#define EID_STORE_REDIS_GLUE_H

#include "httpd.h"
#include "http_config.h"

#include "eid/eid_store.h"

/* Does the EidSessionStore argument name a redis store? */
int eid_redis_glue_is_spec(const char *spec);
/* The directive's redis branch: argv[0] the location, the rest options;
 * NULL or the error (httpd adds file and line).  Kept until cmd->pool goes. */
const char *eid_redis_glue_define(cmd_parms *cmd, int argc, char *const argv[]);
/* Was a redis store configured (in this configuration pass)? */
int eid_redis_glue_defined(void);
/* post_config: the store (no connection yet), from pconf; NULL on failure. */
eid_store_t *eid_redis_glue_post_config(apr_pool_t *pconf, server_rec *s);
/* child_init: drop inherited connections, start the invalidation thread. */
void eid_redis_glue_child_init(apr_pool_t *pchild, server_rec *s);

#endif
