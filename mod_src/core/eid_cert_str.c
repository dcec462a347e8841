/*
 * eid_cert_str.c - certificate strings as text: ASN.1 string types to strict,
 * clean UTF-8; distinguished names and serial numbers for identities and logs.
 */
#include "eid_cert_int.h"
#include "eid/eid_util.h"

#include <apr_strings.h>
#include <openssl/bio.h>
#include <string.h>

const char *const eid_cert_str_err_text[] = {"ok", "has a string type that is not allowed",
                                             "is not valid in its encoding",
                                             "contains NUL or a control character"};
const char *const eid_cert_str_err_tag[] = {NULL, "EID02021", "EID02022", "EID02023"};

/* eid_utf8_check() without control characters, as this unit's string
 * error: strict UTF-8 (RFC 3629) and no C0, DEL or C1.  Why C1 as well:
 * U+0085 (NEL) is a line break to some consumers, and none of these has a
 * place in a name or an identifier. */
static eid_cert_str_err_e utf8_check(const unsigned char *s, size_t n)
{
    switch (eid_utf8_check(s, n, EID_UTF8_NO_CONTROLS)) {
    case EID_UTF8_OK: return STR_OK;
    case EID_UTF8_CONTROL: return STR_CONTROL;
    default: return STR_BAD_ENCODING;
    }
}

/* Fixed-width encodings: Latin-1 (T61 as OpenSSL and mod_ssl read it),
 * UCS-2 (BMPString) and UCS-4 (UniversalString), big-endian. */
static eid_cert_str_err_e wide_to_utf8(apr_pool_t *p, const unsigned char *d, size_t n,
                                       size_t width, const char **out)
{
    char *buf, *o;
    size_t i;

    if (n % width)
        return STR_BAD_ENCODING;
    o = buf = apr_palloc(p, n / width * 4 + 1);
    for (i = 0; i < n; i += width) {
        unsigned long cp = 0;
        size_t k;
        for (k = 0; k < width; k++)
            cp = (cp << 8) | d[i + k];
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return STR_BAD_ENCODING;
        if (eid_utf8_is_control((uint32_t)cp))
            return STR_CONTROL;
        o += eid_utf8_put(o, (uint32_t)cp); /* cp is a scalar value: checked above */
    }
    *o = '\0';
    *out = buf;
    return STR_OK;
}

static eid_cert_str_err_e utf8_copy(apr_pool_t *p, const unsigned char *d, size_t n,
                                    const char **out)
{
    eid_cert_str_err_e e = utf8_check(d, n);
    if (e == STR_OK)
        *out = n ? apr_pstrmemdup(p, (const char *)d, n) : "";
    return e;
}

/*
 * An ASN.1 string as UTF-8 in `p`.  Only the string types a name may use are
 * accepted.  Why the 7-bit types are checked for bytes >= 0x80 instead of
 * being read as Latin-1: the same bytes would then mean one text to us and
 * another to a consumer that reads them as UTF-8.
 */
eid_cert_str_err_e eid_cert_asn1_to_utf8(apr_pool_t *p, const ASN1_STRING *a,
                                         const char **out)
{
    const unsigned char *d = ASN1_STRING_get0_data(a);
    int len = ASN1_STRING_length(a);
    size_t n, i;

    *out = NULL;
    if (len < 0 || (len > 0 && !d))
        return STR_BAD_ENCODING;
    n = (size_t)len;
    switch (ASN1_STRING_type(a)) {
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_NUMERICSTRING:
    case V_ASN1_VISIBLESTRING:
        for (i = 0; i < n; i++)
            if (d[i] >= 0x80)
                return STR_BAD_ENCODING;
        return utf8_copy(p, d, n, out); /* 7-bit ASCII is UTF-8 */
    case V_ASN1_UTF8STRING:
        return utf8_copy(p, d, n, out);
    case V_ASN1_T61STRING:
        return wide_to_utf8(p, d, n, 1, out);
    case V_ASN1_BMPSTRING:
        return wide_to_utf8(p, d, n, 2, out);
    case V_ASN1_UNIVERSALSTRING:
        return wide_to_utf8(p, d, n, 4, out);
    default:
        return STR_BAD_TYPE;
    }
}

/* RFC 2253 text of a name, UTF-8 with non-ASCII kept; NULL when OpenSSL
 * cannot render it or the result is not clean UTF-8. */
const char *eid_cert_dn_string(apr_pool_t *p, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *s = NULL;
    char *data;
    long n;

    if (!b)
        return NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
        (n = BIO_get_mem_data(b, &data)) >= 0 &&
        utf8_check((const unsigned char *)data, (size_t)n) == STR_OK)
        s = apr_pstrmemdup(p, n ? data : "", (apr_size_t)n);
    BIO_free(b);
    return s;
}

int eid_cert_is_string_type(int t)
{
    return t == V_ASN1_UTF8STRING || t == V_ASN1_PRINTABLESTRING || t == V_ASN1_IA5STRING ||
           t == V_ASN1_NUMERICSTRING || t == V_ASN1_VISIBLESTRING || t == V_ASN1_T61STRING ||
           t == V_ASN1_BMPSTRING || t == V_ASN1_UNIVERSALSTRING;
}

const char *eid_cert_serial_hex(apr_pool_t *p, const ASN1_INTEGER *sn)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *d = ASN1_STRING_get0_data(sn);
    int n = ASN1_STRING_length(sn), i;
    char *out, *o;

    if (!d || n <= 0)
        return "00";
    o = out = apr_palloc(p, (apr_size_t)n * 2 + 2);
    if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER)
        *o++ = '-';
    for (i = 0; i < n; i++) {
        *o++ = hex[d[i] >> 4];
        *o++ = hex[d[i] & 0xF];
    }
    *o = '\0';
    return out;
}

/* At most EID_CERT_REF_DN_MAX bytes of `s`, cut at a character boundary
 * and marked "..." when cut. */
const char *eid_cert_text_bounded(apr_pool_t *p, const char *s)
{
    size_t n;

    if (!s || strlen(s) <= EID_CERT_REF_DN_MAX)
        return s;
    n = EID_CERT_REF_DN_MAX - 3;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* not inside a multi-byte sequence */
    return apr_pstrcat(p, apr_pstrmemdup(p, s, n), "...", NULL);
}

/* A DN for a log line: clean UTF-8 (eid_cert_dn_string), bounded. */
const char *eid_cert_dn_bounded(apr_pool_t *p, const X509_NAME *name)
{
    return eid_cert_text_bounded(p, eid_cert_dn_string(p, name));
}
