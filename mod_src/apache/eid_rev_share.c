/*
 * eid_rev_share.c - OCSP answers shared through the session store
 * (EidSessionStore: shm today, Redis later; only eid_store.h is used), so
 * that one fetch serves every process of the server - and every server of a
 * farm on one Redis (docs/revocation.md, "Caching").
 *
 * What is shared is the SIGNED response (DER), never a verdict: a store may
 * be written by others (a Redis reachable by other services), so every
 * value read is checked again as if it had just come from the responder
 * (eid_ocsp_recheck: signer, certId of THIS certificate, thisUpdate /
 * nextUpdate).  A value that fails, or a store that fails, is a miss: the
 * source is asked, and its answer replaces the value.
 *
 * Key: "v:" + hex(eid_rev_key()) - SHA-256 over the issuer's key hash and
 * the serial, the per-process cache's key.  Value: version byte 1, the
 * fetch time (8 bytes, big-endian microseconds), the DER.  TTL: min(max-age,
 * nextUpdate - now) (an answer without nextUpdate: until thisUpdate + the
 * leeway, the only time it is accepted anyway).  The fetch time read back is
 * trusted only to shorten an answer's life (clamped to now): what bounds a
 * shared answer is its signed nextUpdate.
 *
 * Shared state (docs/architecture.md): two process-wide atomic flags (the
 * store failing, a value failing its check), so that each is logged once
 * per outage, not per request.
 */
#include "eid_rev_int.h"

#include "apr_strings.h"

#include "eid_login_glue.h"

#define SHARE_VERSION 1
#define SHARE_HDR 9

static atomic_int store_down, value_bad;

eid_store_t *eid_rev_share_store(void)
{
    return eid_login_g ? eid_login_g->store : NULL;
}

static void share_key(const unsigned char key[EID_REV_KEY_LEN], char out[2 + 2 * EID_REV_KEY_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    int i;

    out[0] = 'v';
    out[1] = ':';
    for (i = 0; i < EID_REV_KEY_LEN; i++) {
        out[2 + 2 * i] = hex[key[i] >> 4];
        out[3 + 2 * i] = hex[key[i] & 15];
    }
    out[2 + 2 * EID_REV_KEY_LEN] = '\0';
}

static void store_failed(request_rec *r, const char *op)
{
    if (atomic_exchange(&store_down, 1) == 0)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "EID05130: the session store (%s) failed to %s a shared revocation "
                      "answer; answers are fetched by each process until it works again "
                      "(logged once per outage)", eid_store_name(eid_rev_share_store()), op);
}

static void store_worked(request_rec *r)
{
    if (atomic_exchange(&store_down, 0) == 1)
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "EID05131: the session store answers again for shared revocation "
                      "answers");
}

int eid_rev_share_get(request_rec *r, apr_pool_t *p, const rev_prof_t *rp, X509 *cert,
                      X509 *issuer, const unsigned char key[EID_REV_KEY_LEN], apr_time_t now,
                      eid_rev_answer_t *a)
{
    eid_store_t *st = eid_rev_share_store();
    char k[2 + 2 * EID_REV_KEY_LEN + 1];
    unsigned char *v = NULL;
    apr_size_t vlen = 0;
    eid_store_rc_e rc;
    eid_ocsp_opts_t o;
    eid_result_t res = {0};
    apr_time_t fetched = 0;
    int i;

    if (!st)
        return 0;
    share_key(key, k);
    rc = eid_store_get(st, p, k, sizeof(k) - 1, &v, &vlen);
    if (rc == EID_STORE_ERROR) {
        store_failed(r, "read");
        return 0;
    }
    store_worked(r);
    if (rc != EID_STORE_OK)
        return 0;
    if (vlen <= SHARE_HDR || v[0] != SHARE_VERSION) {
        eid_result_set(&res, NULL, 5105, "EID05105", "not a shared OCSP answer (format)");
    }
    else {
        for (i = 1; i < SHARE_HDR; i++)
            fetched = (fetched << 8) | v[i];
        /* Why clamp: a fetch time from the future would lengthen max-age. */
        if (fetched > now || fetched <= 0)
            fetched = now;
        if (fetched + rp->max_age <= now)
            return 0; /* too old for this profile's max-age: a miss, not a fault */
        eid_ocsp_opts_default(&o);
        o.now = now;
        if (eid_ocsp_recheck(p, cert, issuer, v + SHARE_HDR, vlen - SHARE_HDR, &o, a, &res) ==
            APR_SUCCESS) {
            a->fetched = fetched;
            if (atomic_exchange(&value_bad, 0) == 1)
                ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                              "EID05133: shared revocation answers check again");
            return 1;
        }
    }
    /* Why a miss and not a refusal: the value proves nothing either way;
     * the source is asked and its answer overwrites the value. */
    if (atomic_exchange(&value_bad, 1) == 0)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "EID05132: trust profile %s: a shared revocation answer in the session "
                      "store fails its check (%s: %s); ignored, the source is asked (logged "
                      "once until a shared answer checks again)", rp->name, res.tag,
                      res.reason);
    else
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "EID05132: trust profile %s: a shared revocation answer fails its "
                      "check (%s: %s); ignored", rp->name, res.tag, res.reason);
    return 0;
}

void eid_rev_share_put(request_rec *r, apr_pool_t *p, const rev_prof_t *rp,
                       const unsigned char key[EID_REV_KEY_LEN], const unsigned char *der,
                       apr_size_t len, const eid_rev_answer_t *a, apr_time_t now)
{
    eid_store_t *st = eid_rev_share_store();
    char k[2 + 2 * EID_REV_KEY_LEN + 1];
    apr_time_t end = a->next_update ? a->next_update : a->this_update + LEEWAY;
    apr_interval_time_t ttl = rp->max_age;
    unsigned char *v;
    int i;

    if (!st || !der || !len || len > EID_STORE_VALUE_MAX - SHARE_HDR)
        return;
    /* never beyond nextUpdate */
    if (end - now < ttl)
        ttl = end - now;
    if (ttl <= 0)
        return;
    v = apr_palloc(p, SHARE_HDR + len);
    v[0] = SHARE_VERSION;
    for (i = 0; i < 8; i++)
        v[1 + i] = (unsigned char)((apr_uint64_t)a->fetched >> (56 - 8 * i));
    memcpy(v + SHARE_HDR, der, len);
    share_key(key, k);
    if (eid_store_set(st, k, sizeof(k) - 1, v, SHARE_HDR + len, ttl) != EID_STORE_OK)
        store_failed(r, "write");
    else
        store_worked(r);
}
