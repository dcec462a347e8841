/*
 * eid_login_conf.c - the directives of browser login and sessions, their
 * start-up checks, and the session store's set-up.
 *
 * Server-wide (main server only): EidSessionKeyFile, EidSessionStore,
 * EidSessionIdleTimeout, EidSessionMaxAge.  Per virtual host: EidRedirectURI,
 * EidReturnAllow, EidLogoutRedirectAllow.  Per location: EidLoginProviders,
 * EidLoginLoA and `oidc` in EidMethods.  What a location with oidc needs
 * (a key file, a redirect URI in its virtual host, a login provider) is
 * checked at `apachectl -t` by eid_scope.c, which sees each section's file
 * and line; the settings themselves are checked here, on their own line.
 */
#include "eid_login_glue.h"
#include "eid_store_socache.h"
#include "eid_store_redis_glue.h"
#include "eid/eid_util.h"

#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_uri.h"
#include "http_core.h"

eid_login_g_t *eid_login_g;

#define DEFAULT_IDLE_SEC 1800
#define DEFAULT_MAX_AGE_SEC 36000

void eid_login_reset(apr_pool_t *pconf)
{
    eid_login_g = apr_pcalloc(pconf, sizeof(*eid_login_g));
    eid_login_g->idle = apr_time_from_sec(DEFAULT_IDLE_SEC);
    eid_login_g->max_age = apr_time_from_sec(DEFAULT_MAX_AGE_SEC);
}

eid_login_srv_t *eid_login_srv_merge(apr_pool_t *p, const eid_login_srv_t *base,
                                     const eid_login_srv_t *add)
{
    /* Always a struct of its own: post_config writes vhost_id per server. */
    eid_login_srv_t *c = apr_pcalloc(p, sizeof(*c));
    if (add)
        *c = *add;
    if (base && !c->redirect_uri) {
        c->redirect_uri = base->redirect_uri;
        c->redirect_path = base->redirect_path;
        c->origin = base->origin;
        c->ru_file = base->ru_file;
        c->ru_line = base->ru_line;
    }
    if (base && !c->return_allow)
        c->return_allow = base->return_allow;
    if (base && !c->logout_allow)
        c->logout_allow = base->logout_allow;
    c->vhost_id = NULL;
    return c;
}

const eid_login_srv_t *eid_login_srv(const server_rec *s)
{
    static const eid_login_srv_t none;
    const eid_srv_conf_t *c = ap_get_module_config(s->module_config, &auth_eid_module);
    return c->login ? c->login : &none;
}

static eid_login_srv_t *srv_own(cmd_parms *cmd)
{
    eid_srv_conf_t *c = ap_get_module_config(cmd->server->module_config, &auth_eid_module);
    if (!c->login)
        c->login = apr_pcalloc(cmd->pool, sizeof(*c->login));
    return c->login;
}

static const char *main_only(cmd_parms *cmd)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return apr_pstrcat(cmd->pool, err, " (sessions are shared by every virtual host; "
                           "each is bound to its own host)", NULL);
    return NULL;
}

const char *eid_set_session_key_file(cmd_parms *cmd, void *dc, const char *file)
{
    const char *err = main_only(cmd);
    const char *path;
    if (err)
        return err;
    if (!(path = ap_server_root_relative(cmd->pool, file)))
        return apr_psprintf(cmd->pool, "EidSessionKeyFile: invalid path '%s'", file);
    eid_login_g->key_file = path;
    return eid_login_load_keys(cmd->pool, path);
}

/* shm or shm:<bytes>: eid_store_socache checks it (and mod_socache_shmcb).
 * redis://, unix:, sentinel:// with options: eid_store_redis_glue.c. */
const char *eid_set_session_store(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    const char *err = main_only(cmd), *spec = argc > 0 ? argv[0] : "";
    if (err)
        return err;
    if (eid_redis_glue_is_spec(spec)) {
        if ((err = eid_redis_glue_define(cmd, argc, argv)))
            return err;
        eid_login_g->sc = NULL; /* the last EidSessionStore line wins */
        eid_login_g->store_set = 1;
        return NULL;
    }
    if (argc != 1)
        return "EidSessionStore shm[:bytes] takes no options";
    if ((err = eid_store_socache_define(cmd->pool, spec, &eid_login_g->sc)))
        return err;
    eid_login_g->store_set = 1;
    return NULL;
}

const char *eid_set_session_timeout(cmd_parms *cmd, void *dc, const char *secs)
{
    const char *err = main_only(cmd);
    int max_age = cmd->info != NULL;
    apr_int64_t n;
    if (err)
        return err;
    if (eid_uint_parse(secs, 60, 31 * 86400, &n))
        return apr_psprintf(cmd->pool, "%s: give 60 to 2678400 seconds, not '%s'",
                            cmd->cmd->name, secs);
    if (max_age)
        eid_login_g->max_age = apr_time_from_sec(n);
    else
        eid_login_g->idle = apr_time_from_sec(n);
    return NULL;
}

/* scheme://host[:port] of an absolute http(s) URL, lower-cased, default port
 * dropped; NULL when `u` is not one. */
static const char *origin_of(apr_pool_t *p, const char *u, int path_ok, apr_uri_t *out)
{
    apr_uri_t uri;
    char *h;
    if (apr_uri_parse(p, u, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname ||
        uri.user || uri.password || uri.query || uri.fragment)
        return NULL;
    if (strcasecmp(uri.scheme, "https") && strcasecmp(uri.scheme, "http"))
        return NULL;
    if (!path_ok && uri.path && strcmp(uri.path, "/") && *uri.path)
        return NULL;
    for (h = uri.hostname; *h; h++) {
        if ((unsigned char)*h <= 0x20 || *h == '\\' || *h == '%')
            return NULL;
        *h = apr_tolower(*h);
    }
    if (out)
        *out = uri;
    if (uri.port_str && uri.port != apr_uri_port_of_scheme(uri.scheme))
        return apr_psprintf(p, "%s://%s:%u", !strcasecmp(uri.scheme, "https") ? "https" :
                            "http", uri.hostname, uri.port);
    return apr_psprintf(p, "%s://%s", !strcasecmp(uri.scheme, "https") ? "https" : "http",
                        uri.hostname);
}

static int loopback_host(const char *h)
{
    return !strcmp(h, "localhost") || !strcmp(h, "127.0.0.1") || !strcmp(h, "[::1]") ||
           !strcmp(h, "::1");
}

const char *eid_set_redirect_uri(cmd_parms *cmd, void *dc, const char *u)
{
    eid_login_srv_t *c = srv_own(cmd);
    apr_uri_t uri;
    const char *o = origin_of(cmd->pool, u, 1, &uri);
    if (!o || !uri.path || uri.path[0] != '/')
        return apr_psprintf(cmd->pool, "EidRedirectURI: '%s' is not an absolute https URL "
                            "with a path (https://host[:port]/.eid/callback)", u);
    /* Why https: the code and the state travel in this URL. */
    if (strcasecmp(uri.scheme, "https") && !loopback_host(uri.hostname))
        return "EidRedirectURI: must be https (plain http only to a loopback host)";
    c->redirect_uri = apr_pstrdup(cmd->pool, u);
    c->redirect_path = apr_pstrdup(cmd->pool, uri.path);
    c->origin = o;
    c->ru_file = cmd->directive->filename;
    c->ru_line = cmd->directive->line_num;
    return NULL;
}

const char *eid_set_origins(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    eid_login_srv_t *c = srv_own(cmd);
    apr_array_header_t *a;
    int i;
    if (argc < 1)
        return apr_psprintf(cmd->pool, "%s: name at least one origin (https://host[:port])",
                            cmd->cmd->name);
    a = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (i = 0; i < argc; i++) {
        apr_uri_t uri;
        const char *o = origin_of(cmd->pool, argv[i], 0, &uri);
        if (!o)
            return apr_psprintf(cmd->pool, "%s: '%s' is not an origin (https://host[:port], "
                                "no path)", cmd->cmd->name, argv[i]);
        if (strcasecmp(uri.scheme, "https") && !loopback_host(uri.hostname))
            return apr_psprintf(cmd->pool, "%s: '%s' must be https (plain http only to a "
                                "loopback host)", cmd->cmd->name, argv[i]);
        APR_ARRAY_PUSH(a, const char *) = o;
    }
    if (cmd->info)
        c->logout_allow = a;
    else
        c->return_allow = a;
    return NULL;
}

eid_provider_t *eid_login_provider(const char *name)
{
    eid_provider_t *pv = apr_hash_get(eid_g->providers, name, APR_HASH_KEY_STRING);
    return pv && eid_login_enabled(pv) ? pv : NULL;
}

/* Also from .htaccess, at request time: it only reads the registry; what it
 * makes lives in that request's pool (cmd->pool). */
const char *eid_set_login_providers(cmd_parms *cmd, void *dcv, int argc, char *const argv[])
{
    eid_dir_conf_t *d = dcv;
    int i, j;
    if (argc < 1)
        return "EidLoginProviders: name at least one provider";
    d->login_providers = apr_array_make(cmd->pool, argc, sizeof(eid_provider_t *));
    for (i = 0; i < argc; i++) {
        eid_provider_t *pv = apr_hash_get(eid_g->providers, argv[i], APR_HASH_KEY_STRING);
        if (!pv)
            return apr_psprintf(cmd->pool, "EidLoginProviders: unknown provider '%s' "
                                "(define it with EidProvider ... login=on before this line)",
                                argv[i]);
        /* login=on is known once the provider is checked, at the end of the
         * configuration: eid_scope.c refuses a provider without it there. */
        for (j = 0; j < d->login_providers->nelts; j++)
            if (APR_ARRAY_IDX(d->login_providers, j, eid_provider_t *) == pv)
                return apr_psprintf(cmd->pool, "EidLoginProviders: '%s' named twice",
                                    argv[i]);
        APR_ARRAY_PUSH(d->login_providers, eid_provider_t *) = pv;
    }
    return NULL;
}

const char *eid_set_login_loa(cmd_parms *cmd, void *dcv, const char *v)
{
    eid_dir_conf_t *d = dcv;
    if ((d->login_loa = eid_loa_parse(v, 1)) < 0)
        return apr_psprintf(cmd->pool, "EidLoginLoA: '%s' is not a level from 1 to 4", v);
    return NULL;
}

int eid_login_providers_of(const eid_dir_conf_t *d, eid_provider_t *const **out)
{
    if (d->login_providers) {
        *out = (eid_provider_t *const *)d->login_providers->elts;
        return d->login_providers->nelts;
    }
    *out = (eid_provider_t *const *)eid_login_g->all->elts;
    return eid_login_g->all->nelts;
}

const char *eid_login_load_keys(apr_pool_t *p, const char *path)
{
    const char *err = eid_session_keys_load(p, path, &eid_login_g->keys);
    return err ? apr_pstrcat(p, "EidSessionKeyFile: ", err, NULL) : NULL;
}

/* check_config (also for `apachectl -t`), after the providers were checked
 * (eid_bearer_check_config): every login=on provider, in definition order,
 * for the locations that name none; what a location with oidc needs is
 * eid_scope.c's (it knows the file and line). */
int eid_login_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s)
{
    const char *err;
    int i;
    eid_login_g->all = apr_array_make(pconf, 2, sizeof(eid_provider_t *));
    for (i = 0; i < eid_g->all_providers->nelts; i++) {
        eid_provider_t *pv = APR_ARRAY_IDX(eid_g->all_providers, i, eid_provider_t *);
        if (eid_login_enabled(pv))
            APR_ARRAY_PUSH(eid_login_g->all, eid_provider_t *) = pv;
    }
    /* Login is used (eid_scope.c saw an oidc location) and no
     * EidSessionStore: the default shared-memory store. */
    if (eid_login_g->used && !eid_login_g->sc && !eid_redis_glue_defined() &&
        (err = eid_store_socache_define(pconf, "shm", &eid_login_g->sc))) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     "a location accepts oidc, so sessions need a store: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* post_config (parent, one thread, the pass that serves): what sessions of
 * each virtual host are bound to, and the store. */
int eid_login_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *v;
    for (v = s; v; v = v->next) {
        eid_srv_conf_t *c = ap_get_module_config(v->module_config, &auth_eid_module);
        if (!c->login)
            c->login = apr_pcalloc(pconf, sizeof(*c->login));
        /* name and port: __Host- cookies are per host, not per port, so two
         * virtual hosts on one name must not accept each other's. */
        c->login->vhost_id = apr_psprintf(pconf, "%s:%u", v->server_hostname ?
                                          v->server_hostname : "",
                                          v->addrs ? (unsigned)v->addrs->host_port : 0u);
    }
    if (eid_redis_glue_defined() && !eid_login_g->sc) {
        /* redis: made here, connected lazily in each child */
        eid_login_g->store = eid_redis_glue_post_config(pconf, s);
        return eid_login_g->store ? OK : HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!eid_login_g->sc)
        return OK;
    /* Created in the parent (retained across graceful restarts: a reload
     * logs nobody out), opened again in each child (eid_login_child_init). */
    if (eid_store_socache_post_config(eid_login_g->sc, pconf, ptemp, s) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    eid_login_g->store = eid_store_socache_store(eid_login_g->sc);
    return OK;
}

void eid_login_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (eid_login_g->sc)
        eid_store_socache_child_init(eid_login_g->sc, pchild, s);
    else
        eid_redis_glue_child_init(pchild, s);
}
