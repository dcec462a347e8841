/*
 * eid_audit_batch.c - audit records written in batches (EidAuditLog ... flush=N).
 *
 * By default every record is one write() of its own, made by the request's
 * thread when the request is logged.  On this kind of machine a system call
 * costs more than everything else the module does for a request with an
 * established session, so a busy site may choose to have each child collect
 * its records and write them at most N milliseconds after the first of them,
 * many in one write().  What that costs: a child that crashes or is killed
 * (SIGKILL, the OOM killer) loses the records of its last N milliseconds.  A
 * child that exits normally (graceful restart, stop, MaxConnectionsPerChild)
 * writes everything first.
 *
 * Per child and sink: a buffer the request threads append to under a mutex,
 * and a writer thread.  The writer sleeps on a condition variable while the
 * buffer is empty; the request that makes it non-empty wakes it (the only
 * time a request makes a system call here); the writer then waits N ms, takes
 * the buffer (swapping in its spare) and writes it.  Order within a child is
 * kept.  Bounded: a buffer never grows past BATCH_MAX; a request that would
 * overflow it writes the buffer and its own record itself, under the mutex
 * (records are never dropped).  A piped logger gets writes of at most
 * PIPE_BUF bytes, cut at line ends, so lines of different children never
 * interleave in the pipe (a single longer line is written alone, as in the
 * unbatched mode).
 */
#include "mod_auth_eid.h"

#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"
#include "http_log.h"

#include <limits.h>
#include <stdlib.h>

#define BATCH_INITIAL (64 * 1024)
#define BATCH_MAX (1024 * 1024)

struct eid_audit_batch {
    eid_audit_sink_t *sink;
    server_rec *s;
    apr_thread_mutex_t *mu;
    /* Held while a batch is written, taken while holding mu (never the
     * other way round): the writer takes it before it lets go of mu after
     * taking the buffer, so a request that must write an overflowing buffer
     * itself waits for the older batch to be written first. */
    apr_thread_mutex_t *wmu;
    apr_thread_cond_t *cv;
    char *buf, *spare; /* malloc'd; buf is filled under mu, spare is the writer's */
    apr_size_t len, cap, spare_cap;
    int waiting;       /* the writer sleeps on cv */
    int stop;          /* the child is exiting: write at once, then end */
    apr_thread_t *thread;
};

/* Write n bytes of whole lines; a pipe in pieces of at most PIPE_BUF cut at
 * line ends.  One log line per failed batch. */
static void write_out(eid_audit_batch_t *b, const char *p, apr_size_t n)
{
    apr_status_t rv = APR_SUCCESS;
    int pipe = b->sink->spec && b->sink->spec[0] == '|';
    while (n && rv == APR_SUCCESS) {
        apr_size_t k = n;
        if (pipe && k > PIPE_BUF) {
            const char *cut = NULL, *q;
            for (q = p + PIPE_BUF - 1; q >= p; q--)
                if (*q == '\n') {
                    cut = q;
                    break;
                }
            /* one line longer than PIPE_BUF: alone, to its end */
            if (!cut && !(cut = memchr(p + PIPE_BUF, '\n', n - PIPE_BUF)))
                cut = p + n - 1;
            k = (apr_size_t)(cut - p) + 1;
        }
        rv = apr_file_write_full(b->sink->fd, p, k, NULL);
        p += k;
        n -= k;
    }
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, b->s,
                     "EID01303: audit records could not be written (%" APR_SIZE_T_FMT
                     " bytes of a batch lost)", n);
}

static void *APR_THREAD_FUNC writer(apr_thread_t *t, void *arg)
{
    eid_audit_batch_t *b = arg;
    apr_interval_time_t delay = apr_time_from_msec(b->sink->flush_ms);
    apr_thread_mutex_lock(b->mu);
    for (;;) {
        char *full;
        apr_size_t n, cap;
        while (!b->len && !b->stop) {
            b->waiting = 1;
            apr_thread_cond_wait(b->cv, b->mu);
            b->waiting = 0;
        }
        if (!b->len)
            break; /* stopping, nothing left */
        if (!b->stop) {
            /* let the batch fill: the point of the mode */
            apr_thread_mutex_unlock(b->mu);
            apr_sleep(delay);
            apr_thread_mutex_lock(b->mu);
        }
        full = b->buf;
        n = b->len;
        cap = b->cap;
        b->buf = b->spare;
        b->cap = b->spare_cap;
        b->len = 0;
        apr_thread_mutex_lock(b->wmu);
        apr_thread_mutex_unlock(b->mu);
        write_out(b, full, n);
        apr_thread_mutex_unlock(b->wmu);
        apr_thread_mutex_lock(b->mu);
        b->spare = full;
        b->spare_cap = cap;
    }
    /* Ended with nothing left, still under the mutex: from now on a record
     * is written by its request (eid_audit_sink_write sees no buffer), so
     * none can be appended to a buffer nobody will write. */
    free(b->buf);
    free(b->spare);
    b->buf = b->spare = NULL;
    apr_thread_mutex_unlock(b->mu);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* A pre-cleanup of pchild: runs before the thread's pool (a sub-pool of
 * pchild) goes, while the sink's file (pconf) is still open. */
static apr_status_t batch_stop(void *data)
{
    eid_audit_batch_t *b = data;
    apr_status_t trv;
    apr_thread_mutex_lock(b->mu);
    b->stop = 1;
    apr_thread_cond_signal(b->cv);
    apr_thread_mutex_unlock(b->mu);
    /* the writer wrote everything and freed the buffers before it ended */
    apr_thread_join(&trv, b->thread);
    return APR_SUCCESS;
}

static eid_audit_batch_t *batch_start(apr_pool_t *pchild, server_rec *s, eid_audit_sink_t *k)
{
    eid_audit_batch_t *b = apr_pcalloc(pchild, sizeof(*b));
    b->sink = k;
    b->s = s;
    b->cap = b->spare_cap = BATCH_INITIAL;
    if (!(b->buf = malloc(b->cap)) || !(b->spare = malloc(b->spare_cap)) ||
        apr_thread_mutex_create(&b->mu, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS ||
        apr_thread_mutex_create(&b->wmu, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS ||
        apr_thread_cond_create(&b->cv, pchild) != APR_SUCCESS ||
        apr_thread_create(&b->thread, NULL, writer, b, pchild) != APR_SUCCESS) {
        free(b->buf);
        free(b->spare);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "EID01304: the audit writer thread could not be started: records "
                     "are written one by one");
        return NULL;
    }
    apr_pool_pre_cleanup_register(pchild, b, batch_stop);
    return b;
}

void eid_audit_batch_child_init(apr_pool_t *pchild, server_rec *s)
{
    for (; s; s = s->next) {
        eid_srv_conf_t *c = ap_get_module_config(s->module_config, &auth_eid_module);
        eid_audit_sink_t *k = c->audit;
        /* a sink inherited by virtual hosts is one object: one writer */
        if (!k || !k->fd || k->flush_ms <= 0 || k->batch)
            continue;
        k->batch = batch_start(pchild, s, k);
    }
}

apr_status_t eid_audit_sink_write(request_rec *r, eid_audit_sink_t *k, const char *line,
                                  apr_size_t len)
{
    eid_audit_batch_t *b = k->batch;
    apr_status_t rv = APR_SUCCESS;
    if (!b)
        return apr_file_write_full(k->fd, line, len, NULL);
    apr_thread_mutex_lock(b->mu);
    if (!b->buf) {
        /* the writer has ended and written everything (the child is
         * exiting): at once */
        rv = apr_file_write_full(k->fd, line, len, NULL);
    }
    else {
        if (b->len + len > b->cap && b->cap < BATCH_MAX) {
            apr_size_t ncap = b->cap;
            char *nb;
            while (ncap < b->len + len && ncap < BATCH_MAX)
                ncap *= 2;
            if ((nb = realloc(b->buf, ncap))) {
                b->buf = nb;
                b->cap = ncap;
            }
        }
        if (b->len + len > b->cap) {
            /* full (the disk or the logger is slower than the requests):
             * this request writes the batch and its record itself, after
             * the batch the writer may be writing */
            apr_thread_mutex_lock(b->wmu);
            write_out(b, b->buf, b->len);
            b->len = 0;
            rv = apr_file_write_full(k->fd, line, len, NULL);
            apr_thread_mutex_unlock(b->wmu);
        }
        else {
            memcpy(b->buf + b->len, line, len);
            b->len += len;
            if (b->waiting && b->len == len)
                apr_thread_cond_signal(b->cv);
        }
    }
    apr_thread_mutex_unlock(b->mu);
    return rv;
}
