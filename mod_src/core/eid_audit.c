/*
 * eid_audit.c - one JSON line per access decision.
 *
 * Formatting is done by hand into a pool buffer rather than through jansson:
 * it runs on every protected request, and building then dumping a json_t
 * tree costs several times more than escaping a dozen strings in place.
 */
#include "eid/eid_audit.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <string.h>

typedef struct {
    apr_pool_t *p;
    char *buf;
    apr_size_t len, cap;
} sbuf_t;

static void sb_reserve(sbuf_t *b, apr_size_t more)
{
    char *nb;
    if (b->len + more <= b->cap)
        return;
    while (b->len + more > b->cap)
        b->cap *= 2;
    nb = apr_palloc(b->p, b->cap);
    memcpy(nb, b->buf, b->len);
    b->buf = nb;
}

static void sb_raw(sbuf_t *b, const char *s, apr_size_t n)
{
    sb_reserve(b, n);
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

#define SB_LIT(b, lit) sb_raw((b), (lit), sizeof(lit) - 1)

/* 1 for the bytes that stand for themselves inside a JSON string: printable
 * ASCII except '"' and '\\'.  A table because this runs over every byte of
 * every audit record (one lookup instead of four compares per byte). */
static const unsigned char json_plain[256] = {
    [0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7e] = 1, /* not '"', '\\' */
};

static void sb_str(sbuf_t *b, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    apr_size_t slen = strlen(str);
    const unsigned char *end = s + slen;

    /* Room for the quotes and every byte as itself; an escape reserves what
     * it adds beyond that, so plain bytes can be copied without checks. */
    sb_reserve(b, slen + 2);
    b->buf[b->len++] = '"';
    while (s < end) {
        int n;
        if (json_plain[*s]) {
            const unsigned char *run = s;
            while (json_plain[*s])
                s++;
            memcpy(b->buf + b->len, run, (apr_size_t)(s - run));
            b->len += (apr_size_t)(s - run);
            continue;
        }
        sb_reserve(b, 6 + (apr_size_t)(end - s) + 1);
        if (*s == '"' || *s == '\\') {
            b->buf[b->len++] = '\\';
            b->buf[b->len++] = (char)*s++;
        }
        else if (*s < 0x20 || *s == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[*s >> 4], hex[*s & 0xf]};
            memcpy(b->buf + b->len, esc, 6);
            b->len += 6;
            s++;
        }
        else if ((n = eid_utf8_seq(s, (size_t)(end - s), NULL)) > 0) {
            memcpy(b->buf + b->len, s, (apr_size_t)n);
            b->len += (apr_size_t)n;
            s += n;
        }
        else {
            memcpy(b->buf + b->len, "\xef\xbf\xbd", 3); /* U+FFFD: a byte that is not UTF-8 */
            b->len += 3;
            s++;
        }
    }
    b->buf[b->len++] = '"';
}

/* ,"key":"value" - skipped when value is NULL. */
static void sb_field(sbuf_t *b, const char *key, const char *value)
{
    if (!value)
        return;
    SB_LIT(b, ",\"");
    sb_raw(b, key, strlen(key));
    SB_LIT(b, "\":");
    sb_str(b, value);
}

static void sb_int(sbuf_t *b, const char *key, long v)
{
    char num[24], *e = num + sizeof(num), *d = e;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do
        *--d = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--d = '-';
    SB_LIT(b, ",\"");
    sb_raw(b, key, strlen(key));
    SB_LIT(b, "\":");
    sb_raw(b, d, (apr_size_t)(e - d));
}

static void sb_list(sbuf_t *b, const char *key, const apr_array_header_t *a)
{
    int i;
    if (!a || a->nelts == 0)
        return;
    SB_LIT(b, ",\"");
    sb_raw(b, key, strlen(key));
    SB_LIT(b, "\":[");
    for (i = 0; i < a->nelts; i++) {
        if (i)
            SB_LIT(b, ",");
        sb_str(b, APR_ARRAY_IDX(a, i, const char *));
    }
    SB_LIT(b, "]");
}

const char *eid_decision_name(eid_decision_e d)
{
    switch (d) {
    case EID_DECISION_ALLOW: return "allow";
    case EID_DECISION_DENY: return "deny";
    case EID_DECISION_AUTHN: return "unauthenticated";
    default: return "error";
    }
}

/* Two digits at d. */
static void put2(char *d, unsigned v)
{
    d[0] = (char)('0' + v / 10 % 10);
    d[1] = (char)('0' + v % 10);
}

/*
 * "YYYY-MM-DDThh:mm:ss.uuuuuuZ" (27 characters and a NUL) for t, in UTC.
 * Computed here rather than with gmtime_r(), which takes glibc's time-zone
 * lock: every request would queue on it.  Years 0..9999 only (an audit
 * time outside is not possible).
 */
static void utc_stamp(apr_time_t t, char out[28])
{
    apr_int64_t us = t % APR_USEC_PER_SEC, secs = t / APR_USEC_PER_SEC;
    apr_int64_t days, sod, y;
    unsigned d, m;
    int i;

    if (us < 0) {
        us += APR_USEC_PER_SEC;
        secs--;
    }
    days = secs / 86400;
    sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    eid_civil_from_days(days, &y, &m, &d);
    if (y < 0)
        y = 0;
    if (y > 9999)
        y = 9999;
    put2(out, (unsigned)(y / 100));
    put2(out + 2, (unsigned)(y % 100));
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = 'T';
    put2(out + 11, (unsigned)(sod / 3600));
    out[13] = ':';
    put2(out + 14, (unsigned)(sod / 60 % 60));
    out[16] = ':';
    put2(out + 17, (unsigned)(sod % 60));
    out[19] = '.';
    for (i = 25; i >= 20; i--, us /= 10)
        out[i] = (char)('0' + us % 10);
    out[26] = 'Z';
    out[27] = '\0';
}

/* The identity's fields, each as ,"key":value. */
static void identity_fields(sbuf_t *b, const eid_identity_t *id, const eid_audit_opts_t *opts)
{
    sb_field(b, "auth_method", eid_method_name(id->method));
    sb_field(b, "profile", id->profile);
    sb_field(b, "issuer", id->issuer);
    sb_field(b, "client_id", id->client_id);
    sb_field(b, "token_id", id->token_id);
    sb_field(b, "hsa_id", id->hsa_id);
    if (id->pnr) {
        if (opts && opts->pseudonymise) {
            if (opts->key)
                sb_field(b, "pnr_pseudonym",
                         eid_pseudonym(b->p, opts->key, opts->key_len, id->pnr));
        }
        else {
            sb_field(b, "pnr", id->pnr);
        }
    }
    sb_field(b, "org_number", id->org_number);
    sb_field(b, "org_hsa_id", id->org_hsa_id);
    sb_field(b, "org_name", id->org_name);
    sb_field(b, "unit_hsa_id", id->unit_hsa_id);
    sb_field(b, "commission_hsa_id", id->commission_hsa_id);
    sb_field(b, "commission_purpose", id->commission_purpose);
    sb_list(b, "roles", id->roles);
    sb_field(b, "org_kind", id->org_kind);
    sb_list(b, "groups", id->groups);
    sb_list(b, "dir_roles", id->dir_roles);
    if (id->loa)
        sb_int(b, "loa", id->loa);
    sb_field(b, "loa_uri", id->loa_uri);
}

const char *eid_audit_identity_format(apr_pool_t *p, const eid_identity_t *id,
                                      const eid_audit_opts_t *opts, apr_size_t *len)
{
    sbuf_t b = {p, NULL, 0, 512};
    b.buf = apr_palloc(p, b.cap);
    identity_fields(&b, id, opts);
    sb_reserve(&b, 1);
    b.buf[b.len] = '\0';
    *len = b.len;
    return b.buf;
}

const char *eid_audit_format(apr_pool_t *p, const eid_audit_rec_t *rec,
                             const eid_audit_opts_t *opts, apr_size_t *len)
{
    sbuf_t b = {p, NULL, 0, 768};
    char ts[28];
    const eid_identity_t *id = rec->id;

    b.buf = apr_palloc(p, b.cap);
    utc_stamp(rec->time, ts);
    SB_LIT(&b, "{\"v\":1,\"time\":\"");
    sb_raw(&b, ts, 27);
    SB_LIT(&b, "\"");
    sb_field(&b, "request_id", rec->request_id);
    sb_field(&b, "server", rec->server);
    sb_field(&b, "client_ip", rec->client_ip);
    sb_field(&b, "http_method", rec->http_method);
    sb_field(&b, "resource", rec->resource);
    sb_field(&b, "decision", eid_decision_name(rec->decision));
    sb_field(&b, "reason", rec->reason);
    sb_field(&b, "tag", rec->tag);
    sb_field(&b, "cert_issuer", rec->cert_issuer);
    sb_field(&b, "revocation", rec->revocation);
    sb_field(&b, "revocation_source", rec->revocation_source);
    sb_field(&b, "cert_serial", rec->cert_serial);
    sb_field(&b, "cert_subject", rec->cert_subject);
    sb_int(&b, "status", rec->status);
    sb_field(&b, "user", rec->user);
    sb_list(&b, "authz", rec->authz);
    if (rec->id_fields)
        sb_raw(&b, rec->id_fields, rec->id_fields_len);
    else if (id)
        identity_fields(&b, id, opts);
    SB_LIT(&b, "}\n");
    sb_reserve(&b, 1);
    b.buf[b.len] = '\0';
    if (len)
        *len = b.len;
    return b.buf;
}
