/*
 * eid_expr.h - the identity in httpd's expression language (%{EID_*},
 * eid_list()), and named policies (EidPolicy, Require eid-policy).
 */
#ifndef EID_EXPR_H
#define EID_EXPR_H

#include "mod_auth_eid.h"
#include "ap_expr.h"

/* A named policy: an ap_expr parsed once at start-up; in pconf, read-only. */
typedef struct eid_policy {
    const char *name;
    const char *text;         /* the expression as written */
    ap_expr_info_t *expr;
    /* 1 when the expression reads nothing but the identity (%{EID_*},
     * eid_list(), constants): its verdict may be kept per identity. */
    int identity_only;
} eid_policy_t;

/* register_hooks: the expr_lookup hook for %{EID_*} and eid_list(). */
void eid_register_expr(apr_pool_t *p);

/* EidPolicy <name> <expression> (main server only). */
const char *eid_set_policy(cmd_parms *cmd, void *dc, const char *name, const char *expr);

/* The policy called `name`, or NULL.  Read-only after start-up. */
const eid_policy_t *eid_policy_get(const char *name);

#define EID_POLICY_SERVER_CMDS                                                            \
    AP_INIT_TAKE2("EidPolicy", eid_set_policy, NULL, RSRC_CONF,                           \
                  "<name> <expression> - a named policy in httpd's expression language, " \
                  "used with Require eid-policy <name>"),

#endif
