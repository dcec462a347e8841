/*
 * eid_revcache.c - the per-process cache of revocation answers
 * (eid_revocation.h): a set-associative table of fixed-size entries, keyed by
 * SHA-256(issuer key hash || serial), in shards with a mutex each.
 *
 * Why malloc and fixed-size entries, no APR pool: an entry holds no pointer,
 * so a put never allocates; nothing of the cache can be touched by two
 * threads without its shard's lock, and there is no pool to share.
 */
#include "eid/eid_revocation.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4
#define SHARDS 16

typedef struct entry {
    unsigned char key[EID_REV_KEY_LEN];
    apr_time_t expires; /* 0: empty */
    eid_rev_answer_t a;
} entry_t;

typedef struct shard {
    pthread_mutex_t mu;
    entry_t *sets;  /* nsets * WAYS entries, guarded by mu */
} shard_t;

struct eid_revcache {
    shard_t shards[SHARDS];
    apr_size_t nsets; /* per shard */
    apr_interval_time_t max_ttl;
};

int eid_rev_key(X509 *cert, X509 *issuer, unsigned char key[EID_REV_KEY_LEN])
{
    unsigned char ikh[32];
    unsigned int n = 0;
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);

    if (!serial || !X509_pubkey_digest(issuer, EVP_sha256(), ikh, &n) || n != 32)
        return -1;
    eid_rev_key_raw(ikh, ASN1_STRING_get0_data(serial), (apr_size_t)ASN1_STRING_length(serial),
                    key);
    return 0;
}

void eid_rev_key_raw(const unsigned char issuer_key_hash[32], const unsigned char *serial,
                     apr_size_t serial_len, unsigned char key[EID_REV_KEY_LEN])
{
    unsigned char buf[32 + 64];

    /* Fixed-length first part: no two (issuer, serial) pairs hash the same
     * input.  Serials are at most 20 octets (RFC 5280); a longer one takes
     * the slower path. */
    memcpy(buf, issuer_key_hash, 32);
    if (serial_len <= 64) {
        memcpy(buf + 32, serial, serial_len);
        EVP_Digest(buf, 32 + serial_len, key, NULL, EVP_sha256(), NULL);
    }
    else {
        EVP_MD_CTX *x = EVP_MD_CTX_new();
        if (!x || !EVP_DigestInit_ex(x, EVP_sha256(), NULL) || !EVP_DigestUpdate(x, buf, 32) ||
            !EVP_DigestUpdate(x, serial, serial_len) || !EVP_DigestFinal_ex(x, key, NULL))
            memset(key, 0xff, EID_REV_KEY_LEN); /* never matches a real answer's key */
        EVP_MD_CTX_free(x);
    }
}

static apr_status_t cache_cleanup(void *data)
{
    eid_revcache_t *c = data;
    int i;

    for (i = 0; i < SHARDS; i++) {
        pthread_mutex_destroy(&c->shards[i].mu);
        free(c->shards[i].sets);
    }
    free(c);
    return APR_SUCCESS;
}

eid_revcache_t *eid_revcache_create(apr_pool_t *p, apr_size_t max_entries,
                                    apr_interval_time_t max_ttl)
{
    eid_revcache_t *c = calloc(1, sizeof(*c));
    int i;

    if (!c)
        return NULL;
    c->nsets = max_entries / (SHARDS * WAYS);
    if (c->nsets < 1)
        c->nsets = 1;
    c->max_ttl = max_ttl > 0 ? max_ttl : apr_time_from_sec(3600);
    for (i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&c->shards[i].mu, NULL);
        c->shards[i].sets = calloc(c->nsets * WAYS, sizeof(entry_t));
        if (!c->shards[i].sets) {
            for (; i >= 0; i--) {
                pthread_mutex_destroy(&c->shards[i].mu);
                free(c->shards[i].sets);
            }
            free(c);
            return NULL;
        }
    }
    apr_pool_cleanup_register(p, c, cache_cleanup, apr_pool_cleanup_null);
    return c;
}

/* The shard and the set of `key` (its bytes are uniformly distributed). */
static entry_t *locate(eid_revcache_t *c, const unsigned char *key, shard_t **sh)
{
    apr_size_t h;

    memcpy(&h, key + 1, sizeof(h));
    *sh = &c->shards[key[0] % SHARDS];
    return (*sh)->sets + (h % c->nsets) * WAYS;
}

int eid_revcache_get(eid_revcache_t *c, const unsigned char key[EID_REV_KEY_LEN], apr_time_t now,
                     eid_rev_answer_t *out)
{
    shard_t *sh;
    entry_t *set = locate(c, key, &sh);
    int i, hit = 0;

    pthread_mutex_lock(&sh->mu);
    for (i = 0; i < WAYS; i++) {
        if (set[i].expires && !memcmp(set[i].key, key, EID_REV_KEY_LEN)) {
            if (set[i].expires > now) {
                *out = set[i].a;
                hit = 1;
            }
            else
                set[i].expires = 0; /* expired: free the slot */
            break;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return hit;
}

void eid_revcache_put(eid_revcache_t *c, const unsigned char key[EID_REV_KEY_LEN],
                      const eid_rev_answer_t *a, apr_time_t now)
{
    apr_time_t exp = now + c->max_ttl;
    shard_t *sh;
    entry_t *set = locate(c, key, &sh), *victim = NULL;
    int i;

    /* Why never past nextUpdate: after it the issuer may have revoked the
     * certificate and the answer proves nothing. */
    if (a->next_update && a->next_update < exp)
        exp = a->next_update;
    if (exp <= now)
        return;
    pthread_mutex_lock(&sh->mu);
    for (i = 0; i < WAYS; i++) {
        if (set[i].expires && !memcmp(set[i].key, key, EID_REV_KEY_LEN)) {
            victim = &set[i];
            break;
        }
        /* else the empty or expired slot, else the one expiring first */
        if (!victim || (victim->expires > now && set[i].expires < victim->expires))
            victim = &set[i];
    }
    memcpy(victim->key, key, EID_REV_KEY_LEN);
    victim->a = *a;
    victim->expires = exp;
    pthread_mutex_unlock(&sh->mu);
}
