/*
 * eid_store_socache.c - the "shm" store backend on Apache's socache
 * provider "shmcb" (mod_socache_shmcb), shared by every process and thread
 * of one server.
 *
 * shmcb is not safe for concurrent use (AP_SOCACHE_FLAG_NOTMPSAFE): every
 * provider call here runs under one global mutex (type "eid-store",
 * configurable with `Mutex`), and each op holds it for its whole
 * read-modify-write, which is what makes add and the index updates atomic.
 *
 * Layout in the segment: socache id = 4 bytes of a hash of the key, then
 * the key.  Why the prefix: shmcb picks the sub-cache by the FIRST BYTE of
 * the id, and every key of ours starts with a namespace letter ("s:",
 * "u:" ...): without it all entries would crowd into one sub-cache (and
 * shmcb refuses ids shorter than 4 bytes).  Values are stored as given; an
 * index value is 8 bytes of its absolute expiry (big-endian) followed by
 * the eid_store index codec, because socache cannot report an entry's
 * expiry and an index's expiry must never be shortened.
 *
 * Memory: the segment, the provider instance and the mutex live in the
 * process pool and are retained across graceful restarts (see the header);
 * a per-process scratch buffer (from pconf, copied into each child at fork)
 * receives retrieved values and is only touched under the global mutex,
 * which also serialises the threads of one process.  mod_socache_shmcb.so
 * stays mapped for the life of the process (pin_provider(): shmcb's cleanup
 * on the process pool is its code).
 */
#include "eid_store_socache.h"

#include "ap_provider.h"
#include "ap_socache.h"
#include "http_log.h"
#include "http_main.h"
#include "util_mutex.h"

#include "apr_atomic.h"
#include "apr_general.h"
#include "apr_global_mutex.h"
#include "apr_shm.h"
#include "apr_strings.h"

#include <dlfcn.h>
#include <string.h>

/* Logs go to the module this file is linked into: mod_auth_eid, or the
 * test module (built with -DEID_STORE_SOCACHE_MODULE=eid_store_test). */
#ifndef EID_STORE_SOCACHE_MODULE
#define EID_STORE_SOCACHE_MODULE auth_eid
#endif
#define EID_USE_MODULE_(m) APLOG_USE_MODULE(m)
EID_USE_MODULE_(EID_STORE_SOCACHE_MODULE);
#define EID_STR_(x) #x
#define EID_STR(x) EID_STR_(x)
/* per module, so that the test module never shares mod_auth_eid's segment,
 * mutex or lock file */
#define INSTANCE EID_STR(EID_STORE_SOCACHE_MODULE)
#define RETAINED_KEY "eid_store_socache:" INSTANCE
#define HASH_LEN 4
#define EXP_LEN 8
#define ID_MAX (HASH_LEN + EID_STORE_KEY_MAX)
/* the largest stored value: a plain value, or expiry + a full index */
#define INDEX_VALUE_MAX (1 + EID_STORE_INDEX_MAX * (2 + EID_STORE_MEMBER_MAX))
#define SCRATCH_LEN 65536
_Static_assert(EID_STORE_VALUE_MAX <= SCRATCH_LEN, "scratch too small for a value");
_Static_assert(EXP_LEN + INDEX_VALUE_MAX <= SCRATCH_LEN, "scratch too small for an index");

/* Test seam, compiled only into the test module (-DEID_STORE_SOCACHE_TEST_SEAM):
 * an add of a key starting "slow:" waits 20 ms inside the lock between its
 * read and its write, so that a lock that does not exclude (e.g. a flock
 * mutex a child did not reopen) shows as two winners. */
#ifdef EID_STORE_SOCACHE_TEST_SEAM
#define TEST_SEAM(k, n)                                                                       \
    do {                                                                                      \
        if ((n) > 5 && memcmp((k), "slow:", 5) == 0)                                          \
            apr_sleep(apr_time_from_msec(20));                                                \
    } while (0)
#else
#define TEST_SEAM(k, n) ((void)0)
#endif

/* A TTL beyond this is cut to it (no apr_time_t overflow). */
#define TTL_MAX apr_time_from_sec(10LL * 366 * 24 * 3600)

/* Retained across graceful restarts (ap_retained_data_*): data only, no
 * pointer into a module's code, since DSOs are reloaded at a restart. */
typedef struct retained {
    apr_size_t bytes;            /* the segment's size; 0: none yet */
    ap_socache_instance_t *inst; /* process pool */
    apr_global_mutex_t *mu;      /* process pool */
    const char *lockfile;        /* process pool; NULL when none */
    apr_uint32_t seed;           /* of the key hash; as long as the segment */
    apr_shm_t *gen_shm;          /* process pool: the deletion generation */
} retained_t;

struct eid_store_socache {
    apr_size_t bytes;
    eid_store_t *store;                  /* pconf */
    /* set in post_config (parent, one thread), read-only after */
    const ap_socache_provider_t *prov;   /* looked up per generation */
    ap_socache_instance_t *inst;
    server_rec *s;                       /* main server, for logs */
    apr_uint32_t seed;                   /* the segment's key-hash seed */
    apr_uint32_t *gen;                   /* in gen_shm: bumped (atomic) at every
                                            delete, index take and index eviction */
    /* per process: set in child_init before threads exist */
    apr_global_mutex_t *mu;
    int ready;
    unsigned char *scratch;              /* SCRATCH_LEN, under mu only */
    apr_uint32_t errors;                 /* apr_atomic */
    apr_uint32_t logged_at;              /* apr_atomic: second of the last log line */
    apr_uint32_t logged_errors;          /* apr_atomic: errors counted at that line */
};

/* ---- configuration ---------------------------------------------------------- */

apr_status_t eid_store_socache_pre_config(apr_pool_t *pconf)
{
    return ap_mutex_register(pconf, EID_STORE_SOCACHE_MUTEX, NULL, APR_LOCK_DEFAULT, 0);
}

static const eid_store_ops_t socache_ops;

const char *eid_store_socache_define(apr_pool_t *pconf, const char *args,
                                     eid_store_socache_t **out)
{
    apr_size_t bytes = EID_STORE_SOCACHE_DEFAULT_BYTES;
    if (!out)
        return "EidSessionStore: internal error (no output)";
    *out = NULL;
    if (!args || strncmp(args, "shm", 3) != 0 || (args[3] && args[3] != ':'))
        return "EidSessionStore: expected shm or shm:<bytes>";
    if (args[3] == ':') {
        const char *d = args + 4;
        apr_size_t n = strlen(d);
        /* digits only, at most 9 (below 1e9: no overflow, and over the max) */
        if (n == 0 || n > 9 || strspn(d, "0123456789") != n)
            return "EidSessionStore: shm:<bytes> needs a whole number of bytes";
        bytes = (apr_size_t)apr_atoi64(d);
        if (bytes < EID_STORE_SOCACHE_MIN_BYTES || bytes > EID_STORE_SOCACHE_MAX_BYTES)
            return apr_psprintf(pconf,
                                "EidSessionStore: shm size %s is out of range (%d .. %d bytes)",
                                d, EID_STORE_SOCACHE_MIN_BYTES, EID_STORE_SOCACHE_MAX_BYTES);
    }
    if (!ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb", AP_SOCACHE_PROVIDER_VERSION))
        return "EidSessionStore shm needs mod_socache_shmcb: load it (a2enmod socache_shmcb, "
               "or LoadModule socache_shmcb_module before this line)";
    eid_store_socache_t *sc = apr_pcalloc(pconf, sizeof(*sc));
    sc->bytes = bytes;
    sc->store = eid_store_create(pconf, &socache_ops, sc);
    *out = sc;
    return NULL;
}

apr_size_t eid_store_socache_bytes(const eid_store_socache_t *sc)
{
    return sc ? sc->bytes : 0;
}

eid_store_t *eid_store_socache_store(eid_store_socache_t *sc)
{
    return sc ? sc->store : NULL;
}

/* Keeps the DSO that holds the provider (mod_socache_shmcb.so) mapped for the
 * life of the process.  Why: shmcb's init registers a cleanup of its own code
 * (it destroys the segment) on the pool the instance lives in, here the
 * process pool, so that graceful restarts keep the segment.  But mod_so
 * unloads the DSO with pconf, and at exit httpd destroys pconf (a child of the
 * process pool) before it runs the process pool's own cleanups: that cleanup
 * then jumped into unmapped memory - SIGSEGV of the parent at every stop and of
 * httpd -X at its exit - or, had a restart mapped the DSO elsewhere, into
 * whatever lies there now.  RTLD_NOLOAD: only an object already loaded (its
 * reference is kept on purpose); RTLD_NODELETE: dlclose never unmaps it, so
 * mod_so's reload at a restart finds the same mapping, like a module linked in.
 * A provider linked into httpd itself needs nothing.  Returns NULL, or why the
 * DSO could not be pinned. */
static const char *pin_provider(const ap_socache_provider_t *prov)
{
    Dl_info in, main_in;
    if (!dladdr(prov, &in) || !in.dli_fname || !in.dli_fbase)
        return "its shared object is not known";
    if (dladdr(&ap_server_conf, &main_in) && main_in.dli_fbase == in.dli_fbase)
        return NULL; /* in the httpd binary: never unloaded */
    dlerror();
    if (!dlopen(in.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)) {
        const char *e = dlerror();
        return e ? e : "dlopen failed";
    }
    return NULL;
}

apr_status_t eid_store_socache_post_config(eid_store_socache_t *sc, apr_pool_t *pconf,
                                           apr_pool_t *ptemp, server_rec *s)
{
    apr_status_t rv;
    if (!sc || !s)
        return APR_EINVAL;
    sc->s = s;
    sc->prov = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb",
                                  AP_SOCACHE_PROVIDER_VERSION);
    if (!sc->prov) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "EID06201: the session store needs mod_socache_shmcb, which is not loaded");
        return APR_ENOTIMPL;
    }
    retained_t *ret = ap_retained_data_get(RETAINED_KEY);
    if (!ret)
        ret = ap_retained_data_create(RETAINED_KEY, sizeof(*ret));
    if (ret->bytes != sc->bytes) {
        /* Why the process pool: pconf is cleared at every restart, and with
         * it the segment - every user would be logged out by a reload. */
        apr_pool_t *pp = s->process->pool;
        ap_socache_instance_t *inst = NULL;
        apr_global_mutex_t *mu = NULL;
        const char *lockfile = NULL;
        /* shmcb uses the file only when anonymous shared memory is missing */
        const char *pin_err = pin_provider(sc->prov);
        if (pin_err)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "EID06210: cannot keep mod_socache_shmcb loaded (%s): httpd may "
                         "crash when it stops",
                         pin_err);
        const char *arg = apr_psprintf(ptemp, "%s(%" APR_SIZE_T_FMT ")",
                                       ap_runtime_dir_relative(ptemp, "eid-store-shm-" INSTANCE),
                                       sc->bytes);
        const char *err = sc->prov->create(&inst, arg, ptemp, pp);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         "EID06202: cannot create the shm session store: %s", err);
            return APR_EGENERAL;
        }
        /* sizing hints: see "Session store" in docs/architecture.md */
        struct ap_socache_hints hints = {
            .avg_id_len = 50, .avg_obj_size = 400, .expiry_interval = apr_time_from_sec(60)};
        rv = sc->prov->init(inst, "eid-store", &hints, s, pp);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "EID06202: cannot create the shm session store (%" APR_SIZE_T_FMT
                         " bytes of shared memory)",
                         sc->bytes);
            return rv;
        }
        rv = ap_global_mutex_create(&mu, &lockfile, EID_STORE_SOCACHE_MUTEX, INSTANCE, s, pp, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "EID06203: cannot create the session store's global mutex "
                         "(see the Mutex directive, type " EID_STORE_SOCACHE_MUTEX ")");
            sc->prov->destroy(inst, s);
            return rv;
        }
        if (ret->bytes)
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         "EID06204: the shm session store changed size (%" APR_SIZE_T_FMT
                         " -> %" APR_SIZE_T_FMT " bytes): a new segment, sessions in the old "
                         "one end",
                         ret->bytes, sc->bytes);
        /* Why a secret seed: a sub-cache is chosen by the key's hash; with a
         * known hash, keys an attacker can choose (markers) could be aimed
         * at one sub-cache and push the sessions there out early. */
        if (apr_generate_random_bytes((unsigned char *)&ret->seed, sizeof(ret->seed)) !=
            APR_SUCCESS)
            ret->seed = (apr_uint32_t)apr_time_now();
        /* A word in shared memory that every delete bumps: processes keep
         * what they read while it stays (eid_store_generation()). */
        if (!ret->gen_shm &&
            (rv = apr_shm_create(&ret->gen_shm, 64, NULL, pp)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "EID06202: cannot create the shm session store (64 bytes of "
                         "shared memory for its generation)");
            sc->prov->destroy(inst, s);
            return rv;
        }
        ret->inst = inst;
        ret->mu = mu;
        ret->lockfile = lockfile ? apr_pstrdup(pp, lockfile) : NULL;
        ret->bytes = sc->bytes;
    }
    sc->inst = ret->inst;
    sc->mu = ret->mu;
    sc->seed = ret->seed;
    sc->gen = apr_shm_baseaddr_get(ret->gen_shm);
    /* one per process: a child inherits its own copy at fork */
    sc->scratch = apr_palloc(pconf, SCRATCH_LEN);
    return APR_SUCCESS;
}

apr_status_t eid_store_socache_child_init(eid_store_socache_t *sc, apr_pool_t *pchild,
                                          server_rec *s)
{
    if (!sc || !sc->inst || !sc->mu)
        return APR_EINVAL;
    retained_t *ret = ap_retained_data_get(RETAINED_KEY);
    apr_status_t rv = apr_global_mutex_child_init(&sc->mu, ret ? ret->lockfile : NULL, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "EID06205: cannot open the session store's mutex in this process: "
                     "every session request will answer 503");
        return rv;
    }
    sc->ready = 1;
    return APR_SUCCESS;
}

/* ---- the ops ---------------------------------------------------------------- */

static apr_uint32_t key_hash(apr_uint32_t seed, const char *k, apr_size_t n)
{
    apr_uint32_t h = 2166136261u ^ seed; /* FNV-1a, seeded */
    for (apr_size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

/* id = hash(key) (4 bytes) || key; returns its length.  id >= ID_MAX. */
static unsigned make_id(const eid_store_socache_t *sc, unsigned char *id, const char *key,
                        apr_size_t klen)
{
    apr_uint32_t h = key_hash(sc->seed, key, klen);
    id[0] = (unsigned char)(h >> 24);
    id[1] = (unsigned char)(h >> 16);
    id[2] = (unsigned char)(h >> 8);
    id[3] = (unsigned char)h;
    memcpy(id + HASH_LEN, key, klen);
    return (unsigned)(HASH_LEN + klen);
}

static apr_time_t expiry_of(apr_interval_time_t ttl)
{
    return apr_time_now() + (ttl > TTL_MAX ? TTL_MAX : ttl);
}

/* Counts the error and logs it - at most one line per process per minute,
 * with the number of errors since the previous line, so that a broken
 * store does not write one line per request. */
static eid_store_rc_e fail(eid_store_socache_t *sc, apr_status_t rv, const char *what)
{
    apr_uint32_t n = apr_atomic_inc32(&sc->errors) + 1;
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t last = apr_atomic_read32(&sc->logged_at);
    if ((last == 0 || now - last >= 60) && apr_atomic_cas32(&sc->logged_at, now, last) == last) {
        apr_uint32_t before = apr_atomic_xchg32(&sc->logged_errors, n);
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, sc->s,
                     "%s (%u store errors in this process since the last such line)", what,
                     n - before);
    }
    return EID_STORE_ERROR;
}

static eid_store_rc_e lock(eid_store_socache_t *sc)
{
    if (!sc->ready) {
        apr_atomic_inc32(&sc->errors);
        return EID_STORE_ERROR;
    }
    apr_status_t rv = apr_global_mutex_lock(sc->mu);
    if (rv != APR_SUCCESS)
        return fail(sc, rv, "EID06206: cannot lock the shm session store");
    return EID_STORE_OK;
}

static void unlock(eid_store_socache_t *sc)
{
    apr_global_mutex_unlock(sc->mu);
}

/* The provider calls below pass the request's pool where there is one and
 * NULL elsewhere: shmcb's store, retrieve and remove never use their pool
 * argument (only shmcb is ever looked up). */

/* Under the mutex: the value into sc->scratch.  OK, NOTFOUND or ERROR. */
static eid_store_rc_e fetch(eid_store_socache_t *sc, const unsigned char *id, unsigned idlen,
                            unsigned *len, apr_pool_t *tmp)
{
    *len = SCRATCH_LEN;
    apr_status_t rv = sc->prov->retrieve(sc->inst, sc->s, id, idlen, sc->scratch, len, tmp);
    if (rv == APR_SUCCESS)
        return EID_STORE_OK;
    if (APR_STATUS_IS_NOTFOUND(rv))
        return EID_STORE_NOTFOUND;
    return fail(sc, rv, "EID06207: the shm session store could not read an entry");
}

/* Under the mutex. */
static eid_store_rc_e put(eid_store_socache_t *sc, const unsigned char *id, unsigned idlen,
                          apr_time_t expiry, const unsigned char *val, apr_size_t vlen,
                          apr_pool_t *tmp)
{
    /* socache's store takes a non-const pointer; shmcb only copies from it */
    apr_status_t rv = sc->prov->store(sc->inst, sc->s, id, idlen, expiry,
                                      (unsigned char *)(vlen ? val : (const unsigned char *)""),
                                      (unsigned)vlen, tmp);
    if (rv != APR_SUCCESS)
        return fail(sc, rv, "EID06208: the shm session store could not write an entry");
    return EID_STORE_OK;
}

static eid_store_rc_e sc_get(void *b, apr_pool_t *p, const char *key, apr_size_t klen,
                             unsigned char **val, apr_size_t *vlen)
{
    eid_store_socache_t *sc = b;
    unsigned char id[ID_MAX];
    unsigned idlen = make_id(sc, id, key, klen), len;
    if (lock(sc) != EID_STORE_OK)
        return EID_STORE_ERROR;
    eid_store_rc_e rc = fetch(sc, id, idlen, &len, p);
    if (rc == EID_STORE_OK) {
        /* copy out before the lock goes: the scratch is the next op's */
        *val = (unsigned char *)apr_pstrmemdup(p, (const char *)sc->scratch, len);
        *vlen = len;
    }
    unlock(sc);
    return rc;
}

static eid_store_rc_e sc_set(void *b, const char *key, apr_size_t klen,
                             const unsigned char *val, apr_size_t vlen, apr_interval_time_t ttl)
{
    eid_store_socache_t *sc = b;
    unsigned char id[ID_MAX];
    unsigned idlen = make_id(sc, id, key, klen);
    if (lock(sc) != EID_STORE_OK)
        return EID_STORE_ERROR;
    eid_store_rc_e rc = put(sc, id, idlen, expiry_of(ttl), val, vlen, NULL);
    unlock(sc);
    return rc;
}

static eid_store_rc_e sc_add(void *b, const char *key, apr_size_t klen,
                             const unsigned char *val, apr_size_t vlen, apr_interval_time_t ttl)
{
    eid_store_socache_t *sc = b;
    unsigned char id[ID_MAX];
    unsigned idlen = make_id(sc, id, key, klen), len;
    if (lock(sc) != EID_STORE_OK)
        return EID_STORE_ERROR;
    /* the check and the write under one lock: exactly one add wins */
    eid_store_rc_e rc = fetch(sc, id, idlen, &len, NULL);
    if (rc == EID_STORE_OK)
        rc = EID_STORE_EXISTS;
    else if (rc == EID_STORE_NOTFOUND) {
        TEST_SEAM(key, klen);
        rc = put(sc, id, idlen, expiry_of(ttl), val, vlen, NULL);
    }
    unlock(sc);
    return rc;
}

static eid_store_rc_e sc_touch(void *b, const char *key, apr_size_t klen,
                               apr_interval_time_t ttl)
{
    eid_store_socache_t *sc = b;
    unsigned char id[ID_MAX];
    unsigned idlen = make_id(sc, id, key, klen), len;
    if (lock(sc) != EID_STORE_OK)
        return EID_STORE_ERROR;
    /* socache cannot change an expiry: write the value again (a full copy
     * in shmcb's ring; see the sizing notes) */
    eid_store_rc_e rc = fetch(sc, id, idlen, &len, NULL);
    if (rc == EID_STORE_OK)
        rc = put(sc, id, idlen, expiry_of(ttl), sc->scratch, len, NULL);
    unlock(sc);
    return rc;
}

static eid_store_rc_e sc_del(void *b, const char *key, apr_size_t klen)
{
    eid_store_socache_t *sc = b;
    unsigned char id[ID_MAX];
    unsigned idlen = make_id(sc, id, key, klen), len;
    if (lock(sc) != EID_STORE_OK)
        return EID_STORE_ERROR;
    /* read first: shmcb's remove also "finds" an expired entry, and an
     * expired key must answer NOTFOUND as in every backend */
    eid_store_rc_e rc = fetch(sc, id, idlen, &len, NULL);
    if (rc == EID_STORE_OK) {
        apr_status_t rv;
        apr_atomic_inc32(sc->gen); /* before: a reader that sees the old number read first */
        rv = sc->prov->remove(sc->inst, sc->s, id, idlen, NULL);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_NOTFOUND(rv))
            rc = fail(sc, rv, "EID06208: the shm session store could not delete an entry");
    }
    unlock(sc);
    return rc;
}

static apr_time_t get_be64(const unsigned char *b)
{
    apr_uint64_t v = 0;
    for (int i = 0; i < EXP_LEN; i++)
        v = (v << 8) | b[i];
    return (apr_time_t)v;
}

static void put_be64(unsigned char *b, apr_time_t t)
{
    apr_uint64_t v = (apr_uint64_t)t;
    for (int i = EXP_LEN - 1; i >= 0; i--) {
        b[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static eid_store_rc_e sc_index_add(void *b, const char *idx, apr_size_t ilen,
                                   const char *member, apr_size_t mlen, apr_interval_time_t ttl)
{
    eid_store_socache_t *sc = b;
    unsigned char id[ID_MAX];
    unsigned idlen = make_id(sc, id, idx, ilen), len;
    /* the codec's scratch: a pool of this call and thread only */
    apr_pool_t *tmp;
    if (apr_pool_create(&tmp, NULL) != APR_SUCCESS)
        return EID_STORE_ERROR;
    if (lock(sc) != EID_STORE_OK) {
        apr_pool_destroy(tmp);
        return EID_STORE_ERROR;
    }
    apr_time_t expiry = expiry_of(ttl);
    const unsigned char *old = NULL;
    apr_size_t olen = 0;
    eid_store_rc_e rc = fetch(sc, id, idlen, &len, tmp);
    if (rc == EID_STORE_OK) {
        if (len < EXP_LEN) {
            rc = fail(sc, 0, "EID06209: a malformed index in the shm session store");
        } else {
            apr_time_t had = get_be64(sc->scratch);
            if (had > expiry)
                expiry = had; /* never shorten: older members still need it */
            old = sc->scratch + EXP_LEN;
            olen = len - EXP_LEN;
        }
    }
    if (rc == EID_STORE_OK || rc == EID_STORE_NOTFOUND) {
        unsigned char *nv;
        apr_size_t nlen, evlen;
        const char *ev;
        int u = eid_store_index_update(tmp, old, olen, member, mlen, &nv, &nlen, &ev, &evlen);
        if (u < 0) {
            rc = fail(sc, 0, "EID06209: a malformed index in the shm session store");
        } else if (u == 1) {
            /* already a member: only the expiry may grow (write it back) */
            unsigned char *w = apr_palloc(tmp, len);
            memcpy(w, sc->scratch, len);
            put_be64(w, expiry);
            rc = put(sc, id, idlen, expiry, w, len, tmp);
        } else {
            unsigned char *w = apr_palloc(tmp, EXP_LEN + nlen);
            put_be64(w, expiry);
            memcpy(w + EXP_LEN, nv, nlen);
            rc = put(sc, id, idlen, expiry, w, EXP_LEN + nlen, tmp);
            if (rc == EID_STORE_OK && ev) {
                /* the oldest member left a full index: its session ends */
                unsigned char mid[ID_MAX];
                unsigned midlen = make_id(sc, mid, ev, evlen);
                apr_atomic_inc32(sc->gen);
                sc->prov->remove(sc->inst, sc->s, mid, midlen, tmp);
            }
        }
    }
    unlock(sc);
    apr_pool_destroy(tmp);
    return rc;
}

static eid_store_rc_e sc_index_take(void *b, apr_pool_t *p, const char *idx, apr_size_t ilen,
                                    apr_array_header_t **members)
{
    eid_store_socache_t *sc = b;
    unsigned char id[ID_MAX];
    unsigned idlen = make_id(sc, id, idx, ilen), len;
    unsigned char *copy = NULL;
    if (lock(sc) != EID_STORE_OK)
        return EID_STORE_ERROR;
    /* Also when the index is gone (evicted): a back-channel logout must make
     * every kept session be looked up again (its logout marker). */
    apr_atomic_inc32(sc->gen);
    eid_store_rc_e rc = fetch(sc, id, idlen, &len, p);
    if (rc == EID_STORE_OK) {
        copy = apr_pmemdup(p, sc->scratch, len);
        /* taken and deleted under one lock: two takes never share a member */
        sc->prov->remove(sc->inst, sc->s, id, idlen, p);
    }
    unlock(sc);
    if (rc != EID_STORE_OK)
        return rc;
    if (len < EXP_LEN || eid_store_index_decode(p, copy + EXP_LEN, len - EXP_LEN, members) != 0)
        return fail(sc, 0, "EID06209: a malformed index in the shm session store");
    return EID_STORE_OK;
}

static eid_store_rc_e sc_stats(void *b, eid_store_stats_t *out)
{
    eid_store_socache_t *sc = b;
    out->errors = apr_atomic_read32(&sc->errors); /* this process only */
    return EID_STORE_OK;
}

static int sc_generation(void *b, apr_uint32_t *gen)
{
    eid_store_socache_t *sc = b;
    if (!sc->gen)
        return 0;
    *gen = apr_atomic_read32(sc->gen);
    return 1;
}

static const eid_store_ops_t socache_ops = {
    .name = "shm",
    .get = sc_get,
    .set = sc_set,
    .add = sc_add,
    .touch = sc_touch,
    .del = sc_del,
    .index_add = sc_index_add,
    .index_take = sc_index_take,
    /* shmcb drops the oldest entries of a full ring, indexes included */
    .flags = EID_STORE_F_ATOMIC_ADD | EID_STORE_F_SHARED | EID_STORE_F_LOSSY_INDEX,
    .stats = sc_stats,
    .generation = sc_generation,
};
