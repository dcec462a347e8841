/*
 * eid_store_socache.h - the "shm" session store: Apache's socache (shmcb)
 * behind the eid_store interface, for a single server (all its processes
 * and threads share it).  httpd + APR only; see docs/architecture.md,
 * "Session store", for the memory layout, eviction and sizing.
 *
 * Life cycle (the glue calls these from its hooks):
 *   pre_config   eid_store_socache_pre_config(pconf)   registers the mutex
 *                type "eid-store" so that `Mutex eid-store ...` is accepted
 *   directive    eid_store_socache_define(pconf, "shm:4194304", &sc)
 *   post_config  eid_store_socache_post_config(sc, pconf, ptemp, s)
 *   child_init   eid_store_socache_child_init(sc, pchild, s)
 *   requests     eid_store_socache_store(sc) -> eid_store_t (any thread)
 *
 * The shared memory segment and its global mutex are kept across graceful
 * restarts (httpd's retained data), so a reload does not log everyone out;
 * a changed size (or a changed `Mutex eid-store` setting) takes a new
 * segment, and sessions in the old one are lost.
 */
#ifndef EID_STORE_SOCACHE_H
#define EID_STORE_SOCACHE_H

#include "httpd.h"
#include "http_config.h"

#include "eid/eid_store.h"

/* The mutex type (for `Mutex eid-store ...`). */
#define EID_STORE_SOCACHE_MUTEX "eid-store"
/* shm size when `EidSessionStore shm` names none; see "Session store" in
 * docs/architecture.md for the arithmetic. */
#define EID_STORE_SOCACHE_DEFAULT_BYTES 16777216
/* Below 2 MiB, shmcb's sub-caches (about sqrt(900 * bytes) each with our
 * hints) could not hold the largest value (EID_STORE_VALUE_MAX) or a full
 * index; shmcb itself refuses 64 MiB and more. */
#define EID_STORE_SOCACHE_MIN_BYTES 2097152
#define EID_STORE_SOCACHE_MAX_BYTES (64 * 1024 * 1024 - 1)

typedef struct eid_store_socache eid_store_socache_t;

/* pre_config: register the mutex type.  Call from every module instance's
 * pre_config (each generation).  APR_SUCCESS or the registration's error. */
apr_status_t eid_store_socache_pre_config(apr_pool_t *pconf);

/*
 * Parse the argument of `EidSessionStore`: "shm" or "shm:<bytes>" (decimal,
 * EID_STORE_SOCACHE_MIN_BYTES .. EID_STORE_SOCACHE_MAX_BYTES).  Checks that
 * mod_socache_shmcb is loaded.  NULL and *out set (allocated from pconf), or
 * an error string for the config setter to return (httpd adds file:line).
 * Nothing is created yet: apachectl -t allocates no shared memory.
 */
const char *eid_store_socache_define(apr_pool_t *pconf, const char *args,
                                     eid_store_socache_t **out);

/* The size asked for (bytes). */
apr_size_t eid_store_socache_bytes(const eid_store_socache_t *sc);

/*
 * post_config (parent, one thread): create or re-attach the shmcb segment
 * and the global mutex (both retained across graceful restarts; see above).
 * Logs what failed (EID062xx) on `s`; APR_SUCCESS or an error status that
 * post_config should turn into a failed start (HTTP_INTERNAL_SERVER_ERROR).
 */
apr_status_t eid_store_socache_post_config(eid_store_socache_t *sc, apr_pool_t *pconf,
                                           apr_pool_t *ptemp, server_rec *s);

/*
 * child_init (each child, before its threads serve): re-open the global
 * mutex in this process and arm the store.  Until this has succeeded every
 * op answers EID_STORE_ERROR.  Logs EID06205 on failure.
 */
apr_status_t eid_store_socache_child_init(eid_store_socache_t *sc, apr_pool_t *pchild,
                                          server_rec *s);

/*
 * The store ("shm"; flags ATOMIC_ADD | SHARED).  The same handle from
 * define() on; valid for the configuration generation (pconf).  Every op
 * takes the global mutex for the whole operation, so add (retrieve, then
 * store) and the index read-modify-write are atomic across processes and
 * threads.  Never NULL for a defined sc.
 */
eid_store_t *eid_store_socache_store(eid_store_socache_t *sc);

#endif
