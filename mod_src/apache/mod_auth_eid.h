/*
 * mod_auth_eid.h - shared declarations of the Apache glue.
 *
 * The glue is thin: it reads configuration into core objects, finds the
 * credential in the request, calls the core, and maps results to HTTP.
 */
#ifndef MOD_AUTH_EID_H
#define MOD_AUTH_EID_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_file_io.h"
#include "apr_hash.h"

#include "eid/eid_audit.h"
#include "eid/eid_cert.h"
#include "eid/eid_identity.h"

#define EID_AUTH_TYPE "eid"
#define EID_MAX_METHODS 4
#define EID_MAX_USER_ATTRS 8
#define EID_MAX_AUTHZ_TRAIL 8
#define EID_DEFAULT_HEADER_PREFIX "X-Eid-"
#define EID_ENV_PREFIX "EID_"

extern module AP_MODULE_DECLARE_DATA auth_eid_module;
#if defined(APLOG_USE_MODULE) && !defined(EID_MODULE_MAIN)
APLOG_USE_MODULE(auth_eid);
#endif

/* An audit destination; vhosts that do not name their own share the main
 * server's (same pointer), so it is opened once. */
typedef struct eid_audit_batch eid_audit_batch_t;
typedef struct eid_audit_sink {
    const char *spec; /* path, or "|command" for a piped logger */
    apr_file_t *fd;
    int flush_ms;     /* EidAuditLog flush=: 0 one write() per record */
    eid_audit_batch_t *batch; /* this child's writer (eid_audit_batch.c); NULL: none */
} eid_audit_sink_t;

/* Process-wide registry of named objects defined at server level. */
typedef struct eid_globals {
    apr_hash_t *profiles;  /* name -> eid_trust_profile_t * */
    const unsigned char *pseudonym_key;
    apr_size_t pseudonym_key_len;
    const char *pseudonym_key_file;
    /* Token providers (eid_bearer_glue.c). */
    apr_hash_t *providers;           /* name -> eid_provider_t * */
    apr_array_header_t *provider_defs; /* eid_provider_def_t, definition order */
    apr_array_header_t *all_providers; /* eid_provider_t *, definition order */
    int token_cache_entries;         /* -1: default */
    apr_interval_time_t token_cache_ttl; /* 0: default */
    /* Organisation directories (eid_dir_glue.c), in pconf, read-only after
     * the configuration is read. */
    apr_hash_t *directories;              /* name -> eid_directory_t * */
    apr_array_header_t *directory_order;  /* const eid_directory_t *, definition order */
    /* Named policies (eid_expr.c): name -> eid_policy_t *, in pconf,
     * read-only after the configuration is read. */
    apr_hash_t *policies;
} eid_globals_t;

extern eid_globals_t *eid_g;

typedef struct eid_srv_conf {
    eid_audit_sink_t *audit;
    int pseudonymise; /* -1 unset, 0 off, 1 on */
    /* Identity header names (normalised: lower case, '_' as '-') of every
     * EidHeaderPrefix set in this server's configuration, besides the default
     * prefix's; built while the configuration is read, read-only after.  NULL:
     * none.  A vhost's own only: the main server's are checked as well. */
    apr_hash_t *own_header_names;
    struct eid_login_srv *login; /* login settings (eid_login_glue.h); NULL: none */
    const char *endpoint_path; /* EidEndpointPath; NULL: "/.eid" (eid_endpoint_path()) */
} eid_srv_conf_t;

typedef struct eid_dir_conf {
    eid_method_e methods[EID_MAX_METHODS];
    int nmethods; /* 0: unset */
    apr_array_header_t *profiles;  /* const eid_trust_profile_t *; NULL unset */
    const char *profiles_key;      /* the profiles' names in order: what a cached
                                      verdict is keyed by (never the address) */
    apr_array_header_t *providers; /* eid_provider_t *; NULL unset (the only one) */
    apr_array_header_t *audiences; /* EidBearerAudience: const char *; NULL unset (any of
                                      the provider's) */
    eid_attr_e user_attrs[EID_MAX_USER_ATTRS];
    int nuser_attrs; /* 0: unset */
    int export_env;     /* -1 unset */
    int export_headers; /* -1 unset */
    const char *header_prefix; /* NULL unset */
    const char **header_names; /* per attribute, prefix applied; with prefix */
    const char *request_id_header; /* <prefix>Request-Id; with prefix */
    unsigned char export_mask[EID_ATTR__COUNT]; /* 1 = export */
    int export_mask_set;
    int audit; /* -1 unset */
    const char *realm;
    const struct eid_directory *directory; /* EidUseDirectory; NULL: none */
    int directory_set;                     /* 0: unset (the only one, if one) */
    apr_array_header_t *login_providers;   /* eid_provider_t *; NULL unset */
    int login_loa;                         /* EidLoginLoA; 0 unset */
} eid_dir_conf_t;

/* What one method, and then authentication as a whole, made of a request.
 * Kept apart from HTTP statuses: a refusal's status is in eid_req_t.status. */
typedef enum {
    EID_TRY_ABSENT = 0, /* no credential of this kind (of any kind, for the request) */
    EID_TRY_OK,         /* an identity was found */
    EID_TRY_REFUSED     /* a credential was refused: status, reason, decision set */
} eid_try_e;

/* What is derived from an identity that several requests share - a client
 * certificate's, on its connection (one thread at a time), or a browser
 * session's kept with its connection (eid_session_glue.c) - made on first
 * use and kept with the identity:
 *  - verdicts of identity-only named policies (eid_expr.c), keyed by the
 *    policy's name; what else a verdict depended on (the certificate or
 *    session, the profiles, the directory) is the key of whatever holds the
 *    memo, and a new holder starts with an empty memo;
 *  - the identity's export encoding (eid_export.c) and its audit-record
 *    fields (eid_audit_glue.c), which depend on nothing else but
 *    process-wide settings fixed for the configuration's life (the pseudonym
 *    key) and, for the audit fields, the server's EidAuditPseudonymise - one
 *    entry per value. */
#define EID_POLICY_MEMO_SLOTS 4
typedef struct eid_id_memo {
    /* The identity the memo is of.  Checked on every read: the slot may
     * be given to another identity while a request still points at it (a
     * subrequest run inside a Require line - `-U` - takes the oldest slot of
     * a full ring), and a pointer compare is exact, for a memo's identity
     * lives at least as long as the memo and is never freed before it. */
    const struct eid_identity *id;
    const char *name[EID_POLICY_MEMO_SLOTS]; /* pconf strings */
    unsigned char granted[EID_POLICY_MEMO_SLOTS];
    int n;
    /* Where derived values are made: lives as long as `id`; NULL: keep none. */
    apr_pool_t *pool;
    const void *export;          /* eid_export.c's encoding of every attribute */
    const char *audit[2];        /* the audit fields, [pseudonymise] */
    apr_size_t audit_len[2];
} eid_id_memo_t;

/* Per-request state (r->request_config). */
typedef struct eid_req {
    int tried;               /* authentication ran for this request */
    eid_try_e outcome;       /* what it found */
    int status;              /* the HTTP status of a refusal (outcome EID_TRY_REFUSED) */
    eid_identity_t *id;      /* set when authenticated */
    eid_decision_e decision; /* for the audit record when the request failed */
    const char *reason;      /* short, safe */
    const char *scope_needed; /* set by eid-scope when it denies */
    const char *tag;         /* EIDxxxxx of the log line behind `reason` */
    /* A refused client certificate: its issuer DN (RFC 2253), serial (hex)
     * and subject (personnummer pseudonymised), for the audit record. */
    const char *cert_issuer;
    const char *cert_serial;
    const char *cert_subject;
    /* The certificate's revocation check, for the audit record (static
     * strings; NULL: none ran). */
    const char *rev_status, *rev_source;
    const char *request_id;  /* only in the root request's state (eid_request_id) */
    /* The Require eid-* lines evaluated for this request with their outcome
     * ("eid-policy staff: granted"), for the audit record; at most
     * EID_MAX_AUTHZ_TRAIL, in r->pool.  NULL: none ran. */
    apr_array_header_t *authz_trail;
    /* Where what is derived from st->id may be kept (the certificate's
     * connection slot, the kept session), or NULL: derive it every time. */
    eid_id_memo_t *memo;
    /* The per_dir_config eid_fixups exported for (NULL: fixups did not run,
     * e.g. the request was refused).  A fast redirect (mod_dir) swaps
     * r->per_dir_config after that: eid_fixups_final redoes the export. */
    const struct ap_conf_vector_t *fixed_cfg;
    /* eid_is_eid_location()'s answer for per_dir_config loc_cfg */
    const struct ap_conf_vector_t *loc_cfg;
    int loc_is_eid;
    /* A session event (login, logout, backchannel-logout) this request
     * made: the audit record's reason. */
    const char *event;
    int stepup_loa; /* eid-loa denied an oidc session: the level needed */
    struct eid_session_found *session; /* the oidc method's session (eid_login_glue.h) */
    /* For the refusal page (eid_endpoints.c): an eid_why_e set by whoever
     * refuses (0: derived from outcome/decision), and the level of assurance
     * a Require eid-loa denial needed (0: none). */
    int why;
    int loa_needed;
} eid_req_t;

/* eid_config.c */
extern const command_rec eid_cmds[];
void *eid_create_dir_conf(apr_pool_t *p, char *dir);
void *eid_merge_dir_conf(apr_pool_t *p, void *base, void *add);
void *eid_create_srv_conf(apr_pool_t *p, server_rec *s);
void *eid_merge_srv_conf(apr_pool_t *p, void *base, void *add);
void eid_globals_reset(apr_pool_t *pconf);
const char **eid_header_names(apr_pool_t *p, const char *prefix);
/* Effective values with defaults applied. */
int eid_dir_export_env(const eid_dir_conf_t *d);
int eid_dir_export_headers(const eid_dir_conf_t *d);
int eid_dir_audit(const eid_dir_conf_t *d);

/* A method refuses: records the HTTP status in st (reason and decision are
 * set by eid_refuse()) and returns EID_TRY_REFUSED. */
static inline eid_try_e eid_try_refused(eid_req_t *st, int status)
{
    st->status = status;
    return EID_TRY_REFUSED;
}

/* eid_config.c: every profile, in definition order.  A location that names
 * none uses the only one, if exactly one exists (eid_cert_glue.c). */
const apr_array_header_t *eid_all_profiles(void);

/* eid_scope.c: refuse a location that could accept what it did not name (see
 * there); NULL or "Syntax error on line N of FILE: ...".  For check_config. */
const char *eid_scope_check(apr_pool_t *ptemp);

/* eid_cert_glue.c */
eid_try_e eid_try_cert(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                 eid_identity_t **id);

/* eid_authn.c */
void eid_refuse(request_rec *r, eid_req_t *st, eid_decision_e decision, int level,
                const char *tag, const char *reason);
int eid_is_eid_location(request_rec *r);
eid_req_t *eid_req_get(request_rec *r, int create);
int eid_access_checker(request_rec *r);
int eid_check_authn(request_rec *r);

/* eid_authn.c: r->user as it may appear in logs - a pseudonym when
 * EidUserAttribute made the personnummer the user name. */
const char *eid_safe_user(request_rec *r, const eid_identity_t *id);

/* eid_authz.c */
void eid_register_authz_providers(apr_pool_t *p);
void eid_insert_error_filter(request_rec *r);

/* eid_export.c */
/* Configuration time only (single thread, pool `p` = pconf): the header names
 * `prefix` produces become names that server `s` scrubs from every request. */
void eid_header_prefix_register(server_rec *s, apr_pool_t *p, const char *prefix);
int eid_scrub_headers(request_rec *r);
int eid_fixups(request_rec *r);
/* fixups, REALLY_LAST: after mod_dir's fast redirect into another location,
 * the export follows the configuration that now serves the request. */
int eid_fixups_final(request_rec *r);

/* eid_audit_glue.c */
int eid_audit_open_logs(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                        server_rec *s);
int eid_audit_log_transaction(request_rec *r);
/* The request that a subrequest or internal redirect belongs to (follows
 * r->main and r->prev); r itself for a request from the client. */
request_rec *eid_root_request(request_rec *r);
/* The id of r's root request, made once and kept in the root's state, in the
 * root's pool: subrequests and internal redirects share it. */
const char *eid_request_id(request_rec *r);
void eid_request_id_child_init(void);
/* eid_audit_batch.c */
void eid_audit_batch_child_init(apr_pool_t *pchild, server_rec *s);
apr_status_t eid_audit_sink_write(request_rec *r, eid_audit_sink_t *k, const char *line,
                                  apr_size_t len);

/* Login endpoints (eid_login_glue.c, eid_logout_glue.c), called by eid_endpoints.c's handler for the
 * exact URIs <EidEndpointPath>/login, /callback, /logout,
 * /backchannel-logout, /choose of a request from the client (never a
 * subrequest or internal redirect).  Return a handler status. */
int eid_ep_login(request_rec *r);
int eid_ep_callback(request_rec *r);
int eid_ep_logout(request_rec *r);
int eid_ep_backchannel(request_rec *r);
int eid_ep_choose(request_rec *r);

/* eid_endpoints.c: routing, Require bypass and page hooks */
void eid_endpoints_register_hooks(apr_pool_t *p);

/* mod_auth_eid.c */
void eid_glue_log(void *baton, eid_log_level_e level, const char *tag, const char *msg);

#endif
