/*
 * eid_directory_int.h - the directory's internal structures, shared by the
 * loader (eid_directory.c) and the lookups (eid_directory_match.c).  Not a
 * public interface.
 */
#ifndef EID_DIRECTORY_INT_H
#define EID_DIRECTORY_INT_H

#include <apr_hash.h>

#include "eid/eid_directory.h"

/* The conditions a role rule can set; a rule holds at most one of each kind
 * (a key given again adds alternatives to the same condition). */
typedef enum {
    EID_DC_SYSTEM_ROLE = 0, /* identity->roles holds one of the values */
    EID_DC_PURPOSE,         /* identity->commission_purpose is one of them */
    EID_DC_RIGHT,           /* identity->commission_rights holds one of them */
    EID_DC_ORG_KIND,        /* the organisation's kind is one of them */
    EID_DC_GROUP,           /* the organisation is in one of the groups */
    EID_DC_ORG,             /* the organisation is one of these numbers */
    EID_DC_HSA_ID,          /* identity->hsa_id is one of them */
    EID_DC__COUNT
} eid_dir_cond_e;

typedef struct {
    const char **vals; /* NULL when the rule does not set this condition */
    int n;
    unsigned kinds;    /* EID_DC_ORG_KIND: bit (1 << kind) per accepted kind */
} eid_dir_cond_t;

typedef struct {
    const char *role;
    int line;
    eid_dir_cond_t cond[EID_DC__COUNT];
} eid_dir_rule_t;

typedef struct {
    const char *number; /* 10 digits */
    const char *name;   /* NULL when the file gives none */
    eid_org_kind_e kind;
    int line;
    const char **groups; /* sorted by name, flattened; set at load */
    int ngroups;
    int stamp;           /* load-time scratch (flattening) */
} eid_dir_org_t;

typedef struct {
    const char *name;
    int line;
    apr_array_header_t *words; /* const char *: the members as written (load only) */
    int *orgs, norgs;          /* direct organisation members (indices) */
    int *subs, nsubs;          /* direct group members (indices) */
    int color;                 /* load-time scratch (cycle search) */
    int stamp;                 /* load-time scratch (flattening) */
} eid_dir_group_t;

struct eid_directory {
    const char *name;
    eid_dir_org_t **orgs;
    int norgs;
    eid_dir_group_t **groups;
    int ngroups;
    eid_dir_rule_t **rules;
    int nrules;
    apr_hash_t *org_by_number; /* "2321000230" -> eid_dir_org_t * */
    apr_hash_t *org_by_prefix; /* "SE2321000230-" -> eid_dir_org_t * */
    apr_hash_t *group_by_name; /* name -> eid_dir_group_t * */
    apr_hash_t *role_names;    /* role -> first eid_dir_rule_t * */
    int max_prefix;            /* length of the longest HSA-ID prefix */
};

/* The loader's state, shared by eid_directory.c and eid_directory_resolve.c. */
typedef struct {
    apr_pool_t *p;       /* the directory's pool */
    apr_pool_t *tmp;     /* scratch, destroyed when the load ends */
    const char *name;    /* file name for error texts */
    eid_directory_t *dir;
    apr_array_header_t *orgs, *groups, *rules; /* of pointers, copied into dir at the end */
    apr_hash_t *rule_keys; /* canonical rule -> eid_dir_rule_t * (duplicates) */
    const char *err;
} eid_dir_ctx_t;

/* Set c->err to "<name>:<line>: <printf text>" (in the directory's pool) and
 * return APR_EINVAL. */
/* An upper-case copy of `s` in p (ASCII letters only): the form HSA-IDs and
 * prefixes are kept and compared in. */
char *eid_dir_upper(apr_pool_t *p, const char *s);

apr_status_t eid_dir_fail(eid_dir_ctx_t *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* After the last line: fill the directory's arrays from the loader's, then
 * resolve groups, refuse cycles, flatten memberships, check rule names. */
apr_status_t eid_dir_resolve(eid_dir_ctx_t *c);

#endif
