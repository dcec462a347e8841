/*
 * Unit tests: the organisation directory - the file format, every refusal
 * with its exact "file:line: ..." text, groups of groups and cycles, the
 * enrichment of realistic identities, concurrent enrichment, and a large
 * generated file loaded within a second.
 *
 * Organisation numbers here are fictitious (Luhn-valid, 99xx endings);
 * the names are those of a real county for readability only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include <apr_general.h>
#include <apr_strings.h>

#include "eid/eid_directory.h"
#include "eid/eid_identity.h"

static apr_pool_t *pool;

/* The county example (docs/directory.md has the same one, explained). */
static const char county[] =
    "# Norrbotten county (fictitious numbers)\n"
    "Organisation 232100-9991 kind=region name=\"Region Norrbotten\" hsa=SE2321009991-\n"
    "Organisation 2120009986  kind=municipality name=\"Luleå kommun\" hsa=SE2120009986-\n"
    "Organisation 2120009978  kind=municipality name=\"Piteå kommun\" hsa=SE2120009978-\n"
    "Organisation 2120009960\tkind=municipality name=\"Kiruna kommun\"   # no HSA-IDs\n"
    "Organisation 2120009952  kind=municipality name=\"Sorsele kommun\" hsa=SE2120009952-\n"
    "Organisation 5569999997  kind=private-care name=\"Norrvård AB\" "
    "hsa=SE5569999997-,SE2321009991-PV\n"
    "Organisation 5569999989  kind=private-care name=\"Annan vård AB\" hsa=SE5569999989-\n"
    "Organisation 2029999998  kind=state-agency name=\"Exempelmyndigheten\"\n"
    "\n"
    "Group norrbotten-kommuner 2120009986 2120009978 212000-9960\n"
    "Group norrbotten 232100-9991 norrbotten-kommuner\n"
    "Group vardsamverkan norrbotten 5569999997   # contracted providers\n"
    "\n"
    "Role nurse group=norrbotten-kommuner purpose=\"Vård och behandling\"\n"
    "Role physician org-kind=region purpose=\"Vård och behandling\" right=\"Läsa;Alla;Sjf=JA\"\n"
    "Role case-officer org-kind=municipality system-role=\"BIF;Handläggare\"\n"
    "Role reporter group=vardsamverkan\n"
    "Role admin hsa-id=SE2321009991-ADM1,SE2321009991-ADM2\n"
    "Role guest-nurse org=2120009986 hsa-id=SE2120009952-G7\n";

static eid_directory_t *parse_ok(const char *text)
{
    eid_directory_t *dir = NULL;
    const char *err = NULL;
    apr_status_t rv = eid_directory_parse(pool, "t.conf", text, strlen(text), &dir, &err);

    if (rv != APR_SUCCESS)
        fail_msg("unexpected error: %s", err);
    assert_non_null(dir);
    return dir;
}

static void expect_err(const char *text, const char *want)
{
    eid_directory_t *dir = NULL;
    const char *err = NULL;
    apr_status_t rv = eid_directory_parse(pool, "t.conf", text, strlen(text), &dir, &err);

    assert_int_equal(rv, APR_EINVAL);
    assert_null(dir);
    assert_non_null(err);
    assert_string_equal(err, want);
}

static const char *join(apr_array_header_t *a)
{
    return apr_array_pstrcat(pool, a, ',');
}

static eid_identity_t *person(const char *hsa_id, const char *org_number, const char *org_hsa)
{
    eid_identity_t *id = eid_identity_make(pool);

    id->method = EID_METHOD_CERT;
    id->hsa_id = hsa_id;
    id->org_number = org_number;
    id->org_hsa_id = org_hsa;
    id->loa = 3;
    return id;
}

static void add(apr_array_header_t **a, const char *v)
{
    if (!*a)
        *a = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(*a, const char *) = v;
}

static void test_good_file(void **state)
{
    eid_directory_t *dir = parse_ok(county);

    assert_int_equal(eid_directory_org_count(dir), 8);
    assert_int_equal(eid_directory_group_count(dir), 3);
    assert_int_equal(eid_directory_rule_count(dir), 6);
    assert_true(eid_directory_has_group(dir, "norrbotten"));
    assert_false(eid_directory_has_group(dir, "Norrbotten"));
    assert_true(eid_directory_has_role(dir, "guest-nurse"));
    assert_false(eid_directory_has_role(dir, "root"));
    assert_string_equal(eid_org_kind_name(EID_ORG_KIND_PRIVATE_CARE), "private-care");
    assert_null(eid_org_kind_name(EID_ORG_KIND_NONE));
    assert_int_equal(eid_org_kind_parse("state-agency"), EID_ORG_KIND_STATE_AGENCY);
    assert_int_equal(eid_org_kind_parse("Region"), EID_ORG_KIND_NONE);
    /* Empty file, comments only, CRLF line ends, keywords in any case. */
    assert_int_equal(eid_directory_org_count(parse_ok("")), 0);
    assert_int_equal(eid_directory_org_count(parse_ok("# nothing\n   \n\t# here")), 0);
    assert_int_equal(eid_directory_org_count(parse_ok(
                         "organisation 2120009986 kind=municipality\r\n"
                         "GROUP g 2120009986\r\nrole r group=g\r\n")), 1);
    /* A quoted word keeps blanks, '#' and '=', and \" \\ inside quotes. */
    {
        eid_directory_t *d = parse_ok("Organisation 2120009986 kind=municipality "
                                      "name=\"A \\\"#=\\\\ B\"\n");
        eid_identity_t *id = person(NULL, "2120009986", NULL);
        eid_dir_info_t info;
        eid_directory_enrich(pool, d, id, &info);
        assert_string_equal(info.org_name, "A \"#=\\ B");
    }
}

static void test_bad_files(void **state)
{
    static const char org[] = "Organisation 2120009986 kind=municipality\n";
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"Frobnicate x\n",
         "t.conf:1: unknown keyword \"Frobnicate\" (Organisation, Group or Role)"},
        {"\n\nOrganisation 2120009986 kind=municipality colour=red\n",
         "t.conf:3: unknown option \"colour\" for Organisation (kind=, name=, hsa=)"},
        {"Organisation 2120009986 kind=municipality name=\"Luleå\n",
         "t.conf:1: unterminated quote"},
        {"Organisation 2120009987 kind=municipality\n",
         "t.conf:1: malformed organisation number \"2120009987\""},
        {"Organisation 1212121212 kind=municipality\n", /* Luhn ok, but a personnummer shape */
         "t.conf:1: malformed organisation number \"1212121212\""},
        {"Organisation 21200-09986 kind=municipality\n",
         "t.conf:1: malformed organisation number \"21200-09986\""},
        {"Organisation 2120009986 kind=municipality hsa=SE212000998-\n",
         "t.conf:1: malformed HSA-ID prefix \"SE212000998-\" (SE, the owner's 10 digits, \"-\", "
         "then letters or digits)"},
        {"Organisation 2120009986 kind=municipality hsa=SE2120009986-,\n",
         "t.conf:1: empty item in hsa="},
        {"Organisation 2120009986 kind=kommun\n",
         "t.conf:1: unknown kind \"kommun\" (municipality, region, private-care, state-agency)"},
        {"Organisation 2120009986 name=x\n", "t.conf:1: Organisation 2120009986 needs kind="},
        {"Organisation 2120009986 kind=region kind=region\n", "t.conf:1: kind= given twice"},
        {"Organisation 2120009986 kind=\n", "t.conf:1: empty value for kind="},
        {"Organisation kind=region\n", "t.conf:1: Organisation needs an organisation number first"},
        {"Organisation 2120009986 kind=region extra\n",
         "t.conf:1: unexpected word \"extra\" (options are key=value)"},
        {"Organisation 2120009986 kind=region\nOrganisation 212000-9986 kind=region\n",
         "t.conf:2: duplicate organisation 2120009986 (first at line 1)"},
        {"Organisation 2120009986 kind=region hsa=SE2120009986-\n"
         "Organisation 2120009978 kind=region hsa=SE2120009986-\n",
         "t.conf:2: HSA-ID prefix SE2120009986- is already organisation 2120009986's (line 1)"},
        {"Organisation 2120009986 kind=region hsa=SE2120009986-PV\n"
         "Organisation 2120009978 kind=region hsa=SE2120009986-pv\n",
         "t.conf:2: HSA-ID prefix SE2120009986-pv is already organisation 2120009986's (line 1)"},
        {"Organisation 2120009986 kind=municipality\nGroup g 2120009986\nGroup g 2120009986\n",
         "t.conf:3: duplicate group \"g\" (first at line 2)"},
        {"Group 9g 2120009986\n",
         "t.conf:1: Group needs a name first (a letter, then letters, digits, \".\", \"_\" or "
         "\"-\"; at most 64)"},
        {"Group g\n", "t.conf:1: group \"g\" has no members"},
        {"Group g a=b\n", "t.conf:1: unknown option \"a\" for Group (it takes members only)"},
        {"Group g 2120009978\n", "t.conf:1: unknown organisation 2120009978 in group \"g\""},
        {"Group g 2120009979\n", "t.conf:1: malformed organisation number \"2120009979\""},
        {"Organisation 2120009986 kind=municipality\n# c\nGroup g 2120009986 h\n",
         "t.conf:3: unknown group \"h\" in group \"g\""},
        {"Group g b@d\n", "t.conf:1: bad member \"b@d\" (an organisation number or a group name)"},
        {"Role r\n", "t.conf:1: rule for role \"r\" has no condition"},
        {"Role r colour=red\n",
         "t.conf:1: unknown condition \"colour\" for Role (system-role=, purpose=, right=, "
         "org-kind=, group=, org=, hsa-id=)"},
        {"Role r title=3010\n",
         "t.conf:1: title= is not supported yet: no method provides a title code"},
        {"Role r group=nope\n", "t.conf:1: unknown group \"nope\" in rule for role \"r\""},
        {"Role r org=2120009978\n",
         "t.conf:1: unknown organisation 2120009978 in rule for role \"r\""},
        {"Role r org=2120009979\n", "t.conf:1: malformed organisation number in org="},
        {"Role r org-kind=county\n",
         "t.conf:1: unknown kind \"county\" (municipality, region, private-care, state-agency)"},
        {"Role r hsa-id=SE2120009986\n", "t.conf:1: malformed HSA-ID \"SE2120009986\" in hsa-id="},
        {"Role r purpose=\n", "t.conf:1: empty value for purpose="},
        {"Role r group=a,,b\n", "t.conf:1: empty item in group="},
        {"Role r x\n", "t.conf:1: unexpected word \"x\" (conditions are key=value)"},
        {"Role r purpose=A right=B\nRole x purpose=A\nRole r right=B purpose=A\n",
         "t.conf:3: duplicate rule for role \"r\" (first at line 1)"},
        {"Role r hsa-id=SE2120009986-A,SE2120009986-B\nRole r hsa-id=SE2120009986-B "
         "hsa-id=SE2120009986-A\n",
         "t.conf:2: duplicate rule for role \"r\" (first at line 1)"},
        {"kind=region\n", "t.conf:1: a line starts with a keyword (Organisation, Group or Role)"},
        {"Organisation 2120009986 kind=region\x01\n", "t.conf:1: control character (byte 0x01)"},
        {"# ok\nOrganisation 2120009986 kind=region name=\"\xc3\x28\"\n",
         "t.conf:2: not UTF-8 text"},
        {"Role r purpose=\"\xc2\x85\"\n", "t.conf:1: control character"}, /* U+0085 NEL */
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu\n", i);
        expect_err(cases[i].text, cases[i].err);
    }
    /* A NUL byte inside the buffer is a control character, not an end. */
    {
        eid_directory_t *dir = NULL;
        const char *err = NULL;
        assert_int_equal(eid_directory_parse(pool, "t.conf", org, sizeof(org), &dir, &err),
                         APR_EINVAL);
        assert_string_equal(err, "t.conf:2: control character (byte 0x00)");
    }
    /* An overlong word is quoted cut to 64 bytes, on a UTF-8 boundary. */
    {
        char *w = apr_pstrcat(pool, "Frob", apr_psprintf(pool, "%0*d", 59, 0), "åäö\n", NULL);
        expect_err(w, apr_pstrcat(pool, "t.conf:1: unknown keyword \"Frob",
                                  apr_psprintf(pool, "%0*d", 59, 0), "...\" (Organisation, Group "
                                  "or Role)", NULL));
    }
}

static void test_line_limits(void **state)
{
    char *line = apr_palloc(pool, EID_DIRECTORY_MAX_LINE + 3);

    /* Exactly the maximum is fine (a comment), one more byte is not. */
    memset(line, ' ', EID_DIRECTORY_MAX_LINE);
    line[0] = '#';
    line[EID_DIRECTORY_MAX_LINE] = '\n';
    line[EID_DIRECTORY_MAX_LINE + 1] = '\0';
    parse_ok(line);
    line[EID_DIRECTORY_MAX_LINE] = ' ';
    line[EID_DIRECTORY_MAX_LINE + 1] = '\n';
    line[EID_DIRECTORY_MAX_LINE + 2] = '\0';
    expect_err(apr_pstrcat(pool, "# one\n", line, NULL), "t.conf:2: line longer than 8192 bytes");
}

static void test_cycles(void **state)
{
    static const char orgs[] = "Organisation 2120009986 kind=municipality\n";

    expect_err(apr_pstrcat(pool, orgs, "Group a 2120009986 b\nGroup b c\nGroup c a\n", NULL),
               "t.conf:4: cycle among groups: a -> b -> c -> a");
    expect_err(apr_pstrcat(pool, orgs, "Group a 2120009986\nGroup s s\n", NULL),
               "t.conf:3: cycle among groups: s -> s");
    /* A cycle reached from outside it: x is not part of it and not named. */
    expect_err(apr_pstrcat(pool, orgs, "Group x y\nGroup y z 2120009986\nGroup z y\n", NULL),
               "t.conf:4: cycle among groups: y -> z -> y");
    /* A diamond (two paths to one group) is not a cycle. */
    parse_ok(apr_pstrcat(pool, orgs, "Group top l r\nGroup l base\nGroup r base\n"
                                     "Group base 2120009986\n", NULL));
}

static void test_groups_of_groups(void **state)
{
    /* Forward references, a diamond, a four-level chain; each organisation
     * lists every group above it once, sorted. */
    eid_directory_t *dir = parse_ok(
        "Group top mid other\n"
        "Group mid low 2120009978\n"
        "Group other low\n"
        "Group low 2120009986 2120009986\n"
        "Group alone 2120009960\n"
        "Organisation 2120009986 kind=municipality\n"
        "Organisation 2120009978 kind=municipality\n"
        "Organisation 2120009960 kind=municipality\n"
        "Organisation 2120009952 kind=municipality\n");
    eid_dir_info_t info;

    eid_directory_enrich(pool, dir, person(NULL, "2120009986", NULL), &info);
    assert_string_equal(join(info.groups), "low,mid,other,top");
    eid_directory_enrich(pool, dir, person(NULL, "2120009978", NULL), &info);
    assert_string_equal(join(info.groups), "mid,top");
    eid_directory_enrich(pool, dir, person(NULL, "2120009960", NULL), &info);
    assert_string_equal(join(info.groups), "alone");
    eid_directory_enrich(pool, dir, person(NULL, "2120009952", NULL), &info);
    assert_int_equal(info.groups->nelts, 0);
    assert_int_equal(info.org_kind, EID_ORG_KIND_MUNICIPALITY);
}

static void test_enrich_county(void **state)
{
    eid_directory_t *dir = parse_ok(county);
    eid_dir_info_t info;
    eid_identity_t *id;

    /* A nurse in Luleå kommun (SITHS card: org number in the certificate). */
    id = person("SE2120009986-N123", "2120009986", "SE2120009986-1");
    id->commission_purpose = "Vård och behandling";
    eid_directory_enrich(pool, dir, id, &info);
    assert_int_equal(info.org_kind, EID_ORG_KIND_MUNICIPALITY);
    assert_string_equal(info.org_number, "2120009986");
    assert_string_equal(info.org_name, "Luleå kommun");
    assert_string_equal(join(info.groups), "norrbotten,norrbotten-kommuner,vardsamverkan");
    assert_string_equal(join(info.roles), "nurse,reporter");
    /* Same nurse, other purpose: no nurse role (right group, wrong purpose). */
    id->commission_purpose = "Administration";
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(join(info.roles), "reporter");
    /* A municipal case officer (system role), found by HSA-ID prefix only. */
    id = person("SE2120009978-H1", NULL, NULL);
    add(&id->roles, "BIF;Handläggare");
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(info.org_number, "2120009978");
    assert_string_equal(join(info.roles), "case-officer,reporter");

    /* A physician in the region, by the care provider's HSA-ID (token). */
    id = person("SE2321009991-L42", NULL, "SE2321009991-VG1");
    id->method = EID_METHOD_BEARER;
    id->commission_purpose = "Vård och behandling";
    add(&id->commission_rights, "Skriva;Alla;Sjf=NEJ");
    add(&id->commission_rights, "Läsa;Alla;Sjf=JA");
    eid_directory_enrich(pool, dir, id, &info);
    assert_int_equal(info.org_kind, EID_ORG_KIND_REGION);
    assert_string_equal(info.org_name, "Region Norrbotten");
    assert_string_equal(join(info.groups), "norrbotten,vardsamverkan");
    assert_string_equal(join(info.roles), "physician,reporter");
    /* Without the right, not a physician. */
    id->commission_rights = NULL;
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(join(info.roles), "reporter");

    /* Private provider's staff: their HSA-ID lies under the region's prefix,
     * the longer prefix SE2321009991-PV is Norrvård's. */
    id = person("SE2321009991-PV77", NULL, NULL);
    eid_directory_enrich(pool, dir, id, &info);
    assert_int_equal(info.org_kind, EID_ORG_KIND_PRIVATE_CARE);
    assert_string_equal(info.org_number, "5569999997");
    assert_string_equal(join(info.groups), "vardsamverkan");
    assert_string_equal(join(info.roles), "reporter");
    /* ... and the same person's SITHS card: a certificate's organisation
     * number is the one inside its HSA-ID (SE2321009991-...), which says no
     * more than the HSA-ID itself - the longer prefix still wins. */
    id = person("SE2321009991-PV77", "2321009991", NULL);
    eid_directory_enrich(pool, dir, id, &info);
    assert_int_equal(info.org_kind, EID_ORG_KIND_PRIVATE_CARE);
    assert_string_equal(info.org_number, "5569999997");
    assert_string_equal(join(info.groups), "vardsamverkan");
    /* HSA-IDs are compared without regard to case (as eid-hsa-id does): a
     * lower-case local part is still under Norrvård's longer prefix - not
     * the region's shorter one - and still the admin of the hsa-id= rule. */
    id = person("SE2321009991-pv77", NULL, NULL);
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(info.org_number, "5569999997");
    id = person("SE2321009991-adm1", NULL, NULL);
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(join(info.roles), "admin,reporter");
    /* A token that names the region as the care provider of the commission
     * (an explicit claim, not read from the HSA-ID) is the region's. */
    id = person("SE2321009991-PV77", "2321009991", NULL);
    id->method = EID_METHOD_BEARER;
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(info.org_number, "2321009991");
    /* A private provider outside every group: kind, no groups, no role. */
    id = person("SE5569999989-X", NULL, NULL);
    eid_directory_enrich(pool, dir, id, &info);
    assert_int_equal(info.org_kind, EID_ORG_KIND_PRIVATE_CARE);
    assert_int_equal(info.groups->nelts, 0);
    assert_int_equal(info.roles->nelts, 0);
    /* Sorsele (a municipality outside the group): no nurse role even with
     * the purpose; its guest nurse in Luleå gets guest-nurse there only. */
    id = person("SE2120009952-G7", "2120009952", NULL);
    id->commission_purpose = "Vård och behandling";
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(info.org_name, "Sorsele kommun");
    assert_int_equal(info.groups->nelts, 0);
    assert_int_equal(info.roles->nelts, 0);
    id->org_number = "2120009986"; /* acting in a commission at Luleå */
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(join(info.roles), "guest-nurse,nurse,reporter");

    /* Admin by HSA-ID list; the organisation number wins over the prefix. */
    id = person("SE2321009991-ADM2", "2120009978", NULL);
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(info.org_number, "2120009978");
    assert_string_equal(join(info.roles), "admin,reporter");
    /* An unknown org number falls back to the HSA-ID prefixes. */
    id = person("SE2321009991-ADM1", "5560000000", NULL);
    eid_directory_enrich(pool, dir, id, &info);
    assert_string_equal(info.org_number, "2321009991");
    assert_string_equal(join(info.roles), "admin,reporter");

    /* A citizen (BankID, no organisation): nothing. */
    id = eid_identity_make(pool);
    id->method = EID_METHOD_OIDC;
    id->pnr = "191212121212";
    eid_directory_enrich(pool, dir, id, &info);
    assert_int_equal(info.org_kind, EID_ORG_KIND_NONE);
    assert_null(info.org_number);
    assert_null(info.org_name);
    assert_int_equal(info.groups->nelts, 0);
    assert_int_equal(info.roles->nelts, 0);
    /* An HSA-ID shorter than every prefix, and no directory at all. */
    id = person("SE21", NULL, NULL);
    eid_directory_enrich(pool, dir, id, &info);
    assert_int_equal(info.org_kind, EID_ORG_KIND_NONE);
    eid_directory_enrich(pool, NULL, id, &info);
    assert_int_equal(info.roles->nelts, 0);
    assert_int_equal(info.groups->nelts, 0);
}

static char *write_tmp(const char *text, size_t len)
{
    char *path = apr_pstrdup(pool, "/tmp/eid-dir-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_load_file(void **state)
{
    char *path = write_tmp(county, sizeof(county) - 1);
    eid_directory_t *dir = NULL;
    const char *err = NULL;

    assert_int_equal(eid_directory_load(pool, path, 0, &dir, &err), APR_SUCCESS);
    assert_int_equal(eid_directory_org_count(dir), 8);
    /* Too big for the cap given. */
    dir = NULL;
    assert_int_equal(eid_directory_load(pool, path, 100, &dir, &err), APR_ENOSPC);
    assert_null(dir);
    assert_string_equal(err, apr_psprintf(pool, "%s is larger than 100 bytes", path));
    unlink(path);
    /* An error names the path and the line. */
    path = write_tmp("# x\nGroup g 2120009986\n", 23);
    assert_int_equal(eid_directory_load(pool, path, 0, &dir, &err), APR_EINVAL);
    assert_string_equal(err, apr_psprintf(pool, "%s:2: unknown organisation 2120009986 in "
                                                "group \"g\"", path));
    unlink(path);
    assert_int_not_equal(eid_directory_load(pool, path, 0, &dir, &err), APR_SUCCESS);
    assert_non_null(strstr(err, path));
}

/* Many threads enrich against one directory at once (TSan runs this). */
typedef struct {
    const eid_directory_t *dir;
    int ok;
} thr_t;

static void *enrich_loop(void *arg)
{
    thr_t *t = arg;
    apr_pool_t *p;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (i = 0; i < 2000; i++) {
        eid_identity_t *id = eid_identity_make(p);
        eid_dir_info_t info;
        id->hsa_id = (i & 1) ? "SE2321009991-PV1" : "SE2120009986-N1";
        id->commission_purpose = "Vård och behandling";
        eid_directory_enrich(p, t->dir, id, &info);
        t->ok += (i & 1) ? info.roles->nelts == 1 : info.roles->nelts == 2;
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static void test_concurrent_enrich(void **state)
{
    eid_directory_t *dir = parse_ok(county);
    pthread_t th[4];
    thr_t t[4];
    int i;

    for (i = 0; i < 4; i++) {
        t[i].dir = dir;
        t[i].ok = 0;
        assert_int_equal(pthread_create(&th[i], NULL, enrich_loop, &t[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].ok, 2000);
    }
}

/* Luhn check digit for nine digits (the tenth). */
static int luhn9(const char *d)
{
    int i, sum = 0;
    for (i = 0; i < 9; i++) {
        int v = (d[i] - '0') * (i % 2 == 0 ? 2 : 1);
        sum += v / 10 + v % 10;
    }
    return (10 - sum % 10) % 10;
}

static void test_large_file(void **state)
{
    enum { ORGS = 10000, GROUPS = 300 };
    apr_pool_t *p;
    char (*nr)[11] = malloc(sizeof(*nr) * ORGS);
    char *buf, *o;
    size_t cap = (size_t)ORGS * 140 + (size_t)GROUPS * 700 + 4096;
    struct timespec t0, t1;
    double secs, bound = 1.0;
    eid_directory_t *dir = NULL;
    const char *err = NULL;
    eid_identity_t *id;
    eid_dir_info_t info;
    int i, j;

    apr_pool_create(&p, pool);
    o = buf = malloc(cap);
    for (i = 0; i < ORGS; i++) {
        snprintf(nr[i], sizeof(nr[i]), "2120%05d", i);
        nr[i][9] = (char)('0' + luhn9(nr[i]));
        nr[i][10] = '\0';
        o += sprintf(o, "Organisation %s kind=%s name=\"Organisation nummer %d\" hsa=SE%s-\n",
                     nr[i], i % 3 ? "private-care" : "municipality", i, nr[i]);
    }
    /* 250 groups of 40 organisations each, 50 groups of 5 groups each. */
    for (i = 0; i < 250; i++) {
        o += sprintf(o, "Group g%d", i);
        for (j = 0; j < 40; j++)
            o += sprintf(o, " %s", nr[(i * 40 + j) % ORGS]);
        *o++ = '\n';
    }
    for (i = 0; i < GROUPS - 250; i++) {
        o += sprintf(o, "Group h%d", i);
        for (j = 0; j < 5; j++)
            o += sprintf(o, " g%d", (i * 5 + j) % 250);
        *o++ = '\n';
    }
    o += sprintf(o, "Group all h0 h1 h2 h3 h4 h5 h6 h7 h8 h9\n");
    for (i = 0; i < 100; i++)
        o += sprintf(o, "Role r%d group=g%d org-kind=municipality\n", i, i);
    assert_true((size_t)(o - buf) < cap);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(eid_directory_parse(p, "big.conf", buf, (size_t)(o - buf), &dir, &err),
                     APR_SUCCESS);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* The functional bound is one second.  Valgrind and the
     * sanitizer builds run the same binary 5-50 times slower: their bound
     * is wider, the plain run (make test-unit) holds the real one. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    bound = 30.0;
#endif
    if (RUNNING_ON_VALGRIND)
        bound = 60.0;
    print_message("loaded %d organisations, %d groups in %.3f s (bound %.0f s)\n",
                  eid_directory_org_count(dir), eid_directory_group_count(dir), secs, bound);
    assert_true(secs < bound);
    assert_int_equal(eid_directory_org_count(dir), ORGS);
    assert_int_equal(eid_directory_group_count(dir), GROUPS + 1);
    /* Organisation 0: in g0, h0 (g0..g4) and "all"; municipality: role r0. */
    id = person(apr_psprintf(p, "SE%s-X1", nr[0]), NULL, NULL);
    eid_directory_enrich(p, dir, id, &info);
    assert_string_equal(apr_array_pstrcat(p, info.groups, ','), "all,g0,h0");
    assert_string_equal(apr_array_pstrcat(p, info.roles, ','), "r0");
    free(nr);
    free(buf);
    apr_pool_destroy(p);
}

static int setup(void **state)
{
    apr_pool_create(&pool, NULL);
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(pool);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),         cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_line_limits),       cmocka_unit_test(test_cycles),
        cmocka_unit_test(test_groups_of_groups),  cmocka_unit_test(test_enrich_county),
        cmocka_unit_test(test_load_file),         cmocka_unit_test(test_concurrent_enrich),
        cmocka_unit_test(test_large_file),
    };
    int rc;

    apr_initialize();
    rc = cmocka_run_group_tests(tests, setup, teardown);
    apr_terminate();
    return rc;
}
