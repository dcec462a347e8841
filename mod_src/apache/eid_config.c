/*
 * eid_config.c - directives, per-directory and per-server configuration.
 *
 * Everything is parsed and checked here, at start-up: a mistake is returned
 * as an error string, which httpd reports with the file, the line and the
 * directive ("apachectl -t" fails).  Named objects (trust profiles, token
 * providers) are defined at server level and must be defined before a
 * location names them, so an unknown name is caught on the line that uses it.
 */
#include "mod_auth_eid.h"
#include "eid_bearer_glue.h"
#include "eid_dir_glue.h"
#include "eid_login_glue.h"
#include "eid_pages.h"
#include "eid_expr.h"
#include "eid_rev_glue.h"
#include "eid/eid_util.h"

#include "apr_hash.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "http_core.h"

#include <openssl/objects.h>

eid_globals_t *eid_g;

/* Definition order of profiles (the hash does not keep it). */
static apr_array_header_t *profile_order;

void eid_globals_reset(apr_pool_t *pconf)
{
    eid_g = apr_pcalloc(pconf, sizeof(*eid_g));
    eid_g->profiles = apr_hash_make(pconf);
    eid_g->providers = apr_hash_make(pconf);
    eid_g->provider_defs = apr_array_make(pconf, 2, sizeof(eid_provider_def_t));
    eid_g->all_providers = apr_array_make(pconf, 2, sizeof(void *));
    eid_g->token_cache_entries = -1;
    eid_g->directories = apr_hash_make(pconf);
    eid_g->directory_order = apr_array_make(pconf, 2, sizeof(void *));
    eid_g->policies = apr_hash_make(pconf);
    profile_order = apr_array_make(pconf, 4, sizeof(const eid_trust_profile_t *));
    eid_login_reset(pconf);
}

const apr_array_header_t *eid_all_profiles(void)
{
    return profile_order;
}

const char **eid_header_names(apr_pool_t *p, const char *prefix)
{
    const char **names = apr_palloc(p, sizeof(char *) * EID_ATTR__COUNT);
    int i;
    for (i = 0; i < EID_ATTR__COUNT; i++)
        names[i] = apr_pstrcat(p, prefix, eid_attr_desc((eid_attr_e)i)->header, NULL);
    return names;
}

/* ---- per-directory ------------------------------------------------------- */

void *eid_create_dir_conf(apr_pool_t *p, char *dir)
{
    eid_dir_conf_t *d = apr_pcalloc(p, sizeof(*d));
    d->export_env = -1;
    d->export_headers = -1;
    d->audit = -1;
    return d;
}

void *eid_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const eid_dir_conf_t *base = basev, *add = addv;
    eid_dir_conf_t *d = apr_pmemdup(p, add, sizeof(*d));

    /* An inner section inherits every setting it did not make itself. */
    if (!add->nmethods) {
        memcpy(d->methods, base->methods, sizeof(d->methods));
        d->nmethods = base->nmethods;
    }
    if (!add->profiles) {
        d->profiles = base->profiles;
        d->profiles_key = base->profiles_key;
    }
    if (!add->providers)
        d->providers = base->providers;
    if (!add->audiences)
        d->audiences = base->audiences;
    if (!add->nuser_attrs) {
        memcpy(d->user_attrs, base->user_attrs, sizeof(d->user_attrs));
        d->nuser_attrs = base->nuser_attrs;
    }
    if (add->export_env < 0)
        d->export_env = base->export_env;
    if (add->export_headers < 0)
        d->export_headers = base->export_headers;
    if (!add->header_prefix) {
        d->header_prefix = base->header_prefix;
        d->header_names = base->header_names;
        d->request_id_header = base->request_id_header;
    }
    if (!add->export_mask_set) {
        memcpy(d->export_mask, base->export_mask, sizeof(d->export_mask));
        d->export_mask_set = base->export_mask_set;
    }
    if (add->audit < 0)
        d->audit = base->audit;
    if (!add->realm)
        d->realm = base->realm;
    if (!add->directory_set) {
        d->directory = base->directory;
        d->directory_set = base->directory_set;
    }
    if (!add->login_providers)
        d->login_providers = base->login_providers;
    if (!add->login_loa)
        d->login_loa = base->login_loa;
    return d;
}

int eid_dir_export_env(const eid_dir_conf_t *d) { return d->export_env != 0; }
int eid_dir_export_headers(const eid_dir_conf_t *d) { return d->export_headers > 0; }
int eid_dir_audit(const eid_dir_conf_t *d) { return d->audit != 0; }

/* ---- per-server ---------------------------------------------------------- */

void *eid_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    eid_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));
    c->pseudonymise = -1;
    return c;
}

void *eid_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    const eid_srv_conf_t *base = basev, *add = addv;
    eid_srv_conf_t *c = apr_pmemdup(p, add, sizeof(*c));
    if (!add->audit)
        c->audit = base->audit;
    if (add->pseudonymise < 0)
        c->pseudonymise = base->pseudonymise;
    c->login = eid_login_srv_merge(p, base->login, add->login);
    if (!add->endpoint_path)
        c->endpoint_path = base->endpoint_path;
    return c;
}

/* ---- helpers ------------------------------------------------------------- */

static const char *parse_loa(apr_pool_t *p, const char *v, int min, int *out)
{
    if ((*out = eid_loa_parse(v, min)) < 0)
        return apr_psprintf(p, "loa must be a level from %d to 4, not '%s'", min, v);
    return NULL;
}

static const char *parse_id_kinds(apr_pool_t *p, const char *v, unsigned *out)
{
    char *list = apr_pstrdup(p, v), *last, *w;
    *out = 0;
    for (w = apr_strtok(list, ",", &last); w; w = apr_strtok(NULL, ",", &last)) {
        if (!strcasecmp(w, "hsa-id"))
            *out |= EID_IDK_HSA;
        else if (!strcasecmp(w, "pnr"))
            *out |= EID_IDK_PNR;
        else if (!strcasecmp(w, "coord"))
            *out |= EID_IDK_COORD;
        else if (!strcasecmp(w, "any"))
            *out |= EID_IDK_ANY;
        else
            return apr_psprintf(p, "ids: unknown identifier kind '%s' "
                                   "(use hsa-id, pnr, coord or any)", w);
    }
    return *out ? NULL : "ids: empty list";
}

static eid_trust_profile_t *profile_get(cmd_parms *cmd, const char *name, int create)
{
    eid_trust_profile_t *tp = apr_hash_get(eid_g->profiles, name, APR_HASH_KEY_STRING);
    if (!tp && create) {
        tp = eid_trust_profile_create(cmd->pool, name);
        apr_hash_set(eid_g->profiles, apr_pstrdup(cmd->pool, name),
                     APR_HASH_KEY_STRING, tp);
        APR_ARRAY_PUSH(profile_order, const eid_trust_profile_t *) = tp;
    }
    return tp;
}

static const char *check_name(cmd_parms *cmd, const char *name)
{
    const char *s;
    for (s = name; *s; s++)
        if (!apr_isalnum(*s) && *s != '-' && *s != '_' && *s != '.')
            return apr_psprintf(cmd->pool, "%s: '%s' is not a valid name "
                                "(letters, digits, '-', '_', '.')",
                                cmd->cmd->name, name);
    return *name ? NULL : apr_psprintf(cmd->pool, "%s: empty name", cmd->cmd->name);
}

/* Named objects are defined once for the whole server, and virtual hosts and
 * locations name the ones they accept.  Why not per virtual host: httpd keeps
 * one registry per process, so a CA or a provider defined inside one
 * <VirtualHost> used to be accepted by every other one. */
static const char *not_in_vhost(cmd_parms *cmd, const char *how)
{
    if (!cmd->server->is_virtual)
        return NULL;
    return apr_psprintf(cmd->pool, "%s: define it at server level, outside <VirtualHost>, "
                        "and name it in the virtual host (or its locations) with %s",
                        cmd->cmd->name, how);
}

/* ---- server-level directives --------------------------------------------- */

/* EidTrustIssuer <profile> <ca-file> [loa=N] [ids=...] [function] [root-issuer] */
static const char *set_trust_issuer(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    eid_trust_profile_t *tp;
    unsigned ids = 0, flags = 0, seen = 0;
    int loa = 0, function = 0, i;
    const char *path;

    if (err || (err = not_in_vhost(cmd, "EidCertProfiles")))
        return err;
    if (argc < 2)
        return "EidTrustIssuer: needs a profile name and a CA certificate file";
    if ((err = check_name(cmd, argv[0])))
        return err;
    for (i = 2; i < argc; i++) {
        /* No "last one wins" for the level or the identifier kinds. */
        int is_loa = !strncasecmp(argv[i], "loa=", 4), is_ids = !strncasecmp(argv[i], "ids=", 4);
        if ((is_loa && (seen & 1)) || (is_ids && (seen & 2)))
            err = apr_psprintf(cmd->pool, "%.4s given twice", argv[i]);
        else if (is_loa && (seen |= 1))
            err = parse_loa(cmd->pool, argv[i] + 4, 0, &loa);
        else if (is_ids && (seen |= 2))
            err = parse_id_kinds(cmd->pool, argv[i] + 4, &ids);
        else if (!strcasecmp(argv[i], "function"))
            function = 1;
        else if (!strcasecmp(argv[i], "root-issuer"))
            flags |= EID_ISSUER_ROOT;
        else
            err = apr_psprintf(cmd->pool, "unknown option '%s' (expected loa=N, ids=LIST, "
                               "function or root-issuer)", argv[i]);
        if (err)
            return apr_pstrcat(cmd->pool, "EidTrustIssuer: ", err, NULL);
    }
    if (!function && loa == 0)
        return "EidTrustIssuer: a person-certificate issuer needs loa=1..4";
    /* No silent "any": an issuer vouches for the identifier kinds it is
     * configured for, so a personnummer from an HSA-ID CA is refused. */
    if (!function && !ids)
        return "EidTrustIssuer: a person-certificate issuer needs ids= (the identifier "
               "kinds it vouches for: hsa-id, pnr, coord; ids=any only if it really "
               "vouches for all)";
    if (function)
        flags |= EID_ISSUER_FUNCTION;
    path = ap_server_root_relative(cmd->pool, argv[1]);
    if (!path)
        return apr_pstrcat(cmd->pool, "EidTrustIssuer: invalid path ", argv[1], NULL);
    tp = profile_get(cmd, argv[0], 1);
    err = eid_trust_profile_add_issuer(tp, cmd->pool, path, loa, ids, flags);
    return err ? apr_pstrcat(cmd->pool, "EidTrustIssuer: ", err, NULL) : NULL;
}

/* EidTrustPolicy <profile> <oid> loa=N|function */
static const char *set_trust_policy(cmd_parms *cmd, void *dc, const char *name,
                                    const char *oid, const char *what)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    eid_trust_profile_t *tp;
    int loa = 0, function = 0;

    if (err || (err = not_in_vhost(cmd, "EidCertProfiles")))
        return err;
    if ((err = check_name(cmd, name)))
        return err;
    /* Only for a profile that exists: a typo used to create an empty one. */
    if (!(tp = profile_get(cmd, name, 0)))
        return apr_psprintf(cmd->pool, "EidTrustPolicy: unknown trust profile '%s' (define "
                            "it with EidTrustIssuer before this line)", name);
    if (!strcasecmp(what, "function"))
        function = 1;
    else if (strncasecmp(what, "loa=", 4) ||
             (err = parse_loa(cmd->pool, what + 4, 1, &loa)))
        return apr_pstrcat(cmd->pool, "EidTrustPolicy: ",
                           err ? err : "third argument must be loa=N or function", NULL);
    err = eid_trust_profile_add_policy(tp, cmd->pool, oid, loa, function);
    return err ? apr_pstrcat(cmd->pool, "EidTrustPolicy: ", err, NULL) : NULL;
}

static const char *set_audit_log(cmd_parms *cmd, void *dc, const char *spec,
                                 const char *opt)
{
    eid_srv_conf_t *c = ap_get_module_config(cmd->server->module_config, &auth_eid_module);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    if (err)
        return err;
    c->audit = apr_pcalloc(cmd->pool, sizeof(*c->audit));
    /* off: spec NULL, explicitly off (not inherited) */
    if (!strcasecmp(spec, "off"))
        return opt ? "EidAuditLog: 'off' takes no options" : NULL;
    if (opt) {
        char *end;
        long ms;
        if (strncasecmp(opt, "flush=", 6))
            return apr_psprintf(cmd->pool, "EidAuditLog: unknown option '%s' (flush=<ms>)",
                                opt);
        ms = strtol(opt + 6, &end, 10);
        if (end == opt + 6 || *end || ms < 0 || ms > 1000)
            return apr_psprintf(cmd->pool, "EidAuditLog: flush= takes milliseconds, 0 to "
                                "1000 (got '%s')", opt + 6);
        c->audit->flush_ms = (int)ms;
    }
    if (*spec == '|')
        c->audit->spec = apr_pstrdup(cmd->pool, spec);
    else if (!(c->audit->spec = ap_server_root_relative(cmd->pool, spec)))
        return apr_pstrcat(cmd->pool, "EidAuditLog: invalid path ", spec, NULL);
    else {
        /* Refuse at configtest what would only fail when logs are opened. */
        apr_finfo_t fi;
        char *dir = ap_make_dirstr_parent(cmd->temp_pool, c->audit->spec);
        if (apr_stat(&fi, dir, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS ||
            fi.filetype != APR_DIR)
            return apr_psprintf(cmd->pool, "EidAuditLog: directory '%s' does not exist",
                                dir);
    }
    return NULL;
}

static const char *set_pseudonymise(cmd_parms *cmd, void *dc, int on)
{
    eid_srv_conf_t *c = ap_get_module_config(cmd->server->module_config, &auth_eid_module);
    c->pseudonymise = on;
    return NULL;
}

static const char *set_pseudonym_key(cmd_parms *cmd, void *dc, const char *file)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *path;
    apr_size_t n;
    char *buf;

    if (err)
        return err;
    if (!(path = ap_server_root_relative(cmd->pool, file)))
        return apr_psprintf(cmd->pool, "EidPseudonymKeyFile: invalid path '%s'", file);
    /* Read into cmd->pool: the key is kept for the configuration's life. */
    if (eid_file_read(cmd->pool, path, 4096, EID_FILE_SECRET, &buf, &n, &err) != APR_SUCCESS)
        return apr_pstrcat(cmd->pool, "EidPseudonymKeyFile: ", err, NULL);
    if (n < 32) {
        explicit_bzero(buf, n);
        return apr_psprintf(cmd->pool, "EidPseudonymKeyFile: '%s' must hold 32 to 4096 "
                            "bytes of secret (e.g. head -c 32 /dev/urandom)", file);
    }
    eid_g->pseudonym_key = (const unsigned char *)buf;
    eid_g->pseudonym_key_len = n;
    eid_g->pseudonym_key_file = path;
    return NULL;
}

/* ---- per-directory directives --------------------------------------------- */

static const char *set_methods(cmd_parms *cmd, void *dcv, int argc, char *const argv[])
{
    eid_dir_conf_t *d = dcv;
    int i, j;
    if (argc < 1 || argc > EID_MAX_METHODS)
        return "EidMethods: name the methods accepted here (cert, bearer, oidc)";
    for (i = 0; i < argc; i++) {
        eid_method_e m = eid_method_parse(argv[i]);
        if (m != EID_METHOD_CERT && m != EID_METHOD_BEARER && m != EID_METHOD_OIDC)
            return apr_psprintf(cmd->pool, "EidMethods: unknown method '%s' (use cert, "
                                "bearer, oidc)", argv[i]);
        for (j = 0; j < i; j++)
            if (d->methods[j] == m)
                return apr_psprintf(cmd->pool, "EidMethods: '%s' named twice", argv[i]);
        d->methods[i] = m;
    }
    d->nmethods = argc;
    return NULL;
}

/* Also read from .htaccess, at request time: it only reads the registry, and
 * everything it makes lives in that request's pool (cmd->pool). */
static const char *set_cert_profiles(cmd_parms *cmd, void *dcv, int argc,
                                     char *const argv[])
{
    eid_dir_conf_t *d = dcv;
    int i;
    if (argc < 1)
        return "EidCertProfiles: name at least one trust profile";
    d->profiles = apr_array_make(cmd->pool, argc, sizeof(const eid_trust_profile_t *));
    /* The key of the list is its content: profile names are unique and stable
     * for the life of the configuration and cannot hold a space. */
    d->profiles_key = apr_pstrdup(cmd->pool, argv[0]);
    for (i = 1; i < argc; i++)
        d->profiles_key = apr_pstrcat(cmd->pool, d->profiles_key, " ", argv[i], NULL);
    for (i = 0; i < argc; i++) {
        eid_trust_profile_t *tp =
            apr_hash_get(eid_g->profiles, argv[i], APR_HASH_KEY_STRING);
        if (!tp)
            return apr_psprintf(cmd->pool, "EidCertProfiles: unknown trust profile '%s' "
                                "(define it with EidTrustIssuer before this line)",
                                argv[i]);
        APR_ARRAY_PUSH(d->profiles, const eid_trust_profile_t *) = tp;
    }
    /* Why two profiles with one CA are refused in one list: the first in the
     * list that holds the CA decides its level and identifier kinds, so the
     * order of the names would silently change who is admitted. */
    for (i = 0; i < argc; i++) {
        int j;
        for (j = i + 1; j < argc; j++) {
            const char *ca = eid_trust_profiles_shared_ca(
                cmd->pool, APR_ARRAY_IDX(d->profiles, i, const eid_trust_profile_t *),
                APR_ARRAY_IDX(d->profiles, j, const eid_trust_profile_t *));
            if (ca)
                return apr_psprintf(cmd->pool, "EidCertProfiles: profiles '%s' and '%s' "
                                    "have the same issuing CA (%s): name one of them here",
                                    argv[i], argv[j], ca);
        }
    }
    return NULL;
}

static const char *set_user_attr(cmd_parms *cmd, void *dcv, int argc, char *const argv[])
{
    eid_dir_conf_t *d = dcv;
    int i;
    if (argc < 1 || argc > EID_MAX_USER_ATTRS)
        return "EidUserAttribute: name one to eight attributes";
    for (i = 0; i < argc; i++) {
        const eid_attr_desc_t *a = eid_attr_by_key(argv[i]);
        if (!a)
            return apr_psprintf(cmd->pool, "EidUserAttribute: unknown attribute '%s'",
                                argv[i]);
        d->user_attrs[i] = a->id;
    }
    d->nuser_attrs = argc;
    return NULL;
}

/* Server config, <VirtualHost> and sections, never .htaccess (the command
 * table says RSRC_CONF|ACCESS_CONF).  Why: inbound headers are scrubbed in
 * post_read_request, before any per-directory configuration is known, so a
 * prefix must be known when the configuration is read; its names are then
 * kept in this server's configuration (eid_header_prefix_register), written
 * here once, at start-up, and only read by requests. */
static const char *set_header_prefix(cmd_parms *cmd, void *dcv, const char *prefix)
{
    eid_dir_conf_t *d = dcv;
    const char *s;
    if (strlen(prefix) < 2)
        return "EidHeaderPrefix: too short";
    if (strlen(prefix) > 64)
        return "EidHeaderPrefix: too long (64 characters at most)";
    for (s = prefix; *s; s++)
        if (!apr_isalnum(*s) && *s != '-')
            return "EidHeaderPrefix: only letters, digits and '-' are allowed";
    d->header_prefix = apr_pstrdup(cmd->pool, prefix);
    d->header_names = eid_header_names(cmd->pool, d->header_prefix);
    d->request_id_header = apr_pstrcat(cmd->pool, d->header_prefix, "Request-Id", NULL);
    eid_header_prefix_register(cmd->server, cmd->pool, d->header_prefix);
    return NULL;
}

static const char *set_export_attrs(cmd_parms *cmd, void *dcv, int argc, char *const argv[])
{
    eid_dir_conf_t *d = dcv;
    int i, only_exclusions = 1;
    if (argc < 1)
        return "EidExportAttributes: name attributes, 'all' or -<attribute> exclusions";
    for (i = 0; i < argc; i++)
        if (argv[i][0] != '-')
            only_exclusions = 0;
    /* A list of only exclusions ("-pnr") means all except those. */
    memset(d->export_mask, only_exclusions, sizeof(d->export_mask));
    d->export_mask_set = 1;
    for (i = 0; i < argc; i++) {
        const eid_attr_desc_t *a;
        if (!strcasecmp(argv[i], "all")) {
            memset(d->export_mask, 1, sizeof(d->export_mask));
            continue;
        }
        if (argv[i][0] == '-' && (a = eid_attr_by_key(argv[i] + 1))) {
            d->export_mask[a->id] = 0;
            continue;
        }
        if (!(a = eid_attr_by_key(argv[i])))
            return apr_psprintf(cmd->pool, "EidExportAttributes: unknown attribute '%s'",
                                argv[i]);
        d->export_mask[a->id] = 1;
    }
    return NULL;
}

static const char *set_flag(cmd_parms *cmd, void *dcv, int on)
{
    *(int *)((char *)dcv + (apr_size_t)cmd->info) = on;
    return NULL;
}

static const char *set_realm(cmd_parms *cmd, void *dcv, const char *realm)
{
    const char *s;
    for (s = realm; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return "EidRealm: quotes, backslashes and control characters are not allowed";
    ((eid_dir_conf_t *)dcv)->realm = apr_pstrdup(cmd->pool, realm);
    return NULL;
}

#define DIR_FLAG(name, field, help) \
    AP_INIT_FLAG(name, set_flag, (void *)APR_OFFSETOF(eid_dir_conf_t, field), OR_AUTHCFG, help)

const command_rec eid_cmds[] = {
    AP_INIT_TAKE_ARGV("EidTrustIssuer", set_trust_issuer, NULL, RSRC_CONF,
                      "<profile> <CA PEM file> loa=1..4 ids=hsa-id,pnr,coord|any | "
                      "function [root-issuer] - an issuing CA whose certificates the "
                      "profile accepts"),
    AP_INIT_TAKE3("EidTrustPolicy", set_trust_policy, NULL, RSRC_CONF,
                  "<profile> <policy OID> loa=N|function - level of assurance (or "
                  "function certificate) by certificate policy"),
    AP_INIT_TAKE12("EidAuditLog", set_audit_log, NULL, RSRC_CONF,
                   "<file> | \"|<piped logger>\" | off [flush=<ms>] - where audit records "
                   "go; flush=N: written in batches at most N ms late"),
    AP_INIT_FLAG("EidAuditPseudonymise", set_pseudonymise, NULL, RSRC_CONF,
                 "On (default): personnummer appear in audit records as keyed "
                 "pseudonyms; Off: in clear"),
    AP_INIT_TAKE1("EidPseudonymKeyFile", set_pseudonym_key, NULL, RSRC_CONF,
                  "<file> - secret key (32+ bytes) for personnummer pseudonyms; share "
                  "it between servers so pseudonyms match"),
    AP_INIT_TAKE_ARGV("EidMethods", set_methods, NULL, OR_AUTHCFG,
                      "cert | bearer | oidc ... - credentials accepted here, tried in order "
                      "(default: cert)"),
    AP_INIT_TAKE_ARGV("EidCertProfiles", set_cert_profiles, NULL, OR_AUTHCFG | RSRC_CONF,
                      "<profile> ... - trust profiles accepted here (default: the only "
                      "one, if exactly one is defined)"),
    AP_INIT_TAKE_ARGV("EidUserAttribute", set_user_attr, NULL, OR_AUTHCFG,
                      "<attribute> ... - the first present one becomes REMOTE_USER "
                      "(default: hsa-id pnr-pseudonym subject)"),
    DIR_FLAG("EidExportEnv", export_env,
             "On (default): pass the identity to the backend as EID_* variables"),
    DIR_FLAG("EidExportHeaders", export_headers,
             "On: also pass it as request headers (default Off)"),
    AP_INIT_TAKE1("EidHeaderPrefix", set_header_prefix, NULL, RSRC_CONF | ACCESS_CONF,
                  "<prefix> - name prefix of the identity headers (default X-Eid-); "
                  "not in .htaccess"),
    AP_INIT_TAKE_ARGV("EidExportAttributes", set_export_attrs, NULL, OR_AUTHCFG,
                      "all | <attribute> | -<attribute> ... - which attributes to pass "
                      "(default: all)"),
    DIR_FLAG("EidAudit", audit, "On (default): an audit record for every request here"),
    EID_BEARER_SERVER_CMDS
    EID_BEARER_DIR_CMDS
    EID_DIRECTORY_SERVER_CMDS
    EID_REVOCATION_SERVER_CMDS
    EID_DIRECTORY_DIR_CMDS
    EID_LOGIN_SERVER_CMDS
    EID_LOGIN_DIR_CMDS
    EID_PAGES_CMDS
    EID_POLICY_SERVER_CMDS
    AP_INIT_TAKE1("EidRealm", set_realm, NULL, OR_AUTHCFG,
                  "<realm> - realm in WWW-Authenticate challenges"),
    {NULL}};
