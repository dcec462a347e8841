/*
 * eid_session_codec.c - the compact binary encoding of a session record and
 * of a pending login (contracts in eid_session.h).
 *
 * The decoder reads bytes that came out of an authenticated seal, but it is
 * written as if they came from anyone (it is fuzzed that way): every length
 * and count is checked against the bytes left before it is used, and the
 * encoder applies exactly the decoder's rules, so that a record that was
 * stored can always be read back and a decoded record re-encodes to the
 * same bytes.
 */
#include "eid/eid_session.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <string.h>

#define CODEC_VERSION 1
#define NULL_LEN 0xffffu
#define PENDING_MAX_PROVIDER 256
#define PENDING_MAX_TOKEN 128

/* ---- writer ------------------------------------------------------------------------ */

typedef struct {
    unsigned char *b; /* NULL: only count (the sizing pass) */
    apr_size_t n, cap;
    int bad; /* a rule was broken or the cap passed: the result is refused */
} wbuf_t;

static void put(wbuf_t *w, const void *src, apr_size_t n)
{
    if (w->bad || n > w->cap - w->n) {
        w->bad = 1;
        return;
    }
    if (w->b)
        memcpy(w->b + w->n, src, n);
    w->n += n;
}

static void put_u8(wbuf_t *w, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(w, &c, 1);
}

static void put_u16(wbuf_t *w, unsigned v)
{
    unsigned char c[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(w, c, 2);
}

static void put_time(wbuf_t *w, apr_time_t t)
{
    apr_uint64_t v = (apr_uint64_t)t;
    unsigned char c[8];
    int i;

    for (i = 7; i >= 0; i--, v >>= 8)
        c[i] = (unsigned char)v;
    put(w, c, 8);
}

/* A string obeys the codec when it is valid UTF-8 without control
 * characters (so without NUL) and not longer than `max`. */
static int str_ok(const char *s, apr_size_t n, apr_size_t max)
{
    return n <= max && eid_utf8_check((const unsigned char *)s, n, EID_UTF8_NO_CONTROLS) ==
                           EID_UTF8_OK;
}

static void put_str(wbuf_t *w, const char *s, apr_size_t max)
{
    apr_size_t n;

    if (!s) {
        put_u16(w, NULL_LEN);
        return;
    }
    n = strlen(s);
    if (!str_ok(s, n, max)) {
        w->bad = 1;
        return;
    }
    put_u16(w, (unsigned)n);
    put(w, s, n);
}

static void put_arr(wbuf_t *w, const apr_array_header_t *a)
{
    int i;

    if (!a) {
        put_u16(w, NULL_LEN);
        return;
    }
    if (a->nelts < 0 || a->nelts > EID_SESSION_MAX_ITEMS) {
        w->bad = 1;
        return;
    }
    put_u16(w, (unsigned)a->nelts);
    for (i = 0; i < a->nelts; i++) {
        const char *s = APR_ARRAY_IDX(a, i, const char *);
        if (!s) {
            w->bad = 1; /* an array member is never absent */
            return;
        }
        put_str(w, s, EID_SESSION_MAX_STRING);
    }
}

/* ---- reader ------------------------------------------------------------------------ */

typedef struct {
    const unsigned char *b;
    apr_size_t n, at;
    int bad;
    int trusted; /* from an AEAD open with our keys: strings were checked when sealed */
    apr_pool_t *p;
} rbuf_t;

static const unsigned char *take(rbuf_t *r, apr_size_t n)
{
    const unsigned char *s;

    /* Why `n > r->n - r->at` and not `r->at + n > r->n`: a length from the
     * input must not be able to wrap the sum. */
    if (r->bad || n > r->n - r->at) {
        r->bad = 1;
        return NULL;
    }
    s = r->b + r->at;
    r->at += n;
    return s;
}

static unsigned get_u8(rbuf_t *r)
{
    const unsigned char *s = take(r, 1);
    return s ? s[0] : 0;
}

static unsigned get_u16(rbuf_t *r)
{
    const unsigned char *s = take(r, 2);
    return s ? (unsigned)s[0] << 8 | s[1] : 0;
}

static apr_time_t get_time(rbuf_t *r)
{
    const unsigned char *s = take(r, 8);
    apr_uint64_t v = 0;
    int i;

    if (!s)
        return 0;
    for (i = 0; i < 8; i++)
        v = v << 8 | s[i];
    return (apr_time_t)v;
}

static const char *get_str(rbuf_t *r, apr_size_t max)
{
    unsigned n = get_u16(r);
    const unsigned char *s;

    if (r->bad || n == NULL_LEN)
        return NULL;
    if (!(s = take(r, n)))
        return NULL;
    /* A trusted record's strings passed str_ok() when it was encoded (the
     * encoder refuses what the decoder would); checking them again cost more
     * than the rest of a session look-up (a whole ID token, byte by byte). */
    if (r->trusted ? n > max : !str_ok((const char *)s, n, max)) {
        r->bad = 1;
        return NULL;
    }
    return apr_pstrmemdup(r->p, (const char *)s, n);
}

static apr_array_header_t *get_arr(rbuf_t *r)
{
    unsigned cnt = get_u16(r), i;
    apr_array_header_t *a;

    if (r->bad || cnt == NULL_LEN)
        return NULL;
    /* Each member takes at least its 2 length bytes: a count that the rest
     * cannot hold is refused before anything is allocated for it. */
    if (cnt > EID_SESSION_MAX_ITEMS || (apr_size_t)cnt * 2 > r->n - r->at) {
        r->bad = 1;
        return NULL;
    }
    a = apr_array_make(r->p, cnt ? (int)cnt : 1, sizeof(const char *));
    for (i = 0; i < cnt; i++) {
        const char *s = get_str(r, EID_SESSION_MAX_STRING);
        if (!s) {
            r->bad = 1; /* NULL_LEN inside an array, or a bad string */
            return NULL;
        }
        APR_ARRAY_PUSH(a, const char *) = s;
    }
    return a;
}

/* ---- field rules shared by both directions ------------------------------------------ */

static int digits12(const char *s)
{
    int i;

    for (i = 0; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return s[12] == '\0';
}

static int csrf_ok(const char *s)
{
    return strlen(s) == EID_SESSION_COOKIE_LEN && eid_b64url_valid(s, EID_SESSION_COOKIE_LEN);
}

static int rec_rules_ok(const eid_session_rec_t *rec)
{
    const eid_identity_t *id = rec->id;

    if ((int)id->method < (int)EID_METHOD_NONE || (int)id->method > (int)EID_METHOD_BEARER)
        return 0;
    if (id->pnr_is_coordination != 0 && id->pnr_is_coordination != 1)
        return 0;
    if (id->loa < 0 || id->loa > 4)
        return 0;
    if (id->pnr && !digits12(id->pnr))
        return 0;
    if (rec->csrf && !csrf_ok(rec->csrf))
        return 0;
    return 1;
}

/* RFC 7636 section 4.1 "unreserved": what state, nonce and verifier are made of. */
static int token_ok(const char *s)
{
    apr_size_t i, n;

    if (!s || !(n = strlen(s)) || n > PENDING_MAX_TOKEN)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (eid_b64url_value(c) < 0 && c != '.' && c != '~')
            return 0;
    }
    return 1;
}

static int pending_rules_ok(const eid_pending_t *pd)
{
    return pd->provider && *pd->provider && token_ok(pd->state) && token_ok(pd->nonce) &&
           token_ok(pd->code_verifier) && pd->min_loa >= 0 && pd->min_loa <= 4;
}

/* ---- session record ------------------------------------------------------------------ */

static void write_rec(wbuf_t *w, const eid_session_rec_t *rec)
{
    const eid_identity_t *id = rec->id;

    put_u8(w, CODEC_VERSION);
    put_u8(w, (unsigned)id->method);
    put_u8(w, (unsigned)id->pnr_is_coordination);
    put_u8(w, (unsigned)id->loa);
    put_time(w, id->auth_time);
    put_time(w, id->expires);
    put_time(w, rec->created);
    put_time(w, rec->last_seen);
    put_time(w, rec->expires);
#define PUTS(f) put_str(w, id->f, EID_SESSION_MAX_STRING);
#define PUTA(f) put_arr(w, id->f);
    EID_IDENTITY_STR_FIELDS(PUTS)
    EID_IDENTITY_ARR_FIELDS(PUTA)
#undef PUTS
#undef PUTA
    put_str(w, rec->provider, EID_SESSION_MAX_STRING);
    put_str(w, rec->sid, EID_SESSION_MAX_STRING);
    put_str(w, rec->sub, EID_SESSION_MAX_STRING);
    put_str(w, rec->id_token, EID_SESSION_MAX_STRING);
    put_str(w, rec->csrf, EID_SESSION_MAX_STRING);
}

apr_status_t eid_session_encode(apr_pool_t *p, const eid_session_rec_t *rec, unsigned char **out,
                                apr_size_t *len)
{
    wbuf_t w = {NULL, 0, EID_SESSION_MAX_ENCODED, 0};

    if (!rec || !rec->id || !rec_rules_ok(rec))
        return APR_EINVAL;
    /* Two passes: the first only measures (and checks every rule), so the
     * pool gets the exact size, not the 32 KiB cap, per seal. */
    write_rec(&w, rec);
    if (w.bad)
        return APR_EINVAL;
    w.cap = w.n;
    w.b = apr_palloc(p, w.cap ? w.cap : 1);
    w.n = 0;
    write_rec(&w, rec);
    if (w.bad)
        return APR_EINVAL;
    *out = w.b;
    *len = w.n;
    return APR_SUCCESS;
}

static int decode(apr_pool_t *p, const unsigned char *buf, apr_size_t len,
                  eid_session_rec_t **out, int trusted)
{
    eid_session_rec_t *rec;
    eid_identity_t *id;
    rbuf_t r = {0};

    if (!buf || len > EID_SESSION_MAX_ENCODED)
        return -1;
    r.b = buf;
    r.n = len;
    r.at = 0;
    r.bad = 0;
    r.trusted = trusted;
    r.p = p;
    if (get_u8(&r) != CODEC_VERSION || r.bad)
        return -1;
    rec = apr_pcalloc(p, sizeof(*rec));
    rec->id = id = eid_identity_make(p);
    id->method = (eid_method_e)get_u8(&r);
    id->pnr_is_coordination = (int)get_u8(&r);
    id->loa = (int)get_u8(&r);
    id->auth_time = get_time(&r);
    id->expires = get_time(&r);
    rec->created = get_time(&r);
    rec->last_seen = get_time(&r);
    rec->expires = get_time(&r);
#define GETS(f) id->f = get_str(&r, EID_SESSION_MAX_STRING);
#define GETA(f) id->f = get_arr(&r);
    EID_IDENTITY_STR_FIELDS(GETS)
    EID_IDENTITY_ARR_FIELDS(GETA)
#undef GETS
#undef GETA
    rec->provider = get_str(&r, EID_SESSION_MAX_STRING);
    rec->sid = get_str(&r, EID_SESSION_MAX_STRING);
    rec->sub = get_str(&r, EID_SESSION_MAX_STRING);
    rec->id_token = get_str(&r, EID_SESSION_MAX_STRING);
    rec->csrf = get_str(&r, EID_SESSION_MAX_STRING);
    if (r.bad || r.at != r.n || !rec_rules_ok(rec))
        return -1;
    *out = rec;
    return 0;
}

int eid_session_decode(apr_pool_t *p, const unsigned char *buf, apr_size_t len,
                       eid_session_rec_t **out)
{
    return decode(p, buf, len, out, 0);
}

int eid_session_decode_opened(apr_pool_t *p, const unsigned char *buf, apr_size_t len,
                              eid_session_rec_t **out)
{
    return decode(p, buf, len, out, 1);
}

/* ---- pending login ------------------------------------------------------------------- */

apr_status_t eid_pending_encode(apr_pool_t *p, const eid_pending_t *pd, unsigned char **out,
                                apr_size_t *len)
{
    wbuf_t w;

    if (!pd || !pending_rules_ok(pd))
        return APR_EINVAL;
    w.cap = 1 + 1 + 8 + (2 + PENDING_MAX_PROVIDER) + 3 * (2 + PENDING_MAX_TOKEN) + 2 +
            EID_PENDING_MAX_RETURN;
    w.b = apr_palloc(p, w.cap);
    w.n = 0;
    w.bad = 0;
    put_u8(&w, CODEC_VERSION);
    put_u8(&w, (unsigned)pd->min_loa);
    put_time(&w, pd->created);
    put_str(&w, pd->provider, PENDING_MAX_PROVIDER);
    put_str(&w, pd->state, PENDING_MAX_TOKEN);
    put_str(&w, pd->nonce, PENDING_MAX_TOKEN);
    put_str(&w, pd->code_verifier, PENDING_MAX_TOKEN);
    put_str(&w, pd->return_to, EID_PENDING_MAX_RETURN);
    if (w.bad)
        return APR_EINVAL;
    *out = w.b;
    *len = w.n;
    return APR_SUCCESS;
}

int eid_pending_decode(apr_pool_t *p, const unsigned char *buf, apr_size_t len,
                       eid_pending_t **out)
{
    eid_pending_t *pd;
    rbuf_t r = {0};

    if (!buf)
        return -1;
    r.b = buf;
    r.n = len;
    r.at = 0;
    r.bad = 0;
    r.p = p;
    if (get_u8(&r) != CODEC_VERSION || r.bad)
        return -1;
    pd = apr_pcalloc(p, sizeof(*pd));
    pd->min_loa = (int)get_u8(&r);
    pd->created = get_time(&r);
    pd->provider = get_str(&r, PENDING_MAX_PROVIDER);
    pd->state = get_str(&r, PENDING_MAX_TOKEN);
    pd->nonce = get_str(&r, PENDING_MAX_TOKEN);
    pd->code_verifier = get_str(&r, PENDING_MAX_TOKEN);
    pd->return_to = get_str(&r, EID_PENDING_MAX_RETURN);
    if (r.bad || r.at != r.n || !pending_rules_ok(pd))
        return -1;
    *out = pd;
    return 0;
}
