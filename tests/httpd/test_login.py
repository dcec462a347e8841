"""Browser login with OpenID Connect (issue 10): the directives and what
`apachectl -t` refuses; the login flow end to end through the real test OP
(tests/op) with a cookie jar."""
import os
import re

import pytest

from eidtest import Httpd

KEY_A = "11" * 32
KEY_B = "22" * 32


def write_key(root, *keys, mode=0o600, name="session.key"):
    path = os.path.join(root, name)
    with open(path, "w") as f:
        f.write("".join(k + "\n" for k in keys))
    os.chmod(path, mode)
    return path


def configtest(body, keys=(KEY_A,), mode=0o600):
    h = Httpd(body, name="logincfg")
    try:
        if keys is not None:
            write_key(h.root, *keys, mode=mode)
        r = h.configtest()
        return r, h.conf, open(h.conf).read().splitlines()
    finally:
        h.cleanup()


def assert_refused(body, directive, msg, **kw):
    r, conf, lines = configtest(body, **kw)
    assert r.returncode != 0, r.stderr
    m = re.search(r"line (\d+) of (\S+?):", r.stderr)
    assert m, r.stderr
    assert m.group(2) == conf
    assert directive in lines[int(m.group(1)) - 1], (r.stderr, lines[int(m.group(1)) - 1])
    assert re.search(msg, r.stderr), r.stderr


LOC_OIDC = "<Location /app/>\nAuthType eid\nEidMethods oidc\nRequire valid-user\n</Location>\n"

BAD = [
    ("EidSessionKeyFile", "EidSessionKeyFile /nonexistent/session.key", r"EidSessionKeyFile"),
    ("EidSessionKeyFile", "<VirtualHost 127.0.0.1:9>\nEidSessionKeyFile {root}/session.key\n"
     "</VirtualHost>", r"EidSessionKeyFile|VirtualHost"),
    ("EidSessionStore", "EidSessionStore redis://127.0.0.1", r"unknown store"),
    ("EidSessionStore", "EidSessionStore shm:12", r"65536"),
    ("EidSessionStore", "EidSessionStore shm:lots", r"65536"),
    ("EidSessionIdleTimeout", "EidSessionIdleTimeout 5", r"60 to"),
    ("EidSessionMaxAge", "EidSessionMaxAge forever", r"60 to"),
    ("EidRedirectURI", "EidRedirectURI /.eid/callback", r"absolute"),
    ("EidRedirectURI", "EidRedirectURI http://rp.example/.eid/callback", r"https"),
    ("EidRedirectURI", "EidRedirectURI https://user@rp.example/.eid/callback", r"absolute"),
    ("EidReturnAllow", "EidReturnAllow https://other.example/path", r"not an origin"),
    ("EidReturnAllow", "EidReturnAllow http://other.example", r"https"),
    ("EidLogoutRedirectAllow", "EidLogoutRedirectAllow javascript:alert(1)",
     r"not an origin"),
    ("EidLoginProviders", "<Location /x>\nEidLoginProviders nosuch\n</Location>",
     r"unknown provider 'nosuch'"),
    ("EidLoginProviders", "EidProvider api issuer=https://op.example audience=api://x "
     "jwks_uri=https://op.example/jwks\n<Location /x>\nEidLoginProviders api\n</Location>",
     r"no login=on"),
    ("EidLoginLoA", "<Location /x>\nEidLoginLoA 5\n</Location>", r"level from 1 to 4"),
    # a location with oidc and no session keys
    ("EidMethods", LOC_OIDC, r"EidSessionKeyFile"),
    # ... with keys, but no provider that logs users in
    ("EidMethods", "EidSessionKeyFile {root}/session.key\n" + LOC_OIDC,
     r"no EidProvider has login=on"),
]


@pytest.mark.parametrize("directive,snippet,msg", BAD, ids=[b[1][:40] for b in BAD])
def test_login_config_refused(directive, snippet, msg):
    assert_refused("# padding\n" + snippet, directive, msg)


@pytest.mark.parametrize("mode,keys,msg", [
    (0o644, (KEY_A,), r"readable|mode|permission"),
    (0o600, ("abc",), r"64|hex"),
    (0o600, (KEY_A, KEY_B, "33" * 32), r"line|two|lines"),
    (0o600, ("zz" * 32,), r"hex"),
])
def test_session_key_file_refused(mode, keys, msg):
    r, conf, lines = configtest("# padding\nEidSessionKeyFile {root}/session.key\n",
                                keys=keys, mode=mode)
    assert r.returncode != 0
    assert "EidSessionKeyFile" in r.stderr and re.search(msg, r.stderr), r.stderr
    # the key itself never appears in the message
    for k in keys:
        if len(k) == 64:
            assert k not in r.stderr


def test_login_settings_accepted():
    r, _, _ = configtest("EidSessionKeyFile {root}/session.key\nEidSessionStore shm:1048576\n"
                         "EidSessionIdleTimeout 600\nEidSessionMaxAge 7200\n"
                         "EidRedirectURI https://localhost/.eid/callback\n"
                         "EidReturnAllow https://portal.example https://x.example:8443\n"
                         "EidLogoutRedirectAllow https://portal.example\n",
                         keys=(KEY_A, KEY_B))
    assert r.returncode == 0, r.stderr


# ---- the flow, end to end -------------------------------------------------------

import concurrent.futures  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402

import requests  # noqa: E402

from loginkit import (CA, browser, cookies, hits, login, make_httpd, start_op,  # noqa: E402
                      stop_op)

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
    h = make_httpd(op, LOCS)
    h.start()
    yield h
    h.stop()
    h.cleanup()


@pytest.fixture
def fresh(op, srv, logcheck):
    """A clean OP (switches reset) and log check for each test."""
    op.admin("/admin/login-behaviour", {"reset": True})
    op.admin("/admin/auto-login", {"user": "nurse"})
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


def test_login_gives_identity_and_audit(op, fresh):
    b = browser()
    path = "/app/echo/login-" + str(time.time())
    r = b.get(fresh.url(path), allow_redirects=False, timeout=20)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(op.issuer + "/authorize?")
    q = urllib.parse.parse_qs(urllib.parse.urlparse(r.headers["Location"]).query)
    assert q["code_challenge_method"] == ["S256"] and len(q["state"][0]) == 43
    sc = [v for k, v in r.raw.headers.items() if k.lower() == "set-cookie"]
    assert len(sc) == 1 and sc[0].startswith("__Host-eid-st-")
    for attr in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=600"):
        assert attr in sc[0]
    r = follow(b, r)
    assert r.status_code == 200, r.text[:300]
    env = r.json()
    assert env["EID_METHOD"] == "oidc"
    assert env["EID_HSA_ID"] == "SE2321000016-P0001N"
    assert env["EID_LOA"] == "3" and env["REMOTE_USER"] == "SE2321000016-P0001N"
    assert r.url == fresh.url(path)  # back where the user started
    assert session_cookie(b) and len(session_cookie(b)) == 43
    assert not cookies(b, "__Host-eid-st-")  # the state cookie is cleared
    # the next request: the session, no OP round trip
    n = op.stats()["token_requests"]
    r = b.get(fresh.url(path), allow_redirects=False, timeout=20)
    assert r.status_code == 200 and r.json()["EID_HSA_ID"] == "SE2321000016-P0001N"
    assert op.stats()["token_requests"] == n
    recs = fresh.wait_audit("/.eid/callback", 1)
    assert recs and recs[-1]["decision"] == "allow" and recs[-1]["reason"] == "login"


def test_api_style_requests_get_401_never_a_redirect(fresh):
    for headers in ({"Accept": "application/json"}, {"X-Requested-With": "XMLHttpRequest"},
                    {"Authorization": "Basic Zm9vOmJhcg=="}):
        r = requests.get(fresh.url("/app/echo/api"), headers=headers, verify=CA,
                         allow_redirects=False, timeout=20)
        assert r.status_code == 401, headers
        assert "Location" not in r.headers and "Set-Cookie" not in r.headers
    r = requests.post(fresh.url("/app/echo/api"), data="x", verify=CA, allow_redirects=False,
                      timeout=20, headers={"Accept": "text/html"})
    assert r.status_code == 401 and "Location" not in r.headers
    # bearer allowed: the challenge
    r = requests.get(fresh.url("/mixed/echo/api"), headers={"Accept": "application/json"},
                     verify=CA, allow_redirects=False, timeout=20)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # ... and a browser there is sent to log in
    r = requests.get(fresh.url("/mixed/echo/api"), headers={"Accept": "text/html"},
                     verify=CA, allow_redirects=False, timeout=20)
    assert r.status_code == 302
