/*
 * eid_store.h - the session and replay-marker store: one small interface,
 * several backends.
 *
 * A store maps binary keys to binary values, each with a time to live, and
 * keeps bounded indexes (a key holding a list of member keys) so that every
 * session of an OP's `sid` or `sub` can be ended by a back-channel logout.
 *
 * Backends: "memory" (eid_store_mem_create(): one process, unit tests and
 * the reference semantics), "shm" (mod_src/apache/eid_store_socache.c:
 * Apache's socache/shmcb under a global mutex, the single-server default),
 * "redis" (mod_src/core/eid_store_redis*.c, docs/redis.md).  Every op of every backend is thread-safe.
 *
 * Semantics every backend keeps (the unit tests of the memory backend pin
 * them; a Redis backend maps them as noted):
 *   get        value or NOTFOUND                          GET
 *   set        create or replace, expiry = now + ttl      SET k v PX ttl
 *   add        create only when absent (or expired), else EXISTS; atomic
 *              with respect to every other op of every process sharing the
 *              store: of N concurrent adds of one key exactly one gets OK
 *                                                         SET k v NX PX ttl
 *   touch      expiry = now + ttl of a present key, else NOTFOUND
 *                                                         PEXPIRE
 *   del        OK when a key was removed, NOTFOUND when there was none
 *                                                         DEL
 *   index_add  add `member` to the index `idx` (no duplicates; order of
 *              first insertion kept); the index lives until
 *              max(its expiry, now + ttl).  At EID_STORE_INDEX_MAX members,
 *              the OLDEST member is dropped from the index AND deleted as a
 *              key: a session that a back-channel logout could no longer
 *              reach must not outlive its index entry.
 *                                                         Lua or MULTI over
 *                                                         ZADD/ZREMRANGEBYRANK
 *                                                         (or SADD/SCARD/SPOP)
 *                                                         + PEXPIRE GT
 *   index_take all members, and the index is deleted in the same atomic
 *              step (two concurrent takes never both see a member)
 *                                                         SMEMBERS + DEL in
 *                                                         MULTI (or Lua)
 * The value under an index key is the backend's own (the memory backend
 * keeps the codec below, shm prefixes an expiry): touch it only through
 * index_add / index_take (del ends an index too).
 * Keys are 1..EID_STORE_KEY_MAX bytes, values 0..EID_STORE_VALUE_MAX bytes,
 * index members 1..EID_STORE_MEMBER_MAX bytes with no NUL byte (they come
 * back as C strings).  A TTL is always > 0.  The wrappers below refuse
 * anything else with EID_STORE_ERROR before a backend sees it (NULL store,
 * NULL key, zero length, TTL <= 0, oversized): never a crash.
 *
 * A store may be wrapped by another (a per-process cache in front of Redis
 * is a store whose ops call the backend's and drop local copies on an
 * invalidation message): nothing here assumes the backend is the last layer.
 *
 * Errors: EID_STORE_ERROR means "the store could not answer"; callers fail
 * closed (503 + Retry-After), never treat it as NOTFOUND.
 */
#ifndef EID_STORE_H
#define EID_STORE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef enum {
    EID_STORE_OK = 0,
    EID_STORE_NOTFOUND,
    EID_STORE_EXISTS,
    EID_STORE_ERROR
} eid_store_rc_e;

#define EID_STORE_KEY_MAX 512
#define EID_STORE_VALUE_MAX 32768
#define EID_STORE_MEMBER_MAX 512
#define EID_STORE_INDEX_MAX 64

/* ops->flags */
/* add() is atomic across every process and thread that shares the store */
#define EID_STORE_F_ATOMIC_ADD 0x1u
/* the data is shared between the processes of a server (shm, redis) */
#define EID_STORE_F_SHARED 0x2u
/* the data is shared between servers (redis) */
#define EID_STORE_F_MULTI_SERVER 0x4u
/* the store may drop an index on its own (shm: shmcb evicts the oldest
 * entries of a full ring; memory: the oldest key when full), so a
 * back-channel logout may miss sessions: the session glue also checks the
 * logout markers (`k:...`) whenever it fetches a session.  Redis keeps its
 * indexes (scripts; noeviction is required): no flag, no extra reads. */
#define EID_STORE_F_LOSSY_INDEX 0x8u

typedef struct eid_store eid_store_t;

/* What a backend can tell about itself (fields it does not know stay 0). */
typedef struct eid_store_stats {
    apr_uint64_t entries;       /* keys held now (expired ones not yet dropped included) */
    apr_uint64_t max_entries;   /* bound on entries, 0 = unknown */
    apr_uint64_t evicted;       /* keys dropped early because the store was full */
    apr_uint64_t index_evicted; /* members dropped (and deleted) because an index was full */
    apr_uint64_t errors;        /* ops answered EID_STORE_ERROR by the backend */
} eid_store_stats_t;

typedef struct eid_store_ops { /* a backend; every op thread-safe */
    const char *name;          /* "shm", "memory", later "redis" */
    /* *val is allocated from p, followed by a NUL byte that *vlen does not count */
    eid_store_rc_e (*get)(void *b, apr_pool_t *p, const char *key, apr_size_t klen,
                          unsigned char **val, apr_size_t *vlen);
    eid_store_rc_e (*set)(void *b, const char *key, apr_size_t klen, const unsigned char *val,
                          apr_size_t vlen, apr_interval_time_t ttl);
    eid_store_rc_e (*add)(void *b, const char *key, apr_size_t klen, const unsigned char *val,
                          apr_size_t vlen, apr_interval_time_t ttl); /* only if absent: EXISTS */
    eid_store_rc_e (*touch)(void *b, const char *key, apr_size_t klen, apr_interval_time_t ttl);
    eid_store_rc_e (*del)(void *b, const char *key, apr_size_t klen);
    eid_store_rc_e (*index_add)(void *b, const char *idx, apr_size_t ilen, const char *member,
                                apr_size_t mlen, apr_interval_time_t ttl);
    /* all members, then the index is deleted (back-channel logout) */
    eid_store_rc_e (*index_take)(void *b, apr_pool_t *p, const char *idx, apr_size_t ilen,
                                 apr_array_header_t **members /* const char * */);
    /* --- additions to the shared design (issue 10) --- */
    unsigned flags;            /* EID_STORE_F_* */
    /* optional (NULL: eid_store_stats() answers EID_STORE_ERROR) */
    eid_store_rc_e (*stats)(void *b, eid_store_stats_t *out);
    /* optional: the deletion generation.  Returns 1 and *gen, or 0: no
     * number now (nothing may be kept).  A caller may keep a value it read
     * while the number it read BEFORE the get stays the same; it must check
     * the value's own expiry itself.  NULL: never (read the store every time).
     * What moves it, per backend:
     *  shm    every del that removes a key, every index_take (also of an
     *         absent index), every member an index_add evicts - by any process
     *         of the server, at once (an atomic counter in shared memory,
     *         bumped before the removal under the store's mutex).  Not
     *         counted: what shmcb drops to make room or at its expiry (the
     *         caller checks a session's timeouts; a dropped index is why
     *         EID_STORE_F_LOSSY_INDEX exists).
     *  redis  per process, only with `cache=` and while its invalidation
     *         channel is up (else 0).  It moves at every del, index_take and
     *         evicting index_add of this process (after the command), when the
     *         channel goes up or down and at a FLUSHDB, and when an
     *         invalidation arrives for a marker `x:<key>` (the glue's
     *         eid_session_end() writes it before deleting <key>; the index
     *         script writes it before deleting an evicted member), for a
     *         `k:...` back-channel logout marker, and for a key whose marker
     *         arrived within the last 10 s (or 4 x (connect + command
     *         timeout) if longer): its delete, and a late re-write by a
     *         touch that read it before the ending, and that touch's second
     *         delete.  So an ending by any
     *         process of any server reaches it within the invalidation's
     *         latency (< 100 ms on a LAN).  Not counted: a bare write or DEL of
     *         a key by someone else without a marker (BCAST does not tell a
     *         write from a delete, and counting the touches of sessions in use
     *         would void every kept value at each touch anywhere).
     *  memory none. */
    int (*generation)(void *b, apr_uint32_t *gen);
} eid_store_ops_t;

/*
 * A store over `backend` with `ops` (both must outlive the store; ops is
 * usually a static const table).  The handle is allocated from p and is
 * read-only after: any thread may use it.  NULL when ops or a required op is
 * missing.
 */
eid_store_t *eid_store_create(apr_pool_t *p, const eid_store_ops_t *ops, void *backend);

/* The backend's name ("memory", "shm", ...); "none" for NULL. */
const char *eid_store_name(const eid_store_t *s);
/* The backend's flags (EID_STORE_F_*); 0 for NULL. */
unsigned eid_store_flags(const eid_store_t *s);
/* The backend pointer given to eid_store_create() (NULL for NULL). */
void *eid_store_backend(const eid_store_t *s);
/* The ops given to eid_store_create() (NULL for NULL). */
const eid_store_ops_t *eid_store_ops(const eid_store_t *s);
/* Short text for a return code ("ok", "notfound", "exists", "error"). */
const char *eid_store_rc_str(eid_store_rc_e rc);

/*
 * The wrappers: the arguments of the op (without the backend), checked
 * first (see the header comment).  On any return other than OK, a get
 * leaves *val NULL and *vlen 0, and an index_take leaves *members an empty
 * array (NOTFOUND: no such index) - never an unset pointer.
 */
eid_store_rc_e eid_store_get(eid_store_t *s, apr_pool_t *p, const char *key, apr_size_t klen,
                             unsigned char **val, apr_size_t *vlen);
eid_store_rc_e eid_store_set(eid_store_t *s, const char *key, apr_size_t klen,
                             const unsigned char *val, apr_size_t vlen, apr_interval_time_t ttl);
eid_store_rc_e eid_store_add(eid_store_t *s, const char *key, apr_size_t klen,
                             const unsigned char *val, apr_size_t vlen, apr_interval_time_t ttl);
eid_store_rc_e eid_store_touch(eid_store_t *s, const char *key, apr_size_t klen,
                               apr_interval_time_t ttl);
eid_store_rc_e eid_store_del(eid_store_t *s, const char *key, apr_size_t klen);
eid_store_rc_e eid_store_index_add(eid_store_t *s, const char *idx, apr_size_t ilen,
                                   const char *member, apr_size_t mlen, apr_interval_time_t ttl);
eid_store_rc_e eid_store_index_take(eid_store_t *s, apr_pool_t *p, const char *idx,
                                    apr_size_t ilen, apr_array_header_t **members);
/* Counters of the backend (zeroed first); ERROR when the backend has none. */
eid_store_rc_e eid_store_stats(eid_store_t *s, eid_store_stats_t *out);
/* 1 and *gen when the backend has a deletion generation (see the op), else 0. */
int eid_store_generation(eid_store_t *s, apr_uint32_t *gen);

/*
 * The index value codec shared by the backends that keep an index as one
 * value (memory, shm): version byte 1, then per member a 2-byte big-endian
 * length and the member's bytes, oldest first.
 *
 * eid_store_index_update(): the index `old` (olen bytes; NULL/0 = none)
 * with `member` added.  Returns 1 and leaves *out NULL when the member is
 * already there (nothing to write); 0 with the new value in *out, *outlen
 * (from p), and, when the index was full, the dropped oldest member in
 * *evicted, *evlen (else *evicted NULL); -1 when `old` is malformed or
 * an argument is out of bounds.
 */
int eid_store_index_update(apr_pool_t *p, const unsigned char *old, apr_size_t olen,
                           const char *member, apr_size_t mlen, unsigned char **out,
                           apr_size_t *outlen, const char **evicted, apr_size_t *evlen);
/* Decode an index value into members (const char *, NUL-terminated copies in
 * p, oldest first).  0 or -1 when malformed (then *members is empty). */
int eid_store_index_decode(apr_pool_t *p, const unsigned char *v, apr_size_t len,
                           apr_array_header_t **members);

/*
 * The in-memory backend ("memory"): one process, for unit tests and as the
 * reference.  At most max_entries keys (indexes included; <= 0 means 10000);
 * when full, expired keys go first, then the oldest written.  Entries are
 * malloc'd and freed on replace/delete/expiry (never grows a pool); one
 * apr_thread_mutex guards everything.  Memory is released by a cleanup of p.
 * p is used here and now only (may be shared with other threads later).
 * NULL when the mutex cannot be created.
 */
eid_store_t *eid_store_mem_create(apr_pool_t *p, int max_entries);

/* Tests: the memory backend's clock (default apr_time_now); fn NULL resets.
 * Call before other threads use the store. No effect on another backend. */
typedef apr_time_t (*eid_store_clock_fn)(void *baton);
void eid_store_mem_set_clock(eid_store_t *s, eid_store_clock_fn fn, void *baton);

#endif
