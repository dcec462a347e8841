/*
 * eid_pnr.h - Swedish personal identity numbers (personnummer), coordination
 * numbers (samordningsnummer) and organisation numbers (organisationsnummer).
 *
 * Pure functions over bytes: no allocation, no locale, no I/O.  Inputs are
 * (pointer, length) so embedded NULs are seen and refused.
 */
#ifndef EID_PNR_H
#define EID_PNR_H

#include <stddef.h>

typedef enum {
    EID_PNR_INVALID = 0,
    EID_PNR_PERSONNUMMER = 1,
    EID_PNR_SAMORDNINGSNUMMER = 2
} eid_pnr_kind_e;

/*
 * Luhn check (mod 10, weights 2,1,2,1,...) over `n` ASCII digits, the last of
 * which is the check digit.  Returns 1 when valid, 0 otherwise (also for any
 * non-digit).
 */
int eid_luhn_ok(const char *digits, size_t n);

/*
 * Classify a 12-digit number YYYYMMDDNNNC.  The Luhn digit is computed over
 * the last ten digits.  The month must be 01-12 and the day 01-31 for a
 * personnummer; day + 60 (61-91) makes it a samordningsnummer.  Because
 * published test data uses impossible dates (month 00, day 89-91), a
 * samordningsnummer accepts month 00-12.  Anything else - other lengths,
 * separators, non-digits - is EID_PNR_INVALID.
 */
eid_pnr_kind_e eid_pnr_classify(const char *s, size_t len);

/*
 * Accept the ETSI form "PNOSE-" followed by 12 digits, as used in signing
 * service certificates.  On success writes the 12 digits plus NUL into
 * out13 and returns the kind; otherwise EID_PNR_INVALID.
 */
eid_pnr_kind_e eid_pnr_classify_etsi(const char *s, size_t len, char out13[13]);

/*
 * Organisation number: exactly 10 digits with a valid Luhn digit and a
 * third digit >= 2 (the "month" of an organisation number is at least 20,
 * which tells it apart from a 10-digit personnummer).  Returns 1 or 0.
 */
int eid_orgnr_ok(const char *s, size_t len);

#endif
