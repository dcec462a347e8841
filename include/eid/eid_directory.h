/*
 * eid_directory.h - the organisation directory: organisations, collaboration
 * groups (groups of groups allowed) and role rules, loaded from one text file
 * (format: docs/directory.md), and the enrichment of an identity with its
 * organisation kind, groups and roles.
 *
 * Lifetime and threads: a directory is built once (at configuration time)
 * in the pool given to the loader and is immutable afterwards; every lookup
 * only reads it (no iteration state, no caches, no locks), so any number of
 * threads may enrich identities against the same directory at once.  Group
 * membership is flattened at load time: a request never recurses.
 */
#ifndef EID_DIRECTORY_H
#define EID_DIRECTORY_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "eid/eid_identity.h"

/* Limits of the file format (refused beyond them, naming file and line). */
#define EID_DIRECTORY_MAX_LINE 8192                  /* bytes per line, without the newline */
#define EID_DIRECTORY_MAX_BYTES (16u * 1024u * 1024u) /* default file size cap */
#define EID_DIRECTORY_MAX_NAME 64                    /* group and role names */

typedef enum {
    EID_ORG_KIND_NONE = 0, /* no organisation (or not in the directory) */
    EID_ORG_KIND_MUNICIPALITY,
    EID_ORG_KIND_REGION,
    EID_ORG_KIND_PRIVATE_CARE,
    EID_ORG_KIND_STATE_AGENCY
} eid_org_kind_e;

typedef struct eid_directory eid_directory_t;

/* "municipality", "region", "private-care", "state-agency"; NULL for NONE. */
const char *eid_org_kind_name(eid_org_kind_e k);

/* The kind named `name` (exact spelling as above); EID_ORG_KIND_NONE if unknown. */
eid_org_kind_e eid_org_kind_parse(const char *name);

/*
 * Read the directory file at `path` (at most `max` bytes; 0 means
 * EID_DIRECTORY_MAX_BYTES) and build the directory in `p`.
 * Returns APR_SUCCESS with *dir set, or an error with *err a one-line text in
 * `p`: "<path>:<line>: <what is wrong>" for every mistake in the content
 * (see docs/directory.md), or eid_file_read()'s text (missing file, not a
 * regular file, too big).  Nothing is logged; *dir is untouched on error.
 * The file's content is never quoted beyond the offending word (cut at 64
 * bytes).
 */
apr_status_t eid_directory_load(apr_pool_t *p, const char *path, apr_size_t max,
                                eid_directory_t **dir, const char **err);

/*
 * The same from `len` bytes at `buf` (need not be NUL-terminated; a NUL byte
 * in it is refused as a control character).  `name` stands for the file
 * name in error texts.  Returns APR_SUCCESS or APR_EINVAL.
 */
apr_status_t eid_directory_parse(apr_pool_t *p, const char *name, const char *buf,
                                 apr_size_t len, eid_directory_t **dir, const char **err);

/* The name the directory was loaded under (its file's path): what an
 * identity enriched from it records (eid_identity_t.directory).  Pure. */
const char *eid_directory_name(const eid_directory_t *dir);

/* Counts of what was loaded (for start-up logs and tests). */
int eid_directory_org_count(const eid_directory_t *dir);
int eid_directory_group_count(const eid_directory_t *dir);
int eid_directory_rule_count(const eid_directory_t *dir);

/* 1 when `name` is a group of the directory / a role some rule gives; else
 * 0.  For validating Require arguments at start-up.  Thread-safe. */
int eid_directory_has_group(const eid_directory_t *dir, const char *name);
int eid_directory_has_role(const eid_directory_t *dir, const char *name);

/* What the directory says about an identity. */
typedef struct eid_dir_info {
    eid_org_kind_e org_kind;    /* EID_ORG_KIND_NONE when no organisation matched */
    const char *org_number;     /* the matched organisation's number, or NULL */
    const char *org_name;       /* its name from the directory, or NULL */
    apr_array_header_t *groups; /* const char *: every group the organisation is in,
                                   directly or through other groups; sorted (strcmp),
                                   no duplicates; empty, never NULL */
    apr_array_header_t *roles;  /* const char *: every role a rule gives; sorted, no
                                   duplicates; empty, never NULL */
} eid_dir_info_t;

/*
 * Enrich: find the identity's organisation - by `org_number` when the
 * directory has it, else by the longest HSA-ID prefix of `org_hsa_id`, else
 * of `hsa_id`; a certificate's number that is only the one inside its HSA-ID
 * comes after that HSA-ID's longest prefix - and evaluate every role rule.
 * Pure and thread-safe: reads `dir` and `id` only; the two arrays are
 * allocated in `p` (nothing else is); the strings they hold and the org
 * strings belong to the directory, so copy them into a longer-lived pool if
 * the result must outlive the directory (e.g. across a graceful restart).
 * `dir` or `id` NULL gives an empty result.
 */
void eid_directory_enrich(apr_pool_t *p, const eid_directory_t *dir, const eid_identity_t *id,
                          eid_dir_info_t *out);

#endif
