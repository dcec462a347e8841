/*
 * eid_http.c - bounded HTTP over libcurl (easy interface, one handle per
 * call).
 */
#include "eid/eid_http.h"

#include <apr_strings.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Body accumulator; malloc'd so a large aborted transfer does not leave its
 * growth steps behind in the caller's pool. */
typedef struct sink {
    char *buf;
    apr_size_t len, cap, max;
    int over;
} sink_t;

/* libcurl's global state is set up once per process (pthread_once: the
 * parent does it at start-up; a late first call from a worker thread must
 * not race with another).  After that, each fetch has its own easy handle:
 * nothing of libcurl is shared between threads. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ready; /* written only inside curl_once */

static void curl_init_once(void)
{
    curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void eid_http_opts_default(eid_http_opts_t *o)
{
    o->timeout = EID_HTTP_DEFAULT_TIMEOUT;
    o->connect_timeout = EID_HTTP_DEFAULT_CONNECT_TIMEOUT;
    o->max_bytes = EID_HTTP_DEFAULT_MAX_BYTES;
    o->max_redirects = 0;
    o->ca_file = NULL;
}

apr_status_t eid_http_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
    return curl_ready ? APR_SUCCESS : APR_EGENERAL;
}

static int is_loopback(const char *host)
{
    if (!strcasecmp(host, "localhost") || !strcmp(host, "[::1]"))
        return 1;
    /* 127.0.0.0/8 written as a dotted quad; curl has normalised the host. */
    if (!strncmp(host, "127.", 4)) {
        const char *s = host + 4;
        int dots = 0;
        for (; *s; s++) {
            if (*s == '.')
                dots++;
            else if (*s < '0' || *s > '9')
                return 0;
        }
        return dots == 2;
    }
    return 0;
}

/* allow_plain_http: the payload carries its own signature (OCSP). */
static const char *url_check(const char *url, int allow_plain_http)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL;
    const char *why = NULL;

    if (!url || !*url)
        return "empty URL";
    u = curl_url();
    if (!u)
        return "out of memory";
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        why = "not an absolute URL";
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        why = "URL without scheme or host";
    else if (strcasecmp(scheme, "https") && strcasecmp(scheme, "http"))
        why = "only http and https URLs are fetched";
    else if (!strcasecmp(scheme, "http") && !allow_plain_http && !is_loopback(host))
        why = "plain http is only allowed to a loopback host: use https";
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return why;
}

const char *eid_http_url_check(const char *url)
{
    return url_check(url, 0);
}

const char *eid_http_ocsp_url_check(const char *url)
{
    return url_check(url, 1);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *baton)
{
    sink_t *s = baton;
    size_t n = size * nmemb;

    /* Why abort here and not after the transfer: a hostile or broken server
     * may send gigabytes (or never stop); returning a short count makes curl
     * fail the transfer at once with CURLE_WRITE_ERROR. */
    if (n > s->max - s->len) {
        s->over = 1;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        apr_size_t cap = s->cap ? s->cap : 4096;
        char *nb;
        while (cap < s->len + n + 1)
            cap *= 2;
        if (cap > s->max + 1)
            cap = s->max + 1;
        nb = realloc(s->buf, cap);
        if (!nb)
            return 0;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return n;
}

static long ms(apr_interval_time_t t)
{
    long v = (long)(t / 1000);
    return v > 0 ? v : 1;
}

/* ctype_hdr is set by the fetches of signed objects only (the OCSP POST; ""
 * for the CRL GET, no header): the answer is signed and checked, so plain
 * http to any host is allowed for it (eid_http_ocsp_url_check).
 * auth_hdr ("Authorization: Bearer ...") by eid_http_get_bearer() only. */
static apr_status_t perform(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                            const char *form, apr_size_t form_len, const char *user,
                            const char *pass, const char *ctype_hdr, eid_http_resp_t *out,
                            eid_result_t *res, const char *auth_hdr)
{
    CURL *c = NULL;
    struct curl_slist *hdrs = NULL;
    sink_t s = {NULL, 0, 0, o->max_bytes, 0};
    char errbuf[CURL_ERROR_SIZE];
    const char *why;
    char *ctype = NULL;
    apr_status_t rv = APR_EGENERAL;
    CURLcode cc;

    memset(out, 0, sizeof(*out));
    if ((why = url_check(url, ctype_hdr != NULL)) != NULL) {
        eid_result_set(res, p, 3601, "EID03601", "refusing to fetch: %s", why);
        return APR_EINVAL;
    }
    if (eid_http_global_init() != APR_SUCCESS) {
        eid_result_set(res, NULL, 3606, "EID03606", "libcurl could not be initialised");
        return APR_EGENERAL;
    }
    c = curl_easy_init();
    if (!c) {
        eid_result_set(res, NULL, 3606, "EID03606", "libcurl handle could not be created");
        return APR_ENOMEM;
    }
    errbuf[0] = '\0';
    hdrs = curl_slist_append(hdrs, ctype_hdr ? "Accept: */*" : "Accept: application/json");
    if (ctype_hdr && *ctype_hdr)
        hdrs = curl_slist_append(hdrs, ctype_hdr);
    if (auth_hdr)
        hdrs = curl_slist_append(hdrs, auth_hdr);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, o->max_redirects > 0 ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)o->max_redirects);
    /* Why NOSIGNAL: httpd workers are threads; curl must not use SIGALRM. */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms(o->timeout));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms(o->connect_timeout));
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mod_auth_eid");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (form) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)form_len);
    }
    if (user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, pass ? pass : "");
    }

    cc = curl_easy_perform(c);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype)
            out->content_type = apr_pstrdup(p, ctype);
        out->body = apr_palloc(p, s.len + 1);
        if (s.len)
            memcpy(out->body, s.buf, s.len);
        out->body[s.len] = '\0';
        out->len = s.len;
        rv = APR_SUCCESS;
    }
    else if (s.over || cc == CURLE_FILESIZE_EXCEEDED) {
        eid_result_set(res, p, 3604, "EID03604", "response from %s larger than %" APR_SIZE_T_FMT
                       " bytes", url, o->max_bytes);
        rv = APR_ENOSPC;
    }
    else if (cc == CURLE_OPERATION_TIMEDOUT) {
        eid_result_set(res, p, 3603, "EID03603", "fetching %s timed out", url);
        rv = APR_TIMEUP;
    }
    else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
             cc == CURLE_SSL_CERTPROBLEM) {
        eid_result_set(res, p, 3605, "EID03605", "TLS verification failed for %s: %s", url,
                       errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rv = APR_EGENERAL;
    }
    else {
        eid_result_set(res, p, 3602, "EID03602", "fetching %s failed: %s", url,
                       errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rv = APR_EGENERAL;
    }
    free(s.buf);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rv;
}

apr_status_t eid_http_get(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                          eid_http_resp_t *out, eid_result_t *res)
{
    return perform(p, url, o, NULL, 0, NULL, NULL, NULL, out, res, NULL);
}

apr_status_t eid_http_get_bearer(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                                 const char *token, eid_http_resp_t *out, eid_result_t *res)
{
    const char *s;
    /* Why checked here: a CR or LF in the token would add header lines. */
    for (s = token; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            memset(out, 0, sizeof(*out));
            eid_result_set(res, NULL, 3601, "EID03601", "refusing to send a bearer token "
                           "with spaces or control characters");
            return APR_EINVAL;
        }
    return perform(p, url, o, NULL, 0, NULL, NULL, NULL, out, res,
                   apr_pstrcat(p, "Authorization: Bearer ", token, NULL));
}

apr_status_t eid_http_post_form(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                                const char *form, apr_size_t form_len, const char *user,
                                const char *pass, eid_http_resp_t *out, eid_result_t *res)
{
    return perform(p, url, o, form ? form : "", form ? form_len : 0, user, pass, NULL, out,
                   res, NULL);
}

apr_status_t eid_http_post_ocsp(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                                const unsigned char *der, apr_size_t len, eid_http_resp_t *out,
                                eid_result_t *res)
{
    return perform(p, url, o, (const char *)der, len, NULL, NULL,
                   "Content-Type: application/ocsp-request", out, res, NULL);
}

apr_status_t eid_http_get_signed(apr_pool_t *p, const char *url, const eid_http_opts_t *o,
                                 eid_http_resp_t *out, eid_result_t *res)
{
    return perform(p, url, o, NULL, 0, NULL, NULL, "", out, res, NULL);
}

char *eid_http_form_encode(apr_pool_t *p, const char *s, apr_size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, len * 3 + 1), *o = out;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '*')
            *o++ = (char)c;
        else if (c == ' ')
            *o++ = '+';
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}
