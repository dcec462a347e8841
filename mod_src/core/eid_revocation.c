/*
 * eid_revocation.c - OCSP requests and response checks, CRL checks
 * (eid_revocation.h).  The cache is in eid_revcache.c.
 */
#include "eid/eid_revocation.h"

#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

#include "eid/eid_util.h"
#include "eid_cert_int.h"

struct eid_ocsp_req {
    OCSP_REQUEST *req;
    OCSP_CERTID *id; /* owned by req */
    X509 *issuer;    /* up-ref'd */
    unsigned char *der;
    apr_size_t der_len;
};

void eid_ocsp_opts_default(eid_ocsp_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->nonce = 1;
    o->leeway = apr_time_from_sec(300);
    eid_http_opts_default(&o->http);
    o->http.max_bytes = 64 * 1024;
}

int eid_rev_judge(apr_pool_t *p, const eid_rev_answer_t *a, eid_result_t *res)
{
    const char *src = a->source == EID_REV_SRC_CRL ? "CRL" : "OCSP";

    if (a->status == EID_REV_GOOD)
        return eid_result_set(res, NULL, 0, NULL, "good");
    if (a->status == EID_REV_REVOKED)
        return eid_result_set(res, p, 5001, "EID05001",
                              "certificate revoked (%s, reason %d, at %" APR_TIME_T_FMT ")", src,
                              a->reason, apr_time_sec(a->revoked_at));
    return eid_result_set(res, p, 5002, "EID05002", "certificate unknown to its issuer (%s)", src);
}

/* ASN1_TIME -> apr_time_t; 0 when absent or unreadable. */
static apr_time_t asn1_to_apr(const ASN1_TIME *t)
{
    struct tm tm;

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return apr_time_from_sec(timegm(&tm));
}

const char *eid_ocsp_aia_url(apr_pool_t *p, X509 *cert)
{
    STACK_OF(OPENSSL_STRING) *l = X509_get1_ocsp(cert);
    const char *url = NULL;
    int i;

    for (i = 0; l && i < sk_OPENSSL_STRING_num(l); i++) {
        const char *u = sk_OPENSSL_STRING_value(l, i);
        if (!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)) {
            url = apr_pstrdup(p, u);
            break;
        }
    }
    X509_email_free(l);
    return url;
}

static apr_status_t req_cleanup(void *data)
{
    eid_ocsp_req_t *r = data;
    OCSP_REQUEST_free(r->req);
    X509_free(r->issuer);
    OPENSSL_free(r->der);
    return APR_SUCCESS;
}

apr_status_t eid_ocsp_req_make(apr_pool_t *p, X509 *cert, X509 *issuer, const eid_ocsp_opts_t *o,
                               eid_ocsp_req_t **out, eid_result_t *res)
{
    eid_ocsp_req_t *r = apr_pcalloc(p, sizeof(*r));
    OCSP_CERTID *id;
    int n;

    *out = NULL;
    apr_pool_cleanup_register(p, r, req_cleanup, apr_pool_cleanup_null);
    id = OCSP_cert_to_id(o->md ? o->md : EVP_sha1(), cert, issuer);
    r->req = OCSP_REQUEST_new();
    if (!id || !r->req || !OCSP_request_add0_id(r->req, id)) {
        OCSP_CERTID_free(id);
        ERR_clear_error();
        return eid_result_set(res, NULL, 5102, "EID05102", "OCSP request could not be built"),
               APR_EGENERAL;
    }
    r->id = id;
    if (o->nonce && !OCSP_request_add1_nonce(r->req, NULL, 16)) {
        ERR_clear_error();
        return eid_result_set(res, NULL, 5102, "EID05102", "OCSP nonce could not be added"),
               APR_EGENERAL;
    }
    n = i2d_OCSP_REQUEST(r->req, &r->der);
    if (n <= 0) {
        ERR_clear_error();
        return eid_result_set(res, NULL, 5102, "EID05102", "OCSP request could not be encoded"),
               APR_EGENERAL;
    }
    r->der_len = (apr_size_t)n;
    X509_up_ref(issuer);
    r->issuer = issuer;
    *out = r;
    return APR_SUCCESS;
}

const unsigned char *eid_ocsp_req_der(const eid_ocsp_req_t *r, apr_size_t *len)
{
    *len = r->der_len;
    return r->der;
}

/* The signature and signer checks.  Why a store holding only the issuer,
 * with PARTIAL_CHAIN: the responder must be the issuer itself or one
 * certificate below it (RFC 6960 4.2.2.2); a chain to some other trusted
 * root proves nothing about this issuer.  OCSP_basic_verify() then checks
 * that the signer is the certId's issuer, or that the issuer issued it and it
 * has id-kp-OCSPSigning. */
static int verify_signer(OCSP_BASICRESP *bs, X509 *issuer)
{
    X509_STORE *st = X509_STORE_new();
    STACK_OF(X509) *extra = sk_X509_new_null();
    int ok = 0;

    if (st && extra && X509_STORE_add_cert(st, issuer) && sk_X509_push(extra, issuer)) {
        X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
        ok = OCSP_basic_verify(bs, extra, st, 0) == 1;
    }
    sk_X509_free(extra);
    X509_STORE_free(st);
    ERR_clear_error();
    return ok;
}

apr_status_t eid_ocsp_resp_check(apr_pool_t *p, const eid_ocsp_req_t *r, const unsigned char *der,
                                 apr_size_t len, const eid_ocsp_opts_t *o, eid_rev_answer_t *out,
                                 eid_result_t *res)
{
    const unsigned char *cur = der;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisu = NULL, *nextu = NULL;
    apr_time_t now = o->now ? o->now : apr_time_now();
    apr_status_t rv = APR_EGENERAL;
    int st, reason = -1, status;

    memset(out, 0, sizeof(*out));
    out->reason = -1;
    if (len > (apr_size_t)LONG_MAX || !(resp = d2i_OCSP_RESPONSE(NULL, &cur, (long)len)) ||
        cur != der + len) {
        eid_result_set(res, NULL, 5105, "EID05105", "OCSP response cannot be parsed");
        goto done;
    }
    st = OCSP_response_status(resp);
    if (st != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        eid_result_set(res, p, 5106, "EID05106", "OCSP responder answered %s",
                       OCSP_response_status_str(st));
        goto done;
    }
    if (!(bs = OCSP_response_get1_basic(resp))) {
        eid_result_set(res, NULL, 5105, "EID05105", "OCSP response is not a basic response");
        goto done;
    }
    if (!verify_signer(bs, r->issuer)) {
        eid_result_set(res, NULL, 5107, "EID05107",
                       "OCSP response not signed by the issuer or its delegated responder");
        goto done;
    }
    /* Why by certId: one response may carry several answers; only the one
     * for exactly our issuer key/name hash and serial counts. */
    if (!OCSP_resp_find_status(bs, r->id, &status, &reason, &rev, &thisu, &nextu)) {
        eid_result_set(res, NULL, 5108, "EID05108",
                       "OCSP response has no answer for this certificate (certId mismatch)");
        goto done;
    }
    out->this_update = asn1_to_apr(thisu);
    out->next_update = nextu ? asn1_to_apr(nextu) : 0;
    /* Why an answer without nextUpdate must be fresh (thisUpdate within the
     * leeway): nothing else bounds its age, and an old signed "good" replayed
     * on the plain-http path (a responder that ignores our nonce) would hide
     * a later revocation.  Times before 1970 come out <= 0 and are refused. */
    if (out->this_update <= 0 || (nextu && out->next_update <= 0) ||
        out->this_update > now + o->leeway ||
        (out->next_update && out->next_update < now - o->leeway) ||
        (!nextu && out->this_update < now - o->leeway)) {
        eid_result_set(res, NULL, 5109, "EID05109",
                       "OCSP answer is stale or not yet valid (thisUpdate/nextUpdate)");
        goto done;
    }
    /* Nonce: 0 is a different nonce echoed (a replay); -1 (ours not echoed)
     * is a responder that does not support nonces - allowed, its answer is
     * still bounded by thisUpdate/nextUpdate. */
    if (OCSP_check_nonce(r->req, bs) == 0) {
        eid_result_set(res, NULL, 5110, "EID05110", "OCSP response echoes another nonce");
        goto done;
    }
    out->source = EID_REV_SRC_OCSP;
    out->fetched = now;
    if (status == V_OCSP_CERTSTATUS_GOOD)
        out->status = EID_REV_GOOD;
    else if (status == V_OCSP_CERTSTATUS_REVOKED) {
        out->status = EID_REV_REVOKED;
        out->reason = reason;
        out->revoked_at = asn1_to_apr(rev);
    }
    else
        out->status = EID_REV_UNKNOWN;
    rv = APR_SUCCESS;
done:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    return rv;
}

apr_status_t eid_ocsp_check(apr_pool_t *p, X509 *cert, X509 *issuer, const eid_ocsp_opts_t *o,
                            eid_rev_answer_t *out, eid_result_t *res)
{
    return eid_ocsp_fetch(p, cert, issuer, o, out, NULL, NULL, res);
}

apr_status_t eid_ocsp_recheck(apr_pool_t *p, X509 *cert, X509 *issuer, const unsigned char *der,
                              apr_size_t len, const eid_ocsp_opts_t *o, eid_rev_answer_t *out,
                              eid_result_t *res)
{
    eid_ocsp_opts_t no_nonce = *o;
    eid_ocsp_req_t *r;
    apr_status_t rv;

    memset(out, 0, sizeof(*out));
    /* Why a request without a nonce: the stored response echoes the nonce
     * of the process that fetched it; OCSP_check_nonce() then answers 3
     * (ours absent), never "another nonce".  Everything else - signer,
     * certId, thisUpdate / nextUpdate - is checked as for a fresh answer. */
    no_nonce.nonce = 0;
    if ((rv = eid_ocsp_req_make(p, cert, issuer, &no_nonce, &r, res)) != APR_SUCCESS)
        return rv;
    return eid_ocsp_resp_check(p, r, der, len, &no_nonce, out, res);
}

apr_status_t eid_ocsp_fetch(apr_pool_t *p, X509 *cert, X509 *issuer, const eid_ocsp_opts_t *o,
                            eid_rev_answer_t *out, const unsigned char **der, apr_size_t *der_len,
                            eid_result_t *res)
{
    const char *url = o->url ? o->url : eid_ocsp_aia_url(p, cert);
    eid_ocsp_req_t *r;
    eid_http_resp_t hr;
    eid_result_t hres = {0};
    apr_status_t rv;

    memset(out, 0, sizeof(*out));
    if (der) {
        *der = NULL;
        *der_len = 0;
    }
    if (!url)
        return eid_result_set(res, NULL, 5101, "EID05101",
                              "no OCSP responder: none configured, none in the certificate"),
               APR_EINVAL;
    if ((rv = eid_ocsp_req_make(p, cert, issuer, o, &r, res)) != APR_SUCCESS)
        return rv;
    rv = eid_http_post_ocsp(p, url, &o->http, r->der, r->der_len, &hr, &hres);
    if (rv != APR_SUCCESS) {
        /* Down, slow, too big or a bad URL: all "cannot be had". */
        eid_result_set(res, p, 5103, "EID05103", "OCSP responder %s: %s (%s)", url,
                       hres.reason ? hres.reason : "failed", hres.tag ? hres.tag : "-");
        return rv;
    }
    if (hr.status != 200) {
        eid_result_set(res, p, 5104, "EID05104", "OCSP responder %s answered HTTP %ld", url,
                       hr.status);
        return APR_EGENERAL;
    }
    rv = eid_ocsp_resp_check(p, r, (const unsigned char *)hr.body, hr.len, o, out, res);
    if (rv == APR_SUCCESS && der) {
        *der = (const unsigned char *)hr.body;
        *der_len = hr.len;
    }
    return rv;
}

/* ---- CRLs ----------------------------------------------------------------- */

static apr_status_t crl_cleanup(void *data)
{
    X509_CRL_free(data);
    return APR_SUCCESS;
}

apr_status_t eid_crl_parse(apr_pool_t *p, const char *buf, apr_size_t len, X509_CRL **out,
                           eid_result_t *res)
{
    X509_CRL *crl = NULL;

    *out = NULL;
    if (len > 0 && len < (apr_size_t)INT_MAX) {
        if (memmem(buf, len, "-----BEGIN X509 CRL-----", 24)) {
            BIO *b = BIO_new_mem_buf(buf, (int)len);
            if (b)
                crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
            BIO_free(b);
        }
        else {
            const unsigned char *cur = (const unsigned char *)buf;
            crl = d2i_X509_CRL(NULL, &cur, (long)len);
            if (crl && cur != (const unsigned char *)buf + len) {
                X509_CRL_free(crl); /* trailing garbage */
                crl = NULL;
            }
        }
    }
    ERR_clear_error();
    if (!crl)
        return eid_result_set(res, NULL, 5202, "EID05202", "CRL is neither PEM nor DER"),
               APR_EGENERAL;
    apr_pool_cleanup_register(p, crl, crl_cleanup, apr_pool_cleanup_null);
    *out = crl;
    return APR_SUCCESS;
}

apr_status_t eid_crl_load(apr_pool_t *p, const char *path, apr_size_t max, X509_CRL **out,
                          eid_result_t *res)
{
    char *buf;
    apr_size_t len;
    const char *err;

    *out = NULL;
    if (eid_file_read(p, path, max, 0, &buf, &len, &err) != APR_SUCCESS)
        return eid_result_set(res, p, 5201, "EID05201", "CRL file %s: %s", path, err),
               APR_EGENERAL;
    return eid_crl_parse(p, buf, len, out, res);
}

apr_status_t eid_crl_check(apr_pool_t *p, X509_CRL *crl, X509 *cert, X509 *issuer,
                           apr_time_t now, apr_interval_time_t leeway, eid_rev_answer_t *out,
                           eid_result_t *res)
{
    EVP_PKEY *key = X509_get0_pubkey(issuer);
    X509_REVOKED *rev = NULL;
    int ok;

    memset(out, 0, sizeof(*out));
    out->reason = -1;
    if (!now)
        now = apr_time_now();
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0 ||
        X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuer)) != 0)
        return eid_result_set(res, NULL, 5205, "EID05205",
                              "CRL or certificate is not of this issuer"),
               APR_EGENERAL;
    ok = key && X509_CRL_verify(crl, key) == 1;
    ERR_clear_error();
    if (!ok)
        return eid_result_set(res, NULL, 5203, "EID05203", "CRL not signed by the issuer's key"),
               APR_EGENERAL;
    /* Why refuse a delta CRL: it lists only the changes since its base CRL;
     * read as a complete CRL it would call every earlier revocation good. */
    if (X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0)
        return eid_result_set(res, NULL, 5206, "EID05206",
                              "a delta CRL cannot be used on its own"),
               APR_EGENERAL;
    out->this_update = asn1_to_apr(X509_CRL_get0_lastUpdate(crl));
    out->next_update = asn1_to_apr(X509_CRL_get0_nextUpdate(crl));
    /* Why a CRL without nextUpdate is stale: nothing bounds how old it may
     * be, and a replayed old CRL would hide every later revocation. */
    if (out->next_update <= 0 || out->next_update < now - leeway)
        return eid_result_set(res, NULL, 5204, "EID05204",
                              "CRL is stale (nextUpdate missing or past)"),
               APR_EGENERAL;
    if (out->this_update <= 0 || out->this_update > now + leeway)
        return eid_result_set(res, NULL, 5204, "EID05204", "CRL is not yet valid"),
               APR_EGENERAL;
    out->source = EID_REV_SRC_CRL;
    out->status = EID_REV_GOOD;
    out->fetched = now;
    if (X509_CRL_get0_by_serial(crl, &rev, (ASN1_INTEGER *)X509_get0_serialNumber(cert)) == 1 &&
        rev) {
        ASN1_ENUMERATED *rc = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
        out->status = EID_REV_REVOKED;
        out->reason = rc ? (int)ASN1_ENUMERATED_get(rc) : 0;
        out->revoked_at = asn1_to_apr(X509_REVOKED_get0_revocationDate(rev));
        ASN1_ENUMERATED_free(rc);
    }
    ERR_clear_error();
    return APR_SUCCESS;
}

/* ---- issuers of a trust profile ------------------------------------------- */

X509 *eid_rev_profile_ca(const struct eid_trust_profile *tp, int i)
{
    if (!tp || i < 0 || i >= tp->issuers->nelts)
        return NULL;
    return APR_ARRAY_IDX(tp->issuers, i, eid_cert_issuer_t).cert;
}

X509 *eid_rev_profile_issuer(const struct eid_trust_profile *tp, X509 *cert)
{
    int i;

    for (i = 0; tp && i < tp->issuers->nelts; i++) {
        X509 *ca = APR_ARRAY_IDX(tp->issuers, i, eid_cert_issuer_t).cert;
        EVP_PKEY *key = X509_get0_pubkey(ca);
        /* Why the signature again: the issuer's key is what OCSP and CRL
         * answers are checked against; a CA with the same name but another
         * key must not be picked. */
        if (X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca)) == 0 &&
            X509_check_issued(ca, cert) == X509_V_OK && key && X509_verify(cert, key) == 1) {
            ERR_clear_error();
            return ca;
        }
    }
    ERR_clear_error();
    return NULL;
}
