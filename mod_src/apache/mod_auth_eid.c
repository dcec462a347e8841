/*
 * mod_auth_eid.c - module record and hook registration.
 *
 * mod_auth_eid authenticates users of Swedish care-collaboration services
 * by SITHS / e-ID client certificate or OAuth2 bearer token, maps them to
 * organisation, commission and role attributes, enforces Require eid-*
 * policies, passes the identity to the backend and writes an audit record
 * for every decision.  The work is done by the core library (include/eid);
 * this file only wires it into httpd.
 */
#define EID_MODULE_MAIN /* AP_DECLARE_MODULE below declares the log index */
#include "mod_auth_eid.h"
#include "eid_expr.h"
#include "eid_bearer_glue.h"
#include "eid_rev_glue.h"
#include "eid_login_glue.h"
#include "eid_store_socache.h"

#include "ap_provider.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"

#include "eid/eid_introspect.h"

void eid_export_init(apr_pool_t *pconf);

void eid_glue_log(void *baton, eid_log_level_e level, const char *tag, const char *msg)
{
    ap_log_error(APLOG_MARK, (int)level, 0, (server_rec *)baton, "%s: %s", tag, msg);
}

static int eid_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    eid_globals_reset(pconf);
    /* `Mutex eid-store ...` must be known before the configuration is read. */
    if (eid_store_socache_pre_config(pconf) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    return OK;
}

static int eid_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s)
{
    eid_log_set(eid_glue_log, s);
    eid_export_init(pconf);
    if (!eid_g->pseudonym_key) {
        /* Generated in the parent, so every child uses the same key; the
         * pseudonyms change at each restart unless EidPseudonymKeyFile is set. */
        unsigned char *k = apr_palloc(pconf, 32);
        if (apr_generate_random_bytes(k, 32) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         "EID01401: no random bytes for the pseudonym key");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        eid_g->pseudonym_key = k;
        eid_g->pseudonym_key_len = 32;
        if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         "EID01402: no EidPseudonymKeyFile: personnummer pseudonyms "
                         "are valid until the next restart only");
    }
    /* The first pass at start-up only checks the configuration: fetch the
     * providers' keys in the pass whose children will serve requests. */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        int rc = eid_login_post_config(pconf, ptemp, s);
        return rc != OK ? rc : eid_bearer_post_config(pconf, s);
    }
    return OK;
}

static void eid_child_init(apr_pool_t *pchild, server_rec *s)
{
    int threads = 0;
    eid_request_id_child_init();
    eid_audit_batch_child_init(pchild, s);
    /* Several introspecting providers each bound their own calls in flight;
     * together they must leave worker threads for everything else while
     * their endpoints are slow: half of this child's threads at most. */
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 2)
        threads = 2;
    eid_introspect_set_process_limit(threads / 2);
    eid_bearer_child_init(pchild, s);
    eid_rev_child_init(pchild, s);
    eid_login_child_init(pchild, s);
}

static void register_hooks(apr_pool_t *p)
{
    /* After mod_ssl's access hook: it may renegotiate for a client cert. */
    static const char *const after_ssl[] = {"mod_ssl.c", NULL};

    ap_hook_pre_config(eid_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(eid_bearer_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(eid_rev_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(eid_login_check_config, NULL, NULL, APR_HOOK_LAST);
    ap_hook_post_config(eid_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_open_logs(eid_audit_open_logs, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(eid_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_read_request(eid_scrub_headers, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_check_access(eid_access_checker, after_ssl, NULL, APR_HOOK_LAST,
                         AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_check_authn(eid_check_authn, NULL, NULL, APR_HOOK_MIDDLE,
                        AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_fixups(eid_fixups, NULL, NULL, APR_HOOK_MIDDLE);
    /* After mod_dir's fixup (APR_HOOK_LAST), which may fast-redirect. */
    ap_hook_fixups(eid_fixups_final, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_insert_error_filter(eid_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(eid_audit_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
    eid_register_authz_providers(p);
    eid_endpoints_register_hooks(p);
    eid_register_expr(p);
}

AP_DECLARE_MODULE(auth_eid) = {
    STANDARD20_MODULE_STUFF,
    eid_create_dir_conf,
    eid_merge_dir_conf,
    eid_create_srv_conf,
    eid_merge_srv_conf,
    eid_cmds,
    register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_ALWAYS_MERGE
#endif
};
