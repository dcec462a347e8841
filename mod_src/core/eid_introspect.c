/*
 * eid_introspect.c - RFC 7662 client with an answer cache, a refusal cache
 * and a bound on the calls in flight.
 */
#include "eid/eid_introspect.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* One remembered refusal.  Only the token's SHA-256 is kept, never the
 * token; tag and reason are copies (the originals may live in a request
 * pool). */
typedef struct neg_slot {
    unsigned char key[EID_TOKCACHE_KEY_LEN];
    apr_time_t until; /* 0: empty */
    char tag[9];
    char reason[96];
} neg_slot_t;

struct eid_introspect {
    eid_introspect_conf_t conf;
    eid_jwt_rules_t rules;   /* a copy: the checks cannot change under the caches */
    const char *user, *pass; /* form-encoded once, at configuration */
    eid_tokcache_t *cache;   /* active answers (NULL: off or before child init) */
    /* Refusals: a fixed table in pchild (NULL: off), and the rate limit's
     * bucket; both guarded by `lock`. */
    apr_thread_mutex_t *lock;
    neg_slot_t *neg;
    double bucket;           /* calls that may start now (at most max_rate) */
    apr_time_t bucket_at;    /* when `bucket` was last filled */
    atomic_int inflight;     /* calls to the endpoint running now */
};

/* Calls to any introspection endpoint running now in this process, and
 * their bound (0: none).  Process-wide on purpose: per-provider bounds add
 * up with the number of providers.  C11 atomics, no lock; the bound is
 * written once per child before requests run. */
static atomic_int all_inflight;
static atomic_int all_limit;

void eid_introspect_set_process_limit(int n)
{
    atomic_store(&all_limit, n > 0 ? n : 0);
}

/* Take one of the process-wide call slots: 1 taken, 0 none free, -1 no
 * bound (nothing to give back). */
static int all_take(void)
{
    int lim = atomic_load(&all_limit);
    if (lim <= 0)
        return -1;
    if (atomic_fetch_add(&all_inflight, 1) >= lim) {
        atomic_fetch_sub(&all_inflight, 1);
        return 0;
    }
    return 1;
}

static void all_give(int taken)
{
    if (taken > 0)
        atomic_fetch_sub(&all_inflight, 1);
}

eid_introspect_t *eid_introspect_create(apr_pool_t *pconf, const eid_introspect_conf_t *c)
{
    eid_introspect_t *in = apr_pcalloc(pconf, sizeof(*in));

    in->conf = *c;
#define DUP(f) in->conf.f = c->f ? apr_pstrdup(pconf, c->f) : NULL
    DUP(name); DUP(endpoint); DUP(client_id); DUP(client_secret); DUP(http.ca_file);
#undef DUP
    if (c->rules)
        in->rules = *c->rules;
    in->conf.rules = &in->rules;
    if (in->conf.max_inflight <= 0)
        in->conf.max_inflight = 1;
    atomic_init(&in->inflight, 0);
    if (c->client_id) {
        in->user = eid_http_form_encode(pconf, c->client_id, strlen(c->client_id));
        in->pass = eid_http_form_encode(pconf, c->client_secret ? c->client_secret : "",
                                        c->client_secret ? strlen(c->client_secret) : 0);
    }
    return in;
}

apr_status_t eid_introspect_child_init(eid_introspect_t *in, apr_pool_t *pchild)
{
    apr_status_t rv;

    if (in->conf.cache_ttl > 0) {
        in->cache = eid_tokcache_create(pchild, in->conf.cache_entries > 0
                                                    ? in->conf.cache_entries : 1024,
                                        in->conf.cache_ttl);
        if (!in->cache)
            return APR_ENOMEM;
    }
    rv = apr_thread_mutex_create(&in->lock, APR_THREAD_MUTEX_DEFAULT, pchild);
    if (rv != APR_SUCCESS)
        return rv;
    if (in->conf.negative_ttl > 0)
        in->neg = apr_pcalloc(pchild, EID_INTROSPECT_NEG_SLOTS * sizeof(neg_slot_t));
    in->bucket = in->conf.max_rate;
    in->bucket_at = 0;
    return APR_SUCCESS;
}

int eid_introspect_inflight(eid_introspect_t *in)
{
    return atomic_load(&in->inflight);
}

static apr_status_t json_cleanup(void *data)
{
    json_decref(data);
    return APR_SUCCESS;
}

int eid_introspect_query(eid_introspect_t *in, apr_pool_t *p, const char *token,
                         apr_size_t len, json_t **claims, eid_result_t *res)
{
    eid_http_resp_t r;
    eid_result_t hr = {0};
    json_error_t jerr;
    json_t *doc, *active;
    const char *form;

    *claims = NULL;
    form = apr_pstrcat(p, "token=", eid_http_form_encode(p, token, len),
                       "&token_type_hint=access_token", NULL);
    if (eid_http_post_form(p, in->conf.endpoint, &in->conf.http, form, strlen(form), in->user,
                           in->pass, &r, &hr) != APR_SUCCESS) {
        if (!hr.code)
            return eid_fail(res, "EID03602", "introspection request failed");
        if (res)
            *res = hr;
        return hr.code;
    }
    if (r.status != 200)
        return eid_fail(res, "EID03502", "introspection endpoint did not answer 200");
    doc = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return eid_fail(res, "EID03503", "introspection answer is not a JSON object");
    }
    apr_pool_cleanup_register(p, doc, json_cleanup, apr_pool_cleanup_null);
    active = json_object_get(doc, "active");
    /* Only JSON true: "true", 1, or a missing member are not an answer of
     * "active" (RFC 7662 2.2 defines a boolean). */
    if (!json_is_true(active))
        return eid_fail(res, "EID03504", "token is not active");
    *claims = doc;
    return 0;
}

/* RFC 7662 2.2 makes aud, iss and exp optional.  Why required here (unless
 * the provider waives iss/exp): without `aud` an active answer says only
 * that the server issued the token - for any of its services. */
static int check_required(const eid_introspect_t *in, json_t *claims, eid_result_t *res)
{
    unsigned req = in->conf.require;

    if ((req & EID_INTROSPECT_REQ_AUD) && !json_object_get(claims, "aud"))
        return eid_fail(res, "EID03303", "introspection answer without aud");
    if ((req & EID_INTROSPECT_REQ_ISS) && !json_object_get(claims, "iss"))
        return eid_fail(res, "EID03301", "introspection answer without iss");
    if ((req & EID_INTROSPECT_REQ_EXP) && !json_object_get(claims, "exp"))
        return eid_fail(res, "EID03306", "introspection answer without exp");
    return 0;
}

/* The slot of a key: SHA-256 output is uniform, its first bytes will do. */
static neg_slot_t *neg_slot(eid_introspect_t *in, const unsigned char *key)
{
    apr_uint32_t h = (apr_uint32_t)key[0] | (apr_uint32_t)key[1] << 8 |
                     (apr_uint32_t)key[2] << 16 | (apr_uint32_t)key[3] << 24;
    return &in->neg[h % EID_INTROSPECT_NEG_SLOTS];
}

/* A remembered refusal of `key`: its code with `res` set (tag and reason in
 * `p`), or 0. */
static int neg_get(eid_introspect_t *in, apr_pool_t *p, const unsigned char *key,
                   apr_time_t now, eid_result_t *res)
{
    neg_slot_t *s;
    char tag[sizeof(s->tag)], reason[sizeof(s->reason)];
    int hit;

    if (!in->neg)
        return 0;
    s = neg_slot(in, key);
    apr_thread_mutex_lock(in->lock);
    hit = s->until > now && !memcmp(s->key, key, EID_TOKCACHE_KEY_LEN);
    if (hit) {
        memcpy(tag, s->tag, sizeof(tag));
        memcpy(reason, s->reason, sizeof(reason));
    }
    apr_thread_mutex_unlock(in->lock);
    if (!hit)
        return 0;
    return eid_result_set(res, p, atoi(tag + 3), apr_pstrdup(p, tag), "%s (remembered refusal)",
                          reason);
}

/* Remember a refusal of the token itself (class INVALID) - never an
 * "unavailable": an endpoint that is down must not turn into refusals that
 * outlast it. */
static void neg_put(eid_introspect_t *in, const unsigned char *key, apr_time_t now,
                    const eid_result_t *r)
{
    neg_slot_t *s;

    if (!in->neg || r->cls != EID_CLASS_INVALID || !r->tag || strlen(r->tag) != 8)
        return;
    s = neg_slot(in, key);
    apr_thread_mutex_lock(in->lock);
    memcpy(s->key, key, EID_TOKCACHE_KEY_LEN);
    s->until = now + in->conf.negative_ttl;
    memcpy(s->tag, r->tag, sizeof(s->tag));
    apr_cpystrn(s->reason, r->reason ? r->reason : "", sizeof(s->reason));
    apr_thread_mutex_unlock(in->lock);
}

/* May one more call start at `now`?  A token bucket of max_rate calls,
 * refilled at max_rate per second; off when max_rate is 0 or before child
 * init.  Request times may arrive slightly out of order: an earlier `now`
 * refills nothing. */
static int rate_ok(eid_introspect_t *in, apr_time_t now)
{
    int ok;

    if (in->conf.max_rate <= 0 || !in->lock)
        return 1;
    apr_thread_mutex_lock(in->lock);
    if (now > in->bucket_at) {
        in->bucket += (double)(now - in->bucket_at) * in->conf.max_rate / APR_USEC_PER_SEC;
        if (in->bucket > in->conf.max_rate)
            in->bucket = in->conf.max_rate;
        in->bucket_at = now;
    }
    ok = in->bucket >= 1.0;
    if (ok)
        in->bucket -= 1.0;
    apr_thread_mutex_unlock(in->lock);
    return ok;
}

int eid_introspect_validate(eid_introspect_t *in, apr_pool_t *p, const char *token,
                            apr_size_t len, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                            apr_time_t now, eid_identity_t **out, eid_result_t *res)
{
    const void *owner = in;
    eid_result_t r = {0};
    json_t *claims;
    eid_identity_t *id;
    int rc, taken;

    *out = NULL;
    if (in->cache && eid_tokcache_get(in->cache, key, now, NULL, owner, p, out))
        return 0;
    if ((rc = neg_get(in, p, key, now, res)) != 0)
        return rc;
    /* Why refuse instead of waiting: every call holds a worker thread for
     * up to fetch_timeout; unknown tokens are free to make up, so without a
     * bound a flood of them would occupy every thread of the child. */
    if (atomic_fetch_add(&in->inflight, 1) >= in->conf.max_inflight) {
        atomic_fetch_sub(&in->inflight, 1);
        return eid_fail(res, "EID03505", "too many introspection calls in flight");
    }
    /* ... nor, all providers together, more than the process-wide bound ... */
    if (!(taken = all_take())) {
        atomic_fetch_sub(&in->inflight, 1);
        return eid_fail(res, "EID03505",
                        "too many introspection calls in flight (all providers)");
    }
    /* ... and the endpoint is not asked more than max_rate times a second,
     * however fast it answers. */
    if (!rate_ok(in, now)) {
        all_give(taken);
        atomic_fetch_sub(&in->inflight, 1);
        return eid_fail(res, "EID03506", "introspection rate limit reached");
    }
    rc = eid_introspect_query(in, p, token, len, &claims, &r);
    all_give(taken);
    atomic_fetch_sub(&in->inflight, 1);
    if (!rc && (rc = check_required(in, claims, &r)) == 0 &&
        (rc = eid_jwt_check_claims(claims, &in->rules, now, EID_JWT_INTROSPECTED, &r)) == 0)
        rc = eid_claims_to_identity(p, in->conf.map, claims, in->conf.name, &id, &r);
    if (rc) {
        neg_put(in, key, now, &r);
        if (res)
            *res = r;
        return rc;
    }
    if (in->cache)
        eid_tokcache_put(in->cache, key, owner, id, id->expires, now);
    *out = id;
    return 0;
}
