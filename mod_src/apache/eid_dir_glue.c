/*
 * eid_dir_glue.c - the organisation directory in httpd.
 *
 * A directory is a named object like a trust profile or a token provider:
 * defined once at server level (EidDirectory, never inside <VirtualHost>),
 * loaded while the configuration is read into the configuration pool (so a
 * graceful restart, which re-reads the configuration, reloads it), immutable
 * afterwards and read by every thread without a lock (eid_directory.h).
 * Locations name the one they use with EidUseDirectory.
 */
#include "eid_dir_glue.h"

#include "apr_atomic.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "http_core.h"

const char *eid_set_directory(cmd_parms *cmd, void *dc, const char *name, const char *file)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    const char *path, *s;
    eid_directory_t *dir;

    if (err)
        return err;
    /* One registry per server, like EidProvider (see eid_config.c). */
    if (cmd->server->is_virtual)
        return "EidDirectory: define it at server level, outside <VirtualHost>, and name "
               "it in the virtual host (or its locations) with EidUseDirectory";
    for (s = name; *s; s++)
        if (!apr_isalnum(*s) && !strchr("-_.", *s))
            return "EidDirectory: the name may hold letters, digits, '-', '_', '.'";
    if (!*name || !strcasecmp(name, "none"))
        return "EidDirectory: needs a name other than 'none'";
    if (apr_hash_get(eid_g->directories, name, APR_HASH_KEY_STRING))
        return apr_psprintf(cmd->pool, "EidDirectory: '%s' is defined twice", name);
    if (!(path = ap_server_root_relative(cmd->pool, file)))
        return apr_psprintf(cmd->pool, "EidDirectory %s: invalid path '%s'", name, file);
    /* Loaded here, into pconf: `apachectl -t` sees every mistake with the
     * directory file's own file:line in the message (httpd adds ours). */
    if (eid_directory_load(cmd->pool, path, 0, &dir, &err) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "EidDirectory %s: %s", name, err);
    apr_hash_set(eid_g->directories, apr_pstrdup(cmd->pool, name), APR_HASH_KEY_STRING, dir);
    APR_ARRAY_PUSH(eid_g->directory_order, const eid_directory_t *) = dir;
    return NULL;
}

/* Also read from .htaccess at request time: it only reads the registry. */
const char *eid_set_use_directory(cmd_parms *cmd, void *dcv, const char *name)
{
    eid_dir_conf_t *d = dcv;
    if (!strcasecmp(name, "none")) {
        d->directory = NULL;
        d->directory_set = 1;
        return NULL;
    }
    d->directory = apr_hash_get(eid_g->directories, name, APR_HASH_KEY_STRING);
    if (!d->directory)
        return apr_psprintf(cmd->pool, "EidUseDirectory: unknown directory '%s' (define it "
                            "with EidDirectory before this line)", name);
    d->directory_set = 1;
    return NULL;
}

int eid_dir_for(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                const eid_directory_t **dir)
{
    static apr_uint32_t misconfig_logged;
    const apr_array_header_t *all = eid_g->directory_order;

    *dir = NULL;
    if (d->directory_set) {
        *dir = d->directory;
        return 0;
    }
    if (all->nelts == 1) {
        *dir = APR_ARRAY_IDX(all, 0, const eid_directory_t *);
        return 0;
    }
    if (all->nelts == 0)
        return 0;
    /* Several and none named: nothing is guessed (as for trust profiles). */
    {
        int first = apr_atomic_cas32(&misconfig_logged, 1, 0) == 0;
        eid_refuse(r, st, EID_DECISION_ERROR, first ? APLOG_ERR : APLOG_DEBUG, "EID04010",
                   apr_psprintf(r->pool, "misconfigured: this location names no "
                                "EidUseDirectory, and %d directories are defined",
                                all->nelts));
    }
    st->status = HTTP_INTERNAL_SERVER_ERROR;
    return -1;
}

void eid_dir_apply(apr_pool_t *p, const eid_directory_t *dir, eid_identity_t *id)
{
    eid_dir_info_t info;
    if (!dir)
        return;
    eid_directory_enrich(p, dir, id, &info);
    id->org_kind = eid_org_kind_name(info.org_kind);
    /* A certificate's number was read out of its HSA-ID (eid_cert.c); the
     * directory may know better - a longer prefix of another organisation
     * (eid_directory_enrich) - and then the care provider exported and
     * compared by own-organisation rules is the directory's, the one whose
     * kind and groups the identity now has.  A token's number is a claim of
     * the IdP and stays. */
    if (id->method == EID_METHOD_CERT && info.org_number)
        id->org_number = info.org_number;
    /* Empty is absent (never ""), like every other attribute. */
    id->groups = info.groups->nelts ? info.groups : NULL;
    id->dir_roles = info.roles->nelts ? info.roles : NULL;
    id->directory = eid_directory_name(dir);
}

void eid_dir_fit(apr_pool_t *p, const eid_directory_t *dir, eid_identity_t *id)
{
    const char *want = dir ? eid_directory_name(dir) : NULL;
    /* By content (the directory's file name), never by address. */
    if (want ? (id->directory && !strcmp(id->directory, want)) : !id->directory)
        return;
    if (dir) {
        eid_dir_apply(p, dir, id);
        return;
    }
    id->org_kind = NULL;
    id->groups = id->dir_roles = NULL;
    id->directory = NULL;
}

int eid_dir_any_has(const char *name, int role)
{
    const apr_array_header_t *all = eid_g->directory_order;
    int i;
    if (!all->nelts)
        return -1;
    for (i = 0; i < all->nelts; i++) {
        const eid_directory_t *dir = APR_ARRAY_IDX(all, i, const eid_directory_t *);
        if (role ? eid_directory_has_role(dir, name) : eid_directory_has_group(dir, name))
            return 1;
    }
    return 0;
}
