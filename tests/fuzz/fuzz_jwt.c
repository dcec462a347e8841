/*
 * fuzz_jwt - bearer tokens and the JSON inside them, on arbitrary bytes.
 *
 * Every input goes through four stages:
 *  1. eid_bearer_validate() on the bytes as a token, against three providers
 *     (generic, inera, oidc-sweden) that read tests/fuzz/fuzz_jwt_jwks.json;
 *  2. eid_jwt_json_object() against jansson's json_loadb(JSON_REJECT_
 *     DUPLICATES) as the oracle: same verdict and equal values (except that
 *     ours refuses nesting deeper than EID_JWT_JSON_MAX_DEPTH and NUL bytes
 *     that jansson swallows after a number);
 *  3. when the bytes are a JSON object: the claim rules and each profile's
 *     mapping directly, and the bytes as the payload of a token signed here
 *     with the ES256 test key whose public half is in the JWKS file - so the
 *     code after the signature check is fuzzed through the facade too;
 *  4. eid_jwks_parse() on the bytes as a JWK Set.
 * Invariants: a refusal has an EID03xxx tag whose number is the code and a
 * reason that never contains the input; MALFORMED exactly when the bytes
 * are not RFC 6750 token syntax; an accepted identity has only clean
 * strings and valid identifiers.  The clock is fixed (2023-11-14), so the
 * signed seeds in the corpus stay valid.
 *
 * The JWKS file is found next to this source (built from the repository
 * root, as the Makefile does) or at $EID_FUZZ_JWKS.  The EC private key
 * below is a throw-away test key: it signs nothing but fuzz input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <cjose/cjose.h>
#include <sanitizer/lsan_interface.h>

#include "eid/eid_bearer.h"
#include "eid/eid_claims.h"
#include "eid/eid_hsa.h"
#include "eid/eid_jwks.h"
#include "eid/eid_jwt.h"
#include "eid/eid_pnr.h"

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_jwt: invariant failed: %s (line %d)\n", #c, __LINE__);  \
            abort();                                                                   \
        }                                                                              \
    } while (0)

#define NOW ((apr_time_t)1700000000 * APR_USEC_PER_SEC)

static const char ec_private[] =
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"fz-ec\",\"alg\":\"ES256\",\"use\":\"sig\","
    "\"x\":\"2t7EOU4AdrdkOHqYyUb6ndEEL-RbXA3AwfNLkMo2trU\","
    "\"y\":\"dFqHxb2PzFv3tpCyUVM_yA5xfieiQkQMAE9AOeG8KZA\","
    "\"d\":\"BJsN_aRInwM8j3L1GmNyIQa5HaLSM7bZI8GpLLtct7o\"}";

static apr_pool_t *root;
static eid_provider_t *provs[3];
static eid_claims_map_t *maps[3];
static cjose_jwk_t *signer;
static cjose_header_t *sign_hdr;
static eid_jwt_rules_t rules;
static const char *const audiences[] = {"api://fuzz"};

static const char *jwks_path(void)
{
    const char *env = getenv("EID_FUZZ_JWKS");
    const char *src = __FILE__, *slash = strrchr(src, '/');
    if (env)
        return env;
    if (!slash)
        return "fuzz_jwt_jwks.json";
    return apr_psprintf(root, "%.*s/fuzz_jwt_jwks.json", (int)(slash - src), src);
}

static eid_provider_t *provider(const char *name, const char *iss, const char *profile)
{
    eid_provider_t *pv = eid_provider_create(root, name);
    const char *err;
    const char *opts[] = {"issuer", iss, "audience", "api://fuzz", "jwks_file", jwks_path(),
                          "algs", "RS256,ES256,PS256,ES384", "claims", profile,
                          "max_token_size", "8192", "acr.urn:fuzz:loa", "2", NULL};
    int i;
    for (i = 0; opts[i]; i += 2)
        if ((err = eid_provider_set(pv, root, opts[i], opts[i + 1])) != NULL) {
            fprintf(stderr, "fuzz_jwt: %s\n", err);
            abort();
        }
    if ((err = eid_provider_check(pv, root)) != NULL) {
        fprintf(stderr, "fuzz_jwt: %s (set EID_FUZZ_JWKS?)\n", err);
        abort();
    }
    CHECK(eid_provider_init(pv, root, 0) == APR_SUCCESS);
    CHECK(eid_provider_init(pv, root, 1) == APR_SUCCESS);
    /* fetched "now" on the harness's clock, so unknown kids stay throttled */
    {
        eid_result_t res;
        CHECK(eid_jwks_refresh(eid_provider_jwks(pv), root, NOW, &res) == APR_SUCCESS);
    }
    return pv;
}

/* Everything the harness holds is released at exit, so that LeakSanitizer
 * reports only what a run leaked. */
static void teardown(void)
{
    cjose_header_release(sign_hdr);
    cjose_jwk_release(signer);
    apr_pool_destroy(root);
    apr_terminate();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    cjose_err err;
    (void)argc;
    (void)argv;
    apr_initialize();
    /* Why LeakSanitizer is paused here: the providers live for the whole run
     * and hold cjose/OpenSSL objects that are referenced only from APR pool
     * memory, which APR takes from mmap and LeakSanitizer does not scan;
     * they would be reported as leaks at the first leak check.  Everything an
     * input allocates is still checked. */
    __lsan_disable();
    apr_pool_create(&root, NULL);
    provs[0] = provider("generic", "https://fz-generic", "generic");
    provs[1] = provider("inera", "https://fz-inera", "inera");
    provs[2] = provider("sweden", "https://fz-se", "oidc-sweden");
    maps[0] = eid_claims_map_create(root);
    maps[1] = eid_claims_map_create(root);
    maps[2] = eid_claims_map_create(root);
    eid_claims_set_profile(maps[1], "inera");
    eid_claims_set_profile(maps[2], "oidc-sweden");
    eid_claims_set_claim(maps[0], root, "roles", "groups");
    eid_claims_set_claim(maps[0], root, "hsa-id", "hsa");
    eid_claims_set_claim(maps[0], root, "pnr", "ssn");
    eid_jwt_rules_default(&rules);
    rules.issuer = "https://fz-generic";
    rules.audiences = audiences;
    rules.naudiences = 1;
    signer = cjose_jwk_import(ec_private, strlen(ec_private), &err);
    sign_hdr = cjose_header_new(&err);
    CHECK(signer && sign_hdr);
    cjose_header_set(sign_hdr, CJOSE_HDR_ALG, "ES256", &err);
    cjose_header_set(sign_hdr, CJOSE_HDR_KID, "fz-ec", &err);
    cjose_header_set(sign_hdr, "typ", "at+jwt", &err);
    __lsan_enable();
    atexit(teardown);
    return 0;
}

/* ---- oracles ----------------------------------------------------------------------- */

static int token_syntax(const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n && ((d[i] >= 'A' && d[i] <= 'Z') || (d[i] >= 'a' && d[i] <= 'z') ||
                     (d[i] >= '0' && d[i] <= '9') || d[i] == '-' || d[i] == '.' ||
                     d[i] == '_' || d[i] == '~' || d[i] == '+' || d[i] == '/'))
        i++;
    if (i == 0)
        return 0;
    while (i < n && d[i] == '=')
        i++;
    return i == n;
}

static void clean_str(const char *s)
{
    if (!s)
        return;
    CHECK(*s != '\0');
    for (; *s; s++)
        CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
}

static void clean_arr(const apr_array_header_t *a)
{
    int i;
    for (i = 0; a && i < a->nelts; i++)
        clean_str(APR_ARRAY_IDX(a, i, const char *));
}

static void check_identity(const eid_identity_t *id)
{
    const char *s[] = {id->profile, id->issuer, id->subject, id->pnr, id->hsa_id,
                       id->given_name, id->surname, id->display_name, id->email, id->upn,
                       id->org_number, id->org_hsa_id, id->org_name, id->unit_hsa_id,
                       id->unit_name, id->commission_hsa_id, id->commission_name,
                       id->commission_purpose, id->loa_uri};
    size_t i;
    CHECK(id->method == EID_METHOD_BEARER);
    CHECK(id->profile != NULL);
    CHECK(id->serial == NULL);
    for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        clean_str(s[i]);
    clean_arr(id->commission_rights);
    clean_arr(id->roles);
    clean_arr(id->scopes);
    if (id->pnr) {
        eid_pnr_kind_e k = eid_pnr_classify(id->pnr, strlen(id->pnr));
        CHECK(k != EID_PNR_INVALID);
        CHECK(id->pnr_is_coordination == (k == EID_PNR_SAMORDNINGSNUMMER));
    }
    if (id->hsa_id)
        CHECK(eid_hsa_ok(id->hsa_id, strlen(id->hsa_id), 0, NULL));
    if (id->org_hsa_id)
        CHECK(eid_hsa_ok(id->org_hsa_id, strlen(id->org_hsa_id), 0, NULL));
    if (id->unit_hsa_id)
        CHECK(eid_hsa_ok(id->unit_hsa_id, strlen(id->unit_hsa_id), 0, NULL));
    if (id->commission_hsa_id)
        CHECK(eid_hsa_ok(id->commission_hsa_id, strlen(id->commission_hsa_id), 0, NULL));
    if (id->org_number)
        CHECK(eid_orgnr_ok(id->org_number, strlen(id->org_number)));
    CHECK(id->loa >= 0 && id->loa <= 4);
    CHECK(id->loa == 0 || id->loa_uri != NULL);
}

static void check_refusal(const eid_result_t *res, int code, const uint8_t *d, size_t n)
{
    CHECK(res->tag && strlen(res->tag) == 8 && !strncmp(res->tag, "EID03", 5));
    CHECK(atoi(res->tag + 3) == code);
    CHECK(res->reason != NULL);
    if (n >= 8)
        CHECK(!memmem(res->reason, strlen(res->reason), d, n));
}

static eid_bearer_code_e bearer(apr_pool_t *p, const uint8_t *d, size_t n)
{
    eid_identity_t *id = NULL;
    eid_result_t res = {0};
    eid_bearer_code_e c =
        eid_bearer_validate(p, provs, 3, (const char *)d, n, NOW, &id, &res);

    CHECK((c == EID_BEARER_MALFORMED) == (n == 0 || !token_syntax(d, n)));
    if (c == EID_BEARER_OK) {
        CHECK(id != NULL);
        check_identity(id);
    }
    else {
        CHECK(id == NULL);
        check_refusal(&res, res.code, d, n);
        CHECK(eid_bearer_code(&res) == c);
    }
    return c;
}

static int depth(json_t *j)
{
    int m = 0, d;
    size_t i;
    const char *k;
    json_t *v;
    if (json_is_object(j)) {
        json_object_foreach(j, k, v) if ((d = depth(v)) > m) m = d;
        return m + 1;
    }
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) if ((d = depth(v)) > m) m = d;
        return m + 1;
    }
    return 0;
}

/* ---- stages ------------------------------------------------------------------------ */

static void claims_stage(apr_pool_t *p, json_t *claims, const uint8_t *d, size_t n)
{
    int i, rc;
    eid_result_t res;

    for (i = 0; i < 3; i++) {
        eid_identity_t *id = NULL;
        res.tag = NULL;
        rc = eid_claims_to_identity(p, maps[i], claims, "fz", &id, &res);
        if (rc == 0)
            check_identity(id);
        else
            check_refusal(&res, rc, d, n);
    }
    for (i = 0; i < 2; i++) {
        rc = eid_jwt_check_claims(claims, &rules, NOW, i, &res);
        if (rc)
            check_refusal(&res, rc, d, n);
    }
    /* the same payload, signed: past the signature into claims and mapping */
    if (n <= 4096) {
        cjose_err err;
        cjose_jws_t *jws = cjose_jws_sign(signer, sign_hdr, d, n, &err);
        const char *ser;
        if (jws && cjose_jws_export(jws, &ser, &err)) {
            eid_bearer_code_e c = bearer(p, (const uint8_t *)ser, strlen(ser));
            CHECK(c != EID_BEARER_MALFORMED);
            /* again: a cache hit must say the same */
            CHECK(bearer(p, (const uint8_t *)ser, strlen(ser)) == c);
        }
        cjose_jws_release(jws);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    json_t *mine, *ref;
    json_error_t jerr;
    int dup;
    eid_jwks_keys_t *set;
    eid_result_t res;

    apr_pool_create(&p, root);
    /* A token cache per input (freed with `p`): hits are fuzzed within an
     * input (the signed payload below is validated twice), and no entry
     * outlives the run that made it. */
    eid_tokcache_init(p, 16, apr_time_from_sec(300));
    bearer(p, data, size);

    mine = eid_jwt_json_object((const char *)data, size, &dup);
    ref = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (ref && !json_is_object(ref)) {
        json_decref(ref);
        ref = NULL;
    }
    if (mine) {
        CHECK(ref != NULL);
        CHECK(json_equal(mine, ref));
        CHECK(!dup);
    }
    else if (ref) {
        /* the two documented differences */
        CHECK(depth(ref) > EID_JWT_JSON_MAX_DEPTH || memchr(data, 0, size));
    }
    if (mine)
        claims_stage(p, mine, data, size);
    json_decref(mine);
    json_decref(ref);

    if (eid_jwks_parse(p, (const char *)data, size, NOW, "fz", &set, &res) == 0) {
        int i;
        for (i = 0; i < set->n; i++) {
            CHECK(set->key[i].cjose != NULL);
            CHECK(set->key[i].sig_len >= 64);
        }
    }
    else
        CHECK(!strcmp(res.tag, "EID03209"));
    apr_pool_destroy(p);
    return 0;
}
