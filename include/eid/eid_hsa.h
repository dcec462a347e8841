/*
 * eid_hsa.h - HSA-ID, the identifier of the national HSA directory.
 *
 * Form: "SE" + 10-digit organisation number of the directory owner + "-" +
 * a local part of [A-Za-z0-9]+ ; at most 31 characters in all.
 * Example: SE2321000131-P000000069215.
 */
#ifndef EID_HSA_H
#define EID_HSA_H

#include <stddef.h>

#define EID_HSA_MAXLEN 31

/*
 * Check an HSA-ID.  The organisation-number part must be 10 digits; its Luhn
 * digit is checked only when `strict` (legacy HSA-IDs exist whose owner part
 * fails the check, so the default is lenient).  On success copies the ten
 * digits plus NUL into orgnr11 (if non-NULL) and returns 1; otherwise 0.
 * Country code must be upper-case "SE".
 */
int eid_hsa_ok(const char *s, size_t len, int strict, char orgnr11[11]);

/*
 * Is `s` a prefix of an HSA-ID that a policy may name (e.g. "SE2321000016-"
 * or "SE2321000016-F")?  Used to validate Require arguments at start-up.
 */
int eid_hsa_prefix_ok(const char *s, size_t len);

#endif
