"""The session suite of bench/run.py (issue 10): browser sessions.

Three servers with the same TLS vhost, MPM block and 1 KB file:
  noauth               no auth (baseline); the load sends a session-shaped cookie, ignored
  eid-session-shm      mod_auth_eid, EidMethods oidc, shared-memory session store
  openidc-session-shm  Debian's mod_auth_openidc as RP, OIDCCacheType shm (server-side
                       sessions), against the same test OpenID Provider

Each session is established once by a real login through the test OP (tests/op,
TLS on loopback, its login page told to log the chosen test user in without a click)
with a cookie jar (python3-requests): protected URL -> 302 to the OP -> 302 back
to the RP's callback -> code exchange by the module -> session cookie -> 200 with
the file.  The cookies the RP set are then sent by eidload (-H 'Cookie: ...') on
every request of the keep-alive connections.  A server restarted under callgrind
has an empty shared memory: the login is repeated there (its cost is the same
in the N and the 3N run and cancels out).

Stdlib + python3-requests + tests/op/opctl.py.
"""
import http.client
import os
import re
import ssl
import textwrap
import urllib.parse

from benchlib import BODY, BenchError, b64u, log

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OP_DIR = os.path.join(REPO, "tests", "op")
WHO = "/p/who.txt"           # same protection as /p/1k.txt; answers with X-Bench-User
USER = "nurse"               # the test OP's user logged in
USER_SUB = "SE2321000016-P0001N"
EID_CLIENT = ("bench-eid", "bench-eid-secret-0123456789abcdef")
OIDC_CLIENT = ("bench-openidc", "bench-openidc-secret-0123456789ab")
LOGIN_TIMEOUT = 600          # seconds; a login under callgrind is slow

# Every scenario serves /p/who.txt with the user httpd's authn produced in a
# response header (mod_headers, only at that URL), so a check can see the
# identity the backend would get without changing the measured URL.
WHO_CONF = textwrap.dedent("""\
    <Location /p/who.txt>
        Header always set X-Bench-User "expr=%{REMOTE_USER}"
    </Location>
    """)


class OP:
    """The test OpenID Provider over TLS on loopback, for the whole suite."""

    def __init__(self, workdir, pki):
        import sys
        sys.path.insert(0, OP_DIR)
        from opctl import TestOP
        self.state = os.path.join(workdir, "op")
        self.op = TestOP(self.state, host="127.0.0.1",
                         tls_cert=os.path.join(pki, "server", "localhost.pem"),
                         tls_key=os.path.join(pki, "server", "localhost.key"),
                         ca_file=os.path.join(pki, "ca", "server-ca.pem"))

    def start(self):
        try:
            self.op.start()
        except RuntimeError as e:
            raise BenchError("test OP: %s" % e)
        return self

    @property
    def issuer(self):
        return self.op.issuer

    def stop(self):
        self.op.stop()

    def admin(self, path, body):
        import json
        r = self.op.request("POST", path, body=json.dumps(body).encode(),
                            headers={"Content-Type": "application/json"})
        if r.status != 200:
            raise BenchError("test OP %s answered %s: %s" % (path, r.status, r.body[:300]))
        return r.json()

    def register(self, client, redirect_uri):
        """A confidential client of the authorization code flow (PKCE S256,
        client_secret_basic, Inera's claims)."""
        self.admin("/admin/clients", {"client_id": client[0], "client_secret": client[1],
                                      "redirect_uris": [redirect_uri], "replace": True,
                                      "token_endpoint_auth_method": "client_secret_basic",
                                      "profile": "inera", "pkce_required": True})

    def auto_login(self, user):
        """Its authorization endpoint logs this test user in without a page."""
        self.admin("/admin/auto-login", {"user": user})


def login(port, path, server_ca, timeout=LOGIN_TIMEOUT):
    """A real login through the test OP with a cookie jar; returns the
    'Cookie:' header value with the cookies the RP at localhost:port set.
    Raises BenchError unless the protected file arrives at the end."""
    import requests
    s = requests.Session()
    s.trust_env = False  # never a proxy: loopback only
    s.verify = server_ca
    hdr = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
           "User-Agent": "eidbench-login"}
    url = "https://localhost:%d%s" % (port, path)
    try:
        r = s.get(url, headers=hdr, timeout=timeout)
        hops = [h.status_code for h in r.history]
        if r.status_code == 200 and r.content != BODY and "<form" in r.text:
            r = submit_op_form(s, r, hdr, timeout)
            hops += [h.status_code for h in r.history]
    except requests.RequestException as e:
        raise BenchError("login at %s: %s" % (url, e))
    if r.status_code != 200 or r.content != BODY or not r.history:
        raise BenchError("login at %s ended with %s after %s (%d bytes): %s" % (
            url, r.status_code, hops, len(r.content), r.text[:200].replace("\n", " ")))
    jar = [c for c in s.cookies if c.domain.split(".")[0] == "localhost" and
           c.value is not None]
    if not jar:
        raise BenchError("login at %s set no cookie for the RP" % url)
    return "; ".join("%s=%s" % (c.name, c.value) for c in jar)


def submit_op_form(s, r, hdr, timeout):
    """The OP's login page: pick the test user's button if it is a form."""
    m = None
    for f in re.finditer(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', r.text, re.S | re.I):
        if 'name="user" value="%s"' % USER in f.group(2):
            m = f
    if not m:
        raise BenchError("no login form on the OP's page")
    fields = dict(re.findall(r'<(?:input|button)[^>]*name="([^"]+)"[^>]*value="([^"]*)"',
                             m.group(2)))
    action = urllib.parse.urljoin(r.url, m.group(1).replace("&amp;", "&"))
    return s.post(action, data=fields, headers=hdr, timeout=timeout)


def fetch(port, path, server_ca, cookie=None, timeout=30):
    """(status, headers, body) of one GET to the RP (verifying its certificate)."""
    ctx = ssl.create_default_context(cafile=server_ca)
    c = http.client.HTTPSConnection("localhost", port, timeout=timeout, context=ctx)
    try:
        h = {"Accept": "*/*"}
        if cookie is not None:
            h["Cookie"] = cookie
        c.request("GET", path, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def tamper(cookie):
    """The same cookie header with the middle character of every value changed."""
    out = []
    for part in cookie.split("; "):
        name, _, val = part.partition("=")
        i = len(val) // 2
        mid = val[i:i + 1]
        val = val[:i] + ("B" if mid != "B" else "C") + val[i + 1:]
        out.append("%s=%s" % (name, val))
    return "; ".join(out)


def host_header(port):
    """The load's Host: the name the cookies were set for (eidload connects to
    127.0.0.1; mod_auth_openidc refuses a host other than its redirect URI's)."""
    return "Host: localhost:%d" % port


class Session:
    """The established session of one scenario: the Cookie header, updated in
    place by every (re-)login so that the checks and the load use the new one."""

    def __init__(self, sc, ctx, port_fn):
        self.sc, self.ctx, self.port_fn = sc, ctx, port_fn
        self.cookie = None
        self.ok_kw = {"headers": {}}  # the "good credential" of run_check / the probe

    def establish(self):
        port = self.port_fn()
        self.cookie = login(port, "/p/1k.txt", self.ctx["server_ca"])
        self.ok_kw["headers"]["Cookie"] = self.cookie
        self.sc.headers = [host_header(port), "Cookie: " + self.cookie]
        log("[%s] session established through the test OP (cookies: %s)" % (
            self.sc.name, ", ".join(p.split("=")[0] for p in self.cookie.split("; "))))

    # custom checks: fn() -> (pass, what we got)
    def check_denied(self, cookie):
        def fn():
            st, h, body = fetch(self.port_fn(), "/p/1k.txt", self.ctx["server_ca"], cookie())
            where = h.get("location", "")
            got = "%s%s" % (st, " -> " + where[:80] if where else "")
            return st != 200 and body != BODY and not 200 <= st < 300, got
        return fn

    def check_identity(self):
        st, h, body = fetch(self.port_fn(), WHO, self.ctx["server_ca"], self.cookie)
        user = h.get("x-bench-user", "")
        return (st == 200 and USER_SUB in user,
                "%s, backend user %r" % (st, user))

    def checks(self):
        return [
            ("no session cookie", "deny", {"fn": self.check_denied(lambda: None)}),
            ("session cookie with its middle character changed", "deny",
             {"fn": self.check_denied(lambda: tamper(self.cookie))}),
            ("a cookie of the same name with a fresh random value", "deny",
             {"fn": self.check_denied(lambda: "; ".join(
                 "%s=%s" % (p.split("=")[0], b64u(os.urandom(32)))
                 for p in self.cookie.split("; ")))}),
            ("established session", "ok", self.ok_kw),
            ("established session: identity the backend sees", "identity",
             {"fn": self.check_identity}),
        ]


def session_scenarios(ctx, Scenario, eid_load, extra=False):
    """The suite's scenarios; ctx has pki, server_ca, op (an OP started)."""
    op = ctx.get("op")  # None with --list
    noauth_cookie = "Cookie: __Host-eid-session=" + b64u(b"\x5a" * 32)
    out = [Scenario("noauth", "TLS, no auth (baseline; a session-shaped cookie is sent and "
                    "ignored)", tls=True, modules=["headers"],
                    conf=lambda c: WHO_CONF,
                    checks=[("no credential (open by design)", "ok", {})])]
    out[0].setup = lambda: setattr(out[0], "headers",
                                   [host_header(out[0].server.port), noauth_cookie])

    # mod_auth_openidc: server-side sessions in its shm cache (the default
    # OIDCSessionType server-cache: the cookie holds a session id only).
    openidc = textwrap.dedent("""\
        OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
        OIDCCABundlePath {pki}/ca/server-ca.pem
        OIDCClientID {cid}
        OIDCClientSecret {secret}
        OIDCRedirectURI https://localhost:{port}/p/redirect_uri
        OIDCCryptoPassphrase {passphrase}
        OIDCCacheType shm
        OIDCScope "openid"
        OIDCPKCEMethod S256
        OIDCRemoteUserClaim sub
        <Location /p/>
            AuthType openid-connect
            Require valid-user
        </Location>
        """)
    sc = Scenario("openidc-session-shm",
                  "mod_auth_openidc %s as RP, OIDCCacheType shm (server-side session), "
                  "established session cookie" %
                  ctx["versions"].get("libapache2-mod-auth-openidc", "?"),
                  tls=True, modules=["headers", "auth_openidc"],
                  conf=lambda c: openidc.format(issuer=op.issuer, cid=OIDC_CLIENT[0],
                                                secret=OIDC_CLIENT[1], **c) + WHO_CONF)
    attach(sc, ctx, lambda s: op.register(
        OIDC_CLIENT, "https://localhost:%d/p/redirect_uri" % s.server.port))
    out.append(sc)
    # --- issue 11: the same with the sessions in Redis (a redis-server per scenario)
    sc = Scenario("openidc-session-redis",
                  "mod_auth_openidc as RP, OIDCCacheType redis (server-side session in Redis), "
                  "established session cookie", tls=True, redis=True,
                  modules=["headers", "auth_openidc"],
                  conf=lambda c: openidc.replace("OIDCCacheType shm", "OIDCCacheType redis\n"
                                                 "OIDCRedisCacheServer 127.0.0.1:{redis_port}")
                  .format(issuer=op.issuer, cid=OIDC_CLIENT[0] + "-redis", secret=OIDC_CLIENT[1],
                          **c) + WHO_CONF)
    attach(sc, ctx, lambda s: op.register(
        (OIDC_CLIENT[0] + "-redis", OIDC_CLIENT[1]),
        "https://localhost:%d/p/redirect_uri" % s.server.port))
    out.append(sc)

    eid = textwrap.dedent("""\
        EidSessionKeyFile {keyfile}
        EidSessionStore shm
        EidProvider op issuer={issuer} discovery=on login=on client_id={cid} \\
                    client_secret_file={secret_file} claims=inera ca_file={pki}/ca/server-ca.pem
        {audit}
        EidRedirectURI https://localhost:{port}/.eid/callback
        <Location /p/>
            AuthType eid
            EidMethods oidc
            EidLoginProviders op
            Require valid-user
        </Location>
        """)

    def eid_scenario(name, desc, audit, extra_conf="", audit_opt=""):
        cid = (EID_CLIENT[0] + "-" + name, EID_CLIENT[1])  # a client per server
        sc = Scenario(name, desc, tls=True, needs_module=True, audit=audit,
                      modules=["headers", eid_load(ctx)],
                      conf=lambda c: eid.format(
                          issuer=op.issuer, cid=cid[0], secret_file=ctx["eid_secret_file"],
                          keyfile=ctx["eid_key_file"],
                          audit=("EidAuditLog %s/audit.log%s" % (c["root"], audit_opt)
                                 if audit else ""),
                          **c) + WHO_CONF + extra_conf)
        attach(sc, ctx, lambda s: op.register(
            cid, "https://localhost:%d/.eid/callback" % s.server.port))
        return sc
    out.append(eid_scenario("eid-session-shm", "mod_auth_eid: EidMethods oidc, EidSessionStore "
                            "shm, established session cookie, env export, audit log", True))
    # issue 11: sessions in Redis, the process cache on (invalidated by Redis)
    rsc = eid_scenario("eid-session-redis", "mod_auth_eid: EidMethods oidc, EidSessionStore "
                       "redis with the process cache (cache=10000), established session "
                       "cookie, env export, audit log", True)
    rsc.redis = True
    shm_conf = rsc.conf
    rsc.conf = lambda c: shm_conf(c).replace(
        "EidSessionStore shm", "EidSessionStore redis://127.0.0.1:%d/0 cache=10000"
        % c["redis_port"])
    out.append(rsc)
    if extra:
        out.append(eid_scenario("eid-session-shm-auditbatch", "eid-session-shm with the audit "
                                "records written in batches (EidAuditLog ... flush=10): one "
                                "write() per child every 10 ms instead of one per request",
                                True, audit_opt=" flush=10"))
        out.append(eid_scenario("eid-session-shm-noaudit", "eid-session-shm without the audit "
                                "log (what the audit write costs)", False))
        out.append(eid_scenario("eid-session-shm-pthread", "eid-session-shm with the store's "
                                "global mutex a process-shared pthread mutex (Mutex pthread "
                                "eid-store) instead of the fcntl lock file of `Mutex file:` "
                                "(Debian's default, and every scenario's)", True,
                                "Mutex pthread eid-store\n"))
    return out


def attach(sc, ctx, register):
    """Give a scenario its session: sc.setup() registers the RP at the OP and
    logs in (again after a restart); sc.checks are the session checks."""
    sess = Session(sc, ctx, lambda: sc.server.port)

    def setup():
        who = os.path.join(sc.server.root, "htdocs", WHO.lstrip("/"))
        if not os.path.exists(who):
            with open(who, "w") as f:
                f.write("who\n")
            os.chmod(who, 0o644)
        register(sc)
        sess.establish()
    sc.setup = setup
    sc.session = sess
    sc.checks = sess.checks()


def prepare(ctx, workdir):
    """Start the OP, write the key and secret files; returns the OP."""
    pki = ctx["pki"]
    need = ["server/localhost.pem", "server/localhost.key", "ca/server-ca.pem"]
    missing = [p for p in need if not os.path.exists(os.path.join(pki, p))]
    if missing:
        raise BenchError("test PKI incomplete in %s (missing %s): make pki"
                         % (pki, ", ".join(missing)))
    ctx["server_ca"] = os.path.join(pki, "ca/server-ca.pem")
    # Read by httpd at start-up (as root): 0600, as EidSessionKeyFile demands.
    ctx["eid_key_file"] = os.path.join(workdir, "session.key")
    ctx["eid_secret_file"] = os.path.join(workdir, "client.secret")
    for path, text in ((ctx["eid_key_file"], os.urandom(32).hex() + "\n"),
                       (ctx["eid_secret_file"], EID_CLIENT[1] + "\n")):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    op = OP(workdir, pki).start()
    ctx["op"] = op
    op.auto_login(USER)
    return op
