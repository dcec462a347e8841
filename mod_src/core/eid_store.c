/*
 * eid_store.c - the store interface: argument checks in front of every
 * backend op, and the index value codec shared by the memory and shm
 * backends.  No state of its own.
 */
#include "eid/eid_store.h"

#include <apr_strings.h>
#include <string.h>

struct eid_store {
    const eid_store_ops_t *ops;
    void *backend;
};

#define INDEX_VERSION 1

eid_store_t *eid_store_create(apr_pool_t *p, const eid_store_ops_t *ops, void *backend)
{
    if (!p || !ops || !ops->get || !ops->set || !ops->add || !ops->touch || !ops->del ||
        !ops->index_add || !ops->index_take)
        return NULL;
    eid_store_t *s = apr_palloc(p, sizeof(*s));
    s->ops = ops;
    s->backend = backend;
    return s;
}

const char *eid_store_name(const eid_store_t *s)
{
    return s && s->ops->name ? s->ops->name : "none";
}

unsigned eid_store_flags(const eid_store_t *s)
{
    return s ? s->ops->flags : 0;
}

void *eid_store_backend(const eid_store_t *s)
{
    return s ? s->backend : NULL;
}

const eid_store_ops_t *eid_store_ops(const eid_store_t *s)
{
    return s ? s->ops : NULL;
}

const char *eid_store_rc_str(eid_store_rc_e rc)
{
    switch (rc) {
    case EID_STORE_OK:
        return "ok";
    case EID_STORE_NOTFOUND:
        return "notfound";
    case EID_STORE_EXISTS:
        return "exists";
    default:
        return "error";
    }
}

static int key_ok(const char *key, apr_size_t klen)
{
    return key && klen > 0 && klen <= EID_STORE_KEY_MAX;
}

static int val_ok(const unsigned char *val, apr_size_t vlen)
{
    return (val || vlen == 0) && vlen <= EID_STORE_VALUE_MAX;
}

/* Members come back as C strings: a NUL inside would cut one short. */
static int member_ok(const char *m, apr_size_t mlen)
{
    return m && mlen > 0 && mlen <= EID_STORE_MEMBER_MAX && !memchr(m, 0, mlen);
}

eid_store_rc_e eid_store_get(eid_store_t *s, apr_pool_t *p, const char *key, apr_size_t klen,
                             unsigned char **val, apr_size_t *vlen)
{
    if (!val || !vlen)
        return EID_STORE_ERROR;
    *val = NULL;
    *vlen = 0;
    if (!s || !p || !key_ok(key, klen))
        return EID_STORE_ERROR;
    unsigned char *v = NULL;
    apr_size_t n = 0;
    eid_store_rc_e rc = s->ops->get(s->backend, p, key, klen, &v, &n);
    if (rc == EID_STORE_OK) {
        if (!v && n)
            return EID_STORE_ERROR;
        *val = v ? v : (unsigned char *)apr_pcalloc(p, 1);
        *vlen = n;
    } else if (rc != EID_STORE_NOTFOUND) {
        rc = EID_STORE_ERROR;
    }
    return rc;
}

/* A backend answering something outside its op's set is treated as an
 * error: callers branch on these codes to admit or refuse. */
static eid_store_rc_e only(eid_store_rc_e rc, int allow_notfound, int allow_exists)
{
    if (rc == EID_STORE_OK || (allow_notfound && rc == EID_STORE_NOTFOUND) ||
        (allow_exists && rc == EID_STORE_EXISTS))
        return rc;
    return EID_STORE_ERROR;
}

eid_store_rc_e eid_store_set(eid_store_t *s, const char *key, apr_size_t klen,
                             const unsigned char *val, apr_size_t vlen, apr_interval_time_t ttl)
{
    if (!s || !key_ok(key, klen) || !val_ok(val, vlen) || ttl <= 0)
        return EID_STORE_ERROR;
    return only(s->ops->set(s->backend, key, klen, val, vlen, ttl), 0, 0);
}

eid_store_rc_e eid_store_add(eid_store_t *s, const char *key, apr_size_t klen,
                             const unsigned char *val, apr_size_t vlen, apr_interval_time_t ttl)
{
    if (!s || !key_ok(key, klen) || !val_ok(val, vlen) || ttl <= 0)
        return EID_STORE_ERROR;
    return only(s->ops->add(s->backend, key, klen, val, vlen, ttl), 0, 1);
}

eid_store_rc_e eid_store_touch(eid_store_t *s, const char *key, apr_size_t klen,
                               apr_interval_time_t ttl)
{
    if (!s || !key_ok(key, klen) || ttl <= 0)
        return EID_STORE_ERROR;
    return only(s->ops->touch(s->backend, key, klen, ttl), 1, 0);
}

eid_store_rc_e eid_store_del(eid_store_t *s, const char *key, apr_size_t klen)
{
    if (!s || !key_ok(key, klen))
        return EID_STORE_ERROR;
    return only(s->ops->del(s->backend, key, klen), 1, 0);
}

eid_store_rc_e eid_store_index_add(eid_store_t *s, const char *idx, apr_size_t ilen,
                                   const char *member, apr_size_t mlen, apr_interval_time_t ttl)
{
    if (!s || !key_ok(idx, ilen) || !member_ok(member, mlen) || ttl <= 0)
        return EID_STORE_ERROR;
    return only(s->ops->index_add(s->backend, idx, ilen, member, mlen, ttl), 0, 0);
}

eid_store_rc_e eid_store_index_take(eid_store_t *s, apr_pool_t *p, const char *idx,
                                    apr_size_t ilen, apr_array_header_t **members)
{
    if (!members)
        return EID_STORE_ERROR;
    *members = NULL;
    if (!p)
        return EID_STORE_ERROR;
    *members = apr_array_make(p, 0, sizeof(const char *));
    if (!s || !key_ok(idx, ilen))
        return EID_STORE_ERROR;
    apr_array_header_t *m = NULL;
    eid_store_rc_e rc = only(s->ops->index_take(s->backend, p, idx, ilen, &m), 1, 0);
    if (rc == EID_STORE_OK && m)
        *members = m;
    else if (rc == EID_STORE_OK)
        rc = EID_STORE_ERROR;
    return rc;
}

eid_store_rc_e eid_store_stats(eid_store_t *s, eid_store_stats_t *out)
{
    if (!out)
        return EID_STORE_ERROR;
    memset(out, 0, sizeof(*out));
    if (!s || !s->ops->stats)
        return EID_STORE_ERROR;
    return only(s->ops->stats(s->backend, out), 0, 0);
}

int eid_store_generation(eid_store_t *s, apr_uint32_t *gen)
{
    return s && gen && s->ops->generation && s->ops->generation(s->backend, gen);
}

/* ---- index codec ---------------------------------------------------------- */

/* Walks an index value: calls fn for each member; -1 when malformed (bad
 * version, a zero or oversized length, a length past the end, a NUL inside,
 * more than EID_STORE_INDEX_MAX members).  Number of members otherwise. */
typedef int (*member_fn)(const unsigned char *m, apr_size_t len, void *baton);

static int walk(const unsigned char *v, apr_size_t len, member_fn fn, void *baton)
{
    if (!v || len == 0)
        return 0;
    if (v[0] != INDEX_VERSION)
        return -1;
    apr_size_t at = 1;
    int n = 0;
    while (at < len) {
        if (len - at < 2)
            return -1;
        apr_size_t ml = ((apr_size_t)v[at] << 8) | v[at + 1];
        at += 2;
        if (ml == 0 || ml > EID_STORE_MEMBER_MAX || ml > len - at || memchr(v + at, 0, ml))
            return -1;
        if (++n > EID_STORE_INDEX_MAX)
            return -1;
        if (fn && fn(v + at, ml, baton) != 0)
            return -1;
        at += ml;
    }
    return n;
}

typedef struct {
    const char *m;
    apr_size_t len;
    int found;
} find_t;

static int find_fn(const unsigned char *m, apr_size_t len, void *baton)
{
    find_t *f = baton;
    if (len == f->len && memcmp(m, f->m, len) == 0)
        f->found = 1;
    return 0;
}

int eid_store_index_update(apr_pool_t *p, const unsigned char *old, apr_size_t olen,
                           const char *member, apr_size_t mlen, unsigned char **out,
                           apr_size_t *outlen, const char **evicted, apr_size_t *evlen)
{
    if (!out || !outlen || !evicted || !evlen)
        return -1;
    *out = NULL;
    *outlen = 0;
    *evicted = NULL;
    *evlen = 0;
    if (!p || !member_ok(member, mlen))
        return -1;
    find_t f = {member, mlen, 0};
    int n = walk(old, olen, find_fn, &f);
    if (n < 0)
        return -1;
    if (f.found)
        return 1;
    const unsigned char *keep = old ? old + 1 : NULL; /* members after the version byte */
    apr_size_t keeplen = olen ? olen - 1 : 0;
    if (n >= EID_STORE_INDEX_MAX) {
        /* Why drop and delete the oldest rather than refuse the new member:
         * a member left out of the index is a session that a back-channel
         * logout cannot find; ending the oldest session is the safe side. */
        apr_size_t ml = ((apr_size_t)keep[0] << 8) | keep[1];
        *evicted = apr_pstrmemdup(p, (const char *)keep + 2, ml);
        *evlen = ml;
        keep += 2 + ml;
        keeplen -= 2 + ml;
    }
    apr_size_t total = 1 + keeplen + 2 + mlen;
    unsigned char *v = apr_palloc(p, total);
    v[0] = INDEX_VERSION;
    if (keeplen)
        memcpy(v + 1, keep, keeplen);
    v[1 + keeplen] = (unsigned char)(mlen >> 8);
    v[2 + keeplen] = (unsigned char)(mlen & 0xff);
    memcpy(v + 3 + keeplen, member, mlen);
    *out = v;
    *outlen = total;
    return 0;
}

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *arr;
} collect_t;

static int collect_fn(const unsigned char *m, apr_size_t len, void *baton)
{
    collect_t *c = baton;
    APR_ARRAY_PUSH(c->arr, const char *) = apr_pstrmemdup(c->p, (const char *)m, len);
    return 0;
}

int eid_store_index_decode(apr_pool_t *p, const unsigned char *v, apr_size_t len,
                           apr_array_header_t **members)
{
    if (!p || !members)
        return -1;
    *members = apr_array_make(p, 4, sizeof(const char *));
    collect_t c = {p, *members};
    int n = walk(v, len, collect_fn, &c);
    if (n < 0) {
        (*members)->nelts = 0;
        return -1;
    }
    return 0;
}
