/*
 * eid_http.h - bounded HTTP GET/POST for the few fetches the core makes
 * (discovery documents, key sets, token introspection).
 *
 * Every transfer is bounded: http/https only, a total and a connect
 * timeout, a maximum body size (the transfer is aborted as soon as it is
 * exceeded), no redirects unless asked for, TLS peer and host verification
 * always on.  Blocking; meant for rare calls, never for the per-request path
 * except token introspection (whose results are cached).
 */
#ifndef EID_HTTP_H
#define EID_HTTP_H

#include <apr_pools.h>
#include <apr_time.h>

#include "eid/eid_result.h"

typedef struct eid_http_opts {
    apr_interval_time_t timeout;         /* whole transfer, > 0 */
    apr_interval_time_t connect_timeout; /* TCP + TLS handshake, > 0 */
    apr_size_t max_bytes;                /* response body limit, > 0 */
    int max_redirects;                   /* 0 (default): a 3xx is returned as is */
    const char *ca_file;                 /* PEM trust anchors; NULL: system store */
} eid_http_opts_t;

typedef struct eid_http_resp {
    long status;              /* HTTP status code */
    char *body;               /* NUL-terminated (the NUL is not counted), in the pool */
    apr_size_t len;
    const char *content_type; /* NULL when absent */
} eid_http_resp_t;

/* Defaults: 3 s total, 2 s connect, 256 KiB, no redirects, system CAs. */
#define EID_HTTP_DEFAULT_TIMEOUT apr_time_from_sec(3)
#define EID_HTTP_DEFAULT_CONNECT_TIMEOUT apr_time_from_sec(2)
#define EID_HTTP_DEFAULT_MAX_BYTES (256 * 1024)

/* Fill `o` with the defaults above. */
void eid_http_opts_default(eid_http_opts_t *o);

/*
 * Initialise libcurl once per process.  Call from the parent at start-up,
 * before threads exist (curl_global_init is not thread-safe everywhere).
 * Returns APR_SUCCESS or APR_EGENERAL.  Idempotent.
 */
apr_status_t eid_http_global_init(void);

/*
 * Is `url` acceptable as a fetch target?  https with a host, or http to a
 * loopback host (127.0.0.0/8, ::1, localhost) only - keys and introspection
 * answers fetched over plain HTTP from elsewhere could be forged by anyone on
 * the path.  Returns NULL when fine, else a short reason (static string).
 */
const char *eid_http_url_check(const char *url);

/*
 * GET `url`.  Returns APR_SUCCESS when a complete response arrived (any
 * status: the caller judges it), otherwise an error with `res` set:
 * EID03601 bad URL, EID03602 transfer failed, EID03603 timeout, EID03604 body
 * over the limit, EID03605 TLS verification failed, EID03606 internal.
 * The body and headers live in `p`.  Thread-safe (one curl handle per call).
 */
apr_status_t eid_http_get(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                          eid_http_resp_t *out, eid_result_t *res);

/*
 * GET `url` with "Authorization: Bearer <token>" (RFC 6750 2.1; the OIDC
 * userinfo endpoint).  A token with a space or control character is not
 * sent (EID03601).  Returns and fills as eid_http_get().  Thread-safe.
 */
apr_status_t eid_http_get_bearer(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                                 const char *token, eid_http_resp_t *out, eid_result_t *res);

/*
 * POST `form` (application/x-www-form-urlencoded, `form_len` bytes) to `url`,
 * with HTTP Basic authentication when `user` is non-NULL (`user` and `pass`
 * are sent as given: encode them first where a protocol demands it).
 * Returns and fills as eid_http_get().  Thread-safe.
 */
apr_status_t eid_http_post_form(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                                const char *form, apr_size_t form_len, const char *user,
                                const char *pass, eid_http_resp_t *out, eid_result_t *res);

/*
 * As eid_http_url_check(), but plain http is allowed to any host: an OCSP
 * answer is signed and checked by the caller (RFC 6960 responders are
 * commonly plain http, e.g. the ones named in SITHS certificates).
 */
const char *eid_http_ocsp_url_check(const char *url);

/*
 * POST the DER OCSP request `der` (`len` bytes, application/ocsp-request,
 * RFC 6960 appendix A) to `url` (checked with eid_http_ocsp_url_check()).
 * Returns and fills as eid_http_get().  Thread-safe.
 */
apr_status_t eid_http_post_ocsp(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                                const unsigned char *der, apr_size_t len, eid_http_resp_t *out,
                                eid_result_t *res);

/*
 * GET a signed object (a CRL) from `url`, checked with
 * eid_http_ocsp_url_check(): plain http to any host, since the caller checks
 * the signature (CRL distribution points are commonly plain http).  Returns
 * and fills as eid_http_get().  Thread-safe.
 */
apr_status_t eid_http_get_signed(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                                 eid_http_resp_t *out, eid_result_t *res);

/*
 * application/x-www-form-urlencoded encoding of `len` bytes of `s` (unreserved
 * characters kept, space as '+', everything else %XX), in `p`.
 */
char *eid_http_form_encode(apr_pool_t *p, const char *s, apr_size_t len);

#endif
