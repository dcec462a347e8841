/*
 * eid_audit_glue.c - audit sinks and the log_transaction hook.
 *
 * A sink is a file opened O_APPEND (one write() per record, so lines from all
 * children never interleave) or a piped logger started by httpd and restarted
 * if it dies.  Files are opened in the parent as root, like access logs.
 */
#include "mod_auth_eid.h"
#include "eid/eid_util.h"

#include "apr_atomic.h"
#include "apr_strings.h"

#include <unistd.h>
#include "http_core.h"
#include "http_log.h"
#include "http_request.h"

/* Request ids: 8 random bytes drawn once per child process, then a counter.
 * Unique across children and restarts without a syscall per request. */
static unsigned char id_prefix[8];
static apr_uint32_t id_counter;

void eid_request_id_child_init(void)
{
    if (apr_generate_random_bytes(id_prefix, sizeof(id_prefix)) != APR_SUCCESS) {
        apr_uint64_t t = (apr_uint64_t)apr_time_now() ^ ((apr_uint64_t)getpid() << 40);
        memcpy(id_prefix, &t, sizeof(id_prefix));
    }
    apr_atomic_set32(&id_counter, 0);
}

request_rec *eid_root_request(request_rec *r)
{
    while (r->main || r->prev)
        r = r->main ? r->main : r->prev;
    return r;
}

const char *eid_request_id(request_rec *r)
{
    unsigned char raw[12];
    apr_uint32_t n;
    /* Why the root's state and pool: a subrequest's pool dies before its main
     * request does, and an id kept there used to leave the main request (its
     * EID_REQUEST_ID, header and audit record) pointing at freed memory.  A
     * subrequest runs in its main request's thread, so writing the root's
     * state and pool from it is safe. */
    request_rec *root = eid_root_request(r);
    eid_req_t *st = eid_req_get(root, 1);

    if (st->request_id)
        return st->request_id;
    /* mod_unique_id's value when it is loaded, so all logs agree. */
    if ((st->request_id = apr_table_get(root->subprocess_env, "UNIQUE_ID"))) {
        st->request_id = apr_pstrdup(root->pool, st->request_id);
        return st->request_id;
    }
    n = apr_atomic_inc32(&id_counter);
    memcpy(raw, id_prefix, 8);
    raw[8] = (unsigned char)(n >> 24);
    raw[9] = (unsigned char)(n >> 16);
    raw[10] = (unsigned char)(n >> 8);
    raw[11] = (unsigned char)n;
    /* 12 bytes: 16 base64url characters, no padding; in the root's pool (see
     * above). */
    return st->request_id = eid_b64url_pencode(root->pool, raw, sizeof(raw));
}

int eid_audit_open_logs(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                        server_rec *s)
{
    for (; s; s = s->next) {
        eid_srv_conf_t *c = ap_get_module_config(s->module_config, &auth_eid_module);
        eid_audit_sink_t *k = c->audit;
        apr_status_t rv;

        if (!k || !k->spec || k->fd)
            continue;
        if (k->spec[0] == '|') {
            piped_log *pl = ap_open_piped_log(pconf, k->spec + 1);
            if (!pl) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                             "EID01301: cannot start audit logger '%s'", k->spec + 1);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            k->fd = ap_piped_log_write_fd(pl);
            continue;
        }
        rv = apr_file_open(&k->fd, k->spec, APR_WRITE | APR_APPEND | APR_CREATE,
                           APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD, pconf);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "EID01302: cannot open audit log '%s'", k->spec);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

static eid_decision_e decide(const eid_req_t *st, int status, const char **reason)
{
    if (st->tried && st->outcome == EID_TRY_REFUSED)
        return st->decision;
    if (status == HTTP_UNAUTHORIZED || (!st->id && status == HTTP_FORBIDDEN)) {
        if (!*reason)
            *reason = "no credential";
        return EID_DECISION_AUTHN;
    }
    if (status == HTTP_FORBIDDEN) {
        if (!*reason)
            *reason = "denied by configuration";
        return EID_DECISION_DENY;
    }
    if (status >= 500 && !st->id)
        return EID_DECISION_ERROR;
    /* sent to log in (no session, or step-up): not admitted */
    if (ap_is_HTTP_REDIRECT(status) && !st->event && st->decision == EID_DECISION_AUTHN)
        return EID_DECISION_AUTHN;
    /* a session event (login, logout, back-channel logout) names itself */
    *reason = st->event;
    return EID_DECISION_ALLOW;
}

int eid_audit_log_transaction(request_rec *r)
{
    const eid_srv_conf_t *c = ap_get_module_config(r->server->module_config,
                                                   &auth_eid_module);
    const eid_dir_conf_t *d = ap_get_module_config(r->per_dir_config, &auth_eid_module);
    eid_req_t *st = eid_req_get(r, 0);
    request_rec *last = r;
    eid_audit_rec_t rec;
    eid_audit_opts_t opts;
    const char *line;
    apr_size_t len;
    apr_status_t rv;

    if (!st || !st->tried || !c->audit || !c->audit->fd || !eid_dir_audit(d))
        return DECLINED;
    while (last->next)
        last = last->next;

    memset(&rec, 0, sizeof(rec));
    rec.time = r->request_time;
    rec.request_id = eid_request_id(r);
    rec.server = r->server->server_hostname;
    rec.client_ip = r->useragent_ip;
    rec.id = st->id;
    rec.user = eid_safe_user(r, st->id);
    rec.http_method = r->method;
    rec.resource = r->parsed_uri.path ? r->parsed_uri.path : r->uri;
    rec.status = last->status;
    rec.reason = st->reason;
    rec.tag = st->tag;
    rec.cert_issuer = st->cert_issuer;
    rec.cert_serial = st->cert_serial;
    rec.cert_subject = st->cert_subject;
    rec.authz = st->authz_trail;
    rec.revocation = st->rev_status;
    rec.revocation_source = st->rev_source;
    rec.decision = decide(st, last->status, &rec.reason);
    if (rec.reason != st->reason)
        rec.tag = NULL; /* the tag explains st->reason only */

    opts.pseudonymise = c->pseudonymise != 0;
    opts.key = eid_g->pseudonym_key;
    opts.key_len = eid_g->pseudonym_key_len;
    /* An identity that several requests share formats its fields once. */
    if (st->id && st->memo && st->memo->id == st->id && st->memo->pool) {
        eid_id_memo_t *m = st->memo;
        int k = opts.pseudonymise;
        if (!m->audit[k])
            m->audit[k] = eid_audit_identity_format(m->pool, st->id, &opts, &m->audit_len[k]);
        rec.id_fields = m->audit[k];
        rec.id_fields_len = m->audit_len[k];
    }
    line = eid_audit_format(r->pool, &rec, &opts, &len);
    rv = eid_audit_sink_write(r, c->audit, line, len);
    if (rv != APR_SUCCESS)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      "EID01303: audit record could not be written (request %s)",
                      rec.request_id);
    return OK;
}
