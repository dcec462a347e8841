/*
 * eid_result.h - the error/result object and the injected log sink of the core.
 *
 * The core never writes to a log on its own: it fills an eid_result_t with a
 * stable tag (EIDnnnnn, listed in docs/errors.md) and a human-readable reason,
 * and the caller decides where that goes.  Where the core must log by itself
 * (background refresh, cache eviction) it calls the sink set with
 * eid_log_set(); the Apache glue binds that to ap_log_error().
 */
#ifndef EID_RESULT_H
#define EID_RESULT_H

#include <apr_pools.h>
#include <stdarg.h>

typedef enum {
    EID_LOG_ERR = 3,
    EID_LOG_WARN = 4,
    EID_LOG_NOTICE = 5,
    EID_LOG_INFO = 6,
    EID_LOG_DEBUG = 7
} eid_log_level_e;

/*
 * The class of a refusal: what kind of failure it is, and so which status the
 * glue answers.  One model for every unit: the glue maps the class, never a
 * code's number (docs/architecture.md, "Errors").
 */
typedef enum {
    EID_CLASS_NONE = 0,      /* success (code 0), or a result never filled */
    EID_CLASS_INVALID,       /* the credential is refused (401 for a token) */
    EID_CLASS_MALFORMED,     /* the request itself is malformed (400) */
    EID_CLASS_UNAVAILABLE,   /* a party we depend on failed or is saturated (503) */
    EID_CLASS_MISCONFIGURED, /* our configuration cannot decide this request (500) */
    EID_CLASS_FORBIDDEN      /* authenticated, but not allowed (403) */
} eid_class_e;

/* What a check concluded, and why.  `tag` and `reason` point to static
 * strings or to memory in the pool given to the function that filled them.
 * `cls` is the last member so that `{0}` still initialises a
 * result (to success, class NONE). */
typedef struct eid_result {
    int code;           /* 0 = success, otherwise a unit-specific reason code */
    const char *tag;    /* "EIDnnnnn", never NULL when code != 0 */
    const char *reason; /* short, safe to log: never contains a secret */
    eid_class_e cls;    /* set with the tag by eid_fail()/eid_result_set() */
} eid_result_t;

/*
 * The class of a failure tagged `tag` (see the table in eid_result.c and
 * docs/errors.md): EID_CLASS_NONE for NULL, EID_CLASS_INVALID for every tag
 * the table does not name - an unknown failure refuses the credential, it
 * never admits.  Pure.
 */
eid_class_e eid_result_class(const char *tag);

/* Fill `res` (if non-NULL) and return `code`.  The reason is formatted into
 * `p`; pass p == NULL to keep `fmt` as a static string (no arguments used).
 * The class is eid_result_class(tag) (NONE when code is 0). */
int eid_result_set(eid_result_t *res, apr_pool_t *p, int code, const char *tag,
                   const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Fill `res` (if non-NULL) with `tag` ("EIDnnnnn") and the static `reason`;
 * the code is the tag's number (EID03205 -> 3205), which is returned, and the
 * class eid_result_class(tag).  The token units use it: their codes are their
 * tags. */
int eid_fail(eid_result_t *res, const char *tag, const char *reason);

typedef void (*eid_log_fn)(void *baton, eid_log_level_e level, const char *tag,
                           const char *msg);

/* Install the process-wide log sink (NULL restores the default, which drops
 * everything).  Not thread-safe: call at start-up only. */
void eid_log_set(eid_log_fn fn, void *baton);

/* Log through the installed sink.  Formats into a stack buffer (truncated at
 * 1 KiB); never allocates from a pool. */
void eid_log(eid_log_level_e level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
