/*
 * eid_result.c - result objects and the injected log sink.
 */
#include "eid/eid_result.h"

#include <apr_strings.h>
#include <stdio.h>
#include <stdlib.h>

static eid_log_fn log_fn;
static void *log_baton;

int eid_result_set(eid_result_t *res, apr_pool_t *p, int code, const char *tag,
                   const char *fmt, ...)
{
    if (res) {
        res->code = code;
        res->tag = tag;
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
