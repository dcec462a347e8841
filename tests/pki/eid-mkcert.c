/*
 * eid-mkcert: a certificate generator for the test PKI, with byte-level
 * control over what goes into the certificate.
 *
 * The whole TBSCertificate is encoded here, by hand, in DER; OpenSSL only
 * generates and loads keys, names OIDs, hashes and signs.  That is the point:
 * OpenSSL's own X509 builder canonicalises the subject name when it encodes
 * it and refuses a UTF8String that is not UTF-8, and neither it nor the
 * openssl command line lets a NUL, a CR/LF, a chosen string type, a repeated
 * attribute or a multi-valued RDN through unchanged.  Here every attribute
 * value is written exactly as given.
 *
 *   eid-mkcert --out CERT.pem [options]          (run with --help for the list)
 *
 * Test material only: keys are written unencrypted (mode 0600).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_ATTRS 64
#define MAX_LIST 32

/* DER tags used below */
enum {
    T_BOOLEAN = 0x01, T_INTEGER = 0x02, T_BITSTRING = 0x03, T_OCTETSTRING = 0x04,
    T_NULL = 0x05, T_OID = 0x06, T_UTF8 = 0x0c, T_NUMERIC = 0x12, T_PRINTABLE = 0x13,
    T_T61 = 0x14, T_IA5 = 0x16, T_UTCTIME = 0x17, T_GENTIME = 0x18, T_VISIBLE = 0x1a,
    T_UNIVERSAL = 0x1c, T_BMP = 0x1e, T_SEQUENCE = 0x30, T_SET = 0x31,
};

static const char *prog = "eid-mkcert";

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    unsigned long e;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    while ((e = ERR_get_error()) != 0) {
        char msg[256];
        ERR_error_string_n(e, msg, sizeof(msg));
        fprintf(stderr, "  openssl: %s\n", msg);
    }
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die("out of memory");
    return q;
}

/* ---- a growable byte buffer and DER primitives ---------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf_t;

static void buf_put(buf_t *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void buf_byte(buf_t *b, unsigned char c)
{
    buf_put(b, &c, 1);
}

static void buf_free(buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static void der_len(buf_t *b, size_t n)
{
    unsigned char tmp[sizeof(size_t)];
    size_t k = 0;

    if (n < 0x80) {
        buf_byte(b, (unsigned char)n);
        return;
    }
    while (n) {
        tmp[k++] = (unsigned char)(n & 0xff);
        n >>= 8;
    }
    buf_byte(b, (unsigned char)(0x80 | k));
    while (k)
        buf_byte(b, tmp[--k]);
}

static void der_tlv(buf_t *b, unsigned char tag, const void *v, size_t n)
{
    buf_byte(b, tag);
    der_len(b, n);
    buf_put(b, v, n);
}

/* Appends tag+len+content to b and frees content. */
static void der_wrap(buf_t *b, unsigned char tag, buf_t *content)
{
    der_tlv(b, tag, content->p, content->n);
    buf_free(content);
}

/* OID by short name, long name or dotted text, DER-encoded (tag included). */
static void der_oid(buf_t *b, const char *txt)
{
    ASN1_OBJECT *o = OBJ_txt2obj(txt, 0);
    unsigned char *der = NULL;
    int n;

    if (!o)
        die("unknown object name or OID '%s'", txt);
    n = i2d_ASN1_OBJECT(o, &der);
    if (n <= 0)
        die("cannot encode OID '%s'", txt);
    buf_put(b, der, (size_t)n);
    OPENSSL_free(der);
    ASN1_OBJECT_free(o);
}

/* Unsigned big-endian magnitude as a DER INTEGER. */
static void der_uint(buf_t *b, const unsigned char *mag, size_t n)
{
    buf_t c = {0};

    while (n > 1 && mag[0] == 0) {
        mag++;
        n--;
    }
    if (n == 0 || (mag[0] & 0x80))
        buf_byte(&c, 0);
    buf_put(&c, mag, n);
    der_wrap(b, T_INTEGER, &c);
}

static void der_small_uint(buf_t *b, unsigned long v)
{
    unsigned char m[sizeof(v)];
    size_t i;

    for (i = 0; i < sizeof(v); i++)
        m[i] = (unsigned char)(v >> (8 * (sizeof(v) - 1 - i)));
    der_uint(b, m, sizeof(v));
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex digits, optionally separated by ':' or spaces, into bytes. */
static unsigned char *parse_hex(const char *s, size_t *outlen, const char *what)
{
    unsigned char *out = xrealloc(NULL, strlen(s) / 2 + 1);
    size_t n = 0;
    int hi = -1;

    for (; *s; s++) {
        int v;
        if (*s == ':' || *s == ' ')
            continue;
        if ((v = hexval((unsigned char)*s)) < 0)
            die("%s: '%c' is not a hex digit", what, *s);
        if (hi < 0) {
            hi = v;
        }
        else {
            out[n++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0)
        die("%s: odd number of hex digits", what);
    *outlen = n;
    return out;
}

/* ---- UTF-8 to UCS-2 / UCS-4 for BMPString and UniversalString ------------------- */

static unsigned long utf8_next(const unsigned char **ps, const unsigned char *end)
{
    const unsigned char *s = *ps;
    unsigned long cp;
    int need, i;

    if (*s < 0x80) {
        *ps = s + 1;
        return *s;
    }
    if ((*s & 0xe0) == 0xc0)
        need = 1, cp = *s & 0x1f;
    else if ((*s & 0xf0) == 0xe0)
        need = 2, cp = *s & 0x0f;
    else if ((*s & 0xf8) == 0xf0)
        need = 3, cp = *s & 0x07;
    else
        die("argument is not valid UTF-8 (use the -hex form for raw bytes)");
    if (end - s <= need)
        die("argument ends inside a UTF-8 sequence (use the -hex form for raw bytes)");
    for (i = 1; i <= need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            die("argument is not valid UTF-8 (use the -hex form for raw bytes)");
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *ps = s + need + 1;
    return cp;
}

static unsigned char *utf8_to_wide(const char *in, size_t len, int width, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in, *end = s + len;
    unsigned char *out = xrealloc(NULL, len * (size_t)width + 1);
    size_t n = 0;
    int k;

    while (s < end) {
        unsigned long cp = utf8_next(&s, end);
        if (width == 2 && cp > 0xffff)
            die("U+%lX does not fit a BMPString", cp);
        for (k = width - 1; k >= 0; k--)
            out[n++] = (unsigned char)(cp >> (8 * k));
    }
    *outlen = n;
    return out;
}

/* ---- the subject ------------------------------------------------------------------ */

typedef struct {
    char *oid;           /* as given: CN, serialNumber, 2.5.4.5, ... */
    unsigned char tag;   /* ASN.1 string tag */
    unsigned char *val;  /* exact content octets */
    size_t len;
    int rdn;             /* index of the RDN it belongs to */
} attr_t;

static const struct {
    const char *name;
    unsigned char tag;
} string_types[] = {
    {"utf8", T_UTF8},           {"printable", T_PRINTABLE}, {"ia5", T_IA5},
    {"t61", T_T61},             {"teletex", T_T61},         {"bmp", T_BMP},
    {"universal", T_UNIVERSAL}, {"numeric", T_NUMERIC},     {"visible", T_VISIBLE},
};

/* What X.520 / PKCS#9 prescribe, when the spec does not name a type. */
static unsigned char default_tag(const char *oid)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 0);
    int nid = o ? OBJ_obj2nid(o) : NID_undef;

    ASN1_OBJECT_free(o);
    if (nid == NID_countryName || nid == NID_serialNumber || nid == NID_dnQualifier)
        return T_PRINTABLE;
    if (nid == NID_pkcs9_emailAddress || nid == NID_domainComponent)
        return T_IA5;
    return T_UTF8;
}

/* "[TYPE:]NAME=VALUE": VALUE taken literally (or as hex when hex is set). */
static void parse_attr(const char *spec, int hex, int same_rdn, attr_t *attrs, int *nattrs)
{
    const char *eq = strchr(spec, '='), *name = spec, *colon;
    attr_t *a;
    size_t i;
    int have_type = 0;

    if (*nattrs >= MAX_ATTRS)
        die("too many subject attributes");
    if (!eq || eq == spec)
        die("subject attribute '%s': expected [TYPE:]NAME=VALUE", spec);
    a = &attrs[*nattrs];
    memset(a, 0, sizeof(*a));
    colon = memchr(spec, ':', (size_t)(eq - spec));
    if (colon) {
        for (i = 0; i < sizeof(string_types) / sizeof(string_types[0]); i++)
            if (strlen(string_types[i].name) == (size_t)(colon - spec) &&
                !strncmp(spec, string_types[i].name, (size_t)(colon - spec))) {
                a->tag = string_types[i].tag;
                have_type = 1;
            }
        if (!have_type)
            die("subject attribute '%s': unknown string type (utf8, printable, ia5, t61, "
                "bmp, universal, numeric, visible)", spec);
        name = colon + 1;
    }
    if (name == eq)
        die("subject attribute '%s': no attribute name", spec);
    a->oid = strndup(name, (size_t)(eq - name));
    if (!a->oid)
        die("out of memory");
    if (!have_type)
        a->tag = default_tag(a->oid);
    {
        ASN1_OBJECT *o = OBJ_txt2obj(a->oid, 0);
        if (!o)
            die("subject attribute '%s': unknown attribute '%s'", spec, a->oid);
        ASN1_OBJECT_free(o);
    }
    if (hex)
        a->val = parse_hex(eq + 1, &a->len, spec);
    else if (a->tag == T_BMP || a->tag == T_UNIVERSAL)
        a->val = utf8_to_wide(eq + 1, strlen(eq + 1), a->tag == T_BMP ? 2 : 4, &a->len);
    else {
        a->len = strlen(eq + 1);
        a->val = xrealloc(NULL, a->len + 1);
        memcpy(a->val, eq + 1, a->len);
    }
    if (same_rdn) {
        if (*nattrs == 0)
            die("--same-rdn: no previous attribute to share an RDN with");
        a->rdn = attrs[*nattrs - 1].rdn;
    }
    else {
        a->rdn = *nattrs ? attrs[*nattrs - 1].rdn + 1 : 0;
    }
    (*nattrs)++;
}

typedef struct {
    unsigned char *p;
    size_t n;
} blob_t;

/* DER order for SET OF: as octet strings, the shorter padded with zeros. */
static int blob_cmp(const void *x, const void *y)
{
    const blob_t *a = x, *b = y;
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->p, b->p, n);

    if (c)
        return c;
    return a->n < b->n ? -1 : a->n > b->n;
}

static void encode_name(buf_t *out, const attr_t *attrs, int n)
{
    buf_t seq = {0};
    int i = 0;

    while (i < n) {
        blob_t members[MAX_ATTRS];
        buf_t set = {0};
        int rdn = attrs[i].rdn, m = 0, k;

        for (; i < n && attrs[i].rdn == rdn; i++) {
            buf_t atv = {0}, tmp = {0};
            der_oid(&atv, attrs[i].oid);
            der_tlv(&atv, attrs[i].tag, attrs[i].val, attrs[i].len);
            der_wrap(&tmp, T_SEQUENCE, &atv);
            members[m].p = tmp.p;
            members[m].n = tmp.n;
            m++;
        }
        qsort(members, (size_t)m, sizeof(members[0]), blob_cmp);
        for (k = 0; k < m; k++) {
            buf_put(&set, members[k].p, members[k].n);
            free(members[k].p);
        }
        der_wrap(&seq, T_SET, &set);
    }
    der_wrap(out, T_SEQUENCE, &seq);
}

/* ---- extensions ------------------------------------------------------------------- */

static void add_ext(buf_t *exts, const char *oid, int critical, buf_t *value)
{
    buf_t e = {0};

    der_oid(&e, oid);
    if (critical)
        der_tlv(&e, T_BOOLEAN, "\xff", 1);
    der_wrap(&e, T_OCTETSTRING, value);
    der_wrap(exts, T_SEQUENCE, &e);
}

static const char *const ku_names[] = {
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
    "keyAgreement",     "keyCertSign",    "cRLSign",         "encipherOnly",
    "decipherOnly",
};

static void ext_key_usage(buf_t *exts, const char *list)
{
    char *copy = strdup(list), *tok, *save = NULL;
    unsigned bits = 0, i;
    int hi = -1;
    unsigned char v[3];
    buf_t val = {0};

    if (!copy)
        die("out of memory");
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        for (i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]); i++)
            if (!strcmp(tok, ku_names[i]))
                break;
        if (i == sizeof(ku_names) / sizeof(ku_names[0]))
            die("--key-usage: unknown usage '%s'", tok);
        bits |= 1u << i;
        if ((int)i > hi)
            hi = (int)i;
    }
    free(copy);
    /* named bit list in DER: trailing zero bits dropped */
    if (hi < 0) {
        v[0] = 0;
        der_tlv(&val, T_BITSTRING, v, 1);
    }
    else {
        size_t nbytes = (size_t)hi / 8 + 1;
        v[0] = (unsigned char)(7 - hi % 8);
        v[1] = v[2] = 0;
        for (i = 0; i < 9; i++)
            if (bits & (1u << i))
                v[1 + i / 8] |= (unsigned char)(0x80 >> (i % 8));
        der_tlv(&val, T_BITSTRING, v, nbytes + 1);
    }
    add_ext(exts, "keyUsage", 1, &val);
}

static void ext_oid_list(buf_t *exts, const char *ext, char *const *oids, int n,
                         int policy)
{
    buf_t seq = {0}, val = {0};
    int i;

    for (i = 0; i < n; i++) {
        if (policy) {
            buf_t pi = {0};
            der_oid(&pi, oids[i]);
            der_wrap(&seq, T_SEQUENCE, &pi);
        }
        else {
            der_oid(&seq, oids[i]);
        }
    }
    der_wrap(&val, T_SEQUENCE, &seq);
    add_ext(exts, ext, 0, &val);
}

/* ---- keys ------------------------------------------------------------------------- */

static EVP_PKEY *gen_key(const char *type)
{
    EVP_PKEY *k = NULL;

    if (!strcmp(type, "rsa") || !strcmp(type, "rsa2048"))
        k = EVP_RSA_gen(2048);
    else if (!strcmp(type, "ec") || !strcmp(type, "p256"))
        k = EVP_EC_gen("P-256");
    else
        die("--key-type: '%s' is neither rsa (RSA-2048) nor ec (P-256)", type);
    if (!k)
        die("key generation failed");
    return k;
}

static FILE *open_out(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    FILE *f;

    if (fd < 0)
        die("%s: %s", path, strerror(errno));
    if (fchmod(fd, mode) != 0)
        die("%s: %s", path, strerror(errno));
    if (!(f = fdopen(fd, "w")))
        die("%s: %s", path, strerror(errno));
    return f;
}

static void close_out(FILE *f, const char *path)
{
    if (ferror(f) | fclose(f))
        die("%s: write error", path);
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;

    if (!f)
        die("%s: %s", path, strerror(errno));
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k)
        die("%s: no private key", path);
    return k;
}

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;

    if (!f)
        die("%s: %s", path, strerror(errno));
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x)
        die("%s: no certificate", path);
    return x;
}

/* RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
static void key_id(EVP_PKEY *k, unsigned char out[20])
{
    X509_PUBKEY *xp = NULL;
    const unsigned char *pk;
    int pklen;
    unsigned int mdlen = 20;

    if (!X509_PUBKEY_set(&xp, k) || !X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, xp) ||
        !EVP_Digest(pk, (size_t)pklen, out, &mdlen, EVP_sha1(), NULL))
        die("cannot compute a key identifier");
    X509_PUBKEY_free(xp);
}

/* AlgorithmIdentifier for SHA-256 with the signer's key type. */
static void sig_alg(buf_t *b, EVP_PKEY *signer)
{
    buf_t a = {0};

    if (EVP_PKEY_is_a(signer, "RSA")) {
        der_oid(&a, "sha256WithRSAEncryption");
        der_tlv(&a, T_NULL, "", 0);
    }
    else if (EVP_PKEY_is_a(signer, "EC")) {
        der_oid(&a, "ecdsa-with-SHA256");
    }
    else {
        die("signing key is neither RSA nor EC");
    }
    der_wrap(b, T_SEQUENCE, &a);
}

static void der_time(buf_t *b, long days)
{
    time_t t = time(NULL) + (time_t)days * 86400;
    struct tm tm;
    char s[32];

    if (!gmtime_r(&t, &tm))
        die("time out of range");
    if (tm.tm_year + 1900 >= 1950 && tm.tm_year + 1900 < 2050) {
        strftime(s, sizeof(s), "%y%m%d%H%M%SZ", &tm);
        der_tlv(b, T_UTCTIME, s, strlen(s));
    }
    else {
        strftime(s, sizeof(s), "%Y%m%d%H%M%SZ", &tm);
        der_tlv(b, T_GENTIME, s, strlen(s));
    }
}

static long parse_days(const char *s, const char *opt)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -36500 || v > 36500)
        die("%s: '%s' is not a number of days (-36500..36500)", opt, s);
    return v;
}

/* ---- command line ----------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
"usage: %s --out CERT.pem [options]\n"
"\n"
"Key (one of):\n"
"  --key-type rsa|ec           generate RSA-2048 or EC P-256 (default ec)\n"
"  --key-in KEY.pem            certify an existing key\n"
"  --key-out KEY.pem           write the (generated) private key, PKCS#8 PEM, mode 0600\n"
"Issuer:\n"
"  --ca CA.pem --ca-key CA.key sign with this CA (default: self-signed)\n"
"Subject, in order, one RDN per attribute unless --same-rdn:\n"
"  --subj-attr [TYPE:]NAME=VALUE      VALUE's bytes exactly as given (bmp/universal:\n"
"                                     VALUE is UTF-8, converted to UCS-2/UCS-4 BE)\n"
"  --subj-attr-hex [TYPE:]NAME=HEX    content octets in hex (any bytes: NUL, bad UTF-8)\n"
"  --same-rdn                         the next attribute joins the previous one's RDN\n"
"                                     (a multi-valued RDN)\n"
"  NAME: CN, C, O, OU, L, ST, serialNumber, givenName, surname, emailAddress, a dotted\n"
"  OID, ...   TYPE: utf8 printable ia5 t61 bmp universal numeric visible (default:\n"
"  printable for C, serialNumber, dnQualifier; ia5 for emailAddress, DC; else utf8)\n"
"Validity (days from now, negative allowed):\n"
"  --not-before DAYS (default -1)   --not-after DAYS (default 365)\n"
"  --serial HEX                certificate serial number (default: 16 random bytes)\n"
"Extensions (each omitted unless asked for, except the key identifiers):\n"
"  --basic-constraints ca|ca:PATHLEN|leaf   critical basicConstraints\n"
"  --key-usage U,U,...         critical keyUsage: digitalSignature nonRepudiation\n"
"                              keyEncipherment dataEncipherment keyAgreement keyCertSign\n"
"                              cRLSign encipherOnly decipherOnly\n"
"  --eku P,P,...               extendedKeyUsage: clientAuth serverAuth emailProtection\n"
"                              codeSigning OCSPSigning timeStamping or dotted OIDs\n"
"  --policy OID                certificatePolicies entry (repeatable)\n"
"  --san-email ADDR  --san-upn UPN  --san-dns NAME  --san-ip ADDR  --san-uri URI\n"
"                              subjectAltName entries (repeatable; UPN = otherName\n"
"                              1.3.6.1.4.1.311.20.2.3 with a UTF8String)\n"
"  --no-key-ids                omit subjectKeyIdentifier / authorityKeyIdentifier\n"
"  --ext-hex [critical:]OID=HEX  any extension, extnValue content in hex (repeatable)\n",
            prog);
}

enum {
    O_OUT = 256, O_KEY_TYPE, O_KEY_IN, O_KEY_OUT, O_CA, O_CA_KEY, O_SUBJ, O_SUBJ_HEX,
    O_SAME_RDN, O_NB, O_NA, O_SERIAL, O_BC, O_KU, O_EKU, O_POLICY, O_SAN_EMAIL, O_SAN_UPN,
    O_SAN_DNS, O_SAN_IP, O_SAN_URI, O_NO_KEYIDS, O_EXT_HEX, O_HELP,
};

static const struct option long_opts[] = {
    {"out", required_argument, NULL, O_OUT},
    {"key-type", required_argument, NULL, O_KEY_TYPE},
    {"key-in", required_argument, NULL, O_KEY_IN},
    {"key-out", required_argument, NULL, O_KEY_OUT},
    {"ca", required_argument, NULL, O_CA},
    {"ca-key", required_argument, NULL, O_CA_KEY},
    {"subj-attr", required_argument, NULL, O_SUBJ},
    {"subj-attr-hex", required_argument, NULL, O_SUBJ_HEX},
    {"same-rdn", no_argument, NULL, O_SAME_RDN},
    {"not-before", required_argument, NULL, O_NB},
    {"not-after", required_argument, NULL, O_NA},
    {"serial", required_argument, NULL, O_SERIAL},
    {"basic-constraints", required_argument, NULL, O_BC},
    {"key-usage", required_argument, NULL, O_KU},
    {"eku", required_argument, NULL, O_EKU},
    {"policy", required_argument, NULL, O_POLICY},
    {"san-email", required_argument, NULL, O_SAN_EMAIL},
    {"san-upn", required_argument, NULL, O_SAN_UPN},
    {"san-dns", required_argument, NULL, O_SAN_DNS},
    {"san-ip", required_argument, NULL, O_SAN_IP},
    {"san-uri", required_argument, NULL, O_SAN_URI},
    {"no-key-ids", no_argument, NULL, O_NO_KEYIDS},
    {"ext-hex", required_argument, NULL, O_EXT_HEX},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static void push(char **list, int *n, char *v, const char *opt)
{
    if (*n >= MAX_LIST)
        die("%s: too many", opt);
    list[(*n)++] = v;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *key_type = "ec", *key_in = NULL, *key_out = NULL;
    const char *ca_path = NULL, *ca_key_path = NULL, *bc = NULL, *ku = NULL, *eku = NULL,
               *serial_hex = NULL;
    char *policies[MAX_LIST], *ext_hex[MAX_LIST];
    buf_t san = {0};
    attr_t attrs[MAX_ATTRS];
    int nattrs = 0, npol = 0, next = 0, same_rdn = 0, key_ids = 1, opt, i;
    long nb = -1, na = 365;
    EVP_PKEY *key, *signer;
    X509 *ca = NULL;
    buf_t tbs = {0}, body = {0}, cert = {0}, exts = {0}, tmp = {0};
    unsigned char ski[20], aki[20], *sig;
    size_t siglen;
    EVP_MD_CTX *md;
    FILE *f;
    int have_aki = 0;

    while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (opt) {
        case O_OUT: out = optarg; break;
        case O_KEY_TYPE: key_type = optarg; break;
        case O_KEY_IN: key_in = optarg; break;
        case O_KEY_OUT: key_out = optarg; break;
        case O_CA: ca_path = optarg; break;
        case O_CA_KEY: ca_key_path = optarg; break;
        case O_SUBJ:
        case O_SUBJ_HEX:
            parse_attr(optarg, opt == O_SUBJ_HEX, same_rdn, attrs, &nattrs);
            same_rdn = 0;
            break;
        case O_SAME_RDN: same_rdn = 1; break;
        case O_NB: nb = parse_days(optarg, "--not-before"); break;
        case O_NA: na = parse_days(optarg, "--not-after"); break;
        case O_SERIAL: serial_hex = optarg; break;
        case O_BC: bc = optarg; break;
        case O_KU: ku = optarg; break;
        case O_EKU: eku = optarg; break;
        case O_POLICY: push(policies, &npol, optarg, "--policy"); break;
        case O_SAN_EMAIL: der_tlv(&san, 0x81, optarg, strlen(optarg)); break;
        case O_SAN_DNS: der_tlv(&san, 0x82, optarg, strlen(optarg)); break;
        case O_SAN_URI: der_tlv(&san, 0x86, optarg, strlen(optarg)); break;
        case O_SAN_IP: {
            unsigned char a[16];
            if (inet_pton(AF_INET, optarg, a) == 1)
                der_tlv(&san, 0x87, a, 4);
            else if (inet_pton(AF_INET6, optarg, a) == 1)
                der_tlv(&san, 0x87, a, 16);
            else
                die("--san-ip: '%s' is not an IP address", optarg);
            break;
        }
        case O_SAN_UPN: {
            /* otherName [0] { type-id, [0] EXPLICIT UTF8String } */
            buf_t on = {0}, v = {0};
            der_oid(&on, "1.3.6.1.4.1.311.20.2.3");
            der_tlv(&v, T_UTF8, optarg, strlen(optarg));
            der_wrap(&on, 0xa0, &v);
            der_wrap(&san, 0xa0, &on);
            break;
        }
        case O_NO_KEYIDS: key_ids = 0; break;
        case O_EXT_HEX: push(ext_hex, &next, optarg, "--ext-hex"); break;
        case 'h':
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    if (same_rdn)
        die("--same-rdn must be followed by a subject attribute");
    if (!out)
        die("--out is required (see --help)");
    if (!ca_path != !ca_key_path)
        die("--ca and --ca-key go together");
    if (key_in && key_out)
        die("--key-in and --key-out exclude each other");

    key = key_in ? load_key(key_in) : gen_key(key_type);
    if (ca_path) {
        ca = load_cert(ca_path);
        signer = load_key(ca_key_path);
        if (!X509_check_private_key(ca, signer))
            die("%s does not belong to %s", ca_key_path, ca_path);
    }
    else {
        signer = key;
    }

    /* version [0] EXPLICIT INTEGER 2 (v3) */
    der_small_uint(&tmp, 2);
    der_wrap(&tbs, 0xa0, &tmp);

    /* serialNumber */
    if (serial_hex) {
        size_t n;
        unsigned char *s = parse_hex(serial_hex, &n, "--serial");
        if (n == 0 || n > 20)
            die("--serial: 1 to 20 bytes");
        der_uint(&tbs, s, n);
        free(s);
    }
    else {
        unsigned char s[16];
        if (RAND_bytes(s, sizeof(s)) != 1)
            die("no random bytes");
        s[0] = (unsigned char)((s[0] & 0x7f) | 0x40); /* positive, full 16 bytes */
        der_uint(&tbs, s, sizeof(s));
    }

    sig_alg(&tbs, signer);

    /* issuer: the CA's subject exactly as encoded in its certificate */
    if (ca) {
        unsigned char *der = NULL;
        int n = i2d_X509_NAME(X509_get_subject_name(ca), &der);
        if (n <= 0)
            die("cannot encode the CA's subject name");
        buf_put(&tbs, der, (size_t)n);
        OPENSSL_free(der);
    }
    else {
        encode_name(&tbs, attrs, nattrs);
    }

    der_time(&tmp, nb);
    der_time(&tmp, na);
    der_wrap(&tbs, T_SEQUENCE, &tmp);

    encode_name(&tbs, attrs, nattrs);

    {
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(key, &der);
        if (n <= 0)
            die("cannot encode the public key");
        buf_put(&tbs, der, (size_t)n);
        OPENSSL_free(der);
    }

    /* extensions */
    if (key_ids) {
        key_id(key, ski);
        der_tlv(&tmp, T_OCTETSTRING, ski, sizeof(ski));
        add_ext(&exts, "subjectKeyIdentifier", 0, &tmp);
        if (ca) {
            const ASN1_OCTET_STRING *id = X509_get0_subject_key_id(ca);
            if (id && ASN1_STRING_length(id) == 20) {
                memcpy(aki, ASN1_STRING_get0_data(id), 20);
                have_aki = 1;
            }
            else if (!id) {
                key_id(signer, aki);
                have_aki = 1;
            }
            if (have_aki) {
                der_tlv(&tmp, 0x80, aki, sizeof(aki));
                buf_t seq = {0};
                der_wrap(&seq, T_SEQUENCE, &tmp);
                add_ext(&exts, "authorityKeyIdentifier", 0, &seq);
            }
        }
    }
    if (bc) {
        if (!strcmp(bc, "leaf")) {
            der_tlv(&tmp, T_SEQUENCE, "", 0);
        }
        else if (!strncmp(bc, "ca", 2) && (bc[2] == '\0' || bc[2] == ':')) {
            buf_t seq = {0};
            der_tlv(&seq, T_BOOLEAN, "\xff", 1);
            if (bc[2] == ':')
                der_small_uint(&seq, (unsigned long)parse_days(bc + 3, "--basic-constraints"));
            der_wrap(&tmp, T_SEQUENCE, &seq);
        }
        else {
            die("--basic-constraints: ca, ca:PATHLEN or leaf");
        }
        add_ext(&exts, "basicConstraints", 1, &tmp);
    }
    if (ku && strcmp(ku, "none"))
        ext_key_usage(&exts, ku);
    if (eku && strcmp(eku, "none")) {
        char *copy = strdup(eku), *tok, *save = NULL, *list[MAX_LIST];
        int n = 0;
        if (!copy)
            die("out of memory");
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            push(list, &n, tok, "--eku");
        ext_oid_list(&exts, "extendedKeyUsage", list, n, 0);
        free(copy);
    }
    if (npol)
        ext_oid_list(&exts, "certificatePolicies", policies, npol, 1);
    if (san.n) {
        der_wrap(&tmp, T_SEQUENCE, &san);
        add_ext(&exts, "subjectAltName", 0, &tmp);
    }
    for (i = 0; i < next; i++) {
        const char *spec = ext_hex[i], *eq = strchr(spec, '=');
        int critical = !strncmp(spec, "critical:", 9);
        char *oid;
        size_t n;
        unsigned char *v;
        if (critical)
            spec += 9;
        if (!eq || eq < spec)
            die("--ext-hex '%s': expected [critical:]OID=HEX", ext_hex[i]);
        if (!(oid = strndup(spec, (size_t)(eq - spec))))
            die("out of memory");
        v = parse_hex(eq + 1, &n, "--ext-hex");
        buf_put(&tmp, v, n);
        add_ext(&exts, oid, critical, &tmp);
        free(v);
        free(oid);
    }
    if (exts.n) {
        buf_t seq = {0};
        der_wrap(&seq, T_SEQUENCE, &exts);
        der_wrap(&tbs, 0xa3, &seq);
    }
    der_wrap(&body, T_SEQUENCE, &tbs);

    /* sign the TBSCertificate */
    if (!(md = EVP_MD_CTX_new()) || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signer) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, body.p, body.n) != 1)
        die("cannot sign");
    sig = xrealloc(NULL, siglen + 1);
    sig[0] = 0; /* no unused bits */
    if (EVP_DigestSign(md, sig + 1, &siglen, body.p, body.n) != 1)
        die("cannot sign");
    EVP_MD_CTX_free(md);
    sig_alg(&body, signer);
    der_tlv(&body, T_BITSTRING, sig, siglen + 1);
    free(sig);
    der_wrap(&cert, T_SEQUENCE, &body);

    f = open_out(out, 0644);
    if (!PEM_write(f, "CERTIFICATE", "", cert.p, (long)cert.n))
        die("%s: cannot write", out);
    close_out(f, out);
    if (key_out) {
        f = open_out(key_out, 0600);
        if (!PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
            die("%s: cannot write the key", key_out);
        close_out(f, key_out);
    }

    /* Say so when OpenSSL itself will not read what we made: that is sometimes
     * the intent, and always worth knowing. */
    {
        const unsigned char *p = cert.p;
        X509 *x = d2i_X509(NULL, &p, (long)cert.n);
        if (!x || p != cert.p + cert.n) {
            unsigned long e = ERR_peek_last_error();
            fprintf(stderr, "%s: note: OpenSSL does not parse %s (%s)\n", prog, out,
                    e ? ERR_reason_error_string(e) : "trailing data");
            ERR_clear_error();
        }
        X509_free(x);
    }

    for (i = 0; i < nattrs; i++) {
        free(attrs[i].oid);
        free(attrs[i].val);
    }
    buf_free(&cert);
    if (signer != key)
        EVP_PKEY_free(signer);
    EVP_PKEY_free(key);
    X509_free(ca);
    return 0;
}
