"""Attacks (review of 2026-12-05) on four paths changed that day: the
back-channel logout's pending jti marker, RP-initiated logout by POST
(end_session_method=post), the state cookies' byte budget, signed userinfo
(the last in tests/unit/test_oidc.c: test_userinfo_signed_attacks)."""
import base64
import concurrent.futures
import contextlib
import hashlib
import html
import os
import re
import time
import urllib.parse

import pytest
import requests

from loginkit import (CA, LOCS, browser, follow, fresh, logged_in, login, make_httpd,  # noqa: F401
                      op, op_callback, raw_cookie_get, register, session_cookie, srv,
                      start_login)
from test_redis_sessions import LOC, redis, status  # noqa: F401


@contextlib.contextmanager
def own_logged_in(op, logcheck, name, **kw):
    """An httpd of its own (make_httpd's keywords), the OP reset and this
    server registered, and a browser logged in there: (h, b); stopped after."""
    h = make_httpd(op, LOCS, name=name, **kw)
    h.start()
    logcheck(h)
    try:
        op.admin("/admin/login-behaviour", {"reset": True})
        op.admin("/admin/auto-login", {"user": "nurse"})
        register(op, h)
        yield h, logged_in(op, h)
    finally:
        h.stop()
        h.cleanup()


def bcl_post(h, tok):
    return requests.post(h.url("/.eid/backchannel-logout"), data={"logout_token": tok},
                         verify=CA, allow_redirects=False, timeout=30)


def mine(op, user="nurse"):
    sess = op.admin("/admin/sessions", method="GET")["sessions"]
    return [s for s in sess if s["user"] == user][-1]


# ---- 1. back-channel logout: the jti marker ------------------------------------------------


def test_bcl_same_token_at_once_to_two_servers_on_one_redis(op, redis, logcheck):
    """One token delivered at the same moment to two servers sharing Redis (an
    OP retrying over two addresses): no 5xx, the session ends, and afterwards
    the token is a replay on both."""
    store = ("EidSessionStore redis://127.0.0.1:%d/0 prefix=t-atk2: cache=1000 timeout=500 "
             "breaker=3/200\n" % redis.port)
    h1 = make_httpd(op, LOC, extra=store, name="atkbcl1")
    h2 = make_httpd(op, LOC, extra=store, name="atkbcl2")
    for h in (h1, h2):
        h.start()
        logcheck(h)
    try:
        register(op, h1, h2.url("/.eid/callback"))
        for round_ in range(3):
            b = browser()
            login(h1, op, b, "/app/echo/x")
            cookie = session_cookie(b)
            assert status(h2, cookie).status_code == 200
            # the OP's own delivery goes to a closed port; we deliver the token
            a = op.admin("/admin/backchannel", {"client": "portal", "sid": mine(op)["sid"],
                                                "uri": "https://127.0.0.1:1/x", "timeout": 1})
            tok = a["logout_token"]
            with concurrent.futures.ThreadPoolExecutor(6) as ex:
                codes = list(ex.map(lambda h: bcl_post(h, tok).status_code,
                                    [h1, h2, h1, h2, h1, h2]))
            assert all(c in (200, 400) for c in codes), codes
            assert 200 in codes, codes
            for h in (h1, h2):
                assert status(h, cookie).status_code == 302
                assert bcl_post(h, tok).status_code == 400  # done: a replay now
        for h in (h1, h2):
            h.expect_log(r"EID08312")
    finally:
        for h in (h1, h2):
            h.stop()
            h.cleanup()


def test_bcl_same_token_at_once_to_one_server_with_shm(op, fresh):
    """The shm store: eight deliveries of one token at once - no 5xx, the
    session ends, the token is a replay afterwards."""
    b = logged_in(op, fresh)
    cookie = session_cookie(b)
    a = op.admin("/admin/backchannel", {"client": "portal", "sid": mine(op)["sid"],
                                        "uri": "https://127.0.0.1:1/x", "timeout": 1})
    tok = a["logout_token"]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: bcl_post(fresh, tok).status_code, range(8)))
    assert all(c in (200, 400) for c in codes) and 200 in codes, codes
    assert status(fresh, cookie).status_code == 302
    assert bcl_post(fresh, tok).status_code == 400
    fresh.expect_log(r"EID08312")


def test_bcl_jti_marker_outlives_every_acceptance_of_the_token(op, redis, logcheck):
    """The jti marker must live as long as the token can still be accepted:
    iat may be up to `leeway` in the future and is accepted until iat + 300 s
    + leeway.  With leeway=600 the marker (600 s) expired while the token was
    still good for 900 s: a replay after ten minutes ended the user's new
    sessions (the marker's TTL is read from Redis)."""
    store = ("EidSessionStore redis://127.0.0.1:%d/0 prefix=t-atkl: cache=1000 timeout=500 "
             "breaker=3/200\n" % redis.port)
    h = make_httpd(op, LOC, extra=store, name="atkleeway", provider_opts="leeway=600")
    h.start()
    logcheck(h)
    try:
        register(op, h)
        b = browser()
        login(h, op, b, "/app/echo/x")
        a = op.admin("/admin/backchannel", {"client": "portal", "sid": mine(op)["sid"]})
        assert a["status"] == 200, a
        iat = a["claims"]["iat"]
        keys = [k for k in redis.cli("--scan", "--pattern", "t-atkl:j:*").split() if k]
        assert len(keys) == 1, keys
        ttl_ms = int(redis.cli("PTTL", keys[0]).strip())
        # the last moment the token is accepted: iat + 300 + leeway
        last = (iat + 300 + 600 - time.time()) * 1000
        assert ttl_ms >= last, (ttl_ms, last)
    finally:
        h.stop()
        h.cleanup()


def test_bcl_pending_token_replayed_later_spares_a_newer_login(op, redis, logcheck):
    """A sub-only token whose first delivery failed half-way (503, marker left
    pending) is replayed later (within its 5 minutes): it may end the sessions
    that existed when it was first delivered, but not the nurse's login made
    after that (a new login is no longer the one the OP logged out)."""
    from test_redis_sessions import ACL
    acl = ["ACL", "SETUSER", "eidbcp", "on", ">pw-bcp-1", "resetkeys", "~t-bcp:*"] + ACL[6:]
    redis.cli(*acl)
    h = make_httpd(op, LOC, name="atkpend", extra=(
        "EidSessionStore redis://eidbcp@127.0.0.1:%d password_file={root}/redis.pw "
        "prefix=t-bcp: cache=1000 timeout=500 breaker=3/200\n" % redis.port))
    pw = os.path.join(h.root, "redis.pw")
    with open(pw, "w") as f:
        f.write("pw-bcp-1\n")
    os.chown(pw, 0, __import__("grp").getgrnam("www-data").gr_gid)
    os.chmod(pw, 0o640)
    h.start()
    logcheck(h)
    try:
        register(op, h)
        b1 = browser()
        login(h, op, b1, "/app/echo/x")
        c1 = session_cookie(b1)
        redis.cli("ACL", "SETUSER", "eidbcp", "resetkeys", "~t-bcp:[^k]*")
        a = op.admin("/admin/backchannel", {"client": "portal", "sub": "SE2321000016-P0001N"})
        h.expect_log(r"EID08210", r"EID063\d\d", r"EID08312", r"EID08314")
        assert a["status"] == 503, a
        redis.cli("ACL", "SETUSER", "eidbcp", "resetkeys", "~t-bcp:*")
        time.sleep(1.1)
        b2 = browser()  # the nurse logs in again afterwards
        login(h, op, b2, "/app/echo/x")
        c2 = session_cookie(b2)
        assert status(h, c2).status_code == 200
        r = bcl_post(h, a["logout_token"])
        assert r.status_code == 200
        assert status(h, c1).status_code == 302
        assert status(h, c2).status_code == 200, "the newer login was ended by the old token"
    finally:
        h.stop()
        h.cleanup()
        redis.cli("ACL", "DELUSER", "eidbcp")


# ---- 2. RP-initiated logout by POST ---------------------------------------------------------

EVIL_END = "https://127.0.0.1:1/es?a=\"><script>alert(1)</script>&b='x'/onload=alert(2)"


def logout_answer(h, b, lang=None):
    hd = {"Accept-Language": lang} if lang else {}
    r = b.get(h.url("/.eid/logout"), allow_redirects=False, timeout=20, headers=hd)
    csrf = re.search(r'name="csrf" value="([A-Za-z0-9_-]{43})"', r.text).group(1)
    return b.post(h.url("/.eid/logout"), data={"csrf": csrf}, allow_redirects=False,
                  timeout=20, headers=hd)


def only_submit_script(r):
    """The page's CSP: no source but the submit script's hash may run; the form
    may go to 'self' and the end-session origin only."""
    csp = r.headers["Content-Security-Policy"]
    d = {p.split()[0]: p.split()[1:] for p in (x.strip() for x in csp.split(";")) if p}
    assert d["default-src"] == ["'none'"], csp
    assert len(d["script-src"]) == 1 and d["script-src"][0].startswith("'sha256-"), csp
    want = "'sha256-%s'" % base64.b64encode(hashlib.sha256(
        b'document.getElementById("eid-continue").submit();').digest()).decode()
    assert d["script-src"] == [want], csp
    assert "unsafe" not in " ".join(d["script-src"])
    return d


@pytest.fixture(scope="module")
def evilsrv(op):
    q = EVIL_END.replace("\\", "\\\\").replace('"', '\\"')
    h = make_httpd(op, LOCS, name="atkevil",
                   provider_opts='end_session_method=post "end_session_endpoint=%s"' % q)
    h.start()
    yield h
    h.stop()
    h.cleanup()


def test_logout_post_page_escapes_a_hostile_end_session_endpoint(op, evilsrv, logcheck):
    """An end-session URL with quotes, <script> and an event handler (from
    end_session_endpoint= or a discovery document): the page carries it only
    as an escaped attribute value, the CSP's form-action names only its origin,
    no other script runs; in English the same."""
    op.admin("/admin/login-behaviour", {"reset": True})
    op.admin("/admin/auto-login", {"user": "nurse"})
    register(op, evilsrv)
    logcheck(evilsrv)
    for lang in ("sv", "en"):
        b = logged_in(op, evilsrv)
        r = logout_answer(evilsrv, b, lang)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        assert "<script>alert" not in r.text and "'x'" not in r.text
        assert r.text.count("<script>") == 1
        form = re.search(r'<form id="eid-continue" method="post" action="([^"]*)">', r.text)
        assert form and html.unescape(form.group(1)) == EVIL_END, r.text
        d = only_submit_script(r)
        assert d["form-action"] == ["'self'", "https://127.0.0.1:1"], d
        assert r.headers["Content-Language"] == lang
        assert "Location" not in r.headers
        assert r.headers["Cache-Control"] == "no-store"


def test_logout_post_end_session_endpoint_must_be_http_url(op, tmp_path):
    """javascript:, data: and relative end-session URLs never reach a page:
    the configuration is refused."""
    for bad in ("javascript:alert(1)", "data:text/html,x", "/es", "http://op.example/es"):
        h = make_httpd(op, LOCS, name="atkjs",
                       provider_opts="end_session_method=post end_session_endpoint=%s" % bad)
        try:
            r = h.configtest()
            assert r.returncode != 0, (bad, r.stdout, r.stderr)
            assert "end_session_endpoint" in r.stderr + r.stdout, r.stderr
        finally:
            h.cleanup()


def test_logout_post_custom_template_head_and_removed_provider(op, logcheck, tmp_path):
    """A sysadmin's logout-continue template with its own inline script: the
    CSP still allows only the submit script.  HEAD on the logout page ends
    nothing.  A session whose provider left the configuration logs out to
    the logged-out page (303), never 500."""
    tpl = tmp_path / "cont.html"
    tpl.write_text('<!DOCTYPE html><html lang="{{lang}}"><title>{{title}}</title>'
                   '<script>alert("template")</script>'
                   '<form id="eid-continue" method="post" action="{{end_session}}">{{fields}}'
                   '<button>Go</button></form><script>document.getElementById("eid-continue")'
                   '.submit();</script></html>\n')
    os.chmod(str(tmp_path), 0o755)
    os.chmod(str(tpl), 0o644)
    with own_logged_in(op, logcheck, "atktpl", provider_opts="end_session_method=post",
                       extra="EidPageTemplate logout-continue sv %s\n"
                       "EidPageTemplate logout-continue en %s\n" % (tpl, tpl)) as (h, b):
        cookie = session_cookie(b)
        r = b.head(h.url("/.eid/logout"), allow_redirects=False, timeout=20)
        assert r.status_code == 200 and not r.content
        assert status(h, cookie).status_code == 200  # HEAD ended nothing
        r = logout_answer(h, b)
        assert r.status_code == 200 and 'alert("template")' in r.text
        d = only_submit_script(r)
        assert d["form-action"] == ["'self'", op.issuer], d
        assert status(h, cookie).status_code == 302
        # the provider renamed: the stored session names one that is gone
        b = logged_in(op, h)
        cookie = session_cookie(b)
        with open(h.conf) as f:
            conf = f.read()
        with open(h.conf, "w") as f:
            f.write(conf.replace("EidProvider op ", "EidProvider op2 "))
        from loginkit import graceful
        graceful(h)
        r = b.get(h.url("/.eid/logout"), allow_redirects=False, timeout=20)
        assert r.status_code in (200, 303), r.status_code
        if r.status_code == 200:
            csrf = re.search(r'name="csrf" value="([A-Za-z0-9_-]{43})"', r.text).group(1)
            r = b.post(h.url("/.eid/logout"), data={"csrf": csrf}, allow_redirects=False,
                       timeout=20)
            assert r.status_code == 303, r.status_code
            assert r.headers["Location"] == h.url("/.eid/logged-out")


def test_logout_post_ipv6_end_session_origin_in_form_action(op, logcheck):
    """An end-session endpoint on an IPv6 literal (https://[::1]:port/...): the
    CSP form-action must name its origin with the brackets, or the browser
    refuses to submit the form to the provider (and, on the confirmation
    page, to follow the redirect there): the user stays logged in at the OP."""
    with own_logged_in(op, logcheck, "atkv6", provider_opts=(
            "end_session_method=post end_session_endpoint=https://[::1]:8443/es")) as (h, b):
        r = b.get(h.url("/.eid/logout"), allow_redirects=False, timeout=20)
        fa = re.search(r"form-action ([^;]*)", r.headers["Content-Security-Policy"]).group(1)
        assert fa.split() == ["'self'", "https://[::1]:8443"], fa
        r = logout_answer(h, b)
        assert r.status_code == 200
        d = only_submit_script(r)
        assert d["form-action"] == ["'self'", "https://[::1]:8443"], d


# ---- 3. state cookies: the byte budget ------------------------------------------------------

ST = "__Host-eid-st-"


def st_bytes(jar):
    """Bytes our state cookies add to the Cookie header (name=value; each)."""
    return sum(len(n) + 1 + len(v) + 2 for n, v in jar.items() if n.startswith(ST))


def set_cookies(r):
    """{name: value or None (expired)} from every Set-Cookie of an answer."""
    out = {}
    for line in r.raw.headers.getlist("Set-Cookie"):
        nv, _, attrs = line.partition(";")
        n, _, v = nv.partition("=")
        gone = re.search(r"(?i)max-age=0\b|expires=thu, 01 jan 1970", attrs)
        out[n.strip()] = None if gone or not v else v
    return out


def apply(jar, r):
    for n, v in set_cookies(r).items():
        if v is None:
            jar.pop(n, None)
        else:
            jar[n] = v


def deep_get(h, i, cookie_header=None):
    path = "/app/echo/deep%d/%s" % (i, "x" * 880)  # ~1.5 KB sealed state
    hd = {"Accept": "text/html"}
    if cookie_header:
        hd["Cookie"] = cookie_header
    return requests.get(h.url(path), headers=hd, verify=CA, allow_redirects=False, timeout=30)


def test_state_cookies_of_parallel_first_tabs_stay_within_the_budget(op, fresh):
    """A browser restoring its tabs: many deep links requested at once, none
    carrying a state cookie yet, so no answer knows of the others.  Whatever
    order the browser stores their cookies in, the state cookies must stay
    within 4096 bytes (1.5 KB each in four slots made ~6 KB)."""
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        answers = list(ex.map(lambda i: deep_get(fresh, i), range(16)))
    assert all(a.status_code == 302 for a in answers), [a.status_code for a in answers]
    for order in (answers, answers[::-1]):
        jar = {}
        for a in order:
            apply(jar, a)
        assert st_bytes(jar) <= 4096, (len(jar), st_bytes(jar))
    # the tab whose cookie the browser kept still logs in (the last one set)
    fresh.expect_log(r"EID08112", r"EID08110")


def test_state_budget_with_garbage_and_duplicated_state_cookies(op, fresh):
    """A 4 KB forged __Host-eid-st-2 and a duplicated slot name in the request:
    the login starts (302, never 500), the forged cookie is expired, and the
    state cookies the browser keeps fit the budget."""
    jar = {ST + "2": "A" * 4000}
    hdr = "%s2=%s" % (ST, "A" * 4000)
    r = deep_get(fresh, 0, hdr)
    assert r.status_code == 302, r.status_code
    sc = set_cookies(r)
    assert sc.get(ST + "2", "kept") is None or ST + "2" not in jar, sc
    apply(jar, r)
    assert st_bytes(jar) <= 4096, st_bytes(jar)
    # the same name twice (a forged one before the real ones)
    real = "; ".join("%s=%s" % kv for kv in jar.items())
    for i in range(1, 5):
        hdr = "%s1=%s; %s" % (ST, "B" * 3000, "; ".join("%s=%s" % kv for kv in jar.items()))
        r = deep_get(fresh, i, hdr)
        assert r.status_code == 302, r.status_code
        apply(jar, r)
        assert st_bytes(jar) <= 4096, (i, st_bytes(jar))
    assert real


def test_pruned_tab_callback_is_the_expired_page_and_cookie_header_fits(op, fresh):
    """Logged in, then six deep links needing a higher level (each a new
    login next to the session cookie): all our cookies together - the state
    cookies and the session cookie - stay within 4096 bytes; the callback of a
    tab whose state was pruned answers the documented 400 expired page."""
    b = logged_in(op, fresh, user="lowlevel")  # loa2: /min3/ starts a new login
    assert session_cookie(b)
    answers = []
    for i in range(6):
        a = b.get(fresh.url("/min3/echo/deep%d/%s" % (i, "x" * 880)), allow_redirects=False,
                  timeout=20)
        assert a.status_code == 302, a.status_code
        answers.append(a)
        ours = [c for c in b.cookies if c.name.startswith("__Host-eid-")]
        total = sum(len(c.name) + 1 + len(c.value) for c in ours) + 2 * (len(ours) - 1)
        assert total <= 4096, (i, [(c.name, len(c.value)) for c in ours], total)
    # the first tab's state is gone: its callback is the expired page
    cb = op_callback(op, b, answers[0])
    r = b.get(cb, allow_redirects=False, timeout=20)
    assert r.status_code in (400, 303), (r.status_code, r.text[:300])
    if r.status_code == 400:
        assert "text/html" in r.headers["Content-Type"]
    fresh.expect_log(r"EID08112", r"EID08110")


def test_parallel_first_tabs_on_short_links_still_spread(op, fresh):
    """The budget rule keeps small states spreading over the slots (each tab
    keeps its own login) - only deep links share slot 0."""
    def get(i):
        return requests.get(fresh.url("/app/echo/t%d" % i), headers={"Accept": "text/html"},
                            verify=CA, allow_redirects=False, timeout=30)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        answers = list(ex.map(get, range(12)))
    names = set()
    for a in answers:
        assert a.status_code == 302
        names |= {n for n, v in set_cookies(a).items() if n.startswith(ST) and v}
    assert len(names) >= 2 and ST + "0" not in names, names


def test_state_cookies_and_the_session_cookie_together_within_4096(op, fresh):
    """The budget is for all our cookies: logged in (the session cookie sent
    along) and three logins in flight whose state cookies come to just under
    4096 bytes by themselves - with the session cookie the Cookie header from
    our cookies must still stay within 4096."""
    def state_len(path):
        a = requests.get(fresh.url(path), headers={"Accept": "text/html"}, verify=CA,
                         allow_redirects=False, timeout=30)
        return [len(v) for n, v in set_cookies(a).items() if n.startswith(ST) and v][0]

    base = "/min3/echo/d/"
    l1, l2 = state_len(base + "x" * 300), state_len(base + "x" * 600)
    slope = (l2 - l1) / 300.0
    # two states of ~1490 bytes and one that brings the three to ~4080 bytes
    big = 300 + int((1490 - l1) / slope)
    third_len = 4080 - 2 * (len(ST) + 1 + 1 + state_len(base + "x" * big) + 2) - (len(ST) + 3)
    third = 300 + int((third_len - l1) / slope)
    b = logged_in(op, fresh, user="lowlevel")
    for i, n in enumerate((big, big, third)):
        a = b.get(fresh.url("/min3/echo/%d/%s" % (i, "x" * n)), allow_redirects=False, timeout=20)
        assert a.status_code == 302
    ours = [c for c in b.cookies if c.name.startswith("__Host-eid-")]
    assert any(c.name == "__Host-eid-session" for c in ours)
    states = sum(len(c.name) + 1 + len(c.value) + 2 for c in ours if c.name.startswith(ST))
    total = sum(len(c.name) + 1 + len(c.value) for c in ours) + 2 * (len(ours) - 1)
    assert total <= 4096, (states, total, [(c.name, len(c.value)) for c in ours])
    fresh.expect_log(r"EID08112", r"EID08110")


def test_logout_post_csp_from_an_endpoint_with_userinfo_and_semicolons(op, logcheck):
    """An end-session URL whose userinfo part carries CSP syntax
    (https://x;script-src%20*@host/...): form-action gets the plain origin,
    nothing else reaches the header."""
    with own_logged_in(op, logcheck, "atkui", provider_opts=(
            "end_session_method=post "
            "end_session_endpoint=https://x;script-src*;form-action*@127.0.0.1:1/es;a=1")) \
            as (h, b):
        r = logout_answer(h, b)
        assert r.status_code == 200
        d = only_submit_script(r)
        assert d["form-action"] == ["'self'", "https://127.0.0.1:1"], d
        assert "*" not in r.headers["Content-Security-Policy"]


def test_pruned_tab_without_a_session_gets_the_expired_page(op, fresh):
    """No session yet: the callback of a tab whose state cookie the budget
    pruned is the 400 expired page (HTML, no-store), never a 500."""
    b = browser()
    answers = [b.get(fresh.url("/app/echo/p%d/%s" % (i, "x" * 880)), allow_redirects=False,
                     timeout=20) for i in range(4)]
    cb = op_callback(op, b, answers[0])
    r = b.get(cb, allow_redirects=False, timeout=20)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert "text/html" in r.headers["Content-Type"]
    assert r.headers["Cache-Control"] == "no-store"
    assert 'href="/"' in r.text or "href=" in r.text
    # the newest tab logs in
    r = follow(b, answers[-1])
    assert r.status_code == 200 and r.json()["EID_METHOD"] == "oidc"
    fresh.expect_log(r"EID08112")
