"""Shared set-up of the browser-login tests: a real test OP (tests/op) with
the `portal` client registered for this httpd, a real httpd + mod_ssl with
the module, and a requests.Session as the browser's cookie jar."""
import os
import shutil
import sys
import tempfile
import urllib.parse

import pytest
import requests

from eidtest import REPO, Httpd, free_port, pki

sys.path.insert(0, os.path.join(REPO, "tests", "op"))
from opctl import TestOP  # noqa: E402

CA = pki("ca", "server-ca.pem")
KEY_A = "11" * 32
KEY_B = "22" * 32
KEY_C = "33" * 32

HITS_CGI = """#!/usr/bin/python3
import json, os, sys
with open(os.path.join(os.path.dirname(__file__), "..", "hits.log"), "a") as f:
    f.write(os.environ.get("REQUEST_URI", "") + "\\n")
env = {k: v for k, v in os.environ.items()
       if k.startswith(("EID_", "HTTP_X_EID", "REMOTE_USER", "AUTH_TYPE"))}
body = json.dumps(env, sort_keys=True, ensure_ascii=False).encode("utf-8")
sys.stdout.write("Content-Type: application/json; charset=utf-8\\r\\n")
sys.stdout.write("Content-Length: %d\\r\\n\\r\\n" % len(body))
sys.stdout.flush()
sys.stdout.buffer.write(body)
"""


def start_op(name="login"):
    d = tempfile.mkdtemp(prefix="eid-op-%s-" % name)
    return TestOP(d).start()


def stop_op(op):
    op.stop()
    shutil.rmtree(op.state_dir, ignore_errors=True)


def write_keys(root, *keys):
    path = os.path.join(root, "session.key")
    with open(path, "w") as f:
        f.write("".join(k + "\n" for k in keys))
    os.chmod(path, 0o600)
    return path


def make_httpd(op, locations, extra="", name="login", keys=(KEY_A,), port=None,
               provider_opts="", vhost=None):
    """httpd whose main server logs in with `op` (provider `op`, profile
    inera, client portal).  `locations`: {path: directives}.  `vhost`: a
    second virtual host's body (its own port) or None."""
    port = port or free_port()
    ru = "https://localhost:%d/.eid/callback" % port
    c = "EidSessionKeyFile {root}/session.key\n"
    c += ("EidProvider op issuer=%s discovery=on claims=inera login=on client_id=portal "
          "client_secret_file={root}/secret fetch_timeout=3 %s\n" % (op.issuer, provider_opts))
    c += "EidRedirectURI %s\n" % ru
    c += 'ScriptAliasMatch "^/([a-z0-9-]+)/echo(/.*)?$" "{root}/cgi/hits.py$2"\n'
    c += extra
    for path, rules in locations.items():
        c += "<Location %s>\nAuthType eid\n%s\n</Location>\n" % (path, rules)
    if vhost:
        c += vhost
    h = Httpd(c, name=name, port=port)
    write_keys(h.root, *keys)
    with open(os.path.join(h.root, "secret"), "w") as f:
        f.write("portal-secret\n")
    hits = os.path.join(h.root, "cgi", "hits.py")
    with open(hits, "w") as f:
        f.write(HITS_CGI)
    os.chmod(hits, 0o755)
    open(os.path.join(h.root, "hits.log"), "w").close()
    os.chmod(os.path.join(h.root, "hits.log"), 0o666)
    h.redirect_uri = ru
    register(op, h)
    return h


def register(op, h, *more_uris, profile="inera"):
    base = "https://localhost:%d" % h.port
    op.admin("/admin/clients", {
        "profile": profile,
        "client_id": "portal", "client_secret": "portal-secret",
        "redirect_uris": [base + "/.eid/callback"] + list(more_uris),
        "post_logout_redirect_uris": [base + "/.eid/logged-out"],
        "backchannel_logout_uri": base + "/.eid/backchannel-logout",
        "backchannel_ca_file": CA})


def browser():
    s = requests.Session()
    s.verify = CA
    s.trust_env = False  # no proxy, no REQUESTS_CA_BUNDLE from the environment
    s.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
    s.headers["Accept-Language"] = "en"
    return s


def login(h, op, b, path, user="nurse", expect_ok=True):
    """Follow a protected URL through the OP (auto-login as `user`) back to
    the module; returns the last response (the protected page when ok)."""
    op.admin("/admin/auto-login", {"user": user})
    r = b.get(h.url(path), allow_redirects=False, timeout=20)
    hops = 0
    while r.status_code in (301, 302, 303) and hops < 8:
        loc = urllib.parse.urljoin(r.url, r.headers["Location"])
        r = b.get(loc, allow_redirects=False, timeout=20)
        hops += 1
    if expect_ok:
        assert r.status_code == 200, (r.status_code, r.headers, r.text[:500])
    return r


def cookies(b, prefix):
    return [c for c in b.cookies if c.name.startswith(prefix)]


def hits(h):
    with open(os.path.join(h.root, "hits.log")) as f:
        return f.read().splitlines()


def children(pid):
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.add(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return out


def graceful(h, timeout=20):
    """Graceful restart (SIGUSR1): the configuration (and the key file) is
    read again, the shm store is kept; returns when every old child is gone
    and the new ones listen."""
    import signal
    import socket
    import time
    before = children(h.proc.pid)
    h.proc.send_signal(signal.SIGUSR1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = children(h.proc.pid)
        if not (now & before) and len(now) >= 1:
            try:
                with socket.create_connection(("127.0.0.1", h.port), timeout=0.2):
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError("graceful restart did not finish")


# ---- fixtures and helpers of test_login.py, test_session_cookies.py, test_logout.py

LOCS = {
    "/app/": "EidMethods oidc\nRequire valid-user",
    "/mixed/": "EidMethods bearer oidc\nEidRealm portal\nRequire valid-user",
    "/loa3/": "EidMethods oidc\nRequire eid-loa 3",
    "/min3/": "EidMethods oidc\nEidLoginLoA 3\nRequire valid-user",
    "/nurse/": "EidMethods oidc\nRequire eid-hsa-id SE2321000016-P0001N",
}


@pytest.fixture(scope="module")
def op():
    o = start_op()
    yield o
    stop_op(o)


@pytest.fixture(scope="module")
def srv(op):
    h = make_httpd(op, LOCS, extra="EidReturnAllow https://portal.example\n")
    h.start()
    yield h
    h.stop()
    h.cleanup()


@pytest.fixture
def fresh(op, srv, logcheck):
    """A clean OP (switches reset) and log check for each test."""
    op.admin("/admin/login-behaviour", {"reset": True})
    op.admin("/admin/auto-login", {"user": "nurse"})
    register(op, srv)  # other tests' servers register their own callback
    logcheck(srv)
    return srv


def follow(b, r, hops=8):
    """Follow redirects by hand (the jar sees every Set-Cookie); the last answer."""
    while r.status_code in (301, 302, 303) and hops:
        r = b.get(urllib.parse.urljoin(r.url, r.headers["Location"]), allow_redirects=False,
                  timeout=20)
        hops -= 1
    return r


def session_cookie(b):
    c = cookies(b, "__Host-eid-session")
    return c[0].value if c else None


def logged_in(op, srv, user="nurse", path="/app/echo/x"):
    b = browser()
    r = login(srv, op, b, path, user=user)
    assert r.json()["EID_METHOD"] == "oidc"
    return b


def raw_cookie_get(srv, path, cookie_header):
    return requests.get(srv.url(path), headers={"Cookie": cookie_header, "Accept": "text/html"},
                        verify=CA, allow_redirects=False, timeout=20)


def start_login(srv, b, path="/app/echo/x"):
    """The 302 to the OP and the authorize URL's parameters."""
    r = b.get(srv.url(path), allow_redirects=False, timeout=20)
    assert r.status_code == 302, r.status_code
    return r, urllib.parse.parse_qs(urllib.parse.urlparse(r.headers["Location"]).query)


def op_callback(op, b, r):
    """The OP's redirect back (auto-login): the callback URL, not yet followed."""
    r2 = b.get(r.headers["Location"], allow_redirects=False, timeout=20)
    assert r2.status_code == 302, r2.text[:300]
    assert "/.eid/callback?" in r2.headers["Location"]
    return r2.headers["Location"]


@pytest.fixture
def own(op, logcheck):
    """A server of the test's own (it restarts it), with a second virtual host."""
    made = []

    def make(extra="", vhost_port=None):
        vh = ""
        if vhost_port:
            vh = ("Listen 127.0.0.1:%d\n<VirtualHost 127.0.0.1:%d>\nServerName localhost\n"
                  "SSLEngine on\nSSLCertificateFile {pki}/server/localhost.pem\n"
                  "SSLCertificateKeyFile {pki}/server/localhost.key\n"
                  "EidRedirectURI https://localhost:%d/.eid/callback\n"
                  'ScriptAliasMatch "^/([a-z0-9-]+)/echo(/.*)?$" "{root}/cgi/hits.py$2"\n'
                  "<Location /app/>\nAuthType eid\nEidMethods oidc\nRequire valid-user\n"
                  "</Location>\n</VirtualHost>\n" % (vhost_port, vhost_port, vhost_port))
        h = make_httpd(op, {"/app/": "EidMethods oidc\nRequire valid-user"}, extra=extra,
                       name="own", vhost=vh)
        made.append(h)
        os.makedirs(os.path.join(h.root, "locks"))
        h.start()
        logcheck(h)
        return h

    yield make
    op.admin("/admin/login-behaviour", {"reset": True})
    for h in made:
        h.stop()
        h.cleanup()
