/*
 * eid_store_redis.h - the "redis" backend of eid_store (hiredis 0.14, no TLS).
 *
 * One backend object per configured store, shared by every thread of a
 * process.  It keeps a small locked free-list of connections: a thread takes
 * a connection for one op (so no two threads ever use one hiredis context)
 * and gives it back; a connection that saw any error is freed, never reused.
 * A circuit breaker fails fast after `breaker_failures` consecutive
 * transport failures for `breaker_backoff`, then lets one probe through.
 * Every key is prefixed with the site's `prefix`.  With sentinels, the
 * master is found through `SENTINEL get-master-addr-by-name` and checked with
 * `ROLE`; a transport failure or a -READONLY reply makes the next connection
 * look it up again.
 *
 * Errors are EID_STORE_ERROR (callers answer 503); each kind is logged with
 * its tag once per outage (an outage ends when the kind has not been seen for
 * 10 s), not once per request.  docs/redis.md is the operator's guide.
 */
#ifndef EID_STORE_REDIS_H
#define EID_STORE_REDIS_H

#include <apr_pools.h>
#include <apr_time.h>

#include "eid/eid_store.h"

typedef enum { EID_REDIS_TCP = 1, EID_REDIS_UNIX, EID_REDIS_SENTINEL } eid_redis_kind_e;

#define EID_REDIS_MAX_SENTINELS 8

typedef struct eid_redis_conf {
    eid_redis_kind_e kind;
    const char *host;             /* TCP */
    int port;
    const char *path;             /* Unix socket */
    int nsentinels;               /* sentinel:// */
    const char *sentinel_host[EID_REDIS_MAX_SENTINELS];
    int sentinel_port[EID_REDIS_MAX_SENTINELS];
    const char *master_name;
    const char *user;             /* ACL user (NULL: AUTH with the password only) */
    const char *password_file;    /* NULL: no AUTH */
    int db;                       /* SELECT (0: none sent) */
    apr_interval_time_t connect_timeout, command_timeout; /* default 1 s each */
    const char *prefix;           /* default "eid:" */
    int breaker_failures;         /* default 3 */
    apr_interval_time_t breaker_backoff; /* default 250 ms */
    int pool_idle_max;            /* idle connections kept, default 64 */
    int cache_entries;            /* per-process value cache, 0 = off (default 0) */
    apr_interval_time_t cache_max_age;  /* default 60 s */
    apr_interval_time_t touch_interval; /* cached keys: touch skipped when the
                                           key's expiry is within this of the
                                           wanted one; default 10 s */
} eid_redis_conf_t;

/*
 * Parse a store location and options (config time, any thread, no I/O but a
 * check that password_file is a readable regular file).
 *   url:  redis://[user@]host[:port][/db]   (port 6379, db 0 by default)
 *         unix:/path/to/socket[?db=N]
 *         sentinel://host:port[,host:port...]/mastername[/db]
 *   opts: words key=value: password_file=, user= (overrides the URL's),
 *         timeout=<ms> (connect and command), connect_timeout=<ms>,
 *         prefix=<text, no spaces>, breaker=<failures>/<ms>, pool=<n>,
 *         cache=<entries>, cache_max_age=<s>, touch_interval=<s>, db=<n>.
 * Returns NULL and *out (from p), or an error text naming the problem (the
 * password itself is never read here, never echoed).
 */
const char *eid_redis_conf_parse(apr_pool_t *p, const char *url, int nopts,
                                 const char *const *opts, eid_redis_conf_t **out);

/*
 * The store over conf (copied).  No connection is made here: the first op
 * of each process connects (so this may run in httpd's parent before the
 * fork).  The backend's memory and mutex come from p and are released by a
 * cleanup of p (idle connections closed).  NULL when the mutex cannot be
 * made.
 */
eid_store_t *eid_store_redis_create(apr_pool_t *p, const eid_redis_conf_t *conf);

/*
 * In a new child process: drop connections inherited from the parent (never
 * used by two processes) and, when the cache is on, start the invalidation
 * subscriber thread, stopped by a cleanup of pchild.  Call once per process
 * before the first op there.  APR_SUCCESS or the thread error.
 */
apr_status_t eid_store_redis_child_init(eid_store_t *s, apr_pool_t *pchild);

/* Is s a redis store (1) or another backend (0)? */
int eid_store_is_redis(const eid_store_t *s);

/* Tests and status: counters of the redis backend. */
typedef struct eid_redis_stats {
    apr_uint64_t connects;        /* connections made (AUTH/SELECT done) */
    apr_uint64_t commands;        /* commands sent */
    apr_uint64_t fast_fails;      /* ops refused by the open breaker */
    apr_uint64_t errors;          /* ops answered EID_STORE_ERROR */
    apr_uint64_t cache_hits;      /* gets answered from the process cache */
    apr_uint64_t invalidations;   /* keys evicted by an invalidation message */
    apr_uint64_t discoveries;     /* sentinel look-ups */
    int idle;                     /* connections in the free-list now */
    int breaker_open;             /* 1 while failing fast */
    int cache_live;               /* 1 while the invalidation channel is up */
} eid_redis_stats_t;
int eid_store_redis_stats(eid_store_t *s, eid_redis_stats_t *out); /* 0, or -1 not redis */

#endif
