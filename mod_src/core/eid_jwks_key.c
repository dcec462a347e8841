/*
 * eid_jwks_key.c - JWS algorithm names, key/alg fit, and JWK Set import
 * (the parsing half of the eid_jwks unit; the cache is in eid_jwks.c).
 */
#include "eid/eid_jwks.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refusal with a static reason; the code is the tag's number. */
/* ---- algorithms ------------------------------------------------------------ */

static const struct {
    const char *name;
    eid_jws_alg_e alg;
} alg_names[] = {
    {"RS256", EID_JWS_RS256}, {"RS384", EID_JWS_RS384}, {"RS512", EID_JWS_RS512},
    {"PS256", EID_JWS_PS256}, {"PS384", EID_JWS_PS384}, {"PS512", EID_JWS_PS512},
    {"ES256", EID_JWS_ES256}, {"ES384", EID_JWS_ES384}, {"ES512", EID_JWS_ES512},
    {"none", EID_JWS_NONE},   {"HS256", EID_JWS_HMAC},  {"HS384", EID_JWS_HMAC},
    {"HS512", EID_JWS_HMAC},
};

eid_jws_alg_e eid_jwks_alg_parse(const char *s, apr_size_t len)
{
    size_t i;
    for (i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
        if (strlen(alg_names[i].name) == len && !memcmp(alg_names[i].name, s, len))
            return alg_names[i].alg;
    return EID_JWS_UNKNOWN;
}

const char *eid_jwks_alg_name(eid_jws_alg_e a)
{
    size_t i;
    if (a == EID_JWS_HMAC)
        return "HS*";
    for (i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
        if (alg_names[i].alg == a)
            return alg_names[i].name;
    return "unknown";
}

static eid_jwk_type_e alg_key_type(eid_jws_alg_e a)
{
    switch (a) {
    case EID_JWS_RS256: case EID_JWS_RS384: case EID_JWS_RS512:
    case EID_JWS_PS256: case EID_JWS_PS384: case EID_JWS_PS512:
        return EID_JWK_RSA;
    case EID_JWS_ES256: return EID_JWK_EC_P256;
    case EID_JWS_ES384: return EID_JWK_EC_P384;
    case EID_JWS_ES512: return EID_JWK_EC_P521;
    default: return 0;
    }
}

eid_jwk_fit_e eid_jwks_fit(const eid_jwk_t *k, eid_jws_alg_e a)
{
    /* Why both checks: the key type keeps an RSA key away from HMAC and EC
     * code paths (the classic "HS256 with the public key" forgery), and a
     * key that declares its alg is bound to exactly that one (RFC 7517 4.4),
     * so an RS256 key is not also a PS256 key. */
    if (alg_key_type(a) == 0 || alg_key_type(a) != k->type)
        return EID_JWK_WRONG_TYPE;
    if (k->alg != EID_JWS_UNKNOWN && k->alg != a)
        return EID_JWK_WRONG_ALG;
    return EID_JWK_FITS;
}

/* ---- import ---------------------------------------------------------------- */

static apr_status_t release_keys(void *data)
{
    eid_jwks_keys_t *set = data;
    int i;
    for (i = 0; i < set->n; i++)
        cjose_jwk_release(set->key[i].cjose);
    set->n = 0;
    return APR_SUCCESS;
}

static const char *member_str(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* RFC 7638: SHA-256 over the required members in lexicographic order. */
static int thumbprint(json_t *k, eid_jwk_type_e type, unsigned char out[32])
{
    char buf[4096];
    int n;
    if (type == EID_JWK_RSA) {
        const char *e = member_str(k, "e"), *m = member_str(k, "n");
        if (!e || !m)
            return 0;
        n = snprintf(buf, sizeof(buf), "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e, m);
    }
    else {
        const char *c = member_str(k, "crv"), *x = member_str(k, "x"), *y = member_str(k, "y");
        if (!c || !x || !y)
            return 0;
        n = snprintf(buf, sizeof(buf), "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                     c, x, y);
    }
    if (n <= 0 || (size_t)n >= sizeof(buf))
        return 0;
    return EVP_Digest(buf, (size_t)n, out, NULL, EVP_sha256(), NULL) == 1;
}

static int member_b64(json_t *k, const char *name)
{
    json_t *v = json_object_get(k, name);
    return json_is_string(v) && json_string_length(v) > 0 &&
           eid_b64url_valid(json_string_value(v), json_string_length(v));
}

static int members_b64(json_t *k, eid_jwk_type_e type)
{
    if (type == EID_JWK_RSA)
        return member_b64(k, "n") && member_b64(k, "e");
    return member_b64(k, "x") && member_b64(k, "y");
}

static int has_private(json_t *k)
{
    static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    size_t i;
    for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
        if (json_object_get(k, priv[i]))
            return 1;
    return 0;
}

static int ops_allow_verify(json_t *ops)
{
    size_t i;
    json_t *v;
    if (!json_is_array(ops))
        return 0;
    json_array_foreach(ops, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), "verify"))
            return 1;
    return 0;
}

static void skip(const char *tag, const char *name, int idx, const char *why)
{
    eid_log(EID_LOG_WARN, tag, "provider %s: key set entry %d skipped: %s", name, idx, why);
}

/* Import key `idx` into out; 1 when usable, 0 when skipped (logged). */
static int import_key(apr_pool_t *p, json_t *k, int idx, const char *name, apr_time_t now,
                      const eid_jwk_t *prev, int nprev, eid_jwk_t *out)
{
    json_t *use, *ops, *kidv, *algv;
    const char *kty, *crv;
    cjose_err err;
    char *dump;
    int i;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(k)) {
        skip("EID03213", name, idx, "not a JSON object");
        return 0;
    }
    use = json_object_get(k, "use");
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig"))) {
        skip("EID03210", name, idx, "\"use\" is not \"sig\"");
        return 0;
    }
    ops = json_object_get(k, "key_ops");
    if (ops && !ops_allow_verify(ops)) {
        skip("EID03222", name, idx, "\"key_ops\" does not allow \"verify\"");
        return 0;
    }
    kty = member_str(k, "kty");
    crv = member_str(k, "crv");
    if (kty && !strcmp(kty, "RSA"))
        out->type = EID_JWK_RSA;
    else if (kty && !strcmp(kty, "EC") && crv && !strcmp(crv, "P-256"))
        out->type = EID_JWK_EC_P256;
    else if (kty && !strcmp(kty, "EC") && crv && !strcmp(crv, "P-384"))
        out->type = EID_JWK_EC_P384;
    else if (kty && !strcmp(kty, "EC") && crv && !strcmp(crv, "P-521"))
        out->type = EID_JWK_EC_P521;
    else {
        skip("EID03211", name, idx, "unsupported key type or curve (RSA, EC P-256/384/521 only)");
        return 0;
    }
    /* Why refuse a private key outright: a key set is public; a private key
     * in it means the key has leaked and anybody can mint tokens with it. */
    if (has_private(k)) {
        skip("EID03214", name, idx, "contains private key material");
        return 0;
    }
    algv = json_object_get(k, "alg");
    if (algv) {
        out->alg = json_is_string(algv) ? eid_jwks_alg_parse(json_string_value(algv),
                                                            json_string_length(algv))
                                        : EID_JWS_UNKNOWN;
        if (alg_key_type(out->alg) != out->type) {
            skip("EID03216", name, idx, "\"alg\" is not an asymmetric JWS alg of its key type");
            return 0;
        }
    }
    kidv = json_object_get(k, "kid");
    if (kidv) {
        if (!json_is_string(kidv)) {
            skip("EID03213", name, idx, "\"kid\" is not a string");
            return 0;
        }
        out->kid_len = json_string_length(kidv);
        out->kid = apr_pstrmemdup(p, json_string_value(kidv), out->kid_len);
        for (i = 0; i < nprev; i++)
            if (prev[i].kid && prev[i].kid_len == out->kid_len &&
                !memcmp(prev[i].kid, out->kid, out->kid_len)) {
                skip("EID03212", name, idx, "duplicate \"kid\" (the first key keeps it)");
                return 0;
            }
    }
    if (!thumbprint(k, out->type, out->thumb)) {
        skip("EID03213", name, idx, "key members missing or not strings");
        return 0;
    }
    /* Why checked before cjose sees them: cjose 0.6.2's decoder aborts the
     * process (assert) on a base64url string of length 4k+1. */
    if (!members_b64(k, out->type)) {
        skip("EID03213", name, idx, "a key member is not base64url");
        return 0;
    }
    out->cjose = cjose_jwk_import_json((cjose_header_t *)k, &err);
    if (!out->cjose || cjose_jwk_get_kty(out->cjose, &err) !=
                           (out->type == EID_JWK_RSA ? CJOSE_JWK_KTY_RSA : CJOSE_JWK_KTY_EC)) {
        if (out->cjose)
            cjose_jwk_release(out->cjose);
        skip("EID03213", name, idx, "the key could not be imported");
        return 0;
    }
    switch (out->type) {
    case EID_JWK_RSA:
        out->sig_len = (cjose_jwk_get_keysize(out->cjose, &err) + 7) / 8;
        if (out->sig_len < 256) {
            cjose_jwk_release(out->cjose);
            skip("EID03215", name, idx, "RSA modulus shorter than 2048 bits");
            return 0;
        }
        break;
    case EID_JWK_EC_P256: out->sig_len = 64; break;
    case EID_JWK_EC_P384: out->sig_len = 96; break;
    case EID_JWK_EC_P521: out->sig_len = 132; break;
    }
    dump = json_dumps(k, JSON_COMPACT);
    if (!dump) {
        cjose_jwk_release(out->cjose);
        skip("EID03213", name, idx, "out of memory");
        return 0;
    }
    out->json = apr_pstrdup(p, dump);
    free(dump);
    out->seen = now;
    return 1;
}

int eid_jwks_parse(apr_pool_t *p, const char *doc, apr_size_t len, apr_time_t now,
                   const char *name, eid_jwks_keys_t **out, eid_result_t *res)
{
    json_error_t jerr;
    json_t *root, *arr, *k;
    eid_jwks_keys_t *set;
    size_t i;

    *out = NULL;
    if (!name)
        name = "-";
    root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
    arr = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(arr)) {
        json_decref(root);
        return eid_fail(res, "EID03209", "key set is not a JSON object with a \"keys\" array");
    }
    set = apr_pcalloc(p, sizeof(*set));
    set->key = apr_pcalloc(p, sizeof(eid_jwk_t) * EID_JWKS_MAX_KEYS);
    apr_pool_cleanup_register(p, set, release_keys, apr_pool_cleanup_null);
    json_array_foreach(arr, i, k) {
        if (set->n == EID_JWKS_MAX_KEYS) {
            eid_log(EID_LOG_WARN, "EID03223", "provider %s: key set has more than %d usable "
                    "keys; the rest are ignored", name, EID_JWKS_MAX_KEYS);
            break;
        }
        if (import_key(p, k, (int)i, name, now, set->key, set->n, &set->key[set->n]))
            set->n++;
    }
    json_decref(root);
    *out = set;
    return 0;
}
