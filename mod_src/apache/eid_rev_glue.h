/*
 * eid_rev_glue.h - revocation checking of client certificates in httpd:
 * EidRevocation (per trust profile), the per-process answer caches, and the
 * check the certificate method runs after its own (docs/revocation.md).
 */
#ifndef EID_REV_GLUE_H
#define EID_REV_GLUE_H

#include "mod_auth_eid.h"

const char *eid_set_revocation(cmd_parms *cmd, void *dc, int argc, char *const argv[]);

#define EID_REVOCATION_SERVER_CMDS                                                        \
    AP_INIT_TAKE_ARGV("EidRevocation", eid_set_revocation, NULL, RSRC_CONF,               \
                      "<profile> off | ocsp | crl | ocsp,crl | crl,ocsp [responder=URL] " \
                      "[crl=FILE|URL]... [crl-url=URL]... [crl-refresh=SEC] [crl-max=BYTES] [fail=closed|grace] [grace=SEC] [timeout=SEC] "      \
                      "[max-age=SEC] [cache=N] [inflight=N] [nonce=on|off] - revocation " \
                      "checking of the profile's certificates"),

/* A certificate's revocation verdict, kept with the connection's cached
 * certificate verdict (strings static or in the connection pool). */
typedef struct eid_rev_verdict {
    int done;           /* a check ran, or the profile has none */
    int refuse;         /* 0 admit; else the HTTP status (403, 500, 503) */
    apr_time_t until;   /* check again from this time on; 0: never */
    const char *status; /* audit: good, revoked, unknown, undetermined; NULL: not checked */
    const char *source; /* audit: ocsp, crl, cache, grace */
    const char *tag;    /* of a refusal */
    const char *reason; /* of a refusal */
    int quiet;          /* log the refusal at debug: the outage was logged once */
} eid_rev_verdict_t;

/*
 * Check (again) the revocation of the connection's client certificate
 * (mod_ssl's SSL_CLIENT_CERT, verified by mod_ssl and accepted by the core
 * under trust profile `profile`), filling `v` with strings in the connection
 * pool.  Blocking: an OCSP fetch is bounded by the profile's timeout and its
 * number in flight.  No-op result (done, status NULL) for a profile without
 * revocation checking.
 */
void eid_rev_check(request_rec *r, const char *profile, eid_rev_verdict_t *v);

/* check_config hook: what later lines changed (a profile's CA without its CRL). */
int eid_rev_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);

/* child_init: the process-wide answer caches, before any thread runs. */
void eid_rev_child_init(apr_pool_t *pchild, server_rec *s);

#endif
