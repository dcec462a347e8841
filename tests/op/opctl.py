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

    # ------------------------------------------------------------ login side (admin)
    def register_client(self, client_id, **fields):
        """Register or update an RP client; returns its record. fields: client_secret,
        redirect_uris, post_logout_redirect_uris, backchannel_logout_uri,
        token_endpoint_auth_method, jwks, public_key_pem, profile, pkce_required,
        access_token_aud, backchannel_ca_file, replace (start from the defaults)."""
        return self.admin("/admin/clients", dict(fields, client_id=client_id))["client"]

    def delete_client(self, client_id):
        return self.admin("/admin/clients", {"client_id": client_id, "delete": True})

    def clients(self):
        return self.admin("/admin/clients", method="GET")["clients"]

    def auto_login(self, user):
        """GET /authorize logs in as `user` at once (None: show the login page again)."""
        return self.admin("/admin/auto-login", {"user": user})

    def login_behaviour(self, **kw):
        """e.g. login_behaviour(id_token="wrong-nonce"), (token="slow", slow_seconds=3),
        (replay_code=True), (userinfo="sub-mismatch"), (authorize="access_denied"),
        (reset=True)."""
        return self.admin("/admin/login-behaviour", kw)

    def get_login_behaviour(self):
        return self.admin("/admin/login-behaviour", method="GET")

    def backchannel(self, client, sid=None, sub=None, variant=None, **kw):
        """Send a logout token to the client's backchannel_logout_uri; returns the OP's
        answer (status, body, headers, logout_token, claims, header, error)."""
        req = dict(kw, client=client)
        for k, v in (("sid", sid), ("sub", sub), ("variant", variant)):
            if v is not None:
                req[k] = v
        return self.admin("/admin/backchannel", req)

    def sessions(self):
        return self.admin("/admin/sessions", method="GET")["sessions"]

    def users(self):
        return {u["name"]: u for u in self.admin("/admin/users", method="GET")["users"]}

    def records(self, kind=None):
        path = "/admin/records" + ("?kind=" + kind if kind else "")
        r = self.admin(path, method="GET")
        return r[kind] if kind else r

    def end_session_records(self):
        return self.records("end_session")

    def clear_records(self):
        return self.admin("/admin/clear-records", {})

    # ------------------------------------------------------------ a Python RP (tests)
    @staticmethod
    def pkce_pair():
        """(code_verifier, S256 code_challenge)."""
        import hashlib
        import secrets
        v = secrets.token_urlsafe(48)
        c = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=")
        return v, c.decode()

    def authorize(self, params, cookie=None):
        """GET /authorize?params (a dict); returns the raw Response (302 or a page)."""
        hdrs = {"Cookie": cookie} if cookie else None
        return self.get("/authorize?" + urllib.parse.urlencode(params), headers=hdrs)

    def choose_user(self, page, user, cancel=False, cookie=None):
        """Click the login page's button for `user` (POST /authorize/login)."""
        import re
        m = re.search(rb'name="req" value="([^"]+)"', page.body)
        if not m:
            raise OPError(page.status, page.body.decode("utf-8", "replace"))
        form = {"req": m.group(1).decode()}
        form.update({"cancel": "1"} if cancel else {"user": user, "login": "1"})
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        if cookie:
            hdrs["Cookie"] = cookie
        return self.request("POST", "/authorize/login",
                            body=urllib.parse.urlencode(form).encode(), headers=hdrs)

    def token_request(self, form, basic=None, headers=None):
        """POST /token with `form`; basic=(id, secret) adds client_secret_basic."""
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        if basic is not None:
            cid, secret = (urllib.parse.quote_plus(x) for x in basic)
            hdrs["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (cid, secret)).encode()).decode()
        hdrs.update(headers or {})
        return self.request("POST", "/token", body=urllib.parse.urlencode(form).encode(),
                            headers=hdrs)

    def client_assertion(self, client_id, private_key, kid=None, alg=None, claims=None):
        """An RFC 7523 private_key_jwt assertion signed by `private_key` (a cryptography
        key object); claims override/extend (None deletes)."""
        import secrets
        import time as _t
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        is_rsa = isinstance(private_key, rsa.RSAPrivateKey)
        alg = alg or ("RS256" if is_rsa else "ES256")
        t = int(_t.time())
        cl = {"iss": client_id, "sub": client_id, "aud": self.issuer + "/token",
              "iat": t, "exp": t + 60, "jti": secrets.token_urlsafe(16)}
        for k, v in (claims or {}).items():
            if v is None:
                cl.pop(k, None)
            else:
                cl[k] = v
        hdr = {"alg": alg, "typ": "JWT"}
        if kid:
            hdr["kid"] = kid

        def enc(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        si = (enc(json.dumps(hdr).encode()) + "." + enc(json.dumps(cl).encode())).encode()
        if alg == "ES256":
            r, s = decode_dss_signature(private_key.sign(si, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        elif alg == "PS256":
            sig = private_key.sign(si, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                   salt_length=32), hashes.SHA256())
        else:
            sig = private_key.sign(si, padding.PKCS1v15(), hashes.SHA256())
        return si.decode() + "." + enc(sig)

    def login(self, client_id, redirect_uri, user="nurse", client_secret=None,
              method="client_secret_basic", private_key=None, kid=None, scope="openid",
              acr_values=None, extra=None, exchange=True):
        """A whole code flow with PKCE the way an RP does it, clicking `user` on the login
        page (or following auto-login). Returns a dict: state, nonce, verifier, code,
        location (the redirect to the RP), params (its query), cookie (the OP's session
        cookie), and with exchange: token (Response), tokens (JSON when 200)."""
        import secrets
        verifier, challenge = self.pkce_pair()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        p = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
             "scope": scope, "state": state, "nonce": nonce, "code_challenge": challenge,
             "code_challenge_method": "S256"}
        if acr_values:
            p["acr_values"] = acr_values
        p.update(extra or {})
        r = self.authorize(p)
        if r.status == 200:
            r = self.choose_user(r, user)
        if r.status != 302:
            raise OPError(r.status, r.body.decode("utf-8", "replace"))
        loc = r.headers["location"]
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        cookie = (r.headers.get("set-cookie") or "").split(";")[0] or None
        out = {"state": state, "nonce": nonce, "verifier": verifier, "location": loc,
               "params": q, "code": q.get("code"), "cookie": cookie}
        if exchange and out["code"]:
            out["token"] = self.redeem(client_id, out["code"], redirect_uri, verifier,
                                       client_secret, method, private_key, kid)
            if out["token"].status == 200:
                out["tokens"] = out["token"].json()
        return out

    def redeem(self, client_id, code, redirect_uri, verifier, client_secret=None,
               method="client_secret_basic", private_key=None, kid=None):
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri, "code_verifier": verifier}
        if method == "client_secret_basic":
            return self.token_request(form, basic=(client_id, client_secret))
        if method == "client_secret_post":
            form.update(client_id=client_id, client_secret=client_secret)
            return self.token_request(form)
        form.update(client_id=client_id, client_assertion_type=(
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            client_assertion=self.client_assertion(client_id, private_key, kid))
        return self.token_request(form)

    def userinfo(self, access_token, method="GET"):
        return self.request(method, "/userinfo",
                            headers={"Authorization": "Bearer " + access_token})
