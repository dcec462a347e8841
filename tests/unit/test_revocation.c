/*
 * Unit tests: eid_revocation - OCSP against a real responder, CRLs made by
 * `openssl ca -gencrl`, the answer cache.
 *
 * The set-up makes a tiny CA with the `openssl` command in a temporary
 * directory (a CA, a second CA with the SAME name and another key, a
 * delegated responder with id-kp-OCSPSigning, one without it, leaves good /
 * revoked / unknown), its index.txt, and CRLs (current, stale, signed by the
 * other key).
 *
 * The responder is OpenSSL's own (`openssl ocsp -index ... -CA ... -rsigner`),
 * run once per request (`-reqin`/`-respout`) behind an HTTP front in a thread
 * of this test bound to 127.0.0.1.  Why not `openssl ocsp -port`: OpenSSL 3.0
 * takes a port number only and listens on every interface, and the project's
 * tests never listen beyond loopback.  Each responder process is waited for
 * before its answer is sent, so none outlives its request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/ocsp.h>
#include <poll.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eid/eid_cert.h"
#include "eid/eid_revocation.h"

extern char **environ;

static apr_pool_t *pool;
static char dir[64];
static int srv_fd = -1, srv_port, down_port;
static atomic_int srv_stop, req_seq;
static apr_thread_t *srv_thread;
static X509 *ca, *other, *good, *revoked, *unknown;

/* ---- the test CA ------------------------------------------------------------ */

static const char *mkpki_sh =
    "set -e; cd \"$1\"; PORT=$2\n"
    "cat > ca.cnf <<'E'\n"
    "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\n[dn]\n"
    "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier = hash\n"
    "[ca]\ndefault_ca = CA_default\n[CA_default]\ndatabase = index.txt\n"
    "crlnumber = crlnumber\ndefault_md = sha256\n"
    "[delta]\ndeltaCRL = critical,DER:02:02:03:E7\n"
    "E\n"
    "EC='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'\n"
    "N='/C=SE/O=Rev Test/CN=Rev Test CA'\n"
    "openssl req -config ca.cnf -x509 $EC -keyout ca.key -out ca.pem -subj \"$N\" -days 3\n"
    "openssl req -config ca.cnf -x509 $EC -keyout other.key -out other.pem -subj \"$N\" -days 3\n"
    "leaf() {\n"
    "  printf '%s\\n' \"$3\" > $1.ext\n"
    "  openssl req -config ca.cnf -new $EC -keyout $1.key -out $1.csr -subj \"/C=SE/O=Rev Test/CN=$1\"\n"
    "  openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key -set_serial 0x$2 -days 2 \\\n"
    "    -extfile $1.ext -out $1.pem\n"
    "}\n"
    "leaf good 1001 \"authorityInfoAccess=OCSP;URI:http://127.0.0.1:$PORT/ca\"\n"
    "leaf revoked 1002 \"authorityInfoAccess=OCSP;URI:http://127.0.0.1:$PORT/ca\"\n"
    "leaf unknown 1003 keyUsage=digitalSignature\n"
    "leaf resp 2001 extendedKeyUsage=OCSPSigning\n"
    "leaf noeku 2002 keyUsage=digitalSignature\n"
    "EXP=$(date -u -d '+1 year' +%y%m%d%H%M%SZ); RT=$(date -u -d '-1 day' +%y%m%d%H%M%SZ)\n"
    "printf 'V\\t%s\\t\\t1001\\tunknown\\t/C=SE/O=Rev Test/CN=good\\n' $EXP > index.txt\n"
    "printf 'R\\t%s\\t%s,keyCompromise\\t1002\\tunknown\\t/C=SE/O=Rev Test/CN=revoked\\n'"
    " $EXP $RT >> index.txt\n"
    "echo 1000 > crlnumber\n"
    "openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -crldays 1 -out crl.pem\n"
    "openssl crl -in crl.pem -outform DER -out crl.der\n"
    "openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out crl-stale.pem \\\n"
    "  -crl_lastupdate $(date -u -d '-2 day' +%y%m%d%H%M%SZ) \\\n"
    "  -crl_nextupdate $(date -u -d '-1 day' +%y%m%d%H%M%SZ)\n"
    "openssl ca -config ca.cnf -gencrl -keyfile other.key -cert other.pem -crldays 1 \\\n"
    "  -out crl-other.pem\n"
    "openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -crldays 1 -crlexts delta \\\n"
    "  -out crl-delta.pem\n";

static X509 *load(const char *name)
{
    char path[512];
    FILE *f;
    X509 *x;

    snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
    f = fopen(path, "r");
    if (!f)
        return NULL;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static const char *path_of(const char *name)
{
    return apr_psprintf(pool, "%s/%s", dir, name);
}

/* A loopback port nobody listens on (bound, then closed). */
static int free_port(int keep_listening)
{
    struct sockaddr_in a = {0};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &al))
        return -1;
    if (keep_listening) {
        listen(fd, 16);
        srv_fd = fd;
    }
    else
        close(fd);
    return ntohs(a.sin_port);
}

/* ---- the responder front ----------------------------------------------------- */

/* Run `openssl ocsp` as the responder for one request; 0 when it wrote
 * the response file. */
static int run_responder(const char *signer, const char *reqf, const char *respf, int nonext)
{
    char rs[300], rk[300], idx[300], cap[300];
    char *argv[] = {"openssl", "ocsp", "-index", idx, "-CA", cap, "-rsigner", rs, "-rkey", rk,
                    "-reqin", (char *)reqf, "-respout", (char *)respf, "-nmin", "60", NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st = -1;

    snprintf(rs, sizeof(rs), "%s/%s.pem", dir, signer);
    snprintf(rk, sizeof(rk), "%s/%s.key", dir, signer);
    snprintf(idx, sizeof(idx), "%s/index.txt", dir);
    snprintf(cap, sizeof(cap), "%s/ca.pem", dir);
    if (nonext)
        argv[14] = NULL; /* no -nmin: an answer without nextUpdate */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, "openssl", &fa, NULL, argv, environ) == 0)
        waitpid(pid, &st, 0);
    posix_spawn_file_actions_destroy(&fa);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void send_all(int c, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(c, b, n);
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

static void reply(int c, int status, const char *body, size_t n)
{
    char h[256];
    int hl = snprintf(h, sizeof(h),
                      "HTTP/1.1 %d X\r\nContent-Type: application/ocsp-response\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, n);
    send_all(c, h, (size_t)hl);
    send_all(c, body, n);
}

static void handle(int c)
{
    char buf[16384], path[64] = "", reqf[300], respf[300], *hend, *cl;
    size_t got = 0, want;
    const char *signer = NULL;
    FILE *f;

    while (got < sizeof(buf) - 1) {
        ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            return;
        got += (size_t)r;
        buf[got] = '\0';
        if ((hend = strstr(buf, "\r\n\r\n")) != NULL) {
            cl = strcasestr(buf, "Content-Length:");
            want = (size_t)(hend + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            if (got >= want)
                break;
        }
    }
    if (!hend || sscanf(buf, "POST %63s", path) != 1)
        return;
    if (!strcmp(path, "/slow")) {
        /* accepted, never answered: the client's whole-fetch timeout must end it */
        for (int i = 0; i < 30 && !atomic_load(&srv_stop); i++)
            usleep(50000);
        return;
    }
    if (!strcmp(path, "/garbage")) {
        reply(c, 200, "this is not DER", 15);
        return;
    }
    if (!strcmp(path, "/http500")) {
        reply(c, 500, "", 0);
        return;
    }
    signer = !strcmp(path, "/ca") || !strcmp(path, "/nonext") ? "ca"
             : !strcmp(path, "/deleg") ? "resp"
             : !strcmp(path, "/noeku") ? "noeku"
             : !strcmp(path, "/other") ? "other"
                                       : NULL;
    if (!signer) {
        reply(c, 404, "", 0);
        return;
    }
    int n = atomic_fetch_add(&req_seq, 1);
    snprintf(reqf, sizeof(reqf), "%s/req%d.der", dir, n);
    snprintf(respf, sizeof(respf), "%s/resp%d.der", dir, n);
    f = fopen(reqf, "wb");
    if (!f)
        return;
    fwrite(hend + 4, 1, got - (size_t)(hend + 4 - buf), f);
    fclose(f);
    if (run_responder(signer, reqf, respf, !strcmp(path, "/nonext")) == 0 && (f = fopen(respf, "rb")) != NULL) {
        size_t n2 = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        reply(c, 200, buf, n2);
    }
    else
        reply(c, 500, "", 0);
    unlink(reqf);
    unlink(respf);
}

static void *APR_THREAD_FUNC serve(apr_thread_t *t, void *data)
{
    struct pollfd pfd = {.fd = srv_fd, .events = POLLIN};

    while (!atomic_load(&srv_stop)) {
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int c = accept(srv_fd, NULL, NULL);
        if (c < 0)
            continue;
        handle(c);
        close(c);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static int setup(void **state)
{
    char cmd[512], tmpl[] = "/tmp/eid-rev-XXXXXX";
    apr_threadattr_t *ta;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(dir, sizeof(dir), "%s", tmpl);
    if ((srv_port = free_port(1)) < 0 || (down_port = free_port(0)) < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "%s/mkpki.sh", dir);
    FILE *f = fopen(cmd, "w");
    if (!f)
        return -1;
    fputs(mkpki_sh, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "bash %s/mkpki.sh %s %d > %s/mkpki.log 2>&1", dir, dir, srv_port,
             dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test PKI failed: see %s/mkpki.log\n", dir);
        return -1;
    }
    ca = load("ca");
    other = load("other");
    good = load("good");
    revoked = load("revoked");
    unknown = load("unknown");
    if (!ca || !other || !good || !revoked || !unknown)
        return -1;
    apr_threadattr_create(&ta, pool);
    return apr_thread_create(&srv_thread, ta, serve, NULL, pool) == APR_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    apr_status_t trv;
    char cmd[300];

    atomic_store(&srv_stop, 1);
    if (srv_thread)
        apr_thread_join(&trv, srv_thread);
    close(srv_fd);
    X509_free(ca);
    X509_free(other);
    X509_free(good);
    X509_free(revoked);
    X509_free(unknown);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

/* ---- OCSP -------------------------------------------------------------------- */

static void opts(eid_ocsp_opts_t *o, const char *route)
{
    eid_ocsp_opts_default(o);
    if (route)
        o->url = apr_psprintf(pool, "http://127.0.0.1:%d/%s", srv_port, route);
    o->http.timeout = apr_time_from_sec(10); /* valgrind is slow */
}

static void test_ocsp_good_via_aia(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a;
    eid_result_t res = {0};
    apr_time_t t0 = apr_time_now();

    opts(&o, NULL);
    assert_string_equal(eid_ocsp_aia_url(pool, good),
                        apr_psprintf(pool, "http://127.0.0.1:%d/ca", srv_port));
    assert_int_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_int_equal(a.status, EID_REV_GOOD);
    assert_int_equal(a.source, EID_REV_SRC_OCSP);
    /* -nmin 60: the lifetime the cache may use */
    assert_true(a.next_update > t0 + apr_time_from_sec(3500));
    assert_true(a.next_update < t0 + apr_time_from_sec(3700));
    /* the age the glue's max-age is measured from */
    assert_true(a.fetched >= t0 && a.fetched <= apr_time_now());
    assert_int_equal(eid_rev_judge(pool, &a, &res), 0);
}

static void test_ocsp_url_check(void **state)
{
    /* OCSP answers are signed: plain http to any responder is allowed for
     * them (no connection is made here), and only for them */
    assert_null(eid_http_ocsp_url_check("http://ocsp.example.test/"));
    assert_non_null(eid_http_url_check("http://ocsp.example.test/"));
    assert_null(eid_http_ocsp_url_check("https://ocsp.example.test/"));
    assert_non_null(eid_http_ocsp_url_check("ftp://ocsp.example.test/"));
    assert_non_null(eid_http_ocsp_url_check("ldap://ocsp.example.test/"));
    assert_non_null(eid_http_ocsp_url_check("ocsp.example.test"));
    assert_non_null(eid_http_ocsp_url_check(""));
}

static void test_ocsp_revoked_and_unknown(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a;
    eid_result_t res = {0};

    opts(&o, "ca");
    assert_int_equal(eid_ocsp_check(pool, revoked, ca, &o, &a, &res), APR_SUCCESS);
    assert_int_equal(a.status, EID_REV_REVOKED);
    assert_int_equal(a.reason, 1); /* keyCompromise */
    assert_true(a.revoked_at > apr_time_now() - apr_time_from_sec(2 * 86400));
    assert_true(a.revoked_at < apr_time_now());
    assert_int_equal(eid_rev_judge(pool, &a, &res), 5001);
    assert_string_equal(res.tag, "EID05001");
    assert_int_equal(res.cls, EID_CLASS_INVALID);

    assert_int_equal(eid_ocsp_check(pool, unknown, ca, &o, &a, &res), APR_SUCCESS);
    assert_int_equal(a.status, EID_REV_UNKNOWN);
    assert_int_equal(eid_rev_judge(pool, &a, &res), 5002);
    assert_int_equal(res.cls, EID_CLASS_INVALID);
    /* unknown has no AIA and nothing is configured */
    o.url = NULL;
    assert_int_not_equal(eid_ocsp_check(pool, unknown, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05101");
    assert_int_equal(res.cls, EID_CLASS_MISCONFIGURED);
}

static void test_ocsp_sha256_and_no_nonce(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a;
    eid_result_t res = {0};

    opts(&o, "ca");
    o.md = EVP_sha256();
    assert_int_equal(eid_ocsp_check(pool, revoked, ca, &o, &a, &res), APR_SUCCESS);
    assert_int_equal(a.status, EID_REV_REVOKED);
    o.md = NULL;
    o.nonce = 0;
    assert_int_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_int_equal(a.status, EID_REV_GOOD);
}

static void test_ocsp_delegated_responder(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a;
    eid_result_t res = {0};

    opts(&o, "deleg");
    assert_int_equal(eid_ocsp_check(pool, revoked, ca, &o, &a, &res), APR_SUCCESS);
    assert_int_equal(a.status, EID_REV_REVOKED);
    /* issued by the CA but without id-kp-OCSPSigning: not a responder */
    opts(&o, "noeku");
    assert_int_not_equal(eid_ocsp_check(pool, revoked, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05107");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);
}

static void test_ocsp_wrong_key(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a;
    eid_result_t res = {0};

    /* same CA name, another key: would say "good" for a revoked card */
    opts(&o, "other");
    assert_int_not_equal(eid_ocsp_check(pool, revoked, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05107");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);
}

static void test_ocsp_stale_and_future(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a;
    eid_result_t res = {0};
    apr_time_t t = apr_time_now();

    opts(&o, "ca");
    /* nextUpdate (+60 min) past, beyond the 5 min leeway */
    o.now = t + apr_time_from_sec(2 * 3600);
    assert_int_not_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05109");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);
    /* thisUpdate ahead of our clock */
    o.now = t - apr_time_from_sec(3600);
    assert_int_not_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05109");
    /* within the leeway: nextUpdate 2 min past */
    o.now = t + apr_time_from_sec(62 * 60);
    assert_int_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    o.leeway = 0;
    assert_int_not_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05109");
}

/* An answer without nextUpdate is bounded by its thisUpdate only: an old one
 * (replayed by someone on the plain-http path, with our nonce not echoed)
 * must not pass as current. */
static void test_ocsp_no_next_update(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a;
    eid_result_t res = {0};
    apr_time_t t = apr_time_now();

    opts(&o, "nonext");
    o.nonce = 0;
    assert_int_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_int_equal(a.next_update, 0);
    o.now = t + apr_time_from_sec(2 * 86400);
    assert_int_not_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05109");
}

/* POST request `send` to the real responder, check the answer against `check`. */
static apr_status_t cross(eid_ocsp_req_t *send, eid_ocsp_req_t *check, eid_rev_answer_t *a,
                          eid_result_t *res)
{
    eid_ocsp_opts_t o;
    eid_http_resp_t hr;
    const unsigned char *der;
    apr_size_t len;

    opts(&o, "ca");
    der = eid_ocsp_req_der(send, &len);
    assert_int_equal(eid_http_post_ocsp(pool, o.url, &o.http, der, len, &hr, res), APR_SUCCESS);
    assert_int_equal(hr.status, 200);
    return eid_ocsp_resp_check(pool, check, (const unsigned char *)hr.body, hr.len, &o, a, res);
}

static void test_ocsp_certid_and_nonce_mismatch(void **state)
{
    eid_ocsp_opts_t o;
    eid_ocsp_req_t *rg, *rg2, *rr;
    eid_rev_answer_t a;
    eid_result_t res = {0};

    opts(&o, "ca");
    assert_int_equal(eid_ocsp_req_make(pool, good, ca, &o, &rg, &res), APR_SUCCESS);
    assert_int_equal(eid_ocsp_req_make(pool, good, ca, &o, &rg2, &res), APR_SUCCESS);
    assert_int_equal(eid_ocsp_req_make(pool, revoked, ca, &o, &rr, &res), APR_SUCCESS);
    /* control: its own answer */
    assert_int_equal(cross(rg, rg, &a, &res), APR_SUCCESS);
    assert_int_equal(a.status, EID_REV_GOOD);
    /* a valid, signed answer - for another certificate */
    assert_int_not_equal(cross(rg, rr, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05108");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);
    /* the right certificate, another request's nonce: a replay */
    assert_int_not_equal(cross(rg, rg2, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05110");
}

/* A response fetched with a nonce by one process, checked again by another
 * (read from a shared store): accepted for its certificate only, and only
 * while every check of a fresh answer holds. */
static void test_ocsp_recheck_stored(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a, b;
    eid_result_t res = {0};
    const unsigned char *der;
    unsigned char *bad;
    apr_size_t len;

    (void)state;
    opts(&o, NULL);
    assert_int_equal(eid_ocsp_fetch(pool, revoked, ca, &o, &a, &der, &len, &res), APR_SUCCESS);
    assert_non_null(der);
    assert_true(len > 0);
    assert_int_equal(a.status, EID_REV_REVOKED);
    assert_int_equal(eid_ocsp_recheck(pool, revoked, ca, der, len, &o, &b, &res), APR_SUCCESS);
    assert_int_equal(b.status, EID_REV_REVOKED);
    assert_int_equal(b.source, EID_REV_SRC_OCSP);
    assert_true(b.next_update == a.next_update && b.this_update == a.this_update);
    /* another certificate of the same issuer: not its answer */
    assert_int_not_equal(eid_ocsp_recheck(pool, good, ca, der, len, &o, &b, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05108");
    /* another issuer (key): the signature is not its */
    assert_int_not_equal(eid_ocsp_recheck(pool, revoked, other, der, len, &o, &b, &res),
                         APR_SUCCESS);
    /* one bit of the signature flipped (re-encoded with OpenSSL) */
    {
        const unsigned char *cur = der;
        OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &cur, (long)len);
        OCSP_BASICRESP *bs = resp ? OCSP_response_get1_basic(resp) : NULL;
        const ASN1_OCTET_STRING *sig = bs ? OCSP_resp_get0_signature(bs) : NULL;
        OCSP_RESPONSE *forged;
        unsigned char *out = NULL;
        int n;

        assert_non_null(sig);
        ((ASN1_BIT_STRING *)sig)->data[sig->length / 2] ^= 1;
        forged = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
        assert_non_null(forged);
        n = i2d_OCSP_RESPONSE(forged, &out);
        assert_true(n > 0);
        bad = apr_pmemdup(pool, out, (apr_size_t)n);
        OPENSSL_free(out);
        OCSP_RESPONSE_free(forged);
        OCSP_BASICRESP_free(bs);
        OCSP_RESPONSE_free(resp);
        assert_int_not_equal(eid_ocsp_recheck(pool, revoked, ca, bad, (apr_size_t)n, &o, &b,
                                              &res), APR_SUCCESS);
        assert_string_equal(res.tag, "EID05107");
    }
    /* garbage, truncated, empty */
    assert_int_not_equal(eid_ocsp_recheck(pool, revoked, ca, (const unsigned char *)"garbage",
                                          7, &o, &b, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05105");
    assert_int_not_equal(eid_ocsp_recheck(pool, revoked, ca, der, len - 1, &o, &b, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID05105");
    assert_int_not_equal(eid_ocsp_recheck(pool, revoked, ca, der, 0, &o, &b, &res), APR_SUCCESS);
    /* read after its nextUpdate (+ leeway): stale, never an answer */
    o.now = a.next_update + o.leeway + apr_time_from_sec(1);
    assert_int_not_equal(eid_ocsp_recheck(pool, revoked, ca, der, len, &o, &b, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID05109");
    /* a failed fetch hands back no DER */
    opts(&o, "down");
    o.url = apr_psprintf(pool, "http://127.0.0.1:%d/", down_port);
    assert_int_not_equal(eid_ocsp_fetch(pool, good, ca, &o, &a, &der, &len, &res), APR_SUCCESS);
    assert_null(der);
    assert_int_equal(len, 0);
}

static void test_ocsp_down_slow_garbage(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a;
    eid_result_t res = {0};
    apr_time_t t;

    opts(&o, NULL);
    o.url = apr_psprintf(pool, "http://127.0.0.1:%d/ca", down_port);
    assert_int_not_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05103");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);

    opts(&o, "slow");
    o.http.timeout = apr_time_from_msec(400);
    t = apr_time_now();
    assert_int_not_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_true(apr_time_now() - t < apr_time_from_msec(1400)); /* bounded */
    assert_string_equal(res.tag, "EID05103");
    assert_non_null(strstr(res.reason, "EID03603")); /* the timeout */
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);

    opts(&o, "garbage");
    assert_int_not_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05105");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);
    opts(&o, "http500");
    assert_int_not_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05104");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);
    /* an answer larger than the cap is cut, not parsed */
    opts(&o, "ca");
    o.http.max_bytes = 100;
    assert_int_not_equal(eid_ocsp_check(pool, good, ca, &o, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05103");
    assert_non_null(strstr(res.reason, "EID03604"));
}

/* ---- CRLs -------------------------------------------------------------------- */

static void test_crl_pem_and_der(void **state)
{
    const char *files[] = {"crl.pem", "crl.der"};
    eid_rev_answer_t a;
    eid_result_t res = {0};
    X509_CRL *crl;

    for (int i = 0; i < 2; i++) {
        assert_int_equal(eid_crl_load(pool, path_of(files[i]), 65536, &crl, &res), APR_SUCCESS);
        assert_int_equal(eid_crl_check(pool, crl, good, ca, 0, 0, &a, &res), APR_SUCCESS);
        assert_int_equal(a.status, EID_REV_GOOD);
        assert_int_equal(a.source, EID_REV_SRC_CRL);
        assert_true(a.next_update > apr_time_now());
        assert_true(a.fetched > 0 && a.fetched <= apr_time_now());
        assert_int_equal(eid_crl_check(pool, crl, revoked, ca, 0, 0, &a, &res), APR_SUCCESS);
        assert_int_equal(a.status, EID_REV_REVOKED);
        assert_int_equal(a.reason, 1);
        assert_true(a.revoked_at > 0 && a.revoked_at < apr_time_now());
        assert_int_equal(eid_rev_judge(pool, &a, &res), 5001);
        /* a CRL lists revocations only */
        assert_int_equal(eid_crl_check(pool, crl, unknown, ca, 0, 0, &a, &res), APR_SUCCESS);
        assert_int_equal(a.status, EID_REV_GOOD);
    }
}

static void test_crl_stale(void **state)
{
    eid_rev_answer_t a;
    eid_result_t res = {0};
    X509_CRL *crl;

    assert_int_equal(eid_crl_load(pool, path_of("crl-stale.pem"), 65536, &crl, &res), APR_SUCCESS);
    assert_int_not_equal(eid_crl_check(pool, crl, good, ca, 0, apr_time_from_sec(300), &a, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID05204");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);
    /* the current CRL, two days on */
    assert_int_equal(eid_crl_load(pool, path_of("crl.pem"), 65536, &crl, &res), APR_SUCCESS);
    assert_int_not_equal(eid_crl_check(pool, crl, revoked, ca,
                                       apr_time_now() + apr_time_from_sec(2 * 86400), 0, &a, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID05204");
}

static void test_crl_other_key_and_bad_input(void **state)
{
    eid_rev_answer_t a;
    eid_result_t res = {0};
    X509_CRL *crl;

    /* same issuer name, signed by another key: it does not list "revoked" */
    assert_int_equal(eid_crl_load(pool, path_of("crl-other.pem"), 65536, &crl, &res), APR_SUCCESS);
    assert_int_not_equal(eid_crl_check(pool, crl, revoked, ca, 0, 0, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05203");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);

    /* a delta CRL (correctly signed, current) lists changes only */
    assert_int_equal(eid_crl_load(pool, path_of("crl-delta.pem"), 65536, &crl, &res), APR_SUCCESS);
    assert_int_not_equal(eid_crl_check(pool, crl, good, ca, 0, 0, &a, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05206");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);

    assert_int_not_equal(eid_crl_load(pool, path_of("missing.pem"), 65536, &crl, &res),
                         APR_SUCCESS);
    assert_string_equal(res.tag, "EID05201");
    assert_int_equal(res.cls, EID_CLASS_MISCONFIGURED);
    assert_int_not_equal(eid_crl_load(pool, path_of("crl.pem"), 100, &crl, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05201");
    assert_int_not_equal(eid_crl_parse(pool, "garbage", 7, &crl, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05202");
    assert_int_equal(res.cls, EID_CLASS_UNAVAILABLE);
    assert_int_not_equal(eid_crl_load(pool, path_of("ca.pem"), 65536, &crl, &res), APR_SUCCESS);
    assert_string_equal(res.tag, "EID05202");
}

/* ---- the cache --------------------------------------------------------------- */

/* The issuer the glue checks against: the profile's CA that really issued
 * the certificate - never a CA with the same name and another key. */
static void test_profile_issuer(void **state)
{
    eid_trust_profile_t *tp = eid_trust_profile_create(pool, "p");
    eid_trust_profile_t *tq = eid_trust_profile_create(pool, "q");
    X509 *x;

    assert_null(eid_trust_profile_add_issuer(tp, pool, path_of("ca.pem"), 3, EID_IDK_HSA,
                                             EID_ISSUER_ROOT));
    assert_null(eid_trust_profile_add_issuer(tq, pool, path_of("other.pem"), 3, EID_IDK_HSA,
                                             EID_ISSUER_ROOT));
    x = eid_rev_profile_issuer(tp, good);
    assert_non_null(x);
    assert_int_equal(X509_cmp(x, ca), 0);
    assert_ptr_equal(eid_rev_profile_ca(tp, 0), x);
    assert_null(eid_rev_profile_ca(tp, 1));
    assert_null(eid_rev_profile_ca(tp, -1));
    assert_null(eid_rev_profile_issuer(tq, good)); /* same name, other key */
    assert_non_null(eid_rev_profile_ca(tq, 0));
    assert_null(eid_rev_profile_issuer(NULL, good));
}

static void test_cache_hit_and_expiry(void **state)
{
    eid_ocsp_opts_t o;
    eid_rev_answer_t a, b;
    eid_result_t res = {0};
    unsigned char kg[EID_REV_KEY_LEN], kr[EID_REV_KEY_LEN], ko[EID_REV_KEY_LEN];
    apr_time_t t = apr_time_now();
    eid_revcache_t *c = eid_revcache_create(pool, 1000, apr_time_from_sec(7200));

    assert_non_null(c);
    assert_int_equal(eid_rev_key(good, ca, kg), 0);
    assert_int_equal(eid_rev_key(revoked, ca, kr), 0);
    assert_int_equal(eid_rev_key(good, other, ko), 0); /* same name, other key */
    assert_memory_not_equal(kg, kr, EID_REV_KEY_LEN);
    assert_memory_not_equal(kg, ko, EID_REV_KEY_LEN);

    opts(&o, "ca");
    assert_int_equal(eid_ocsp_check(pool, revoked, ca, &o, &a, &res), APR_SUCCESS);
    assert_int_equal(eid_revcache_get(c, kr, t, &b), 0);
    eid_revcache_put(c, kr, &a, t);
    assert_int_equal(eid_revcache_get(c, kr, t + apr_time_from_sec(60), &b), 1);
    assert_int_equal(b.status, EID_REV_REVOKED);
    assert_int_equal(b.source, EID_REV_SRC_OCSP);
    assert_int_equal(b.reason, a.reason);
    assert_true(b.revoked_at == a.revoked_at);
    assert_int_equal(eid_revcache_get(c, kg, t, &b), 0);
    assert_int_equal(eid_revcache_get(c, ko, t, &b), 0);
    /* never past nextUpdate (+60 min), though max_ttl is 2 h */
    assert_int_equal(eid_revcache_get(c, kr, a.next_update - 1, &b), 1);
    assert_int_equal(eid_revcache_get(c, kr, a.next_update, &b), 0);
    assert_int_equal(eid_revcache_get(c, kr, t, &b), 0); /* an expired entry is dropped */

    /* no nextUpdate: max_ttl bounds it */
    memset(&a, 0, sizeof(a));
    a.status = EID_REV_GOOD;
    eid_revcache_put(c, kg, &a, t);
    assert_int_equal(eid_revcache_get(c, kg, t + apr_time_from_sec(7199), &b), 1);
    assert_int_equal(eid_revcache_get(c, kg, t + apr_time_from_sec(7200), &b), 0);
    /* an answer already past its nextUpdate is not stored; a newer one replaces */
    a.next_update = t - 1;
    eid_revcache_put(c, ko, &a, t);
    assert_int_equal(eid_revcache_get(c, ko, t, &b), 0);
    a.next_update = t + apr_time_from_sec(10);
    eid_revcache_put(c, ko, &a, t);
    a.status = EID_REV_REVOKED;
    eid_revcache_put(c, ko, &a, t);
    assert_int_equal(eid_revcache_get(c, ko, t, &b), 1);
    assert_int_equal(b.status, EID_REV_REVOKED);
}

#define NTHREADS 8
#define PER_THREAD 3000

typedef struct {
    eid_revcache_t *c;
    int base, hits, bad; /* cmocka asserts only in the main thread */
} stress_t;

static void serial_key(int n, unsigned char key[EID_REV_KEY_LEN])
{
    static const unsigned char ikh[32] = {1, 2, 3};
    unsigned char s[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    eid_rev_key_raw(ikh, s, sizeof(s), key);
}

static void *APR_THREAD_FUNC stress(apr_thread_t *t, void *data)
{
    stress_t *s = data;
    apr_time_t now = apr_time_from_sec(1700000000);
    unsigned char key[EID_REV_KEY_LEN];
    eid_rev_answer_t a, b;

    for (int round = 0; round < 2; round++)
        for (int i = 0; i < PER_THREAD; i++) {
            int n = s->base + i;
            serial_key(n, key);
            if (round == 0) {
                memset(&a, 0, sizeof(a));
                a.status = n % 3 ? EID_REV_GOOD : EID_REV_REVOKED;
                a.source = EID_REV_SRC_OCSP;
                a.reason = n; /* the serial itself: each answer is recognisable */
                a.revoked_at = (apr_time_t)n * 7;
                a.next_update = now + apr_time_from_sec(600);
                eid_revcache_put(s->c, key, &a, now);
            }
            if (eid_revcache_get(s->c, key, now, &b)) {
                if (round)
                    s->hits++;
                if (b.reason != n || b.revoked_at != (apr_time_t)n * 7 ||
                    b.status != (n % 3 ? EID_REV_GOOD : EID_REV_REVOKED))
                    s->bad++;
            }
        }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_cache_stress(void **state)
{
    apr_thread_t *th[NTHREADS];
    stress_t s[NTHREADS];
    apr_threadattr_t *ta;
    apr_status_t trv;
    int hits = 0;
    /* room for all: 4 ways per set, so about 4x the entries for few evictions */
    eid_revcache_t *c = eid_revcache_create(pool, 4 * NTHREADS * PER_THREAD, 0);

    assert_non_null(c);
    apr_threadattr_create(&ta, pool);
    for (int i = 0; i < NTHREADS; i++) {
        s[i] = (stress_t){c, i * PER_THREAD, 0, 0};
        assert_int_equal(apr_thread_create(&th[i], ta, stress, &s[i], pool), APR_SUCCESS);
    }
    for (int i = 0; i < NTHREADS; i++) {
        apr_thread_join(&trv, th[i]);
        assert_int_equal(s[i].bad, 0);
        hits += s[i].hits;
    }
    assert_true(hits > NTHREADS * PER_THREAD * 9 / 10);
}

typedef struct {
    int idx, ok;
} ocsp_thr_t;

static void *APR_THREAD_FUNC ocsp_thread(apr_thread_t *t, void *data)
{
    ocsp_thr_t *d = data;
    apr_pool_t *p;
    eid_ocsp_opts_t o;
    eid_rev_answer_t a;
    eid_result_t res = {0};

    apr_pool_create(&p, NULL); /* a pool of this thread's own */
    eid_ocsp_opts_default(&o);
    o.url = apr_psprintf(p, "http://127.0.0.1:%d/ca", srv_port);
    o.http.timeout = apr_time_from_sec(30);
    for (int i = 0; i < 3; i++) {
        int rev = (d->idx + i) % 2;
        if (eid_ocsp_check(p, rev ? revoked : good, ca, &o, &a, &res) == APR_SUCCESS &&
            a.status == (rev ? EID_REV_REVOKED : EID_REV_GOOD))
            d->ok++;
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_ocsp_threads(void **state)
{
    apr_thread_t *th[4];
    ocsp_thr_t d[4];
    apr_threadattr_t *ta;
    apr_status_t trv;

    apr_threadattr_create(&ta, pool);
    for (int i = 0; i < 4; i++) {
        d[i] = (ocsp_thr_t){i, 0};
        assert_int_equal(apr_thread_create(&th[i], ta, ocsp_thread, &d[i], pool), APR_SUCCESS);
    }
    for (int i = 0; i < 4; i++) {
        apr_thread_join(&trv, th[i]);
        assert_int_equal(d[i].ok, 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ocsp_good_via_aia),
        cmocka_unit_test(test_ocsp_url_check),
        cmocka_unit_test(test_ocsp_revoked_and_unknown),
        cmocka_unit_test(test_ocsp_sha256_and_no_nonce),
        cmocka_unit_test(test_ocsp_delegated_responder),
        cmocka_unit_test(test_ocsp_wrong_key),
        cmocka_unit_test(test_ocsp_stale_and_future),
        cmocka_unit_test(test_ocsp_certid_and_nonce_mismatch),
        cmocka_unit_test(test_ocsp_down_slow_garbage),
        cmocka_unit_test(test_ocsp_recheck_stored),
        cmocka_unit_test(test_crl_pem_and_der),
        cmocka_unit_test(test_crl_stale),
        cmocka_unit_test(test_crl_other_key_and_bad_input),
        cmocka_unit_test(test_ocsp_no_next_update),
        cmocka_unit_test(test_profile_issuer),
        cmocka_unit_test(test_cache_hit_and_expiry),
        cmocka_unit_test(test_cache_stress),
        cmocka_unit_test(test_ocsp_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
