/*
 * eid_claims.h - token claims (a jansson object) to the normalised identity,
 * by profile, with per-provider overrides; `acr` to level of assurance.
 *
 * Profiles (claim -> identity field):
 *  generic      sub -> subject, name -> display_name, given_name, family_name
 *               -> surname, email
 *  oidc-sweden  generic's sub and names, plus
 *               https://id.oidc.se/claim/personalIdentityNumber -> pnr
 *                 (must be a personnummer),
 *               .../coordinationNumber -> pnr, pnr_is_coordination = 1
 *                 (must be a samordningsnummer; both present -> refused),
 *               .../orgNumber -> org_number, .../orgName -> org_name,
 *               .../orgUnit -> unit_name, .../orgAffiliation: the part after
 *                 the last '@' is an org number (the part before it is never
 *                 interpreted); it fills org_number when .../orgNumber is
 *                 absent and must equal it when present
 *  inera        sub, given_name, family_name, employeeHsaId -> hsa_id,
 *               commissionHsaId / commissionName / commissionPurpose /
 *               commissionRight (multi) -> commission_*,
 *               healthCareProviderHsaId / OrgNo / Name -> org_hsa_id /
 *               org_number / org_name, healthCareUnitHsaId / Name -> unit_*,
 *               systemRole (multi) -> roles,
 *               credentialPersonalIdentityNumber -> pnr (either kind)
 * Every profile: `iss` -> issuer, `acr` -> loa_uri and loa, `scope` (a
 * space-separated string) or else `scp` (array, or space-separated string)
 * -> scopes, `client_id` (else `azp`) -> client_id, `jti` -> token_id,
 * `auth_time` -> auth_time, `exp` -> expires.
 *
 * A claim that is present must be well-formed: single-valued claims are
 * strings (JSON null counts as absent, "" as absent for names), multi-valued
 * ones a string or an array of strings, and no value may contain a control
 * character.  Identifiers are validated (personnummer / samordningsnummer
 * with eid_pnr_classify, HSA-IDs with eid_hsa_ok (lenient), org numbers with
 * eid_orgnr_ok): an invalid one refuses the token instead of being dropped.
 */
#ifndef EID_CLAIMS_H
#define EID_CLAIMS_H

/* Most `aud` values an identity keeps (a token with more is refused). */
#define EID_CLAIMS_MAX_AUDIENCES 32

#include <apr_pools.h>
#include <jansson.h>

#include "eid/eid_identity.h"
#include "eid/eid_result.h"

typedef enum {
    EID_CLAIMS_GENERIC = 0,
    EID_CLAIMS_OIDC_SWEDEN,
    EID_CLAIMS_INERA
} eid_claims_profile_e;

typedef struct eid_claims_map eid_claims_map_t;

/* A map for the generic profile, in `p` (config pool).  Not thread-safe to
 * modify; read-only use afterwards is thread-safe. */
eid_claims_map_t *eid_claims_map_create(apr_pool_t *p);

/* Choose the profile by name ("generic", "oidc-sweden", "inera"); custom
 * claim names set before or after stay in force.  Returns NULL or an error
 * message (static). */
const char *eid_claims_set_profile(eid_claims_map_t *m, const char *name);

/*
 * Take identity field `field` from claim `claim` instead of the profile's
 * claim(s).  Fields (eid_attr keys): subject, pnr, hsa-id, given-name,
 * surname, display-name, email, upn, org-number, org-hsa-id, org-name,
 * unit-hsa-id, unit-name, commission-hsa-id, commission-name,
 * commission-purpose, commission-rights, roles, scopes, loa-uri, client-id.  The value
 * is validated as that field demands (pnr: either kind; *-hsa-id: HSA-ID;
 * org-number: org number; rights, roles, scopes: multi-valued).
 * Returns NULL or an error message in `p`.
 */
const char *eid_claims_set_claim(eid_claims_map_t *m, apr_pool_t *p, const char *field,
                                 const char *claim);

/* Map acr value `uri` to `level` ("0".."4"), overriding the built-in table.
 * Returns NULL or an error message in `p`. */
const char *eid_claims_set_acr(eid_claims_map_t *m, apr_pool_t *p, const char *uri,
                               const char *level);

/*
 * The level of assurance of `uri`: the map's own entries first (m may be
 * NULL), then the built-in table of DOMAIN.md: loa2 (elegnamnden, sambi) -> 2;
 * loa3 (elegnamnden, sambi), eidas-sub, eIDAS substantial -> 3; loa4,
 * eidas-high, eIDAS high -> 4.  Exact string match; everything else
 * (eIDAS low, notified "-nf-" variants, uncertified-loa3, non-resident
 * variants, unknown URIs) -> 0.  Pure.
 */
int eid_claims_acr_loa(const eid_claims_map_t *m, const char *uri);

/*
 * The acr values to ask for a level of at least `min_loa` (the reverse of
 * eid_claims_acr_loa()): every URI of the profile's table whose level is
 * >= min_loa, then every acr.<uri> override of the map with such a level;
 * lowest level first, then table order, overrides by URI; an override
 * changes or removes (level 0) a table URI.  Tables: oidc-sweden the
 * elegnamnden URIs (loa2, loa3, eidas-sub, loa4, eidas-high); inera the
 * sambi URIs (loa2, loa3; Inera's IdP matches acr exactly, so both are
 * asked for level 2); generic the whole built-in table.  An array of
 * const char * in `p` (empty when min_loa <= 0 or nothing fits).  Pure.
 */
apr_array_header_t *eid_claims_acr_uris(const eid_claims_map_t *m, apr_pool_t *p,
                                        int min_loa);

/*
 * Build the identity from `claims`: method bearer, profile = `provider`,
 * plus the fields above.  All strings are copied into `p`.  Returns 0 with
 * *out, or a code with `res` set (EID034xx).  Thread-safe.
 */
int eid_claims_to_identity(apr_pool_t *p, const eid_claims_map_t *m, json_t *claims,
                           const char *provider, eid_identity_t **out, eid_result_t *res);

#endif
