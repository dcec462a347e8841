/*
 * fuzz_directory - the directory loader on arbitrary bytes.
 *
 * Every input either loads or is refused with one line "fuzz:<line>: ..."
 * whose line number lies within the input, in UTF-8 without control
 * characters, and leaves no directory behind.  A loaded directory enriches
 * a few fixed identities with groups and roles that are sorted, free of
 * duplicates and known to the directory; loading the same bytes twice gives
 * the same counts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "eid/eid_directory.h"
#include "eid/eid_util.h"

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_directory: invariant failed: %s (line %d)\n", #c,    \
                    __LINE__);                                                         \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static void sorted_known(const eid_directory_t *dir, apr_array_header_t *a, int groups)
{
    int i;

    CHECK(a != NULL);
    for (i = 0; i < a->nelts; i++) {
        const char *s = APR_ARRAY_IDX(a, i, const char *);
        CHECK(s && *s);
        CHECK(groups ? eid_directory_has_group(dir, s) : eid_directory_has_role(dir, s));
        if (i > 0)
            CHECK(strcmp(APR_ARRAY_IDX(a, i - 1, const char *), s) < 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    apr_pool_t *p;
    eid_directory_t *dir = NULL, *again = NULL;
    const char *err = NULL;
    apr_status_t rv;
    size_t i, lines = 1;

    if (!init) {
        apr_initialize();
        init = 1;
    }
    apr_pool_create(&p, NULL);
    for (i = 0; i < size; i++)
        lines += data[i] == '\n';
    rv = eid_directory_parse(p, "fuzz", (const char *)data, size, &dir, &err);
    if (rv != APR_SUCCESS) {
        unsigned long line = 0;
        char *end;
        CHECK(dir == NULL);
        CHECK(err && !strncmp(err, "fuzz:", 5));
        line = strtoul(err + 5, &end, 10);
        CHECK(line >= 1 && line <= lines && !strncmp(end, ": ", 2));
        CHECK(eid_utf8_check((const unsigned char *)err, strlen(err), EID_UTF8_NO_CONTROLS) ==
              EID_UTF8_OK);
    } else {
        static const char *const hsa[] = {"SE2321009991-L1", "SE2120009986-N1", "SE5569999997-X",
                                          "SE2120009986", "S"};
        static const char *const num[] = {NULL, "2120009986", "2321009991", "5569999997"};
        size_t h, n;

        CHECK(dir != NULL);
        for (h = 0; h < sizeof(hsa) / sizeof(hsa[0]); h++)
            for (n = 0; n < sizeof(num) / sizeof(num[0]); n++) {
                eid_identity_t *id = eid_identity_make(p);
                eid_dir_info_t info;
                id->hsa_id = hsa[h];
                id->org_number = num[n];
                id->org_hsa_id = hsa[(h + 1) % (sizeof(hsa) / sizeof(hsa[0]))];
                id->commission_purpose = "Vård och behandling";
                eid_directory_enrich(p, dir, id, &info);
                CHECK((info.org_number == NULL) == (info.org_kind == EID_ORG_KIND_NONE));
                CHECK(info.org_kind == EID_ORG_KIND_NONE || eid_org_kind_name(info.org_kind));
                sorted_known(dir, info.groups, 1);
                sorted_known(dir, info.roles, 0);
            }
        CHECK(eid_directory_parse(p, "fuzz", (const char *)data, size, &again, &err) ==
              APR_SUCCESS);
        CHECK(eid_directory_org_count(again) == eid_directory_org_count(dir));
        CHECK(eid_directory_group_count(again) == eid_directory_group_count(dir));
        CHECK(eid_directory_rule_count(again) == eid_directory_rule_count(dir));
    }
    apr_pool_destroy(p);
    return 0;
}
