/*
 * eid_redirect.h - is a return-to / post-logout URL safe to redirect to?
 *
 * The target comes from the client (a query parameter, a captured request
 * URI) and ends up in a Location header the browser follows.  The check is
 * written against what a browser does with the string (WHATWG URL parsing:
 * backslash is a slash in http(s) URLs, tabs and newlines are silently
 * removed, leading/trailing C0 controls and spaces are trimmed, "//host" and
 * "http:host" name another host), so it refuses every form a browser could
 * read as another origin, rather than trying to normalise them.
 */
#ifndef EID_REDIRECT_H
#define EID_REDIRECT_H

#include <apr.h>

/* Longest target accepted (bytes, as received). */
#define EID_REDIRECT_MAX 1024

/* Is `target` (len bytes, as received, percent-encoded; NUL bytes inside
 * count as bytes and are refused) a safe redirect?  Accepted:
 *  - a path that starts with exactly one "/" (not "//", not "/\", not
 *    "/%2f" / "/%5c"), with no dot segment ("/./", "/../", raw or %2e);
 *  - an absolute "https://host[:port]..." (or "http://" to a loopback host:
 *    127.0.0.1, [::1], localhost) whose scheme://host[:port] equals one of
 *    `origins` (scheme and host case-insensitive, compared as given: no IDN
 *    mapping; default port 443/80 normalised).
 * Refused: backslash anywhere (raw or %5c), control characters and spaces
 * (raw or %00-%20, %7f), '"', '<', '>', '`', any other scheme ("javascript:",
 * "data:", "vbscript:" ...), a scheme without "//" ("http:host",
 * "https:/host"), userinfo ("@" in the authority), a percent sign or
 * non-ASCII byte in the host, a relative path ("foo", "%2f%2fhost"), over
 * EID_REDIRECT_MAX bytes, invalid UTF-8 or percent-encoding.
 * `origins` may be NULL when norigins is 0 (paths only).
 * Returns NULL (accepted) or a static reason (safe to log: names no input).
 * Thread-safe, allocates nothing. */
const char *eid_redirect_check(const char *target, apr_size_t len, const char *const *origins,
                               int norigins);

/* Is `origin` a valid allow-list entry: "https://host[:port]" (or "http://"
 * with a loopback host), no path, no userinfo, ASCII host?  For directive
 * setters (EidReturnAllow, EidLogoutRedirectAllow).  NULL or a static reason. */
const char *eid_redirect_origin_check(const char *origin);

#endif
