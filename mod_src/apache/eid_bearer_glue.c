/* interim: replaced by the bearer glue when the token core lands */
#include "eid_bearer_glue.h"
int eid_try_bearer(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                   eid_identity_t **id) { return EID_TRY_ABSENT; }
void eid_bearer_challenge(request_rec *r, const eid_dir_conf_t *d, const char *error,
                          const char *description) {}
int eid_bearer_post_config(apr_pool_t *pconf, server_rec *s) { return OK; }
void eid_bearer_child_init(apr_pool_t *pchild, server_rec *s) {}
