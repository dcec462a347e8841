/*
 * redis_fixture.h - real redis-server processes for unit tests: started on a
 * free 127.0.0.1 port (and a Unix socket) in a private temporary directory,
 * waited for, stopped/continued/restarted on demand, killed at the end.
 * Loopback only.  Header-only (static functions): include once per test.
 */
#ifndef REDIS_FIXTURE_H
#define REDIS_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

typedef struct rfix {
    pid_t pid;
    int port;
    char dir[64];
    char sock[96];
    const char *extra[8]; /* more redis-server arguments (NULL-terminated) */
    const char *sentinel_conf; /* set: run as a sentinel with this config text */
} rfix_t;

/* every server started and not yet stopped: killed by rfix_stop_all() even
 * when a failed assertion skipped the test's own rfix_stop() */
#define RFIX_MAX 16
static pid_t rfix_pids[RFIX_MAX];
static char rfix_dirs[RFIX_MAX][64];

static void rfix_track(pid_t pid, const char *dir, int on)
{
    for (int i = 0; i < RFIX_MAX; i++) {
        if (on && rfix_pids[i] == 0) {
            rfix_pids[i] = pid;
            snprintf(rfix_dirs[i], sizeof(rfix_dirs[i]), "%s", dir);
            return;
        }
        if (!on && rfix_pids[i] == pid) {
            rfix_pids[i] = 0;
            return;
        }
    }
}

__attribute__((unused)) static void rfix_stop_all(void)
{
    for (int i = 0; i < RFIX_MAX; i++)
        if (rfix_pids[i] > 0) {
            kill(rfix_pids[i], SIGCONT);
            kill(rfix_pids[i], SIGKILL);
            waitpid(rfix_pids[i], NULL, 0);
            char cmd[256];
            snprintf(cmd, sizeof(cmd), "rm -rf '%.63s'", rfix_dirs[i]);
            if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", rfix_dirs[i]);
            rfix_pids[i] = 0;
        }
}

/* slack for timing assertions: the sanitizers and valgrind are slower */
__attribute__((unused)) static double rfix_slack(void)
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    return 6.0;
#else
    return RUNNING_ON_VALGRIND ? 10.0 : 1.0;
#endif
}

__attribute__((unused)) static double rfix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int rfix_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) != 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

/* one raw command over TCP with redis-cli (no hiredis: independent of the
 * code under test); output into out (may be NULL).  Returns the exit code. */
static int rfix_cli(const rfix_t *f, char *out, size_t osize, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "redis-cli -h 127.0.0.1 -p %d %s 2>&1", f->port, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = out ? fread(out, 1, osize - 1, p) : 0;
    if (out)
        out[n] = 0;
    else {
        char sink[256];
        while (fread(sink, 1, sizeof(sink), p) > 0) {
        }
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int rfix_ping(const rfix_t *f)
{
    char out[64];
    return rfix_cli(f, out, sizeof(out), "PING") == 0 && strncmp(out, "PONG", 4) == 0;
}

/* start (or restart on the same port and dir); 0 when it answers PING */
static int rfix_start(rfix_t *f)
{
    if (!f->dir[0]) {
        snprintf(f->dir, sizeof(f->dir), "/tmp/eid-redis-XXXXXX");
        if (!mkdtemp(f->dir))
            return -1;
        snprintf(f->sock, sizeof(f->sock), "%s/redis.sock", f->dir);
        f->port = rfix_free_port();
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", f->port);
    char conf[128] = "", logf[128];
    snprintf(logf, sizeof(logf), "%s/%s.log", f->dir, f->sentinel_conf ? "sentinel" : "redis");
    if (f->sentinel_conf) {
        snprintf(conf, sizeof(conf), "%s/sentinel.conf", f->dir);
        FILE *cf = fopen(conf, "w");
        if (!cf)
            return -1;
        fprintf(cf, "port %d\nbind 127.0.0.1\ndir %s\n%s", f->port, f->dir, f->sentinel_conf);
        fclose(cf);
    }
    pid_t pid = fork();
    if (pid == 0 && conf[0]) {
        execlp("redis-server", "redis-server", conf, "--sentinel", "--logfile", logf,
               (char *)NULL);
        _exit(127);
    }
    if (pid == 0) {
        const char *argv[40] = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                                "--unixsocket", f->sock, "--unixsocketperm", "700",
                                "--dir", f->dir, "--save", "", "--appendonly", "no",
                                "--daemonize", "no", "--protected-mode", "yes",
                                "--logfile", logf};
        int n = 21;
        for (int i = 0; f->extra[i] && n < 38; i++)
            argv[n++] = f->extra[i];
        argv[n] = NULL;
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    f->pid = pid;
    rfix_track(pid, f->dir, 1);
    for (int i = 0; i < 200; i++) {
        if (rfix_ping(f))
            return 0;
        usleep(20000);
    }
    return -1;
}

static void rfix_kill(rfix_t *f, int sig)
{
    if (f->pid > 0) {
        kill(f->pid, SIGCONT);
        kill(f->pid, sig);
        waitpid(f->pid, NULL, 0);
        rfix_track(f->pid, NULL, 0);
        f->pid = 0;
    }
}

/* stop the server and remove its directory */
static void rfix_stop(rfix_t *f)
{
    rfix_kill(f, SIGKILL);
    if (f->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", f->dir);
        f->dir[0] = 0;
    }
}

#endif
