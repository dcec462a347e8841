/*
 * eid_store_redis_conf.c - parsing of a redis store's location and options
 * (config time; see eid_store_redis.h).  No state.
 */
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eid/eid_store_redis.h"

/* digits only, value in [lo, hi] */
static int num(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s || strlen(s) > 9)
        return -1;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    long v = strtol(s, NULL, 10);
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* host[:port] with a default port; host: letters, digits, '.', '-', or an
 * IPv6 literal in brackets.  NULL or a reason. */
static const char *hostport(apr_pool_t *p, const char *s, int defport, const char **host,
                            int *port)
{
    const char *colon;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (!end || end == s + 1)
            return "bad IPv6 literal";
        *host = apr_pstrmemdup(p, s + 1, end - s - 1);
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] && end[1] != ':')
            return "junk after the IPv6 literal";
    } else {
        colon = strrchr(s, ':');
        apr_size_t hl = colon ? (apr_size_t)(colon - s) : strlen(s);
        if (hl == 0 || hl > 253)
            return "missing or overlong host";
        for (apr_size_t i = 0; i < hl; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-'))
                return "bad character in the host name";
        }
        *host = apr_pstrmemdup(p, s, hl);
    }
    long v = defport;
    if (colon && num(colon + 1, 1, 65535, &v) != 0)
        return "bad port (1..65535)";
    *port = (int)v;
    return NULL;
}

static const char *db_of(const char *s, int *db)
{
    long v;
    if (num(s, 0, 15, &v) != 0)
        return "bad database number (0..15)";
    *db = (int)v;
    return NULL;
}

static const char *parse_url(apr_pool_t *p, const char *url, eid_redis_conf_t *c)
{
    const char *why;
    if (strncmp(url, "redis://", 8) == 0) {
        c->kind = EID_REDIS_TCP;
        char *rest = apr_pstrdup(p, url + 8);
        char *at = strchr(rest, '@');
        if (at) {
            *at = '\0';
            if (!*rest || strchr(rest, ':'))
                return "a user in the URL is `user@` (the password goes into password_file=)";
            c->user = rest;
            rest = at + 1;
        }
        char *slash = strchr(rest, '/');
        if (slash) {
            *slash = '\0';
            if (slash[1] && (why = db_of(slash + 1, &c->db)))
                return why;
        }
        return hostport(p, rest, 6379, &c->host, &c->port);
    }
    if (strncmp(url, "unix:", 5) == 0) {
        c->kind = EID_REDIS_UNIX;
        char *path = apr_pstrdup(p, url + 5);
        char *q = strchr(path, '?');
        if (q) {
            *q = '\0';
            if (strncmp(q + 1, "db=", 3) != 0 || (why = db_of(q + 4, &c->db)))
                return "after unix:/path only ?db=N is taken";
        }
        if (path[0] != '/' || strlen(path) > 100)
            return "unix: needs an absolute socket path (at most 100 bytes)";
        c->path = path;
        return NULL;
    }
    if (strncmp(url, "sentinel://", 11) == 0) {
        c->kind = EID_REDIS_SENTINEL;
        char *rest = apr_pstrdup(p, url + 11);
        char *slash = strchr(rest, '/');
        if (!slash || !slash[1])
            return "sentinel:// needs /mastername after the sentinels";
        *slash = '\0';
        char *name = slash + 1;
        char *dbs = strchr(name, '/');
        if (dbs) {
            *dbs = '\0';
            if ((why = db_of(dbs + 1, &c->db)))
                return why;
        }
        for (const char *n = name; *n; n++)
            if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
                  (*n >= '0' && *n <= '9') || *n == '-' || *n == '_' || *n == '.'))
                return "bad character in the master name";
        c->master_name = name;
        char *save = NULL;
        for (char *t = apr_strtok(rest, ",", &save); t; t = apr_strtok(NULL, ",", &save)) {
            if (c->nsentinels == EID_REDIS_MAX_SENTINELS)
                return "at most 8 sentinels";
            if ((why = hostport(p, t, 26379, &c->sentinel_host[c->nsentinels],
                                &c->sentinel_port[c->nsentinels])))
                return why;
            c->nsentinels++;
        }
        if (c->nsentinels == 0)
            return "sentinel:// needs at least one host:port";
        return NULL;
    }
    return "the store location must start with redis://, unix: or sentinel://";
}

/* milliseconds in [1, 60000] as an interval */
static const char *ms_opt(const char *v, apr_interval_time_t *out)
{
    long n;
    if (num(v, 1, 60000, &n) != 0)
        return "must be milliseconds, 1..60000";
    *out = (apr_interval_time_t)n * 1000;
    return NULL;
}

static const char *parse_opt(apr_pool_t *p, const char *opt, eid_redis_conf_t *c)
{
    const char *eq = strchr(opt, '=');
    if (!eq || eq == opt)
        return apr_psprintf(p, "option `%s` is not key=value", opt);
    const char *key = apr_pstrmemdup(p, opt, eq - opt), *v = eq + 1, *why = NULL;
    long n;
    if (strcmp(key, "password_file") == 0) {
        struct stat st;
        if (v[0] != '/')
            why = "must be an absolute path";
        else if (stat(v, &st) != 0 || !S_ISREG(st.st_mode))
            why = "is not a regular file";
        else if (st.st_mode & S_IROTH)
            why = "is readable by everyone (chmod o-r)";
        else if (st.st_size == 0 || st.st_size > 512)
            why = "must hold the password (1..512 bytes)";
        c->password_file = v;
    } else if (strcmp(key, "user") == 0) {
        if (!*v || strpbrk(v, " \t\r\n:@"))
            why = "must be an ACL user name";
        c->user = v;
    } else if (strcmp(key, "timeout") == 0) {
        if (!(why = ms_opt(v, &c->command_timeout)))
            c->connect_timeout = c->command_timeout;
    } else if (strcmp(key, "connect_timeout") == 0) {
        why = ms_opt(v, &c->connect_timeout);
    } else if (strcmp(key, "prefix") == 0) {
        if (strlen(v) > 64 || strpbrk(v, " \t\r\n*?[]"))
            why = "at most 64 bytes, no spaces or glob characters";
        c->prefix = v;
    } else if (strcmp(key, "breaker") == 0) {
        const char *slash = strchr(v, '/');
        long f, ms;
        if (!slash || num(apr_pstrmemdup(p, v, slash - v), 1, 1000, &f) != 0 ||
            num(slash + 1, 1, 60000, &ms) != 0)
            why = "must be <failures 1..1000>/<back-off ms 1..60000>";
        else {
            c->breaker_failures = (int)f;
            c->breaker_backoff = (apr_interval_time_t)ms * 1000;
        }
    } else if (strcmp(key, "pool") == 0) {
        if (num(v, 0, 4096, &n) != 0)
            why = "must be 0..4096";
        c->pool_idle_max = (int)n;
    } else if (strcmp(key, "cache") == 0) {
        if (num(v, 0, 1000000, &n) != 0)
            why = "must be a number of entries, 0..1000000 (0 = off)";
        c->cache_entries = (int)n;
    } else if (strcmp(key, "cache_max_age") == 0) {
        if (num(v, 1, 3600, &n) != 0)
            why = "must be seconds, 1..3600";
        c->cache_max_age = apr_time_from_sec(n);
    } else if (strcmp(key, "touch_interval") == 0) {
        if (num(v, 0, 3600, &n) != 0)
            why = "must be seconds, 0..3600";
        c->touch_interval = apr_time_from_sec(n);
    } else if (strcmp(key, "db") == 0) {
        why = db_of(v, &c->db);
    } else {
        return apr_psprintf(p, "unknown option `%s` (password_file, user, timeout, "
                               "connect_timeout, prefix, breaker, pool, cache, cache_max_age, "
                               "touch_interval, db)", key);
    }
    return why ? apr_psprintf(p, "option %s: %s", key, why) : NULL;
}

const char *eid_redis_conf_parse(apr_pool_t *p, const char *url, int nopts,
                                 const char *const *opts, eid_redis_conf_t **out)
{
    eid_redis_conf_t *c = apr_pcalloc(p, sizeof(*c));
    *out = NULL;
    if (!url)
        return "no store location";
    c->connect_timeout = c->command_timeout = apr_time_from_sec(1);
    c->prefix = "eid:";
    c->breaker_failures = 3;
    c->breaker_backoff = apr_time_from_msec(250);
    c->pool_idle_max = 64;
    c->cache_max_age = apr_time_from_sec(60);
    c->touch_interval = apr_time_from_sec(10);
    const char *why = parse_url(p, url, c);
    if (why)
        return apr_psprintf(p, "%s: %s", url, why);
    for (int i = 0; i < nopts; i++)
        if ((why = parse_opt(p, opts[i], c)))
            return why;
    if (c->user && !c->password_file)
        return "an ACL user needs password_file=";
    *out = c;
    return NULL;
}
