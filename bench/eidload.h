/*
 * eidload.h - shared between the connection engine (eidload_conn.c) and the
 * command line, set-up and report (eidload.c).
 */
#ifndef EIDLOAD_H
#define EIDLOAD_H

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define MAX_CONNS 4096
#define MAX_THREADS 64
#define MAX_HEADERS 32
#define MAX_ROTATE 100000
#define BUF_SIZE 16384
#define MAX_FAILS 5 /* consecutive failures before a connection is given up */
#define SETUP_TIMEOUT_US 10000000ULL

/* ---- errors ---------------------------------------------------------------- */
enum err_kind {
    E_CONNECT,    /* connect() failed or timed out during setup */
    E_TLS,        /* TLS handshake failed */
    E_READ,       /* read()/SSL_read() error (e.g. ECONNRESET, TLS alert) */
    E_WRITE,      /* write()/SSL_write() error */
    E_CLOSED,     /* server closed an idle keep-alive connection */
    E_CLOSED_REQ, /* server closed after our request was sent, before any response byte */
    E_SHORT,      /* EOF in the middle of a response (short headers or short body) */
    E_PARSE,      /* malformed status line or headers, headers too large */
    E_CHUNKED,    /* Transfer-Encoding: chunked (not supported: counted as an error) */
    E_NO_LENGTH,  /* neither Content-Length nor a bodiless status */
    E_EXTRA,      /* bytes beyond the announced Content-Length */
    E_TIMEOUT,    /* no complete response within --timeout */
    E_BODY_SIZE,  /* Content-Length differs from --expect-body */
    E_NON2XX,     /* complete response with a status outside 200..299 */
    E_CONN_CLOSE, /* response carried Connection: close (keep-alive broken) */
    E_MAX
};
extern const char *err_names[E_MAX];

/* ---- latency histogram (log-linear, ~3% resolution, microseconds) ---------- */
#define SUB_BITS 5
#define SUB_COUNT (1u << SUB_BITS)
#define NBUCKETS ((64 - SUB_BITS + 1) * SUB_COUNT)
unsigned lat_bucket(uint64_t v);
/* The middle of bucket i, in microseconds. */
double lat_value(unsigned i);

struct stats {
    uint64_t requests, ok, body_bytes;
    uint64_t err[E_MAX];
    uint64_t status[600];
    uint64_t lat[NBUCKETS];
    uint64_t lat_sum, lat_max;
    uint64_t reconnects;
};

/* ---- configuration (set by eidload.c before the workers start) ----------------- */
struct req {
    char *data;
    size_t len;
};

struct eid_cfg {
    char host[300], port[16], path[2048];
    int tls;
    int conns, threads;
    double seconds;
    uint64_t max_requests;
    uint64_t timeout_us;
    long long expect_body;      /* -1: no check */
    const char *cert, *key, *chain, *cafile, *sni;
    int tls_version;            /* 0 any, 12, 13 */
    const char *headers[MAX_HEADERS];
    int nheaders;
    const char *rotate_file;
    struct req *reqs;
    size_t nreqs;
    struct addrinfo *addr;
    SSL_CTX *ctx;
    int quiet;
    int cpu_pid;                /* httpd parent: CPU of it + children over the window */
};
extern struct eid_cfg cfg;

extern _Atomic uint64_t sent_total;       /* requests sent, all threads (the hard cap) */
extern volatile sig_atomic_t interrupted; /* SIGINT/SIGTERM: end the window early */
extern uint64_t t0_us, deadline_us;       /* the timed window (CLOCK_MONOTONIC, µs) */
extern pthread_barrier_t barrier;         /* threads + main: set-up done, window open */

uint64_t now_us(void);
/* Non-zero once the hard cap on requests has been reached. */
int cap_reached(void);

/* ---- connections and workers --------------------------------------------------- */
enum cstate { C_CONNECTING, C_HANDSHAKE, C_IDLE, C_WRITING, C_READING, C_DEAD };

struct worker;

struct conn {
    int fd;
    SSL *ssl;
    enum cstate st;
    uint32_t interest;
    struct worker *w;
    const struct req *req;
    size_t req_off;
    char buf[BUF_SIZE];
    size_t blen;
    int hdr_done, status, close_after;
    long long clen, body_got;
    uint64_t t_start;
    unsigned fails;
};

struct worker {
    int tid, ep, nconns, running, setup;
    struct conn *conns;
    uint64_t rot;
    struct stats st;
    uint64_t t_end;
    pthread_t th;
};

/* A worker thread: connects and handshakes its connections, waits twice on
 * the barrier (set-up done; window open), runs until the deadline, the cap or
 * an interrupt, then closes its connections.  Results in w->st and w->t_end. */
void *worker_main(void *arg);

#endif
