"""Harness for the httpd suite: a real httpd + mod_ssl + mod_auth_eid on a free
loopback port, with its own ServerRoot in a temp dir.

Every server's error log is checked when it stops: any [warn] or worse that
the test did not declare as expected fails the test.
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(REPO, "build")
MODULE = os.environ.get("EID_MODULE", os.path.join(BUILD, "mod_auth_eid.so"))
# make test-asan: the module is built with AddressSanitizer, whose runtime must be
# loaded first into httpd; reports go to files that fail the test (see asan_reports).
ASAN = os.environ.get("EID_ASAN") == "1"
PKI = os.environ.get("EID_PKI", os.path.join(BUILD, "pki"))
HTTPD = "/usr/sbin/apache2"
MODDIR = "/usr/lib/apache2/modules"

BASE_MODULES = ["mpm_event", "authz_core", "authn_core", "authz_host", "authz_user", "mime",
                "dir", "alias", "cgid", "ssl", "socache_shmcb", "headers", "env",
                "setenvif"]

ECHO_CGI = """#!/usr/bin/python3
import json, os, sys
env = {k: v for k, v in os.environ.items()
       if k.startswith(("EID_", "HTTP_X_EID", "HTTP_X_IDENT", "REMOTE_USER", "AUTH_TYPE",
                        "HTTP_EID"))}
body = json.dumps(env, sort_keys=True, ensure_ascii=False).encode("utf-8")
sys.stdout.write("Content-Type: application/json; charset=utf-8\\r\\n")
sys.stdout.write("Content-Length: %d\\r\\n\\r\\n" % len(body))
sys.stdout.flush()
sys.stdout.buffer.write(body)
"""


# The trust profiles the tests and the demo use: the SITHS-style CAs of the test
# PKI, with the levels and identifier kinds each vouches for, and the e-ID issuer.
TRUST_ISSUERS = """
EidTrustIssuer siths {pki}/ca/hsa3.pem loa=3 ids=hsa-id
EidTrustIssuer siths {pki}/ca/hsa2.pem loa=2 ids=hsa-id
EidTrustIssuer siths {pki}/ca/id3.pem loa=3 ids=pnr
EidTrustIssuer siths {pki}/ca/function.pem function
EidTrustPolicy siths 1.2.752.74.8.512 loa=3
EidTrustIssuer eid {pki}/ca/eid.pem loa=3 ids=pnr,coord
"""
# ... and named at server level: with two profiles, a location must name what it
# accepts (or inherit it from here); see EidCertProfiles in docs/directives.md.
TRUST_PROFILES = TRUST_ISSUERS + "EidCertProfiles siths eid\n"


def unique_path(base):
    """base + "/" + a fresh tag: the echo scripts take it as PATH_INFO, and the
    audit records of the requests to it are this caller's alone."""
    global _path_seq
    _path_seq += 1
    return "%s/t%d-%d" % (base, os.getpid(), _path_seq)


_path_seq = 0


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pki(*parts):
    return os.path.join(PKI, *parts)


def manifest():
    with open(pki("manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def user_cert(name):
    """(chain, key) for requests' cert= / curl --cert --key."""
    return (pki("users", name + ".chain.pem"), pki("users", name + ".key"))


# Lines in the error log that never indicate a problem.
ALWAYS_OK = [
    r"AH00558",  # could not determine the server's FQDN
    r"AH00489|AH00490|AH00094|AH00491|AH00492|AH00493|AH00494|AH00169",  # start/stop
    r"AH01916",  # mod_ssl: self-signed/CA as server cert notes
    r"AH02572|AH02568",  # ssl: session cache / key notes
    r"mpm_event:notice|core:notice|ssl:notice",
    r"EID01402",  # no pseudonym key file: notice
]


CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE)


class Httpd:
    """One httpd instance.  Use as a context manager or call start()/stop()."""

    def __init__(self, body, tls=True, verify_client="optional", extra_modules=(),
                 name="httpd", loglevel="warn auth_eid:info", port=None):
        self.root = tempfile.mkdtemp(prefix="eid-" + name + "-")
        os.chmod(self.root, 0o755)
        self.port = port or free_port()
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.base = "%s://localhost:%d" % (self.scheme, self.port)
        self.error_log = os.path.join(self.root, "error.log")
        self.audit_log = os.path.join(self.root, "audit.log")
        self.proc = None
        self.returncode = None  # httpd's exit status at the last stop()
        self.expected = []
        os.makedirs(os.path.join(self.root, "htdocs"))
        os.makedirs(os.path.join(self.root, "cgi"))
        with open(os.path.join(self.root, "htdocs", "index.html"), "w") as f:
            f.write("hello\n")
        echo = os.path.join(self.root, "cgi", "echo.py")
        with open(echo, "w") as f:
            f.write(ECHO_CGI)
        os.chmod(echo, 0o755)
        self.conf = os.path.join(self.root, "httpd.conf")
        self.write_conf(body, tls, verify_client, extra_modules, loglevel)

    def write_conf(self, body, tls, verify_client, extra_modules, loglevel):
        mods = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m)
                         for m in list(BASE_MODULES) + list(extra_modules))
        ssl = ""
        if tls:
            ssl = textwrap.dedent("""\
                SSLEngine on
                SSLCertificateFile {pki}/server/localhost.pem
                SSLCertificateKeyFile {pki}/server/localhost.key
                SSLCACertificateFile {pki}/ca/client-trust.pem
                SSLVerifyClient {verify}
                SSLVerifyDepth 3
                SSLSessionCache shmcb:{root}/ssl_scache(512000)
                """).format(pki=PKI, root=self.root, verify=verify_client)
        conf = textwrap.dedent("""\
            ServerRoot {root}
            {mods}
            LoadModule auth_eid_module {module}
            Listen 127.0.0.1:{port}
            ServerName localhost
            PidFile {root}/httpd.pid
            DefaultRuntimeDir {root}
            Mutex file:{root} default
            ErrorLog {root}/error.log
            LogLevel {loglevel}
            User www-data
            Group www-data
            ScriptSock {root}/cgid.sock
            StartServers 1
            ServerLimit 1
            ThreadsPerChild 16
            MaxRequestWorkers 16
            MinSpareThreads 1
            MaxSpareThreads 16
            DocumentRoot {root}/htdocs
            ScriptAlias /cgi/ {root}/cgi/
            TypesConfig /etc/mime.types
            EidAuditLog {root}/audit.log
            """).format(root=self.root, mods=mods, module=MODULE, port=self.port,
                        loglevel=loglevel)
        conf += ssl + "\n" + body.format(root=self.root, pki=PKI) + "\n"
        with open(self.conf, "w") as f:
            f.write(conf)

    def url(self, path):
        return self.base + path

    def expect_log(self, *patterns):
        """Declare error-log lines this test provokes on purpose."""
        self.expected.extend(patterns)

    def env(self):
        env = dict(os.environ)
        if ASAN:
            env["LD_PRELOAD"] = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                                               capture_output=True, text=True).stdout.strip()
            # httpd frees its pools by exiting: leaks are not what we look for.
            env["ASAN_OPTIONS"] = "detect_leaks=0:log_path=%s/asan" % self.root
        return env

    def asan_reports(self):
        out = []
        for f in sorted(glob.glob(os.path.join(self.root, "asan.*"))):
            with open(f, errors="replace") as fh:
                out.append(fh.read())
        return out

    def configtest(self):
        return subprocess.run([HTTPD, "-t", "-f", self.conf], capture_output=True,
                              text=True, timeout=30, env=self.env())

    def start(self, extra_args=()):
        """extra_args: more httpd options, e.g. ("-X",) for one process."""
        r = self.configtest()
        if r.returncode != 0:
            raise RuntimeError("configtest failed: " + r.stderr)
        self.proc = subprocess.Popen([HTTPD, "-f", self.conf, "-DFOREGROUND"] + list(extra_args),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=self.env())
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("httpd exited: %s\n%s" % (
                    self.proc.stdout.read().decode(errors="replace"), self.read_error_log()))
            ours, foreign = self._listening()
            if ours and not foreign:
                return self
            time.sleep(0.05)
        raise RuntimeError("httpd did not start listening on %d (listeners of other processes "
                           "on that port: %s)" % (self.port, self._listening()[1]))

    def _listening(self):
        """(does this httpd listen on 127.0.0.1:port, the listening sockets of
        other processes on that port, IPv4 or IPv6).  Why not a connect: it
        also succeeds when another server holds the port (requests to
        "localhost" may go to a ::1 listener first), or by a TCP
        self-connection while nothing listens yet; the test would then talk
        to that server and find nothing in its own logs."""
        mine = set()
        try:
            for fd in os.listdir("/proc/%d/fd" % self.proc.pid):
                try:
                    mine.add(os.readlink("/proc/%d/fd/%s" % (self.proc.pid, fd)))
                except OSError:
                    pass
        except OSError:
            return False, []
        ours, foreign = False, []
        for table, addr in (("/proc/net/tcp", "0100007F"), ("/proc/net/tcp6", None)):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                col = row.split()
                local, state, inode = col[1], col[3], col[9]
                if state != "0A" or int(local.rsplit(":", 1)[1], 16) != self.port:
                    continue
                if "socket:[%s]" % inode in mine and local.split(":")[0] == addr:
                    ours = True
                elif "socket:[%s]" % inode not in mine:
                    foreign.append("%s %s" % (table.rsplit("/", 1)[1], local))
        return ours, foreign

    def stop(self):
        """SIGTERM and wait.  A server that was up and then died of SIGSEGV,
        SIGBUS, SIGABRT, SIGILL or SIGFPE crashed while stopping: that fails the
        test, as an ASan report does (tests/httpd/test_shm_shutdown.py).  Not
        SIGTERM itself: it kills a server whose handlers are not set up yet."""
        crashed = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
                if -self.proc.returncode in CRASH_SIGNALS:
                    crashed = -self.proc.returncode
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.returncode = self.proc.returncode
        self.proc = None
        reports = self.asan_reports()
        assert not reports, "AddressSanitizer:\n" + "\n".join(reports)
        assert crashed is None, "httpd died of signal %d when it was stopped" % crashed

    def read_error_log(self):
        try:
            with open(self.error_log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """Start of a test: only lines after this are checked next."""
        self._mark = len(self.read_error_log())
        self.expected = []

    def unexpected_log_lines(self):
        bad = []
        text = self.read_error_log()[getattr(self, "_mark", 0):]
        for line in text.splitlines():
            if not re.search(r":(warn|error|crit|alert|emerg)\]", line):
                continue
            if any(re.search(p, line) for p in ALWAYS_OK + self.expected):
                continue
            bad.append(line)
        return bad + ["AddressSanitizer:\n" + r for r in self.asan_reports()]

    def audit_records(self):
        recs = []
        try:
            with open(self.audit_log, encoding="utf-8") as f:
                for line in f:
                    recs.append(json.loads(line))
        except FileNotFoundError:
            pass
        return recs

    def wait_audit(self, resource, n, timeout=5):
        """The audit records of one resource once there are at least n.  A record
        is written after the response has been sent, so a client may see the
        answer first, and a record of an earlier test may still arrive: tests
        give their requests a path of their own (see unique_path) and select by it."""
        deadline = time.time() + timeout
        while True:
            recs = [a for a in self.audit_records() if a.get("resource") == resource]
            if len(recs) >= n or time.time() > deadline:
                return recs
            time.sleep(0.02)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# The file names the conf-samples use, and the test PKI file standing in for each.
SAMPLE_FILES = {
    "siths-person-hsa-id-3.pem": "ca/hsa3.pem",
    "siths-person-hsa-id-2.pem": "ca/hsa2.pem",
    "siths-person-id-3.pem": "ca/id3.pem",
    "siths-function.pem": "ca/function.pem",
    "eid-issuing.pem": "ca/eid.pem",
    "server.pem": "server/localhost.pem",
    "server.key": "server/localhost.key",
    "client-trust.pem": "ca/client-trust.pem",
}
# Sample files the samples include from EID_CONF_DIR.
SAMPLE_INCLUDES = ("county-common.conf", "directory-county.txt")


def sample_conf_dir(root):
    """{root}/conf as the samples' EID_CONF_DIR: the test PKI under the samples'
    file names, the shared sample files, a pseudonym key and a client secret."""
    conf = os.path.join(root, "conf")
    os.makedirs(conf)
    for name, target in SAMPLE_FILES.items():
        os.symlink(pki(*target.split("/")), os.path.join(conf, name))
    for name in SAMPLE_INCLUDES:
        os.symlink(os.path.join(REPO, "conf-samples", name), os.path.join(conf, name))
    with open(os.path.join(conf, "pseudonym.key"), "wb") as f:
        f.write(os.urandom(32))
    with open(os.path.join(conf, "incident-api.secret"), "w") as f:
        f.write("not-a-real-secret\n")
    for secret in ("staff.secret", "citizen.secret"):  # oidc-login.conf
        with open(os.path.join(conf, secret), "w") as f:
            f.write("not-a-real-secret\n")
    with open(os.path.join(conf, "session.key"), "w") as f:
        f.write(os.urandom(32).hex() + "\n" + os.urandom(32).hex() + "\n")
    os.chmod(os.path.join(conf, "session.key"), 0o600)
    with open(os.path.join(conf, "redis.password"), "w") as f:  # oidc-login-redis.conf
        f.write("not-a-real-password\n")
    os.chmod(os.path.join(conf, "redis.password"), 0o640)
    return conf


def module_op(prefix):
    """A module-scoped pytest fixture: the test OP (tests/op) in a state
    directory of its own, stopped and removed after the module."""
    import pytest
    import sys
    sys.path.insert(0, os.path.join(REPO, "tests", "op"))
    from opctl import TestOP

    @pytest.fixture(scope="module")
    def _op():
        d = tempfile.mkdtemp(prefix=prefix)
        o = TestOP(d).start()
        yield o
        o.stop()
        shutil.rmtree(d, ignore_errors=True)

    return _op
