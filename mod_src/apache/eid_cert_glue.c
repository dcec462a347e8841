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
#include "eid_dir_glue.h"
#include "eid_rev_glue.h"

#include "apr_atomic.h"
#include "apr_strings.h"
#include "http_connection.h"
#include "http_ssl.h"

#define EID_CONN_SLOTS 4
/* SSL_CLIENT_VERIFY is "FAILED:" + OpenSSL's verify error text (the longest
 * is about 80 bytes): quoted up to this length, marked when cut. */
#define VERIFY_TEXT_MAX 160

/* One verdict per distinct profile list used on this connection.  Why keyed
 * by the list's content (the profiles' names, in order) and never by its
 * address: a list from .htaccess lives in the request pool, and the next
 * request on the connection gets its list at the same address - a verdict
 * under one directory's profiles was reused under another's. */
typedef struct {
    const char *profiles_key; /* in the connection pool */
    /* The directory the identity was enriched from (pconf, immutable; by
     * address: directories are never in a request pool). */
    const eid_directory_t *dir;
    eid_cert_code_e code;
    eid_identity_t *id;
    eid_result_t res;
    eid_cert_ref_t ref; /* a refused certificate's issuer and serial */
    eid_id_memo_t memo; /* what is derived from `id` */
    eid_rev_verdict_t rev; /* its revocation, re-checked from rev.until on */
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
                             const apr_array_header_t *profiles, const char *key,
                             const eid_directory_t *dir)
{
    conn_rec *c = r->connection;
    conn_slot_t *s;
    const char *pem = ssl_var(r, "SSL_CLIENT_CERT");
    int i = cc->nslots < EID_CONN_SLOTS ? cc->nslots++ : (cc->next++ % EID_CONN_SLOTS);

    s = &cc->slot[i];
    memset(s, 0, sizeof(*s));
    s->profiles_key = apr_pstrdup(c->pool, key);
    s->dir = dir;
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
    /* Enriched once per connection, with the verdict: keep-alive requests
     * read the organisation kind, groups and roles from the cached identity. */
    if (s->code == EID_CERT_OK) {
        eid_dir_apply(c->pool, dir, s->id);
        s->memo.id = s->id;
        s->memo.pool = c->pool;
    }
    else
        eid_cert_ref_pem(c->pool, pem, strlen(pem), eid_g->pseudonym_key,
                         eid_g->pseudonym_key_len, &s->ref);
    return s;
}

/* A refused certificate in the log line and the audit record: issuer,
 * serial and subject - the subject with any personnummer pseudonymised by
 * eid_cert_ref_pem(), so an impostor alert can be followed up without a
 * personal number in clear in the logs. */
static void refuse_cert_at(request_rec *r, eid_req_t *st, const eid_cert_ref_t *ref,
                           eid_decision_e decision, int level, const char *tag,
                           const char *reason)
{
    const char *issuer = ref && ref->issuer ? ref->issuer : "?";
    const char *serial = ref && ref->serial ? ref->serial : "?";
    const char *subject = ref && ref->subject ? ref->subject : "?";

    eid_refuse(r, st, decision, level, tag,
               apr_psprintf(r->pool, "%s [issuer \"%s\", serial %s, subject \"%s\"]", reason,
                            issuer, serial, subject));
    st->reason = reason; /* the audit record has the certificate in fields of its own */
    st->cert_issuer = ref ? ref->issuer : NULL;
    st->cert_serial = ref ? ref->serial : NULL;
    st->cert_subject = ref ? ref->subject : NULL;
}

static void refuse_cert(request_rec *r, eid_req_t *st, const eid_cert_ref_t *ref,
                        eid_decision_e decision, const char *tag, const char *reason)
{
    refuse_cert_at(r, st, ref, decision, APLOG_WARNING, tag, reason);
}

eid_try_e eid_try_cert(request_rec *r, const eid_dir_conf_t *d, eid_req_t *st,
                 eid_identity_t **id)
{
    conn_rec *c = r->connection;
    const apr_array_header_t *profiles = d->profiles ? d->profiles : eid_all_profiles();
    const char *profiles_key = d->profiles_key;
    static apr_uint32_t misconfig_logged;
    eid_conn_t *cc;
    conn_slot_t *s = NULL;
    const eid_directory_t *dir;
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
            const char *pem = ssl_var(r, "SSL_CLIENT_CERT");
            size_t vlen = strlen(verify);
            eid_cert_ref_t ref;
            if (eid_cert_ref_pem(r->pool, pem, pem ? strlen(pem) : 0, eid_g->pseudonym_key,
                                 eid_g->pseudonym_key_len, &ref) != 0)
                memset(&ref, 0, sizeof(ref));
            refuse_cert(r, st, &ref, EID_DECISION_AUTHN, "EID01002",
                        apr_psprintf(r->pool, "client certificate not verified by mod_ssl "
                                     "(SSL_CLIENT_VERIFY=%.*s%s)",
                                     (int)(vlen > VERIFY_TEXT_MAX ? VERIFY_TEXT_MAX : vlen),
                                     verify, vlen > VERIFY_TEXT_MAX ? "...[cut]" : ""));
            return eid_try_refused(st, HTTP_FORBIDDEN);
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
        return eid_try_refused(st, HTTP_FORBIDDEN);
    }
    if (!d->profiles) {
        /* Naming nothing means "the only profile"; with several, nothing is
         * guessed.  `apachectl -t` refuses this wherever it can see it
         * (eid_scope.c); .htaccess it cannot.  Logged at error once per
         * process, then at debug: the 500 itself is per request. */
        if (profiles->nelts > 1) {
            int first = apr_atomic_cas32(&misconfig_logged, 1, 0) == 0;
            eid_refuse(r, st, EID_DECISION_ERROR, first ? APLOG_ERR : APLOG_DEBUG,
                       "EID01020", apr_psprintf(r->pool, "misconfigured: this location "
                                                "accepts client certificates but names no "
                                                "EidCertProfiles, and %d trust profiles are "
                                                "defined", profiles->nelts));
            return eid_try_refused(st, HTTP_INTERNAL_SERVER_ERROR);
        }
        profiles_key = eid_trust_profile_name(APR_ARRAY_IDX(profiles, 0,
                                                            const eid_trust_profile_t *));
    }
    if (eid_dir_for(r, d, st, &dir))
        return EID_TRY_REFUSED;
    for (i = 0; i < cc->nslots; i++)
        if (cc->slot[i].dir == dir && !strcmp(cc->slot[i].profiles_key, profiles_key)) {
            s = &cc->slot[i];
            break;
        }
    if (!s)
        s = evaluate(r, cc, profiles, profiles_key, dir);

    if (s->code != EID_CERT_OK) {
        refuse_cert(r, st, &s->ref, EID_DECISION_AUTHN, s->res.tag,
                    apr_pstrcat(r->pool, "client certificate refused: ", s->res.reason, NULL));
        return eid_try_refused(st, HTTP_FORBIDDEN);
    }
    /* The connection may outlive the certificate. */
    if (s->id->expires && s->id->expires < r->request_time) {
        eid_refuse(r, st, EID_DECISION_AUTHN, APLOG_WARNING, "EID01005",
                   "client certificate expired during the connection");
        return eid_try_refused(st, HTTP_FORBIDDEN);
    }
    /* Revocation, after every other check: re-checked on a keep-alive
     * connection once its answer is older than allowed (eid_rev_glue.c). */
    if (!s->rev.done || (s->rev.until && s->rev.until <= r->request_time))
        eid_rev_check(r, s->id->profile, &s->rev);
    st->rev_status = s->rev.status;
    st->rev_source = s->rev.source;
    if (s->rev.refuse) {
        const char *pem = ssl_var(r, "SSL_CLIENT_CERT");
        eid_cert_ref_t ref;
        if (eid_cert_ref_pem(r->pool, pem, pem ? strlen(pem) : 0, eid_g->pseudonym_key,
                             eid_g->pseudonym_key_len, &ref) != 0)
            memset(&ref, 0, sizeof(ref));
        /* During an outage the outage line (EID05120) is the log line. */
        refuse_cert_at(r, st, &ref,
                       s->rev.refuse == HTTP_FORBIDDEN ? EID_DECISION_AUTHN : EID_DECISION_ERROR,
                       s->rev.quiet ? APLOG_DEBUG : APLOG_WARNING, s->rev.tag,
                       apr_pstrcat(r->pool, "client certificate refused: ", s->rev.reason,
                                   NULL));
        return eid_try_refused(st, s->rev.refuse);
    }
    *id = s->id;
    st->memo = &s->memo;
    return EID_TRY_OK;
}
