/*
 * loopback_http.h - a small HTTP/1.1 server on a loopback port, run in a
 * thread of the test process, for the unit tests of the HTTP paths
 * (discovery, jwks_uri, introspection).  One connection at a time; each
 * route answers a fixed status and body (Content-Type application/json
 * unless route_ct() names another), optionally after a delay.
 *
 * Include after the test's `static apr_pool_t *pool;` (url() allocates from
 * it); start_server()/stop_server() in the group setup/teardown.
 */
#ifndef LOOPBACK_HTTP_H
#define LOOPBACK_HTTP_H

#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct route {
    const char *path;
    int status;
    const char *body;
    int delay_ms;
    const char *ctype;  /* NULL: application/json */
} route_t;

static route_t routes[8];
static int nroutes, srv_fd, srv_port, srv_hits, srv_stop;
static char last_auth[256], last_body[2048];
static apr_thread_t *srv_thread;

static void *APR_THREAD_FUNC serve(apr_thread_t *t, void *data)
{
    (void)data;
    while (!srv_stop) {
        char req[8192], path[512], resp[256];
        int c = accept(srv_fd, NULL, NULL), i, n = 0, clen = 0;
        char *hend, *h;
        const route_t *r = NULL;
        if (c < 0)
            continue;
        while (n < (int)sizeof(req) - 1) {
            int k = (int)read(c, req + n, sizeof(req) - 1 - (size_t)n);
            if (k <= 0)
                break;
            n += k;
            req[n] = '\0';
            if ((hend = strstr(req, "\r\n\r\n")) != NULL) {
                h = strcasestr(req, "Content-Length:");
                clen = h && h < hend ? atoi(h + 15) : 0;
                if (n >= (hend - req) + 4 + clen)
                    break;
            }
        }
        req[n] = '\0';
        srv_hits++;
        sscanf(req, "%*s %511s", path);
        last_auth[0] = '\0';
        if ((h = strcasestr(req, "Authorization: ")) != NULL)
            sscanf(h + 15, "%255[^\r]", last_auth);
        hend = strstr(req, "\r\n\r\n");
        snprintf(last_body, sizeof(last_body), "%s", hend ? hend + 4 : "");
        for (i = 0; i < nroutes; i++)
            if (!strcmp(routes[i].path, path))
                r = &routes[i];
        if (!r) {
            const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            if (send(c, nf, strlen(nf), MSG_NOSIGNAL) < 0)
                break;
        }
        else {
            if (r->delay_ms)
                usleep((useconds_t)r->delay_ms * 1000);
            snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n", r->status,
                     r->ctype ? r->ctype : "application/json", strlen(r->body));
            if (send(c, resp, strlen(resp), MSG_NOSIGNAL) < 0 ||
                send(c, r->body, strlen(r->body), MSG_NOSIGNAL) < 0) {
                close(c);
                continue;
            }
        }
        close(c);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void route(const char *path, int status, const char *body)
{
    int i;
    for (i = 0; i < nroutes; i++)
        if (!strcmp(routes[i].path, path))
            break;
    if (i == nroutes)
        nroutes++;
    routes[i].path = path;
    routes[i].status = status;
    routes[i].body = body;
    routes[i].delay_ms = 0;
    routes[i].ctype = NULL;
}

/* route() with another Content-Type (static string, < 100 bytes). */
static __attribute__((unused)) void route_ct(const char *path, int status, const char *body,
                                             const char *ctype)
{
    int i;
    route(path, status, body);
    for (i = 0; i < nroutes; i++)
        if (!strcmp(routes[i].path, path))
            routes[i].ctype = ctype;
}

static const char *url(const char *path)
{
    return apr_psprintf(pool, "http://127.0.0.1:%d%s", srv_port, path);
}

static void start_server(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int one = 1;
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(srv_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(srv_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(srv_fd, 16), 0);
    getsockname(srv_fd, (struct sockaddr *)&a, &al);
    srv_port = ntohs(a.sin_port);
    apr_thread_create(&srv_thread, NULL, serve, NULL, pool);
}

static void stop_server(void)
{
    apr_status_t rv;
    int c;
    struct sockaddr_in a;
    srv_stop = 1;
    c = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)srv_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c, (struct sockaddr *)&a, sizeof(a)) == 0)
        close(c);
    apr_thread_join(&rv, srv_thread);
    close(srv_fd);
}

#endif
