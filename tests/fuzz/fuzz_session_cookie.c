/*
 * fuzz_session_cookie - what a browser (or anyone) can send as a session or
 * state cookie, and what a store can hand back as a sealed session.
 *
 * The same bytes go to three entries:
 *  - eid_session_cookie_parse(): accepted exactly when an independent check
 *    says "43 canonical base64url characters", and then the id is the
 *    base64url decoding and encodes back to the same text;
 *  - eid_pending_open() with a fixed key set: refused with an EID061xx tag,
 *    or (seeds sealed with the fuzz keys, see mkseeds_session.c) a record
 *    that obeys the codec and survives a new seal and open unchanged;
 *  - eid_session_open() with the same keys and a fixed bind: likewise.
 * A mutation that opens would be a forgery of AES-GCM: only the seeds do.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "eid/eid_session.h"
#include "eid/eid_util.h"

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_session_cookie: invariant failed: %s (line %d)\n",   \
                    #c, __LINE__);                                                     \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* Must match tests/fuzz/mkseeds_session.c. */
#define FUZZ_VHOST "fuzz.example"
#define FUZZ_BIND "s:fuzz-store-key"

static eid_session_keys_t *keys;

static apr_pool_t *gp;

/* Why at exit: the key set's OpenSSL objects live in APR pool memory, which
 * LeakSanitizer does not scan; destroying the pool frees them first. */
static void fini(void)
{
    apr_pool_destroy(gp);
    apr_terminate();
}

static void init(void)
{
    unsigned char cur[32], prev[32];
    int i;

    apr_initialize();
    apr_pool_create(&gp, NULL);
    atexit(fini);
    for (i = 0; i < 32; i++) {
        cur[i] = (unsigned char)(0xa0 + i);
        prev[i] = (unsigned char)(0x60 + i);
    }
    CHECK(eid_session_keys_from_bytes(gp, cur, prev, &keys) == NULL);
}

static int is_tag061(const eid_result_t *res)
{
    return res->tag && !strncmp(res->tag, "EID061", 6) && res->reason && res->code != 0;
}

static void same_encoding(apr_pool_t *p, const eid_session_rec_t *a, const eid_session_rec_t *b)
{
    unsigned char *ea, *eb;
    apr_size_t na, nb;

    CHECK(eid_session_encode(p, a, &ea, &na) == APR_SUCCESS);
    CHECK(eid_session_encode(p, b, &eb, &nb) == APR_SUCCESS);
    CHECK(na == nb && !memcmp(ea, eb, na));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    unsigned char id[EID_SESSION_ID_LEN], dec[64], *sealed;
    char text[EID_SESSION_COOKIE_LEN + 1], key[48];
    eid_session_rec_t *rec = NULL, *again = NULL;
    eid_pending_t *pd = NULL, *pd2 = NULL;
    eid_result_t res = {0};
    apr_size_t dlen = 0, slen;
    apr_pool_t *p;
    int rc, rot = -1, oracle;

    if (!keys)
        init();
    apr_pool_create(&p, NULL);

    /* 1. the session cookie */
    rc = eid_session_cookie_parse(s, size, id);
    oracle = size == EID_SESSION_COOKIE_LEN && eid_b64url_valid(s, size);
    CHECK(rc == (oracle ? 0 : -1));
    if (rc == 0) {
        CHECK(eid_b64url_decode(s, size, dec, &dlen) && dlen == EID_SESSION_ID_LEN);
        CHECK(!memcmp(dec, id, EID_SESSION_ID_LEN));
        eid_session_cookie_value(id, text);
        CHECK(!memcmp(text, s, EID_SESSION_COOKIE_LEN));
        CHECK(eid_session_store_key(keys, 0, FUZZ_VHOST, id, key) == 0);
        CHECK(strlen(key) == EID_SESSION_STORE_KEY_LEN && !memcmp(key, "s:", 2));
    }

    /* 2. the state cookie */
    rc = eid_pending_open(p, keys, FUZZ_VHOST, s, size, &pd, &res);
    if (rc == 0) {
        const char *c = eid_pending_seal(p, keys, FUZZ_VHOST, pd);
        CHECK(c && strlen(c) <= EID_PENDING_MAX_COOKIE);
        CHECK(eid_pending_open(p, keys, FUZZ_VHOST, c, strlen(c), &pd2, NULL) == 0);
        CHECK(!strcmp(pd->provider, pd2->provider) && !strcmp(pd->state, pd2->state) &&
              !strcmp(pd->nonce, pd2->nonce) && !strcmp(pd->code_verifier, pd2->code_verifier) &&
              pd->min_loa == pd2->min_loa && pd->created == pd2->created);
        CHECK(pd->return_to ? pd2->return_to && (!strcmp(pd->return_to, pd2->return_to) ||
                                                 !strcmp(pd2->return_to, "/"))
                            : !pd2->return_to);
        /* bound to its vhost */
        CHECK(eid_pending_open(p, keys, "other.example", s, size, &pd2, NULL) == -1);
    }
    else {
        CHECK(is_tag061(&res));
    }

    /* 3. a sealed session from the store */
    memset(&res, 0, sizeof(res));
    rc = eid_session_open(p, keys, FUZZ_BIND, data, size, &rec, &rot, &res);
    if (rc == 0) {
        CHECK(rec && rec->id && (rot == 0 || rot == 1));
        CHECK(eid_session_seal(p, keys, FUZZ_BIND, rec, &sealed, &slen) == APR_SUCCESS);
        rot = -1;
        CHECK(eid_session_open(p, keys, FUZZ_BIND, sealed, slen, &again, &rot, NULL) == 0);
        CHECK(rot == 0);
        same_encoding(p, rec, again);
        CHECK(eid_session_open(p, keys, FUZZ_BIND "x", data, size, &again, NULL, NULL) == -1);
        (void)eid_session_live(rec, 0, 1);
    }
    else {
        CHECK(rec == NULL && rot == 0 && is_tag061(&res));
    }
    apr_pool_destroy(p);
    return 0;
}
