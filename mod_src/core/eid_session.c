/*
 * eid_session.c - session keys, cookie ids, store keys, AES-256-GCM sealing
 * of session records and pending logins (contracts in eid_session.h; the
 * format is described in docs/architecture.md, "Session cookie and keys").
 *
 * Threads: a key set is written only while it is built; afterwards every
 * request thread reads it.  What OpenSSL needs per operation (cipher and
 * digest contexts) is made per call; the shared pieces are plain bytes and
 * the fetched algorithms (EVP_CIPHER, EVP_MD: immutable once fetched, meant
 * to be shared), so no lock is needed.  Why no shared EVP_MAC_CTX template:
 * OpenSSL documents no concurrent use of a context, not even duplication.
 */
#include "eid/eid_session.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>

#define SEAL_VERSION 1
#define IV_LEN 12
#define TAG_LEN 16
#define HDR_LEN (1 + EID_SESSION_KEY_ID_LEN + IV_LEN)
#define KEY_LEN 32

/* HKDF-SHA256 salt and the info labels of the subkeys.  Why one subkey per
 * purpose: a pending-login blob can never be opened as a session (nor the
 * other way), whatever the AAD says, and the store-key MAC key is never an
 * encryption key. */
static const char kdf_salt[] = "mod_auth_eid session keys v1";
static const char info_session[] = "eid-session seal";
static const char info_state[] = "eid-state seal";
static const char info_mac[] = "eid-session id mac";
static const char info_kid[] = "eid-session key id";

typedef enum { PURPOSE_SESSION = 0, PURPOSE_STATE = 1 } purpose_e;
/* The purpose labels in the AAD (with their NUL, which separates the bind). */
static const char *const purpose_label[2] = {"eid-session", "eid-state"};

typedef struct {
    unsigned char kid[EID_SESSION_KEY_ID_LEN];
    unsigned char enc[2][KEY_LEN]; /* by purpose_e */
    unsigned char ipad[64], opad[64]; /* HMAC-SHA256 (RFC 2104) pads of the id-MAC subkey */
} skey_t;

struct eid_session_keys {
    int n;                 /* 1 or 2 */
    skey_t k[2];           /* [0] current, [1] previous */
    EVP_CIPHER *gcm;       /* AES-256-GCM, fetched once (fetching per call takes a lock) */
    EVP_MD *sha256;        /* likewise, for the store-key HMAC */
};

static apr_status_t keys_cleanup(void *data)
{
    eid_session_keys_t *ks = data;

    EVP_CIPHER_free(ks->gcm);
    EVP_MD_free(ks->sha256);
    /* Why wipe: the pool's memory is reused by later allocations. */
    OPENSSL_cleanse(ks, sizeof(*ks));
    return APR_SUCCESS;
}

static int hkdf(const unsigned char *ikm, const char *info, unsigned char *out, size_t outlen)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[5];
    int ok = 0;

    if (kctx) {
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, KEY_LEN);
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)kdf_salt,
                                                      sizeof(kdf_salt) - 1);
        params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
                                                      strlen(info));
        params[4] = OSSL_PARAM_construct_end();
        ok = EVP_KDF_derive(kctx, out, outlen, params) == 1;
    }
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return ok;
}

static int derive(skey_t *sk, const unsigned char *master)
{
    unsigned char mac[KEY_LEN];
    int i, ok;

    ok = hkdf(master, info_session, sk->enc[PURPOSE_SESSION], KEY_LEN) &&
         hkdf(master, info_state, sk->enc[PURPOSE_STATE], KEY_LEN) &&
         hkdf(master, info_mac, mac, KEY_LEN) &&
         hkdf(master, info_kid, sk->kid, EID_SESSION_KEY_ID_LEN);
    /* The key (32 bytes, under SHA-256's 64-byte block) zero-padded. */
    memset(sk->ipad, 0x36, sizeof(sk->ipad));
    memset(sk->opad, 0x5c, sizeof(sk->opad));
    for (i = 0; i < KEY_LEN; i++) {
        sk->ipad[i] ^= mac[i];
        sk->opad[i] ^= mac[i];
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

const char *eid_session_keys_from_bytes(apr_pool_t *p, const unsigned char *cur,
                                        const unsigned char *prev, eid_session_keys_t **out)
{
    eid_session_keys_t *ks;

    if (!cur)
        return "EID06005 no session key given";
    if (prev && CRYPTO_memcmp(cur, prev, KEY_LEN) == 0)
        return "EID06004 the current and the previous session key are the same: a rotation "
               "needs a new current key";
    ks = apr_pcalloc(p, sizeof(*ks));
    apr_pool_cleanup_register(p, ks, keys_cleanup, apr_pool_cleanup_null);
    ks->n = prev ? 2 : 1;
    if (!(ks->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) ||
        !(ks->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) || !derive(&ks->k[0], cur) ||
        (prev && !derive(&ks->k[1], prev)))
        return "EID06005 the session subkeys could not be derived (OpenSSL failed)";
    /* Two different keys with one id could not be told apart when opening. */
    if (prev && !memcmp(ks->k[0].kid, ks->k[1].kid, EID_SESSION_KEY_ID_LEN))
        return "EID06004 the two session keys have the same key id: make a new current key";
    *out = ks;
    return NULL;
}

int eid_session_keys_count(const eid_session_keys_t *k)
{
    return k ? k->n : 0;
}

/* 0-15, or 16 for a character that is not a hex digit. */
static unsigned hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 16;
}

/* Parse the key file's text: NULL and keys[0..*n) or a message in `p`
 * (naming `path`, never the content). */
static const char *parse_keys(apr_pool_t *p, const char *path, const char *buf, apr_size_t len,
                              unsigned char keys[2][KEY_LEN], int *n)
{
    apr_size_t at = 0;
    int line = 0;

    if (len == 0)
        return apr_psprintf(p, "EID06003 the session key file %s is empty", path);
    while (at < len) {
        apr_size_t end = at, ll, i;
        unsigned bad = 0;

        while (end < len && buf[end] != '\n')
            end++;
        ll = end - at;
        if (ll > 0 && buf[at + ll - 1] == '\r')
            ll--;
        line++;
        if (line > 2)
            return apr_psprintf(p, "EID06003 the session key file %s has more than two lines "
                                   "(one current key, one previous key at most)", path);
        if (ll != 2 * KEY_LEN)
            return apr_psprintf(p, "EID06003 line %d of the session key file %s has %" APR_SIZE_T_FMT
                                   " characters, not 64 hex digits", line, path, ll);
        for (i = 0; i < KEY_LEN; i++) {
            unsigned hi = hexval((unsigned char)buf[at + 2 * i]);
            unsigned lo = hexval((unsigned char)buf[at + 2 * i + 1]);
            bad |= (hi | lo) & 16;
            keys[line - 1][i] = (unsigned char)(hi << 4 | (lo & 15));
        }
        if (bad)
            return apr_psprintf(p, "EID06003 line %d of the session key file %s has a character "
                                   "that is not a hex digit", line, path);
        at = end + 1; /* past the '\n'; a final newline ends the loop */
    }
    *n = line;
    return NULL;
}

const char *eid_session_keys_load(apr_pool_t *p, const char *path, eid_session_keys_t **out)
{
    unsigned char keys[2][KEY_LEN];
    const char *err = NULL;
    struct stat st;
    apr_size_t len;
    char *buf;
    int n = 0;

    if (!path || !*path)
        return "EID06001 no session key file given";
    /* Why before reading: a key others could read must be replaced, not
     * used; the message says so before a byte of it is in memory. */
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
        return apr_psprintf(p, "EID06002 the session key file %s is accessible by group or "
                               "others (mode %04o): make it readable by its owner only "
                               "(chmod 600)", path, (unsigned)(st.st_mode & 07777));
    /* Why 1 KiB and not 132 bytes: a file with a third key should be told
     * "more than two lines", not "too large". */
    if (eid_file_read(p, path, 1024, EID_FILE_SECRET, &buf, &len, &err) !=
        APR_SUCCESS)
        return apr_psprintf(p, "EID06001 session key file: %s", err);
    err = parse_keys(p, path, buf, len, keys, &n);
    OPENSSL_cleanse(buf, len);
    if (!err)
        err = eid_session_keys_from_bytes(p, keys[0], n == 2 ? keys[1] : NULL, out);
    OPENSSL_cleanse(keys, sizeof(keys));
    if (err && !strncmp(err, "EID06004", 8))
        err = apr_psprintf(p, "%s (%s)", err, path);
    return err;
}

/* ---- ids and cookies ---------------------------------------------------------------- */

apr_status_t eid_session_new_id(unsigned char id[EID_SESSION_ID_LEN])
{
    return RAND_bytes(id, EID_SESSION_ID_LEN) == 1 ? APR_SUCCESS : APR_EGENERAL;
}

apr_status_t eid_session_new_token(char out[EID_SESSION_COOKIE_LEN + 1])
{
    unsigned char r[EID_SESSION_ID_LEN];

    if (RAND_bytes(r, sizeof(r)) != 1)
        return APR_EGENERAL;
    eid_b64url_encode(out, r, sizeof(r));
    OPENSSL_cleanse(r, sizeof(r));
    return APR_SUCCESS;
}

void eid_session_cookie_value(const unsigned char id[EID_SESSION_ID_LEN],
                              char out[EID_SESSION_COOKIE_LEN + 1])
{
    eid_b64url_encode(out, id, EID_SESSION_ID_LEN);
}

int eid_session_cookie_parse(const char *v, apr_size_t len, unsigned char id[EID_SESSION_ID_LEN])
{
    unsigned bad = 0, acc = 0, o = 0;
    int i;

    if (!v || len != EID_SESSION_COOKIE_LEN)
        return -1;
    /* Why no early exit: how far a parse got must not show in its time, so
     * that a guessed cookie teaches nothing; every character is looked up
     * in the table and the verdict is folded into `bad`. */
    for (i = 0; i < EID_SESSION_COOKIE_LEN; i++) {
        int c = eid_b64url_value((unsigned char)v[i]);
        bad |= (unsigned)c >> 31; /* -1 for a character outside the alphabet */
        acc = acc << 6 | ((unsigned)c & 63);
        if (i % 4 == 3) {
            id[o++] = (unsigned char)(acc >> 16);
            id[o++] = (unsigned char)(acc >> 8);
            id[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    /* 40 characters made 30 bytes; 3 more carry 18 bits: 16 of data and
     * 2 that must be zero (only one spelling per id). */
    id[o++] = (unsigned char)(acc >> 10);
    id[o] = (unsigned char)(acc >> 2);
    bad |= acc & 3;
    return bad ? -1 : 0;
}

/* HMAC-SHA256 (RFC 2104) of a || b with the key's pads, in a digest
 * context of its own. */
static int hmac(const eid_session_keys_t *k, const skey_t *sk, const void *a, size_t alen,
                const void *b, size_t blen, unsigned char out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char inner[32];
    unsigned int n = 0, m = 0;
    int ok;

    ok = c && EVP_DigestInit_ex2(c, k->sha256, NULL) == 1 &&
         EVP_DigestUpdate(c, sk->ipad, sizeof(sk->ipad)) == 1 &&
         EVP_DigestUpdate(c, a, alen) == 1 && EVP_DigestUpdate(c, b, blen) == 1 &&
         EVP_DigestFinal_ex(c, inner, &n) == 1 && n == 32 &&
         EVP_DigestInit_ex2(c, k->sha256, NULL) == 1 &&
         EVP_DigestUpdate(c, sk->opad, sizeof(sk->opad)) == 1 &&
         EVP_DigestUpdate(c, inner, sizeof(inner)) == 1 &&
         EVP_DigestFinal_ex(c, out, &m) == 1 && m == 32;
    EVP_MD_CTX_free(c);
    return ok;
}

int eid_session_store_key(const eid_session_keys_t *k, int which, const char *vhost,
                          const unsigned char id[EID_SESSION_ID_LEN], char out[48])
{
    unsigned char mac[32];

    if (!k || which < 0 || which >= k->n || !vhost)
        return -1;
    /* vhost || 0x00 || id: the NUL ends the name (a name has none), so no
     * two (vhost, id) pairs give the same input. */
    if (!hmac(k, &k->k[which], vhost, strlen(vhost) + 1, id, EID_SESSION_ID_LEN, mac))
        return -1;
    out[0] = 's';
    out[1] = ':';
    eid_b64url_encode(out + 2, mac, sizeof(mac));
    return 0;
}

/* ---- sealing ---------------------------------------------------------------------- */

/* The AAD: version || key id || purpose label || 0x00 || bind. */
static int put_aad(EVP_CIPHER_CTX *c, const unsigned char *hdr, purpose_e pu, const char *bind)
{
    int ol;

    return EVP_CipherUpdate(c, NULL, &ol, hdr, 1 + EID_SESSION_KEY_ID_LEN) == 1 &&
           EVP_CipherUpdate(c, NULL, &ol, (const unsigned char *)purpose_label[pu],
                            (int)strlen(purpose_label[pu]) + 1) == 1 &&
           EVP_CipherUpdate(c, NULL, &ol, (const unsigned char *)bind, (int)strlen(bind)) == 1;
}

static apr_status_t seal_raw(apr_pool_t *p, const eid_session_keys_t *k, purpose_e pu,
                             const char *bind, const unsigned char *pt, apr_size_t ptlen,
                             unsigned char **out, apr_size_t *olen)
{
    const skey_t *sk;
    EVP_CIPHER_CTX *c;
    unsigned char *b;
    int ol = 0, fl = 0, ok;

    if (!k || !bind || ptlen > INT32_MAX)
        return APR_EINVAL;
    sk = &k->k[0]; /* always the current key */
    b = apr_palloc(p, HDR_LEN + ptlen + TAG_LEN);
    b[0] = SEAL_VERSION;
    memcpy(b + 1, sk->kid, EID_SESSION_KEY_ID_LEN);
    /* Why a random IV per seal: a GCM IV used twice with one key leaks the
     * XOR of the plaintexts and the authentication key; 96 random bits keep
     * that negligible for far more than 2^32 seals per key (NIST SP 800-38D
     * 8.3) - and a key file is rotated long before. */
    if (RAND_bytes(b + 1 + EID_SESSION_KEY_ID_LEN, IV_LEN) != 1)
        return APR_EGENERAL;
    if (!(c = EVP_CIPHER_CTX_new()))
        return APR_EGENERAL;
    ok = EVP_EncryptInit_ex2(c, k->gcm, sk->enc[pu], b + 1 + EID_SESSION_KEY_ID_LEN, NULL) == 1 &&
         put_aad(c, b, pu, bind) &&
         EVP_EncryptUpdate(c, b + HDR_LEN, &ol, pt, (int)ptlen) == 1 &&
         EVP_EncryptFinal_ex(c, b + HDR_LEN + ol, &fl) == 1 &&
         (apr_size_t)(ol + fl) == ptlen &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, b + HDR_LEN + ptlen) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return APR_EGENERAL;
    *out = b;
    *olen = HDR_LEN + ptlen + TAG_LEN;
    return APR_SUCCESS;
}

/* Open a sealed value of purpose `pu`: 0 and the plaintext in `p`, or -1
 * with `res` set.  `max` bounds the plaintext. */
static int open_raw(apr_pool_t *p, const eid_session_keys_t *k, purpose_e pu, const char *bind,
                    const unsigned char *val, apr_size_t len, apr_size_t max,
                    unsigned char **pt, apr_size_t *ptlen, int *rotated, eid_result_t *res)
{
    const skey_t *sk = NULL;
    EVP_CIPHER_CTX *c;
    apr_size_t n;
    unsigned char *b;
    int ol = 0, fl = 0, ok, i;

    if (!k || !bind || !val)
        return eid_fail(res, "EID06107", "no keys, bind or value given"), -1;
    if (len < HDR_LEN + TAG_LEN || len - HDR_LEN - TAG_LEN > max)
        return eid_fail(res, "EID06101", "sealed value of an impossible length (truncated?)"), -1;
    if (val[0] != SEAL_VERSION)
        return eid_fail(res, "EID06102", "sealed value of an unknown format version"), -1;
    for (i = 0; i < k->n; i++)
        if (!memcmp(val + 1, k->k[i].kid, EID_SESSION_KEY_ID_LEN))
            sk = &k->k[i];
    if (!sk)
        return eid_fail(res, "EID06103", "sealed with a key that is no longer live"), -1;
    n = len - HDR_LEN - TAG_LEN;
    b = apr_palloc(p, n + 1);
    if (!(c = EVP_CIPHER_CTX_new()))
        return eid_fail(res, "EID06107", "OpenSSL failed (no cipher context)"), -1;
    ok = EVP_DecryptInit_ex2(c, k->gcm, sk->enc[pu], val + 1 + EID_SESSION_KEY_ID_LEN, NULL) == 1 &&
         put_aad(c, val, pu, bind) &&
         EVP_DecryptUpdate(c, b, &ol, val + HDR_LEN, (int)n) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(val + HDR_LEN + n)) == 1 &&
         EVP_DecryptFinal_ex(c, b + ol, &fl) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return eid_fail(res, "EID06104", "sealed value refused: altered, or sealed for another "
                                         "virtual host, store key or purpose"), -1;
    if (rotated)
        *rotated = sk != &k->k[0];
    *pt = b;
    *ptlen = n;
    return 0;
}

apr_status_t eid_session_seal(apr_pool_t *p, const eid_session_keys_t *k, const char *bind,
                              const eid_session_rec_t *rec, unsigned char **out, apr_size_t *len)
{
    unsigned char *pt;
    apr_size_t ptlen;
    apr_status_t rv;

    if ((rv = eid_session_encode(p, rec, &pt, &ptlen)) != APR_SUCCESS)
        return rv;
    return seal_raw(p, k, PURPOSE_SESSION, bind, pt, ptlen, out, len);
}

int eid_session_open(apr_pool_t *p, const eid_session_keys_t *k, const char *bind,
                     const unsigned char *val, apr_size_t len, eid_session_rec_t **out,
                     int *rotated, eid_result_t *res)
{
    unsigned char *pt;
    apr_size_t ptlen;

    if (rotated)
        *rotated = 0;
    if (open_raw(p, k, PURPOSE_SESSION, bind, val, len, EID_SESSION_MAX_ENCODED, &pt, &ptlen,
                 rotated, res))
        return -1;
    if (eid_session_decode_opened(p, pt, ptlen, out)) {
        /* Nothing was opened: no "rotated" hint that a caller could act on. */
        if (rotated)
            *rotated = 0;
        return eid_fail(res, "EID06105", "sealed session record does not decode"), -1;
    }
    return 0;
}

/* ---- pending login ------------------------------------------------------------------- */

const char *eid_pending_seal(apr_pool_t *p, const eid_session_keys_t *k, const char *vhost,
                             const eid_pending_t *pd)
{
    eid_pending_t copy;
    unsigned char *pt, *sealed;
    apr_size_t ptlen, slen;
    int round;

    if (!pd)
        return NULL;
    copy = *pd;
    if (copy.return_to && strlen(copy.return_to) > EID_PENDING_MAX_RETURN)
        copy.return_to = "/";
    for (round = 0; round < 2; round++) {
        if (eid_pending_encode(p, &copy, &pt, &ptlen) != APR_SUCCESS ||
            seal_raw(p, k, PURPOSE_STATE, vhost, pt, ptlen, &sealed, &slen) != APR_SUCCESS)
            return NULL;
        if (eid_b64url_encoded_len(slen) <= EID_PENDING_MAX_COOKIE)
            return eid_b64url_pencode(p, sealed, slen);
        /* Too long for the cookie: the return-to URL goes, never a cut of it. */
        copy.return_to = "/";
    }
    return NULL;
}

int eid_pending_open(apr_pool_t *p, const eid_session_keys_t *k, const char *vhost,
                     const char *cookie, apr_size_t len, eid_pending_t **out, eid_result_t *res)
{
    unsigned char raw[EID_PENDING_MAX_COOKIE]; /* decodes to 3/4 of the characters */
    unsigned char *pt;
    apr_size_t rlen = 0, ptlen;

    if (!cookie || len > EID_PENDING_MAX_COOKIE || !eid_b64url_decode(cookie, len, raw, &rlen))
        return eid_fail(res, "EID06106", "state cookie is not base64url or too long"), -1;
    if (open_raw(p, k, PURPOSE_STATE, vhost, raw, rlen, EID_PENDING_MAX_COOKIE, &pt, &ptlen,
                 NULL, res))
        return -1;
    if (eid_pending_decode(p, pt, ptlen, out))
        return eid_fail(res, "EID06105", "sealed pending login does not decode"), -1;
    return 0;
}

int eid_session_live(const eid_session_rec_t *rec, apr_time_t now, apr_interval_time_t idle)
{
    if (!rec || rec->expires <= 0 || now >= rec->expires)
        return 0;
    /* Why unsigned: any two 64-bit times differ by less than 2^64, so
     * now - last_seen (when last_seen is not ahead) is exact in unsigned
     * arithmetic, where the signed subtraction could overflow. */
    if (idle > 0 && rec->last_seen <= now &&
        (apr_uint64_t)now - (apr_uint64_t)rec->last_seen >= (apr_uint64_t)idle)
        return 0;
    return 1;
}
