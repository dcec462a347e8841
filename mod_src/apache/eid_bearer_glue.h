/*
 * eid_bearer_glue.h - bearer-token directives and request handling.
 */
#ifndef EID_BEARER_GLUE_H
#define EID_BEARER_GLUE_H

#include "mod_auth_eid.h"

/* Where a provider was first configured, for start-up errors. */
typedef struct {
    struct eid_provider *pv;
    const char *file;
    int line;
} eid_provider_def_t;

const char *eid_set_provider(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
const char *eid_set_token_cache(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
const char *eid_set_bearer_providers(cmd_parms *cmd, void *dc, int argc,
                                     char *const argv[]);

#define EID_BEARER_SERVER_CMDS                                                          \
    AP_INIT_TAKE_ARGV("EidProvider", eid_set_provider, NULL, RSRC_CONF,                  \
                      "<name> key=value ... - an OpenID Provider / token issuer whose "  \
                      "access tokens are accepted (issuer=, audience=, keys ...)"),      \
    AP_INIT_TAKE_ARGV("EidTokenCache", eid_set_token_cache, NULL, RSRC_CONF,             \
                      "<entries>|off [max_ttl=seconds] - per-process cache of validated " \
                      "tokens (default 10000 entries, 300 s)"),

const char *eid_set_bearer_audience(cmd_parms *cmd, void *dc, int argc, char *const argv[]);

#define EID_BEARER_DIR_CMDS                                                              \
    AP_INIT_TAKE_ARGV("EidBearerAudience", eid_set_bearer_audience, NULL,                \
                      OR_AUTHCFG | RSRC_CONF,                                            \
                      "<aud> ... - a token must carry one of these aud values here "     \
                      "(default: any audience of its provider)"),                        \
    AP_INIT_TAKE_ARGV("EidBearerProviders", eid_set_bearer_providers, NULL,              \
                      OR_AUTHCFG | RSRC_CONF,                                            \
                      "<provider> ... - token providers accepted here (default: the "   \
                      "only one, if exactly one is defined)"),

eid_try_e eid_try_bearer(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                   eid_identity_t **id);
/* Set WWW-Authenticate: Bearer [realm] [error, error_description]. */
void eid_bearer_challenge(request_rec *r, const eid_dir_conf_t *d, const char *error,
                          const char *description);
int eid_bearer_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                            server_rec *s);
int eid_bearer_post_config(apr_pool_t *pconf, server_rec *s);
void eid_bearer_child_init(apr_pool_t *pchild, server_rec *s);

#endif
