/*
 * eid_redirect.c - the return-to / post-logout URL checker (see eid_redirect.h).
 *
 * Strategy: refuse, never repair.  A browser given a Location value removes
 * tabs and newlines, trims C0 controls and spaces, treats '\' as '/' in
 * http(s) URLs and reads "//host", "/\host" and "http:host" as other hosts.
 * Rather than re-implementing that normalisation (and getting one corner
 * wrong), every input whose meaning depends on it is refused: what remains is
 * either a plain local path or an absolute URL with a plain host that is
 * compared with the allow-list.
 */
#include "eid/eid_redirect.h"

#include <string.h>

typedef struct {
    int https;          /* 1 https, 0 http */
    const char *host;   /* not NUL-terminated */
    apr_size_t hlen;
    long port;          /* normalised: 443 / 80 when absent */
} origin_t;

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static int ieq(const char *a, apr_size_t alen, const char *b)
{
    apr_size_t i, blen = strlen(b);
    if (alen != blen)
        return 0;
    for (i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static apr_size_t utf8_len(const unsigned char *s, apr_size_t n)
{
    unsigned char c = s[0];
    apr_size_t need, i;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f; /* no UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < need + 1)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i <= need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return need + 1;
}

/* Every byte of the target, raw and percent-decoded (one level: what a
 * server decoding the path sees).  NULL or a reason. */
static const char *check_bytes(const unsigned char *t, apr_size_t len)
{
    apr_size_t i = 0;
    while (i < len) {
        unsigned char c = t[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= len || (h = hexval(t[i + 1])) < 0 || (l = hexval(t[i + 2])) < 0)
                return "bad percent-encoding";
            c = (unsigned char)(h * 16 + l);
            if (c < 0x20 || c == 0x7f)
                return "encoded control character";
            if (c == '\\')
                return "encoded backslash";
            i += 3;
            continue;
        }
        /* Why spaces and controls anywhere: browsers strip tabs/newlines
         * inside and C0/space at the ends, so "/\t/evil" becomes "//evil". */
        if (c <= 0x20 || c == 0x7f)
            return "control character or space";
        if (c == '\\')
            return "backslash";
        if (c == '"' || c == '<' || c == '>' || c == '`')
            return "character not allowed in a URL";
        if (c >= 0x80) {
            apr_size_t n = utf8_len(t + i, len - i);
            if (!n)
                return "invalid UTF-8";
            i += n;
            continue;
        }
        i++;
    }
    return NULL;
}

/* Decoded byte at raw position *i (advances *i). Input already checked. */
static unsigned char next_decoded(const unsigned char *t, apr_size_t *i)
{
    unsigned char c = t[*i];
    if (c == '%') {
        c = (unsigned char)(hexval(t[*i + 1]) * 16 + hexval(t[*i + 2]));
        *i += 3;
        return c;
    }
    (*i)++;
    return c;
}

/* A local path (t[0] == '/'), checked bytes.  The path part (up to '?' or
 * '#') is read decoded: "/%2fhost" and "/%2e%2e/" count as "//host" and
 * "/../", since a server or a later redirect may decode them. */
static const char *check_path(const unsigned char *t, apr_size_t len)
{
    apr_size_t i = 0, end = 0, seg_len = 0;
    int seg_dots = 1; /* the current segment is only dots so far */
    unsigned char first = 0, second = 0;
    while (end < len && t[end] != '?' && t[end] != '#')
        end++;
    /* the first two decoded bytes */
    {
        apr_size_t j = 0;
        first = next_decoded(t, &j);
        if (j < end)
            second = next_decoded(t, &j);
    }
    if (first != '/')
        return "not a local path";
    if (second == '/' || second == '\\')
        return "path starts with two slashes (another host)";
    i = 1;
    seg_len = 0;
    while (i <= end) {
        unsigned char c = i < end ? next_decoded(t, &i) : (i++, '/');
        if (c == '/') {
            if (seg_len > 0 && seg_len <= 2 && seg_dots)
                return "dot segment in the path";
            seg_len = 0;
            seg_dots = 1;
            continue;
        }
        seg_len++;
        if (c != '.')
            seg_dots = 0;
    }
    return NULL;
}

/* Parse "host[:port]" of n bytes; `https` decides the default port. */
static const char *parse_authority(const char *a, apr_size_t n, int https, origin_t *o)
{
    apr_size_t hlen = 0, i;
    o->https = https;
    o->port = https ? 443 : 80;
    if (!n)
        return "empty host";
    for (i = 0; i < n; i++)
        if (a[i] == '@')
            return "user information in the URL";
        else if (a[i] == '%')
            return "percent-encoded host";
        else if ((unsigned char)a[i] >= 0x80)
            return "non-ASCII host (compare as given: use its xn-- form)";
    if (a[0] == '[') {
        while (hlen < n && a[hlen] != ']')
            hlen++;
        if (hlen == n)
            return "bad IPv6 host";
        hlen++; /* the ']' */
        for (i = 1; i + 1 < hlen; i++)
            if (!(hexval((unsigned char)a[i]) >= 0 || a[i] == ':' || a[i] == '.'))
                return "bad IPv6 host";
        if (hlen < 4)
            return "bad IPv6 host";
    } else {
        while (hlen < n && a[hlen] != ':') {
            unsigned char c = (unsigned char)a[hlen];
            if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.')
                return "character not allowed in a host name";
            hlen++;
        }
        if (!hlen)
            return "empty host";
    }
    o->host = a;
    o->hlen = hlen;
    if (hlen < n) {
        long port = 0;
        /* Why no leading zero: the browser reads "08080" as 8080; one
         * spelling per port keeps the comparison exact. */
        if (a[hlen] != ':' || hlen + 1 == n || a[hlen + 1] == '0')
            return "bad port";
        for (i = hlen + 1; i < n; i++) {
            if (!is_digit((unsigned char)a[i]) || i - hlen > 5)
                return "bad port";
            port = port * 10 + (a[i] - '0');
        }
        if (port < 1 || port > 65535)
            return "bad port";
        o->port = port;
    }
    if (!https && !ieq(o->host, o->hlen, "127.0.0.1") && !ieq(o->host, o->hlen, "localhost") &&
        !ieq(o->host, o->hlen, "[::1]"))
        return "plain http to a host that is not loopback";
    return NULL;
}

/* "scheme://authority" at t; *rest = index after the authority. */
static const char *parse_absolute(const char *t, apr_size_t len, origin_t *o, apr_size_t *rest)
{
    apr_size_t i = 0, a;
    int https;
    if (!len || !is_alpha((unsigned char)t[0]))
        return "not a local path";
    while (i < len && (is_alpha((unsigned char)t[i]) || is_digit((unsigned char)t[i]) ||
                       t[i] == '+' || t[i] == '-' || t[i] == '.'))
        i++;
    if (i == len || t[i] != ':')
        return "not a local path";
    if (ieq(t, i, "https"))
        https = 1;
    else if (ieq(t, i, "http"))
        https = 0;
    else
        return "scheme not allowed";
    i++;
    /* "https:host", "https:/host", "https:///host": all mean a host to a
     * browser; only the plain form is accepted. */
    if (len - i < 3 || t[i] != '/' || t[i + 1] != '/' || t[i + 2] == '/')
        return "scheme without '//host'";
    i += 2;
    a = i;
    while (i < len && t[i] != '/' && t[i] != '?' && t[i] != '#')
        i++;
    *rest = i;
    return parse_authority(t + a, i - a, https, o);
}

static int same_origin(const origin_t *a, const origin_t *b)
{
    apr_size_t i;
    if (a->https != b->https || a->port != b->port || a->hlen != b->hlen)
        return 0;
    for (i = 0; i < a->hlen; i++)
        if (lower((unsigned char)a->host[i]) != lower((unsigned char)b->host[i]))
            return 0;
    return 1;
}

const char *eid_redirect_origin_check(const char *origin)
{
    origin_t o;
    apr_size_t rest = 0, len;
    const char *why;
    if (!origin)
        return "empty origin";
    len = strlen(origin);
    if (len > EID_REDIRECT_MAX)
        return "origin too long";
    if ((why = check_bytes((const unsigned char *)origin, len)))
        return why;
    if ((why = parse_absolute(origin, len, &o, &rest)))
        return why;
    if (rest != len)
        return "an origin is scheme://host[:port], without a path";
    return NULL;
}

const char *eid_redirect_check(const char *target, apr_size_t len, const char *const *origins,
                               int norigins)
{
    const unsigned char *t = (const unsigned char *)target;
    const char *why;
    origin_t o;
    apr_size_t rest = 0;
    int i;
    if (!target || !len)
        return "empty target";
    if (len > EID_REDIRECT_MAX)
        return "target too long";
    if ((why = check_bytes(t, len)))
        return why;
    if (t[0] == '/')
        return check_path(t, len);
    if ((why = parse_absolute(target, len, &o, &rest)))
        return why;
    for (i = 0; i < norigins && origins; i++) {
        origin_t a;
        apr_size_t r2 = 0;
        const char *og = origins[i];
        if (!og || parse_absolute(og, strlen(og), &a, &r2) || r2 != strlen(og))
            continue; /* an invalid entry never matches */
        if (same_origin(&o, &a))
            return NULL;
    }
    return "origin not allowed";
}
