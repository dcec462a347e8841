"""Browser login with OpenID Connect (issue 10): the directives and what
`apachectl -t` refuses; the login flow end to end through the real test OP
(tests/op) with a cookie jar."""


import json
import os
import re
import time
import urllib.parse

import pytest
import requests

from eidtest import Httpd
from loginkit import (CA, browser, cookies, fresh, follow, hits, logged_in, login,  # noqa: F401
                      make_httpd, op, op_callback, raw_cookie_get, register, session_cookie,
                      srv, start_login)


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


LOGIN_A = ("EidProvider a issuer=https://a.example discovery=on claims=inera login=on "
           "client_id=portal client_secret_file={root}/session.key\n")


LOGIN_B = ("EidProvider b issuer=https://b.example discovery=on claims=oidc-sweden login=on "
           "client_id=portal client_secret_file={root}/session.key\n")


LOC_OIDC = "<Location /app/>\nAuthType eid\nEidMethods oidc\nRequire valid-user\n</Location>\n"


BAD = [
    ("EidSessionKeyFile", "EidSessionKeyFile /nonexistent/session.key", r"EidSessionKeyFile"),
    ("EidSessionKeyFile", "<VirtualHost 127.0.0.1:9>\nEidSessionKeyFile {root}/session.key\n"
     "</VirtualHost>", r"EidSessionKeyFile|VirtualHost"),
    ("EidSessionStore", "EidSessionStore memcache://127.0.0.1", r"expected shm"),
    ("EidSessionStore", "EidSessionStore shm:12", r"EidSessionStore"),
    ("EidSessionStore", "EidSessionStore shm:lots", r"whole number"),
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
    # ... with a login provider, but no EidRedirectURI in its virtual host
    ("EidMethods", "EidSessionKeyFile {root}/session.key\n" + LOGIN_A + LOC_OIDC,
     r"no EidRedirectURI"),
    ("EidMethods", "EidSessionKeyFile {root}/session.key\n" + LOGIN_A +
     "<VirtualHost 127.0.0.1:9>\nEidRedirectURI https://a.example/.eid/callback\n"
     "</VirtualHost>\n<VirtualHost 127.0.0.1:10>\n" + LOC_OIDC + "</VirtualHost>",
     r"no EidRedirectURI"),
    # ... two login providers and none named
    ("EidMethods", "EidSessionKeyFile {root}/session.key\n" + LOGIN_A + LOGIN_B +
     "EidRedirectURI https://localhost/.eid/callback\n" + LOC_OIDC,
     r"names no login provider, and 2 are defined"),
    # a provider without login=on named as a login provider
    ("EidLoginProviders", "EidSessionKeyFile {root}/session.key\n" + LOGIN_A +
     "EidProvider api issuer=https://api.example audience=api://x "
     "jwks_uri=https://api.example/jwks\nEidRedirectURI https://localhost/.eid/callback\n"
     "<Location /app/>\nAuthType eid\nEidMethods oidc\nEidLoginProviders a api\n"
     "Require valid-user\n</Location>\n", r"provider 'api' has no login=on"),
]


GOOD = [
    # one login provider: the default of every oidc location
    "EidSessionKeyFile {root}/session.key\n" + LOGIN_A +
    "EidRedirectURI https://localhost/.eid/callback\n" + LOC_OIDC,
    # two, named by the virtual host or the location
    "EidSessionKeyFile {root}/session.key\n" + LOGIN_A + LOGIN_B +
    "<VirtualHost 127.0.0.1:9>\nEidRedirectURI https://a.example/.eid/callback\n"
    "EidLoginProviders a\n" + LOC_OIDC + "</VirtualHost>",
    "EidSessionKeyFile {root}/session.key\n" + LOGIN_A + LOGIN_B +
    "EidRedirectURI https://localhost/.eid/callback\n<Location /app/>\nAuthType eid\n"
    "EidMethods oidc cert\nEidLoginProviders a b\nRequire valid-user\n</Location>\n",
]


@pytest.mark.parametrize("body", GOOD, ids=range(len(GOOD)))
def test_login_config_accepted(body):
    r, _, _ = configtest(body)
    assert r.returncode == 0, r.stderr


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
    r, _, _ = configtest("EidSessionKeyFile {root}/session.key\nEidSessionStore shm:4194304\n"
                         "EidSessionIdleTimeout 600\nEidSessionMaxAge 7200\n"
                         "EidRedirectURI https://localhost/.eid/callback\n"
                         "EidReturnAllow https://portal.example https://x.example:8443\n"
                         "EidLogoutRedirectAllow https://portal.example\n",
                         keys=(KEY_A, KEY_B))
    assert r.returncode == 0, r.stderr


# ---- the flow, end to end (cookies: test_session_cookies.py; logout: test_logout.py)


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
                    {"Authorization": "Basic Zm9vOmJhcg=="},
                    {"Accept": "*/*", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
                    {"Accept": "text/html", "Sec-Fetch-Mode": "navigate",
                     "Sec-Fetch-Dest": "iframe"}):
        r = requests.get(fresh.url("/app/echo/api"), headers=headers, verify=CA,
                         allow_redirects=False, timeout=20)
        assert r.status_code == 401, headers
        assert "Location" not in r.headers and "Set-Cookie" not in r.headers
    r = requests.post(fresh.url("/app/echo/api"), data="x", verify=CA, allow_redirects=False,
                      timeout=20, headers={"Accept": "text/html"})
    assert r.status_code == 401 and "Location" not in r.headers
    # a top-level navigation (fetch metadata of a browser) is sent to log in
    r = requests.get(fresh.url("/app/echo/api"), verify=CA, allow_redirects=False, timeout=20,
                     headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate",
                              "Sec-Fetch-Dest": "document"})
    assert r.status_code == 302
    # bearer allowed: the challenge
    r = requests.get(fresh.url("/mixed/echo/api"), headers={"Accept": "application/json"},
                     verify=CA, allow_redirects=False, timeout=20)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # ... and a browser there is sent to log in
    r = requests.get(fresh.url("/mixed/echo/api"), headers={"Accept": "text/html"},
                     verify=CA, allow_redirects=False, timeout=20)
    assert r.status_code == 302


def test_callback_replays_refused(op, fresh):
    b = browser()
    r, _ = start_login(fresh, b)
    cb = op_callback(op, b, r)
    saved = {c.name: c.value for c in b.cookies if c.name.startswith("__Host-eid-st-")}
    assert b.get(cb, allow_redirects=False, timeout=20).status_code == 303
    # the same callback, with the state cookie put back, and no session: state used twice
    b2 = browser()
    for k, v in saved.items():
        b2.cookies.set(k, v, domain="localhost.local", path="/")
    r = b2.get(cb, allow_redirects=False, timeout=20)
    assert r.status_code == 400 and "Location" not in r.headers
    assert not session_cookie(b2)
    # the code with a fresh state of another login (the OP set to redeem codes twice)
    op.admin("/admin/login-behaviour", {"replay_code": True})
    b3 = browser()
    r, q = start_login(fresh, b3)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(cb).query)["code"][0]
    forged = fresh.url("/.eid/callback?" + urllib.parse.urlencode(
        {"code": code, "state": q["state"][0], "iss": op.issuer}))
    r = b3.get(forged, allow_redirects=False, timeout=20)
    assert r.status_code == 400 and not session_cookie(b3)
    fresh.expect_log(r"EID08110")


def test_callback_without_matching_state_cookie(op, fresh):
    b = browser()
    r, _ = start_login(fresh, b)
    cb = op_callback(op, b, r)
    b.cookies.clear()  # another browser (CSRF: the attacker's callback URL)
    r = b.get(cb, allow_redirects=False, timeout=20)
    assert r.status_code == 400 and not session_cookie(b)
    assert "text/html" in r.headers["Content-Type"]
    fresh.expect_log(r"EID08112")


def test_op_error_is_a_page_without_its_text(op, fresh):
    b = browser()
    r, q = start_login(fresh, b)
    evil = "<script>alert(1)</script>"
    url = fresh.url("/.eid/callback?" + urllib.parse.urlencode(
        {"error": "access_denied", "error_description": evil, "state": q["state"][0]}))
    r = b.get(url, allow_redirects=False, timeout=20)
    assert r.status_code == 403 and evil not in r.text and "alert(1)" not in r.text
    assert not session_cookie(b)
    fresh.expect_log(r"EID08116")


# each OP misbehaviour: the documented outcome (docs/login.md), never a session


MISBEHAVIOUR = [
    ({"id_token": ["bad-signature"]}, 403),
    ({"id_token": ["wrong-iss"]}, 403),
    ({"id_token": ["wrong-aud"]}, 403),
    ({"id_token": ["wrong-azp"]}, 403),
    ({"id_token": ["wrong-nonce"]}, 403),
    ({"id_token": ["no-nonce"]}, 403),
    ({"id_token": ["at_hash-mismatch"]}, 403),
    ({"id_token": ["expired"]}, 403),
    ({"id_token": ["iat-in-future"]}, 403),
    ({"id_token": ["alg-none"]}, 403),
    ({"id_token": ["unknown-kid"]}, (403, 503)),
    ({"authorize": "access_denied"}, 403),
    ({"authorize": "server_error"}, 403),
    ({"token": "500"}, 503),
    ({"token": "slow", "slow_seconds": 5}, 503),  # past the provider's fetch_timeout=3
    ({"token": "malformed"}, (403, 503)),
    ({"token": "no-id-token"}, 403),
    ({"authorize": "iss-param-wrong"}, 403),  # RFC 9207 mix-up
    ({"id_token": ["acr-missing"], "path": "/min3/echo/m"}, 403),  # level 3 asked
    ({"id_token": ["acr-wrong"], "path": "/min3/echo/m"}, 403),
    ({"id_token": ["acr-missing"]}, 200),  # no level asked: admitted, at level 0
    ({"authorize": "iss-param-missing"}, 200),  # optional: the ID token's iss decides
    ({"id_token": ["es256"]}, 403),  # valid, but algs= is RS256 (the default) here
]


@pytest.mark.parametrize("switch,status", MISBEHAVIOUR, ids=[json.dumps(m[0]) for m in MISBEHAVIOUR])
def test_op_misbehaviour_refused(op, fresh, switch, status):
    switch = dict(switch)
    path = switch.pop("path", "/app/echo/x")
    op.admin("/admin/login-behaviour", switch)
    b = browser()
    r, _ = start_login(fresh, b, path)
    r = follow(b, r)
    expected = status if isinstance(status, tuple) else (status,)
    assert r.status_code in expected, (r.status_code, r.text[:300])
    if r.status_code == 200:
        assert r.json()["EID_METHOD"] == "oidc" and session_cookie(b)
        if "acr-missing" in json.dumps(switch):
            assert r.json().get("EID_LOA", "0") == "0"
        return
    assert "text/html" in r.headers["Content-Type"]
    assert not session_cookie(b)
    fresh.expect_log(r"EID07\d{3}", r"EID081\d\d", r"EID08210", r"EID036\d\d")


def test_userinfo_sub_mismatch_refused(op, srv, logcheck):
    h = make_httpd(op, {"/app/": "EidMethods oidc\nRequire valid-user"}, name="userinfo",
                   provider_opts="userinfo=on")
    op.admin("/admin/login-behaviour", {"reset": True, })
    try:
        h.start()
        logcheck(h)
        b = logged_in(op, h)
        assert session_cookie(b)
        op.admin("/admin/login-behaviour", {"userinfo": "sub-mismatch"})
        b = browser()
        r = login(h, op, b, "/app/echo/x", expect_ok=False)
        assert r.status_code == 403 and not session_cookie(b)
        h.expect_log(r"EID074\d\d")
    finally:
        op.admin("/admin/login-behaviour", {"reset": True})
        register(op, srv)
        h.stop()
        h.cleanup()


@pytest.fixture(scope="module")
def uinfo_srv(op):
    """A server whose provider asks userinfo (userinfo=on)."""
    h = make_httpd(op, {"/app/": "EidMethods oidc\nRequire valid-user"}, name="userinfo-jws",
                   provider_opts="userinfo=on")
    h.start()
    yield h
    h.stop()
    h.cleanup()


@pytest.fixture
def uinfo(op, srv, uinfo_srv, logcheck):
    op.admin("/admin/login-behaviour", {"reset": True})
    op.admin("/admin/auto-login", {"user": "nurse"})
    register(op, uinfo_srv)
    logcheck(uinfo_srv)
    yield uinfo_srv
    op.admin("/admin/login-behaviour", {"reset": True})
    register(op, srv)  # the module's server gets its callback back


@pytest.mark.parametrize("mode", ["ok", "signed"])
def test_userinfo_claims_exported(op, uinfo, mode):
    """An ID token with sub and the protocol claims only: the identity comes from the
    userinfo answer, plain JSON or signed (Core 5.3.2, verified with the provider's keys)."""
    op.admin("/admin/login-behaviour", {"id_token": ["minimal"], "userinfo": mode})
    r = login(uinfo, op, browser(), "/app/echo/x")
    env = r.json()
    assert env["EID_METHOD"] == "oidc"
    assert env["EID_HSA_ID"] == "SE2321000016-P0001N"
    assert env["EID_GIVEN_NAME"] == "Tolvan"
    assert op.records("userinfo")[-1]["result"] == "ok"


# A signed answer failing verification is refused like a bad ID token (invalid: the
# refusal page, 403); an encrypted one cannot be read (no decryption key): misconfigured.
# The log line names the verifier's own tag after EID07407.
SIGNED_BAD = [
    ("signed-badsig", 403, r"EID07407.*EID03205"),
    ("signed-alg-none", 403, r"EID07407.*EID031\d\d"),
    ("signed-wrong-iss", 403, r"EID07407.*EID03302"),
    ("signed-wrong-aud", 403, r"EID07407.*EID03305"),
    ("signed-no-iss-aud", 403, r"EID07408"),
    ("encrypted", 500, r"EID07403.*encrypted"),
]


@pytest.mark.parametrize("mode,status,tag", SIGNED_BAD, ids=[m[0] for m in SIGNED_BAD])
def test_userinfo_signed_refused(op, uinfo, mode, status, tag):
    op.admin("/admin/login-behaviour", {"userinfo": mode})
    b = browser()
    before = len(hits(uinfo))
    r = login(uinfo, op, b, "/app/echo/x", expect_ok=False)
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert "text/html" in r.headers["Content-Type"]
    assert not session_cookie(b)
    assert len(hits(uinfo)) == before  # the application never saw the request
    uinfo.expect_log(tag)
    log = uinfo.read_error_log()[uinfo._mark:]
    assert re.search(tag, log), log[-2000:]


@pytest.mark.parametrize("target", [
    "//evil.example/", "/\\evil.example", "/%5cevil.example", "https://evil.example/",
    "http:evil.example", "javascript:alert(1)", "/%2f%2fevil.example", " /x",
    "/x\r\nSet-Cookie: a=b", "https://localhost@evil.example/"])


def test_open_redirect_refused(op, fresh, target):
    b = browser()
    r = b.get(fresh.url("/.eid/login?provider=op&return=" + urllib.parse.quote(target, safe="")),
              allow_redirects=False, timeout=20)
    assert r.status_code == 400 and "Location" not in r.headers
    assert not cookies(b, "__Host-eid-st-")
    r = b.get(fresh.url("/.eid/choose?return=" + urllib.parse.quote(target, safe="")),
              allow_redirects=False, timeout=20)
    assert r.status_code == 400 and "evil" not in r.text
    fresh.expect_log(r"EID08105", r"EID08106")


def test_login_endpoint_returns_to_local_path(op, fresh):
    b = browser()
    r = b.get(fresh.url("/.eid/login?provider=op&return=%2Fapp%2Fecho%2Fback%3Fa%3D1"),
              allow_redirects=False, timeout=20)
    assert r.status_code == 302
    r = follow(b, r)
    assert r.status_code == 200 and r.url == fresh.url("/app/echo/back?a=1")


def test_step_up_by_require_eid_loa(op, fresh):
    b = logged_in(op, fresh, user="lowlevel")
    low = session_cookie(b)
    assert b.get(fresh.url("/app/echo/s"), timeout=20).json()["EID_LOA"] == "2"
    # a level 3 page: the browser is sent to log in at level 3, not refused
    r = b.get(fresh.url("/loa3/echo/s"), allow_redirects=False, timeout=20)
    assert r.status_code == 302 and "/.eid/login?loa=3" in r.headers["Location"]
    r = b.get(r.headers["Location"], allow_redirects=False, timeout=20)
    assert r.status_code == 302
    q = urllib.parse.parse_qs(urllib.parse.urlparse(r.headers["Location"]).query)
    assert "loa3" in q["acr_values"][0] and "loa2" not in q["acr_values"][0]
    # the old session stays until the new login completes
    assert raw_cookie_get(fresh, "/app/echo/s", "__Host-eid-session=" + low).status_code == 200
    op.admin("/admin/auto-login", {"user": "nurse"})
    r = follow(b, r)
    assert r.status_code == 200 and r.json()["EID_LOA"] == "3"
    assert r.url == fresh.url("/loa3/echo/s")
    # ... and then it is gone: replaced, not kept
    assert session_cookie(b) != low
    assert raw_cookie_get(fresh, "/app/echo/s", "__Host-eid-session=" + low).status_code == 302
    # an API client with a low session: 403, no redirect
    b2 = logged_in(op, fresh, user="lowlevel")
    r = b2.get(fresh.url("/loa3/echo/s"), headers={"Accept": "application/json"},
               allow_redirects=False, timeout=20)
    assert r.status_code == 403 and "Location" not in r.headers
    fresh.expect_log(r"EID01101", r"AH01630")


def test_step_up_by_login_loa_and_level_too_low(op, fresh):
    b = logged_in(op, fresh, user="lowlevel")
    r = b.get(fresh.url("/min3/echo/s"), allow_redirects=False, timeout=20)
    assert r.status_code == 302 and "/authorize?" in r.headers["Location"]
    assert "acr_values=" in r.headers["Location"]
    # the user cannot do better than level 2: refused (level), the old session stays
    r = follow(b, r)
    assert r.status_code == 403 and "text/html" in r.headers["Content-Type"]
    assert b.get(fresh.url("/app/echo/s"), timeout=20).json()["EID_LOA"] == "2"
    r = b.get(fresh.url("/min3/echo/s"), headers={"Accept": "application/json"},
              allow_redirects=False, timeout=20)
    assert r.status_code == 403
    fresh.expect_log(r"EID07\d{3}", r"EID08206")


def test_first_login_asks_for_the_level_require_eid_loa_needs(op, fresh):
    b = browser()
    r = b.get(fresh.url("/loa3/echo/first"), allow_redirects=False, timeout=20)
    assert r.status_code == 302 and r.headers["Location"].startswith(op.issuer)
    q = urllib.parse.parse_qs(urllib.parse.urlparse(r.headers["Location"]).query)
    assert "loa3" in q["acr_values"][0] and "loa2" not in q["acr_values"][0]
    r = follow(b, r)
    assert r.status_code == 200 and r.json()["EID_LOA"] == "3"


def test_redirects_never_follow_a_forged_host_header(op, fresh):
    b = logged_in(op, fresh, user="lowlevel")
    forged = {"Host": "evil.example:%d" % fresh.port, "Accept": "text/html"}
    # (requests picks jar cookies by the Host header: the cookie goes explicitly)
    r = requests.get(fresh.url("/loa3/echo/h"), allow_redirects=False, timeout=20, verify=CA,
                     headers=dict(forged, Cookie="__Host-eid-session=" + session_cookie(b)))
    assert r.status_code == 302
    assert r.headers["Location"].startswith(fresh.url("/.eid/login?")), r.headers["Location"]
    # the callback's way back, too
    b2 = browser()
    r, _ = start_login(fresh, b2, "/app/echo/h2")
    cb = op_callback(op, b2, r)
    st = "; ".join("%s=%s" % (c.name, c.value) for c in cookies(b2, "__Host-eid-st-"))
    r = requests.get(cb, headers=dict(forged, Cookie=st), allow_redirects=False, timeout=20,
                     verify=CA)
    assert r.status_code == 303 and r.headers["Location"] == fresh.url("/app/echo/h2")
    fresh.expect_log(r"EID01101", r"AH01630")


def test_return_to_an_allowed_origin(op, fresh):
    b = browser()
    r = b.get(fresh.url("/.eid/login?provider=op&return=https%3A%2F%2Fportal.example%2Fx%3Fy"),
              allow_redirects=False, timeout=20)
    assert r.status_code == 302
    cb = op_callback(op, b, r)
    r = b.get(cb, allow_redirects=False, timeout=20)
    assert r.status_code == 303 and r.headers["Location"] == "https://portal.example/x?y"
    # another origin is not allowed, nor the allowed host on another port
    for t in ("https://portal.example.evil/x", "https://portal.example:444/x"):
        r = b.get(fresh.url("/.eid/login?provider=op&return=" + urllib.parse.quote(t, safe="")),
                  allow_redirects=False, timeout=20)
        assert r.status_code == 400, t
    fresh.expect_log(r"EID08105")


def test_two_providers_choice_page(op, srv, logcheck):
    from loginkit import start_op, stop_op
    op2 = start_op("sweden")
    extra = ("EidProvider op2 issuer=%s discovery=on claims=oidc-sweden login=on "
             "client_id=portal client_secret_file={root}/secret\n" % op2.issuer)
    h = make_httpd(op, {"/both/": "EidMethods oidc\nEidLoginProviders op op2\n"
                                  "Require valid-user",
                        "/staff/": "EidMethods oidc\nEidLoginProviders op\nRequire valid-user"},
                   extra=extra, name="two")
    register(op2, h, profile="oidc-sweden")
    try:
        h.start()
        logcheck(h)
        op2.admin("/admin/auto-login", {"user": "citizen"})
        b = browser()
        r = b.get(h.url("/both/echo/c"), allow_redirects=False, timeout=20)
        assert r.status_code == 302 and "/.eid/choose?" in r.headers["Location"]
        assert r.headers["Location"].startswith(h.url("/.eid/choose?"))
        assert not cookies(b, "__Host-eid-st-")  # nothing started yet
        page = b.get(r.headers["Location"], allow_redirects=False, timeout=20)
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
        links = re.findall(r'href="(/\.eid/login\?[^"]+)"', page.text)
        assert len(links) == 2, page.text
        link = [x for x in links if "provider=op2" in x][0].replace("&amp;", "&")
        r = b.get(h.url(link), allow_redirects=False, timeout=20)
        assert r.status_code == 302 and r.headers["Location"].startswith(op2.issuer)
        r = follow(b, r)
        assert r.status_code == 200 and r.url == h.url("/both/echo/c")
        assert r.json()["EID_PROFILE"] == "op2", r.json()
        assert r.json()["EID_PNR"] == "198004122381", r.json()
        # a session of op2 is not a credential where only op is offered
        r = b.get(h.url("/staff/echo/c"), allow_redirects=False, timeout=20)
        assert r.status_code == 302 and r.headers["Location"].startswith(op.issuer)
        # /login without a provider: the choice
        r = b.get(h.url("/.eid/login?return=%2Fboth%2F"), allow_redirects=False, timeout=20)
        assert r.status_code == 302 and "/.eid/choose?" in r.headers["Location"]
    finally:
        h.stop()
        h.cleanup()
        stop_op(op2)
        register(op, srv)
