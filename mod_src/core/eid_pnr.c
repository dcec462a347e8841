/*
 * eid_pnr.c - personnummer, samordningsnummer and organisationsnummer.
 *
 * Everything here works on (pointer, length) and looks at every byte: a NUL,
 * a separator or a trailing character makes the value invalid rather than
 * being skipped, so "19491117-2296", "194911172296\0x" and " 194911172296"
 * are all refused.  No locale (isdigit() would depend on it), no allocation.
 */
#include "eid/eid_pnr.h"

#include <string.h>

#define PNR_LEN 12
#define ETSI_PREFIX "PNOSE-"
#define ETSI_PREFIX_LEN (sizeof(ETSI_PREFIX) - 1)
#define ORGNR_LEN 10

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int all_digits(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

static int two_digits(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

int eid_luhn_ok(const char *digits, size_t n)
{
    unsigned sum = 0;
    size_t i;

    if (!digits || n == 0)
        return 0;
    /* Counted from the right: the check digit has weight 1, its left
     * neighbour 2, and so on.  For the even lengths used in Sweden (10) this
     * is the familiar 2,1,2,1,... from the left. */
    for (i = 0; i < n; i++) {
        char c = digits[n - 1 - i];
        unsigned d;
        if (!is_digit(c))
            return 0;
        d = (unsigned)(c - '0');
        if (i & 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

eid_pnr_kind_e eid_pnr_classify(const char *s, size_t len)
{
    int month, day;

    if (!s || len != PNR_LEN || !all_digits(s, len))
        return EID_PNR_INVALID;
    /* YYYY MM DD NNN C: the check digit covers YYMMDDNNN only, the century
     * is not part of it. */
    if (!eid_luhn_ok(s + 2, 10))
        return EID_PNR_INVALID;
    month = two_digits(s + 4);
    day = two_digits(s + 6);
    if (month > 12)
        return EID_PNR_INVALID;
    if (day >= 61 && day <= 91)
        return EID_PNR_SAMORDNINGSNUMMER; /* month 00 allowed: see header */
    if (month >= 1 && day >= 1 && day <= 31)
        return EID_PNR_PERSONNUMMER;
    return EID_PNR_INVALID;
}

eid_pnr_kind_e eid_pnr_classify_etsi(const char *s, size_t len, char out13[13])
{
    eid_pnr_kind_e kind = EID_PNR_INVALID;

    if (s && len == ETSI_PREFIX_LEN + PNR_LEN &&
        memcmp(s, ETSI_PREFIX, ETSI_PREFIX_LEN) == 0)
        kind = eid_pnr_classify(s + ETSI_PREFIX_LEN, PNR_LEN);
    if (out13) {
        if (kind != EID_PNR_INVALID) {
            memcpy(out13, s + ETSI_PREFIX_LEN, PNR_LEN);
            out13[PNR_LEN] = '\0';
        }
        else {
            out13[0] = '\0';
        }
    }
    return kind;
}

int eid_orgnr_ok(const char *s, size_t len)
{
    if (!s || len != ORGNR_LEN || !all_digits(s, len))
        return 0;
    /* The third digit ("month" >= 20) is what tells an organisation number
     * from the 10-digit short form of a personnummer. */
    if (s[2] < '2')
        return 0;
    return eid_luhn_ok(s, len);
}
