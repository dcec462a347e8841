/*
 * eid_oidc_conf.c - the login options of a provider, their start-up checks,
 * the login endpoints (configured or discovered) and the RP-initiated logout
 * URL.
 */
#include "eid/eid_oidc.h"
#include "eid/eid_util.h"
#include "eid_provider_int.h"

#include <apr_atomic.h>
#include <apr_strings.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGIN_TIMEOUT_DEFAULT 600
/* After a failed discovery, requests wait this long before fetching again
 * (each fetch can take fetch_timeout; a provider that is down must not tie
 * up a worker per login attempt). */
#define DISCOVERY_RETRY_SECS 10

void eid_oidc_defaults(eid_provider_t *pv)
{
    pv->login.max_age = -1;
    pv->login.timeout = apr_time_from_sec(LOGIN_TIMEOUT_DEFAULT);
}

int eid_oidc_enabled(const eid_provider_t *pv)
{
    return pv && pv->login.on && pv->checked;
}

apr_interval_time_t eid_oidc_login_timeout(const eid_provider_t *pv)
{
    return pv->login.timeout;
}

static const char *on_off(apr_pool_t *p, const char *key, const char *v, int *out)
{
    if (!strcmp(v, "on"))
        *out = 1;
    else if (!strcmp(v, "off"))
        *out = 0;
    else
        return apr_psprintf(p, "%s: use on or off", key);
    return NULL;
}

static const char *endpoint(apr_pool_t *p, eid_provider_t *pv, const char *key, const char *v,
                            const char **slot)
{
    const char *why;
    if (*slot)
        return apr_psprintf(p, "%s: given twice for provider %s", key, pv->name);
    /* Why the fetch rule also for the authorization endpoint (only the
     * browser goes there): over plain http anyone on the path could change
     * the request (redirect_uri aside, the PKCE challenge and the nonce). */
    if ((why = eid_http_url_check(v)) != NULL)
        return apr_psprintf(p, "%s: %s", key, why);
    *slot = apr_pstrdup(pv->pool, v);
    return NULL;
}

/* A space-separated list of words from `allowed`; "" and repeats refused. */
static int words_ok(const char *v, const char *const *allowed, int *has_openid)
{
    char *copy = strdup(v), *tok, *last = NULL;
    int ok = 1, n = 0, i;

    if (!copy)
        return 0;
    for (tok = strtok_r(copy, " ", &last); ok && tok; tok = strtok_r(NULL, " ", &last)) {
        const unsigned char *c;
        n++;
        for (c = (const unsigned char *)tok; *c; c++)
            /* RFC 6749 3.3 scope-token: %x21 / %x23-5B / %x5D-7E */
            if (*c < 0x21 || *c > 0x7e || *c == '"' || *c == '\\')
                ok = 0;
        if (allowed) {
            for (i = 0; allowed[i] && strcmp(allowed[i], tok); i++)
                ;
            ok = ok && allowed[i];
        }
        if (has_openid && !strcmp(tok, "openid"))
            *has_openid = 1;
    }
    free(copy);
    return ok && n > 0;
}

const char *eid_oidc_set(eid_provider_t *pv, apr_pool_t *p, const char *key,
                         const char *value)
{
    static const char *const prompts[] = {"none", "login", "consent", "select_account", NULL};
    eid_oidc_opts_t *o = &pv->login;
    apr_int64_t n;

    if (!o->first_key && strcmp(key, "login"))
        o->first_key = apr_pstrdup(pv->pool, key);
    if (!strcmp(key, "login"))
        return on_off(p, key, value, &o->on);
    if (!strcmp(key, "userinfo"))
        return on_off(p, key, value, &o->userinfo);
    if (!strcmp(key, "token_auth")) {
        if (!strcmp(value, "client_secret_basic"))
            o->auth = EID_OIDC_AUTH_BASIC;
        else if (!strcmp(value, "client_secret_post"))
            o->auth = EID_OIDC_AUTH_POST;
        else if (!strcmp(value, "private_key_jwt"))
            o->auth = EID_OIDC_AUTH_PRIVATE_KEY;
        else
            return "token_auth: use client_secret_basic, client_secret_post or "
                   "private_key_jwt";
        o->auth_set = 1;
        return NULL;
    }
    if (!strcmp(key, "private_key_file")) {
        if (!*value)
            return "private_key_file: a path is required";
        if (o->key_file)
            return apr_psprintf(p, "private_key_file: given twice for provider %s", pv->name);
        o->key_file = apr_pstrdup(pv->pool, value);
        return NULL;
    }
    if (!strcmp(key, "private_key_kid")) {
        if (!*value || !words_ok(value, NULL, NULL) || strchr(value, ' '))
            return "private_key_kid: one printable word is required";
        o->key_kid = apr_pstrdup(pv->pool, value);
        return NULL;
    }
    if (!strcmp(key, "scope")) {
        int openid = 0;
        if (!words_ok(value, NULL, &openid))
            return "scope: space-separated scope names (printable, no quotes or backslashes)";
        if (!openid)
            return "scope: must contain openid";
        o->scope = apr_pstrdup(pv->pool, value);
        return NULL;
    }
    if (!strcmp(key, "prompt")) {
        if (!words_ok(value, prompts, NULL))
            return "prompt: none, login, consent or select_account (space-separated)";
        o->prompt = apr_pstrdup(pv->pool, value);
        return NULL;
    }
    if (!strcmp(key, "max_age")) {
        switch (eid_uint_parse(value, 0, 366L * 86400, &n)) {
        case 0:
            o->max_age = n;
            return NULL;
        default:
            return "max_age: seconds, 0 to 31622400";
        }
    }
    if (!strcmp(key, "login_timeout")) {
        if (eid_uint_parse(value, 30, 3600, &n) != 0)
            return "login_timeout: seconds, 30 to 3600";
        o->timeout = apr_time_from_sec(n);
        return NULL;
    }
    if (!strcmp(key, "end_session_method")) {
        if (strcmp(value, "get") && strcmp(value, "post"))
            return "end_session_method: get or post";
        o->end_session_post = !strcmp(value, "post");
        return NULL;
    }
    if (!strcmp(key, "authorization_endpoint"))
        return endpoint(p, pv, key, value, &o->conf.authorization);
    if (!strcmp(key, "token_endpoint"))
        return endpoint(p, pv, key, value, &o->conf.token);
    if (!strcmp(key, "userinfo_endpoint"))
        return endpoint(p, pv, key, value, &o->conf.userinfo);
    if (!strcmp(key, "end_session_endpoint"))
        return endpoint(p, pv, key, value, &o->conf.end_session);
    return apr_psprintf(p, "unknown provider option '%s'", key);
}

static apr_status_t free_key(void *data)
{
    EVP_PKEY_free(data);
    return APR_SUCCESS;
}

/* The client's private key for private_key_jwt: RSA of 2048 bits or more,
 * or EC on P-256, P-384 or P-521. */
static const char *load_key(eid_provider_t *pv, apr_pool_t *p)
{
    eid_oidc_opts_t *o = &pv->login;
    FILE *f = fopen(o->key_file, "r");
    EVP_PKEY *k;
    char crv[64];
    size_t crvlen = 0;

    if (!f)
        return apr_psprintf(p, "private_key_file: %s cannot be read", o->key_file);
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k)
        return apr_psprintf(p, "private_key_file: %s holds no unencrypted PEM private key",
                            o->key_file);
    if (EVP_PKEY_base_id(k) == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(k) < 2048) {
            EVP_PKEY_free(k);
            return apr_psprintf(p, "private_key_file: %s: RSA keys need 2048 bits or more",
                                o->key_file);
        }
    }
    else if (EVP_PKEY_base_id(k) != EVP_PKEY_EC ||
             !EVP_PKEY_get_utf8_string_param(k, "group", crv, sizeof(crv), &crvlen) ||
             (strcmp(crv, "prime256v1") && strcmp(crv, "secp384r1") &&
              strcmp(crv, "secp521r1"))) {
        EVP_PKEY_free(k);
        return apr_psprintf(p, "private_key_file: %s: use an RSA key or an EC key on P-256, "
                            "P-384 or P-521", o->key_file);
    }
    o->key = k;
    apr_pool_cleanup_register(pv->pool, k, free_key, apr_pool_cleanup_null);
    return NULL;
}

static apr_status_t free_found(void *data)
{
    eid_provider_t *pv = data;
    free(atomic_exchange(&pv->login.found, NULL));
    return APR_SUCCESS;
}

const char *eid_oidc_check(eid_provider_t *pv, apr_pool_t *p, const char *discovery_url)
{
    eid_oidc_opts_t *o = &pv->login;
    const char *err;

    if (!o->on) {
        if (o->first_key)
            return apr_psprintf(p, "%s: only with login=on", o->first_key);
        return NULL;
    }
    if (!pv->client_id)
        return "login=on needs client_id";
    if (!pv->discovery && !pv->jwks_uri && !pv->jwks_file)
        return "login=on needs the provider's keys (discovery, jwks_uri or jwks_file): ID "
               "tokens are checked with them";
    if (o->auth == EID_OIDC_AUTH_PRIVATE_KEY) {
        if (!o->key_file)
            return "token_auth=private_key_jwt needs private_key_file";
        if (!o->key && (err = load_key(pv, p)) != NULL)
            return err;
    }
    else {
        if (!pv->client_secret)
            return apr_psprintf(p, "token_auth=%s needs client_secret_file",
                                o->auth == EID_OIDC_AUTH_POST ? "client_secret_post"
                                                              : "client_secret_basic");
        if (o->key_file)
            return "private_key_file: only with token_auth=private_key_jwt";
    }
    if (!discovery_url) {
        if (!o->conf.authorization || !o->conf.token)
            return "login=on without discovery needs authorization_endpoint and "
                   "token_endpoint";
        if (o->userinfo && !o->conf.userinfo)
            return "userinfo=on without discovery needs userinfo_endpoint";
    }
    if (!o->scope)
        o->scope = "openid";
    o->discovery_url = discovery_url;
    apr_pool_cleanup_register(pv->pool, pv, free_found, apr_pool_cleanup_null);
    return NULL;
}

/* ---- endpoints ------------------------------------------------------------------ */

/* A member that must be an acceptable URL: 1 with *out (NULL when absent),
 * 0 when present but not a string or refused. */
static int disc_url(json_t *doc, const char *name, const char **out)
{
    json_t *v = json_object_get(doc, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_string(v) || eid_http_url_check(json_string_value(v)))
        return 0;
    *out = json_string_value(v);
    return 1;
}

/* Copy the endpoints into one malloc'd block (freed by free_found). */
static eid_oidc_endpoints_t *pack(const eid_oidc_endpoints_t *e)
{
    const char *const *src = &e->authorization;
    size_t len[4], total = sizeof(eid_oidc_endpoints_t), i;
    eid_oidc_endpoints_t *b;
    const char **dst;
    char *at;

    for (i = 0; i < 4; i++)
        total += (len[i] = src[i] ? strlen(src[i]) + 1 : 0);
    if (!(b = calloc(1, total)))
        return NULL;
    dst = &b->authorization;
    at = (char *)(b + 1);
    for (i = 0; i < 4; i++)
        if (src[i]) {
            memcpy(at, src[i], len[i]);
            dst[i] = at;
            at += len[i];
        }
    return b;
}

/* Fetch the discovery document and publish the endpoints (configured ones
 * take precedence).  Thread-safe: the first block published stays. */
static const eid_oidc_endpoints_t *discover(eid_provider_t *pv, apr_pool_t *p,
                                            eid_result_t *res)
{
    eid_oidc_opts_t *o = &pv->login;
    eid_oidc_endpoints_t e;
    eid_http_resp_t r;
    eid_oidc_endpoints_t *b;
    json_t *doc, *iss;
    int dup, ok;

    if (eid_http_get(p, o->discovery_url, &pv->http, &r, res) != APR_SUCCESS)
        return NULL;
    if (r.status != 200) {
        eid_result_set(res, p, 7001, "EID07001", "discovery document answered HTTP %ld",
                       r.status);
        return NULL;
    }
    if (!(doc = eid_jwt_json_object(r.body, r.len, &dup))) {
        eid_fail(res, "EID07001", "discovery document is not a JSON object");
        return NULL;
    }
    iss = json_object_get(doc, "issuer");
    /* Why exact: a document naming another issuer describes another
     * provider; its token endpoint would receive our codes and secrets. */
    if (!json_is_string(iss) || strcmp(json_string_value(iss), pv->issuer)) {
        json_decref(doc);
        eid_fail(res, "EID07002", "discovery document names another issuer");
        return NULL;
    }
    ok = disc_url(doc, "authorization_endpoint", &e.authorization) &&
         disc_url(doc, "token_endpoint", &e.token) &&
         disc_url(doc, "userinfo_endpoint", &e.userinfo) &&
         disc_url(doc, "end_session_endpoint", &e.end_session);
    if (ok) {
        if (o->conf.authorization)
            e.authorization = o->conf.authorization;
        if (o->conf.token)
            e.token = o->conf.token;
        if (o->conf.userinfo)
            e.userinfo = o->conf.userinfo;
        if (o->conf.end_session)
            e.end_session = o->conf.end_session;
        ok = e.authorization && e.token && (!o->userinfo || e.userinfo);
    }
    if (!ok) {
        json_decref(doc);
        eid_fail(res, "EID07001", "discovery document lacks an endpoint login needs, or names "
                 "one that is not https (or http to loopback)");
        return NULL;
    }
    b = pack(&e);
    json_decref(doc);
    if (!b) {
        eid_fail(res, "EID07001", "out of memory");
        return NULL;
    }
    {
        void *expected = NULL;
        if (!atomic_compare_exchange_strong_explicit(&o->found, &expected, (void *)b,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire)) {
            free(b); /* another thread published first: use its block */
            return expected;
        }
    }
    return b;
}

static const eid_oidc_endpoints_t *endpoints(eid_provider_t *pv, apr_pool_t *p,
                                             eid_result_t *res)
{
    eid_oidc_opts_t *o = &pv->login;
    const eid_oidc_endpoints_t *e;
    apr_uint32_t now_s = (apr_uint32_t)apr_time_sec(apr_time_now()), failed;

    if (!o->on || !pv->checked) {
        eid_fail(res, "EID07004", "the provider is not a login provider (login=on)");
        return NULL;
    }
    if (!o->discovery_url)
        return &o->conf;
    if ((e = atomic_load_explicit(&o->found, memory_order_acquire)) != NULL)
        return e;
    failed = atomic_load_explicit(&o->disc_failed, memory_order_relaxed);
    if (failed && now_s - failed < DISCOVERY_RETRY_SECS) {
        eid_fail(res, "EID07001", "the discovery document failed moments ago; not asked again "
                 "yet");
        return NULL;
    }
    if (!(e = discover(pv, p, res)))
        atomic_store_explicit(&o->disc_failed, now_s ? now_s : 1, memory_order_relaxed);
    return e;
}

apr_status_t eid_oidc_endpoints(apr_pool_t *p, eid_provider_t *pv, const char **authz,
                                const char **token, const char **userinfo,
                                const char **end_session, eid_result_t *res)
{
    const eid_oidc_endpoints_t *e = endpoints(pv, p, res);
    if (!e)
        return APR_EGENERAL;
    if (authz)
        *authz = e->authorization;
    if (token)
        *token = e->token;
    if (userinfo)
        *userinfo = e->userinfo;
    if (end_session)
        *end_session = e->end_session;
    return APR_SUCCESS;
}

void eid_oidc_init(eid_provider_t *pv, apr_pool_t *p, int in_child)
{
    eid_result_t r = {0};

    if (in_child || !pv->login.on || !pv->login.discovery_url ||
        atomic_load_explicit(&pv->login.found, memory_order_acquire))
        return;
    /* Not fatal: a child asks again at the first login. */
    if (!discover(pv, p, &r))
        eid_log(EID_LOG_WARN, r.tag ? r.tag : "EID07001", "provider %s: login endpoints not "
                "discovered at start-up (%s); the children try again at the first login",
                pv->name, r.reason ? r.reason : "unknown");
}

/* ---- RP-initiated logout ------------------------------------------------------- */

static void add_param(apr_pool_t *p, char **url, int *first, const char *name, const char *v)
{
    if (!v)
        return;
    *url = apr_pstrcat(p, *url, *first ? "" : "&", name, "=",
                       eid_http_form_encode(p, v, strlen(v)), NULL);
    *first = 0;
}

/* Append to `base` with "?" or "&" as the base already has a query. */
char *eid_oidc_url_start(apr_pool_t *p, const char *base, int *first)
{
    const char *q = strchr(base, '?');
    *first = 1;
    if (!q)
        return apr_pstrcat(p, base, "?", NULL);
    if (q[1] && base[strlen(base) - 1] != '&')
        return apr_pstrcat(p, base, "&", NULL);
    return apr_pstrdup(p, base);
}

void eid_oidc_url_param(apr_pool_t *p, char **url, int *first, const char *name,
                        const char *v)
{
    add_param(p, url, first, name, v);
}

const char *eid_oidc_end_session_url(apr_pool_t *p, eid_provider_t *pv, const char *id_token_hint,
                                     const char *post_logout_redirect_uri, const char *state)
{
    eid_result_t r = {0};
    const eid_oidc_endpoints_t *e = endpoints(pv, p, &r);
    char *url;
    int first;

    if (!e || !e->end_session)
        return NULL;
    url = eid_oidc_url_start(p, e->end_session, &first);
    add_param(p, &url, &first, "id_token_hint", id_token_hint);
    add_param(p, &url, &first, "client_id", pv->client_id);
    add_param(p, &url, &first, "post_logout_redirect_uri", post_logout_redirect_uri);
    add_param(p, &url, &first, "state", state);
    return url;
}

const char *eid_oidc_end_session_form(apr_pool_t *p, eid_provider_t *pv)
{
    eid_result_t r = {0};
    const eid_oidc_endpoints_t *e;

    if (!pv->login.end_session_post)
        return NULL;
    e = endpoints(pv, p, &r);
    return e ? e->end_session : NULL;
}

const char *eid_oidc_client_id(const eid_provider_t *pv)
{
    return pv->client_id;
}
