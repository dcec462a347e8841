/*
 * Unit tests: claims -> identity for the generic, oidc-sweden and inera
 * profiles, custom claim names, identifier validation, acr -> LoA.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <string.h>

#include "eid/eid_claims.h"

#define SE "https://id.oidc.se/claim/"
#define PNR_TOLVAN "191212121212"
#define PNR_CITIZEN "198004122381"
#define SAMORDNING "197010632391"
#define ORG_REGION "2321000016"
#define ORG_COMPANY "5562265719"

static apr_pool_t *pool;

static int setup(void **state)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

static eid_claims_map_t *map(const char *profile)
{
    eid_claims_map_t *m = eid_claims_map_create(pool);
    assert_null(eid_claims_set_profile(m, profile));
    return m;
}

/* Map `json`; returns the result code, *out the identity on success. */
static int run(const eid_claims_map_t *m, const char *json, eid_identity_t **out)
{
    json_error_t err;
    json_t *c = json_loads(json, 0, &err);
    eid_result_t res = {0};
    eid_identity_t *id = NULL;
    int rc;

    if (!c)
        fail_msg("bad test JSON: %s", err.text);
    rc = eid_claims_to_identity(pool, m, c, "op1", &id, &res);
    json_decref(c);
    if (rc) {
        assert_null(id);
        assert_int_equal(atoi(res.tag + 3), rc);
        /* the reason never repeats a value */
        assert_null(strstr(res.reason, "1212"));
        assert_null(strstr(res.reason, "SE2321"));
    }
    if (out)
        *out = id;
    return rc;
}

static const char *item(const apr_array_header_t *a, int i)
{
    assert_non_null(a);
    assert_true(i < a->nelts);
    return APR_ARRAY_IDX(a, i, const char *);
}

static void test_generic(void **state)
{
    eid_identity_t *id;
    assert_int_equal(run(map("generic"),
                         "{\"iss\":\"https://op\",\"sub\":\"u-1\",\"name\":\"Ann Berg\","
                         "\"given_name\":\"Ann\",\"family_name\":\"Berg\",\"email\":\"a@b.se\","
                         "\"scope\":\" read  write \",\"acr\":\"urn:x\",\"auth_time\":1700000000,"
                         "\"exp\":1700000300,\"" SE "personalIdentityNumber\":\"" PNR_TOLVAN "\","
                         "\"employeeHsaId\":\"SE2321000016-P1\"}", &id), 0);
    assert_int_equal(id->method, EID_METHOD_BEARER);
    assert_string_equal(id->profile, "op1");
    assert_string_equal(id->issuer, "https://op");
    assert_string_equal(id->subject, "u-1");
    assert_string_equal(id->display_name, "Ann Berg");
    assert_string_equal(id->given_name, "Ann");
    assert_string_equal(id->surname, "Berg");
    assert_string_equal(id->email, "a@b.se");
    assert_int_equal(id->scopes->nelts, 2);
    assert_string_equal(item(id->scopes, 0), "read");
    assert_string_equal(item(id->scopes, 1), "write");
    assert_int_equal(id->loa, 0);
    assert_string_equal(id->loa_uri, "urn:x");
    assert_true(id->auth_time == apr_time_from_sec(1700000000));
    assert_true(id->expires == apr_time_from_sec(1700000300));
    /* other profiles' claims are not looked at */
    assert_null(id->pnr);
    assert_null(id->hsa_id);
    assert_null(id->serial);
    assert_null(id->roles);
}

static void test_oidc_sweden_citizen(void **state)
{
    eid_identity_t *id;
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"iss\":\"https://op\",\"sub\":\"c1t1zen-7f3a9b2e\","
                         "\"" SE "personalIdentityNumber\":\"" PNR_CITIZEN "\","
                         "\"given_name\":\"Astrid\",\"family_name\":\"Lindgren-Testsson\","
                         "\"name\":\"Astrid Lindgren-Testsson\",\"birthdate\":\"1980-04-12\","
                         "\"acr\":\"http://id.elegnamnden.se/loa/1.0/loa3\","
                         "\"scope\":\"openid https://id.oidc.se/scope/naturalPersonNumber\","
                         "\"email\":\"not@mapped.se\"}", &id), 0);
    assert_string_equal(id->subject, "c1t1zen-7f3a9b2e");
    assert_string_equal(id->pnr, PNR_CITIZEN);
    assert_int_equal(id->pnr_is_coordination, 0);
    assert_string_equal(id->given_name, "Astrid");
    assert_string_equal(id->surname, "Lindgren-Testsson");
    assert_string_equal(id->display_name, "Astrid Lindgren-Testsson");
    assert_int_equal(id->loa, 3);
    assert_string_equal(id->loa_uri, "http://id.elegnamnden.se/loa/1.0/loa3");
    assert_string_equal(item(id->scopes, 1), "https://id.oidc.se/scope/naturalPersonNumber");
    assert_null(id->email);
    assert_null(id->org_number);
}

static void test_oidc_sweden_coordination(void **state)
{
    eid_identity_t *id;
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"sub\":\"c00rd\",\"" SE "coordinationNumber\":\"" SAMORDNING "\","
                         "\"acr\":\"http://id.elegnamnden.se/loa/1.0/eidas-sub\"}", &id), 0);
    assert_string_equal(id->pnr, SAMORDNING);
    assert_int_equal(id->pnr_is_coordination, 1);
    assert_int_equal(id->loa, 3);
    /* both numbers: refused, whichever order */
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "coordinationNumber\":\"" SAMORDNING "\","
                         "\"" SE "personalIdentityNumber\":\"" PNR_CITIZEN "\"}", NULL), 3404);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "personalIdentityNumber\":\"" PNR_CITIZEN "\","
                         "\"" SE "coordinationNumber\":\"" SAMORDNING "\"}", NULL), 3404);
    /* a number in the wrong claim, or invalid */
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "personalIdentityNumber\":\"" SAMORDNING "\"}", NULL), 3405);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "coordinationNumber\":\"" PNR_CITIZEN "\"}", NULL), 3406);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "personalIdentityNumber\":\"198004122382\"}", NULL), 3405);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "personalIdentityNumber\":\"19800412-2381\"}", NULL), 3405);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "personalIdentityNumber\":\"8004122381\"}", NULL), 3405);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "personalIdentityNumber\":\"\"}", NULL), 3405);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "personalIdentityNumber\":198004122381}", NULL), 3401);
    /* null counts as absent */
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "personalIdentityNumber\":null,"
                         "\"" SE "coordinationNumber\":\"" SAMORDNING "\"}", &id), 0);
    assert_int_equal(id->pnr_is_coordination, 1);
}

static void test_oidc_sweden_org(void **state)
{
    eid_identity_t *id;
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"sub\":\"st4ff\",\"" SE "orgAffiliation\":\"vlindman@" ORG_COMPANY "\","
                         "\"" SE "orgNumber\":\"" ORG_COMPANY "\",\"" SE "orgName\":\"Exempelomsorg AB\","
                         "\"" SE "orgUnit\":\"Hemtj\\u00e4nst Norr\",\"given_name\":\"Vera\","
                         "\"family_name\":\"Lindman\",\"name\":\"Vera Lindman\","
                         "\"acr\":\"http://id.elegnamnden.se/loa/1.0/loa3\"}", &id), 0);
    assert_string_equal(id->org_number, ORG_COMPANY);
    assert_string_equal(id->org_name, "Exempelomsorg AB");
    assert_string_equal(id->unit_name, "Hemtj\xc3\xa4nst Norr");
    assert_null(id->pnr);
    assert_null(id->org_hsa_id);
    /* the affiliation alone gives the org number; the part before the
     * (last) @ is never interpreted */
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "orgAffiliation\":\"a@b@" ORG_REGION "\"}", &id), 0);
    assert_string_equal(id->org_number, ORG_REGION);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "orgAffiliation\":\"@" ORG_REGION "\"}", &id), 0);
    assert_string_equal(id->org_number, ORG_REGION);
    /* disagreement, bad shapes */
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "orgNumber\":\"" ORG_COMPANY "\","
                         "\"" SE "orgAffiliation\":\"x@" ORG_REGION "\"}", NULL), 3411);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "orgAffiliation\":\"vlindman\"}", NULL), 3410);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "orgAffiliation\":\"v@5562265718\"}", NULL), 3410);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "orgAffiliation\":\"v@" ORG_COMPANY " \"}", NULL), 3410);
    assert_int_equal(run(map("oidc-sweden"),
                         "{\"" SE "orgAffiliation\":[\"v@" ORG_COMPANY "\"]}", NULL), 3401);
    assert_int_equal(run(map("oidc-sweden"), "{\"" SE "orgNumber\":\"5562265718\"}", NULL), 3409);
    /* a 10-digit personnummer is not an org number */
    assert_int_equal(run(map("oidc-sweden"), "{\"" SE "orgNumber\":\"8004122381\"}", NULL), 3409);
}

static const char *inera_nurse =
    "{\"iss\":\"https://idp.inera\",\"sub\":\"SE2321000016-P0001N\","
    "\"employeeHsaId\":\"SE2321000016-P0001N\",\"allEmployeeHsaIds\":[\"SE2321000016-P0001N\"],"
    "\"commissionHsaId\":\"SE2321000016-U0001M\","
    "\"commissionName\":\"Sjuksk\\u00f6terska, Akutmottagningen\","
    "\"commissionPurpose\":\"V\\u00e5rd och behandling\","
    "\"commissionRight\":[\"L\\u00e4sa;Alla;VG\",\"Skriva;Alla;VE\"],"
    "\"healthCareProviderHsaId\":\"SE2321000016-F0001\","
    "\"healthCareProviderOrgNo\":\"" ORG_REGION "\","
    "\"healthCareProviderName\":\"Region Exempel\","
    "\"healthCareUnitHsaId\":\"SE2321000016-E0001\","
    "\"healthCareUnitName\":\"Akutmottagningen, Exempelsjukhuset\","
    "\"systemRole\":[\"BIF;Sp\\u00e4rradministrat\\u00f6r\",\"INCIDENT;Rapport\\u00f6r\"],"
    "\"credentialPersonalIdentityNumber\":\"" PNR_TOLVAN "\","
    "\"given_name\":\"Tolvan\",\"family_name\":\"Tolvansson\","
    "\"acr\":\"http://id.sambi.se/loa/loa3\","
    "\"scope\":\"openid profile incident:read incident:write\"";

static char *inera(const char *extra)
{
    return apr_pstrcat(pool, inera_nurse, extra ? "," : "", extra ? extra : "", "}", NULL);
}

static void test_inera(void **state)
{
    eid_identity_t *id;
    assert_int_equal(run(map("inera"), inera(NULL), &id), 0);
    assert_string_equal(id->subject, "SE2321000016-P0001N");
    assert_string_equal(id->hsa_id, "SE2321000016-P0001N");
    assert_string_equal(id->commission_hsa_id, "SE2321000016-U0001M");
    assert_string_equal(id->commission_name, "Sjuksk\xc3\xb6terska, Akutmottagningen");
    assert_string_equal(id->commission_purpose, "V\xc3\xa5rd och behandling");
    assert_int_equal(id->commission_rights->nelts, 2);
    assert_string_equal(item(id->commission_rights, 0), "L\xc3\xa4sa;Alla;VG");
    assert_string_equal(item(id->commission_rights, 1), "Skriva;Alla;VE");
    assert_string_equal(id->org_hsa_id, "SE2321000016-F0001");
    assert_string_equal(id->org_number, ORG_REGION);
    assert_string_equal(id->org_name, "Region Exempel");
    assert_string_equal(id->unit_hsa_id, "SE2321000016-E0001");
    assert_string_equal(id->unit_name, "Akutmottagningen, Exempelsjukhuset");
    assert_int_equal(id->roles->nelts, 2);
    assert_string_equal(item(id->roles, 0), "BIF;Sp\xc3\xa4rradministrat\xc3\xb6r");
    assert_string_equal(item(id->roles, 1), "INCIDENT;Rapport\xc3\xb6r");
    assert_string_equal(id->pnr, PNR_TOLVAN);
    assert_int_equal(id->pnr_is_coordination, 0);
    assert_string_equal(id->given_name, "Tolvan");
    assert_string_equal(id->surname, "Tolvansson");
    assert_null(id->display_name);
    assert_int_equal(id->loa, 3);
    assert_int_equal(id->scopes->nelts, 4);
    /* a single role as a string; a samordningsnummer as credential */
    assert_int_equal(run(map("inera"), "{\"systemRole\":\"BIF;Admin\",\"credentialPersonal"
                                       "IdentityNumber\":\"" SAMORDNING "\"}", &id), 0);
    assert_int_equal(id->roles->nelts, 1);
    assert_int_equal(id->pnr_is_coordination, 1);
}

static void test_inera_invalid(void **state)
{
    const eid_claims_map_t *m = map("inera");
    assert_int_equal(run(m, "{\"employeeHsaId\":\"SE2321000016_P0001N\"}", NULL), 3408);
    assert_int_equal(run(m, "{\"employeeHsaId\":\"se2321000016-P0001N\"}", NULL), 3408);
    assert_int_equal(run(m, "{\"commissionHsaId\":\"SE2321000016-\"}", NULL), 3408);
    assert_int_equal(run(m, "{\"healthCareProviderHsaId\":\"SE2321000016-ABCDEFGHIJKLMNOPQRS\"}",
                         NULL), 3408);
    assert_int_equal(run(m, "{\"healthCareUnitHsaId\":\"\"}", NULL), 3408);
    assert_int_equal(run(m, "{\"healthCareProviderOrgNo\":\"2321000017\"}", NULL), 3409);
    assert_int_equal(run(m, "{\"credentialPersonalIdentityNumber\":\"191212121213\"}", NULL),
                     3407);
    assert_int_equal(run(m, "{\"systemRole\":[\"a\",1]}", NULL), 3402);
    assert_int_equal(run(m, "{\"systemRole\":{\"a\":\"b\"}}", NULL), 3402);
    assert_int_equal(run(m, "{\"commissionRight\":[{\"activity\":\"L\\u00e4sa\"}]}", NULL), 3402);
    assert_int_equal(run(m, "{\"commissionRight\":7}", NULL), 3402);
    assert_int_equal(run(m, "{\"systemRole\":[\"a\\nb\"]}", NULL), 3403);
    assert_int_equal(run(m, "{\"commissionName\":[\"x\"]}", NULL), 3401);
    /* legacy HSA-IDs whose owner part fails Luhn are accepted (lenient) */
    assert_int_equal(run(m, "{\"employeeHsaId\":\"SE1234567890-abc\"}", NULL), 0);
}

static void test_values(void **state)
{
    eid_identity_t *id;
    const eid_claims_map_t *m = map("generic");
    {
        /* a NUL cannot come out of the token parser; still, it is refused */
        json_t *c = json_object();
        eid_result_t res;
        json_object_set_new(c, "given_name", json_stringn("A\0B", 3));
        assert_int_equal(eid_claims_to_identity(pool, m, c, "op1", &id, &res), 3403);
        json_decref(c);
    }
    assert_int_equal(run(m, "{\"given_name\":\"Ann\\r\\nX-Eid-Pnr: 1\"}", NULL), 3403);
    assert_int_equal(run(m, "{\"iss\":\"https://op\\b\"}", NULL), 3403);
    assert_int_equal(run(m, "{\"given_name\":\"Ann\\u0085\"}", NULL), 3403);
    assert_int_equal(run(m, "{\"given_name\":\"Ann\\u007f\"}", NULL), 3403);
    assert_int_equal(run(m, "{\"given_name\":\"Ann\\tB\"}", NULL), 3403);
    assert_int_equal(run(m, "{\"given_name\":7}", NULL), 3401);
    assert_int_equal(run(m, "{\"given_name\":true}", NULL), 3401);
    assert_int_equal(run(m, "{\"sub\":123}", NULL), 3401);
    assert_int_equal(run(m, "{\"acr\":[\"http://id.sambi.se/loa/loa3\"]}", NULL), 3412);
    assert_int_equal(run(m, "{\"auth_time\":\"1700000000\"}", NULL), 3414);
    assert_int_equal(run(m, "{\"auth_time\":1.5}", NULL), 3414);
    assert_int_equal(run(m, "{\"auth_time\":0}", NULL), 3414);
    /* empty strings and null are absent, never "" */
    assert_int_equal(run(m, "{\"given_name\":\"\",\"family_name\":null,\"acr\":\"\","
                            "\"scope\":\"\",\"sub\":\"\"}", &id), 0);
    assert_null(id->given_name);
    assert_null(id->surname);
    assert_null(id->loa_uri);
    assert_null(id->scopes);
    assert_null(id->subject);
    /* non-ASCII names pass as they are */
    assert_int_equal(run(m, "{\"name\":\"\\u00c5sa \\u00d6berg\"}", &id), 0);
    assert_string_equal(id->display_name, "\xc3\x85sa \xc3\x96" "berg");
}

static void test_scopes(void **state)
{
    eid_identity_t *id;
    const eid_claims_map_t *m = map("generic");
    assert_int_equal(run(m, "{\"scp\":[\"a\",\"b\"]}", &id), 0);
    assert_int_equal(id->scopes->nelts, 2);
    assert_int_equal(run(m, "{\"scp\":\"User.Read Mail.Send\"}", &id), 0);
    assert_string_equal(item(id->scopes, 1), "Mail.Send");
    /* scope wins, scp is the fallback only */
    assert_int_equal(run(m, "{\"scope\":\"x\",\"scp\":[\"a\",\"b\"]}", &id), 0);
    assert_int_equal(id->scopes->nelts, 1);
    assert_string_equal(item(id->scopes, 0), "x");
    assert_int_equal(run(m, "{\"scope\":5}", NULL), 3413);
    assert_int_equal(run(m, "{\"scp\":[\"a\",5]}", NULL), 3413);
    assert_int_equal(run(m, "{\"scope\":{}}", NULL), 3413);
    assert_int_equal(run(m, "{\"scope\":\"a\\u0001b\"}", NULL), 3403);
}

/* The client system and the token id, for the audit trail (RFC 9068 client_id,
 * OIDC azp as the fallback). */
static void test_client_and_token_id(void **state)
{
    eid_identity_t *id;
    const eid_claims_map_t *m = map("inera");
    assert_int_equal(run(m, "{\"client_id\":\"journal-app\",\"azp\":\"other\","
                            "\"jti\":\"t-42\"}", &id), 0);
    assert_string_equal(id->client_id, "journal-app");
    assert_string_equal(id->token_id, "t-42");
    assert_int_equal(run(m, "{\"azp\":\"portal\"}", &id), 0);
    assert_string_equal(id->client_id, "portal");
    assert_null(id->token_id);
    assert_int_equal(run(m, "{}", &id), 0);
    assert_null(id->client_id);
    assert_int_equal(run(m, "{\"client_id\":7}", NULL), 3401);
    assert_int_equal(run(m, "{\"jti\":[\"a\"]}", NULL), 3401);
    assert_int_equal(run(m, "{\"jti\":\"a\\r\\nb\"}", NULL), 3403);
    /* and the copy the token cache and requests use keeps them */
    assert_int_equal(run(m, "{\"client_id\":\"c\",\"jti\":\"j\"}", &id), 0);
    id = eid_identity_copy(pool, id);
    assert_string_equal(id->client_id, "c");
    assert_string_equal(id->token_id, "j");
}

static void test_acr_table(void **state)
{
    static const struct {
        const char *uri;
        int loa;
    } t[] = {
        {"http://id.elegnamnden.se/loa/1.0/loa2", 2},
        {"http://id.sambi.se/loa/loa2", 2},
        {"http://id.elegnamnden.se/loa/1.0/loa3", 3},
        {"http://id.sambi.se/loa/loa3", 3},
        {"http://id.elegnamnden.se/loa/1.0/eidas-sub", 3},
        {"http://eidas.europa.eu/LoA/substantial", 3},
        {"http://id.elegnamnden.se/loa/1.0/loa4", 4},
        {"http://id.elegnamnden.se/loa/1.0/eidas-high", 4},
        {"http://eidas.europa.eu/LoA/high", 4},
        /* never a level unless configured */
        {"http://eidas.europa.eu/LoA/low", 0},
        {"http://id.elegnamnden.se/loa/1.0/eidas-low", 0},
        {"http://id.elegnamnden.se/loa/1.0/eidas-nf-low", 0},
        {"http://id.elegnamnden.se/loa/1.0/eidas-nf-sub", 0},
        {"http://id.elegnamnden.se/loa/1.0/eidas-nf-high", 0},
        {"http://id.swedenconnect.se/loa/1.0/uncertified-loa3", 0},
        {"http://id.swedenconnect.se/loa/1.0/loa2-nonresident", 0},
        {"http://id.swedenconnect.se/loa/1.0/loa3-nonresident", 0},
        {"http://id.swedenconnect.se/loa/1.0/loa4-nonresident", 0},
        {"http://id.elegnamnden.se/loa/1.0/loa3-nonresident", 0},
        {"http://id.elegnamnden.se/loa/1.0/loa1", 0},
        {"HTTP://ID.ELEGNAMNDEN.SE/LOA/1.0/LOA3", 0},
        {"http://id.elegnamnden.se/loa/1.0/loa3/", 0},
        {"http://id.elegnamnden.se/loa/1.0/loa3 ", 0},
        {"https://id.elegnamnden.se/loa/1.0/loa3", 0},
        {"", 0},
        {"urn:unknown", 0},
    };
    size_t i;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (eid_claims_acr_loa(NULL, t[i].uri) != t[i].loa)
            fail_msg("%s: expected %d, got %d", t[i].uri, t[i].loa,
                     eid_claims_acr_loa(NULL, t[i].uri));
    }
}

static void test_acr_config(void **state)
{
    eid_claims_map_t *m = map("oidc-sweden");
    eid_identity_t *id;

    assert_null(eid_claims_set_acr(m, pool, "http://id.swedenconnect.se/loa/1.0/uncertified-loa3",
                                   "2"));
    assert_null(eid_claims_set_acr(m, pool, "http://id.sambi.se/loa/loa3", "2"));
    assert_null(eid_claims_set_acr(m, pool, "http://eidas.europa.eu/LoA/low", "1"));
    assert_int_equal(eid_claims_acr_loa(m, "http://id.swedenconnect.se/loa/1.0/uncertified-loa3"),
                     2);
    assert_int_equal(eid_claims_acr_loa(m, "http://id.sambi.se/loa/loa3"), 2);
    assert_int_equal(eid_claims_acr_loa(m, "http://eidas.europa.eu/LoA/low"), 1);
    assert_int_equal(eid_claims_acr_loa(m, "http://id.elegnamnden.se/loa/1.0/loa3"), 3);
    assert_int_equal(run(m, "{\"acr\":\"http://eidas.europa.eu/LoA/low\"}", &id), 0);
    assert_int_equal(id->loa, 1);
    assert_non_null(eid_claims_set_acr(m, pool, "urn:x", "5"));
    assert_non_null(eid_claims_set_acr(m, pool, "urn:x", "3a"));
    assert_non_null(eid_claims_set_acr(m, pool, "urn:x", ""));
    assert_non_null(eid_claims_set_acr(m, pool, "", "3"));
    /* another map is not affected */
    assert_int_equal(eid_claims_acr_loa(map("generic"), "http://id.sambi.se/loa/loa3"), 3);
}

static void test_custom(void **state)
{
    eid_claims_map_t *m = eid_claims_map_create(pool);
    eid_identity_t *id;

    assert_null(eid_claims_set_claim(m, pool, "hsa-id", "myHsa"));
    assert_null(eid_claims_set_claim(m, pool, "roles", "groups"));
    assert_null(eid_claims_set_claim(m, pool, "pnr", "ssn"));
    assert_null(eid_claims_set_claim(m, pool, "email", "mail"));
    assert_null(eid_claims_set_claim(m, pool, "subject", "oid"));
    assert_null(eid_claims_set_claim(m, pool, "org-number", "orgNo"));
    assert_null(eid_claims_set_claim(m, pool, "loa-uri", "loa"));
    /* set before the profile: stays in force */
    assert_null(eid_claims_set_profile(m, "oidc-sweden"));
    assert_int_equal(run(m, "{\"myHsa\":\"SE2321000016-P1\",\"groups\":[\"g1\",\"g2\"],"
                            "\"ssn\":\"" SAMORDNING "\",\"mail\":\"m@x.se\",\"email\":\"e@x.se\","
                            "\"oid\":\"o-1\",\"sub\":\"s-1\",\"orgNo\":\"" ORG_REGION "\","
                            "\"loa\":\"http://id.sambi.se/loa/loa2\",\"acr\":\"http://id.sambi.se/"
                            "loa/loa3\",\"" SE "personalIdentityNumber\":\"" PNR_CITIZEN "\","
                            "\"" SE "orgAffiliation\":\"x@" ORG_COMPANY "\"}", &id), 0);
    assert_string_equal(id->hsa_id, "SE2321000016-P1");
    assert_string_equal(item(id->roles, 1), "g2");
    /* the profile's pnr claims are replaced, not merged */
    assert_string_equal(id->pnr, SAMORDNING);
    assert_int_equal(id->pnr_is_coordination, 1);
    assert_string_equal(id->email, "m@x.se");
    assert_string_equal(id->subject, "o-1");
    /* orgNumber and orgAffiliation are both replaced by orgNo */
    assert_string_equal(id->org_number, ORG_REGION);
    assert_int_equal(id->loa, 2);
    /* validation follows the field */
    assert_int_equal(run(m, "{\"myHsa\":\"nope\"}", NULL), 3408);
    assert_int_equal(run(m, "{\"ssn\":\"123\"}", NULL), 3407);
    assert_int_equal(run(m, "{\"orgNo\":\"" PNR_TOLVAN "\"}", NULL), 3409);
    assert_int_equal(run(m, "{\"groups\":[null]}", NULL), 3402);
    /* unknown or fixed fields, empty names */
    assert_non_null(eid_claims_set_claim(m, pool, "issuer", "x"));
    assert_non_null(eid_claims_set_claim(m, pool, "method", "x"));
    assert_non_null(eid_claims_set_claim(m, pool, "loa", "x"));
    assert_non_null(eid_claims_set_claim(m, pool, "nope", "x"));
    assert_non_null(eid_claims_set_claim(m, pool, "email", ""));
    assert_non_null(eid_claims_set_profile(m, "saml"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generic),
        cmocka_unit_test(test_oidc_sweden_citizen),
        cmocka_unit_test(test_oidc_sweden_coordination),
        cmocka_unit_test(test_oidc_sweden_org),
        cmocka_unit_test(test_inera),
        cmocka_unit_test(test_inera_invalid),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_client_and_token_id),
        cmocka_unit_test(test_acr_table),
        cmocka_unit_test(test_acr_config),
        cmocka_unit_test(test_custom),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
