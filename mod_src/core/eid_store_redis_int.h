/*
 * eid_store_redis_int.h - internals shared by the redis backend's files:
 * the backend object, the connection layer (pool, breaker, sentinel) and the
 * per-process cache.  Not a public interface.
 */
#ifndef EID_STORE_REDIS_INT_H
#define EID_STORE_REDIS_INT_H

#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "eid/eid_store_redis.h"

/* kinds of failure, each with its tag, logged once per outage */
enum {
    RT_CONNECT, RT_AUTH, RT_SELECT, RT_IO, RT_REPLY, RT_PWFILE, RT_BREAKER, RT_READONLY,
    RT_SENTINEL, RT_ROLE, RT_PROTO, RT_CACHE, RT__COUNT
};

typedef struct rconn {
    redisContext *c;
    struct rconn *next;
    pid_t pid;            /* the process that made it: never used by another */
    unsigned epoch;       /* master epoch (sentinel) at connect time */
    unsigned track_gen;   /* invalidation subscriber generation it tracks for (0: none) */
} rconn_t;

typedef struct rcache rcache_t;

typedef struct eid_redis {
    eid_redis_conf_t conf;     /* copy; strings owned by the create pool */
    apr_size_t plen;           /* strlen(conf.prefix) */
    /* mu guards: idle, nidle, the breaker fields, master_*, tag_seen */
    apr_thread_mutex_t *mu;
    rconn_t *idle;
    int nidle;
    int fails;                 /* consecutive transport failures */
    int open;                  /* breaker open (failing fast) */
    int probing;               /* a probe is in flight */
    apr_time_t open_until;
    int outage;                /* a transport failure was seen, no success since */
    char master_host[256];     /* sentinel: last discovered master ("" = look up) */
    int master_port;
    unsigned master_epoch;     /* bumped at every discovery */
    apr_time_t tag_seen[RT__COUNT];
    /* counters (atomics: read without mu) */
    atomic_ullong connects, commands, fast_fails, errors, discoveries, index_evicted;
    rcache_t *cache;           /* NULL when cache_entries == 0 */
} eid_redis_t;

/* logged at most once per outage of that kind (not seen for 10 s = over) */
void eid_redis_note(eid_redis_t *r, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * One command (argv, binary-safe) on a pooled connection, through the
 * breaker; `retry`: the op is idempotent, so a pooled connection found dead
 * (peer closed it: Redis restarted) is replaced and the command sent again
 * once.  Returns the reply (caller frees with freeReplyObject) or NULL on any
 * failure (already counted and noted).  A -ERR reply is returned as a reply
 * (the connection was fine): the caller decides and notes it.  `npipe` > 1:
 * that many commands are sent pipelined from argv/argl rows (argcs[i] each)
 * and an array-less reply vector is returned in replies[]; returns 0 / -1.
 */
redisReply *eid_redis_cmd(eid_redis_t *r, int argc, const char **argv, const size_t *argl,
                          int retry);
int eid_redis_pipe(eid_redis_t *r, int n, const int *argcs, const char *const *const *argvs,
                   const size_t *const *argls, redisReply **replies, int retry);

/* open a connection to the master with AUTH/SELECT done (subscriber use),
 * outside the pool and the breaker; NULL on failure (noted) */
redisContext *eid_redis_connect_raw(eid_redis_t *r, unsigned *epoch);

/* drop every idle connection (child init, or all found dead) */
void eid_redis_drain(eid_redis_t *r);

/* the cache (eid_store_redis_cache.c); every function tolerates c == NULL */
rcache_t *eid_rcache_create(apr_pool_t *p, eid_redis_t *r);
/* 1 and a copy in p when a live cached value exists */
int eid_rcache_get(rcache_t *c, apr_pool_t *p, const char *k, apr_size_t kl, unsigned char **v,
                   apr_size_t *vl);
/* the token to pass to put: taken before the GET is sent */
unsigned long eid_rcache_ticket(rcache_t *c, const char *k, apr_size_t kl);
void eid_rcache_put(rcache_t *c, unsigned long ticket, const char *k, apr_size_t kl,
                    const unsigned char *v, apr_size_t vl, apr_interval_time_t ttl);
void eid_rcache_drop(rcache_t *c, const char *k, apr_size_t kl);
/* 1 when a touch to now+ttl may be skipped (the key is cached and its known
 * expiry is within touch_interval of the wanted one); else 0 */
int eid_rcache_touch_skip(rcache_t *c, const char *k, apr_size_t kl, apr_interval_time_t ttl);
void eid_rcache_touched(rcache_t *c, const char *k, apr_size_t kl, apr_interval_time_t ttl);
apr_status_t eid_rcache_start(rcache_t *c, apr_pool_t *pchild);
/* the store's deletion generation (eid_store.h): 1 and *gen while the
 * invalidation channel is up, else 0 (also without a cache) */
int eid_rcache_generation(rcache_t *c, apr_uint32_t *gen);
/* this process deleted or took something (or may have): move it on */
void eid_rcache_deleted(rcache_t *c);
void eid_rcache_counts(rcache_t *c, apr_uint64_t *hits, apr_uint64_t *inval, int *live);

#endif
