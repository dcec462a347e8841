/*
 * eid_cert_glue.c - the client-certificate method.
 *
 * mod_ssl has verified the chain at the handshake; we take the certificate
 * only when it says SSL_CLIENT_VERIFY == SUCCESS, and then ask the core
 * whether it is a person's e-ID under one of this location's trust
 * profiles.  That verdict is cached on the connection, so keep-alive
 * requests cost two variable look-ups and a string compare, not a parse.
 */
#include "mod_auth_eid.h"

#include "apr_strings.h"
#include "http_connection.h"
#include "http_ssl.h"

#define EID_CONN_SLOTS 4

/* One verdict per distinct profile list used on this connection. */
typedef struct {
    const apr_array_header_t *profiles;
    eid_cert_code_e code;
    eid_identity_t *id;
    eid_result_t res;
} conn_slot_t;

typedef struct {
    const char *cert_key; /* identifies the certificate the slots belong to */
    conn_slot_t slot[EID_CONN_SLOTS];
    int nslots, next;
} eid_conn_t;

static const char *ssl_var(request_rec *r, const char *name)
{
    return ap_ssl_var_lookup(r->pool, r->server, r->connection, r, name);
}

/* A key that changes whenever the peer certificate does.  Certificates are
 * demanded per virtual host, but TLS 1.2 renegotiation (a per-directory
 * SSLVerifyClient) can replace the certificate on a live connection: the
 * cached verdict must not outlive the certificate it was made for.
 * OpenSSL keeps the peer certificate in the TLS session, so a new
 * certificate means a new session: the session id is an exact key, and the
 * cheapest one mod_ssl offers (SSL_CLIENT_M_SERIAL formats through a BIO and
 * the RFC 4523 assertion prints the issuer DN - each cost more than all the
 * rest of the module's per-request work).  Should a session id ever be empty,
 * the serial is used instead. */
static const char *cert_key(request_rec *r)
{
    const char *k = ssl_var(r, "SSL_SESSION_ID");
    if (k && *k)
        return k;
    k = ssl_var(r, "SSL_CLIENT_M_SERIAL");
    return k ? k : "";
}

static conn_slot_t *evaluate(request_rec *r, eid_conn_t *cc,
                             const apr_array_header_t *profiles)
{
    conn_rec *c = r->connection;
    conn_slot_t *s;
    const char *pem = ssl_var(r, "SSL_CLIENT_CERT");
    int i = cc->nslots < EID_CONN_SLOTS ? cc->nslots++ : (cc->next++ % EID_CONN_SLOTS);

    s = &cc->slot[i];
    memset(s, 0, sizeof(*s));
    s->profiles = profiles;
    if (!pem || !*pem) {
        s->code = EID_CERT_PARSE;
        eid_result_set(&s->res, NULL, EID_CERT_PARSE, "EID01003",
                       "mod_ssl reported a verified certificate but not its content");
        return s;
    }
    /* The identity lives in the connection pool: keep-alive requests reuse it. */
    s->code = eid_cert_identify_pem(c->pool, pem, strlen(pem),
                                    (const eid_trust_profile_t *const *)profiles->elts,
                                    profiles->nelts, apr_time_now(), &s->id, &s->res);
    return s;
}

int eid_try_cert(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                 eid_identity_t **id)
{
    conn_rec *c = r->connection;
    const apr_array_header_t *profiles = d->profiles ? d->profiles : eid_all_profiles();
    eid_conn_t *cc;
    conn_slot_t *s = NULL;
    const char *verify, *key;
    int i;

    if (!ap_ssl_conn_is_ssl(c))
        return EID_TRY_ABSENT;
    cc = ap_get_module_config(c->conn_config, &auth_eid_module);
    key = cert_key(r);
    /* Keep-alive fast path: a verdict is cached only for a certificate that
     * mod_ssl had verified; while the same certificate is on the connection,
     * SSL_CLIENT_VERIFY need not be asked again (each mod_ssl look-up walks
     * a long list of names). */
    if (!cc || !cc->cert_key || strcmp(cc->cert_key, key)) {
        verify = ssl_var(r, "SSL_CLIENT_VERIFY");
        if (!verify || !*verify || !strcmp(verify, "NONE"))
            return EID_TRY_ABSENT;
        if (strcmp(verify, "SUCCESS")) {
            /* GENEROUS (optional_no_ca) or FAILED: mod_ssl did not vouch for it. */
            eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_WARNING, "EID01002",
                       apr_psprintf(r->pool, "client certificate not verified by mod_ssl "
                                    "(SSL_CLIENT_VERIFY=%.40s)", verify));
            return HTTP_FORBIDDEN;
        }
        if (!cc) {
            cc = apr_pcalloc(c->pool, sizeof(*cc));
            ap_set_module_config(c->conn_config, &auth_eid_module, cc);
        }
        cc->cert_key = apr_pstrdup(c->pool, key);
        cc->nslots = cc->next = 0;
    }
    if (!profiles || profiles->nelts == 0) {
        eid_refuse(r, st, EID_DECISION_ERROR, APLOG_ERR, "EID01004",
                   "client certificate presented but no trust profile is configured "
                   "(EidTrustIssuer)");
        return HTTP_FORBIDDEN;
    }
    for (i = 0; i < cc->nslots; i++)
        if (cc->slot[i].profiles == profiles) {
            s = &cc->slot[i];
            break;
        }
    if (!s)
        s = evaluate(r, cc, profiles);

    if (s->code != EID_CERT_OK) {
        eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_WARNING, s->res.tag,
                   apr_pstrcat(r->pool, "client certificate refused: ", s->res.reason,
                               NULL));
        return HTTP_FORBIDDEN;
    }
    /* The connection may outlive the certificate. */
    if (s->id->expires && s->id->expires < r->request_time) {
        eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_WARNING, "EID01005",
                   "client certificate expired during the connection");
        return HTTP_FORBIDDEN;
    }
    *id = s->id;
    return OK;
}
