/*
 * eid_bearer_glue.h - bearer-token directives and request handling.
 */
#ifndef EID_BEARER_GLUE_H
#define EID_BEARER_GLUE_H

#include "mod_auth_eid.h"

#define EID_BEARER_SERVER_CMDS
#define EID_BEARER_DIR_CMDS

int eid_try_bearer(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                   eid_identity_t **id);
void eid_bearer_challenge(request_rec *r, const eid_dir_conf_t *d, const char *error,
                          const char *description);
int eid_bearer_post_config(apr_pool_t *pconf, server_rec *s);
void eid_bearer_child_init(apr_pool_t *pchild, server_rec *s);

#endif
