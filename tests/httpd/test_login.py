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
    ("EidSessionStore", "EidSessionStore redis://127.0.0.1", r"expected shm"),
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
    r, _, _ = configtest("EidSessionKeyFile {root}/session.key\nEidSessionStore shm:4194304\n"
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

from loginkit import (CA, browser, cookies, hits, login, make_httpd, register,  # noqa: E402
                      start_op, stop_op)

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


def logged_in(op, srv, user="nurse", path="/app/echo/x"):
    b = browser()
    r = login(srv, op, b, path, user=user)
    assert r.json()["EID_METHOD"] == "oidc"
    return b


def raw_cookie_get(srv, path, cookie_header):
    return requests.get(srv.url(path), headers={"Cookie": cookie_header, "Accept": "text/html"},
                        verify=CA, allow_redirects=False, timeout=20)


def test_session_cookie_tampering_is_no_session(op, fresh):
    b = logged_in(op, fresh)
    good = session_cookie(b)
    assert raw_cookie_get(fresh, "/app/echo/t", "__Host-eid-session=" + good).status_code == 200
    bad = {
        "garbage": "!!notbase64!!",
        "truncated": good[:-1],
        "extended": good + "A",
        "flipped": ("B" if good[0] != "B" else "C") + good[1:],
        "oversized": "A" * 6000,
        "padded": good + "=",
        "quoted-space": '" %s"' % good[1:],
    }
    for name, v in bad.items():
        r = raw_cookie_get(fresh, "/app/echo/t", "__Host-eid-session=" + v)
        assert r.status_code == 302, name  # no session: sent to log in, never a 500
        assert "/authorize?" in r.headers["Location"], name
    # duplicated (a planted one next to the real one): no session
    r = raw_cookie_get(fresh, "/app/echo/t", "__Host-eid-session=%s; __Host-eid-session=%s"
                       % (good, "A" * 43))
    assert r.status_code == 302
    r = raw_cookie_get(fresh, "/app/echo/t", "__Host-eid-session=%s; __Host-eid-session=%s"
                       % (good, good))
    assert r.status_code == 302
    fresh.expect_log(r"EID08201", r"EID08202")


def test_session_fixation_impossible(op, fresh):
    planted = "Q" * 42 + "A"  # a well-formed id the attacker chose
    b = browser()
    b.cookies.set("__Host-eid-session", planted, domain="localhost.local", path="/")
    r = login(fresh, op, b, "/app/echo/fix")
    new = session_cookie(b)
    assert new and new != planted
    assert raw_cookie_get(fresh, "/app/echo/t", "__Host-eid-session=" + planted).status_code == 302
    # the real session of the user, from before, does not survive a new login either
    old = new
    r = login(fresh, op, b, "/.eid/login?provider=op&return=/app/echo/again")
    assert session_cookie(b) != old
    assert raw_cookie_get(fresh, "/app/echo/t", "__Host-eid-session=" + old).status_code == 302


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
    ({"token": "malformed"}, (403, 503)),
    ({"token": "no-id-token"}, 403),
]


@pytest.mark.parametrize("switch,status", MISBEHAVIOUR, ids=[json.dumps(m[0]) for m in MISBEHAVIOUR])
def test_op_misbehaviour_refused(op, fresh, switch, status):
    op.admin("/admin/login-behaviour", switch)
    b = browser()
    r, _ = start_login(fresh, b)
    r = follow(b, r)
    expected = status if isinstance(status, tuple) else (status,)
    assert r.status_code in expected, (r.status_code, r.text[:300])
    assert "text/html" in r.headers["Content-Type"]
    assert not session_cookie(b)
    fresh.expect_log(r"EID07\d{3}", r"EID081\d\d", r"EID08210")


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


def test_many_tabs_cap_state_cookies_and_one_session(op, fresh):
    b = browser()

    def first(i):
        return b.get(fresh.url("/app/echo/tab%d" % i), allow_redirects=False, timeout=20)

    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        answers = list(ex.map(first, range(10)))
    assert all(a.status_code == 302 for a in answers)
    assert 1 <= len(cookies(b, "__Host-eid-st-")) <= 4
    # five more, one after the other (each sees the cookies): still at most four
    for i in range(5):
        answers.append(first(10 + i))
        assert answers[-1].status_code == 302
        assert len(cookies(b, "__Host-eid-st-")) <= 4
    # every tab comes back from the OP (a tab whose state cookie a later one
    # took gets the expired page, or the site once a session exists); one
    # session in the end
    done = []
    for a in answers:
        r = follow(b, a)
        done.append(r.status_code)
    assert 200 in done
    assert all(s in (200, 400) for s in done), done
    assert len(cookies(b, "__Host-eid-session")) == 1
    r = b.get(fresh.url("/app/echo/after"), allow_redirects=False, timeout=20)
    assert r.status_code == 200
    fresh.expect_log(r"EID08112", r"EID08110")


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


def test_logout_rp_initiated(op, fresh):
    b = logged_in(op, fresh)
    sid = session_cookie(b)
    r = b.get(fresh.url("/.eid/logout"), allow_redirects=False, timeout=20)
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"]
    m = re.search(r'name="csrf" value="([A-Za-z0-9_-]{43})"', r.text)
    assert m, r.text
    # a GET never logs out; a POST without (or with a wrong) token does not either
    assert b.get(fresh.url("/app/echo/s"), timeout=20).status_code == 200
    for data in ({}, {"csrf": "A" * 43}, {"csrf": m.group(1)[:-1]}):
        r = b.post(fresh.url("/.eid/logout"), data=data, allow_redirects=False, timeout=20)
        assert r.status_code == 403
    assert b.get(fresh.url("/app/echo/s"), allow_redirects=False, timeout=20).status_code == 200
    r = b.post(fresh.url("/.eid/logout"), data={"csrf": m.group(1)}, allow_redirects=False,
               timeout=20)
    assert r.status_code == 303
    loc = r.headers["Location"]
    assert loc.startswith(op.issuer + "/end_session?")
    q = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)
    assert q["post_logout_redirect_uri"] == [fresh.url("/.eid/logged-out")]
    assert q["id_token_hint"][0].count(".") == 2
    assert not session_cookie(b)  # cleared
    r = follow(b, r)
    assert r.status_code == 200 and r.url == fresh.url("/.eid/logged-out")
    # the old cookie is dead everywhere
    assert raw_cookie_get(fresh, "/app/echo/s", "__Host-eid-session=" + sid).status_code == 302
    recs = fresh.wait_audit("/.eid/logout", 5)
    assert any(a.get("reason") == "logout" for a in recs)
    fresh.expect_log(r"EID08301")


def test_backchannel_logout(op, fresh):
    b = logged_in(op, fresh)
    sess = op.admin("/admin/sessions", method="GET")["sessions"]
    mine = [s for s in sess if s["user"] == "nurse"][-1]
    # hostile logout tokens: 400, the session stays
    for variant in ("bad-signature", "with-nonce", "no-events", "wrong-aud", "wrong-iss",
                    "old-iat", "alg-none"):
        a = op.admin("/admin/backchannel", {"client": "portal", "sid": mine["sid"],
                                            "variant": variant})
        assert a["status"] == 400, (variant, a)
        assert a["headers"].get("Cache-Control", a["headers"].get("cache-control")) == "no-store"
    assert b.get(fresh.url("/app/echo/s"), allow_redirects=False, timeout=20).status_code == 200
    a = op.admin("/admin/backchannel", {"client": "portal", "sid": mine["sid"]})
    assert a["status"] == 200, a
    r = b.get(fresh.url("/app/echo/s"), allow_redirects=False, timeout=20)
    assert r.status_code == 302  # the session ended: sent to log in again
    # the same token again: replay
    a = op.admin("/admin/backchannel", {"client": "portal", "sid": mine["sid"],
                                        "variant": "replay"})
    assert a["status"] == 400
    # by sub: every session of the user ends
    b1, b2 = logged_in(op, fresh), logged_in(op, fresh)
    a = op.admin("/admin/backchannel", {"client": "portal", "sub": "SE2321000016-P0001N"})
    assert a["status"] == 200
    for x in (b1, b2):
        assert x.get(fresh.url("/app/echo/s"), allow_redirects=False,
                     timeout=20).status_code == 302
    # not a POST form: 400 / 405
    r = requests.get(fresh.url("/.eid/backchannel-logout"), verify=CA, timeout=20)
    assert r.status_code == 405
    r = requests.post(fresh.url("/.eid/backchannel-logout"), data="logout_token=x",
                      verify=CA, timeout=20,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.headers["Cache-Control"] == "no-store"
    fresh.expect_log(r"EID075\d\d", r"EID08312", r"EID0831\d")


# ---- the store, keys and virtual hosts --------------------------------------------

from loginkit import KEY_A, KEY_B, graceful, write_keys  # noqa: E402


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
                  'ScriptAliasMatch "^/([a-z0-9-]+)/echo(/.*)?$" "{root}/cgi/hits.py$2"\n'
                  "<Location /app/>\nAuthType eid\nEidMethods oidc\nRequire valid-user\n"
                  "</Location>\n</VirtualHost>\n" % (vhost_port, vhost_port))
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


def test_store_failure_is_503_not_a_redirect(op, own):
    h = own("Mutex flock:{root}/locks eid-store\n")
    b = logged_in(op, h)
    cookie = session_cookie(b)
    # the store's lock file disappears: the new children cannot use the store
    for f in os.listdir(os.path.join(h.root, "locks")):
        os.unlink(os.path.join(h.root, "locks", f))
    graceful(h)
    for headers in ({"Accept": "text/html"}, {"Accept": "application/json"}):
        r = raw_cookie_get(h, "/app/echo/s", "__Host-eid-session=" + cookie)
        assert r.status_code == 503, r.status_code
        assert r.headers["Retry-After"] == "5"
        assert "Location" not in r.headers and "Set-Cookie" not in r.headers  # cookie kept
    h.expect_log(r"EID06205", r"EID08210", r"AH03490")


def test_key_rotation_previous_key_then_dropped(op, own):
    h = own()
    b1, b2 = logged_in(op, h), logged_in(op, h)
    c1, c2 = session_cookie(b1), session_cookie(b2)
    write_keys(h.root, KEY_B, KEY_A)  # new current key, the old one still opens
    graceful(h)
    r = raw_cookie_get(h, "/app/echo/s", "__Host-eid-session=" + c1)
    assert r.status_code == 200 and r.json()["EID_HSA_ID"] == "SE2321000016-P0001N"
    write_keys(h.root, KEY_B)  # the old key dropped
    graceful(h)
    # c1 was re-sealed under the new key on its use: it lives on
    assert raw_cookie_get(h, "/app/echo/s", "__Host-eid-session=" + c1).status_code == 200
    # c2 was not used meanwhile: sealed under a key that is gone, no session
    r = raw_cookie_get(h, "/app/echo/s", "__Host-eid-session=" + c2)
    assert r.status_code == 302
    h.expect_log(r"AH03490")


def test_session_of_another_virtual_host_is_no_session(op, own):
    from eidtest import free_port
    port2 = free_port()
    h = own(vhost_port=port2)
    b = logged_in(op, h)
    cookie = session_cookie(b)
    url2 = "https://localhost:%d/app/echo/s" % port2
    r = requests.get(url2, headers={"Cookie": "__Host-eid-session=" + cookie,
                                    "Accept": "text/html"},
                     verify=CA, allow_redirects=False, timeout=20)
    assert r.status_code == 302  # the same cookie is not a session there
    assert raw_cookie_get(h, "/app/echo/s", "__Host-eid-session=" + cookie).status_code == 200
