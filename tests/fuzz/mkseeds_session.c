/* Seed generator for fuzz_session_cookie and fuzz_session_record: writes the
 * seeds into corpus/<target>/ (run in tests/fuzz).  Sealed seeds use the fuzz
 * targets' fixed keys (current a0..bf, previous 60..7f), so that mutations
 * start from values that open.  Build:
 *   cc -std=c11 -Iinclude $(pkg-config --cflags apr-1) tests/fuzz/mkseeds_session.c \
 *      build/libeidcore.a $(pkg-config --libs apr-1 apr-util-1 openssl) -o /tmp/mkseeds_session */
#include <apr_general.h>
#include <apr_strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eid/eid_session.h"
#include "eid/eid_util.h"

static apr_pool_t *p;

static void die(const char *m) { fprintf(stderr, "mkseeds_session: %s\n", m); exit(1); }

static void put(const char *target, const char *name, const void *b, size_t n)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "corpus/%s/%s", target, name);
    if (!(f = fopen(path, "wb")) || fwrite(b, 1, n, f) != n || fclose(f))
        die(path);
}

static apr_array_header_t *strv(int n, ...)
{
    apr_array_header_t *a = apr_array_make(p, n ? n : 1, sizeof(const char *));
    va_list ap;
    va_start(ap, n);
    while (n-- > 0)
        APR_ARRAY_PUSH(a, const char *) = va_arg(ap, const char *);
    va_end(ap);
    return a;
}

static eid_session_rec_t *full(void)
{
    eid_session_rec_t *r = apr_pcalloc(p, sizeof(*r));
    eid_identity_t *id = eid_identity_make(p);
    id->method = EID_METHOD_OIDC;
    id->profile = "inera"; id->issuer = "https://idp.example/oidc"; id->subject = "u-1";
    id->client_id = "rp"; id->token_id = "jti-1"; id->pnr = "194911172296"; id->hsa_id = "SE2321000016-1234";
    id->given_name = "Åsa"; id->surname = "Öberg"; id->display_name = "Åsa Öberg"; id->email = "a@x.se";
    id->upn = "a@x.se"; id->org_number = "2321000016"; id->org_hsa_id = "SE2321000016-0001";
    id->org_name = "Region Test"; id->unit_hsa_id = "SE2321000016-0002"; id->unit_name = "Vårdcentralen";
    id->commission_hsa_id = "SE2321000016-0003"; id->commission_name = "Läkare";
    id->commission_purpose = "Vård och behandling"; id->loa_uri = "http://id.elegnamnden.se/loa/1.0/loa3";
    id->org_kind = "region";
    id->commission_rights = strv(2, "Läsa;Vård och behandling;SJF", "Skriva");
    id->roles = strv(1, "BIF;Spärradministratör"); id->scopes = strv(0);
    id->policy_oids = strv(1, "1.2.752.129.2.1.2.1"); id->groups = strv(2, "g1", "g2");
    id->dir_roles = strv(1, "läkare");
    id->loa = 3; id->auth_time = 1700000000000000; id->expires = 1700000360000000;
    r->id = id; r->provider = "inera"; r->sid = "sid-1"; r->sub = "u-1";
    r->id_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2ln";
    r->csrf = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdE";
    r->created = 1700000000000000; r->last_seen = 1700000100000000; r->expires = 1700036000000000;
    return r;
}

int main(void)
{
    unsigned char cur[32], prev[32], id[32], *b;
    eid_session_keys_t *k, *kprev;
    eid_session_rec_t *r, empty = {0};
    eid_pending_t pd = {0};
    apr_size_t n;
    const char *c;
    char v[44];
    int i;

    apr_initialize();
    apr_pool_create(&p, NULL);
    for (i = 0; i < 32; i++) {
        cur[i] = (unsigned char)(0xa0 + i);
        prev[i] = (unsigned char)(0x60 + i);
        id[i] = (unsigned char)(i * 7);
    }
    if (eid_session_keys_from_bytes(p, cur, prev, &k) || eid_session_keys_from_bytes(p, prev, NULL, &kprev))
        die("keys");

    /* fuzz_session_record: encodings */
    r = full();
    if (eid_session_encode(p, r, &b, &n)) die("encode full");
    put("fuzz_session_record", "full.bin", b, n);
    empty.id = eid_identity_make(p);
    if (eid_session_encode(p, &empty, &b, &n)) die("encode empty");
    put("fuzz_session_record", "empty.bin", b, n);
    b[4 + 40 + 23 * 2] = 0xff; b[4 + 40 + 23 * 2 + 1] = 0xfe; /* first array: huge count */
    put("fuzz_session_record", "huge-count.bin", b, n);
    pd.provider = "inera"; pd.state = "s0123456789abcdefghijABCDEFGHIJ-_0123456789";
    pd.nonce = "n0123456789abcdefghijABCDEFGHIJ-_0123456789";
    pd.code_verifier = "v0123456789abcdefghijABCDEFGHIJ-_0123456789";
    pd.return_to = "/app/page?x=1"; pd.min_loa = 3; pd.created = 1700000000000000;
    if (eid_pending_encode(p, &pd, &b, &n)) die("encode pending");
    put("fuzz_session_record", "pending.bin", b, n);

    /* fuzz_session_cookie: cookie texts, state cookies, sealed sessions */
    eid_session_cookie_value(id, v);
    put("fuzz_session_cookie", "cookie.txt", v, 43);
    v[42] = 'B'; /* low bits set: not canonical */
    put("fuzz_session_cookie", "cookie-noncanonical.txt", v, 43);
    put("fuzz_session_cookie", "cookie-padded.txt", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 43);
    put("fuzz_session_cookie", "cookie-short.txt", v, 42);
    if (!(c = eid_pending_seal(p, k, "fuzz.example", &pd))) die("pending seal");
    put("fuzz_session_cookie", "state.txt", c, strlen(c));
    put("fuzz_session_cookie", "state-cut.txt", c, strlen(c) - 5);
    if (!(c = eid_pending_seal(p, kprev, "fuzz.example", &pd))) die("pending seal prev");
    put("fuzz_session_cookie", "state-prevkey.txt", c, strlen(c));
    if (eid_session_seal(p, k, "s:fuzz-store-key", r, &b, &n)) die("seal");
    put("fuzz_session_cookie", "sealed.bin", b, n);
    if (eid_session_seal(p, kprev, "s:fuzz-store-key", &empty, &b, &n)) die("seal prev");
    put("fuzz_session_cookie", "sealed-prevkey-small.bin", b, n);
    apr_pool_destroy(p);
    apr_terminate();
    return 0;
}
