/*
 * eid_hsa.c - HSA-ID shape checks.
 *
 * Like eid_pnr.c this looks at every byte of (pointer, length): no
 * trimming, no case folding, no locale, no allocation.
 */
#include "eid/eid_hsa.h"

#include "eid/eid_pnr.h"

#include <string.h>

#define HSA_OWNER_OFF 2  /* after "SE" */
#define HSA_OWNER_LEN 10 /* organisation number of the directory owner */
#define HSA_DASH_OFF (HSA_OWNER_OFF + HSA_OWNER_LEN)
#define HSA_LOCAL_OFF (HSA_DASH_OFF + 1)

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* "SE" + 10 digits + "-": the part every HSA-ID and every prefix a policy
 * may name starts with. */
static int owner_ok(const char *s, size_t len)
{
    size_t i;

    if (len < HSA_LOCAL_OFF || s[0] != 'S' || s[1] != 'E' || s[HSA_DASH_OFF] != '-')
        return 0;
    for (i = HSA_OWNER_OFF; i < HSA_DASH_OFF; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

static int local_ok(const char *s, size_t len)
{
    size_t i;
    for (i = HSA_LOCAL_OFF; i < len; i++)
        if (!is_alnum(s[i]))
            return 0;
    return 1;
}

int eid_hsa_ok(const char *s, size_t len, int strict, char orgnr11[11])
{
    int ok = s && len > HSA_LOCAL_OFF && len <= EID_HSA_MAXLEN && owner_ok(s, len) &&
             local_ok(s, len) && (!strict || eid_luhn_ok(s + HSA_OWNER_OFF, HSA_OWNER_LEN));

    if (orgnr11) {
        if (ok)
            memcpy(orgnr11, s + HSA_OWNER_OFF, HSA_OWNER_LEN);
        orgnr11[ok ? HSA_OWNER_LEN : 0] = '\0';
    }
    return ok;
}

int eid_hsa_prefix_ok(const char *s, size_t len)
{
    /* Why the whole owner part and the dash are required: a shorter prefix
     * such as "SE232100001" would silently cover every organisation whose
     * number starts with those digits - a typo in a Require line must not
     * widen access to other organisations. */
    return s && len <= EID_HSA_MAXLEN && owner_ok(s, len) && local_ok(s, len);
}
