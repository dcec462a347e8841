/*
 * eid_oidc.h - the relying-party side of an OpenID Connect browser login
 * (authorization code flow with PKCE), for providers with login=on.
 *
 * A login provider is an EidProvider (eid_bearer.h) with login options:
 * the same issuer, key set, algs, claims profile, acr table and ca_file as
 * for bearer tokens.  This unit builds the authorization request, redeems
 * the code at the token endpoint, checks the ID token (OpenID Connect Core
 * 1.0, 3.1.3.7), optionally asks the userinfo endpoint, maps the claims to
 * an identity, checks back-channel logout tokens and builds the RP-initiated
 * logout URL.  It keeps no per-login state: the caller keeps the pending
 * login (eid_pending.h) and the replay markers (eid_store).
 *
 * Results follow eid_result.h classes: INVALID (the answer is refused),
 * UNAVAILABLE (the provider is down, slow, answers 5xx or garbage),
 * MISCONFIGURED (our configuration cannot do this), FORBIDDEN (the login's
 * level of assurance is below the one asked for).  Tags EID07xxx
 * (docs/errors.md), plus the token rules' EID031xx-EID033xx and the HTTP
 * client's EID036xx.  Every function is thread-safe.
 */
#ifndef EID_OIDC_H
#define EID_OIDC_H

#include <apr_pools.h>
#include <apr_time.h>

#include "eid/eid_bearer.h"
#include "eid/eid_identity.h"
#include "eid/eid_pending.h"
#include "eid/eid_result.h"

/* Length of state, nonce and PKCE verifier: base64url of 32 random bytes. */
#define EID_OIDC_RANDOM_LEN 43

/* The `events` member a back-channel logout token must carry. */
#define EID_OIDC_BCL_EVENT "http://schemas.openid.net/event/backchannel-logout"

/* Logout tokens older than this (by iat) are refused. */
#define EID_OIDC_LOGOUT_MAX_AGE apr_time_from_sec(300)

/* 1 when the provider has login=on (and passed its check), else 0.  Pure. */
int eid_oidc_enabled(const eid_provider_t *pv);

/* Seconds a pending login is valid (login_timeout, default 600). */
apr_interval_time_t eid_oidc_login_timeout(const eid_provider_t *pv);

typedef struct eid_oidc_authreq {
    const char *url;                           /* where to send the browser */
    const char *state, *nonce, *code_verifier; /* 43-char base64url randoms */
} eid_oidc_authreq_t;

/*
 * The authorization request: response_type=code, client_id, redirect_uri,
 * scope, state, nonce, code_challenge (S256 of a fresh verifier) and
 * code_challenge_method=S256, acr_values (every URI the provider's acr table
 * gives a level >= min_loa, lowest level first; none when min_loa <= 0;
 * MISCONFIGURED EID07102 when the table has none), prompt (prompt=login when
 * `prompt_login`, else the configured one), max_age, login_hint (when
 * non-NULL) - every value form-encoded.  Fetches the discovery document when
 * the endpoints are not known yet (UNAVAILABLE EID07001 when it cannot).
 * Returns APR_SUCCESS with *out in `p`, or an error with `res` set.
 */
apr_status_t eid_oidc_auth_request(apr_pool_t *p, eid_provider_t *pv, const char *redirect_uri,
                                   int min_loa, const char *login_hint, int prompt_login,
                                   apr_time_t now, eid_oidc_authreq_t *out, eid_result_t *res);

typedef struct eid_oidc_login {
    eid_identity_t *id;        /* method EID_METHOD_OIDC, profile = provider name */
    const char *id_token, *sid, *sub; /* sid NULL when the OP sent none */
    apr_time_t id_token_exp;
} eid_oidc_login_t;

/*
 * Redeem `code` at the token endpoint (grant_type=authorization_code, the
 * redirect_uri, pd->code_verifier; client authentication per token_auth),
 * bounded by fetch_timeout and fetch_max_bytes.  The answer must be a JSON
 * object with token_type Bearer (any case), an access_token and an id_token.
 * The ID token: signature with the provider's keys and algs, typ JWT or
 * absent, iss exact, aud contains client_id, azp == client_id when present
 * (required with several aud), exp/iat (leeway), sub, nonce == pd->nonce
 * (constant time), at_hash / c_hash when present, auth_time with max_age,
 * acr -> level >= pd->min_loa (FORBIDDEN otherwise, also for a missing acr
 * when a level was asked).  With userinfo=on the userinfo answer (JSON only)
 * must carry the same sub; its claims are added to the ID token's (the ID
 * token's win).  The identity: eid_claims_to_identity() by the provider's
 * profile, method EID_METHOD_OIDC, profile = provider name, expires = the ID
 * token's exp.  pd->provider is not compared here (the caller chose `pv` by
 * it).  Returns APR_SUCCESS with *out in `p`, or an error with `res` set.
 */
apr_status_t eid_oidc_redeem(apr_pool_t *p, eid_provider_t *pv, const char *redirect_uri,
                             const char *code, const eid_pending_t *pd, apr_time_t now,
                             eid_oidc_login_t *out, eid_result_t *res);

/*
 * A back-channel logout token (OpenID Connect Back-Channel Logout 1.0,
 * 2.4 and 2.6): a JWS whose iss is exactly the issuer of one of `provs` (a
 * login provider), signed with its keys and algs, typ "logout+jwt" or
 * absent, aud containing its client_id, iat present within leeway and not
 * older than EID_OIDC_LOGOUT_MAX_AGE, exp (when present) not passed, jti
 * present, events an object with member EID_OIDC_BCL_EVENT whose value is an
 * object, sid or sub present (strings), no nonce.  The jti replay check is
 * the caller's (the store).  Outputs point into `p` (*sid / *sub NULL when
 * absent).  Returns APR_SUCCESS, or an error with `res` set.
 */
apr_status_t eid_oidc_logout_token(apr_pool_t *p, eid_provider_t *const *provs, int nprovs,
                                   const char *tok, apr_size_t len, apr_time_t now,
                                   eid_provider_t **pv, const char **sid, const char **sub,
                                   const char **jti, eid_result_t *res);

/* How long a logout token's jti must be remembered so that no replay is
 * accepted: iat may be `leeway` in the future at the first delivery and the
 * token is taken until iat + EID_OIDC_LOGOUT_MAX_AGE + leeway, so at least
 * MAX_AGE + 2 * leeway; here 2 * (MAX_AGE + leeway).  Pure. */
apr_interval_time_t eid_oidc_logout_jti_ttl(const eid_provider_t *pv);

/*
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the
 * end_session_endpoint with id_token_hint, client_id,
 * post_logout_redirect_uri and state (each only when non-NULL),
 * form-encoded.  NULL when the provider has no end_session_endpoint (none
 * configured, none discovered).  May fetch the discovery document.
 */
const char *eid_oidc_end_session_url(apr_pool_t *p, eid_provider_t *pv, const char *id_token_hint,
                                     const char *post_logout_redirect_uri, const char *state);

/*
 * With end_session_method=post: the end_session_endpoint a form POSTs the
 * same parameters to (RP-Initiated Logout 1.0 section 2: the OP must take
 * GET and POST), so the ID token - personnummer and all - stays out of the
 * URL, the browser's history and proxy logs.  NULL with the default get, or
 * when the provider has no such endpoint.
 */
const char *eid_oidc_end_session_form(apr_pool_t *p, eid_provider_t *pv);

/* The provider's client_id (NULL when none is configured). */
const char *eid_oidc_client_id(const eid_provider_t *pv);

/*
 * The provider's login endpoints, fetching the discovery document first
 * when they are not known yet.  APR_SUCCESS with *authz / *token set (the
 * others may be NULL), else an error with `res` set.  Tests, status.
 */
apr_status_t eid_oidc_endpoints(apr_pool_t *p, eid_provider_t *pv, const char **authz,
                                const char **token, const char **userinfo,
                                const char **end_session, eid_result_t *res);

#endif
