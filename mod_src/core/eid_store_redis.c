/*
 * eid_store_redis.c - the redis backend's connection layer: the per-process
 * free-list of hiredis connections, connect (TCP, Unix, sentinel discovery),
 * AUTH/SELECT, the circuit breaker and once-per-outage logging.
 *
 * Why a locked free-list rather than a thread-local connection: httpd's
 * worker threads are many and long-lived, but few are in a store op at any
 * instant; a free-list keeps as many connections as ops run at once (not one
 * per thread forever), needs no thread-exit destructor (APR threads give no
 * portable hook) and lets a child drop every connection at once after a
 * Redis restart.  A connection is owned by exactly one thread between take
 * and give; the lock guards only the list, never I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "eid/eid_result.h"
#include "eid_store_redis_int.h"

static const char *const tags[RT__COUNT] = {
    [RT_CONNECT] = "EID06301", [RT_AUTH] = "EID06302",     [RT_SELECT] = "EID06303",
    [RT_IO] = "EID06304",      [RT_REPLY] = "EID06305",    [RT_PWFILE] = "EID06306",
    [RT_BREAKER] = "EID06307", [RT_READONLY] = "EID06309", [RT_SENTINEL] = "EID06310",
    [RT_ROLE] = "EID06311",    [RT_PROTO] = "EID06312",    [RT_CACHE] = "EID06330",
};

void eid_redis_note(eid_redis_t *r, int kind, const char *fmt, ...)
{
    apr_time_t now = apr_time_now();
    int say = 0;
    apr_thread_mutex_lock(r->mu);
    /* a run of one kind with gaps under 10 s is one outage: one line */
    if (now - r->tag_seen[kind] > apr_time_from_sec(10))
        say = 1;
    r->tag_seen[kind] = now;
    apr_thread_mutex_unlock(r->mu);
    if (!say)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    eid_log(kind == RT_CACHE ? EID_LOG_WARN : EID_LOG_ERR, tags[kind], "redis store: %s", msg);
}

static struct timeval tv_of(apr_interval_time_t t)
{
    struct timeval tv = {.tv_sec = (time_t)(t / APR_USEC_PER_SEC),
                         .tv_usec = (suseconds_t)(t % APR_USEC_PER_SEC)};
    return tv;
}

/* ---- breaker ---------------------------------------------------------- */

/* 1: go ahead (*probe set when this op is the one probe); 0: fail fast */
static int breaker_enter(eid_redis_t *r, int *probe)
{
    int go = 1;
    *probe = 0;
    apr_thread_mutex_lock(r->mu);
    if (r->open) {
        if (r->probing || apr_time_now() < r->open_until)
            go = 0;
        else
            r->probing = *probe = 1;
    }
    apr_thread_mutex_unlock(r->mu);
    if (!go)
        atomic_fetch_add(&r->fast_fails, 1);
    return go;
}

static void breaker_ok(eid_redis_t *r)
{
    int was = 0;
    apr_thread_mutex_lock(r->mu);
    if (r->outage || r->open)
        was = 1;
    r->fails = r->open = r->probing = r->outage = 0;
    apr_thread_mutex_unlock(r->mu);
    if (was)
        eid_log(EID_LOG_NOTICE, "EID06308", "redis store: reachable again");
}

static void breaker_fail(eid_redis_t *r, int probe)
{
    int opened = 0;
    apr_thread_mutex_lock(r->mu);
    r->outage = 1;
    if (probe)
        r->probing = 0;
    if (++r->fails >= r->conf.breaker_failures) {
        opened = !r->open;
        r->open = 1;
        r->open_until = apr_time_now() + r->conf.breaker_backoff;
    }
    apr_thread_mutex_unlock(r->mu);
    if (opened)
        eid_redis_note(r, RT_BREAKER,
                       "%d consecutive failures: failing fast, one probe every %d ms",
                       r->conf.breaker_failures, (int)(r->conf.breaker_backoff / 1000));
}

/* ---- connect ---------------------------------------------------------- */

static int read_password(eid_redis_t *r, char *buf, apr_size_t size)
{
    int fd = open(r->conf.password_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0) {
        eid_redis_note(r, RT_PWFILE, "cannot read password_file %s", r->conf.password_file);
        return -1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return (int)n;
}

/* a command during connection set-up: 0 when the reply is +OK (or, with
 * want_int, an integer), else -1 with the reply text noted under kind */
static int setup_cmd(eid_redis_t *r, redisContext *c, int kind, int argc, const char **argv,
                     const size_t *argl)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, argl);
    atomic_fetch_add(&r->commands, 1);
    if (!rep) {
        eid_redis_note(r, RT_IO, "set-up command %s: %s", argv[0], c->errstr);
        return -1;
    }
    int ok = rep->type == REDIS_REPLY_STATUS;
    if (!ok)
        eid_redis_note(r, kind, "%s refused: %.200s", argv[0],
                       rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

static redisContext *dial(eid_redis_t *r, const char *host, int port)
{
    struct timeval ct = tv_of(r->conf.connect_timeout);
    redisContext *c = host ? redisConnectWithTimeout(host, port, ct)
                           : redisConnectUnixWithTimeout(r->conf.path, ct);
    if (!c || c->err) {
        eid_redis_note(r, RT_CONNECT, "cannot connect to %s:%d: %s",
                       host ? host : r->conf.path, host ? port : 0,
                       c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv_of(r->conf.command_timeout)) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* SENTINEL get-master-addr-by-name through each sentinel in turn */
static int discover(eid_redis_t *r, char *host, apr_size_t hsize, int *port)
{
    atomic_fetch_add(&r->discoveries, 1);
    for (int i = 0; i < r->conf.nsentinels; i++) {
        redisContext *c = dial(r, r->conf.sentinel_host[i], r->conf.sentinel_port[i]);
        if (!c)
            continue;
        const char *argv[] = {"SENTINEL", "get-master-addr-by-name", r->conf.master_name};
        size_t argl[] = {8, 23, strlen(r->conf.master_name)};
        redisReply *rep = redisCommandArgv(c, 3, argv, argl);
        int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                 rep->element[0]->type == REDIS_REPLY_STRING &&
                 rep->element[1]->type == REDIS_REPLY_STRING &&
                 rep->element[0]->len < hsize;
        if (ok) {
            memcpy(host, rep->element[0]->str, rep->element[0]->len);
            host[rep->element[0]->len] = '\0';
            *port = atoi(rep->element[1]->str);
            ok = *port > 0 && *port < 65536;
        }
        if (rep)
            freeReplyObject(rep);
        redisFree(c);
        if (ok)
            return 0;
    }
    eid_redis_note(r, RT_SENTINEL, "no sentinel of %d named a master for `%s`",
                   r->conf.nsentinels, r->conf.master_name);
    return -1;
}

/* sentinel: the connection is to a master (ROLE's first element) */
static int is_master(eid_redis_t *r, redisContext *c)
{
    const char *argv[] = {"ROLE"};
    size_t argl[] = {4};
    redisReply *rep = redisCommandArgv(c, 1, argv, argl);
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
             rep->element[0]->type == REDIS_REPLY_STRING &&
             strcmp(rep->element[0]->str, "master") == 0;
    if (rep)
        freeReplyObject(rep);
    if (!ok)
        eid_redis_note(r, RT_ROLE, "the address the sentinels gave is not a master (yet)");
    return ok;
}

static void forget_master(eid_redis_t *r)
{
    apr_thread_mutex_lock(r->mu);
    r->master_host[0] = '\0';
    apr_thread_mutex_unlock(r->mu);
}

redisContext *eid_redis_connect_raw(eid_redis_t *r, unsigned *epoch)
{
    redisContext *c;
    *epoch = 0;
    if (r->conf.kind == EID_REDIS_SENTINEL) {
        char host[256];
        int port = 0;
        apr_thread_mutex_lock(r->mu);
        memcpy(host, r->master_host, sizeof(host));
        port = r->master_port;
        *epoch = r->master_epoch;
        apr_thread_mutex_unlock(r->mu);
        if (!host[0]) {
            /* I/O outside the lock: concurrent discoveries are harmless */
            if (discover(r, host, sizeof(host), &port) != 0)
                return NULL;
            apr_thread_mutex_lock(r->mu);
            if (strcmp(host, r->master_host) != 0 || port != r->master_port) {
                memcpy(r->master_host, host, sizeof(host));
                r->master_port = port;
                r->master_epoch++; /* older connections are to a former master */
            }
            *epoch = r->master_epoch;
            apr_thread_mutex_unlock(r->mu);
        }
        c = dial(r, host, port);
    } else {
        c = dial(r, r->conf.kind == EID_REDIS_TCP ? r->conf.host : NULL, r->conf.port);
    }
    if (!c)
        goto fail;
    if (r->conf.password_file) {
        /* read per connection: a rotated password needs no httpd restart */
        char pw[520];
        int n = read_password(r, pw, sizeof(pw));
        if (n < 0)
            goto fail;
        const char *argv[] = {"AUTH", r->conf.user, pw};
        size_t argl[] = {4, r->conf.user ? strlen(r->conf.user) : 0, (size_t)n};
        int rc = r->conf.user ? setup_cmd(r, c, RT_AUTH, 3, argv, argl)
                              : setup_cmd(r, c, RT_AUTH, 2, (const char *[]){"AUTH", pw},
                                          (size_t[]){4, (size_t)n});
        explicit_bzero(pw, sizeof(pw));
        if (rc != 0)
            goto fail;
    }
    if (r->conf.db) {
        char db[8];
        int n = snprintf(db, sizeof(db), "%d", r->conf.db);
        if (setup_cmd(r, c, RT_SELECT, 2, (const char *[]){"SELECT", db},
                      (size_t[]){6, (size_t)n}) != 0)
            goto fail;
    }
    if (r->conf.kind == EID_REDIS_SENTINEL && !is_master(r, c))
        goto fail;
    atomic_fetch_add(&r->connects, 1);
    return c;
fail:
    if (c)
        redisFree(c);
    if (r->conf.kind == EID_REDIS_SENTINEL)
        forget_master(r);
    return NULL;
}

/* ---- the free-list ---------------------------------------------------- */

static rconn_t *take(eid_redis_t *r, int *pooled)
{
    rconn_t *k = NULL, *stale = NULL;
    pid_t me = getpid();
    apr_thread_mutex_lock(r->mu);
    while (r->idle) {
        k = r->idle;
        r->idle = k->next;
        r->nidle--;
        if (k->pid == me && k->epoch == r->master_epoch)
            break;
        k->next = stale; /* another process's, or to a former master */
        stale = k;
        k = NULL;
    }
    apr_thread_mutex_unlock(r->mu);
    while (stale) {
        rconn_t *n = stale->next;
        /* closing a parent's copy of a socket leaves the parent's open */
        redisFree(stale->c);
        free(stale);
        stale = n;
    }
    *pooled = k != NULL;
    if (k)
        return k;
    unsigned epoch;
    redisContext *c = eid_redis_connect_raw(r, &epoch);
    if (!c)
        return NULL;
    k = calloc(1, sizeof(*k));
    if (!k) {
        redisFree(c);
        return NULL;
    }
    k->c = c;
    k->pid = me;
    k->epoch = epoch;
    return k;
}

static void give(eid_redis_t *r, rconn_t *k)
{
    apr_thread_mutex_lock(r->mu);
    if (r->nidle < r->conf.pool_idle_max) {
        k->next = r->idle;
        r->idle = k;
        r->nidle++;
        k = NULL;
    }
    apr_thread_mutex_unlock(r->mu);
    if (k) {
        redisFree(k->c);
        free(k);
    }
}

static void discard(rconn_t *k)
{
    redisFree(k->c); /* saw an error: never reused */
    free(k);
}

void eid_redis_drain(eid_redis_t *r)
{
    apr_thread_mutex_lock(r->mu);
    rconn_t *k = r->idle;
    r->idle = NULL;
    r->nidle = 0;
    apr_thread_mutex_unlock(r->mu);
    while (k) {
        rconn_t *n = k->next;
        redisFree(k->c);
        free(k);
        k = n;
    }
}

/* ---- commands --------------------------------------------------------- */

int eid_redis_pipe(eid_redis_t *r, int n, const int *argcs, const char *const *const *argvs,
                   const size_t *const *argls, redisReply **replies, int retry)
{
    int probe;
    for (int i = 0; i < n; i++)
        replies[i] = NULL;
    if (!breaker_enter(r, &probe))
        return -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        int pooled;
        rconn_t *k = take(r, &pooled);
        if (!k) {
            breaker_fail(r, probe);
            return -1;
        }
        int bad = 0, err = 0;
        for (int i = 0; i < n && !bad; i++)
            bad = redisAppendCommandArgv(k->c, argcs[i], (const char **)argvs[i], argls[i]) !=
                  REDIS_OK;
        for (int i = 0; i < n && !bad; i++) {
            void *rep = NULL;
            if (redisGetReply(k->c, &rep) != REDIS_OK || !rep) {
                err = errno;
                bad = 1;
            } else
                replies[i] = rep;
        }
        atomic_fetch_add(&r->commands, (unsigned long long)n);
        if (!bad) {
            int readonly = 0;
            for (int i = 0; i < n; i++)
                if (replies[i]->type == REDIS_REPLY_ERROR &&
                    strncmp(replies[i]->str, "READONLY", 8) == 0)
                    readonly = 1;
            if (!readonly) {
                give(r, k);
                breaker_ok(r);
                return 0;
            }
            /* a replica now (failover): look the master up again */
            eid_redis_note(r, RT_READONLY, "-READONLY: the server is a replica now");
            forget_master(r);
            for (int i = 0; i < n; i++) {
                freeReplyObject(replies[i]);
                replies[i] = NULL;
            }
            discard(k);
            if (attempt == 0 && retry && r->conf.kind == EID_REDIS_SENTINEL)
                continue;
            breaker_fail(r, probe);
            return -1;
        }
        int eof = k->c->err == REDIS_ERR_EOF ||
                  (k->c->err == REDIS_ERR_IO && (err == ECONNRESET || err == EPIPE));
        char why[128];
        snprintf(why, sizeof(why), "%s", k->c->errstr);
        for (int i = 0; i < n; i++)
            if (replies[i]) {
                freeReplyObject(replies[i]);
                replies[i] = NULL;
            }
        discard(k);
        if (r->conf.kind == EID_REDIS_SENTINEL)
            forget_master(r);
        if (pooled && eof && retry && attempt == 0) {
            /* the peer closed an idle pooled connection (Redis restarted):
             * the others are as dead; the command never reached a server */
            eid_redis_drain(r);
            continue;
        }
        eid_redis_note(r, RT_IO, "command failed: %s", why);
        breaker_fail(r, probe);
        return -1;
    }
    return -1;
}

redisReply *eid_redis_cmd(eid_redis_t *r, int argc, const char **argv, const size_t *argl,
                          int retry)
{
    redisReply *rep;
    const char *const *av[1] = {argv};
    const size_t *al[1] = {argl};
    if (eid_redis_pipe(r, 1, &argc, av, al, &rep, retry) != 0)
        return NULL;
    return rep;
}
