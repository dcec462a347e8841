/*
 * Stress tests: every structure of the core that threads share, driven by
 * several threads at once with thousands of distinct keys, every answer
 * checked against the key it was asked for (the identity is derived from the
 * token, so a wrong identity is seen, not only a crash).
 *
 *  - the token cache in three sizes: 16384 entries (16 shards, no eviction),
 *    the introspection cache's 4096 (8 shards, eviction) and 1000 (4 shards,
 *    constant eviction);
 *  - a key set: readers select and verify while other threads re-fetch a
 *    document whose keys rotate;
 *  - eid_bearer_validate() through the process-wide cache while the
 *    provider's key set rotates (a key withdrawn under a cached token).
 *
 * Run plainly, under valgrind and under ThreadSanitizer (make test-tsan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <cjose/cjose.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eid/eid_bearer.h"
#include "eid/eid_jwks.h"
#include "eid/eid_tokcache.h"

#define THREADS 4
#define ISS "https://op.stress"
#define AUD "api://stress"
#define NOW_S 1700000000L

static apr_pool_t *pool;
static const apr_time_t now = (apr_time_t)NOW_S * APR_USEC_PER_SEC;

static int setup(void **state)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

/* Threads start (and change phase) together so that they really overlap. */
static pthread_barrier_t line;

static void start_line(void)
{
    pthread_barrier_wait(&line);
}

static void run_threads(void *(APR_THREAD_FUNC *fn)(apr_thread_t *, void *), void *jobs,
                        size_t job_size, int n)
{
    apr_thread_t *t[16];
    apr_status_t rv;
    int i;
    pthread_barrier_init(&line, NULL, (unsigned)n);
    for (i = 0; i < n; i++)
        assert_int_equal(apr_thread_create(&t[i], NULL, fn, (char *)jobs + job_size * (size_t)i,
                                           pool), APR_SUCCESS);
    for (i = 0; i < n; i++)
        apr_thread_join(&rv, t[i]);
    pthread_barrier_destroy(&line);
}

/* ---- token cache ----------------------------------------------------------------- */

#define TOKENS 2000

typedef struct cjob {
    eid_tokcache_t *c;
    int id, evicting;
    int hits, misses, bad; /* cmocka asserts only in the main thread */
} cjob_t;

static const char *token_of(apr_pool_t *p, int thread, int i)
{
    return apr_psprintf(p, "token-%d-%05d", thread, i);
}

static eid_identity_t *identity_of(apr_pool_t *p, const char *tok)
{
    eid_identity_t *id = eid_identity_make(p);
    apr_array_header_t *roles = apr_array_make(p, 2, sizeof(const char *));
    id->method = EID_METHOD_BEARER;
    id->profile = "stress";
    id->subject = tok;
    id->pnr = apr_pstrcat(p, "pnr-", tok, NULL);
    APR_ARRAY_PUSH(roles, const char *) = apr_pstrcat(p, "role-", tok, NULL);
    id->roles = roles;
    id->expires = now + apr_time_from_sec(600);
    return id;
}

/* Is `id` exactly the identity stored for `tok`? */
static int matches(const eid_identity_t *id, const char *tok)
{
    return id && id->subject && !strcmp(id->subject, tok) && id->pnr && !strncmp(id->pnr, "pnr-", 4) &&
           !strcmp(id->pnr + 4, tok) && id->roles && id->roles->nelts == 1 &&
           !strcmp(APR_ARRAY_IDX(id->roles, 0, const char *) + 5, tok);
}

static int owner;

static void lookup(cjob_t *j, apr_pool_t *p, const char *tok, int must_hit)
{
    unsigned char k[EID_TOKCACHE_KEY_LEN];
    eid_identity_t *out = NULL;
    eid_tokcache_key(tok, strlen(tok), k);
    if (eid_tokcache_get(j->c, k, now, NULL, &owner, p, &out)) {
        j->hits++;
        j->bad += !matches(out, tok);
    }
    else {
        j->misses++;
        j->bad += must_hit;
    }
}

static void *APR_THREAD_FUNC cache_worker(apr_thread_t *t, void *data)
{
    cjob_t *j = data;
    apr_pool_t *p;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    start_line();
    /* every thread inserts its own tokens: new keys in every shard at once */
    for (i = 0; i < TOKENS; i++) {
        unsigned char k[EID_TOKCACHE_KEY_LEN];
        const char *tok = token_of(p, j->id, i);
        eid_tokcache_key(tok, strlen(tok), k);
        eid_tokcache_put(j->c, k, &owner, identity_of(p, tok), 0, now);
        /* and reads another thread's while it is being written */
        if (i % 4 == 0)
            lookup(j, p, token_of(p, (j->id + 1) % THREADS, i), 0);
        if (i % 64 == 0)
            apr_pool_clear(p);
    }
    apr_pool_clear(p);
    start_line(); /* every put is done */
    for (i = 0; i < TOKENS; i++) {
        lookup(j, p, token_of(p, j->id, i), !j->evicting);
        lookup(j, p, token_of(p, (j->id + 2) % THREADS, TOKENS - 1 - i), !j->evicting);
        if (i % 64 == 0)
            apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void cache_stress(int entries, int evicting)
{
    apr_pool_t *p;
    cjob_t j[THREADS];
    int i, hits = 0, bad = 0;

    apr_pool_create(&p, pool);
    memset(j, 0, sizeof(j));
    for (i = 0; i < THREADS; i++) {
        j[i].c = i == 0 ? eid_tokcache_create(p, entries, apr_time_from_sec(300)) : j[0].c;
        assert_non_null(j[i].c);
        j[i].id = i;
        j[i].evicting = evicting;
    }
    run_threads(cache_worker, j, sizeof(j[0]), THREADS);
    for (i = 0; i < THREADS; i++) {
        hits += j[i].hits;
        bad += j[i].bad;
    }
    assert_int_equal(bad, 0);
    assert_true(hits >= (evicting ? 1 : 2 * THREADS * TOKENS));
    assert_true(eid_tokcache_count(j[0].c) <= entries);
    if (!evicting)
        assert_int_equal(eid_tokcache_count(j[0].c), THREADS * TOKENS);
    apr_pool_destroy(p);
}

static void test_tokcache_no_eviction(void **state)
{
    cache_stress(16384, 0);
}

static void test_tokcache_introspection_size(void **state)
{
    cache_stress(4096, 1);
}

static void test_tokcache_constant_eviction(void **state)
{
    cache_stress(1000, 1);
}

/* ---- keys and tokens ----------------------------------------------------------- */

#define STABLE 4   /* s0..s3: in every document */
#define ROTATING 8 /* r0..r7: document i lists r(i) and r(i+1) */

static cjose_jwk_t *skey[STABLE], *rkey[ROTATING];
static const char *docs[ROTATING];
static atomic_uint doc_next;

static cjose_jwk_t *new_key(const char *kid)
{
    cjose_err err;
    cjose_jwk_t *k = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &err);
    assert_non_null(k);
    assert_true(cjose_jwk_set_kid(k, kid, strlen(kid), &err));
    return k;
}

static const char *pub_json(cjose_jwk_t *k)
{
    cjose_err err;
    char *j = cjose_jwk_to_json(k, false, &err);
    const char *r;
    assert_non_null(j);
    r = apr_pstrdup(pool, j);
    free(j);
    return r;
}

static void make_keys(void)
{
    int i, k;
    const char *stable = "";
    for (i = 0; i < STABLE; i++) {
        skey[i] = new_key(apr_psprintf(pool, "s%d", i));
        stable = apr_pstrcat(pool, stable, pub_json(skey[i]), ",", NULL);
    }
    for (i = 0; i < ROTATING; i++)
        rkey[i] = new_key(apr_psprintf(pool, "r%d", i));
    for (i = 0; i < ROTATING; i++) {
        k = (i + 1) % ROTATING;
        docs[i] = apr_pstrcat(pool, "{\"keys\":[", stable, pub_json(rkey[i]), ",",
                              pub_json(rkey[k]), "]}", NULL);
    }
    atomic_store(&doc_next, 0);
}

static void free_keys(void)
{
    int i;
    for (i = 0; i < STABLE; i++)
        cjose_jwk_release(skey[i]);
    for (i = 0; i < ROTATING; i++)
        cjose_jwk_release(rkey[i]);
}

/* Every fetch gets the next document: keys r* come and go all the time. */
static apr_status_t rotating_source(void *baton, apr_pool_t *p, const char **doc,
                                    apr_size_t *len, eid_result_t *res)
{
    unsigned n = atomic_fetch_add(&doc_next, 1);
    (void)baton;
    (void)res;
    *doc = apr_pstrdup(p, docs[n % ROTATING]);
    *len = strlen(*doc);
    return APR_SUCCESS;
}

/* A compact ES256 JWS with header kid `kid` over `payload`. */
static const char *sign(cjose_jwk_t *k, const char *payload)
{
    cjose_err err;
    cjose_header_t *h = cjose_header_new(&err);
    cjose_jws_t *jws;
    const char *ser, *out;
    assert_true(cjose_header_set(h, CJOSE_HDR_ALG, CJOSE_HDR_ALG_ES256, &err));
    assert_true(cjose_header_set(h, CJOSE_HDR_KID, cjose_jwk_get_kid(k, &err), &err));
    assert_true(cjose_header_set(h, "typ", "at+jwt", &err));
    jws = cjose_jws_sign(k, h, (const uint8_t *)payload, strlen(payload), &err);
    assert_non_null(jws);
    assert_true(cjose_jws_export(jws, &ser, &err));
    out = apr_pstrdup(pool, ser);
    cjose_jws_release(jws);
    cjose_header_release(h);
    return out;
}

/* ---- key set: readers verify while the set rotates ----------------------------- */

#define READS 300
#define T0 ((apr_time_t)NOW_S * APR_USEC_PER_SEC)

typedef struct kjob {
    eid_jwks_t *ks;
    int id, refresher;
    atomic_int *readers_left;
    int ok, gone, bad;
} kjob_t;

static const char *ktoken[STABLE + ROTATING]; /* signed by key i (s0.., then r0..) */

static void *APR_THREAD_FUNC keyset_worker(apr_thread_t *t, void *data)
{
    kjob_t *j = data;
    apr_pool_t *p;
    cjose_jws_t *jws[STABLE + ROTATING];
    cjose_err err;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    /* cjose's JWS objects are written by a verification: one per thread */
    for (i = 0; i < STABLE + ROTATING; i++)
        jws[i] = cjose_jws_import(ktoken[i], strlen(ktoken[i]), &err);
    start_line();
    if (j->refresher) {
        eid_result_t res;
        for (i = 0; atomic_load(j->readers_left) > 0; i++) {
            /* EBUSY when a reader is fetching: fine */
            eid_jwks_refresh(j->ks, p, T0 + apr_time_from_sec(i), &res);
            apr_pool_clear(p);
        }
        j->ok = i;
    }
    else {
        for (i = 0; i < READS; i++) {
            int k = (i * 7 + j->id) % (STABLE + ROTATING);
            const char *kid = k < STABLE ? apr_psprintf(p, "s%d", k)
                                         : apr_psprintf(p, "r%d", k - STABLE);
            eid_jwks_sel_t sel;
            eid_result_t res = {0};
            /* the clock moves: readers fetch (refresh 10 s) as well */
            int rc = eid_jwks_select(j->ks, p, T0 + apr_time_from_sec(i), kid, strlen(kid),
                                     EID_JWS_ES256, &sel, &res);
            if (rc == 0) {
                /* the key chosen is the kid's, and its material verifies the
                 * token signed with that kid's private key */
                if (sel.n != 1 || sel.keys[0]->kid_len != strlen(kid) ||
                    memcmp(sel.keys[0]->kid, kid, strlen(kid)) ||
                    !cjose_jws_verify(jws[k], sel.keys[0]->cjose, &err))
                    j->bad++;
                else
                    j->ok++;
                eid_jwks_release(j->ks, &sel);
            }
            else if ((rc == 3201 || rc == 3208) && k >= STABLE)
                j->gone++; /* a rotating key, not in the set just now (3208: while
                            * another thread fetches, it may be coming) */
            else
                j->bad++;
            if (i % 32 == 0)
                apr_pool_clear(p);
        }
        atomic_fetch_sub(j->readers_left, 1);
    }
    for (i = 0; i < STABLE + ROTATING; i++)
        cjose_jws_release(jws[i]);
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_keyset_rotation(void **state)
{
    apr_pool_t *p;
    eid_jwks_conf_t c;
    eid_jwks_t *ks;
    eid_result_t res;
    kjob_t j[THREADS];
    atomic_int left = THREADS - 1;
    int i, ok = 0, bad = 0;

    apr_pool_create(&p, pool);
    make_keys();
    for (i = 0; i < STABLE; i++)
        ktoken[i] = sign(skey[i], "{\"sub\":\"x\"}");
    for (i = 0; i < ROTATING; i++)
        ktoken[STABLE + i] = sign(rkey[i], "{\"sub\":\"x\"}");
    memset(&c, 0, sizeof(c));
    c.name = "stress";
    c.issuer = ISS;
    c.refresh = apr_time_from_sec(10);
    c.min_refetch = apr_time_from_sec(1);
    c.max_stale = apr_time_from_sec(86400);
    eid_http_opts_default(&c.http);
    ks = eid_jwks_create(p, &c);
    eid_jwks_set_source(ks, rotating_source, NULL);
    assert_int_equal(eid_jwks_child_init(ks, p), APR_SUCCESS);
    assert_int_equal(eid_jwks_refresh(ks, p, T0, &res), APR_SUCCESS);
    memset(j, 0, sizeof(j));
    for (i = 0; i < THREADS; i++) {
        j[i].ks = ks;
        j[i].id = i;
        j[i].refresher = i == 0;
        j[i].readers_left = &left;
    }
    run_threads(keyset_worker, j, sizeof(j[0]), THREADS);
    for (i = 1; i < THREADS; i++) {
        ok += j[i].ok;
        bad += j[i].bad;
    }
    assert_int_equal(bad, 0);
    assert_true(ok >= (THREADS - 1) * READS * STABLE / (STABLE + ROTATING));
    assert_true(j[0].ok > 0); /* the refresher did run alongside */
    apr_pool_destroy(p);
    free_keys();
}

/* ---- the facade: distinct tokens through the cache while keys rotate ------------ */

#define BTOKENS 250

typedef struct bjob {
    eid_provider_t *pv;
    int id, refresher;
    atomic_int *readers_left;
    const char **tok; /* BTOKENS, subject "u<id>-<i>" */
    int ok, gone, bad;
} bjob_t;

static void *APR_THREAD_FUNC bearer_worker(apr_thread_t *t, void *data)
{
    bjob_t *j = data;
    apr_pool_t *p;
    int round, i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    start_line();
    if (j->refresher) {
        eid_result_t res;
        for (i = 0; atomic_load(j->readers_left) > 0; i++) {
            eid_jwks_refresh(eid_provider_jwks(j->pv), p, now, &res);
            apr_pool_clear(p);
            usleep(500);
        }
        j->ok = i;
    }
    else {
        for (round = 0; round < 3; round++)
            for (i = 0; i < BTOKENS; i++) {
                eid_identity_t *id = NULL;
                eid_result_t res = {0};
                const char *want = apr_psprintf(p, "u%d-%d", j->id, i);
                eid_bearer_code_e c = eid_bearer_validate(p, &j->pv, 1, j->tok[i],
                                                          strlen(j->tok[i]), now, &id, &res);
                if (c == EID_BEARER_OK && id && id->subject && !strcmp(id->subject, want))
                    j->ok++;
                else if (i % 5 == 0 && ((c == EID_BEARER_INVALID && !strcmp(res.tag, "EID03201")) ||
                                        (c == EID_BEARER_UNAVAILABLE &&
                                         !strcmp(res.tag, "EID03208"))))
                    j->gone++; /* signed with a rotating key that is withdrawn now */
                else
                    j->bad++;
                if (i % 32 == 0)
                    apr_pool_clear(p);
            }
        atomic_fetch_sub(j->readers_left, 1);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_bearer_cache_rotation(void **state)
{
    apr_pool_t *p;
    eid_provider_t *pv;
    const char *err;
    char dir[64], path[128];
    FILE *f;
    bjob_t j[THREADS];
    atomic_int left = THREADS - 1;
    int i, t, ok = 0, bad = 0;

    apr_pool_create(&p, pool);
    make_keys();
    strcpy(dir, "/tmp/eid_test_conc.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(docs[0], f);
    fclose(f);
    pv = eid_provider_create(p, "stress");
    const char *opts[] = {"issuer", ISS, "audience", AUD, "algs", "ES256", "jwks_file", path,
                          "jwks_refresh", "10", "jwks_min_refetch", "1", NULL};
    for (i = 0; opts[i]; i += 2)
        assert_null(eid_provider_set(pv, p, opts[i], opts[i + 1]));
    if ((err = eid_provider_check(pv, p)) != NULL)
        fail_msg("%s", err);
    eid_jwks_set_source(eid_provider_jwks(pv), rotating_source, NULL);
    assert_int_equal(eid_provider_init(pv, p, 0), APR_SUCCESS);
    assert_int_equal(eid_provider_init(pv, p, 1), APR_SUCCESS);
    assert_int_equal(eid_tokcache_init(p, 4096, apr_time_from_sec(300)), APR_SUCCESS);

    memset(j, 0, sizeof(j));
    for (t = 0; t < THREADS; t++) {
        j[t].pv = pv;
        j[t].id = t;
        j[t].refresher = t == 0;
        j[t].readers_left = &left;
        j[t].tok = apr_palloc(p, sizeof(const char *) * BTOKENS);
        for (i = 0; t > 0 && i < BTOKENS; i++) {
            /* every fifth token is signed with a rotating key */
            cjose_jwk_t *k = i % 5 == 0 ? rkey[i % ROTATING] : skey[i % STABLE];
            j[t].tok[i] = sign(k, apr_psprintf(p, "{\"iss\":\"%s\",\"aud\":\"%s\","
                                              "\"sub\":\"u%d-%d\",\"exp\":%ld,\"iat\":%ld}",
                                              ISS, AUD, t, i, NOW_S + 3600, NOW_S - 5));
        }
    }
    run_threads(bearer_worker, j, sizeof(j[0]), THREADS);
    for (t = 1; t < THREADS; t++) {
        ok += j[t].ok;
        bad += j[t].bad;
    }
    assert_int_equal(bad, 0);
    assert_true(ok >= (THREADS - 1) * 3 * BTOKENS * 4 / 5);
    assert_true(j[0].ok > 0);
    assert_int_equal(eid_tokcache_init(p, 0, 0), APR_SUCCESS);
    apr_pool_destroy(p);
    unlink(path);
    rmdir(dir);
    free_keys();
}

/* ---- the same, one step at a time -------------------------------------------- */

static const char *fixed_doc; /* NULL: the source is down */

static apr_status_t fixed_source(void *baton, apr_pool_t *p, const char **doc, apr_size_t *len,
                                 eid_result_t *res)
{
    (void)baton;
    if (!fixed_doc) {
        eid_fail(res, "EID03208", "test source down");
        return APR_EGENERAL;
    }
    *doc = apr_pstrdup(p, fixed_doc);
    *len = strlen(fixed_doc);
    return APR_SUCCESS;
}

static eid_bearer_code_e validate(eid_provider_t *pv, const char *tok, apr_time_t at,
                                  const char **tag)
{
    eid_identity_t *id = NULL;
    eid_result_t res = {0};
    eid_bearer_code_e c = eid_bearer_validate(pool, &pv, 1, tok, strlen(tok), at, &id, &res);
    *tag = c == EID_BEARER_OK ? (id && id->subject ? id->subject : "?") : res.tag;
    return c;
}

/* A cached token goes with its key: withdrawn by a successful fetch, or the
 * whole set past jwks_max_stale while fetches fail. */
static void test_bearer_cache_follows_key_set(void **state)
{
    apr_pool_t *p;
    eid_provider_t *pv;
    eid_result_t res;
    const char *tag, *t0, *t1, *err;
    char dir[64], path[128];
    FILE *f;
    int i;

    apr_pool_create(&p, pool);
    make_keys();
    fixed_doc = apr_pstrcat(pool, "{\"keys\":[", pub_json(skey[0]), ",", pub_json(skey[1]),
                            "]}", NULL);
    strcpy(dir, "/tmp/eid_test_conc.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(fixed_doc, f);
    fclose(f);
    pv = eid_provider_create(p, "steps");
    const char *opts[] = {"issuer", ISS, "audience", AUD, "algs", "ES256", "jwks_file", path,
                          "jwks_refresh", "10", "jwks_min_refetch", "1", "jwks_max_stale",
                          "60", NULL};
    for (i = 0; opts[i]; i += 2)
        assert_null(eid_provider_set(pv, p, opts[i], opts[i + 1]));
    if ((err = eid_provider_check(pv, p)) != NULL)
        fail_msg("%s", err);
    eid_jwks_set_source(eid_provider_jwks(pv), fixed_source, NULL);
    assert_int_equal(eid_provider_init(pv, p, 0), APR_SUCCESS);
    assert_int_equal(eid_provider_init(pv, p, 1), APR_SUCCESS);
    assert_int_equal(eid_tokcache_init(p, 100, apr_time_from_sec(300)), APR_SUCCESS);
    t0 = sign(skey[0], apr_psprintf(p, "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"k0\","
                                    "\"exp\":%ld}", ISS, AUD, NOW_S + 3600));
    t1 = sign(skey[1], apr_psprintf(p, "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"k1\","
                                    "\"exp\":%ld}", ISS, AUD, NOW_S + 3600));
    assert_int_equal(validate(pv, t0, now, &tag), EID_BEARER_OK);
    assert_int_equal(validate(pv, t1, now, &tag), EID_BEARER_OK);
    assert_int_equal(eid_tokcache_count(eid_tokcache_global()), 2);
    assert_int_equal(validate(pv, t0, now + 1, &tag), EID_BEARER_OK); /* a hit */
    assert_string_equal(tag, "k0");
    /* the provider withdraws s0: the cached token is refused with it */
    fixed_doc = apr_pstrcat(pool, "{\"keys\":[", pub_json(skey[1]), "]}", NULL);
    assert_int_equal(eid_jwks_refresh(eid_provider_jwks(pv), p, now + 2, &res), APR_SUCCESS);
    assert_int_equal(validate(pv, t0, now + 2, &tag), EID_BEARER_INVALID);
    assert_string_equal(tag, "EID03201");
    /* s1 was not withdrawn: its token is checked again once, then cached */
    assert_int_equal(validate(pv, t1, now + 2, &tag), EID_BEARER_OK);
    assert_int_equal(eid_tokcache_count(eid_tokcache_global()), 1);
    assert_int_equal(validate(pv, t1, now + 3, &tag), EID_BEARER_OK);
    assert_string_equal(tag, "k1");
    /* the provider goes down: the cached token serves until jwks_max_stale
     * (60 s) after the last successful fetch, not until the cache's 300 s */
    fixed_doc = NULL;
    assert_int_equal(validate(pv, t1, now + apr_time_from_sec(59), &tag), EID_BEARER_OK);
    assert_string_equal(tag, "k1");
    assert_int_equal(validate(pv, t1, now + apr_time_from_sec(61), &tag),
                     EID_BEARER_UNAVAILABLE);
    assert_string_equal(tag, "EID03207");
    assert_int_equal(eid_tokcache_init(p, 0, 0), APR_SUCCESS);
    apr_pool_destroy(p);
    unlink(path);
    rmdir(dir);
    free_keys();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokcache_no_eviction),
        cmocka_unit_test(test_tokcache_introspection_size),
        cmocka_unit_test(test_tokcache_constant_eviction),
        cmocka_unit_test(test_keyset_rotation),
        cmocka_unit_test(test_bearer_cache_rotation),
        cmocka_unit_test(test_bearer_cache_follows_key_set),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
