/*
 * fuzz_redirect - eid_redirect_check on arbitrary bytes.
 *
 * Besides "no crash", asserts what an accepted target promises, with an
 * oracle written independently of the checker: a target that passes either
 * starts with '/' followed by a byte that is neither '/' nor '\' (or is "/"
 * alone), or is "http(s)://" + an authority (up to '/', '?', '#') that is,
 * after dropping a default port, one of the allowed origins' authorities;
 * and no accepted target holds a byte a browser strips or re-reads (C0,
 * space, DEL, backslash).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eid/eid_redirect.h"

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_redirect: invariant failed: %s (line %d)\n", #c,     \
                    __LINE__);                                                         \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static const char *const origins[] = {"https://svc.example.se", "https://portal.example.se:8443",
                                      "http://127.0.0.1:8080"};
/* the same, as "scheme://authority" with a default port made explicit */
static const char *const canon[] = {"https://svc.example.se:443", "https://portal.example.se:8443",
                                    "http://127.0.0.1:8080"};

static int origin_oracle(const char *t, size_t n)
{
    char auth[300];
    size_t i, s, a;
    int https;
    if (n > 8 && !strncasecmp(t, "https://", 8))
        https = 1, s = 8;
    else if (n > 7 && !strncasecmp(t, "http://", 7))
        https = 0, s = 7;
    else
        return 0;
    for (i = s; i < n && t[i] != '/' && t[i] != '?' && t[i] != '#'; i++)
        ;
    a = i - s;
    if (a == 0 || a > 200)
        return 0;
    snprintf(auth, sizeof(auth), "%s%.*s%s", https ? "https://" : "http://", (int)a, t + s,
             memchr(t + s, ':', a) ? "" : (https ? ":443" : ":80"));
    for (i = 0; i < sizeof(canon) / sizeof(*canon); i++)
        if (!strcasecmp(auth, canon[i]))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    size_t i;
    if (eid_redirect_check(t, size, origins, 3))
        return 0;
    CHECK(size > 0 && size <= EID_REDIRECT_MAX);
    for (i = 0; i < size; i++)
        CHECK(data[i] > 0x20 && data[i] != 0x7f && data[i] != '\\');
    if (t[0] == '/')
        CHECK(size == 1 || (t[1] != '/' && t[1] != '\\'));
    else
        CHECK(origin_oracle(t, size));
    /* with no allow-list only local paths pass */
    CHECK(eid_redirect_check(t, size, NULL, 0) == NULL ? t[0] == '/' : t[0] != '/');
    return 0;
}
