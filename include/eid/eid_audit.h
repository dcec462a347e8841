/*
 * eid_audit.h - one structured record per access decision.
 *
 * A record is a single JSON object on one line (JSON Lines), written with
 * one write() so lines from many processes never interleave.  It holds what
 * Patientdatalagen asks a log to hold - who (ids, organisation, commission),
 * what (HTTP method on resource), when, where (server), the decision and why
 * - and nothing secret: no token, no cookie, and the personnummer only as a
 * keyed pseudonym unless the sysadmin turns pseudonymisation off.
 */
#ifndef EID_AUDIT_H
#define EID_AUDIT_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "eid/eid_identity.h"

typedef enum {
    EID_DECISION_ALLOW = 0,
    EID_DECISION_DENY = 1, /* policy said no (403) */
    EID_DECISION_AUTHN = 2, /* no or bad credential (401/403) */
    EID_DECISION_ERROR = 3 /* the module could not decide (5xx) */
} eid_decision_e;

typedef struct eid_audit_rec {
    apr_time_t time;        /* request start */
    const char *request_id;
    const char *server;     /* virtual host name */
    const char *client_ip;
    const eid_identity_t *id; /* NULL when nobody was authenticated */
    const char *user;       /* r->user, if any */
    const char *http_method;
    const char *resource;   /* path (no query string: it may carry secrets) */
    eid_decision_e decision;
    const char *reason;     /* short machine-friendly reason, may be NULL */
    const char *tag;        /* the EIDxxxxx tag of the log line that explains it, or NULL */
    int status;             /* final HTTP status */
    /* A refused client certificate (NULL otherwise): issuer DN, serial (hex),
     * subject DN with any personnummer already pseudonymised. */
    const char *cert_issuer, *cert_serial, *cert_subject;
    /* The Require eid-* lines that ran, each with its outcome
     * ("eid-policy staff: granted"); NULL or empty when none ran. */
    const apr_array_header_t *authz;
    /* The client certificate's revocation check (NULL: none ran): status
     * good / revoked / unknown / undetermined, source ocsp / crl / cache /
     * grace (a good answer kept past its age while the source is down). */
    const char *revocation, *revocation_source;
    /* The identity's fields as eid_audit_identity_format() made them for
     * `id` with the same options (a memo of an identity many requests
     * share), or NULL: formatted from `id`. */
    const char *id_fields;
    apr_size_t id_fields_len;
} eid_audit_rec_t;

typedef struct eid_audit_opts {
    int pseudonymise;            /* 1: personnummer as pseudonym; 0: in clear */
    const unsigned char *key;    /* pseudonym key */
    size_t key_len;
} eid_audit_opts_t;

const char *eid_decision_name(eid_decision_e d);

/*
 * Format `rec` as one JSON line ending in "\n" in `p`; *len gets its length.
 * Strings are escaped per RFC 8259 (control characters as \u00XX); invalid
 * UTF-8 is replaced by U+FFFD, so the line is always valid JSON.
 */
const char *eid_audit_format(apr_pool_t *p, const eid_audit_rec_t *rec,
                             const eid_audit_opts_t *opts, apr_size_t *len);

/*
 * The fields of `id` as eid_audit_format() writes them (each as
 * ,"key":value), in `p`, for eid_audit_rec_t.id_fields; *len gets the length.
 */
const char *eid_audit_identity_format(apr_pool_t *p, const eid_identity_t *id,
                                      const eid_audit_opts_t *opts, apr_size_t *len);

#endif
