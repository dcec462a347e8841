"""Control a tests/op/eid_test_op.py process from a pytest suite.

    import sys; sys.path.insert(0, "<repo>/tests/op")
    from opctl import TestOP

    op = TestOP(tmp_dir).start()
    tok = op.mint(preset="inera-nurse", claims={"scope": "incident:read"})
    bad = op.mint(variant="alg-none")
    op.behaviour(jwks="down"); op.restart(); op.stop()

Stdlib only (http.client, no proxies). The port chosen at the first start() is kept for
later start()/restart() calls, so the issuer URL never changes for a TestOP object.
The child gets PR_SET_PDEATHSIG=SIGTERM, so it dies with the test process.
"""
import base64
import ctypes
import http.client
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
OP_SCRIPT = os.path.join(HERE, "eid_test_op.py")
PYTHON = "/usr/bin/python3"
DEFAULT_CLIENT = ("incident-api", "incident-api-secret")


class OPError(Exception):
    """An admin call failed; .status and .body hold the answer."""

    def __init__(self, status, body):
        super().__init__("OP answered %s: %s" % (status, body[:500]))
        self.status = status
        self.body = body


def _pdeathsig():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %d bytes>" % (self.status, len(self.body))


class TestOP:
    __test__ = False  # not a pytest test class

    def __init__(self, state_dir, host="127.0.0.1", port=0, tls_cert=None, tls_key=None,
                 ca_file=None, python=PYTHON):
        self.state_dir = str(state_dir)
        self.host = host
        self.port = port
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.ca_file = ca_file or tls_cert  # a self-signed server cert is its own CA
        self.python = python
        self.proc = None
        self.info = None
        self.log_path = os.path.join(self.state_dir, "op.log")

    # ------------------------------------------------------------ process
    @property
    def info_path(self):
        return os.path.join(self.state_dir, "op.json")

    @property
    def issuer(self):
        return self.info["issuer"]

    @property
    def jwks_uri(self):
        return self.issuer + "/jwks"

    @property
    def discovery_uri(self):
        return self.issuer + "/.well-known/openid-configuration"

    @property
    def introspection_uri(self):
        return self.issuer + "/introspect"

    def url(self, path):
        return self.issuer + path

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def command(self):
        cmd = [self.python, OP_SCRIPT, "--state-dir", self.state_dir, "--host", self.host,
               "--port", str(self.port)]
        if self.tls_cert:
            cmd += ["--tls-cert", self.tls_cert, "--tls-key", self.tls_key]
        return cmd

    def start(self, timeout=15):
        if self.running():
            return self
        os.makedirs(self.state_dir, exist_ok=True)
        try:
            os.unlink(self.info_path)
        except FileNotFoundError:
            pass
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=_pdeathsig,
                                         close_fds=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise RuntimeError("eid_test_op exited with %s:\n%s" % (rc, self.log_tail()))
            try:
                with open(self.info_path, encoding="utf-8") as f:
                    info = json.load(f)
                if info.get("pid") == self.proc.pid:
                    self.info = info
                    self.port = info["port"]
                    return self
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("eid_test_op did not start within %ss:\n%s"
                           % (timeout, self.log_tail()))

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit code (None if it was not running)."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def kill(self):
        """SIGKILL, for 'provider crashed' tests (op.json is left behind)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self, timeout=15):
        self.stop()
        return self.start(timeout)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ HTTP
    def request(self, method, path, body=None, headers=None, timeout=30):
        """One request to the OP; returns a Response (any status)."""
        u = urllib.parse.urlsplit(self.issuer)
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.ca_file)
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def admin(self, path, payload=None, method="POST"):
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        r = self.request(method, path, body=body,
                         headers={"Content-Type": "application/json"} if body else None)
        if r.status != 200:
            raise OPError(r.status, r.body.decode("utf-8", "replace"))
        return r.json()

    # ------------------------------------------------------------ admin API
    def mint_info(self, **kw):
        """Full /admin/mint answer: token, header, claims, kid, variant."""
        return self.admin("/admin/mint", kw)

    def mint(self, **kw):
        """Token string. kw: claims, header, key, variant, opaque, preset, aud, ttl,
        huge_bytes (see README)."""
        return self.mint_info(**kw)["token"]

    def rotate(self, drop_old=False):
        return self.admin("/admin/rotate", {"drop_old": drop_old})

    def behaviour(self, **kw):
        """e.g. behaviour(jwks="slow", slow_seconds=3), behaviour(reset=True)."""
        return self.admin("/admin/behaviour", kw)

    def stats(self):
        return self.admin("/admin/stats", method="GET")

    def reset_stats(self):
        return self.admin("/admin/reset-stats", {})

    def add_client(self, client_id, client_secret):
        return self.admin("/admin/clients", {"client_id": client_id,
                                             "client_secret": client_secret})

    def revoke(self, token):
        return self.admin("/admin/revoke", {"token": token})["revoked"]

    def info_admin(self):
        return self.admin("/admin/info", method="GET")

    def jwks(self):
        r = self.get("/jwks")
        if r.status != 200:
            raise OPError(r.status, r.body.decode("utf-8", "replace"))
        return r.json()

    def discovery(self):
        r = self.get("/.well-known/openid-configuration")
        if r.status != 200:
            raise OPError(r.status, r.body.decode("utf-8", "replace"))
        return r.json()

    def introspect(self, token, client=DEFAULT_CLIENT):
        """Raw Response of POST /introspect with HTTP Basic client auth (client=None: none)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if client is not None:
            cid, secret = (urllib.parse.quote_plus(x) for x in client)
            headers["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (cid, secret)).encode()).decode()
        body = urllib.parse.urlencode({"token": token}).encode()
        return self.request("POST", "/introspect", body=body, headers=headers)
