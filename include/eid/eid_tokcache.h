/*
 * eid_tokcache.h - per-process cache of validated bearer tokens.
 *
 * Key: SHA-256 of the token (the raw token is never stored).  Value: the
 * identity flattened into one malloc'd, reference-counted block owned by
 * the cache, plus the opaque "owner" (the provider that validated it), so
 * that a token validated for one provider is never a hit for a location
 * that does not accept that provider.  Bounded entry count; the table is
 * split into up to 16 shards by key (one shard below 512 entries), each with
 * its own lock, its own APR pool (the hash table's memory, used only under
 * that lock) and least-recently-used eviction.  Entries expire at
 * min(token expiry, insertion + max_ttl).  An entry also records a
 * generation of its owner's state (e.g. the provider's key set): the caller's
 * accept function can turn a hit into a miss when that state has changed
 * (a key withdrawn).  Thread-safe; a hit costs a hash lookup under the
 * shard's lock and no copy of the identity's strings.
 */
#ifndef EID_TOKCACHE_H
#define EID_TOKCACHE_H

#include <apr_pools.h>
#include <apr_time.h>

#include "eid/eid_identity.h"

#define EID_TOKCACHE_KEY_LEN 32

typedef struct eid_tokcache eid_tokcache_t;

/* key = SHA-256(token[0 .. len)).  Thread-safe. */
void eid_tokcache_key(const char *token, apr_size_t len,
                      unsigned char key[EID_TOKCACHE_KEY_LEN]);

/*
 * A cache of at most `entries` (> 0) tokens, each kept at most `max_ttl`.
 * Its memory is released by a cleanup of `p`; `p` is only used for the
 * cache's fixed struct, here and now: each shard has its own lock and its own
 * pool (a child of APR's global pool, used only under that lock), so `p` may
 * be a process-wide pool such as pchild that other threads allocate from.
 * Returns NULL when a pool or a lock cannot be created.
 */
eid_tokcache_t *eid_tokcache_create(apr_pool_t *p, int entries, apr_interval_time_t max_ttl);

/* Does the caller accept an entry stored by `owner` with generation `gen`
 * (see eid_tokcache_put_gen())?  > 0: a hit; 0: not for this caller (the
 * entry stays); < 0: the entry is outdated and is dropped.  Called under the
 * shard's lock: must be quick and must not call back into the cache. */
typedef int (*eid_tokcache_accept_fn)(const void *owner, apr_uint32_t gen,
                                      const void *baton);

/*
 * Look `key` up.  A hit needs an unexpired entry (expiry > now) whose owner
 * `accept` approves (accept NULL: owner must equal `baton`); then *out is a
 * copy of the identity struct in `p` whose strings and arrays are the
 * entry's, kept alive (even past eviction) until `p` is cleared - read them,
 * never change them - and 1 is returned.  Otherwise 0 (an expired entry is
 * dropped).  Thread-safe.
 */
int eid_tokcache_get(eid_tokcache_t *c, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                     apr_time_t now, eid_tokcache_accept_fn accept, const void *baton,
                     apr_pool_t *p, eid_identity_t **out);

/*
 * Store a copy of `id` for `key` (replacing an older entry), owned by
 * `owner`, until min(expires, now + max_ttl); `expires` 0 means "no expiry of
 * its own".  Nothing is stored when that moment is not after `now`.  When
 * full, the least recently used entry is evicted.  `id` is copied; the
 * caller keeps it.  The entry's generation is 0.  Thread-safe.
 */
void eid_tokcache_put(eid_tokcache_t *c, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                      const void *owner, const eid_identity_t *id, apr_time_t expires,
                      apr_time_t now);

/*
 * eid_tokcache_put() with the generation `gen` of the owner's state that the
 * decision depended on (read BEFORE the decision was made, so that a change
 * during it is never missed); the accept function of eid_tokcache_get()
 * receives it.  Thread-safe.
 */
void eid_tokcache_put_gen(eid_tokcache_t *c, const unsigned char key[EID_TOKCACHE_KEY_LEN],
                          const void *owner, apr_uint32_t gen, const eid_identity_t *id,
                          apr_time_t expires, apr_time_t now);

/* Number of entries (expired ones not yet dropped included).  Thread-safe. */
int eid_tokcache_count(eid_tokcache_t *c);

/*
 * The process-wide cache used by eid_bearer_validate(): created in `pchild`
 * with `entries` and `max_ttl`; entries <= 0 turns it off.  Call at child
 * start-up, before threads use it (not thread-safe itself); a second call
 * replaces the first cache.
 */
apr_status_t eid_tokcache_init(apr_pool_t *pchild, int entries, apr_interval_time_t max_ttl);

/* The process-wide cache, or NULL when off. */
eid_tokcache_t *eid_tokcache_global(void);

#endif
