/*
 * eid_jwt_json.c - a strict JSON reader for token headers and payloads that
 * builds ordinary jansson values.
 *
 * Why not json_loadb(): jansson's lexer costs about 9 ns per byte here, so a
 * 1.5 KiB token spent as long in JSON as in its RS256 signature check.  This
 * reader accepts exactly what json_loadb(..., JSON_REJECT_DUPLICATES) accepts
 * for a top-level object (RFC 8259 grammar, valid UTF-8 without surrogates
 * or overlong forms, no \u0000, integers that fit json_int_t, finite reals,
 * no duplicate member names at any level, nothing but whitespace after the
 * value), with two deliberate differences: nesting deeper than
 * EID_JWT_JSON_MAX_DEPTH is refused, and so is a NUL byte anywhere (jansson
 * 2.14 swallows one that follows a number: {"a":1<NUL>} parses as {"a":1}).
 * The fuzz target compares the two.
 */
#include "eid/eid_jwt.h"
#include "eid/eid_util.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

/* json_int_t is long long (JSON_INTEGER_IS_LONG_LONG). */
#define JINT_MAX 9223372036854775807ULL

typedef struct jp {
    const unsigned char *s, *end;
    int depth;
    int dup;
    char *scratch; /* unescaped strings; never more bytes than the input */
    size_t used;
} jp_t;

static locale_t c_locale;
static once_flag c_locale_once = ONCE_FLAG_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static json_t *value(jp_t *p);

static void ws(jp_t *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int hex4(const unsigned char *s, const unsigned char *end, unsigned *out)
{
    unsigned v = 0;
    int i;
    if (end - s < 4)
        return 0;
    for (i = 0; i < 4; i++) {
        unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* An escape after the backslash at p->s; appends to out, advances. */
static int escape(jp_t *p, char *out, size_t *o)
{
    unsigned cp, lo;
    unsigned char c;

    if (p->s >= p->end)
        return 0;
    c = *p->s++;
    switch (c) {
    case '"': case '\\': case '/': out[(*o)++] = (char)c; return 1;
    case 'b': out[(*o)++] = '\b'; return 1;
    case 'f': out[(*o)++] = '\f'; return 1;
    case 'n': out[(*o)++] = '\n'; return 1;
    case 'r': out[(*o)++] = '\r'; return 1;
    case 't': out[(*o)++] = '\t'; return 1;
    case 'u': break;
    default: return 0;
    }
    if (!hex4(p->s, p->end, &cp))
        return 0;
    p->s += 4;
    if (cp == 0)
        return 0; /* jansson without JSON_ALLOW_NUL: a NUL would cut C strings */
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return 0;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (p->end - p->s < 6 || p->s[0] != '\\' || p->s[1] != 'u' ||
            !hex4(p->s + 2, p->end, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return 0;
        p->s += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    /* cp is a scalar value here: lone surrogates were refused above. */
    *o += eid_utf8_put(out + *o, cp);
    return 1;
}

/* A string at p->s (the opening quote); the result points into the input
 * when it has no escapes, else into the scratch buffer. */
static int string(jp_t *p, const char **str, size_t *len)
{
    const unsigned char *start;
    char *out = NULL;
    size_t o = 0;

    p->s++;
    start = p->s;
    for (;;) {
        const unsigned char *run = p->s;
        int n;
        while (p->s < p->end && *p->s >= 0x20 && *p->s < 0x80 && *p->s != '"' && *p->s != '\\')
            p->s++;
        if (p->s < p->end && *p->s >= 0x80) {
            if (!(n = eid_utf8_seq(p->s, (size_t)(p->end - p->s), NULL)))
                return 0;
            p->s += n;
        }
        if (out && p->s > run) {
            memcpy(out + o, run, (size_t)(p->s - run));
            o += (size_t)(p->s - run);
        }
        if (p->s >= p->end || *p->s < 0x20)
            return 0;
        if (*p->s == '"')
            break;
        if (*p->s == '\\') {
            if (!out) {
                out = p->scratch + p->used;
                o = (size_t)(p->s - start);
                memcpy(out, start, o);
            }
            p->s++;
            if (!escape(p, out, &o))
                return 0;
        }
    }
    if (out) {
        *str = out;
        *len = o;
        p->used += o;
    }
    else {
        *str = (const char *)start;
        *len = (size_t)(p->s - start);
    }
    p->s++;
    return 1;
}

static json_t *number(jp_t *p)
{
    const unsigned char *start = p->s;
    int real = 0, neg = 0;
    unsigned long long v = 0;

    if (*p->s == '-') {
        neg = 1;
        p->s++;
    }
    if (p->s >= p->end)
        return NULL;
    if (*p->s == '0')
        p->s++;
    else if (*p->s >= '1' && *p->s <= '9') {
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
            unsigned d = *p->s - '0';
            if (v > (~0ULL - d) / 10)
                v = ~0ULL; /* saturate: too big for json_int_t anyway */
            else
                v = v * 10 + d;
            p->s++;
        }
    }
    else
        return NULL;
    if (p->s < p->end && *p->s == '.') {
        real = 1;
        p->s++;
        if (p->s >= p->end || *p->s < '0' || *p->s > '9')
            return NULL;
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
            p->s++;
    }
    if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
        real = 1;
        p->s++;
        if (p->s < p->end && (*p->s == '+' || *p->s == '-'))
            p->s++;
        if (p->s >= p->end || *p->s < '0' || *p->s > '9')
            return NULL;
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
            p->s++;
    }
    if (!real) {
        if (!neg && v > JINT_MAX)
            return NULL;
        if (neg && v > JINT_MAX + 1)
            return NULL;
        return json_integer(neg ? (json_int_t)(0 - v) : (json_int_t)v);
    }
    {
        /* strtod needs a terminated copy; the C locale makes '.' the point
         * whatever the process's LC_NUMERIC is. */
        size_t n = (size_t)(p->s - start);
        char stack[64], *buf = n < sizeof(stack) ? stack : malloc(n + 1);
        double d;
        if (!buf)
            return NULL;
        memcpy(buf, start, n);
        buf[n] = '\0';
        call_once(&c_locale_once, make_c_locale);
        errno = 0;
        d = c_locale ? strtod_l(buf, NULL, c_locale) : strtod(buf, NULL);
        if (buf != stack)
            free(buf);
        if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)
            return NULL;
        return json_real(d);
    }
}

static json_t *literal(jp_t *p, const char *word, json_t *v)
{
    size_t n = strlen(word);
    if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n))
        return NULL;
    p->s += n;
    return v;
}

static json_t *array(jp_t *p)
{
    json_t *a = json_array(), *v;

    p->s++;
    ws(p);
    if (p->s < p->end && *p->s == ']') {
        p->s++;
        return a;
    }
    for (;;) {
        if (!(v = value(p)) || json_array_append_new(a, v)) {
            json_decref(a);
            return NULL;
        }
        ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == ']') {
            p->s++;
            return a;
        }
        json_decref(a);
        return NULL;
    }
}

static json_t *object(jp_t *p)
{
    json_t *o = json_object(), *v;
    const char *key;
    size_t klen;

    p->s++;
    ws(p);
    if (p->s < p->end && *p->s == '}') {
        p->s++;
        return o;
    }
    for (;;) {
        if (p->s >= p->end || *p->s != '"' || !string(p, &key, &klen))
            goto bad;
        ws(p);
        if (p->s >= p->end || *p->s != ':')
            goto bad;
        p->s++;
        if (json_object_getn(o, key, klen)) {
            p->dup = 1;
            goto bad;
        }
        if (!(v = value(p)))
            goto bad;
        if (json_object_setn_new_nocheck(o, key, klen, v))
            goto bad;
        ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            ws(p);
            continue;
        }
        if (p->s < p->end && *p->s == '}') {
            p->s++;
            return o;
        }
        goto bad;
    }
bad:
    json_decref(o);
    return NULL;
}

static json_t *value(jp_t *p)
{
    json_t *v = NULL;
    const char *str;
    size_t len;

    ws(p);
    if (p->s >= p->end)
        return NULL;
    switch (*p->s) {
    case '{':
    case '[':
        if (++p->depth > EID_JWT_JSON_MAX_DEPTH)
            return NULL;
        v = *p->s == '{' ? object(p) : array(p);
        p->depth--;
        return v;
    case '"':
        return string(p, &str, &len) ? json_stringn_nocheck(str, len) : NULL;
    case 't': return literal(p, "true", json_true());
    case 'f': return literal(p, "false", json_false());
    case 'n': return literal(p, "null", json_null());
    default: return number(p);
    }
}

json_t *eid_jwt_json_object(const char *s, apr_size_t len, int *dup)
{
    char stack[2048];
    jp_t p;
    json_t *o = NULL;

    *dup = 0;
    memset(&p, 0, sizeof(p));
    p.s = (const unsigned char *)s;
    p.end = p.s + len;
    p.scratch = len <= sizeof(stack) ? stack : malloc(len);
    if (!p.scratch)
        return NULL;
    ws(&p);
    if (p.s < p.end && *p.s == '{') {
        o = value(&p);
        ws(&p);
        if (o && p.s != p.end) {
            json_decref(o);
            o = NULL;
        }
    }
    if (p.scratch != stack)
        free(p.scratch);
    *dup = p.dup;
    return o;
}
