/*
 * eid_oidc_int.h - between the files of eid_oidc (internal to the core).
 */
#ifndef EID_OIDC_INT_H
#define EID_OIDC_INT_H

#include "eid/eid_jwt.h"
#include "eid/eid_oidc.h"
#include "eid_provider_int.h"

/* A strict JSON object (eid_jwt_json_object) of `len` bytes whose
 * reference is dropped by a cleanup of `p`; NULL when not an object. */
json_t *eid_oidc_json(apr_pool_t *p, const char *s, apr_size_t len);

/* json_decref() at the destruction of `p` (no-op for NULL). */
void eid_oidc_keep(apr_pool_t *p, json_t *j);

/* Does `s` (len bytes) have only RFC 6750 b64token / VSCHAR-safe bytes
 * (printable ASCII, no space, quote or backslash)?  For values put into a
 * header or compared as tokens. */
int eid_oidc_printable(const char *s, apr_size_t len);

/*
 * The ID token rules of eid_oidc_redeem() (OpenID Connect Core 3.1.3.7
 * and 3.3.2.11 for at_hash / c_hash).  `code` and `access_token` are the
 * values the hashes cover.  Returns 0 with *out (in `p`), or a code with
 * `res` set.
 */
int eid_oidc_check_id_token(apr_pool_t *p, eid_provider_t *pv, const char *idt,
                            const char *code, const char *access_token,
                            const eid_pending_t *pd, apr_time_t now, eid_jwt_t **out,
                            eid_result_t *res);

/*
 * The userinfo answer for `access_token` at `url`: a JSON object, or
 * (Content-Type application/jwt) a JWS verified like the ID token with iss
 * and aud required, whose sub equals `sub`; the protocol claims are removed.
 * An encrypted answer (JWE) is refused (EID07403).  Returns 0 with *claims
 * (released with `p`), or a code with `res` set.
 */
int eid_oidc_userinfo(apr_pool_t *p, eid_provider_t *pv, const char *url,
                      const char *access_token, const char *sub, apr_time_t now,
                      json_t **claims, eid_result_t *res);

#endif
