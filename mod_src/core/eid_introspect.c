/*
 * eid_introspect.c - RFC 7662 client with an answer cache.
 */
#include "eid/eid_introspect.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

struct eid_introspect {
    eid_introspect_conf_t conf;
    const char *user, *pass; /* form-encoded once, at configuration */
    eid_tokcache_t *cache;
};

eid_introspect_t *eid_introspect_create(apr_pool_t *pconf, const eid_introspect_conf_t *c)
{
    eid_introspect_t *in = apr_pcalloc(pconf, sizeof(*in));

    in->conf = *c;
#define DUP(f) in->conf.f = c->f ? apr_pstrdup(pconf, c->f) : NULL
    DUP(name); DUP(endpoint); DUP(client_id); DUP(client_secret); DUP(http.ca_file);
#undef DUP
    if (c->client_id) {
        in->user = eid_http_form_encode(pconf, c->client_id, strlen(c->client_id));
        in->pass = eid_http_form_encode(pconf, c->client_secret ? c->client_secret : "",
                                        c->client_secret ? strlen(c->client_secret) : 0);
    }
    return in;
}

apr_status_t eid_introspect_child_init(eid_introspect_t *in, apr_pool_t *pchild)
{
    if (in->conf.cache_ttl <= 0)
        return APR_SUCCESS;
    in->cache = eid_tokcache_create(pchild, in->conf.cache_entries > 0 ? in->conf.cache_entries
                                                                      : 1024,
                                    in->conf.cache_ttl);
    return in->cache ? APR_SUCCESS : APR_ENOMEM;
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
    eid_result_t hr = {0, NULL, NULL};
    json_error_t jerr;
    json_t *doc, *active;
    const char *form;

    *claims = NULL;
    form = apr_pstrcat(p, "token=", eid_http_form_encode(p, token, len),
                       "&token_type_hint=access_token", NULL);
    if (eid_http_post_form(p, in->conf.endpoint, &in->conf.http, form, strlen(form), in->user,
                           in->pass, &r, &hr) != APR_SUCCESS) {
        if (res)
            *res = hr;
        return hr.code ? hr.code : 3602;
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

int eid_introspect_validate(eid_introspect_t *in, apr_pool_t *p, const char *token,
                            apr_size_t len, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                            const eid_jwt_rules_t *rules, const eid_claims_map_t *map,
                            apr_time_t now, eid_identity_t **out, eid_result_t *res)
{
    const void *owner = in;
    json_t *claims;
    eid_identity_t *id;
    int rc;

    *out = NULL;
    if (in->cache && eid_tokcache_get(in->cache, key, now, NULL, owner, p, out))
        return 0;
    if ((rc = eid_introspect_query(in, p, token, len, &claims, res)) != 0 ||
        (rc = eid_jwt_check_claims(claims, rules, now, EID_JWT_INTROSPECTED, res)) != 0 ||
        (rc = eid_claims_to_identity(p, map, claims, in->conf.name, &id, res)) != 0)
        return rc;
    if (in->cache)
        eid_tokcache_put(in->cache, key, owner, id, id->expires, now);
    *out = id;
    return 0;
}
