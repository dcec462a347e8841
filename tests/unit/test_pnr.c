/*
 * Unit tests: Luhn, personnummer, samordningsnummer (including the odd
 * dates of published test data), the PNOSE- form and organisation numbers.
 * Every expectation is exact; the check digits below were computed by hand
 * (and cross-checked with an independent script), not by the code under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "eid/eid_pnr.h"

/* A literal with its exact length, so embedded NULs are part of the input. */
#define L(s) (s), (sizeof(s) - 1)

static void test_luhn(void **state)
{
    assert_int_equal(eid_luhn_ok(L("79927398713")), 1); /* the textbook example */
    assert_int_equal(eid_luhn_ok(L("79927398710")), 0);
    assert_int_equal(eid_luhn_ok(L("4911172296")), 1);
    assert_int_equal(eid_luhn_ok(L("4911172297")), 0);
    assert_int_equal(eid_luhn_ok(L("2321000016")), 1);
    assert_int_equal(eid_luhn_ok(L("0")), 1);
    assert_int_equal(eid_luhn_ok(L("1")), 0);
    assert_int_equal(eid_luhn_ok(L("18")), 1); /* 1*2 + 8 = 10 */
    assert_int_equal(eid_luhn_ok(L("59")), 1); /* 5*2=10 -> 1, + 9 = 10 */
    assert_int_equal(eid_luhn_ok("", 0), 0);
    assert_int_equal(eid_luhn_ok(NULL, 0), 0);
    assert_int_equal(eid_luhn_ok(NULL, 10), 0);
    /* Non-digits anywhere, including ones whose (c - '0') would "work". */
    assert_int_equal(eid_luhn_ok(L("491117229/")), 0);
    assert_int_equal(eid_luhn_ok(L("491117229:")), 0);
    assert_int_equal(eid_luhn_ok(L("49111-2296")), 0);
    assert_int_equal(eid_luhn_ok(L("4911172296\0")), 0);
    assert_int_equal(eid_luhn_ok(L(" 4911172296")), 0);
    /* Only `n` bytes are read. */
    assert_int_equal(eid_luhn_ok("4911172296xyz", 10), 1);
}

static void test_personnummer(void **state)
{
    static const char *const ok[] = {
        "194911172296", /* Skatteverket's classic test number */
        "191212121212", "201212121212", /* same last ten digits, other century */
        "196408233234", "197802022389",
        "200002291235", /* 29 February */
        "201701102384",
    };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(eid_pnr_classify(ok[i], 12), EID_PNR_PERSONNUMMER);
}

static void test_samordningsnummer(void **state)
{
    assert_int_equal(eid_pnr_classify(L("197010632391")), EID_PNR_SAMORDNINGSNUMMER);
    assert_int_equal(eid_pnr_classify(L("191212611238")), EID_PNR_SAMORDNINGSNUMMER);
    /* Published test data: month 00 and days 89-91 (29-31 + 60). */
    assert_int_equal(eid_pnr_classify(L("195100892388")), EID_PNR_SAMORDNINGSNUMMER);
    assert_int_equal(eid_pnr_classify(L("200700900129")), EID_PNR_SAMORDNINGSNUMMER);
    assert_int_equal(eid_pnr_classify(L("199000911231")), EID_PNR_SAMORDNINGSNUMMER);
    assert_int_equal(eid_pnr_classify(L("198500889426")), EID_PNR_SAMORDNINGSNUMMER);
    assert_int_equal(eid_pnr_classify(L("190000891234")), EID_PNR_SAMORDNINGSNUMMER);
}

static void test_pnr_invalid_dates(void **state)
{
    /* All of these have a correct Luhn digit: only the date is wrong. */
    assert_int_equal(eid_pnr_classify(L("199900010126")), EID_PNR_INVALID); /* month 00, pnr */
    assert_int_equal(eid_pnr_classify(L("190013611231")), EID_PNR_INVALID); /* month 13 */
    assert_int_equal(eid_pnr_classify(L("191200001236")), EID_PNR_INVALID); /* day 00 */
    assert_int_equal(eid_pnr_classify(L("191212321234")), EID_PNR_INVALID); /* day 32 */
    assert_int_equal(eid_pnr_classify(L("191212601239")), EID_PNR_INVALID); /* day 60 */
    assert_int_equal(eid_pnr_classify(L("191212921231")), EID_PNR_INVALID); /* day 92 */
}

static void test_pnr_malformed(void **state)
{
    assert_int_equal(eid_pnr_classify(L("194911172297")), EID_PNR_INVALID); /* Luhn */
    assert_int_equal(eid_pnr_classify(L("194911172206")), EID_PNR_INVALID); /* Luhn */
    /* Lengths and separators. */
    assert_int_equal(eid_pnr_classify(L("4911172296")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("491117-2296")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("491117+2296")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("19491117-2296")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("19491117229")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("1949111722960")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("0194911172296")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L(" 194911172296")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("194911172296 ")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("194911172296\n")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify("", 0), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(NULL, 12), EID_PNR_INVALID);
    /* Embedded NUL: a C-string reader would see a valid prefix. */
    assert_int_equal(eid_pnr_classify(L("194911172296\0")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("19491117\0" "296")), EID_PNR_INVALID);
    /* Non-digits, including the bytes just outside '0'..'9' and non-ASCII. */
    assert_int_equal(eid_pnr_classify(L("19491117229X")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("1949111722/6")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("1949111722:6")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("19491117229\xd9")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("1949\xd9\xa1\x31" "17229")), EID_PNR_INVALID);
    /* Only `len` bytes are read: a longer buffer is not a longer number. */
    assert_int_equal(eid_pnr_classify("194911172296999", 12), EID_PNR_PERSONNUMMER);
}

static void test_etsi(void **state)
{
    char out[13];

    memset(out, 'x', sizeof(out));
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-194911172296"), out), EID_PNR_PERSONNUMMER);
    assert_string_equal(out, "194911172296");
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-197010632391"), out),
                     EID_PNR_SAMORDNINGSNUMMER);
    assert_string_equal(out, "197010632391");
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-195100892388"), out),
                     EID_PNR_SAMORDNINGSNUMMER);
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-194911172296"), NULL),
                     EID_PNR_PERSONNUMMER);

    /* Refused, and out left empty. */
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-194911172297"), out), EID_PNR_INVALID);
    assert_string_equal(out, "");
    assert_int_equal(eid_pnr_classify_etsi(L("pnose-194911172296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE194911172296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-4911172296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-19491117-2296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-1949111722960"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("PNODK-194911172296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("PASSE-194911172296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("XPNOSE-194911172296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L(" PNOSE-194911172296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-194911172296\0"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE\0" "194911172296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("PNOSE-"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(L("194911172296"), out), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify_etsi(NULL, 18, out), EID_PNR_INVALID);
    assert_string_equal(out, "");
}

static void test_orgnr(void **state)
{
    assert_int_equal(eid_orgnr_ok(L("2321000016")), 1); /* Region Stockholm */
    assert_int_equal(eid_orgnr_ok(L("5562265719")), 1);
    assert_int_equal(eid_orgnr_ok(L("2321000131")), 1);
    assert_int_equal(eid_orgnr_ok(L("2021005489")), 1);
    assert_int_equal(eid_orgnr_ok(L("2120000001")), 1);
    assert_int_equal(eid_orgnr_ok(L("1120000003")), 1); /* third digit 2 is enough */

    assert_int_equal(eid_orgnr_ok(L("2321000017")), 0); /* Luhn */
    assert_int_equal(eid_orgnr_ok(L("5562265710")), 0);
    /* Luhn-valid but the third digit says "personnummer". */
    assert_int_equal(eid_orgnr_ok(L("4911172296")), 0);
    assert_int_equal(eid_orgnr_ok(L("1010000006")), 0);
    /* Lengths, separators, NUL, the 12-digit "16" form. */
    assert_int_equal(eid_orgnr_ok(L("232100001")), 0);
    assert_int_equal(eid_orgnr_ok(L("23210000160")), 0);
    assert_int_equal(eid_orgnr_ok(L("162321000016")), 0);
    assert_int_equal(eid_orgnr_ok(L("232100-0016")), 0);
    assert_int_equal(eid_orgnr_ok(L("2321000016\0")), 0);
    assert_int_equal(eid_orgnr_ok(L("23210\0" "0016")), 0);
    assert_int_equal(eid_orgnr_ok(L("232100001X")), 0);
    assert_int_equal(eid_orgnr_ok("", 0), 0);
    assert_int_equal(eid_orgnr_ok(NULL, 10), 0);
}

static void test_kinds_disjoint(void **state)
{
    /* A 12-digit personnummer is never an organisation number, and the
     * 10-digit short form of a personnummer is neither. */
    assert_int_equal(eid_orgnr_ok(L("194911172296")), 0);
    assert_int_equal(eid_pnr_classify(L("2321000016")), EID_PNR_INVALID);
    assert_int_equal(eid_pnr_classify(L("4911172296")), EID_PNR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luhn),
        cmocka_unit_test(test_personnummer),
        cmocka_unit_test(test_samordningsnummer),
        cmocka_unit_test(test_pnr_invalid_dates),
        cmocka_unit_test(test_pnr_malformed),
        cmocka_unit_test(test_etsi),
        cmocka_unit_test(test_orgnr),
        cmocka_unit_test(test_kinds_disjoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
