/*
 * eid_session.h - browser sessions: the session keys, cookie ids, the store
 * key of a session, the sealed (AES-256-GCM) session record and the sealed
 * pending-login cookie (docs/architecture.md, "Session cookie and keys").
 *
 * Threads: a key set is built once (configuration time) and read-only after;
 * every other function keeps its state on the stack or in the pool it is
 * given and makes its own OpenSSL contexts, so all of it may run in any
 * number of threads at once.  Nothing here writes process-wide state.
 */
#ifndef EID_SESSION_H
#define EID_SESSION_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_time.h>

#include "eid/eid_identity.h"
#include "eid/eid_pending.h"
#include "eid/eid_result.h"

#define EID_SESSION_ID_LEN 32      /* random bytes of a session id */
#define EID_SESSION_COOKIE_LEN 43  /* base64url of the id, no padding */
#define EID_SESSION_STORE_KEY_LEN 45 /* "s:" + 43 base64url characters */
#define EID_SESSION_KEY_ID_LEN 4   /* bytes of a key id in a sealed value */

/* Bounds of the record encoding (eid_session_encode/decode). */
#define EID_SESSION_MAX_ENCODED 32768 /* bytes of a whole encoded record */
#define EID_SESSION_MAX_STRING 16384  /* bytes of one string (an ID token fits) */
#define EID_SESSION_MAX_ITEMS 256     /* members of one string array */

/* Longest pending-login cookie value (characters).  Four of them and the
 * session cookie stay well below httpd's 8190-byte header line. */
#define EID_PENDING_MAX_COOKIE 1500

typedef struct eid_session_keys eid_session_keys_t;

/*
 * Load the session keys from `path`: one or two lines, each exactly 64 hex
 * digits (32 bytes; either case; "\n" or "\r\n" line ends, the last one
 * optional); the first is the current key (seals and opens), the second the
 * previous one (opens only, for rotation).  Refused: a missing or unreadable
 * file, not a regular file, readable by group or others (mode & 077 != 0:
 * it holds a secret), an empty file, a line of another length or with
 * another character, a blank line, more than two lines, the same key twice.
 * Returns NULL and sets *out (allocated in `p`, secrets wiped by a cleanup of
 * `p`), or an error text in `p` that names the file and the problem - never
 * a byte of the key.  The file's bytes are wiped after reading.
 */
const char *eid_session_keys_load(apr_pool_t *p, const char *path, eid_session_keys_t **out);

/* The same from raw 32-byte keys (`prev` may be NULL).  Derives the subkeys
 * (HKDF-SHA256, one per purpose) and the key ids once, here. */
const char *eid_session_keys_from_bytes(apr_pool_t *p, const unsigned char *cur,
                                        const unsigned char *prev, eid_session_keys_t **out);

/* Number of live keys (1 or 2). */
int eid_session_keys_count(const eid_session_keys_t *k);

/* A new session id: EID_SESSION_ID_LEN bytes from OpenSSL's CSPRNG
 * (RAND_bytes).  APR_SUCCESS, or APR_EGENERAL when the CSPRNG fails (never
 * fall back to anything weaker). */
apr_status_t eid_session_new_id(unsigned char id[EID_SESSION_ID_LEN]);

/* A new random token of 32 bytes as 43 base64url characters + NUL (for the
 * CSRF token of a session).  APR_SUCCESS or APR_EGENERAL as above. */
apr_status_t eid_session_new_token(char out[EID_SESSION_COOKIE_LEN + 1]);

/* The cookie value of `id`: 43 base64url characters and a NUL. */
void eid_session_cookie_value(const unsigned char id[EID_SESSION_ID_LEN],
                              char out[EID_SESSION_COOKIE_LEN + 1]);

/*
 * Parse a session cookie value: exactly 43 characters of the base64url
 * alphabet, the last one canonical (its 2 unused bits zero), nothing else
 * (no padding, no space, no quotes) -> 0 and `id` filled.  Anything else
 * -> -1 (`id` may hold garbage).  The work depends only on `len`: every
 * character of a 43-character value is looked at whatever its content.
 */
int eid_session_cookie_parse(const char *v, apr_size_t len, unsigned char id[EID_SESSION_ID_LEN]);

/*
 * The store key of session `id` in virtual host `vhost`:
 * "s:" + base64url(HMAC-SHA256(id-MAC subkey of key `which`, vhost || 0x00 || id)),
 * EID_SESSION_STORE_KEY_LEN characters and a NUL in `out`.  `which` is 0 for
 * the current key, 1 for the previous one.  Returns 0, or -1 when key `which`
 * does not exist or `vhost` is NULL.  Why a MAC: whoever reads the store
 * (a dump, a shared Redis) learns no cookie that would be accepted.
 */
int eid_session_store_key(const eid_session_keys_t *k, int which, const char *vhost,
                          const unsigned char id[EID_SESSION_ID_LEN], char out[48]);

typedef struct eid_session_rec {
    eid_identity_t *id;        /* the identity (compact encoding: every field of eid_identity_t) */
    const char *provider;      /* login provider name */
    const char *sid, *sub;     /* OP's sid (may be NULL) and sub: back-channel logout index */
    const char *id_token;      /* raw ID token for id_token_hint (may be NULL) */
    const char *csrf;          /* 43-char base64url CSRF token for logout POST (or NULL) */
    apr_time_t created, last_seen, expires; /* expires: absolute end */
} eid_session_rec_t;

/*
 * Seal `rec` for the store: eid_session_encode(), then AES-256-GCM with the
 * session subkey of the CURRENT key, a fresh random 96-bit IV, and as AAD
 * format version || key id || "eid-session" || 0x00 || `bind` (the store key).
 * Output in `p`: version byte (1), key id (4), IV (12), ciphertext, tag (16).
 * APR_SUCCESS; APR_EINVAL when the record cannot be encoded (see
 * eid_session_encode) or `bind` is NULL; APR_EGENERAL when OpenSSL fails.
 */
apr_status_t eid_session_seal(apr_pool_t *p, const eid_session_keys_t *k, const char *bind,
                              const eid_session_rec_t *rec, unsigned char **out, apr_size_t *len);

/*
 * Open a sealed record: the key is chosen by the key id (current or
 * previous); any tamper, another bind or purpose, truncation, an unknown
 * version or key id -> -1 with `res` set (EID061xx), never a crash.  On
 * success 0, *out in `p`, and *rotated (if not NULL) 1 when the previous key
 * opened it (the caller re-seals with the current one), else 0.
 */
int eid_session_open(apr_pool_t *p, const eid_session_keys_t *k, const char *bind,
                     const unsigned char *val, apr_size_t len, eid_session_rec_t **out,
                     int *rotated, eid_result_t *res);

/*
 * The plain record codec (no secrets; fuzzed).  Encoding: version byte,
 * then fixed-order fields: small integers as bytes, times as 8-byte
 * big-endian, each string as a 2-byte big-endian length (0xFFFF: NULL) and
 * its bytes, each array as a 2-byte count (0xFFFF: NULL) and its strings.
 * Both sides hold the same rules, so what encodes decodes to an equal record
 * and what decodes re-encodes to the same bytes: every string valid UTF-8
 * without control characters (so no NUL) and at most EID_SESSION_MAX_STRING
 * bytes, no NULL array member, at most EID_SESSION_MAX_ITEMS members, pnr of
 * 12 digits when present, loa 0..4, method a known one, pnr_is_coordination
 * 0/1, csrf 43 base64url characters when present, the whole at most
 * EID_SESSION_MAX_ENCODED bytes, `id` present.
 * encode: APR_SUCCESS, or APR_EINVAL (a rule broken; nothing useful in *out).
 * decode: 0 and *out (every string and array its own copy in `p`), or -1;
 * lengths and counts are checked against the bytes left before use, and
 * nothing may follow the last field.
 */
apr_status_t eid_session_encode(apr_pool_t *p, const eid_session_rec_t *rec, unsigned char **out,
                                apr_size_t *len);
/* eid_session_decode() for plaintext that came out of an AEAD open with our
 * keys (eid_session_open): the same structure checks, but strings are not
 * checked for UTF-8 and control characters again - only the encoder, which
 * checked them, can have made it.  Never for bytes from anywhere else. */
int eid_session_decode_opened(apr_pool_t *p, const unsigned char *buf, apr_size_t len,
                              eid_session_rec_t **out);
int eid_session_decode(apr_pool_t *p, const unsigned char *buf, apr_size_t len,
                       eid_session_rec_t **out);

/*
 * The pending-login codec, the same way: version, min_loa (0..4), created,
 * provider (present, <= 256 bytes, UTF-8 without controls), state, nonce,
 * code_verifier (present, 1..128 characters of RFC 7636's unreserved set),
 * return_to (NULL or <= EID_PENDING_MAX_RETURN bytes, UTF-8 without
 * controls).  APR_SUCCESS / APR_EINVAL; 0 / -1.
 */
apr_status_t eid_pending_encode(apr_pool_t *p, const eid_pending_t *pd, unsigned char **out,
                                apr_size_t *len);
int eid_pending_decode(apr_pool_t *p, const unsigned char *buf, apr_size_t len,
                       eid_pending_t **out);

/*
 * Seal a pending login for its state cookie: eid_pending_encode(), sealed as
 * above with the "state" subkey and AAD ... || "eid-state" || 0x00 || `vhost`,
 * then base64url.  A return_to longer than EID_PENDING_MAX_RETURN, or one
 * that would make the value longer than EID_PENDING_MAX_COOKIE characters,
 * is replaced by "/" (the user lands on the start page, never a cut URL).
 * Returns the NUL-terminated value in `p`, or NULL when `pd` breaks the
 * codec's rules, `vhost` is NULL or OpenSSL fails.
 */
const char *eid_pending_seal(apr_pool_t *p, const eid_session_keys_t *k, const char *vhost,
                             const eid_pending_t *pd);

/*
 * Open a state cookie value (`len` characters): over EID_PENDING_MAX_COOKIE,
 * not base64url, or anything eid_session_open() refuses -> -1 with `res`
 * set.  0 and *out in `p` otherwise.  The caller checks `created` against
 * its login timeout.
 */
int eid_pending_open(apr_pool_t *p, const eid_session_keys_t *k, const char *vhost,
                     const char *cookie, apr_size_t len, eid_pending_t **out, eid_result_t *res);

/* 1 when the session is live at `now`: before its absolute end (`expires`;
 * 0 means no end was set, which is not live) and, when idle > 0, less than
 * `idle` after `last_seen`.  0 otherwise (expired).  Pure. */
int eid_session_live(const eid_session_rec_t *rec, apr_time_t now, apr_interval_time_t idle);

#endif
