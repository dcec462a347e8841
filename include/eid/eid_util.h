/*
 * eid_util.h - the one copy of the small helpers every other unit needs:
 * strict UTF-8, base64url, a bounded whole-file reader, the text of a level
 * of assurance, and proleptic Gregorian date arithmetic.
 *
 * Pure functions over (pointer, length) unless a pool is named; no locale,
 * no global state (the tables are static const), so all of it is safe from
 * any thread.
 */
#ifndef EID_UTIL_H
#define EID_UTIL_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <stddef.h>
#include <stdint.h>

/* ---- UTF-8 (RFC 3629) ------------------------------------------------------- */

typedef enum {
    EID_UTF8_OK = 0,
    EID_UTF8_BAD,     /* not well-formed: stray or missing continuation byte,
                         overlong form, surrogate, above U+10FFFF, bad lead */
    EID_UTF8_CONTROL  /* well-formed, but a control character where refused */
} eid_utf8_e;

/* eid_utf8_check() flag: refuse C0 (U+0000-U+001F, so NUL too), DEL and C1
 * (U+0080-U+009F, e.g. U+0085 NEL, a line break to some readers). */
#define EID_UTF8_NO_CONTROLS 1u

/*
 * The length (1-4) of the well-formed UTF-8 sequence at `s`, looking at no
 * more than `n` bytes; 0 when there is none (n == 0, a continuation or
 * invalid lead byte, an overlong form, a surrogate, a code point above
 * U+10FFFF, or a sequence cut short by `n`).  An ASCII byte (NUL included)
 * is a sequence of 1.  When `cp` is not NULL it receives the code point of
 * an accepted sequence.  A byte is read only after every byte before it
 * was accepted, so a NUL-terminated string may be passed with n equal to
 * its remaining length.  Pure.
 */
int eid_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);

/*
 * Check `n` bytes at `s` as strict UTF-8 (as eid_utf8_seq(), sequence after
 * sequence) and, with EID_UTF8_NO_CONTROLS in `flags`, without control
 * characters.  Returns the verdict of the first sequence at fault (so a
 * control character before an encoding error gives EID_UTF8_CONTROL).
 * n == 0 is EID_UTF8_OK.  Pure.
 */
eid_utf8_e eid_utf8_check(const unsigned char *s, size_t n, unsigned flags);

/* 1 when `cp` is a C0 control, DEL or a C1 control; else 0.  Pure. */
int eid_utf8_is_control(uint32_t cp);

/*
 * Write the UTF-8 form of `cp` at `o` (1-4 bytes, no NUL) and return the
 * count; 0, with nothing written, when `cp` is not a Unicode scalar value
 * (a surrogate U+D800-U+DFFF or above U+10FFFF).  `o` must have room for 4.
 */
size_t eid_utf8_put(char *o, uint32_t cp);

/* ---- base64url (RFC 4648 5), unpadded as JWS uses it (RFC 7515 2) ------------- */

/* Characters of the unpadded encoding of `n` bytes: ceil(4n / 3). */
size_t eid_b64url_encoded_len(size_t n);

/* Bytes that the `n` characters of a valid encoding decode to (n % 4 != 1). */
size_t eid_b64url_decoded_len(size_t n);

/*
 * Encode `n` bytes at `in` into `out`, unpadded, followed by a NUL; `out`
 * must hold eid_b64url_encoded_len(n) + 1 bytes.  Returns the character
 * count (without the NUL).
 */
size_t eid_b64url_encode(char *out, const unsigned char *in, size_t n);

/* The same into a fresh NUL-terminated string in `p`. */
char *eid_b64url_pencode(apr_pool_t *p, const unsigned char *in, size_t n);

/* The 6-bit value of base64url character `c`, or -1.  Pure. */
int eid_b64url_value(unsigned char c);

/*
 * Strict unpadded base64url: only the URL-safe alphabet (no '=', no
 * whitespace), no length of 4k+1, and the unused low bits of the last
 * character zero, so that every byte string has exactly one accepted
 * encoding.  n == 0 is valid (the empty string).  Returns 1 or 0.  Pure.
 */
int eid_b64url_valid(const char *s, size_t n);

/*
 * Decode `n` characters at `s` into `out` (room for eid_b64url_decoded_len(n)
 * bytes; not NUL-terminated) when they pass eid_b64url_valid(): returns 1
 * and sets *outlen.  Otherwise returns 0, and `out` may hold part of the
 * bytes.
 */
int eid_b64url_decode(const char *s, size_t n, unsigned char *out, size_t *outlen);

/* ---- numbers and levels of assurance ------------------------------------------------ */

/*
 * A whole number written as one or more ASCII digits and nothing else (no
 * sign, no space, no "0x"), within min..max (0 <= min <= max).  Returns 0
 * and sets *out; -1 when `s` is NULL, empty or has another character; -2
 * when the number is outside min..max (also when it would overflow), with
 * *out unchanged.  Leading zeros are allowed ("007" is 7).  Pure.
 */
int eid_uint_parse(const char *s, apr_int64_t min, apr_int64_t max, apr_int64_t *out);


/*
 * A level of assurance written as exactly one ASCII digit from `min` (0 or
 * 1) to 4: "3" is 3; "", " 3", "+3", "03", "3 " and "5" are refused.
 * Returns the level, or -1.  NULL is refused.  Pure.
 */
int eid_loa_parse(const char *s, int min);

/* ---- proleptic Gregorian calendar ---------------------------------------------------- */

/*
 * Days from 1970-01-01 to year `y`, month `m` (1-12), day `d` (1-31) of the
 * proleptic Gregorian calendar; negative before 1970.  Any year, including
 * 0 and negative ones; m and d are not checked (31 February is 3 March).
 */
apr_int64_t eid_days_from_civil(apr_int64_t y, unsigned m, unsigned d);

/* The inverse: the civil date `days` after (negative: before) 1970-01-01. */
void eid_civil_from_days(apr_int64_t days, apr_int64_t *y, unsigned *m, unsigned *d);

/* ---- files ------------------------------------------------------------------------ */

/* eid_file_read() flag: the file is a secret.  Every byte of it that the
 * reader held is wiped before an error is returned, and no stdio buffer
 * (which would be freed unwiped) ever holds it.  On success the caller
 * owns the buffer and must wipe it after use. */
#define EID_FILE_SECRET 1u

/*
 * Read the regular file at `path` whole into `p`: *buf gets its bytes and a
 * NUL, *len their count (0 for an empty file).  At most `max` bytes are
 * accepted (exactly `max` is fine).  A directory, FIFO, device or socket is
 * refused without blocking.  Returns APR_SUCCESS, or
 *   the OS error of open()/read() (APR_ENOENT, APR_EACCES, ...),
 *   APR_EINVAL   not a regular file, or no path given,
 *   APR_ENOSPC   larger than `max`,
 * with *err (when `err` is not NULL) set to a one-line text in `p` that
 * names the path and the reason but never quotes the content:
 *   "cannot open PATH: <strerror>", "PATH is not a regular file",
 *   "cannot read PATH: <strerror>", "PATH is larger than MAX bytes",
 *   "no file name given".
 * On error *buf and *len are left unchanged.  The pool receives about
 * min(size, max) + 1 bytes.
 */
apr_status_t eid_file_read(apr_pool_t *p, const char *path, apr_size_t max, unsigned flags,
                           char **buf, apr_size_t *len, const char **err);

#endif
