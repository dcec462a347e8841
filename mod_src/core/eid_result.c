/*
 * eid_result.c - result objects and the injected log sink.
 */
#include "eid/eid_result.h"

#include <apr_strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Written once at start-up (eid_log_set()), read by every thread after. */
static eid_log_fn log_fn;
static void *log_baton;

/*
 * The class of each failure that is not "the credential is invalid".  An
 * entry names one tag ("EID03502") or a family by its prefix ("EID036": every
 * EID036xx).  Everything else is EID_CLASS_INVALID: a tag forgotten here
 * refuses a credential, it never admits one.  docs/errors.md gives the
 * status of each tag; keep the two in step.
 */
static const struct {
    const char *tag;
    eid_class_e cls;
} class_table[] = {
    /* the Authorization header is not RFC 6750 token syntax */
    {"EID03001", EID_CLASS_MALFORMED},
    {"EID03002", EID_CLASS_MALFORMED},
    /* the caller's or the configuration's fault, not the client's */
    {"EID03006", EID_CLASS_MISCONFIGURED},
    {"EID03007", EID_CLASS_MISCONFIGURED},
    {"EID03008", EID_CLASS_MISCONFIGURED},
    {"EID03217", EID_CLASS_MISCONFIGURED},
    /* the provider's keys or its introspection endpoint cannot be had */
    {"EID03207", EID_CLASS_UNAVAILABLE},
    {"EID03208", EID_CLASS_UNAVAILABLE},
    {"EID03209", EID_CLASS_UNAVAILABLE},
    {"EID03218", EID_CLASS_UNAVAILABLE},
    {"EID03219", EID_CLASS_UNAVAILABLE},
    {"EID03220", EID_CLASS_UNAVAILABLE},
    {"EID03502", EID_CLASS_UNAVAILABLE},
    {"EID03503", EID_CLASS_UNAVAILABLE},
    {"EID03505", EID_CLASS_UNAVAILABLE},
    {"EID03506", EID_CLASS_UNAVAILABLE},
    {"EID036", EID_CLASS_UNAVAILABLE},
    /* browser login (eid_oidc): the provider down or answering garbage;
     * our configuration cannot do it; the login's level is too low */
    {"EID07001", EID_CLASS_UNAVAILABLE},
    {"EID07002", EID_CLASS_MISCONFIGURED},
    {"EID07004", EID_CLASS_MISCONFIGURED},
    {"EID07101", EID_CLASS_MISCONFIGURED},
    {"EID07102", EID_CLASS_MISCONFIGURED},
    {"EID07103", EID_CLASS_MISCONFIGURED},
    {"EID07201", EID_CLASS_UNAVAILABLE},
    {"EID07203", EID_CLASS_UNAVAILABLE},
    {"EID07207", EID_CLASS_MISCONFIGURED},
    {"EID07311", EID_CLASS_FORBIDDEN},
    {"EID07312", EID_CLASS_FORBIDDEN},
    {"EID07401", EID_CLASS_UNAVAILABLE},
    {"EID07402", EID_CLASS_UNAVAILABLE},
    {"EID07403", EID_CLASS_MISCONFIGURED},
    {"EID07406", EID_CLASS_MISCONFIGURED},
    {"EID07509", EID_CLASS_MISCONFIGURED},
    {"EID07510", EID_CLASS_MISCONFIGURED},
    /* revocation: no responder configured, a CRL file unreadable, or an
     * internal failure; otherwise the answer cannot be had (the trust
     * profile's fail mode decides).  Revoked/unknown (EID050xx) are invalid. */
    {"EID05101", EID_CLASS_MISCONFIGURED},
    {"EID05102", EID_CLASS_MISCONFIGURED},
    {"EID05201", EID_CLASS_MISCONFIGURED},
    {"EID051", EID_CLASS_UNAVAILABLE},
    {"EID052", EID_CLASS_UNAVAILABLE},
};

eid_class_e eid_result_class(const char *tag)
{
    size_t i;

    if (!tag)
        return EID_CLASS_NONE;
    for (i = 0; i < sizeof(class_table) / sizeof(class_table[0]); i++)
        if (!strncmp(tag, class_table[i].tag, strlen(class_table[i].tag)))
            return class_table[i].cls;
    return EID_CLASS_INVALID;
}

int eid_result_set(eid_result_t *res, apr_pool_t *p, int code, const char *tag,
                   const char *fmt, ...)
{
    if (res) {
        res->code = code;
        res->tag = tag;
        res->cls = code ? eid_result_class(tag) : EID_CLASS_NONE;
        if (p) {
            va_list ap;
            va_start(ap, fmt);
            res->reason = apr_pvsprintf(p, fmt, ap);
            va_end(ap);
        }
        else {
            res->reason = fmt;
        }
    }
    return code;
}

int eid_fail(eid_result_t *res, const char *tag, const char *reason)
{
    int code = atoi(tag + 3);
    if (res) {
        res->code = code;
        res->tag = tag;
        res->reason = reason;
        res->cls = eid_result_class(tag);
    }
    return code;
}

void eid_log_set(eid_log_fn fn, void *baton)
{
    log_fn = fn;
    log_baton = baton;
}

void eid_log(eid_log_level_e level, const char *tag, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (!log_fn)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_fn(log_baton, level, tag, buf);
}
