/*
 * Unit tests: HSA-ID shape (lenient and strict) and the prefixes a policy
 * may name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "eid/eid_hsa.h"

#define L(s) (s), (sizeof(s) - 1)

static void test_hsa_valid(void **state)
{
    char org[11];

    memset(org, 'x', sizeof(org));
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P000000069215"), 0, org), 1);
    assert_string_equal(org, "2321000131");
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P000000069215"), 1, org), 1);
    assert_int_equal(eid_hsa_ok(L("SE2120001231-N0001"), 1, org), 1);
    assert_string_equal(org, "2120001231");
    assert_int_equal(eid_hsa_ok(L("SE2321000016-F"), 0, NULL), 1); /* one-char local part */
    assert_int_equal(eid_hsa_ok(L("SE2321000016-abcXYZ09"), 0, NULL), 1);
}

static void test_hsa_strict(void **state)
{
    char org[11];

    /* 1234567890 fails Luhn: legacy owners like this pass only leniently. */
    assert_int_equal(eid_hsa_ok(L("SE1234567890-abc"), 0, org), 1);
    assert_string_equal(org, "1234567890");
    assert_int_equal(eid_hsa_ok(L("SE1234567890-abc"), 1, org), 0);
    assert_string_equal(org, "");
    assert_int_equal(eid_hsa_ok(L("SE1234567897-abc"), 1, org), 1);
}

static void test_hsa_length(void **state)
{
    /* 13 characters of prefix + 18 = 31: the maximum. */
    assert_int_equal(eid_hsa_ok(L("SE2321000131-ABCDEFGHIJ01234567"), 0, NULL), 1);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-ABCDEFGHIJ012345678"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-"), 0, NULL), 0); /* empty local part */
    assert_int_equal(eid_hsa_ok(L("SE2321000131"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok("", 0, 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(NULL, 20, 0, NULL), 0);
    /* Only `len` bytes count. */
    assert_int_equal(eid_hsa_ok("SE2321000131-P1 trailing", 15, 0, NULL), 1);
}

static void test_hsa_malformed(void **state)
{
    char org[11];

    memset(org, 'x', sizeof(org));
    assert_int_equal(eid_hsa_ok(L("se2321000131-P1"), 0, org), 0); /* country case */
    assert_string_equal(org, "");
    assert_int_equal(eid_hsa_ok(L("Se2321000131-P1"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("DK2321000131-P1"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131P1"), 0, NULL), 0);    /* no dash */
    assert_int_equal(eid_hsa_ok(L("SE232100013-P1"), 0, NULL), 0);    /* 9 digits */
    assert_int_equal(eid_hsa_ok(L("SE23210001311-P1"), 0, NULL), 0);  /* 11 digits */
    assert_int_equal(eid_hsa_ok(L("SE23210001X1-P1"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131--P1"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P-1"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P 1"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P_1"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P1 "), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L(" SE2321000131-P1"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P1\n"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P1\0"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P\0" "1"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-\xc3\x85sa"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE2321000131-P1@x"), 0, NULL), 0);
    assert_int_equal(eid_hsa_ok(L("SE 2321000131-P1"), 0, NULL), 0);
}

static void test_hsa_prefix(void **state)
{
    assert_int_equal(eid_hsa_prefix_ok(L("SE2321000016-")), 1);
    assert_int_equal(eid_hsa_prefix_ok(L("SE2321000016-F")), 1);
    assert_int_equal(eid_hsa_prefix_ok(L("SE2321000131-P000000069215")), 1);
    assert_int_equal(eid_hsa_prefix_ok(L("SE2321000131-ABCDEFGHIJ01234567")), 1);

    /* Shorter than the owner part and its dash would match other owners. */
    assert_int_equal(eid_hsa_prefix_ok(L("SE2321000016")), 0);
    assert_int_equal(eid_hsa_prefix_ok(L("SE232100001")), 0);
    assert_int_equal(eid_hsa_prefix_ok(L("SE")), 0);
    assert_int_equal(eid_hsa_prefix_ok("", 0), 0);
    assert_int_equal(eid_hsa_prefix_ok(NULL, 0), 0);
    assert_int_equal(eid_hsa_prefix_ok(L("SE2321000131-ABCDEFGHIJ012345678")), 0);
    assert_int_equal(eid_hsa_prefix_ok(L("se2321000016-")), 0);
    assert_int_equal(eid_hsa_prefix_ok(L("SE2321000016-F-")), 0);
    assert_int_equal(eid_hsa_prefix_ok(L("SE2321000016-*")), 0);
    assert_int_equal(eid_hsa_prefix_ok(L("SE2321000016-\0")), 0);
    assert_int_equal(eid_hsa_prefix_ok(L("SE23210000X6-")), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hsa_valid),
        cmocka_unit_test(test_hsa_strict),
        cmocka_unit_test(test_hsa_length),
        cmocka_unit_test(test_hsa_malformed),
        cmocka_unit_test(test_hsa_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
