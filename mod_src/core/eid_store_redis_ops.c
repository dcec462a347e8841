/*
 * eid_store_redis_ops.c - the redis backend's eid_store ops: key prefixing,
 * the command mapping, the index scripts, create / child_init / stats.
 *
 *   get        GET (with the cache on: GET + PTTL, one round trip)
 *   set        SET k v PX ms
 *   add        SET k v NX PX ms                 (atomic in Redis)
 *   touch      PEXPIRE k ms
 *   del        DEL k
 *   index_add  EVAL: ZADD (score = last + 1: insertion order), at 64
 *              members ZPOPMIN + SET x:<member> + DEL of that member's key,
 *              PEXPIRE when it lengthens the index's life
 *   generation the process cache's deletion generation (no command; 0
 *              while the invalidation channel is not up, or without cache=)
 *   index_take EVAL: ZRANGE 0 -1 + DEL          (one atomic script)
 * Every command is argv (binary-safe); nothing is formatted into a command
 * string.
 */
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

#include "eid/eid_result.h"
#include "eid_store_redis_int.h"

/* KEYS[1] index; ARGV: member, ttl ms, max members, key prefix.  An evicted
 * member's key is ended like eid_session_end() ends a session: the marker
 * `x:<key>` for the rest of its life first (a concurrent re-write of it sees
 * the marker and deletes again; every process's deletion generation moves
 * when the marker's invalidation arrives), then the delete. */
static const char INDEX_ADD_LUA[] =
    "local k = KEYS[1]\n"
    "local ev = 0\n"
    "if not redis.call('ZSCORE', k, ARGV[1]) then\n"
    "  local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')\n"
    "  local s = 1\n"
    "  if last[2] then s = tonumber(last[2]) + 1 end\n"
    "  redis.call('ZADD', k, s, ARGV[1])\n"
    "  while redis.call('ZCARD', k) > tonumber(ARGV[3]) do\n"
    "    local o = redis.call('ZPOPMIN', k)\n"
    "    local t = redis.call('PTTL', ARGV[4] .. o[1])\n"
    "    if t > 0 then redis.call('SET', ARGV[4] .. 'x:' .. o[1], '1', 'PX', t) end\n"
    "    redis.call('DEL', ARGV[4] .. o[1])\n"
    "    ev = ev + 1\n"
    "  end\n"
    "end\n"
    "local ttl = tonumber(ARGV[2])\n"
    "if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end\n"
    "return ev\n";

/* KEYS[1] index: every member, oldest first, and the index is gone */
static const char INDEX_TAKE_LUA[] =
    "local m = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "if #m == 0 then return false end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return m\n";

/* prefix + key into buf (>= plen + EID_STORE_KEY_MAX) */
typedef struct {
    char b[64 + EID_STORE_KEY_MAX + 1];
    size_t n;
} pkey_t;

static void pkey(const eid_redis_t *r, pkey_t *k, const char *key, apr_size_t klen)
{
    memcpy(k->b, r->conf.prefix, r->plen);
    memcpy(k->b + r->plen, key, klen);
    k->n = r->plen + klen;
}

static long long ms_of(apr_interval_time_t ttl)
{
    long long ms = (ttl + 999) / 1000;
    return ms < 1 ? 1 : ms;
}

static eid_store_rc_e failed(eid_redis_t *r)
{
    atomic_fetch_add(&r->errors, 1);
    return EID_STORE_ERROR;
}

/* a reply that is an error (the server answered: OOM, NOPERM, WRONGTYPE...) or
 * of a type the op cannot take */
static eid_store_rc_e bad_reply(eid_redis_t *r, redisReply *rep, const char *op)
{
    if (rep->type == REDIS_REPLY_ERROR)
        eid_redis_note(r, RT_REPLY, "%s: %.200s", op, rep->str);
    else
        eid_redis_note(r, RT_PROTO, "%s: unexpected reply type %d", op, rep->type);
    freeReplyObject(rep);
    return failed(r);
}

static eid_store_rc_e r_get(void *b, apr_pool_t *p, const char *key, apr_size_t klen,
                            unsigned char **val, apr_size_t *vlen)
{
    eid_redis_t *r = b;
    if (eid_rcache_get(r->cache, p, key, klen, val, vlen))
        return EID_STORE_OK;
    pkey_t k;
    pkey(r, &k, key, klen);
    if (!r->cache) {
        const char *argv[] = {"GET", k.b};
        size_t argl[] = {3, k.n};
        redisReply *rep = eid_redis_cmd(r, 2, argv, argl, 1);
        if (!rep)
            return failed(r);
        if (rep->type == REDIS_REPLY_NIL) {
            freeReplyObject(rep);
            return EID_STORE_NOTFOUND;
        }
        if (rep->type != REDIS_REPLY_STRING)
            return bad_reply(r, rep, "GET");
        *val = apr_palloc(p, rep->len + 1);
        memcpy(*val, rep->str, rep->len);
        (*val)[rep->len] = 0;
        *vlen = rep->len;
        freeReplyObject(rep);
        return EID_STORE_OK;
    }
    /* the ticket first: an invalidation of this key after it voids the put */
    unsigned long ticket = eid_rcache_ticket(r->cache, key, klen);
    const char *a1[] = {"GET", k.b}, *a2[] = {"PTTL", k.b};
    size_t l1[] = {3, k.n}, l2[] = {4, k.n};
    const int argcs[] = {2, 2};
    const char *const *argvs[] = {a1, a2};
    const size_t *argls[] = {l1, l2};
    redisReply *rep[2];
    if (eid_redis_pipe(r, 2, argcs, argvs, argls, rep, 1) != 0)
        return failed(r);
    eid_store_rc_e rc = EID_STORE_OK;
    if (rep[0]->type == REDIS_REPLY_NIL)
        rc = EID_STORE_NOTFOUND;
    else if (rep[0]->type != REDIS_REPLY_STRING || rep[1]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(rep[1]);
        return bad_reply(r, rep[0], "GET");
    } else {
        *val = apr_palloc(p, rep[0]->len + 1);
        memcpy(*val, rep[0]->str, rep[0]->len);
        (*val)[rep[0]->len] = 0;
        *vlen = rep[0]->len;
        if (rep[1]->integer > 0)
            eid_rcache_put(r->cache, ticket, key, klen, *val, *vlen,
                           (apr_interval_time_t)rep[1]->integer * 1000);
    }
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    return rc;
}

static eid_store_rc_e put(eid_redis_t *r, const char *key, apr_size_t klen,
                          const unsigned char *val, apr_size_t vlen, apr_interval_time_t ttl,
                          int nx)
{
    pkey_t k;
    pkey(r, &k, key, klen);
    char ms[24];
    int n = snprintf(ms, sizeof(ms), "%lld", ms_of(ttl));
    const char *argv[] = {"SET", k.b, (const char *)val, "PX", ms, "NX"};
    size_t argl[] = {3, k.n, vlen, 2, (size_t)n, 2};
    /* drop the local copy first: a reader of this process must not keep
     * serving the old value while the write is in flight */
    eid_rcache_drop(r->cache, key, klen);
    /* add is not retried: a lost reply after a stale connection could turn
     * our own win into EXISTS (fail closed, but a spurious refusal) */
    redisReply *rep = eid_redis_cmd(r, nx ? 6 : 5, argv, argl, !nx);
    if (!rep)
        return failed(r);
    if (nx && rep->type == REDIS_REPLY_NIL) {
        freeReplyObject(rep);
        return EID_STORE_EXISTS;
    }
    if (rep->type != REDIS_REPLY_STATUS)
        return bad_reply(r, rep, nx ? "SET NX" : "SET");
    freeReplyObject(rep);
    return EID_STORE_OK;
}

static eid_store_rc_e r_set(void *b, const char *key, apr_size_t klen, const unsigned char *val,
                            apr_size_t vlen, apr_interval_time_t ttl)
{
    return put(b, key, klen, val, vlen, ttl, 0);
}

static eid_store_rc_e r_add(void *b, const char *key, apr_size_t klen, const unsigned char *val,
                            apr_size_t vlen, apr_interval_time_t ttl)
{
    return put(b, key, klen, val, vlen, ttl, 1);
}

/* an integer-answering command on one key: 1 -> OK, 0 -> NOTFOUND */
static eid_store_rc_e int_cmd(eid_redis_t *r, const char *cmd, const char *key,
                              apr_size_t klen, const char *arg)
{
    pkey_t k;
    pkey(r, &k, key, klen);
    const char *argv[] = {cmd, k.b, arg};
    size_t argl[] = {strlen(cmd), k.n, arg ? strlen(arg) : 0};
    redisReply *rep = eid_redis_cmd(r, arg ? 3 : 2, argv, argl, 1);
    if (!rep)
        return failed(r);
    if (rep->type != REDIS_REPLY_INTEGER)
        return bad_reply(r, rep, cmd);
    eid_store_rc_e rc = rep->integer > 0 ? EID_STORE_OK : EID_STORE_NOTFOUND;
    freeReplyObject(rep);
    return rc;
}

static eid_store_rc_e r_touch(void *b, const char *key, apr_size_t klen, apr_interval_time_t ttl)
{
    eid_redis_t *r = b;
    /* the cache knows the key exists (an invalidation would have dropped it)
     * and that its expiry is close enough: spare the round trip */
    if (eid_rcache_touch_skip(r->cache, key, klen, ttl))
        return EID_STORE_OK;
    char ms[24];
    snprintf(ms, sizeof(ms), "%lld", ms_of(ttl));
    eid_store_rc_e rc = int_cmd(r, "PEXPIRE", key, klen, ms);
    if (rc == EID_STORE_OK)
        eid_rcache_touched(r->cache, key, klen, ttl);
    return rc;
}

static eid_store_rc_e r_del(void *b, const char *key, apr_size_t klen)
{
    eid_redis_t *r = b;
    eid_rcache_drop(r->cache, key, klen);
    eid_store_rc_e rc = int_cmd(r, "DEL", key, klen, NULL);
    /* after the DEL ran (or may have: also on an error): a reader of this
     * process that reads the generation from now on reads after it; one that
     * read it before sees it move.  Not left to the invalidation message. */
    eid_rcache_deleted(r->cache);
    return rc;
}

static eid_store_rc_e r_index_add(void *b, const char *idx, apr_size_t ilen, const char *member,
                                  apr_size_t mlen, apr_interval_time_t ttl)
{
    eid_redis_t *r = b;
    pkey_t k;
    pkey(r, &k, idx, ilen);
    char ms[24], max[8];
    int n1 = snprintf(ms, sizeof(ms), "%lld", ms_of(ttl));
    int n2 = snprintf(max, sizeof(max), "%d", EID_STORE_INDEX_MAX);
    const char *argv[] = {"EVAL", INDEX_ADD_LUA, "1", k.b, member, ms, max, r->conf.prefix};
    size_t argl[] = {4, sizeof(INDEX_ADD_LUA) - 1, 1, k.n, mlen, (size_t)n1, (size_t)n2,
                     r->plen};
    redisReply *rep = eid_redis_cmd(r, 8, argv, argl, 1);
    if (!rep) {
        eid_rcache_deleted(r->cache); /* the script may have run and evicted */
        return failed(r);
    }
    if (rep->type != REDIS_REPLY_INTEGER)
        return bad_reply(r, rep, "index add");
    if (rep->integer > 0) {
        atomic_fetch_add(&r->index_evicted, (unsigned long long)rep->integer);
        eid_rcache_deleted(r->cache);
    }
    freeReplyObject(rep);
    return EID_STORE_OK;
}

static eid_store_rc_e r_index_take(void *b, apr_pool_t *p, const char *idx, apr_size_t ilen,
                                   apr_array_header_t **members)
{
    eid_redis_t *r = b;
    pkey_t k;
    pkey(r, &k, idx, ilen);
    const char *argv[] = {"EVAL", INDEX_TAKE_LUA, "1", k.b};
    size_t argl[] = {4, sizeof(INDEX_TAKE_LUA) - 1, 1, k.n};
    /* not retried: a take whose reply was lost must not be repeated (the
     * second would find nothing and the sessions would stay) */
    redisReply *rep = eid_redis_cmd(r, 4, argv, argl, 0);
    /* also when the index was gone or the reply lost: as the shm store, a
     * back-channel logout makes every kept session be looked up again */
    eid_rcache_deleted(r->cache);
    if (!rep)
        return failed(r);
    if (rep->type == REDIS_REPLY_NIL) {
        freeReplyObject(rep);
        return EID_STORE_NOTFOUND;
    }
    if (rep->type != REDIS_REPLY_ARRAY)
        return bad_reply(r, rep, "index take");
    *members = apr_array_make(p, (int)rep->elements, sizeof(const char *));
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len == 0 || memchr(e->str, 0, e->len))
            return bad_reply(r, rep, "index take (member)");
        APR_ARRAY_PUSH(*members, const char *) = apr_pstrmemdup(p, e->str, e->len);
    }
    freeReplyObject(rep);
    return EID_STORE_OK;
}

static eid_store_rc_e r_stats(void *b, eid_store_stats_t *out)
{
    eid_redis_t *r = b;
    out->index_evicted = atomic_load(&r->index_evicted);
    out->errors = atomic_load(&r->errors);
    return EID_STORE_OK;
}

/* the contract in eid_store.h; how the number moves: eid_store_redis_cache.c */
static int r_generation(void *b, apr_uint32_t *gen)
{
    eid_redis_t *r = b;
    return eid_rcache_generation(r->cache, gen);
}

static const eid_store_ops_t redis_ops = {
    .name = "redis",
    .get = r_get,
    .set = r_set,
    .add = r_add,
    .touch = r_touch,
    .del = r_del,
    .index_add = r_index_add,
    .index_take = r_index_take,
    .flags = EID_STORE_F_ATOMIC_ADD | EID_STORE_F_SHARED | EID_STORE_F_MULTI_SERVER,
    .stats = r_stats,
    .generation = r_generation,
};

static apr_status_t redis_cleanup(void *data)
{
    eid_redis_drain(data);
    return APR_SUCCESS;
}

eid_store_t *eid_store_redis_create(apr_pool_t *p, const eid_redis_conf_t *conf)
{
    if (!conf)
        return NULL;
    eid_redis_t *r = apr_pcalloc(p, sizeof(*r));
    r->conf = *conf;
    r->plen = strlen(conf->prefix ? conf->prefix : "");
    if (!conf->prefix)
        r->conf.prefix = "";
    if (r->plen > 64 || apr_thread_mutex_create(&r->mu, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS)
        return NULL;
    if (r->conf.breaker_failures < 1)
        r->conf.breaker_failures = 1;
    if (conf->cache_entries > 0 && !(r->cache = eid_rcache_create(p, r)))
        return NULL;
    apr_pool_cleanup_register(p, r, redis_cleanup, apr_pool_cleanup_null);
    return eid_store_create(p, &redis_ops, r);
}

apr_status_t eid_store_redis_child_init(eid_store_t *s, apr_pool_t *pchild)
{
    if (!eid_store_is_redis(s))
        return APR_EINVAL;
    eid_redis_t *r = eid_store_backend(s);
    eid_redis_drain(r);
    return r->cache ? eid_rcache_start(r->cache, pchild) : APR_SUCCESS;
}

int eid_store_is_redis(const eid_store_t *s)
{
    return s && eid_store_ops(s) == &redis_ops;
}

int eid_store_redis_stats(eid_store_t *s, eid_redis_stats_t *out)
{
    if (!eid_store_is_redis(s))
        return -1;
    eid_redis_t *r = eid_store_backend(s);
    memset(out, 0, sizeof(*out));
    out->connects = atomic_load(&r->connects);
    out->commands = atomic_load(&r->commands);
    out->fast_fails = atomic_load(&r->fast_fails);
    out->errors = atomic_load(&r->errors);
    out->discoveries = atomic_load(&r->discoveries);
    apr_thread_mutex_lock(r->mu);
    out->idle = r->nidle;
    out->breaker_open = r->open;
    apr_thread_mutex_unlock(r->mu);
    eid_rcache_counts(r->cache, &out->cache_hits, &out->invalidations, &out->cache_live);
    return 0;
}
