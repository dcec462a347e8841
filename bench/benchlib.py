"""Processes and credentials for bench/run.py: httpd and redis-server
instances on loopback, /proc CPU accounting, RS256 tokens and a JWKS, a
look-alike client certificate, a one-shot HTTP(S) client for the
enforcement checks, and httpd -X under callgrind with a reader for its
output.  No third-party code; python3-cryptography (and, for a
cross-check, python3-jwcrypto) from Debian."""
import base64
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time

HTTPD = "/usr/sbin/apache2"
VALGRIND = "/usr/bin/valgrind"
MODDIR = "/usr/lib/apache2/modules"
REDIS = "/usr/bin/redis-server"
BODY = (b"mod_auth_eid benchmark payload. " * 32)[:1024]   # the 1 KB static file
ISSUER = "https://idp.bench.test"
AUDIENCE = "bench-api"
KID = "bench-1"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_ticks(pid):
    """utime+stime+cutime+cstime (clock ticks) of pid and its children."""
    total, seen = 0, False
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                data = f.read().decode("ascii", "replace")
        except OSError:
            continue
        rest = data[data.rfind(")") + 2:].split()
        if len(rest) < 15:
            continue
        me, ppid = int(d), int(rest[1])
        if me != pid and ppid != pid:
            continue
        seen = seen or me == pid
        total += sum(int(x) for x in rest[11:15])
    return total if seen else None


def cpu_busy(interval=1.0):
    """Fraction of all CPUs busy over interval (from /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v), idle
    t0, i0 = sample()
    time.sleep(interval)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def cpu_jiffies():
    """(busy, total) clock ticks summed over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    total = sum(v[:8])  # guest time is already in user
    return total - idle, total


def children_of(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d, "rb") as f:
                    data = f.read().decode("ascii", "replace")
            except OSError:
                continue
            rest = data[data.rfind(")") + 2:].split()
            if len(rest) > 1 and int(rest[1]) == pid:
                kids.append(int(d))
    return kids


# ---- credentials ---------------------------------------------------------------
def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def int_b64u(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Tokens:
    """An RS256 signing key, its JWKS, and tokens minted with it (or not)."""

    def __init__(self, workdir, count):
        from cryptography.hazmat.primitives.asymmetric import rsa
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = self.key.public_key().public_numbers()
        self.jwks = {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
                               "n": int_b64u(pub.n), "e": int_b64u(pub.e)}]}
        self.jwks_file = os.path.join(workdir, "jwks.json")
        with open(self.jwks_file, "w") as f:
            json.dump(self.jwks, f)
        os.chmod(self.jwks_file, 0o644)
        now = int(time.time())
        self.good = [self.mint(self.claims(now, i)) for i in range(count)]
        self.file = os.path.join(workdir, "tokens.txt")
        with open(self.file, "w") as f:
            for t in self.good:
                f.write("Authorization: Bearer %s\n" % t)
        c = self.claims(now, 0)
        self.bad = {
            "token signed by another key (same kid)": self.mint(c, key=self.other),
            "expired token": self.mint(dict(c, exp=now - 600, iat=now - 4200, nbf=now - 4200)),
            "token for another audience": self.mint(dict(c, aud="other-api")),
            "token from another issuer (signed by another key)":
                self.mint(dict(c, iss="https://evil.bench.test"), key=self.other),
            "alg none": self.unsigned(c),
        }
        self.selfcheck()

    @staticmethod
    def claims(now, i):
        return {"iss": ISSUER, "sub": "bench-user-%d" % i, "aud": AUDIENCE,
                "exp": now + 3 * 3600, "iat": now - 5, "nbf": now - 5,
                "jti": "bench-%d-%d" % (now, i), "client_id": "bench-client",
                "scope": "read", "acr": LOA3, "hsa_id": "SE2120001231-%04d" % (1000 + i % 9000)}

    def mint(self, claims, key=None):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        hdr = {"alg": "RS256", "typ": "JWT", "kid": KID}
        si = b64u(json.dumps(hdr, separators=(",", ":")).encode()) + "." + \
            b64u(json.dumps(claims, separators=(",", ":")).encode())
        sig = (key or self.key).sign(si.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return si + "." + b64u(sig)

    @staticmethod
    def unsigned(claims):
        hdr = {"alg": "none", "typ": "JWT"}
        return b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode()) + "."

    def selfcheck(self):
        """Our minting agrees with an independent JOSE implementation."""
        try:
            from jwcrypto import jwk, jws
        except ImportError:
            return
        k = jwk.JWK(**self.jwks["keys"][0])
        s = jws.JWS()
        s.deserialize(self.good[0])
        s.verify(k)  # raises on failure
        s = jws.JWS()
        s.deserialize(self.bad["token signed by another key (same kid)"])
        try:
            s.verify(k)
        except Exception:
            return
        raise BenchError("jwcrypto accepted a token signed by the wrong key")


def make_rogue_cert(workdir, like_pem):
    """A self-signed client certificate with the same subject as like_pem:
    a credential that looks right and must be refused."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID
    with open(like_pem, "rb") as f:
        like = x509.load_pem_x509_certificate(f.read())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(like.subject).issuer_name(like.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(key, hashes.SHA256()))
    pem = os.path.join(workdir, "rogue.pem")
    kf = os.path.join(workdir, "rogue.key")
    with open(pem, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kf, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return pem, kf


def subject_o(pem):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    with open(pem, "rb") as f:
        c = x509.load_pem_x509_certificate(f.read())
    attrs = c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if not attrs:
        raise BenchError("%s has no O in its subject" % pem)
    return attrs[0].value


# ---- one-shot HTTP client for the enforcement checks -----------------------------
def http_get(port, path, tls=False, server_ca=None, cert=None, headers=None, timeout=10):
    """(status, body) or ("refused", reason) when the TLS layer refuses us."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if tls:
            ctx = ssl.create_default_context(cafile=server_ca)
            if cert:
                ctx.load_cert_chain(certfile=cert[0], keyfile=cert[1])
            try:
                sock = ctx.wrap_socket(sock, server_hostname="localhost")
            except (ssl.SSLError, ConnectionError) as e:
                return "refused", "handshake: %s" % e
        lines = ["GET %s HTTP/1.1" % path, "Host: localhost:%d" % port, "Connection: close"]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            return resp.status, resp.read()
        except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected) as e:
            if tls:
                return "refused", "after handshake: %s" % e
            raise
    finally:
        sock.close()


# ---- processes ---------------------------------------------------------------------
BASE_MODULES = ["mpm_event", "authz_core", "authz_user", "authn_core", "mime"]
TLS_MODULES = ["ssl", "socache_shmcb"]

MPM = """\
StartServers 2
ServerLimit 2
ThreadLimit 64
ThreadsPerChild 64
MaxRequestWorkers 128
MinSpareThreads 1
MaxSpareThreads 128
MaxConnectionsPerChild 0
"""


class Httpd:
    def __init__(self, name, conf_fn, ctx, tls, modules=(), mpm=MPM, min_children=2,
                 keep=False, loglevel="warn"):
        self.name = name
        self.min_children = min_children
        self.root = tempfile.mkdtemp(prefix="eidbench-%s-" % name)
        os.chmod(self.root, 0o755)  # mkdtemp is 0700: www-data children would get 403
        self.port = free_port()
        self.tls = tls
        self.keep = keep
        self.proc = None
        self.error_log = os.path.join(self.root, "error.log")
        self.audit_log = os.path.join(self.root, "audit.log")
        docs = os.path.join(self.root, "htdocs", "p")
        os.makedirs(docs)
        for d in (os.path.join(self.root, "htdocs"), docs):
            os.chmod(d, 0o755)
        with open(os.path.join(docs, "1k.txt"), "wb") as f:
            f.write(BODY)
        self.conf = os.path.join(self.root, "httpd.conf")
        ctx = dict(ctx, root=self.root, port=self.port)
        mods = []
        for m in BASE_MODULES + (TLS_MODULES if tls else []) + list(modules):
            if m.startswith("LoadModule "):
                mods.append(m)
            else:
                mods.append("LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m))
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        head = textwrap.dedent("""\
            ServerRoot {root}
            {mods}
            Listen 127.0.0.1:{port}
            ServerName localhost
            PidFile {root}/httpd.pid
            DefaultRuntimeDir {root}
            Mutex file:{root} default
            ErrorLog {root}/error.log
            LogLevel {loglevel}
            {user}
            KeepAlive On
            MaxKeepAliveRequests 0
            KeepAliveTimeout 60
            Timeout 60
            DocumentRoot {root}/htdocs
            TypesConfig /etc/mime.types
            <Directory {root}/htdocs>
                Require all granted
            </Directory>
            """).format(mods="\n".join(mods), user=user, loglevel=loglevel, **ctx)
        tlsconf = ""
        if tls:
            tlsconf = textwrap.dedent("""\
                SSLEngine on
                SSLCertificateFile {pki}/server/localhost.pem
                SSLCertificateKeyFile {pki}/server/localhost.key
                SSLSessionCache shmcb:{root}/ssl_scache(512000)
                """).format(**ctx)
        with open(self.conf, "w") as f:
            f.write(head + mpm + tlsconf + conf_fn(ctx) + "\n")

    def start(self):
        r = subprocess.run([HTTPD, "-t", "-f", self.conf], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise BenchError("configtest failed: " + (r.stderr or r.stdout).strip())
        out = open(os.path.join(self.root, "console.log"), "wb")
        # Own session: a Ctrl-C in the terminal reaches us, and we stop httpd.
        self.proc = subprocess.Popen([HTTPD, "-f", self.conf, "-DFOREGROUND"], stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("httpd exited at start:\n" + self.tail_log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                if len(children_of(self.proc.pid)) >= self.min_children:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError("httpd did not come up on port %d" % self.port)

    @property
    def pid(self):
        return self.proc.pid

    def tail_log(self, n=20):
        try:
            with open(self.error_log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.error_log)
        except OSError:
            return 0

    def problems_since(self, offset):
        try:
            with open(self.error_log, errors="replace") as f:
                f.seek(offset)
                text = f.read()
        except OSError:
            return []
        return [ln for ln in text.splitlines()
                if re.search(r":(warn|error|crit|alert|emerg)\]", ln) or self.CRASH.search(ln)]

    # AH00052 "child pid N exit signal Segmentation fault (11)" is a notice.
    CRASH = re.compile(r"AH00052|exit signal|AH00051")

    def start_callgrind(self, out_file, timeout=300):
        """The same configuration as a single process (-X) under callgrind.

        httpd started as root switches to www-data, and callgrind writes its
        output file only at exit, as www-data, after creating it (as root) at
        start: so the file and its directory are made www-data's beforehand.
        Returns once the port accepts connections: requests sent then wait
        in the backlog until the server is ready."""
        r = subprocess.run([HTTPD, "-t", "-f", self.conf], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise BenchError("configtest failed: " + (r.stderr or r.stdout).strip())
        d = os.path.dirname(out_file)
        os.makedirs(d, exist_ok=True)
        with open(out_file, "w"):
            pass
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("www-data")
            for p in (d, out_file):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o755)
        try:  # a pid file left by an earlier run only makes httpd warn
            os.unlink(os.path.join(self.root, "httpd.pid"))
        except OSError:
            pass
        self.valgrind_log = out_file + ".log"
        out = open(os.path.join(self.root, "console.log"), "ab")
        self.proc = subprocess.Popen(
            [VALGRIND, "--tool=callgrind", "--vgdb=no", "--log-file=" + self.valgrind_log,
             "--callgrind-out-file=" + out_file, HTTPD, "-X", "-f", self.conf],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("httpd under callgrind exited at start:\n" + self.tail_log()
                                 + self.tail_file(self.valgrind_log))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise BenchError("httpd under callgrind did not come up on port %d" % self.port)

    @staticmethod
    def tail_file(path, n=20):
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=15, resend=None):
        """SIGTERM (again every `resend` seconds if given), then SIGKILL to the
        session after timeout seconds.  Returns the exit status (None if it
        was not running).  httpd -X loses a SIGTERM that arrives while its
        child initialisation runs (the handler only sets a flag that -X never
        reads), hence `resend` for the callgrind runs."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            kids = children_of(self.proc.pid)
            deadline = time.time() + timeout
            try:
                while True:
                    self.proc.send_signal(signal.SIGTERM)
                    left = deadline - time.time()
                    try:
                        rc = self.proc.wait(timeout=max(0.1, min(left, resend or left)))
                        break
                    except subprocess.TimeoutExpired:
                        if time.time() >= deadline:
                            raise
            except subprocess.TimeoutExpired:
                # the process group is the session we created for this httpd
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                rc = self.proc.wait()
            for k in kids:  # children normally go with the parent; make sure
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
        self.proc = None
        return rc

    def cleanup(self):
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


# ---- callgrind output ------------------------------------------------------------
def callgrind_total(path):
    """Total of the first event (Ir) from a callgrind output file, or None
    when the file is incomplete (no totals:/summary: line)."""
    total = summary = None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("totals:"):
                    total = int(line.split()[1])
                elif line.startswith("summary:"):
                    summary = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total if total is not None else summary


def callgrind_profile(path):
    """Self and inclusive Ir per function from a callgrind output file:
    {"function (object)": [self, inclusive]}.  Read directly (the format is
    documented in valgrind's callgrind manual): callgrind_annotate 3.19 lists
    some functions twice ("file:fn [object]" and "???:fn"), which doubles them
    when its lines are summed.  Inclusive = self + the cost of every call the
    function makes, except calls to itself."""
    npos = 1
    names = {"ob": {}, "fn": {}}
    ob = cob = cfn = None
    cur = None
    in_call = False
    funcs = {}

    def resolve(space, val):
        val = val.strip()
        if val.startswith("("):
            end = val.index(")")
            key, name = val[1:end], val[end + 1:].strip()
            if name:
                names[space][key] = name
                return name
            return names[space].get(key, "?")
        return val

    def label(fn, obj):
        return "%s (%s)" % (fn, os.path.basename(obj)) if obj else fn

    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                v = int(parts[npos]) if len(parts) > npos else 0
                if cur is None:
                    continue
                if in_call:
                    in_call = False
                    if label(cfn, cob or ob) != cur:
                        funcs[cur][1] += v
                    cob = None
                else:
                    funcs[cur][0] += v
                    funcs[cur][1] += v
                continue
            key, eq, val = line.partition("=")
            if not eq:
                if line.startswith("positions:"):
                    npos = len(line.split()) - 1
                continue
            if key == "ob":
                ob = resolve("ob", val)
            elif key == "fn":
                cur = label(resolve("fn", val), ob)
                funcs.setdefault(cur, [0, 0])
                cob = None
            elif key == "cob":
                cob = resolve("ob", val)
            elif key == "cfn":
                cfn = resolve("fn", val)
            elif key == "calls":
                in_call = True
    return funcs


class Redis:
    def __init__(self, keep=False):
        self.dir = tempfile.mkdtemp(prefix="eidbench-redis-")
        self.port = free_port()
        self.keep = keep
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                self.command_calls()
                return self
            except OSError:
                time.sleep(0.05)
        raise BenchError("redis-server did not start")

    def command_calls(self):
        """Total calls of every command except INFO itself."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"INFO commandstats\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                m = re.match(rb"\$(\d+)\r\n", data)
                if m and len(data) >= m.end() + int(m.group(1)):
                    break
        total = 0
        for m in re.finditer(rb"cmdstat_([a-z|_-]+):calls=(\d+)", data):
            if m.group(1) != b"info":
                total += int(m.group(2))
        return total

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
