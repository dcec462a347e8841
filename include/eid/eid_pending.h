/*
 * eid_pending.h - a login in progress, as the browser's state cookie keeps it.
 *
 * Shared by eid_session (which seals it into the cookie) and eid_oidc (which
 * checks the provider's answer against it).  Kept client-side, sealed with
 * the session keys, so that starting a login writes nothing to the store:
 * anonymous requests cannot fill it.
 */
#ifndef EID_PENDING_H
#define EID_PENDING_H

#include <apr_time.h>

/* Longest return-to URL kept (bytes); a longer one is replaced by "/". */
#define EID_PENDING_MAX_RETURN 1024

typedef struct eid_pending {
    const char *provider;      /* login provider name */
    const char *state;         /* 43-char base64url random: the `state` parameter */
    const char *nonce;         /* 43-char base64url random: the `nonce` parameter */
    const char *code_verifier; /* PKCE (RFC 7636) verifier, 43 chars */
    const char *return_to;     /* checked local path or allowed URL, <= EID_PENDING_MAX_RETURN */
    int min_loa;               /* level asked for (0: none) */
    apr_time_t created;        /* when the login started */
} eid_pending_t;

#endif
