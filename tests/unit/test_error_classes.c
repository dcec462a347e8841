/*
 * Unit test: the class (and so the HTTP status) of every token tag that
 * docs/errors.md lists, against a table written here from the docs' wording
 * (not from eid_result.c):
 *   - "(400)", a broken client                        -> malformed (400)
 *   - "internal: report it", "misconfigured", a wrong
 *     `issuer=` the operator must fix                  -> misconfigured (500)
 *   - the provider's keys, discovery document or
 *     introspection endpoint cannot be had ("503",
 *     "check the provider", every EID036xx)            -> unavailable (503)
 *   - everything else                                  -> invalid credential (401)
 * The test also reads docs/errors.md and fails on a token tag the table here
 * does not state, so a tag added to the docs must be classified here too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eid/eid_bearer.h"
#include "eid/eid_result.h"

#define M EID_CLASS_MALFORMED
#define C EID_CLASS_MISCONFIGURED
#define U EID_CLASS_UNAVAILABLE
#define I EID_CLASS_INVALID

static const struct {
    const char *tag;
    eid_class_e cls;
} expect[] = {
    {"EID03001", M}, /* empty bearer token (400) */
    {"EID03002", M}, /* not RFC 6750 token syntax (400) */
    {"EID03003", I}, {"EID03004", I}, {"EID03005", I},
    {"EID03006", C}, /* internal: report it */
    {"EID03007", C}, /* internal: report it */
    {"EID03008", C}, /* "refused (misconfigured)" */
    {"EID03101", I}, {"EID03102", I}, {"EID03103", I}, {"EID03104", I}, {"EID03105", I},
    {"EID03106", I}, {"EID03107", I}, {"EID03108", I}, {"EID03109", I}, {"EID03110", I},
    {"EID03111", I}, {"EID03112", I}, {"EID03113", I}, {"EID03114", I}, {"EID03115", I},
    {"EID03116", I}, {"EID03117", I}, {"EID03118", I}, {"EID03119", I}, {"EID03120", I},
    {"EID03121", I},
    {"EID03201", I}, {"EID03202", I}, {"EID03203", I}, {"EID03204", I}, {"EID03205", I},
    {"EID03206", I},
    {"EID03207", U}, /* no current keys: 503 */
    {"EID03208", U}, /* the key set could not be had */
    {"EID03209", U}, /* the key set is not a JSON object: a key-set problem, 503 */
    /* one key skipped, the set still serves: never a request's refusal */
    {"EID03210", I}, {"EID03211", I}, {"EID03212", I}, {"EID03213", I}, {"EID03214", I},
    {"EID03215", I}, {"EID03216", I},
    {"EID03217", C}, /* the discovery document names another issuer: fix issuer= */
    {"EID03218", U}, /* the discovery document failed: check the provider */
    {"EID03219", U}, /* the key set has no usable key */
    {"EID03220", U}, /* jwks_file unreadable by the child: the key set cannot be had */
    {"EID03222", I}, {"EID03223", I},
    {"EID03301", I}, {"EID03302", I}, {"EID03303", I}, {"EID03304", I}, {"EID03305", I},
    {"EID03306", I}, {"EID03307", I}, {"EID03308", I}, {"EID03309", I}, {"EID03310", I},
    {"EID03311", I}, {"EID03312", I}, {"EID03313", I}, {"EID03314", I}, {"EID03315", I},
    {"EID03401", I}, {"EID03402", I}, {"EID03403", I}, {"EID03404", I}, {"EID03405", I},
    {"EID03406", I}, {"EID03407", I}, {"EID03408", I}, {"EID03409", I}, {"EID03410", I},
    {"EID03411", I}, {"EID03412", I}, {"EID03413", I}, {"EID03414", I}, {"EID03415", I},
    {"EID03502", U}, /* the introspection endpoint did not answer 200 (503) */
    {"EID03503", U}, /* the introspection answer is not JSON (503) */
    {"EID03504", I}, /* not active (401) */
    {"EID03505", U}, /* in-flight bound (503 with Retry-After) */
    {"EID03506", U}, /* rate bound (503 with Retry-After) */
    {"EID03601", U}, {"EID03602", U}, {"EID03603", U}, {"EID03604", U}, {"EID03605", U},
    {"EID03606", U},
};

#define N_EXPECT (sizeof(expect) / sizeof(expect[0]))

static eid_bearer_code_e code_of(eid_class_e c)
{
    switch (c) {
    case M: return EID_BEARER_MALFORMED;
    case C: return EID_BEARER_MISCONFIGURED;
    case U: return EID_BEARER_UNAVAILABLE;
    default: return EID_BEARER_INVALID;
    }
}

/* Each stated tag has its class, and eid_bearer_code() the status for it. */
static void test_every_tag_class(void **state)
{
    size_t i;
    int bad = 0;
    (void)state;
    for (i = 0; i < N_EXPECT; i++) {
        eid_result_t r = {0};
        eid_fail(&r, expect[i].tag, "test");
        if (eid_result_class(expect[i].tag) != expect[i].cls ||
            eid_bearer_code(&r) != code_of(expect[i].cls)) {
            print_error("%s: class %d, expected %d\n", expect[i].tag,
                        (int)eid_result_class(expect[i].tag), (int)expect[i].cls);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static int stated(const char *tag)
{
    size_t i;
    for (i = 0; i < N_EXPECT; i++)
        if (!strcmp(expect[i].tag, tag))
            return 1;
    return 0;
}

/* Every EID03xxx row of docs/errors.md is stated in the table above. */
static void test_docs_tags_stated(void **state)
{
    char line[4096];
    int rows = 0, missing = 0;
    FILE *f = fopen("docs/errors.md", "r");
    (void)state;
    assert_non_null(f); /* the tests run from the source tree's root */
    while (fgets(line, sizeof(line), f)) {
        char tag[9];
        if (strncmp(line, "| EID03", 7))
            continue;
        memcpy(tag, line + 2, 8);
        tag[8] = '\0';
        rows++;
        if (!stated(tag)) {
            print_error("%s is in docs/errors.md but not stated in this test\n", tag);
            missing++;
        }
    }
    fclose(f);
    assert_true(rows >= 80);
    assert_int_equal(missing, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_tag_class),
        cmocka_unit_test(test_docs_tags_stated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
