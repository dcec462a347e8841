/*
 * fuzz_session_record - the stored-session and pending-login decoders on
 * arbitrary bytes (as if the store, or a key holder, were hostile).
 *
 * Every input is refused or decodes to a record that obeys the codec's
 * rules (checked here independently: UTF-8 without controls, pnr of 12
 * digits, loa 0..4, csrf 43 base64url characters, bounded counts), that
 * re-encodes to exactly the input bytes (one spelling per record), and
 * that survives a seal and open unchanged.  The timeout check runs on it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_tables.h>

#include "eid/eid_session.h"
#include "eid/eid_util.h"

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_session_record: invariant failed: %s (line %d)\n",   \
                    #c, __LINE__);                                                     \
            abort();                                                                   \
        }                                                                              \
    } while (0)

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
    unsigned char cur[32];
    int i;

    apr_initialize();
    apr_pool_create(&gp, NULL);
    atexit(fini);
    for (i = 0; i < 32; i++)
        cur[i] = (unsigned char)(0xa0 + i);
    CHECK(eid_session_keys_from_bytes(gp, cur, NULL, &keys) == NULL);
}

/* Oracle: no byte below 0x20, no DEL, no C1 (U+0080..U+009F: C2 80..C2 9F). */
static void clean_str(const char *s, size_t max)
{
    size_t n, i;

    if (!s)
        return;
    n = strlen(s);
    CHECK(n <= max);
    CHECK(eid_utf8_check((const unsigned char *)s, n, 0) == EID_UTF8_OK);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        CHECK(c >= 0x20 && c != 0x7f);
        CHECK(!(c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] <= 0x9f));
    }
}

static void clean_arr(const apr_array_header_t *a)
{
    int i;

    if (!a)
        return;
    CHECK(a->nelts >= 0 && a->nelts <= EID_SESSION_MAX_ITEMS);
    for (i = 0; i < a->nelts; i++) {
        const char *s = APR_ARRAY_IDX(a, i, const char *);
        CHECK(s != NULL);
        clean_str(s, EID_SESSION_MAX_STRING);
    }
}

static void check_rec(apr_pool_t *p, const eid_session_rec_t *rec, const uint8_t *data,
                      size_t size)
{
    const eid_identity_t *id = rec->id;
    eid_session_rec_t *back = NULL;
    unsigned char *enc, *sealed;
    apr_size_t elen, slen;
    int i;

    CHECK(id != NULL);
#define CS(f) clean_str(id->f, EID_SESSION_MAX_STRING);
#define CA(f) clean_arr(id->f);
    EID_IDENTITY_STR_FIELDS(CS)
    EID_IDENTITY_ARR_FIELDS(CA)
#undef CS
#undef CA
    clean_str(rec->provider, EID_SESSION_MAX_STRING);
    clean_str(rec->sid, EID_SESSION_MAX_STRING);
    clean_str(rec->sub, EID_SESSION_MAX_STRING);
    clean_str(rec->id_token, EID_SESSION_MAX_STRING);
    CHECK(id->loa >= 0 && id->loa <= 4);
    CHECK(id->pnr_is_coordination == 0 || id->pnr_is_coordination == 1);
    CHECK((int)id->method >= 0 && (int)id->method <= 3);
    if (id->pnr) {
        CHECK(strlen(id->pnr) == 12);
        for (i = 0; i < 12; i++)
            CHECK(id->pnr[i] >= '0' && id->pnr[i] <= '9');
    }
    if (rec->csrf)
        CHECK(strlen(rec->csrf) == 43 && eid_b64url_valid(rec->csrf, 43));
    /* one spelling per record */
    CHECK(eid_session_encode(p, rec, &enc, &elen) == APR_SUCCESS);
    CHECK(elen == size && !memcmp(enc, data, size));
    /* and it survives the store */
    CHECK(eid_session_seal(p, keys, "s:x", rec, &sealed, &slen) == APR_SUCCESS);
    CHECK(eid_session_open(p, keys, "s:x", sealed, slen, &back, NULL, NULL) == 0);
    CHECK(eid_session_encode(p, back, &enc, &elen) == APR_SUCCESS);
    CHECK(elen == size && !memcmp(enc, data, size));
    (void)eid_session_live(rec, rec->created, 1);
    (void)eid_session_live(rec, rec->last_seen, apr_time_from_sec(1800));
}

static void token(const char *s)
{
    size_t i, n;

    CHECK(s != NULL);
    n = strlen(s);
    CHECK(n >= 1 && n <= 128);
    for (i = 0; i < n; i++)
        CHECK(eid_b64url_value((unsigned char)s[i]) >= 0 || s[i] == '.' || s[i] == '~');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eid_session_rec_t *rec = NULL;
    eid_pending_t *pd = NULL;
    unsigned char *enc;
    apr_size_t elen;
    apr_pool_t *p;

    if (!keys)
        init();
    apr_pool_create(&p, NULL);
    if (eid_session_decode(p, data, size, &rec) == 0) {
        eid_session_rec_t *again = NULL;
        check_rec(p, rec, data, size);
        /* what the strict decoder takes, the one after an AEAD open takes too */
        CHECK(eid_session_decode_opened(p, data, size, &again) == 0 && again);
    }
    else {
        CHECK(rec == NULL);
        /* memory-safe on any input, although it only ever sees our own records */
        (void)eid_session_decode_opened(p, data, size, &rec);
    }
    if (eid_pending_decode(p, data, size, &pd) == 0) {
        CHECK(pd->provider && *pd->provider);
        clean_str(pd->provider, 256);
        clean_str(pd->return_to, EID_PENDING_MAX_RETURN);
        token(pd->state);
        token(pd->nonce);
        token(pd->code_verifier);
        CHECK(pd->min_loa >= 0 && pd->min_loa <= 4);
        CHECK(eid_pending_encode(p, pd, &enc, &elen) == APR_SUCCESS);
        CHECK(elen == size && !memcmp(enc, data, size));
    }
    else {
        CHECK(pd == NULL);
    }
    apr_pool_destroy(p);
    return 0;
}
