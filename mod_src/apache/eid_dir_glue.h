/*
 * eid_dir_glue.h - the organisation directory in httpd: EidDirectory,
 * EidUseDirectory and the enrichment of identities.
 */
#ifndef EID_DIR_GLUE_H
#define EID_DIR_GLUE_H

#include "mod_auth_eid.h"
#include "eid/eid_directory.h"

const char *eid_set_directory(cmd_parms *cmd, void *dc, const char *name, const char *file);
const char *eid_set_use_directory(cmd_parms *cmd, void *dc, const char *name);

#define EID_DIRECTORY_SERVER_CMDS                                                        \
    AP_INIT_TAKE2("EidDirectory", eid_set_directory, NULL, RSRC_CONF,                    \
                  "<name> <file> - an organisation directory (organisations, groups, "   \
                  "role rules), loaded at start-up"),
#define EID_DIRECTORY_DIR_CMDS                                                           \
    AP_INIT_TAKE1("EidUseDirectory", eid_set_use_directory, NULL, OR_AUTHCFG | RSRC_CONF, \
                  "<name> | none - the directory that enriches identities here "        \
                  "(default: the only one, if exactly one is defined)"),

/*
 * The directory that applies to location `d` into *dir (NULL: none applies).
 * Returns 0, or -1 after refusing the request (500, EID04010) when several
 * directories exist and the location names none (`apachectl -t` refuses that
 * where it can see it, eid_scope.c; .htaccess it cannot).
 */
int eid_dir_for(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                const eid_directory_t **dir);

/*
 * Set id's org_kind, groups and dir_roles from `dir` (arrays in `p`; the
 * strings belong to the directory, which lives in pconf as long as the
 * configuration that serves this process).  `dir` NULL: leaves id as it is.
 */
void eid_dir_apply(apr_pool_t *p, const eid_directory_t *dir, eid_identity_t *id);

/*
 * Make id's enrichment that of `dir` (NULL: none): nothing to do when the
 * identity already records it (a token-cache hit enriched when it was cached),
 * else done now on `id`, which must be the caller's own copy (a cache hit is a
 * shallow copy in the request pool: its pointers may be replaced, never what
 * they point to).
 */
void eid_dir_fit(apr_pool_t *p, const eid_directory_t *dir, eid_identity_t *id);

/* Any defined directory has group / role `name` (for Require arguments);
 * -1 when no directory is defined at all. */
int eid_dir_any_has(const char *name, int role);

#endif
