/* Seed generator for fuzz_cert: makes the fuzz CA (if absent) and DER seeds.
 * Build: cc -std=c11 tests/fuzz/mkseeds.c -o /tmp/mkseeds -lcrypto; run in tests/fuzz. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static EVP_PKEY *ca_key, *other_key, *leaf_key;
static X509 *ca;

static void die(const char *m) { fprintf(stderr, "%s\n", m); ERR_print_errors_fp(stderr); exit(1); }

static void set_time(ASN1_TIME *t, const char *gt) { if (!ASN1_TIME_set_string_X509(t, gt)) die(gt); }

static void add_ext(X509 *iss, X509 *x, int nid, const char *v)
{
    X509V3_CTX ctx; X509_EXTENSION *e;
    X509V3_set_ctx(&ctx, iss, x, NULL, NULL, 0);
    if (!(e = X509V3_EXT_conf_nid(NULL, &ctx, nid, v))) die(v);
    X509_add_ext(x, e, -1); X509_EXTENSION_free(e);
}

static void make_ca(const char *dir)
{
    char p[512]; FILE *f; X509_NAME *n = X509_NAME_new();
    ca_key = EVP_EC_gen("P-256"); ca = X509_new();
    X509_set_version(ca, 2); ASN1_INTEGER_set(X509_get_serialNumber(ca), 0x4549440001L);
    X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (unsigned char *)"SE", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (unsigned char *)"mod_auth_eid fuzzing", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (unsigned char *)"TEST eid fuzz CA v1", -1, -1, 0);
    X509_set_subject_name(ca, n); X509_set_issuer_name(ca, n); X509_NAME_free(n);
    set_time(X509_getm_notBefore(ca), "20240101000000Z"); set_time(X509_getm_notAfter(ca), "20500101000000Z");
    X509_set_pubkey(ca, ca_key);
    add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(ca, ca, NID_subject_key_identifier, "hash");
    X509_sign(ca, ca_key, EVP_sha256());
    snprintf(p, sizeof p, "%s/fuzz_cert_ca.pem", dir); f = fopen(p, "w");
    fprintf(f, "TEST ONLY: the issuing CA that fuzz_cert trusts; seeds in corpus/fuzz_cert are issued by it.\n");
    PEM_write_X509(f, ca); fclose(f);
    snprintf(p, sizeof p, "%s/fuzz_cert_ca.key", dir); f = fopen(p, "w");
    fprintf(f, "TEST ONLY: private key of fuzz_cert_ca.pem, used by fuzz_cert to re-sign mutated\n"
               "certificates so that the fuzzer reaches the checks behind the signature.\n"
               "It protects nothing and must never be trusted anywhere.\n");
    PEM_write_PrivateKey(f, ca_key, NULL, NULL, 0, NULL, NULL); fclose(f);
}

typedef struct { int nid, type; const char *v; int len, same; } ent_t;
typedef struct { int present, kind, type; const char *v; int len; } alt_t;
typedef struct {
    const char *file;
    ent_t ent[7];
    alt_t alt[2];
    const char *pol, *eku, *ku;
    const char *nb, *na;
    int forge; /* 1 other key, 2 other issuer, 3 dup EKU, 4 no AKID */
} seed_t;

#define S(t, s) {NID_serialNumber, t, s, sizeof(s) - 1, 0}
#define SER(s) S(V_ASN1_PRINTABLESTRING, s)
#define E(nid, t, s) {nid, t, s, sizeof(s) - 1, 0}
#define U8(nid, s) E(nid, V_ASN1_UTF8STRING, s)
#define C_SE E(NID_countryName, V_ASN1_PRINTABLESTRING, "SE")
#define MAIL(s) {1, GEN_EMAIL, V_ASN1_IA5STRING, s, sizeof(s) - 1}
#define UPN(t, s) {1, GEN_OTHERNAME, t, s, sizeof(s) - 1}

static const seed_t seeds[] = {
    {"ok-hsa", {C_SE, U8(NID_organizationName, "Testkommun"), SER("SE2120001231-N0001"), U8(NID_givenName, "Anna"),
                U8(NID_surname, "Svensson"), U8(NID_commonName, "Anna Svensson")},
     {MAIL("anna@testkommun.se"), UPN(V_ASN1_UTF8STRING, "anna@testkommun.se")}, .ku = "critical,digitalSignature"},
    {"ok-pnr-policy", {C_SE, SER("194911172296"), U8(NID_givenName, "Tolvan"), U8(NID_surname, "Tolvansson"),
                       U8(NID_localityName, "Stockholm"), E(NID_pkcs9_emailAddress, V_ASN1_IA5STRING, "t@x.se")},
     {MAIL("t@x.se")}, .pol = "1.2.752.74.8.512,1.2.3.4.5"},
    {"ok-pnose-bmp", {C_SE, SER("PNOSE-194911172296"),
                      E(NID_commonName, V_ASN1_BMPSTRING, "\0\xc5\0s\0\x61\0 \0\xd6\0\x62\0\x65\0r\0g"),
                      E(NID_surname, V_ASN1_T61STRING, "\xd6" "berg"),
                      E(NID_givenName, V_ASN1_UNIVERSALSTRING, "\0\0\0\xc5\0\0\0s\0\0\0\x61")}},
    {"coord-id-kind", {C_SE, SER("197010632391")}},
    {"function-policy", {C_SE, SER("SE2120001231-F0001")}, .pol = "1.2.3.5", .eku = "serverAuth"},
    {"two-serials", {C_SE, SER("194911172296"), SER("SE2120001231-N0001")}},
    {"multivalued-rdn", {C_SE, U8(NID_commonName, "Tolvan"), {NID_serialNumber, V_ASN1_PRINTABLESTRING, "194911172296", 12, 1}}},
    {"multivalued-o", {C_SE, SER("194911172296"), U8(NID_organizationName, "O"),
                       {NID_organizationalUnitName, V_ASN1_UTF8STRING, "U", 1, 1}}},
    {"serial-nul", {C_SE, S(V_ASN1_UTF8STRING, "194911172296\0x")}},
    {"given-crlf", {C_SE, SER("194911172296"), U8(NID_givenName, "Tolvan\r\nX-Evil: 1")}},
    {"cn-c1", {C_SE, SER("194911172296"), U8(NID_commonName, "a\xc2\x85" "b")}},
    {"dup-cn", {C_SE, SER("194911172296"), U8(NID_commonName, "A"), U8(NID_commonName, "B")}},
    {"serial-bitstring", {C_SE, E(NID_serialNumber, V_ASN1_BIT_STRING, "194911172296")}},
    {"bad-luhn", {C_SE, SER("194911172297")}},
    {"no-serial", {C_SE, U8(NID_commonName, "nobody")}},
    {"san-conflict", {C_SE, SER("194911172296"), E(NID_pkcs9_emailAddress, V_ASN1_IA5STRING, "a@x.se")},
     {MAIL("b@x.se"), MAIL("c@x.se")}},
    {"upn-bad-utf8", {C_SE, SER("194911172296")}, {UPN(V_ASN1_UTF8STRING, "\xed\xa0\x80"), UPN(V_ASN1_BMPSTRING, "\xd8\0\xdc\0")}},
    {"upn-octets", {C_SE, SER("194911172296")}, {UPN(V_ASN1_OCTET_STRING, "a@b")}},
    {"no-eku", {C_SE, SER("194911172296")}, .eku = ""},
    {"ku-nonrep", {C_SE, SER("194911172296")}, .ku = "critical,nonRepudiation"},
    {"expired", {C_SE, SER("194911172296")}, .nb = "20200101000000Z", .na = "20250101000000Z"},
    {"notyet", {C_SE, SER("194911172296")}, .nb = "20400101000000Z", .na = "20450101000000Z"},
    {"forged", {C_SE, SER("194911172296")}, .forge = 1},
    {"dup-eku-ext", {C_SE, SER("194911172296")}, .forge = 3},
    {"ou-c1", {C_SE, SER("194911172296"), U8(NID_organizationalUnitName, "a\xc2\x85")}},
    {"cn-empty", {C_SE, SER("SE2120001231-N0001"), U8(NID_commonName, "")}, {UPN(V_ASN1_UTF8STRING, "a\xe2\x82")}},
    {"policy-long-oid", {C_SE, SER("194911172296")},
     .pol = "1.2.752.74.8.512,1.3.6.1.4.1.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.999999999.1"},
    {"no-akid", {C_SE, SER("SE2321000016-D0002")}, .forge = 4},
};

static void write_seed(const char *dir, const seed_t *sd)
{
    X509 *x = X509_new(); X509_NAME *n = X509_NAME_new(); char p[512]; FILE *f; int i;
    X509_set_version(x, 2); ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1000 + (long)(sd - seeds));
    for (i = 0; i < 7 && sd->ent[i].nid; i++) {
        X509_NAME_ENTRY *e = X509_NAME_ENTRY_create_by_NID(NULL, sd->ent[i].nid, sd->ent[i].type,
                                                           (const unsigned char *)sd->ent[i].v, sd->ent[i].len);
        if (!e || !X509_NAME_add_entry(n, e, -1, sd->ent[i].same ? -1 : 0)) die(sd->file);
        X509_NAME_ENTRY_free(e);
    }
    if (!X509_set_subject_name(x, n)) die(sd->file);
    X509_NAME_free(n);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    set_time(X509_getm_notBefore(x), sd->nb ? sd->nb : "20240101000000Z");
    set_time(X509_getm_notAfter(x), sd->na ? sd->na : "20450101000000Z");
    X509_set_pubkey(x, leaf_key);
    if (sd->forge != 4) add_ext(ca, x, NID_authority_key_identifier, "keyid:always");
    if (!sd->eku || *sd->eku) add_ext(ca, x, NID_ext_key_usage, sd->eku ? sd->eku : "clientAuth");
    if (sd->forge == 3) add_ext(ca, x, NID_ext_key_usage, "clientAuth");
    if (sd->ku) add_ext(ca, x, NID_key_usage, sd->ku);
    if (sd->pol) {
        CERTIFICATEPOLICIES *cp = sk_POLICYINFO_new_null(); char buf[512], *tok, *save;
        snprintf(buf, sizeof buf, "%s", sd->pol);
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            POLICYINFO *pi = POLICYINFO_new(); ASN1_OBJECT_free(pi->policyid);
            pi->policyid = OBJ_txt2obj(tok, 1); sk_POLICYINFO_push(cp, pi);
        }
        X509_add1_ext_i2d(x, NID_certificate_policies, cp, 0, 0); CERTIFICATEPOLICIES_free(cp);
    }
    if (sd->alt[0].present) {
        GENERAL_NAMES *g = sk_GENERAL_NAME_new_null();
        for (i = 0; i < 2 && sd->alt[i].present; i++) {
            GENERAL_NAME *gn = GENERAL_NAME_new(); ASN1_STRING *s = ASN1_STRING_type_new(sd->alt[i].type);
            ASN1_STRING_set(s, sd->alt[i].v, sd->alt[i].len);
            if (sd->alt[i].kind == GEN_EMAIL) GENERAL_NAME_set0_value(gn, GEN_EMAIL, s);
            else { ASN1_TYPE *t = ASN1_TYPE_new(); ASN1_TYPE_set(t, sd->alt[i].type, s);
                   GENERAL_NAME_set0_othername(gn, OBJ_nid2obj(NID_ms_upn), t); }
            sk_GENERAL_NAME_push(g, gn);
        }
        if (!X509_add1_ext_i2d(x, NID_subject_alt_name, g, 0, 0)) die(sd->file);
        GENERAL_NAMES_free(g);
    }
    X509_sign(x, sd->forge == 1 ? other_key : ca_key, EVP_sha256());
    snprintf(p, sizeof p, "%s/%s.der", dir, sd->file); f = fopen(p, "wb");
    if (!i2d_X509_fp(f, x)) die(sd->file);
    fclose(f); X509_free(x);
}

int main(int argc, char **argv)
{
    /* argv[1]: dir with fuzz_cert_ca.{pem,key} (made if absent); argv[2]: seed dir */
    char p[512]; FILE *f; size_t i;
    snprintf(p, sizeof p, "%s/fuzz_cert_ca.key", argv[1]);
    if ((f = fopen(p, "r"))) {
        ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL); fclose(f);
        snprintf(p, sizeof p, "%s/fuzz_cert_ca.pem", argv[1]); f = fopen(p, "r");
        ca = PEM_read_X509(f, NULL, NULL, NULL); fclose(f);
        if (!ca || !ca_key) die("ca");
    } else {
        make_ca(argv[1]);
    }
    other_key = EVP_EC_gen("P-256"); leaf_key = EVP_EC_gen("P-256");
    if (argc > 2)
        for (i = 0; i < sizeof seeds / sizeof *seeds; i++) write_seed(argv[2], &seeds[i]);
    return 0;
}
