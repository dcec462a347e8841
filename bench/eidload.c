/*
 * eidload - a keep-alive HTTP/1.1 load client (epoll + OpenSSL 3, non-blocking).
 *
 * N connections, one request in flight per connection (like wrk), a fixed
 * duration and a hard cap on requests.  Connections (and TLS handshakes,
 * optionally with a client certificate) are established before the timed
 * window opens, so the window measures requests on warm keep-alive
 * connections only.  Responses are parsed (status line, Content-Length);
 * chunked or length-less responses are counted as errors, as are non-2xx
 * statuses, socket errors, EOF mid-response and (with --expect-body) bodies of
 * the wrong size.  The result is one JSON object on stdout.
 *
 * Exit status: 0 run completed without errors, 1 run completed with errors,
 * 2 usage or setup failure (no connection could be established).
 */
#include "eidload.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

struct eid_cfg cfg;
_Atomic uint64_t sent_total;
volatile sig_atomic_t interrupted;
uint64_t t0_us, deadline_us;
pthread_barrier_t barrier;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("eidload: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void die_ssl(const char *what)
{
    fprintf(stderr, "eidload: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

/* ---- set-up ----------------------------------------------------------------- */
static void parse_url(const char *url)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) {
        cfg.tls = 0;
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        cfg.tls = 1;
        p = url + 8;
    } else
        die("URL must start with http:// or https://");
    const char *slash = strchr(p, '/');
    size_t hp = slash ? (size_t)(slash - p) : strlen(p);
    char hostport[300];
    if (hp == 0 || hp >= sizeof hostport)
        die("bad host in URL");
    memcpy(hostport, p, hp);
    hostport[hp] = 0;
    snprintf(cfg.path, sizeof cfg.path, "%s", slash ? slash : "/");
    char *colon = strrchr(hostport, ':');
    if (colon && !strchr(colon, ']')) {
        *colon = 0;
        snprintf(cfg.port, sizeof cfg.port, "%s", colon + 1);
    } else
        snprintf(cfg.port, sizeof cfg.port, "%s", cfg.tls ? "443" : "80");
    snprintf(cfg.host, sizeof cfg.host, "%s", hostport);
    for (const char *q = cfg.path; *q; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            die("path must not contain spaces or control characters");
}

static void check_header(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        die("header '%s' is not 'Name: value'", h);
    for (const char *q = h; *q; q++)
        if (*q == '\r' || *q == '\n')
            die("header contains CR/LF");
}

static char *build_request(const char *rot, size_t *len)
{
    int have_host = 0;
    for (int i = 0; i < cfg.nheaders; i++)
        if (strncasecmp(cfg.headers[i], "host:", 5) == 0)
            have_host = 1;
    size_t cap = strlen(cfg.path) + 512 + (rot ? strlen(rot) : 0);
    for (int i = 0; i < cfg.nheaders; i++)
        cap += strlen(cfg.headers[i]) + 2;
    char *r = malloc(cap);
    if (!r)
        die("out of memory");
    size_t n = (size_t)snprintf(r, cap, "GET %s HTTP/1.1\r\n", cfg.path);
    if (!have_host) {
        int defport = strcmp(cfg.port, cfg.tls ? "443" : "80") == 0;
        n += (size_t)snprintf(r + n, cap - n, "Host: %s%s%s\r\n", cfg.host, defport ? "" : ":",
                              defport ? "" : cfg.port);
    }
    n += (size_t)snprintf(r + n, cap - n, "User-Agent: eidload/1\r\n");
    for (int i = 0; i < cfg.nheaders; i++)
        n += (size_t)snprintf(r + n, cap - n, "%s\r\n", cfg.headers[i]);
    if (rot)
        n += (size_t)snprintf(r + n, cap - n, "%s\r\n", rot);
    n += (size_t)snprintf(r + n, cap - n, "\r\n");
    *len = n;
    return r;
}

static void build_requests(void)
{
    if (!cfg.rotate_file) {
        cfg.reqs = calloc(1, sizeof *cfg.reqs);
        cfg.reqs[0].data = build_request(NULL, &cfg.reqs[0].len);
        cfg.nreqs = 1;
        return;
    }
    FILE *f = fopen(cfg.rotate_file, "r");
    if (!f)
        die("cannot open %s", cfg.rotate_file);
    cfg.reqs = calloc(MAX_ROTATE, sizeof *cfg.reqs);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0 || line[0] == '#')
            continue;
        if (cfg.nreqs == MAX_ROTATE)
            die("more than %d lines in %s", MAX_ROTATE, cfg.rotate_file);
        check_header(line);
        cfg.reqs[cfg.nreqs].data = build_request(line, &cfg.reqs[cfg.nreqs].len);
        cfg.nreqs++;
    }
    free(line);
    fclose(f);
    if (cfg.nreqs == 0)
        die("no header lines in %s", cfg.rotate_file);
}

static void setup_tls(void)
{
    cfg.ctx = SSL_CTX_new(TLS_client_method());
    if (!cfg.ctx)
        die_ssl("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(cfg.ctx, TLS1_2_VERSION);
    if (cfg.tls_version == 12) {
        SSL_CTX_set_max_proto_version(cfg.ctx, TLS1_2_VERSION);
    } else if (cfg.tls_version == 13) {
        SSL_CTX_set_min_proto_version(cfg.ctx, TLS1_3_VERSION);
    }
    /* One read() per TLS record batch instead of two per record. */
    SSL_CTX_set_read_ahead(cfg.ctx, 1);
    if (cfg.cafile) {
        if (SSL_CTX_load_verify_locations(cfg.ctx, cfg.cafile, NULL) != 1)
            die_ssl("cannot load --cafile");
        SSL_CTX_set_verify(cfg.ctx, SSL_VERIFY_PEER, NULL);
    } else
        SSL_CTX_set_verify(cfg.ctx, SSL_VERIFY_NONE, NULL);
    if (cfg.cert) {
        if (!cfg.key)
            die("--cert needs --key");
        if (SSL_CTX_use_certificate_file(cfg.ctx, cfg.cert, SSL_FILETYPE_PEM) != 1)
            die_ssl("cannot load --cert");
        if (SSL_CTX_use_PrivateKey_file(cfg.ctx, cfg.key, SSL_FILETYPE_PEM) != 1)
            die_ssl("cannot load --key");
        if (SSL_CTX_check_private_key(cfg.ctx) != 1)
            die_ssl("--key does not match --cert");
        if (cfg.chain) {
            FILE *f = fopen(cfg.chain, "r");
            if (!f)
                die("cannot open --chain %s", cfg.chain);
            X509 *leaf = SSL_CTX_get0_certificate(cfg.ctx);
            X509 *x;
            int added = 0;
            while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
                if (X509_cmp(x, leaf) == 0) {
                    X509_free(x);
                    continue;
                }
                if (SSL_CTX_add0_chain_cert(cfg.ctx, x) != 1)
                    die_ssl("cannot add chain certificate");
                added++;
            }
            ERR_clear_error(); /* PEM_read_X509's end-of-file */
            fclose(f);
            if (!cfg.quiet)
                fprintf(stderr, "eidload: %d chain certificate(s) from %s\n", added, cfg.chain);
        }
    } else if (cfg.key)
        die("--key needs --cert");
}

/* utime+stime+cutime+cstime (clock ticks) of pid and of every process whose
 * parent is pid (httpd's children; reaped children are in the parent's c*time). */
static long long tree_ticks(int pid)
{
    long long total = 0;
    char path[300], line[1024];
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    struct dirent *de;
    int seen_parent = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = 0;
        char *rp = strrchr(line, ')');
        if (!rp || rp[1] != ' ')
            continue;
        long long v[15];
        int k = 0;
        char *save = NULL;
        for (char *tok = strtok_r(rp + 2, " ", &save); tok && k < 15;
             tok = strtok_r(NULL, " ", &save)) {
            v[k] = k == 0 ? 0 : atoll(tok); /* field 3 (state) is not a number */
            k++;
        }
        if (k < 15)
            continue;
        int self = atoi(de->d_name);
        if (self != pid && v[1] != pid)
            continue;
        if (self == pid)
            seen_parent = 1;
        total += v[11] + v[12] + v[13] + v[14];
    }
    closedir(d);
    return seen_parent ? total : -1;
}

static uint64_t proc_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static void usage(void)
{
    fputs("usage: eidload [options] URL\n"
          "  -c, --connections N   keep-alive connections (default 64)\n"
          "  -t, --threads N       threads, connections spread over them (default 1)\n"
          "  -d, --duration S      timed window in seconds (default 10, max 3600)\n"
          "  -n, --max-requests N  hard cap on requests sent (default 100000000)\n"
          "  -H, --header 'N: v'   extra request header (repeatable)\n"
          "  -R, --rotate FILE     one header line per line; requests rotate through them\n"
          "  -e, --expect-body N   every response body must be N bytes\n"
          "  -T, --timeout S       per-request/connect timeout (default 5)\n"
          "      --cert F --key F  TLS client certificate and key (PEM)\n"
          "      --chain F         intermediate certificates to send (PEM, leaf skipped)\n"
          "      --cafile F        verify the server against F (default: no verification)\n"
          "      --sni NAME        TLS server name (default: URL host unless an IP)\n"
          "      --tls 1.2|1.3     pin the TLS version\n"
          "      --cpu-pid PID     report CPU of PID + its children over the window\n"
          "  -q, --quiet           no summary on stderr\n"
          "Output: one JSON object on stdout.  Exit 0 clean, 1 errors, 2 setup failure.\n",
          stderr);
    exit(2);
}

static int is_ip(const char *h)
{
    unsigned char b[16];
    return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double pct(const struct stats *s, double p)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < NBUCKETS; i++)
        total += s->lat[i];
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(p * (double)total);
    if (want == 0)
        want = 1;
    uint64_t acc = 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        acc += s->lat[i];
        if (acc >= want)
            return lat_value(i);
    }
    return (double)s->lat_max;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

int main(int argc, char **argv)
{
    cfg.conns = 64;
    cfg.threads = 1;
    cfg.seconds = 10;
    cfg.max_requests = 100000000ULL;
    cfg.timeout_us = 5000000ULL;
    cfg.expect_body = -1;
    enum { O_CERT = 256, O_KEY, O_CHAIN, O_CAFILE, O_SNI, O_TLS, O_CPUPID };
    static const struct option opts[] = {
        {"connections", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'},
        {"duration", required_argument, 0, 'd'},    {"max-requests", required_argument, 0, 'n'},
        {"header", required_argument, 0, 'H'},      {"rotate", required_argument, 0, 'R'},
        {"expect-body", required_argument, 0, 'e'}, {"timeout", required_argument, 0, 'T'},
        {"quiet", no_argument, 0, 'q'},             {"cert", required_argument, 0, O_CERT},
        {"key", required_argument, 0, O_KEY},       {"chain", required_argument, 0, O_CHAIN},
        {"cafile", required_argument, 0, O_CAFILE}, {"sni", required_argument, 0, O_SNI},
        {"tls", required_argument, 0, O_TLS},       {"help", no_argument, 0, 'h'},
        {"cpu-pid", required_argument, 0, O_CPUPID},
        {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:t:d:n:H:R:e:T:qh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': cfg.conns = atoi(optarg); break;
        case 't': cfg.threads = atoi(optarg); break;
        case 'd': cfg.seconds = atof(optarg); break;
        case 'n': cfg.max_requests = strtoull(optarg, NULL, 10); break;
        case 'H':
            if (cfg.nheaders == MAX_HEADERS)
                die("too many -H");
            check_header(optarg);
            cfg.headers[cfg.nheaders++] = optarg;
            break;
        case 'R': cfg.rotate_file = optarg; break;
        case 'e': cfg.expect_body = atoll(optarg); break;
        case 'T': cfg.timeout_us = (uint64_t)(atof(optarg) * 1e6); break;
        case 'q': cfg.quiet = 1; break;
        case O_CERT: cfg.cert = optarg; break;
        case O_KEY: cfg.key = optarg; break;
        case O_CHAIN: cfg.chain = optarg; break;
        case O_CAFILE: cfg.cafile = optarg; break;
        case O_SNI: cfg.sni = optarg; break;
        case O_CPUPID: cfg.cpu_pid = atoi(optarg); break;
        case O_TLS:
            if (strcmp(optarg, "1.2") == 0)
                cfg.tls_version = 12;
            else if (strcmp(optarg, "1.3") == 0)
                cfg.tls_version = 13;
            else
                die("--tls takes 1.2 or 1.3");
            break;
        default: usage();
        }
    }
    if (optind != argc - 1)
        usage();
    if (cfg.conns < 1 || cfg.conns > MAX_CONNS)
        die("connections must be 1..%d", MAX_CONNS);
    if (cfg.threads < 1 || cfg.threads > MAX_THREADS)
        die("threads must be 1..%d", MAX_THREADS);
    if (cfg.threads > cfg.conns)
        cfg.threads = cfg.conns;
    if (!(cfg.seconds > 0 && cfg.seconds <= 3600))
        die("duration must be in (0, 3600]");
    if (cfg.max_requests < 1)
        die("max-requests must be >= 1");
    if (cfg.timeout_us < 1000)
        die("timeout too small");
    parse_url(argv[optind]);
    if (cfg.tls && !cfg.sni && !is_ip(cfg.host))
        cfg.sni = cfg.host;
    if (!cfg.tls && (cfg.cert || cfg.key || cfg.chain || cfg.cafile))
        die("--cert/--key/--chain/--cafile need an https:// URL");

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(cfg.host, cfg.port, &hints, &cfg.addr);
    if (gai != 0)
        die("cannot resolve %s:%s: %s", cfg.host, cfg.port, gai_strerror(gai));
    build_requests();
    if (cfg.tls)
        setup_tls();

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct worker *ws = calloc((size_t)cfg.threads, sizeof *ws);
    struct conn *conns = calloc((size_t)cfg.conns, sizeof *conns);
    if (!ws || !conns)
        die("out of memory");
    pthread_barrier_init(&barrier, NULL, (unsigned)cfg.threads + 1);
    int per = cfg.conns / cfg.threads, extra = cfg.conns % cfg.threads, off = 0;
    for (int i = 0; i < cfg.threads; i++) {
        struct worker *w = &ws[i];
        w->tid = i;
        w->rot = (uint64_t)i;
        w->nconns = per + (i < extra);
        w->conns = conns + off;
        off += w->nconns;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->ep < 0)
            die("epoll_create1: %s", strerror(errno));
        for (int j = 0; j < w->nconns; j++) {
            w->conns[j].fd = -1;
            w->conns[j].w = w;
            w->conns[j].st = C_DEAD;
        }
        if (pthread_create(&w->th, NULL, worker_main, w) != 0)
            die("pthread_create");
    }
    pthread_barrier_wait(&barrier); /* every thread has finished setup */
    int established = 0;
    for (int i = 0; i < cfg.conns; i++)
        established += conns[i].st == C_IDLE;
    long long ticks0 = cfg.cpu_pid > 0 ? tree_ticks(cfg.cpu_pid) : -1;
    uint64_t ccpu0 = proc_cpu_us();
    t0_us = now_us();
    deadline_us = t0_us + (uint64_t)(cfg.seconds * 1e6);
    pthread_barrier_wait(&barrier); /* open the window */
    uint64_t t_end = t0_us;
    struct stats tot;
    memset(&tot, 0, sizeof tot);
    for (int i = 0; i < cfg.threads; i++) {
        pthread_join(ws[i].th, NULL);
        struct stats *s = &ws[i].st;
        if (ws[i].t_end > t_end)
            t_end = ws[i].t_end;
        tot.requests += s->requests;
        tot.ok += s->ok;
        tot.body_bytes += s->body_bytes;
        tot.reconnects += s->reconnects;
        for (int k = 0; k < E_MAX; k++)
            tot.err[k] += s->err[k];
        for (int k = 0; k < 600; k++)
            tot.status[k] += s->status[k];
        for (unsigned k = 0; k < NBUCKETS; k++)
            tot.lat[k] += s->lat[k];
        tot.lat_sum += s->lat_sum;
        if (s->lat_max > tot.lat_max)
            tot.lat_max = s->lat_max;
        close(ws[i].ep);
    }
    long long ticks1 = cfg.cpu_pid > 0 ? tree_ticks(cfg.cpu_pid) : -1;
    uint64_t ccpu1 = proc_cpu_us();
    double secs = (double)(t_end - t0_us) / 1e6;
    if (secs <= 0)
        secs = 1e-6;
    uint64_t errors = 0;
    for (int k = 0; k < E_MAX; k++)
        errors += tot.err[k];

    FILE *f = stdout;
    fputs("{\"url\": ", f);
    char url[2400];
    snprintf(url, sizeof url, "%s://%s:%s%s", cfg.tls ? "https" : "http", cfg.host, cfg.port,
             cfg.path);
    json_str(f, url);
    fprintf(f, ", \"connections\": %d, \"established\": %d, \"threads\": %d", cfg.conns,
            established, cfg.threads);
    fprintf(f, ", \"tls\": %s, \"client_cert\": %s, \"rotate\": %zu", cfg.tls ? "true" : "false",
            cfg.cert ? "true" : "false", cfg.rotate_file ? cfg.nreqs : (size_t)0);
    fprintf(f, ", \"duration\": %.3f, \"seconds\": %.6f, \"max_requests\": %llu", cfg.seconds,
            secs, (unsigned long long)cfg.max_requests);
    fprintf(f, ", \"cap_reached\": %s", cap_reached() ? "true" : "false");
    fprintf(f, ", \"requests\": %llu, \"ok\": %llu, \"rps\": %.1f, \"body_bytes\": %llu",
            (unsigned long long)tot.requests, (unsigned long long)tot.ok,
            (double)tot.requests / secs, (unsigned long long)tot.body_bytes);
    fprintf(f, ", \"reconnects\": %llu, \"errors_total\": %llu, \"errors\": {",
            (unsigned long long)tot.reconnects, (unsigned long long)errors);
    for (int k = 0; k < E_MAX; k++)
        fprintf(f, "%s\"%s\": %llu", k ? ", " : "", err_names[k], (unsigned long long)tot.err[k]);
    fputs("}, \"status\": {", f);
    int first = 1;
    for (int k = 0; k < 600; k++)
        if (tot.status[k]) {
            fprintf(f, "%s\"%d\": %llu", first ? "" : ", ", k, (unsigned long long)tot.status[k]);
            first = 0;
        }
    fprintf(f, "}, \"client_cpu_us\": %llu", (unsigned long long)(ccpu1 - ccpu0));
    if (ticks0 >= 0 && ticks1 >= ticks0) {
        double us = (double)(ticks1 - ticks0) * 1e6 / (double)sysconf(_SC_CLK_TCK);
        fprintf(f, ", \"server_cpu_us\": %.0f, \"server_cpu_us_per_req\": %.2f", us,
                tot.requests ? us / (double)tot.requests : 0.0);
    }
    fprintf(f,
            ", \"latency_us\": {\"mean\": %.1f, \"p50\": %.0f, \"p90\": %.0f, \"p99\": %.0f, "
            "\"max\": %llu}, \"interrupted\": %s}\n",
            tot.requests ? (double)tot.lat_sum / (double)tot.requests : 0.0, pct(&tot, 0.50),
            pct(&tot, 0.90), pct(&tot, 0.99), (unsigned long long)tot.lat_max,
            interrupted ? "true" : "false");
    fflush(f);
    if (!cfg.quiet) {
        fprintf(stderr,
                "eidload: %s  %d/%d conns  %llu requests in %.2fs = %.0f req/s  "
                "p50 %.0fus p99 %.0fus  errors %llu\n",
                url, established, cfg.conns, (unsigned long long)tot.requests, secs,
                (double)tot.requests / secs, pct(&tot, 0.5), pct(&tot, 0.99),
                (unsigned long long)errors);
    }
    if (cfg.ctx)
        SSL_CTX_free(cfg.ctx);
    freeaddrinfo(cfg.addr);
    if (established == 0)
        return 2;
    return errors ? 1 : 0;
}
