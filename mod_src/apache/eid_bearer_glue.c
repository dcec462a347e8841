/*
 * eid_bearer_glue.c - the bearer-token method (RFC 6750).
 *
 * The token is taken from the Authorization header only (never from the
 * query string or a form body: those end up in logs).  Validation, key sets
 * and the token cache are the core's (eid_bearer.h); here we map its verdict
 * to RFC 6750 statuses and challenges.
 */
#include "eid_bearer_glue.h"
#include "eid_dir_glue.h"

#include "apr_atomic.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http_protocol.h"

#include "eid/eid_bearer.h"
#include "eid/eid_util.h"

#define DEFAULT_CACHE_ENTRIES 10000
#define DEFAULT_CACHE_TTL_SEC 300

const char *eid_set_provider(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    eid_provider_t *pv;
    int i;

    if (err)
        return err;
    /* One registry for the whole server: a provider defined inside one
     * <VirtualHost> used to be accepted by every other one. */
    if (cmd->server->is_virtual)
        return "EidProvider: define it at server level, outside <VirtualHost>, and name it "
               "in the virtual host (or its locations) with EidBearerProviders";
    if (argc < 2)
        return "EidProvider: needs a name and at least one key=value option";
    for (i = 0; argv[0][i]; i++)
        if (!apr_isalnum(argv[0][i]) && !strchr("-_.", argv[0][i]))
            return "EidProvider: the name may hold letters, digits, '-', '_', '.'";
    pv = apr_hash_get(eid_g->providers, argv[0], APR_HASH_KEY_STRING);
    if (!pv) {
        eid_provider_def_t *def = apr_array_push(eid_g->provider_defs);
        pv = eid_provider_create(cmd->pool, argv[0]);
        apr_hash_set(eid_g->providers, apr_pstrdup(cmd->pool, argv[0]),
                     APR_HASH_KEY_STRING, pv);
        APR_ARRAY_PUSH(eid_g->all_providers, eid_provider_t *) = pv;
        def->pv = pv;
        def->file = cmd->directive->filename;
        def->line = cmd->directive->line_num;
    }
    for (i = 1; i < argc; i++) {
        char *key = apr_pstrdup(cmd->temp_pool, argv[i]);
        char *eq = strchr(key, '=');
        if (!eq || eq == key)
            return apr_psprintf(cmd->pool, "EidProvider %s: '%s' is not key=value",
                                argv[0], argv[i]);
        *eq = '\0';
        if ((err = eid_provider_set(pv, cmd->pool, key, eq + 1)))
            return apr_psprintf(cmd->pool, "EidProvider %s: %s", argv[0], err);
    }
    return NULL;
}

const char *eid_set_token_cache(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_int64_t n;
    int i;

    if (err)
        return err;
    if (argc < 1)
        return "EidTokenCache: <entries>|off [max_ttl=seconds]";
    if (!strcasecmp(argv[0], "off")) {
        eid_g->token_cache_entries = 0;
    }
    else {
        if (eid_uint_parse(argv[0], 1, 10000000, &n))
            return "EidTokenCache: entries must be a number from 1 to 10000000, or off";
        eid_g->token_cache_entries = (int)n;
    }
    for (i = 1; i < argc; i++) {
        if (strncasecmp(argv[i], "max_ttl=", 8))
            return apr_psprintf(cmd->pool, "EidTokenCache: unknown option '%s'", argv[i]);
        if (eid_uint_parse(argv[i] + 8, 1, 86400, &n))
            return "EidTokenCache: max_ttl must be 1 to 86400 seconds";
        eid_g->token_cache_ttl = apr_time_from_sec(n);
    }
    return NULL;
}

/* Also read from .htaccess, at request time: it only reads the registry, and
 * what it makes lives in that request's pool (cmd->pool). */
const char *eid_set_bearer_providers(cmd_parms *cmd, void *dcv, int argc,
                                     char *const argv[])
{
    eid_dir_conf_t *d = dcv;
    int i, j;
    if (argc < 1)
        return "EidBearerProviders: name at least one provider";
    d->providers = apr_array_make(cmd->pool, argc, sizeof(eid_provider_t *));
    for (i = 0; i < argc; i++) {
        eid_provider_t *pv = apr_hash_get(eid_g->providers, argv[i], APR_HASH_KEY_STRING);
        const char *iss;
        if (!pv)
            return apr_psprintf(cmd->pool, "EidBearerProviders: unknown provider '%s' "
                                "(define it with EidProvider before this line)", argv[i]);
        /* Two providers for one issuer: the first to accept a token would
         * decide which claim rules apply (eid_scope.c checks the lists again
         * at the end of the configuration, when every issuer= is known). */
        iss = eid_provider_issuer(pv);
        for (j = 0; iss && j < d->providers->nelts; j++) {
            eid_provider_t *o = APR_ARRAY_IDX(d->providers, j, eid_provider_t *);
            if (eid_provider_issuer(o) && !strcmp(iss, eid_provider_issuer(o)))
                return apr_psprintf(cmd->pool, "EidBearerProviders: providers '%s' and "
                                    "'%s' have the same issuer %s: name one provider per "
                                    "issuer", eid_provider_name(o), argv[i], iss);
        }
        APR_ARRAY_PUSH(d->providers, eid_provider_t *) = pv;
    }
    return NULL;
}

const char *eid_set_bearer_audience(cmd_parms *cmd, void *dcv, int argc, char *const argv[])
{
    eid_dir_conf_t *d = dcv;
    int i;
    if (argc < 1)
        return "EidBearerAudience: name at least one audience";
    d->audiences = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (i = 0; i < argc; i++) {
        const char *s;
        for (s = argv[i]; *s; s++)
            if ((unsigned char)*s < 0x21 || *s == 0x7f)
                return "EidBearerAudience: an audience has no blanks or control characters";
        APR_ARRAY_PUSH(d->audiences, const char *) = argv[i];
    }
    return NULL;
}

/* Does the identity carry one of the location's audiences?  Why a check of
 * its own: a provider (one per issuer) accepts every audience it lists, for
 * the whole server; without this, a token for one API of the server would
 * open every other API that accepts the provider. */
static int audience_ok(const eid_dir_conf_t *d, const eid_identity_t *id)
{
    int i, j;
    if (!d->audiences)
        return 1;
    for (i = 0; id->audiences && i < id->audiences->nelts; i++)
        for (j = 0; j < d->audiences->nelts; j++)
            if (!strcmp(APR_ARRAY_IDX(id->audiences, i, const char *),
                        APR_ARRAY_IDX(d->audiences, j, const char *)))
                return 1;
    return 0;
}

/* Runs for `apachectl -t` too: an incomplete or insecure provider (no
 * audience, no keys ...) is refused with the file and line that began it. */
int eid_bearer_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                            server_rec *s)
{
    const char *err;
    int i;
    for (i = 0; i < eid_g->provider_defs->nelts; i++) {
        eid_provider_def_t *def = &APR_ARRAY_IDX(eid_g->provider_defs, i, eid_provider_def_t);
        err = eid_provider_check(def->pv, ptemp);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         "Syntax error on line %d of %s: EidProvider %s: %s", def->line,
                         def->file, eid_provider_name(def->pv), err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    /* What each location may accept (profiles and providers): eid_scope.c. */
    if ((err = eid_scope_check(ptemp))) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL, "%s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

int eid_bearer_post_config(apr_pool_t *pconf, server_rec *s)
{
    int i;
    for (i = 0; i < eid_g->all_providers->nelts; i++)
        eid_provider_init(APR_ARRAY_IDX(eid_g->all_providers, i, eid_provider_t *), pconf, 0);
    return OK;
}

void eid_bearer_child_init(apr_pool_t *pchild, server_rec *s)
{
    int i, entries = eid_g->token_cache_entries;
    apr_interval_time_t ttl = eid_g->token_cache_ttl;

    if (!eid_g->all_providers->nelts)
        return;
    for (i = 0; i < eid_g->all_providers->nelts; i++)
        eid_provider_init(APR_ARRAY_IDX(eid_g->all_providers, i, eid_provider_t *), pchild, 1);
    eid_tokcache_init(pchild, entries < 0 ? DEFAULT_CACHE_ENTRIES : entries,
                      ttl ? ttl : apr_time_from_sec(DEFAULT_CACHE_TTL_SEC));
}

void eid_bearer_challenge(request_rec *r, const eid_dir_conf_t *d, const char *error,
                          const char *description)
{
    const char *v = "Bearer";
    const char *sep = " ";
    if (d->realm) {
        v = apr_psprintf(r->pool, "%s%srealm=\"%s\"", v, sep, d->realm);
        sep = ", ";
    }
    if (error) {
        v = apr_psprintf(r->pool, "%s%serror=\"%s\"", v, sep, error);
        sep = ", ";
    }
    if (description)
        v = apr_psprintf(r->pool, "%s%serror_description=\"%s\"", v, sep, description);
    apr_table_setn(r->err_headers_out, "WWW-Authenticate", v);
}

/* eid_bearer_enrich_fn: the directory's kind, groups and roles, into the
 * identity the token cache will copy. */
static void enrich(void *dir, apr_pool_t *p, eid_identity_t *id)
{
    eid_dir_apply(p, dir, id);
}

eid_try_e eid_try_bearer(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                   eid_identity_t **id)
{
    const eid_directory_t *dir;
    const char *h = apr_table_get(r->headers_in, "Authorization");
    const apr_array_header_t *provs = d->providers ? d->providers : eid_g->all_providers;
    static apr_uint32_t misconfig_logged;
    eid_result_t res = {0};
    eid_bearer_code_e rc;

    if (!h || strncasecmp(h, "Bearer", 6) || (h[6] != ' ' && h[6] != '\0'))
        return EID_TRY_ABSENT;
    h += 6;
    while (*h == ' ')
        h++;
    if (provs->nelts == 0) {
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, "EID01502",
                   "bearer token presented but no EidProvider is configured");
        return eid_try_refused(st, HTTP_INTERNAL_SERVER_ERROR);
    }
    /* Naming nothing means "the only provider"; with several, nothing is
     * guessed.  `apachectl -t` refuses this wherever it can see it
     * (eid_scope.c); .htaccess it cannot.  Logged at error once per process,
     * then at debug: the 500 itself is per request. */
    if (!d->providers && provs->nelts > 1) {
        int first = apr_atomic_cas32(&misconfig_logged, 1, 0) == 0;
        eid_refuse(r, st, EID_DECISION_ERROR, first ? APLOG_ERR : APLOG_DEBUG, "EID01520",
                   apr_psprintf(r->pool, "misconfigured: this location accepts bearer tokens "
                                "but names no EidBearerProviders, and %d providers are "
                                "defined", provs->nelts));
        return eid_try_refused(st, HTTP_INTERNAL_SERVER_ERROR);
    }
    /* The location's directory first: a new token's identity is enriched
     * from it before it is cached, once per cache entry. */
    if (eid_dir_for(r, d, st, &dir))
        return EID_TRY_REFUSED;
    /* The credential's syntax (RFC 6750 2.1) is checked by the core after
     * its cache: a hit is a byte-for-byte token that passed every check. */
    rc = eid_bearer_validate_ex(r->pool, (eid_provider_t *const *)provs->elts, provs->nelts,
                                h, strlen(h), r->request_time, dir ? enrich : NULL,
                                (void *)dir, id, &res);
    switch (rc) {
    case EID_BEARER_OK:
        if (!audience_ok(d, *id)) {
            /* RFC 6750 3.1: a token not meant for this resource is invalid here. */
            *id = NULL;
            eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_INFO, "EID01530",
                       "the token's audience is not one of this location's "
                       "(EidBearerAudience)");
            eid_bearer_challenge(r, d, "invalid_token", "token not meant for this resource");
            return eid_try_refused(st, HTTP_UNAUTHORIZED);
        }
        /* A hit enriched from another location's directory (or none), or an
         * introspection answer (cached before enrichment): redone here, on
         * the request's own shallow copy, never on the cached entry. */
        eid_dir_fit(r->pool, dir, *id);
        return EID_TRY_OK;
    case EID_BEARER_MALFORMED:
        if (res.code == EID_BEARER_EMPTY || res.code == EID_BEARER_NOT_TOKEN68) {
            eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_INFO, "EID01501",
                       "malformed bearer credential in Authorization");
            eid_bearer_challenge(r, d, "invalid_request", "malformed Authorization header");
            return eid_try_refused(st, HTTP_BAD_REQUEST);
        }
        eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_INFO, res.tag, res.reason);
        eid_bearer_challenge(r, d, "invalid_request", "malformed token");
        return eid_try_refused(st, HTTP_BAD_REQUEST);
    case EID_BEARER_UNAVAILABLE:
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, res.tag, res.reason);
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return eid_try_refused(st, HTTP_SERVICE_UNAVAILABLE);
    case EID_BEARER_MISCONFIGURED:
        /* The location's providers cannot decide (e.g. two for one issuer,
         * which -t refuses): the sysadmin's problem, never the client's. */
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, res.tag, res.reason);
        return eid_try_refused(st, HTTP_INTERNAL_SERVER_ERROR);
    default:
        /* The description says only that the token was refused: the precise
         * reason goes to the log, where an attacker cannot read it. */
        eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_INFO, res.tag, res.reason);
        eid_bearer_challenge(r, d, "invalid_token", "the access token is not valid");
        return eid_try_refused(st, HTTP_UNAUTHORIZED);
    }
}
