/*
 * eid_util.c - strict UTF-8, base64url, the bounded file reader, the text of
 * a level of assurance and civil-date arithmetic: one copy of each for the
 * whole core (contracts in eid_util.h).
 */
#include "eid/eid_util.h"

#include <apr_errno.h>
#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- UTF-8 -------------------------------------------------------------------- */

int eid_utf8_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

int eid_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c, lo = 0x80, hi = 0xbf;
    uint32_t v;
    size_t len, i;

    if (n == 0)
        return 0;
    c = s[0];
    if (c < 0x80) {
        if (cp)
            *cp = c;
        return 1;
    }
    /* The second byte's range rules out the overlong forms (E0, F0), the
     * UTF-16 surrogates (ED) and code points above U+10FFFF (F4); C0, C1
     * and F5-FF can only start an overlong or too large a form. */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
    }
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0f;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    }
    else {
        return 0;
    }
    /* Why byte by byte with the bound in the loop: a byte is read only when
     * all before it were continuation bytes, so a NUL ends the look. */
    for (i = 1; i < len; i++) {
        if (i >= n || s[i] < lo || s[i] > hi)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
        lo = 0x80;
        hi = 0xbf;
    }
    if (cp)
        *cp = v;
    return (int)len;
}

/* 1 for the ASCII bytes eid_utf8_is_control() calls control characters. */
static const unsigned char ascii_control[128] = {[0 ... 0x1f] = 1, [0x7f] = 1};

eid_utf8_e eid_utf8_check(const unsigned char *s, size_t n, unsigned flags)
{
    int no_ctl = (flags & EID_UTF8_NO_CONTROLS) != 0;
    size_t i = 0;

    while (i < n) {
        uint32_t cp;
        int k;

        /* Runs of plain ASCII - nearly all of every value - one table look-up
         * a byte (this check runs over whole ID tokens and session records). */
        if (no_ctl)
            while (i < n && s[i] < 0x80 && !ascii_control[s[i]])
                i++;
        else
            while (i < n && s[i] < 0x80)
                i++;
        if (i == n)
            break;
        if (s[i] < 0x80) {
            if (no_ctl && eid_utf8_is_control(s[i]))
                return EID_UTF8_CONTROL;
            i++;
            continue;
        }
        if (!(k = eid_utf8_seq(s + i, n - i, &cp)))
            return EID_UTF8_BAD;
        if (no_ctl && eid_utf8_is_control(cp))
            return EID_UTF8_CONTROL;
        i += (size_t)k;
    }
    return EID_UTF8_OK;
}

size_t eid_utf8_put(char *o, uint32_t cp)
{
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---- base64url ------------------------------------------------------------------ */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value + 1 of every byte; 0: not in the alphabet ('+', '/', '=' included). */
static const unsigned char b64_value[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 63,  0,  0,
    53, 54, 55, 56, 57, 58, 59, 60, 61, 62,  0,  0,  0,  0,  0,  0,
     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,  0,  0,  0,  0, 64,
     0, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
    42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
};

size_t eid_b64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t eid_b64url_decoded_len(size_t n)
{
    return n / 4 * 3 + (n % 4 == 2 ? 1 : n % 4 == 3 ? 2 : 0);
}

size_t eid_b64url_encode(char *out, const unsigned char *in, size_t n)
{
    size_t i = 0, o = 0;
    uint32_t v;

    for (; n - i >= 3; i += 3) {
        v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i > 0) {
        v = (uint32_t)in[i] << 16 | (n - i == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        if (n - i == 2)
            out[o++] = b64_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

char *eid_b64url_pencode(apr_pool_t *p, const unsigned char *in, size_t n)
{
    char *out = apr_palloc(p, eid_b64url_encoded_len(n) + 1);
    eid_b64url_encode(out, in, n);
    return out;
}

int eid_b64url_value(unsigned char c)
{
    return (int)b64_value[c] - 1;
}

int eid_b64url_valid(const char *s, size_t n)
{
    size_t i;
    int last;

    for (i = 0; i < n; i++)
        if (!b64_value[(unsigned char)s[i]])
            return 0;
    if (n % 4 == 1)
        return 0;
    if (n % 4 == 0)
        return 1;
    /* Why the unused bits must be zero: "QQ" and "QR" would otherwise both
     * be "A", and a signed segment must have exactly one spelling. */
    last = eid_b64url_value((unsigned char)s[n - 1]);
    return n % 4 == 2 ? (last & 0x0f) == 0 : (last & 0x03) == 0;
}

int eid_b64url_decode(const char *s, size_t n, unsigned char *out, size_t *outlen)
{
    uint32_t acc = 0;
    size_t i, o = 0;
    int bits = 0;

    if (n % 4 == 1)
        return 0;
    for (i = 0; i < n; i++) {
        int v = (int)b64_value[(unsigned char)s[i]] - 1;
        if (v < 0)
            return 0;
        acc = ((acc << 6) | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* 0, 2 or 4 bits are left over; they must be zero (see eid_b64url_valid). */
    if (acc & ((1u << bits) - 1))
        return 0;
    *outlen = o;
    return 1;
}

/* ---- numbers and levels of assurance ---------------------------------------------------- */

int eid_uint_parse(const char *s, apr_int64_t min, apr_int64_t max, apr_int64_t *out)
{
    apr_int64_t n = 0;
    const char *d;
    int big = 0;

    if (!s || !*s)
        return -1;
    for (d = s; *d; d++) {
        int dig = *d - '0';
        if (dig < 0 || dig > 9)
            return -1;
        /* n * 10 + dig is computed only when it cannot pass max, so it
         * never overflows; past max the rest need only be digits. */
        if (!big && (dig > max || n > (max - dig) / 10))
            big = 1;
        else if (!big)
            n = n * 10 + dig;
    }
    if (big || n < min)
        return -2;
    *out = n;
    return 0;
}

int eid_loa_parse(const char *s, int min)
{
    if (!s || s[0] < '0' || s[0] > '4' || s[1] || s[0] - '0' < min)
        return -1;
    return s[0] - '0';
}

/* ---- civil dates (H. Hinnant's era / day-of-era arithmetic) ---------------------------- */

apr_int64_t eid_days_from_civil(apr_int64_t y, unsigned m, unsigned d)
{
    apr_int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (apr_int64_t)doe - 719468;
}

void eid_civil_from_days(apr_int64_t days, apr_int64_t *y, unsigned *m, unsigned *d)
{
    apr_int64_t era, doe, yoe, doy, mp;

    days += 719468; /* from 1970-01-01 to 0000-03-01 */
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ---- files ------------------------------------------------------------------------------ */

static void wipe(char *b, apr_size_t n, unsigned flags)
{
    if ((flags & EID_FILE_SECRET) && n)
        explicit_bzero(b, n);
}

/* Sets *err (if wanted) to fmt with the path and the text of OS error e. */
static apr_status_t os_error(apr_pool_t *p, const char **err, const char *fmt,
                             const char *path, int e)
{
    char ebuf[128];
    apr_status_t rv = APR_FROM_OS_ERROR(e);
    if (err)
        *err = apr_psprintf(p, fmt, path, apr_strerror(rv, ebuf, sizeof(ebuf)));
    return rv;
}

static apr_status_t too_large(apr_pool_t *p, const char **err, const char *path,
                              apr_size_t max)
{
    if (err)
        *err = apr_psprintf(p, "%s is larger than %" APR_SIZE_T_FMT " bytes", path, max);
    return APR_ENOSPC;
}

apr_status_t eid_file_read(apr_pool_t *p, const char *path, apr_size_t max, unsigned flags,
                           char **buf, apr_size_t *len, const char **err)
{
    struct stat st;
    apr_size_t cap, n = 0;
    char *b;
    int fd, e;

    if (!path || !*path) {
        if (err)
            *err = "no file name given";
        return APR_EINVAL;
    }
    if (max > APR_SIZE_MAX / 2)
        max = APR_SIZE_MAX / 2; /* so that max + 2 cannot wrap */
    /* Why O_NONBLOCK: opening a FIFO for reading would wait for a writer
     * (and hang the start-up); it is refused below as not a regular file.
     * On a regular file the flag changes nothing. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return os_error(p, err, "cannot open %s: %s", path, errno);
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        return os_error(p, err, "cannot read %s: %s", path, e);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (err)
            *err = apr_psprintf(p, "%s is not a regular file", path);
        return APR_EINVAL;
    }
    /* Refused before a byte of it is read (which, for a secret, is none in
     * memory at all).  The size is only a hint otherwise: the file may
     * change between fstat() and read(), so the cap is enforced again on
     * the bytes read, and the buffer grows to max + 1 if the file did. */
    if (st.st_size > 0 && (apr_uint64_t)st.st_size > (apr_uint64_t)max) {
        close(fd);
        return too_large(p, err, path, max);
    }
    cap = (st.st_size > 0 ? (apr_size_t)st.st_size : 0) + 1;
    b = apr_palloc(p, cap + 1);
    for (;;) {
        ssize_t r;

        if (n == cap) {
            char *nb;
            if (cap > max)
                break; /* max + 1 bytes read: too large */
            nb = apr_palloc(p, max + 2);
            memcpy(nb, b, n);
            wipe(b, n, flags);
            b = nb;
            cap = max + 1;
        }
        r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            e = errno;
            close(fd);
            wipe(b, n, flags);
            return os_error(p, err, "cannot read %s: %s", path, e);
        }
        if (r == 0)
            break;
        n += (apr_size_t)r;
    }
    close(fd);
    if (n > max) {
        wipe(b, n, flags);
        return too_large(p, err, path, max);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return APR_SUCCESS;
}
