/*
 * fuzz_serial - the identifier checks on arbitrary bytes.
 *
 * Runs the serialNumber classifier and every personnummer / organisation
 * number / HSA-ID check on the input and asserts what each verdict
 * promises: a value classified as a personnummer has 12 digits, a valid
 * date part and a valid Luhn digit; an HSA-ID has the SE + 10 digits + "-" +
 * [A-Za-z0-9]+ shape; the classifier agrees with the individual checks and
 * never matches a prefix.  The oracles below are written independently of
 * the code under test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eid/eid_cert.h"
#include "eid/eid_hsa.h"
#include "eid/eid_pnr.h"

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_serial: invariant failed: %s (line %d)\n", #c,       \
                    __LINE__);                                                         \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static int digits(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Luhn, the long way round: double every second digit from the right. */
static int luhn(const char *s, size_t n)
{
    int sum = 0, dbl = 0;
    while (n-- > 0) {
        int d = s[n] - '0';
        if (dbl)
            d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

static int num2(const char *s)
{
    return (s[0] - '0') * 10 + s[1] - '0';
}

/* Oracle for a 12-digit personnummer / samordningsnummer. */
static eid_pnr_kind_e pnr_oracle(const char *s, size_t n)
{
    int m, d;
    if (n != 12 || !digits(s, n) || !luhn(s + 2, 10))
        return EID_PNR_INVALID;
    m = num2(s + 4);
    d = num2(s + 6);
    if (m <= 12 && d > 60 && d <= 91)
        return EID_PNR_SAMORDNINGSNUMMER;
    if (m >= 1 && m <= 12 && d >= 1 && d <= 31)
        return EID_PNR_PERSONNUMMER;
    return EID_PNR_INVALID;
}

static int hsa_oracle(const char *s, size_t n)
{
    size_t i;
    if (n < 14 || n > 31 || memcmp(s, "SE", 2) || !digits(s + 2, 10) || s[12] != '-')
        return 0;
    for (i = 13; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char out13[13], org[11], out[32];
    eid_pnr_kind_e k, ke;
    eid_serial_kind_e sk;
    int hl, hs, o;

    /* Luhn over the raw bytes: only digits can pass. */
    if (eid_luhn_ok(s, size))
        CHECK(size > 0 && digits(s, size) && luhn(s, size));

    k = eid_pnr_classify(s, size);
    CHECK(k == pnr_oracle(s, size));

    ke = eid_pnr_classify_etsi(s, size, out13);
    if (ke != EID_PNR_INVALID) {
        CHECK(size == 18 && !memcmp(s, "PNOSE-", 6));
        CHECK(strlen(out13) == 12 && !memcmp(out13, s + 6, 12));
        CHECK(ke == pnr_oracle(out13, 12));
    }
    else {
        CHECK(out13[0] == '\0');
        CHECK(size != 18 || memcmp(s, "PNOSE-", 6) || pnr_oracle(s + 6, 12) == EID_PNR_INVALID);
    }

    o = eid_orgnr_ok(s, size);
    CHECK(o == (size == 10 && digits(s, 10) && s[2] >= '2' && luhn(s, 10)));

    hl = eid_hsa_ok(s, size, 0, org);
    hs = eid_hsa_ok(s, size, 1, NULL);
    CHECK(hl == hsa_oracle(s, size));
    CHECK(hs == (hl && luhn(s + 2, 10)));
    if (hl)
        CHECK(strlen(org) == 10 && !memcmp(org, s + 2, 10));
    else
        CHECK(org[0] == '\0');
    /* A full HSA-ID is also a valid policy prefix; a prefix needs the owner part. */
    if (hl)
        CHECK(eid_hsa_prefix_ok(s, size));
    if (eid_hsa_prefix_ok(s, size))
        CHECK(size >= 13 && size <= 31 && !memcmp(s, "SE", 2) && s[12] == '-');

    sk = eid_cert_classify_serial(s, size, out);
    switch (sk) {
    case EID_SERIAL_PNR:
    case EID_SERIAL_COORD:
        CHECK(strlen(out) == 12 && digits(out, 12));
        CHECK(pnr_oracle(out, 12) == (sk == EID_SERIAL_PNR ? EID_PNR_PERSONNUMMER
                                                           : EID_PNR_SAMORDNINGSNUMMER));
        /* Either the whole input is the number, or it is exactly PNOSE- + it. */
        CHECK((size == 12 && k != EID_PNR_INVALID && !memcmp(out, s, 12)) ||
              (size == 18 && ke != EID_PNR_INVALID && !memcmp(out, s + 6, 12)));
        break;
    case EID_SERIAL_HSA:
        CHECK(hl && strlen(out) == size && !memcmp(out, s, size));
        break;
    case EID_SERIAL_INVALID:
        CHECK(out[0] == '\0');
        CHECK(k == EID_PNR_INVALID && ke == EID_PNR_INVALID && !hl);
        break;
    default:
        CHECK(0);
    }
    return 0;
}
