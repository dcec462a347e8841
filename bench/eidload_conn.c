/*
 * eidload_conn.c - the connection engine of eidload: non-blocking connect,
 * TLS handshake, request write, response parse, one epoll loop per thread.
 * One request in flight per connection; level-triggered epoll; a response
 * is complete when Content-Length bytes of body have arrived.
 */
#include "eidload.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

const char *err_names[E_MAX] = {
    "connect", "tls", "read", "write", "closed", "closed_inflight", "short", "parse", "chunked",
    "no_length", "extra_data", "timeout", "body_size", "non2xx", "conn_close"};


unsigned lat_bucket(uint64_t v)
{
    if (v < SUB_COUNT)
        return (unsigned)v;
    int e = 63 - __builtin_clzll(v);
    return (unsigned)(((e - SUB_BITS + 1) << SUB_BITS) + ((v >> (e - SUB_BITS)) & (SUB_COUNT - 1)));
}

double lat_value(unsigned i)
{
    if (i < SUB_COUNT)
        return i;
    int e = (int)(i >> SUB_BITS) + SUB_BITS - 1;
    uint64_t lo = (uint64_t)(SUB_COUNT + (i & (SUB_COUNT - 1))) << (e - SUB_BITS);
    uint64_t width = 1ULL << (e - SUB_BITS);
    return (double)lo + (double)width / 2.0;
}

uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static void conn_start(struct conn *c);
static void conn_send(struct conn *c);
static void conn_read(struct conn *c);
static void conn_write_more(struct conn *c);

static void set_interest(struct conn *c, uint32_t ev)
{
    if (c->interest == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
        c->interest = ev;
}

static void conn_close(struct conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->st = C_DEAD;
}

/* Count an error on c, close it and, while the run goes on, reconnect
 * (bounded by MAX_FAILS consecutive failures). */
static void conn_fail(struct conn *c, enum err_kind k)
{
    struct worker *w = c->w;
    w->st.err[k]++;
    conn_close(c);
    if (++c->fails > MAX_FAILS)
        return;
    if (w->running || w->setup) {
        if (w->running)
            w->st.reconnects++;
        conn_start(c);
    }
}

static void conn_start(struct conn *c)
{
    struct addrinfo *ai = cfg.addr;
    c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (c->fd < 0) {
        c->st = C_DEAD;
        c->w->st.err[E_CONNECT]++;
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->blen = 0;
    c->st = C_CONNECTING;
    c->t_start = now_us();
    c->interest = EPOLLOUT;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
        close(c->fd);
        c->fd = -1;
        c->st = C_DEAD;
        c->w->st.err[E_CONNECT]++;
        return;
    }
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        conn_fail(c, E_CONNECT);
    }
}

/* The connection is usable: send at once if the window is open. */
static void conn_ready(struct conn *c)
{
    c->st = C_IDLE;
    set_interest(c, EPOLLIN);
    if (c->w->running)
        conn_send(c);
}

static void conn_handshake(struct conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        conn_ready(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        set_interest(c, EPOLLIN);
    else if (e == SSL_ERROR_WANT_WRITE)
        set_interest(c, EPOLLOUT);
    else {
        if (!cfg.quiet && c->fails == 0)
            ERR_print_errors_fp(stderr);
        ERR_clear_error();
        conn_fail(c, E_TLS);
    }
}

static void conn_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        conn_fail(c, E_CONNECT);
        return;
    }
    if (!cfg.tls) {
        conn_ready(c);
        return;
    }
    c->ssl = SSL_new(cfg.ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        conn_fail(c, E_TLS);
        return;
    }
    SSL_set_connect_state(c->ssl);
    if (cfg.sni)
        SSL_set_tlsext_host_name(c->ssl, cfg.sni);
    if (cfg.cafile && cfg.sni)
        SSL_set1_host(c->ssl, cfg.sni);
    c->st = C_HANDSHAKE;
    conn_handshake(c);
}

int cap_reached(void)
{
    return atomic_load_explicit(&sent_total, memory_order_relaxed) >= cfg.max_requests;
}

static void conn_send(struct conn *c)
{
    struct worker *w = c->w;
    if (!w->running)
        return;
    if (atomic_fetch_add_explicit(&sent_total, 1, memory_order_relaxed) >= cfg.max_requests) {
        c->st = C_IDLE;
        return;
    }
    c->req = &cfg.reqs[w->rot % cfg.nreqs];
    w->rot += (uint64_t)cfg.threads;
    c->req_off = 0;
    c->blen = 0;
    c->hdr_done = 0;
    c->close_after = 0;
    c->clen = -1;
    c->body_got = 0;
    c->status = 0;
    c->st = C_WRITING;
    c->t_start = now_us();
    conn_write_more(c);
}

/* Continue a request whose write would have blocked. */
static void conn_write_more(struct conn *c)
{
    const struct req *rq = c->req;
    while (c->req_off < rq->len) {
        ssize_t n;
        const char *p = rq->data + c->req_off;
        size_t left = rq->len - c->req_off;
        if (c->ssl) {
            int r = SSL_write(c->ssl, p, (int)left);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE) {
                    set_interest(c, EPOLLOUT);
                    return;
                }
                if (e == SSL_ERROR_WANT_READ) {
                    set_interest(c, EPOLLIN);
                    return;
                }
                ERR_clear_error();
                conn_fail(c, E_WRITE);
                return;
            }
            n = r;
        } else {
            n = send(c->fd, p, left, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    set_interest(c, EPOLLOUT);
                    return;
                }
                conn_fail(c, E_WRITE);
                return;
            }
        }
        c->req_off += (size_t)n;
    }
    c->st = C_READING;
    set_interest(c, EPOLLIN);
    /* OpenSSL may already hold bytes that epoll cannot see. */
    if (c->ssl && SSL_has_pending(c->ssl))
        conn_read(c);
}

static int ci_prefix(const char *s, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && strncasecmp(s, name, n) == 0 && s[n] == ':';
}

static int ci_contains(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(s + i, word, n) == 0)
            return 1;
    return 0;
}

/* Parse the header block buf[0..hlen) (ending in CRLFCRLF).  Returns an
 * error kind, or E_MAX on success. */
static enum err_kind parse_headers(struct conn *c, size_t hlen)
{
    const char *b = c->buf, *end = c->buf + hlen;
    if (hlen < 16 || memcmp(b, "HTTP/1.", 7) != 0 || (b[7] != '1' && b[7] != '0') || b[8] != ' ')
        return E_PARSE;
    if (b[9] < '1' || b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9' ||
        (b[12] != ' ' && b[12] != '\r'))
        return E_PARSE;
    int http10 = b[7] == '0';
    int keepalive10 = 0;
    c->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    c->clen = -1;
    const char *line = memchr(b, '\n', hlen);
    if (!line)
        return E_PARSE;
    line++;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol || eol == line || eol[-1] != '\r')
            return E_PARSE;
        size_t len = (size_t)(eol - 1 - line);
        if (len == 0)
            break;
        if (line[0] == ' ' || line[0] == '\t')
            return E_PARSE; /* obsolete folding */
        if (ci_prefix(line, len, "content-length")) {
            const char *v = line + 15, *ve = line + len;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (v == ve || ve - v > 15 || c->clen >= 0)
                return E_PARSE;
            long long n = 0;
            for (; v < ve; v++) {
                if (*v < '0' || *v > '9')
                    return E_PARSE;
                n = n * 10 + (*v - '0');
            }
            c->clen = n;
        } else if (ci_prefix(line, len, "transfer-encoding")) {
            return E_CHUNKED;
        } else if (ci_prefix(line, len, "connection")) {
            if (ci_contains(line + 11, len - 11, "close"))
                c->close_after = 1;
            if (ci_contains(line + 11, len - 11, "keep-alive"))
                keepalive10 = 1;
        }
        line = eol + 1;
    }
    if (http10 && !keepalive10)
        c->close_after = 1;
    if (c->status < 200)
        return E_PARSE; /* 1xx never expected: no Expect sent, no upgrades */
    if (c->clen < 0) {
        if (c->status == 204 || c->status == 304)
            c->clen = 0;
        else
            return E_NO_LENGTH;
    }
    return E_MAX;
}

static void record(struct worker *w, struct conn *c, uint64_t t)
{
    struct stats *s = &w->st;
    if (w->running && t > deadline_us)
        return; /* completed after the window: not counted */
    s->requests++;
    s->body_bytes += (uint64_t)c->body_got;
    if (c->status >= 100 && c->status < 600)
        s->status[c->status]++;
    if (c->status >= 200 && c->status < 300)
        s->ok++;
    else
        s->err[E_NON2XX]++;
    if (cfg.expect_body >= 0 && c->clen != cfg.expect_body)
        s->err[E_BODY_SIZE]++;
    uint64_t l = t - c->t_start;
    s->lat[lat_bucket(l)]++;
    s->lat_sum += l;
    if (l > s->lat_max)
        s->lat_max = l;
}

static void response_done(struct conn *c)
{
    struct worker *w = c->w;
    uint64_t t = now_us();
    record(w, c, t);
    c->fails = 0;
    if (c->close_after) {
        /* The server is ending keep-alive: an error for a keep-alive benchmark. */
        w->st.err[E_CONN_CLOSE]++;
        conn_close(c);
        if (w->running) {
            w->st.reconnects++;
            conn_start(c);
        }
        return;
    }
    c->st = C_IDLE;
    if (w->running && t < deadline_us)
        conn_send(c);
}

/* Feed n new bytes that sit at buf[blen-n .. blen). Returns 1 when the
 * response completed, 0 when more is needed, -1 after an error (c closed). */
static int consume(struct conn *c, size_t n)
{
    if (!c->hdr_done) {
        size_t from = c->blen - n >= 3 ? c->blen - n - 3 : 0;
        char *hend = memmem(c->buf + from, c->blen - from, "\r\n\r\n", 4);
        if (!hend) {
            if (c->blen >= BUF_SIZE) {
                conn_fail(c, E_PARSE);
                return -1;
            }
            return 0;
        }
        size_t hlen = (size_t)(hend - c->buf) + 4;
        enum err_kind k = parse_headers(c, hlen);
        if (k != E_MAX) {
            conn_fail(c, k);
            return -1;
        }
        c->hdr_done = 1;
        c->body_got = (long long)(c->blen - hlen);
    } else {
        c->body_got += (long long)n;
    }
    c->blen = 0; /* body bytes are counted, not kept */
    if (c->body_got > c->clen) {
        conn_fail(c, E_EXTRA);
        return -1;
    }
    return c->body_got == c->clen;
}

static void conn_read(struct conn *c)
{
    for (;;) {
        ssize_t n;
        if (c->ssl) {
            int r = SSL_read(c->ssl, c->buf + c->blen, (int)(BUF_SIZE - c->blen));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    return;
                if (e == SSL_ERROR_WANT_WRITE) {
                    set_interest(c, EPOLLOUT);
                    return;
                }
                ERR_clear_error();
                if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0))
                    n = 0;
                else {
                    conn_fail(c, E_READ);
                    return;
                }
            } else
                n = r;
        } else {
            n = recv(c->fd, c->buf + c->blen, BUF_SIZE - c->blen, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return;
                conn_fail(c, E_READ);
                return;
            }
        }
        if (n == 0) {
            if (c->st == C_READING && (c->hdr_done || c->blen > 0))
                conn_fail(c, E_SHORT);
            else
                conn_fail(c, c->st == C_READING ? E_CLOSED_REQ : E_CLOSED);
            return;
        }
        if (c->st != C_READING) {
            /* data nobody asked for */
            conn_fail(c, E_EXTRA);
            return;
        }
        c->blen += (size_t)n;
        int r = consume(c, (size_t)n);
        if (r < 0)
            return;
        if (r == 1) {
            response_done(c);
            return;
        }
    }
}

static void on_event(struct conn *c, uint32_t ev)
{
    switch (c->st) {
    case C_CONNECTING:
        conn_connected(c);
        break;
    case C_HANDSHAKE:
        conn_handshake(c);
        break;
    case C_WRITING:
        if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN))
            conn_fail(c, E_WRITE);
        else
            conn_write_more(c);
        break;
    case C_READING:
    case C_IDLE:
        conn_read(c);
        break;
    case C_DEAD:
        break;
    }
}

static void check_timeouts(struct worker *w, uint64_t t)
{
    for (int i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if ((c->st == C_WRITING || c->st == C_READING) && t - c->t_start > cfg.timeout_us)
            conn_fail(c, E_TIMEOUT);
        else if ((c->st == C_CONNECTING || c->st == C_HANDSHAKE) &&
                 t - c->t_start > cfg.timeout_us)
            conn_fail(c, c->st == C_CONNECTING ? E_CONNECT : E_TLS);
    }
}

static int count_state(struct worker *w, int busy_only)
{
    int n = 0;
    for (int i = 0; i < w->nconns; i++) {
        enum cstate s = w->conns[i].st;
        if (busy_only ? (s != C_IDLE && s != C_DEAD) : (s == C_CONNECTING || s == C_HANDSHAKE))
            n++;
    }
    return n;
}

static void poll_once(struct worker *w, int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(w->ep, evs, 256, timeout_ms);
    for (int i = 0; i < n; i++)
        on_event(evs[i].data.ptr, evs[i].events);
}

void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* Setup: connect and handshake every connection before the window. */
    w->setup = 1;
    for (int i = 0; i < w->nconns; i++)
        conn_start(&w->conns[i]);
    uint64_t setup_end = now_us() + SETUP_TIMEOUT_US;
    while (count_state(w, 0) > 0 && !interrupted) {
        uint64_t t = now_us();
        if (t > setup_end)
            break;
        poll_once(w, 50);
        check_timeouts(w, now_us());
    }
    for (int i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->st == C_CONNECTING || c->st == C_HANDSHAKE) {
            w->st.err[c->st == C_CONNECTING ? E_CONNECT : E_TLS]++;
            conn_close(c);
        }
    }
    w->setup = 0;
    pthread_barrier_wait(&barrier); /* setup done */
    pthread_barrier_wait(&barrier); /* window opened by main */
    w->running = 1;
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i].st == C_IDLE)
            conn_send(&w->conns[i]);
    uint64_t next_check = now_us() + 100000;
    for (;;) {
        uint64_t t = now_us();
        if (t >= deadline_us || interrupted)
            break;
        int busy = count_state(w, 1);
        if (busy == 0) /* all idle (cap reached) or dead */
            break;
        uint64_t left = deadline_us - t;
        int to = left > 100000 ? 100 : (int)(left / 1000) + 1;
        poll_once(w, to);
        t = now_us();
        if (t >= next_check) {
            check_timeouts(w, t);
            next_check = t + 100000;
        }
    }
    w->t_end = now_us();
    if (w->t_end > deadline_us)
        w->t_end = deadline_us;
    w->running = 0;
    for (int i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        /* Tell the server we are done (close_notify, best effort, no waiting)
         * so that it does not log an unexpected EOF for every connection. */
        if (c->ssl && (c->st == C_IDLE || c->st == C_READING || c->st == C_WRITING))
            SSL_shutdown(c->ssl);
        conn_close(c);
    }
    return NULL;
}
