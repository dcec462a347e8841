/*
 * eid_login_glue.h - browser login with OpenID Connect in httpd: the
 * directives, the session method, the login redirect, the endpoints'
 * handlers (login, choose, callback, logout, back-channel logout).
 *
 * Files: eid_login_conf.c (directives, start-up checks, store wiring),
 * eid_session_glue.c (session cookie -> identity, new sessions),
 * eid_login_glue.c (login start, provider choice, callback),
 * eid_logout_glue.c (RP-initiated and back-channel logout).
 */
#ifndef EID_LOGIN_GLUE_H
#define EID_LOGIN_GLUE_H

#include "mod_auth_eid.h"

#include "eid/eid_bearer.h"
#include "eid/eid_oidc.h"
#include "eid/eid_pending.h"
#include "eid/eid_session.h"
#include "eid/eid_store.h"

#define EID_SESSION_COOKIE "__Host-eid-session"
/* State cookies: "__Host-eid-st-<slot>", slot 0..EID_STATE_SLOTS-1. */
#define EID_STATE_COOKIE_PREFIX "__Host-eid-st-"
#define EID_STATE_SLOTS 4
#define EID_DEFAULT_ENDPOINT_PATH "/.eid"


/* Main-server settings of login and sessions (one per configuration, in
 * pconf; written while the configuration is read and in post_config /
 * child_init, read-only while requests run). */
typedef struct eid_login_g {
    const char *key_file;          /* EidSessionKeyFile (absolute path) */
    eid_session_keys_t *keys;      /* loaded at the directive */
    struct eid_store_socache *sc;  /* EidSessionStore (or the default), in pconf */
    int store_set;
    eid_store_t *store;            /* eid_store_socache_store(sc) after post_config */
    apr_interval_time_t idle;      /* EidSessionIdleTimeout */
    apr_interval_time_t max_age;   /* EidSessionMaxAge */
    int used;                      /* some location accepts oidc */
    apr_array_header_t *all;       /* eid_provider_t *, every login=on provider */
} eid_login_g_t;

extern eid_login_g_t *eid_login_g;

/* Per virtual host (eid_srv_conf_t.login; every server_rec has its own
 * after merging, so post_config can write vhost_id). */
typedef struct eid_login_srv {
    const char *redirect_uri;  /* EidRedirectURI, absolute */
    const char *redirect_path; /* its path: <EidEndpointPath>/callback */
    const char *origin;        /* scheme://host[:port] of redirect_uri */
    const char *ru_file;       /* where EidRedirectURI was given */
    int ru_line;
    apr_array_header_t *return_allow; /* const char *, origins */
    apr_array_header_t *logout_allow; /* const char *, origins */
    const char *vhost_id;      /* what sessions are bound to: name:port */
} eid_login_srv_t;

/* A provider that logs users in (EidProvider ... login=on). */
static inline int eid_login_enabled(const eid_provider_t *pv)
{
    return eid_oidc_enabled(pv);
}

/* eid_login_conf.c */
const char *eid_login_load_keys(apr_pool_t *p, const char *path);
void eid_login_reset(apr_pool_t *pconf);
eid_login_srv_t *eid_login_srv_merge(apr_pool_t *p, const eid_login_srv_t *base,
                                     const eid_login_srv_t *add);
const eid_login_srv_t *eid_login_srv(const server_rec *s);
const char *eid_set_session_key_file(cmd_parms *cmd, void *dc, const char *file);
const char *eid_set_session_store(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
const char *eid_set_session_timeout(cmd_parms *cmd, void *dc, const char *secs);
const char *eid_set_redirect_uri(cmd_parms *cmd, void *dc, const char *uri);
const char *eid_set_origins(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
const char *eid_set_login_providers(cmd_parms *cmd, void *dc, int argc, char *const argv[]);
const char *eid_set_login_loa(cmd_parms *cmd, void *dc, const char *loa);
/* check_config: the session, store and redirect-URI settings that a
 * location with `EidMethods ... oidc` needs (file:line errors). */
int eid_login_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s);
int eid_login_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
void eid_login_child_init(apr_pool_t *pchild, server_rec *s);
/* The login providers of location `d` (its own list, or every login=on
 * provider when it names none) into *out; their number. */
int eid_login_providers_of(const eid_dir_conf_t *d, eid_provider_t *const **out);
/* The login=on provider named `name`, or NULL. */
eid_provider_t *eid_login_provider(const char *name);
/* <EidEndpointPath> of r's virtual host. */
const char *eid_login_ep_path(request_rec *r);

#define EID_LOGIN_SERVER_CMDS                                                            \
    AP_INIT_TAKE1("EidSessionKeyFile", eid_set_session_key_file, NULL, RSRC_CONF,        \
                  "<file> - session keys: one or two lines of 64 hex digits (current, "  \
                  "previous); mode 0600 or 0400"),                                       \
    AP_INIT_TAKE_ARGV("EidSessionStore", eid_set_session_store, NULL, RSRC_CONF,         \
                      "shm[:bytes] | redis://... | unix:... | sentinel://... [key=value ...]" \
                      " - where sessions live (default shm:16777216)"),                   \
    AP_INIT_TAKE1("EidSessionIdleTimeout", eid_set_session_timeout, (void *)0,           \
                  RSRC_CONF, "<seconds> - a session unused this long ends (default "     \
                  "1800)"),                                                              \
    AP_INIT_TAKE1("EidSessionMaxAge", eid_set_session_timeout, (void *)1, RSRC_CONF,     \
                  "<seconds> - a session ends this long after login (default 36000)"),   \
    AP_INIT_TAKE1("EidRedirectURI", eid_set_redirect_uri, NULL, RSRC_CONF,               \
                  "https://host[:port]<EidEndpointPath>/callback - the login callback "  \
                  "registered at the providers"),                                        \
    AP_INIT_TAKE_ARGV("EidReturnAllow", eid_set_origins, (void *)0, RSRC_CONF,           \
                      "<origin> ... - other sites a login may return to (default: "      \
                      "local paths only)"),                                              \
    AP_INIT_TAKE_ARGV("EidLogoutRedirectAllow", eid_set_origins, (void *)1, RSRC_CONF,   \
                      "<origin> ... - sites a logout may end on (default: this site's "  \
                      "logged-out page only)"),

#define EID_LOGIN_DIR_CMDS                                                               \
    AP_INIT_TAKE_ARGV("EidLoginProviders", eid_set_login_providers, NULL,                \
                      OR_AUTHCFG | RSRC_CONF,                                            \
                      "<provider> ... - login providers offered here (default: the "     \
                      "only one with login=on)"),                                        \
    AP_INIT_TAKE1("EidLoginLoA", eid_set_login_loa, NULL, OR_AUTHCFG,                    \
                  "<1-4> - the level a login session needs here (step-up below it)"),

/* eid_session_glue.c */
/* Each cookie of r's Cookie headers (name, value without quotes); fn
 * returning non-zero stops.  -1 when the headers are over 16 KiB (nothing
 * is looked at then), 1 when fn stopped, else 0. */
typedef int (*eid_cookie_fn)(void *baton, const char *name, apr_size_t nlen,
                             const char *val, apr_size_t vlen);
int eid_cookie_each(request_rec *r, eid_cookie_fn fn, void *baton);
/* Set-Cookie (in err_headers_out, so redirects and errors carry it):
 * Path=/, Secure, HttpOnly, SameSite=Lax; max_age < 0: a browser-session
 * cookie, 0: delete. */
void eid_cookie_set(request_rec *r, const char *name, const char *value, int max_age);
/* What sessions of r's virtual host are bound to. */
const char *eid_session_vhost(request_rec *r);

/* A session found from the request's cookie. */
typedef struct eid_session_found {
    unsigned char id[EID_SESSION_ID_LEN];
    char skey[48];           /* its store key */
    int which;               /* 0 current key, 1 previous */
    int rotated;             /* to be re-sealed under the current key */
    int had_cookie;          /* the request carried a session cookie */
    int expired;             /* it was found but had expired */
    eid_session_rec_t *rec;  /* in r->pool */
    apr_uint32_t gen;        /* the store's deletion generation, read before the get */
    int have_gen;            /* the store has one: the opened session may be kept */
    const void *kept;        /* rec is (a request copy of) this connection's kept
                                session (eid_session_glue.c): its identity may be shared */
} eid_session_found_t;

/* EID_STORE_OK (f->rec set), EID_STORE_NOTFOUND (no usable session: none,
 * malformed, unknown, tampered, expired) or EID_STORE_ERROR (503). */
eid_store_rc_e eid_session_find(request_rec *r, eid_session_found_t *f);
/* A provider's back-channel logout of every session of `v` (kind "i:sid:"
 * or "i:sub:"): a marker "k:<index key>" holding the logout time `t` (0:
 * now), kept for EidSessionMaxAge; a session created before it is ended when
 * found.  With a `t` of its own a later marker already there is kept. */
eid_store_rc_e eid_session_logout_mark(request_rec *r, const char *provider, const char *kind,
                                       const char *v, apr_time_t t);
/* When the session stored at `skey` was created: 1 with *created, 0 when it
 * is gone or opens for no virtual host of this server, -1 when the store
 * failed. */
int eid_session_created_at(request_rec *r, const char *skey, apr_time_t *created);
/* End the session stored at `skey` (dead marker, then delete). */
eid_store_rc_e eid_session_end(request_rec *r, const char *skey);
/* End the session `f` found under every store key its id has (the current
 * and the previous key's), not only the one it was found under. */
eid_store_rc_e eid_session_end_found(request_rec *r, const eid_session_found_t *f);
/* A new session for login `lg`: new id, sealed, stored, indexed, cookie
 * set.  EID_STORE_ERROR also when no random bytes. */
eid_store_rc_e eid_session_create(request_rec *r, const char *provider,
                                  const eid_oidc_login_t *lg);
/* "i:sid:<provider>:<sid>" / "i:sub:<provider>:<sub>" */
const char *eid_session_index_key(apr_pool_t *p, const char *kind, const char *provider,
                                  const char *v);
/* The `oidc` method: the session cookie -> identity (st refused 503 on a
 * store error; EID_TRY_ABSENT for no, a malformed, an unknown or an expired
 * session). */
eid_try_e eid_try_session(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                          eid_identity_t **id);
/* Is r a browser navigation (GET/HEAD, no Authorization, no
 * X-Requested-With, Accept not only JSON, Sec-Fetch-Mode navigate and
 * Sec-Fetch-Dest document when sent)?  Only those are redirected. */
int eid_login_is_browser(request_rec *r);
/* eid_login_is_browser(), and r is neither a subrequest nor the error
 * document of an error: may r be sent to log in? */
int eid_login_may_redirect(request_rec *r);

/* Login is configured (session keys, a store, a login provider): else the
 * endpoints answer 404. */
static inline int eid_login_configured(void)
{
    return eid_login_g && eid_login_g->keys && eid_login_g->store && eid_login_g->all &&
           eid_login_g->all->nelts > 0;
}

/* eid_login_glue.c */
/* `path` (local) as an absolute URL on EidRedirectURI's origin (never
 * built from the Host header). */
const char *eid_login_abs_url(request_rec *r, const char *path);
/* The decoded value of parameter `name` in `args` (x-www-form-urlencoded),
 * in p; NULL when absent or when it does not decode (bad %xx, control
 * characters); *count: how often the name occurs. */
const char *eid_form_get(apr_pool_t *p, const char *args, const char *name, int *count);
/* No credential (or a session below `min_loa`) on an oidc location, browser
 * request: sets Location (and a state cookie) and returns the redirect
 * status; an auth hook returns it as is (no body is written here). */
int eid_login_redirect(request_rec *r, const eid_dir_conf_t *d, int min_loa);
/* A `Require eid-loa n` denied an oidc session: a browser is sent to log in
 * at level n (through the error response, ap_custom_response). */
void eid_login_stepup(request_rec *r, int loa);

#endif
