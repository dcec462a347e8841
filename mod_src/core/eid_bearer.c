/*
 * eid_bearer.c - providers (configuration, check, init) and the validation
 * facade over eid_jwt, eid_jwks, eid_claims, eid_introspect, eid_tokcache.
 */
#include "eid/eid_bearer.h"

#include "eid/eid_claims.h"
#include "eid/eid_http.h"
#include "eid/eid_introspect.h"
#include "eid/eid_jwt.h"
#include "eid/eid_util.h"
#include "eid_provider_int.h"

#include <apr_strings.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SECRET 4096
#define INTROSPECT_CACHE_ENTRIES 4096
#define INTROSPECT_NEGATIVE_DEFAULT 10 /* seconds a refusal is remembered */
#define INTROSPECT_INFLIGHT_DEFAULT 8  /* calls at once per provider and process */
#define INTROSPECT_RATE_DEFAULT 100    /* calls per second per provider and process */

/* struct eid_provider: eid_provider_int.h (shared with eid_oidc) */

/* ---- configuration ------------------------------------------------------------ */

eid_provider_t *eid_provider_create(apr_pool_t *pconf, const char *name)
{
    eid_provider_t *pv = apr_pcalloc(pconf, sizeof(*pv));

    pv->pool = pconf;
    pv->name = apr_pstrdup(pconf, name);
    pv->audiences = apr_array_make(pconf, 2, sizeof(const char *));
    pv->algs = EID_JWS_ALG_BIT(EID_JWS_RS256);
    pv->typ_absent_ok = 1;
    pv->leeway = EID_JWT_DEFAULT_LEEWAY;
    pv->max_token_size = EID_JWT_DEFAULT_MAX_SIZE;
    pv->jwks_refresh = apr_time_from_sec(3600);
    pv->jwks_min_refetch = apr_time_from_sec(60);
    pv->jwks_max_stale = apr_time_from_sec(21600);
    eid_http_opts_default(&pv->http);
    pv->map = eid_claims_map_create(pconf);
    pv->introspect_cache = apr_time_from_sec(60);
    pv->introspect_negative = apr_time_from_sec(INTROSPECT_NEGATIVE_DEFAULT);
    pv->introspect_inflight = INTROSPECT_INFLIGHT_DEFAULT;
    pv->introspect_rate = INTROSPECT_RATE_DEFAULT;
    pv->introspect_require = EID_INTROSPECT_REQ_ALL;
    eid_oidc_defaults(pv);
    return pv;
}

const char *eid_provider_name(const eid_provider_t *pv)
{
    return pv->name;
}

const char *eid_provider_issuer(const eid_provider_t *pv)
{
    return pv->issuer;
}

eid_jwks_t *eid_provider_jwks(eid_provider_t *pv)
{
    return pv->jwks;
}

static const char *parse_num(apr_pool_t *p, const char *key, const char *v, apr_int64_t min,
                             apr_int64_t max, apr_int64_t *out)
{
    switch (eid_uint_parse(v, min, max, out)) {
    case 0:
        return NULL;
    case -2:
        return apr_psprintf(p, "%s: %s is outside %" APR_INT64_T_FMT "..%" APR_INT64_T_FMT,
                            key, v, min, max);
    default:
        return *v ? apr_psprintf(p, "%s: '%s' is not a whole number from %" APR_INT64_T_FMT
                                 " to %" APR_INT64_T_FMT, key, v, min, max)
                  : apr_psprintf(p, "%s: a number is required", key);
    }
}

static const char *parse_secs(apr_pool_t *p, const char *key, const char *v, apr_int64_t min,
                              apr_int64_t max, apr_interval_time_t *out)
{
    apr_int64_t n;
    const char *err = parse_num(p, key, v, min, max, &n);
    if (!err)
        *out = apr_time_from_sec(n);
    return err;
}

/* Split a comma list into trimmed, non-empty items. */
static apr_array_header_t *split_list(apr_pool_t *p, const char *v)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    char *copy = apr_pstrdup(p, v), *tok, *last = NULL;

    for (tok = apr_strtok(copy, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
        char *end;
        while (isspace((unsigned char)*tok))
            tok++;
        end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*tok)
            APR_ARRAY_PUSH(a, const char *) = tok;
    }
    return a;
}

static const char *set_url(apr_pool_t *p, const char *key, const char *v, const char **slot,
                           apr_pool_t *keep)
{
    const char *why = eid_http_url_check(v);
    if (why)
        return apr_psprintf(p, "%s: %s", key, why);
    *slot = apr_pstrdup(keep, v);
    return NULL;
}

static const char *set_algs(eid_provider_t *pv, apr_pool_t *p, const char *v)
{
    apr_array_header_t *a = split_list(p, v);
    unsigned bits = 0;
    int i;

    for (i = 0; i < a->nelts; i++) {
        const char *name = APR_ARRAY_IDX(a, i, const char *);
        eid_jws_alg_e alg = eid_jwks_alg_parse(name, strlen(name));
        /* Why no switch for HMAC or none, not even an "I know what I do"
         * one: a provider's tokens are checked with its public keys. */
        if (alg == EID_JWS_NONE || alg == EID_JWS_HMAC)
            return apr_psprintf(p, "algs: %s is never accepted (only RS*, PS*, ES256/384/512)",
                                name);
        if (alg == EID_JWS_UNKNOWN)
            return apr_psprintf(p, "algs: unknown algorithm '%s' (RS256 RS384 RS512 PS256 "
                                "PS384 PS512 ES256 ES384 ES512)", name);
        bits |= EID_JWS_ALG_BIT(alg);
    }
    if (!bits)
        return "algs: name at least one algorithm";
    pv->algs = bits;
    return NULL;
}

static const char *set_types(eid_provider_t *pv, apr_pool_t *p, const char *v)
{
    apr_array_header_t *a = split_list(pv->pool, v);
    int i;

    pv->types = apr_array_make(pv->pool, a->nelts, sizeof(const char *));
    pv->typ_absent_ok = 0;
    for (i = 0; i < a->nelts; i++) {
        const char *t = APR_ARRAY_IDX(a, i, const char *);
        if (!strcmp(t, "absent"))
            pv->typ_absent_ok = 1;
        else
            APR_ARRAY_PUSH(pv->types, const char *) = t;
    }
    if (!pv->types->nelts && !pv->typ_absent_ok)
        return apr_psprintf(p, "token_types: name at least one type (or 'absent')");
    return NULL;
}

/* introspect_require: the members an introspection answer must carry.  aud
 * cannot be waived: an answer without it admits tokens issued for any other
 * service of the same server. */
static const char *set_require(eid_provider_t *pv, apr_pool_t *p, const char *v)
{
    apr_array_header_t *a = split_list(p, v);
    unsigned bits = 0;
    int i;

    for (i = 0; i < a->nelts; i++) {
        const char *m = APR_ARRAY_IDX(a, i, const char *);
        if (!strcmp(m, "aud"))
            bits |= EID_INTROSPECT_REQ_AUD;
        else if (!strcmp(m, "iss"))
            bits |= EID_INTROSPECT_REQ_ISS;
        else if (!strcmp(m, "exp"))
            bits |= EID_INTROSPECT_REQ_EXP;
        else
            return apr_psprintf(p, "introspect_require: unknown member '%s' (aud, iss, exp)",
                                m);
    }
    if (!(bits & EID_INTROSPECT_REQ_AUD))
        return "introspect_require: aud cannot be waived (an answer without aud would admit "
               "tokens issued for any service of the server)";
    pv->introspect_require = bits;
    return NULL;
}

static const char *set_secret_file(eid_provider_t *pv, apr_pool_t *p, const char *path)
{
    char *buf;
    apr_size_t len, i;
    const char *err;

    if (eid_file_read(p, path, MAX_SECRET, EID_FILE_SECRET, &buf, &len, &err) != APR_SUCCESS)
        return apr_pstrcat(p, "client_secret_file: ", err, NULL);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    for (i = 0; i < len; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
            memset(buf, 0, len);
            return apr_psprintf(p, "client_secret_file: %s must hold one line", path);
        }
    if (len == 0)
        return apr_psprintf(p, "client_secret_file: %s is empty", path);
    pv->client_secret = apr_pstrmemdup(pv->pool, buf, len);
    memset(buf, 0, len);
    return NULL;
}

const char *eid_provider_set(eid_provider_t *pv, apr_pool_t *p, const char *key,
                             const char *value)
{
    apr_int64_t n;
    const char *err;

    if (!key || !value)
        return "provider option without key or value";
    if (pv->checked)
        return apr_psprintf(p, "%s: provider %s is already in use", key, pv->name);
    /* Why a second value is refused: repeated lines continue one provider,
     * so a copied block left under the same name replaced its issuer and
     * keys (and added its audiences) - no "last one wins" for what says
     * whose tokens these are. */
    if ((!strcmp(key, "issuer") && pv->issuer) ||
        (!strcmp(key, "jwks_uri") && pv->jwks_uri) ||
        (!strcmp(key, "jwks_file") && pv->jwks_file) ||
        (!strcmp(key, "discovery") && pv->discovery) ||
        (!strcmp(key, "introspect") && pv->introspect) ||
        (!strcmp(key, "client_id") && pv->client_id))
        return apr_psprintf(p, "%s: given twice for provider %s (EidProvider lines with one "
                            "name continue one provider; another provider needs a name of "
                            "its own)", key, pv->name);
    if (!strncmp(key, "claim.", 6))
        return eid_claims_set_claim(pv->map, p, key + 6, value);
    if (!strncmp(key, "acr.", 4))
        return eid_claims_set_acr(pv->map, p, key + 4, value);
    if (!strcmp(key, "issuer")) {
        if (!*value)
            return "issuer: must not be empty";
        pv->issuer = apr_pstrdup(pv->pool, value);
    }
    else if (!strcmp(key, "discovery")) {
        if (!strcmp(value, "on"))
            pv->discovery = "on";
        else
            return set_url(p, key, value, &pv->discovery, pv->pool);
    }
    else if (!strcmp(key, "jwks_uri"))
        return set_url(p, key, value, &pv->jwks_uri, pv->pool);
    else if (!strcmp(key, "jwks_file")) {
        if (!*value)
            return "jwks_file: a path is required";
        pv->jwks_file = apr_pstrdup(pv->pool, value);
    }
    else if (!strcmp(key, "audience")) {
        apr_array_header_t *a = split_list(pv->pool, value);
        if (!a->nelts)
            return "audience: name at least one audience";
        apr_array_cat(pv->audiences, a);
    }
    else if (!strcmp(key, "algs"))
        return set_algs(pv, p, value);
    else if (!strcmp(key, "claims"))
        return eid_claims_set_profile(pv->map, value);
    else if (!strcmp(key, "leeway"))
        return parse_secs(p, key, value, 0, 600, &pv->leeway);
    else if (!strcmp(key, "jwks_refresh"))
        return parse_secs(p, key, value, 10, 7 * 86400, &pv->jwks_refresh);
    else if (!strcmp(key, "jwks_min_refetch"))
        return parse_secs(p, key, value, 1, 86400, &pv->jwks_min_refetch);
    else if (!strcmp(key, "jwks_max_stale"))
        return parse_secs(p, key, value, 60, 30 * 86400, &pv->jwks_max_stale);
    else if (!strcmp(key, "fetch_timeout")) {
        if ((err = parse_secs(p, key, value, 1, 60, &pv->http.timeout)) != NULL)
            return err;
        if (pv->http.connect_timeout > pv->http.timeout)
            pv->http.connect_timeout = pv->http.timeout;
    }
    else if (!strcmp(key, "fetch_max_bytes")) {
        if ((err = parse_num(p, key, value, 1024, 16 * 1024 * 1024, &n)) != NULL)
            return err;
        pv->http.max_bytes = (apr_size_t)n;
    }
    else if (!strcmp(key, "token_types"))
        return set_types(pv, p, value);
    else if (!strcmp(key, "max_token_size")) {
        if ((err = parse_num(p, key, value, 1024, 1024 * 1024, &n)) != NULL)
            return err;
        pv->max_token_size = (apr_size_t)n;
    }
    else if (!strcmp(key, "introspect"))
        return set_url(p, key, value, &pv->introspect, pv->pool);
    else if (!strcmp(key, "client_id")) {
        if (!*value)
            return "client_id: must not be empty";
        pv->client_id = apr_pstrdup(pv->pool, value);
    }
    else if (!strcmp(key, "client_secret_file"))
        return set_secret_file(pv, p, value);
    else if (!strcmp(key, "introspect_cache"))
        return parse_secs(p, key, value, 0, 3600, &pv->introspect_cache);
    else if (!strcmp(key, "introspect_negative_cache"))
        return parse_secs(p, key, value, 0, 300, &pv->introspect_negative);
    else if (!strcmp(key, "introspect_max_inflight")) {
        if ((err = parse_num(p, key, value, 1, 1024, &n)) != NULL)
            return err;
        pv->introspect_inflight = (int)n;
    }
    else if (!strcmp(key, "introspect_rate")) {
        if ((err = parse_num(p, key, value, 0, 100000, &n)) != NULL)
            return err;
        pv->introspect_rate = (int)n;
    }
    else if (!strcmp(key, "introspect_require"))
        return set_require(pv, p, value);
    else if (!strcmp(key, "login") || !strcmp(key, "token_auth") ||
             !strcmp(key, "private_key_file") || !strcmp(key, "private_key_kid") ||
             !strcmp(key, "scope") || !strcmp(key, "userinfo") || !strcmp(key, "prompt") ||
             !strcmp(key, "max_age") || !strcmp(key, "authorization_endpoint") ||
             !strcmp(key, "token_endpoint") || !strcmp(key, "userinfo_endpoint") ||
             !strcmp(key, "end_session_endpoint") || !strcmp(key, "login_timeout") ||
             !strcmp(key, "end_session_method"))
        return eid_oidc_set(pv, p, key, value); /* eid_oidc_conf.c */
    else if (!strcmp(key, "ca_file")) {
        if (!*value)
            return "ca_file: a path is required";
        pv->http.ca_file = apr_pstrdup(pv->pool, value);
    }
    else
        return apr_psprintf(p, "unknown provider option '%s'", key);
    return NULL;
}

/* Does the jwks_file hold at least one key for the allowed algs? */
static const char *check_jwks_file(eid_provider_t *pv, apr_pool_t *p)
{
    apr_pool_t *tmp;
    eid_jwks_keys_t *set;
    eid_result_t r = {0};
    const char *err = NULL;
    char *doc;
    apr_size_t len;
    int i, a, usable = 0;

    apr_pool_create(&tmp, p);
    if (eid_file_read(p, pv->jwks_file, pv->http.max_bytes, 0, &doc, &len, &err))
        err = apr_pstrcat(p, "jwks_file: ", err, NULL);
    if (!err && eid_jwks_parse(tmp, doc, len, apr_time_now(), pv->name, &set, &r))
        err = apr_psprintf(p, "jwks_file: %s: %s", pv->jwks_file, r.reason);
    for (i = 0; !err && i < set->n; i++)
        for (a = EID_JWS_RS256; a < EID_JWS__COUNT; a++)
            if ((pv->algs & EID_JWS_ALG_BIT(a)) &&
                eid_jwks_fit(&set->key[i], (eid_jws_alg_e)a) == EID_JWK_FITS)
                usable++;
    if (!err && !usable)
        err = apr_psprintf(p, "jwks_file: %s has no usable key for the allowed algs",
                           pv->jwks_file);
    apr_pool_destroy(tmp);
    return err;
}

static const char *discovery_url(eid_provider_t *pv, apr_pool_t *p, const char **err)
{
    const char *url = pv->discovery, *why;
    size_t n;

    *err = NULL;
    if (!url || strcmp(url, "on"))
        return url;
    /* OpenID Connect Discovery 4: issuer without a trailing "/" + the path. */
    n = strlen(pv->issuer);
    while (n > 0 && pv->issuer[n - 1] == '/')
        n--;
    url = apr_pstrcat(pv->pool, apr_pstrmemdup(p, pv->issuer, n),
                      "/.well-known/openid-configuration", NULL);
    if ((why = eid_http_url_check(url)) != NULL)
        *err = apr_psprintf(p, "discovery: %s (derived from the issuer)", why);
    return url;
}

const char *eid_provider_check(eid_provider_t *pv, apr_pool_t *p)
{
    int sources = !!pv->discovery + !!pv->jwks_uri + !!pv->jwks_file;
    const char *err, *disc;
    FILE *f;

    if (pv->checked)
        return NULL;
    if (!pv->issuer)
        return apr_psprintf(p, "provider %s: issuer is required", pv->name);
    /* Why required: without an audience any token of this issuer - for any
     * other service - would be accepted here.  A login provider checks its ID
     * tokens against client_id; with no audience it admits no bearer token. */
    if (!pv->audiences->nelts && !pv->login.on)
        return apr_psprintf(p, "provider %s: audience is required", pv->name);
    if (sources > 1)
        return apr_psprintf(p, "provider %s: use one of discovery, jwks_uri, jwks_file",
                            pv->name);
    if (!sources && !pv->introspect)
        return apr_psprintf(p, "provider %s: no key source (discovery, jwks_uri, jwks_file) "
                            "and no introspect endpoint", pv->name);
    if (pv->introspect && (!pv->client_id || !pv->client_secret))
        return apr_psprintf(p, "provider %s: introspect needs client_id and "
                            "client_secret_file", pv->name);
    if (pv->jwks_max_stale < pv->jwks_refresh)
        return apr_psprintf(p, "provider %s: jwks_max_stale must be at least jwks_refresh",
                            pv->name);
    if (pv->jwks_min_refetch > pv->jwks_refresh)
        return apr_psprintf(p, "provider %s: jwks_min_refetch must not exceed jwks_refresh",
                            pv->name);
    if (pv->http.ca_file) {
        if (!(f = fopen(pv->http.ca_file, "rb")))
            return apr_psprintf(p, "provider %s: ca_file %s cannot be read", pv->name,
                                pv->http.ca_file);
        fclose(f);
    }
    disc = discovery_url(pv, p, &err);
    if (err)
        return apr_psprintf(p, "provider %s: %s", pv->name, err);
    if (pv->jwks_file && (err = check_jwks_file(pv, p)) != NULL)
        return apr_psprintf(p, "provider %s: %s", pv->name, err);
    if ((err = eid_oidc_check(pv, p, disc)) != NULL)
        return apr_psprintf(p, "provider %s: %s", pv->name, err);

    eid_jwt_rules_default(&pv->rules);
    pv->rules.issuer = pv->issuer;
    pv->rules.audiences = (const char *const *)pv->audiences->elts;
    pv->rules.naudiences = pv->audiences->nelts;
    pv->rules.algs = pv->algs;
    pv->rules.leeway = pv->leeway;
    if (pv->types) {
        pv->rules.types = (const char *const *)pv->types->elts;
        pv->rules.ntypes = pv->types->nelts;
        pv->rules.typ_absent_ok = pv->typ_absent_ok;
    }
    if (sources) {
        eid_jwks_conf_t jc;
        memset(&jc, 0, sizeof(jc));
        jc.name = pv->name;
        jc.issuer = pv->issuer;
        jc.discovery_url = disc;
        jc.jwks_uri = pv->jwks_uri;
        jc.jwks_file = pv->jwks_file;
        jc.refresh = pv->jwks_refresh;
        jc.min_refetch = pv->jwks_min_refetch;
        jc.max_stale = pv->jwks_max_stale;
        jc.http = pv->http;
        pv->jwks = eid_jwks_create(pv->pool, &jc);
    }
    if (pv->introspect) {
        eid_introspect_conf_t ic;
        memset(&ic, 0, sizeof(ic));
        ic.name = pv->name;
        ic.endpoint = pv->introspect;
        ic.client_id = pv->client_id;
        ic.client_secret = pv->client_secret;
        ic.cache_ttl = pv->introspect_cache;
        ic.cache_entries = INTROSPECT_CACHE_ENTRIES;
        ic.negative_ttl = pv->introspect_negative;
        ic.max_inflight = pv->introspect_inflight;
        ic.max_rate = pv->introspect_rate;
        ic.require = pv->introspect_require;
        /* The checks are bound to the client: its caches only ever hold
         * decisions made under them. */
        ic.rules = &pv->rules;
        ic.map = pv->map;
        ic.http = pv->http;
        pv->intro = eid_introspect_create(pv->pool, &ic);
    }
    pv->checked = 1;
    return NULL;
}

apr_status_t eid_provider_init(eid_provider_t *pv, apr_pool_t *p, int in_child)
{
    apr_status_t rv;
    eid_result_t r = {0};

    if (eid_provider_check(pv, p) != NULL)
        return APR_EINVAL;
    if (!in_child) {
        if (eid_http_global_init() != APR_SUCCESS)
            eid_log(EID_LOG_ERR, "EID03606", "libcurl could not be initialised");
        /* jansson seeds its hash function on first use; do it before any
         * thread exists. */
        json_object_seed(0);
        /* A failure is logged by the key set itself and is not fatal: the
         * children try again on the first token. */
        if (pv->jwks)
            eid_jwks_refresh(pv->jwks, p, apr_time_now(), &r);
        eid_oidc_init(pv, p, 0);
        return APR_SUCCESS;
    }
    /* Why here: the parent read jwks_file as root; a child runs as httpd's
     * User (privileges are dropped before child_init) and re-reads it at
     * jwks_refresh.  Say at once, once per child, when it cannot. */
    if (pv->jwks_file && access(pv->jwks_file, R_OK) != 0)
        eid_log(EID_LOG_ERR, "EID03220", "provider %s: key set file %s is not readable by uid "
                "%ld (the user httpd's children run as): the keys read at start-up are used "
                "until jwks_max_stale, then tokens get 503; make it readable by that user",
                pv->name, pv->jwks_file, (long)geteuid());
    if (pv->jwks && (rv = eid_jwks_child_init(pv->jwks, p)) != APR_SUCCESS)
        return rv;
    if (pv->intro && (rv = eid_introspect_child_init(pv->intro, p)) != APR_SUCCESS)
        return rv;
    return APR_SUCCESS;
}

/* ---- validation ------------------------------------------------------------- */

eid_bearer_code_e eid_bearer_code(const eid_result_t *res)
{
    if (!res || res->code == 0)
        return EID_BEARER_OK;
    switch (res->cls) {
    case EID_CLASS_MALFORMED:
        return EID_BEARER_MALFORMED;
    case EID_CLASS_UNAVAILABLE:
        /* The provider could not be asked: not the client's fault. */
        return EID_BEARER_UNAVAILABLE;
    case EID_CLASS_MISCONFIGURED:
        return EID_BEARER_MISCONFIGURED;
    default:
        return EID_BEARER_INVALID;
    }
}

typedef struct provs {
    eid_provider_t *const *v;
    int n;
    apr_time_t now;
} provs_t;

/* A hit needs a provider of this location, and the key set the token was
 * verified with must not have dropped a key since (a withdrawn key's tokens
 * must go with it) nor be older than jwks_max_stale. */
static int accept_owner(const void *owner, apr_uint32_t gen, const void *baton)
{
    const provs_t *ps = baton;
    int i;
    for (i = 0; i < ps->n; i++)
        if ((const void *)ps->v[i] == owner)
            return !ps->v[i]->jwks || eid_jwks_current(ps->v[i]->jwks, gen, ps->now) ? 1 : -1;
    return 0;
}

/* RFC 6750 2.1 b64token characters (ALPHA DIGIT - . _ ~ + /): 1, "=": 2. */
static const unsigned char tokchar[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['+'] = 1, ['/'] = 1, ['='] = 2,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int b64token(const char *s, apr_size_t len, int *dots)
{
    apr_size_t i = 0;
    int d = 0;

    while (i < len && tokchar[(unsigned char)s[i]] == 1)
        d += s[i++] == '.';
    *dots = d;
    if (i == 0)
        return 0;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}

static int jwt_with(eid_provider_t *pv, apr_pool_t *p, eid_jwt_t *jwt, apr_time_t now,
                    eid_identity_t **id, apr_uint32_t *gen, eid_result_t *res)
{
    int rc;
    /* before the keys are used: a withdrawal during the check is seen */
    *gen = eid_jwks_generation(pv->jwks);
    if ((rc = eid_jwt_check_header(jwt, &pv->rules, res)) != 0 ||
        (rc = eid_jwt_verify(jwt, pv->jwks, p, now, res)) != 0 ||
        (rc = eid_jwt_check_claims(jwt->claims, &pv->rules, now, EID_JWT_ACCESS_TOKEN,
                                   res)) != 0 ||
        (rc = eid_claims_to_identity(p, pv->map, jwt->claims, pv->name, id, res)) != 0)
        return rc;
    return 0;
}

static int introspect_with(eid_provider_t *pv, apr_pool_t *p, const char *token,
                           apr_size_t len, const unsigned char *key, apr_time_t now,
                           eid_identity_t **id, eid_result_t *res)
{
    int rc = eid_introspect_validate(pv->intro, p, token, len, key, now, id, res);
    if (!rc && !(*id)->issuer)
        (*id)->issuer = pv->issuer;
    return rc;
}

/* How many of the providers have `iss` as their issuer. */
static int issuer_matches(const provs_t *ps, const char *iss)
{
    int i, n = 0;
    for (i = 0; iss && i < ps->n; i++)
        n += !strcmp(ps->v[i]->issuer, iss);
    return n;
}

/* A JWS: the provider is the one whose issuer is the token's `iss`.
 * Why no "first that accepts wins" when several share it: their profiles may
 * differ (claims=oidc-sweden and claims=inera for one issuer), and trying
 * them in turn admits a token by the most lenient of them.  Such a list is a
 * configuration error (refused at start-up by the glue); here it is refused
 * per request as well (EID03008, misconfigured) - defence in depth. */
static int by_issuer(apr_pool_t *p, const provs_t *ps, const char *token, apr_size_t len,
                     apr_size_t max, const unsigned char *key, apr_time_t now,
                     eid_identity_t **id, eid_provider_t **used, apr_uint32_t *gen,
                     eid_result_t *res)
{
    eid_jwt_t *jwt;
    eid_provider_t *pv = NULL;
    int i, rc;

    if ((rc = eid_jwt_parse(p, token, len, max, &jwt, res)) != 0)
        return rc;
    if (!jwt->iss)
        return eid_fail(res, "EID03301", "iss missing or not a string");
    if (issuer_matches(ps, jwt->iss) > 1)
        return eid_fail(res, "EID03008", "several providers here have the token's issuer");
    for (i = 0; i < ps->n && !pv; i++)
        if (!strcmp(ps->v[i]->issuer, jwt->iss))
            pv = ps->v[i];
    if (!pv)
        return eid_fail(res, "EID03005", "iss names no provider accepted here");
    if (len > pv->max_token_size)
        return eid_fail(res, "EID03003", "token larger than the configured maximum");
    if (pv->jwks)
        rc = jwt_with(pv, p, jwt, now, id, gen, res);
    else
        rc = introspect_with(pv, p, token, len, key, now, id, res);
    if (!rc)
        *used = pv->jwks ? pv : NULL;
    return rc;
}

static eid_bearer_code_e refuse(eid_result_t *res, const char *tag, const char *reason)
{
    eid_fail(res, tag, reason);
    return eid_bearer_code(res);
}

eid_bearer_code_e eid_bearer_validate(apr_pool_t *p, eid_provider_t *const *provs, int nprovs,
                                      const char *token, size_t len, apr_time_t now,
                                      eid_identity_t **out, eid_result_t *res)
{
    return eid_bearer_validate_ex(p, provs, nprovs, token, len, now, NULL, NULL, out, res);
}

eid_bearer_code_e eid_bearer_validate_ex(apr_pool_t *p, eid_provider_t *const *provs,
                                         int nprovs, const char *token, size_t len,
                                         apr_time_t now, eid_bearer_enrich_fn enrich,
                                         void *baton, eid_identity_t **out,
                                         eid_result_t *res)
{
    unsigned char key[EID_TOKCACHE_KEY_LEN];
    eid_tokcache_t *cache = eid_tokcache_global();
    eid_provider_t *used = NULL;
    eid_identity_t *id = NULL;
    eid_result_t scratch = {0};
    provs_t ps = {provs, nprovs, now};
    apr_uint32_t gen = 0;
    apr_size_t max = 0;
    int i, dots, rc, introspects = 0;

    *out = NULL;
    if (!res)
        res = &scratch;
    *res = scratch;
    if (!token || len == 0)
        return refuse(res, "EID03001", "empty bearer token");
    if (nprovs <= 0 || !provs)
        return refuse(res, "EID03006", "no provider accepts tokens here");
    for (i = 0; i < nprovs; i++) {
        if (!provs[i]->checked)
            return refuse(res, "EID03007", "provider used before its check");
        if (provs[i]->max_token_size > max)
            max = provs[i]->max_token_size;
        introspects |= provs[i]->intro != NULL;
    }
    if (len > max)
        return refuse(res, "EID03003", "token larger than the configured maximum");
    /* The key is needed by the caches only (introspection has its own). */
    if (cache || introspects)
        eid_tokcache_key(token, len, key);
    /* The hit path: one SHA-256, one hash lookup, one identity copy.  A hit
     * for a list where its issuer is ambiguous is refused like a miss. */
    if (cache && eid_tokcache_get(cache, key, now, accept_owner, &ps, p, &id)) {
        if (issuer_matches(&ps, id->issuer) > 1)
            return refuse(res, "EID03008", "several providers here have the token's issuer");
        *out = id;
        return EID_BEARER_OK;
    }
    if (!b64token(token, len, &dots))
        return refuse(res, "EID03002", "not an RFC 6750 bearer token");

    if (dots == 2) {
        rc = by_issuer(p, &ps, token, len, max, key, now, &id, &used, &gen, res);
    }
    else {
        eid_provider_t *pv = NULL;
        for (i = 0; i < nprovs && !pv; i++)
            if (provs[i]->intro)
                pv = provs[i];
        if (!pv)
            rc = dots ? eid_fail(res, "EID03101", "not a compact JWS (three segments)")
                      : eid_fail(res, "EID03004",
                                 "an opaque token, and no provider here introspects");
        else if (len > pv->max_token_size)
            rc = eid_fail(res, "EID03003", "token larger than the configured maximum");
        else
            rc = introspect_with(pv, p, token, len, key, now, &id, res);
    }
    if (rc) {
        eid_bearer_code_e c = eid_bearer_code(res);
        /* Why: a unit that refused without filling `res` must not read as OK. */
        return c == EID_BEARER_OK ? EID_BEARER_INVALID : c;
    }
    /* Before it is cached: hits then carry what the caller adds. */
    if (enrich)
        enrich(baton, p, id);
    /* Introspected answers live in their provider's cache (its own maximum
     * age); signed tokens go into the process-wide one. */
    if (cache && used)
        eid_tokcache_put_gen(cache, key, used, gen, id, id->expires, now);
    *out = id;
    return EID_BEARER_OK;
}
