/*
 * session_fixtures.h - records, pending logins and helpers shared by
 * test_session.c and test_session_codec.c (include after cmocka.h).
 */
#ifndef SESSION_FIXTURES_H
#define SESSION_FIXTURES_H

#include <apr_strings.h>
#include <apr_tables.h>
#include <stdarg.h>
#include <string.h>

#include "eid/eid_session.h"

static apr_pool_t *pool;
static unsigned char key_a[32] __attribute__((unused)), key_b[32] __attribute__((unused)),
    key_c[32] __attribute__((unused));

#define BIND "s:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define VHOST "www.example.se"

static inline eid_session_keys_t *keys(const unsigned char *cur, const unsigned char *prev)
{
    eid_session_keys_t *k = NULL;
    assert_null(eid_session_keys_from_bytes(pool, cur, prev, &k));
    assert_non_null(k);
    return k;
}

static inline apr_array_header_t *strv(int n, ...)
{
    apr_array_header_t *a = apr_array_make(pool, n ? n : 1, sizeof(const char *));
    va_list ap;
    int i;

    va_start(ap, n);
    for (i = 0; i < n; i++)
        APR_ARRAY_PUSH(a, const char *) = va_arg(ap, const char *);
    va_end(ap);
    return a;
}

/* A record with every field of the identity set (distinct values). */
static inline eid_session_rec_t *full_rec(void)
{
    eid_session_rec_t *rec = apr_pcalloc(pool, sizeof(*rec));
    eid_identity_t *id = eid_identity_make(pool);
    int n = 0;

#define SETS(f) id->f = apr_psprintf(pool, "%s-%d-åäö €", #f, ++n);
    EID_IDENTITY_STR_FIELDS(SETS)
#undef SETS
    id->method = EID_METHOD_OIDC;
    id->pnr = "194911172296";
    id->pnr_is_coordination = 1;
    id->loa = 3;
    id->auth_time = (apr_time_t)1700000000 * APR_USEC_PER_SEC + 123;
    id->expires = -5; /* any time value survives */
    id->commission_rights = strv(2, "Läsa;Vård och behandling", "Skriva");
    id->roles = strv(3, "BIF;Spärradministratör", "r2", "");
    id->scopes = strv(0);
    id->policy_oids = strv(1, "1.2.752.129.2.1.2.1");
    id->groups = strv(2, "g1", "g2");
    id->dir_roles = strv(1, "läkare");
    id->directory = "/etc/apache2/eid/directory-county.txt";
    id->audiences = strv(2, "api://a", "api://b");
    rec->id = id;
    rec->provider = "inera";
    rec->sid = "08a5019c-17e1-4977-8f42-65a12843ea02";
    rec->sub = "sub-value";
    rec->id_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    rec->csrf = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdE";
    rec->created = 1000;
    rec->last_seen = 2000;
    rec->expires = (apr_time_t)1 << 62;
    return rec;
}

static inline void assert_str_same(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static inline void assert_arr_same(const apr_array_header_t *a, const apr_array_header_t *b)
{
    int i;

    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_int_equal(a->nelts, b->nelts);
    for (i = 0; i < a->nelts; i++)
        assert_string_equal(APR_ARRAY_IDX(a, i, const char *), APR_ARRAY_IDX(b, i, const char *));
}

static inline void assert_rec_same(const eid_session_rec_t *a, const eid_session_rec_t *b)
{
#define CMPS(f) assert_str_same(a->id->f, b->id->f);
#define CMPA(f) assert_arr_same(a->id->f, b->id->f);
    EID_IDENTITY_STR_FIELDS(CMPS)
    EID_IDENTITY_ARR_FIELDS(CMPA)
#undef CMPS
#undef CMPA
    assert_int_equal(a->id->method, b->id->method);
    assert_int_equal(a->id->pnr_is_coordination, b->id->pnr_is_coordination);
    assert_int_equal(a->id->loa, b->id->loa);
    assert_true(a->id->auth_time == b->id->auth_time);
    assert_true(a->id->expires == b->id->expires);
    assert_str_same(a->provider, b->provider);
    assert_str_same(a->sid, b->sid);
    assert_str_same(a->sub, b->sub);
    assert_str_same(a->id_token, b->id_token);
    assert_str_same(a->csrf, b->csrf);
    assert_true(a->created == b->created);
    assert_true(a->last_seen == b->last_seen);
    assert_true(a->expires == b->expires);
}


static inline eid_pending_t *pending(const char *ret)
{
    eid_pending_t *pd = apr_pcalloc(pool, sizeof(*pd));
    pd->provider = "inera";
    pd->state = "s0123456789abcdefghijABCDEFGHIJ-_0123456789";
    pd->nonce = "n0123456789abcdefghijABCDEFGHIJ-_0123456789";
    pd->code_verifier = "v0123456789abcdefghijABCDEFGHIJ-_0123456789";
    pd->return_to = ret;
    pd->min_loa = 3;
    pd->created = (apr_time_t)1700000000 * APR_USEC_PER_SEC;
    return pd;
}

static inline void assert_pending_same(const eid_pending_t *a, const eid_pending_t *b)
{
    assert_str_same(a->provider, b->provider);
    assert_str_same(a->state, b->state);
    assert_str_same(a->nonce, b->nonce);
    assert_str_same(a->code_verifier, b->code_verifier);
    assert_str_same(a->return_to, b->return_to);
    assert_int_equal(a->min_loa, b->min_loa);
    assert_true(a->created == b->created);
}


#endif
