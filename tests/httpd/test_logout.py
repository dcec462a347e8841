"""Logout (issue 10): RP-initiated with a CSRF-protected form and the provider's
end-session endpoint; back-channel logout from the provider."""
import base64
import hashlib
import html
import re
import urllib.parse

import pytest
import requests

from loginkit import (CA, LOCS, browser, follow, fresh, logged_in, make_httpd, op,  # noqa: F401
                      raw_cookie_get, register, session_cookie, srv)


def test_logout_rp_initiated(op, fresh):
    b = logged_in(op, fresh)
    sid = session_cookie(b)
    r = b.get(fresh.url("/.eid/logout"), allow_redirects=False, timeout=20)
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"]
    m = re.search(r'name="csrf" value="([A-Za-z0-9_-]{43})"', r.text)
    assert m, r.text
    # the form's answer leads through the OP: the page's CSP lets it (browsers
    # apply form-action to every redirect after the POST)
    csp = r.headers["Content-Security-Policy"]
    fa = re.search(r"form-action ([^;]*)", csp).group(1).split()
    assert fa == ["'self'", op.issuer], csp
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


@pytest.fixture(scope="module")
def postsrv(op):
    h = make_httpd(op, LOCS, name="logoutpost", provider_opts="end_session_method=post")
    h.start()
    yield h
    h.stop()
    h.cleanup()


def test_logout_end_session_by_post_keeps_the_id_token_out_of_urls(op, postsrv, logcheck):
    """end_session_method=post: after the CSRF-checked POST the session is
    ended and the answer is a page whose form POSTs id_token_hint, client_id
    and post_logout_redirect_uri to the provider's end-session endpoint - no
    Location, so the ID token (personnummer and all) is in no URL, history or
    proxy log.  Its one script (the submission) is allowed by hash, nothing
    else; the provider takes the POST and comes back to the logged-out page."""
    op.admin("/admin/login-behaviour", {"reset": True})
    register(op, postsrv)
    logcheck(postsrv)
    b = logged_in(op, postsrv)
    sid = session_cookie(b)
    r = b.get(postsrv.url("/.eid/logout"), allow_redirects=False, timeout=20)
    csrf = re.search(r'name="csrf" value="([A-Za-z0-9_-]{43})"', r.text).group(1)
    r = b.post(postsrv.url("/.eid/logout"), data={"csrf": csrf}, allow_redirects=False,
               timeout=20)
    assert r.status_code == 200 and "Location" not in r.headers, (r.status_code, r.headers)
    assert not session_cookie(b)
    assert raw_cookie_get(postsrv, "/app/echo/s",
                          "__Host-eid-session=" + sid).status_code == 302
    form = re.search(r'<form id="eid-continue" method="post" action="([^"]*)">(.*?)</form>',
                     r.text, re.S)
    assert form, r.text
    assert html.unescape(form.group(1)) == op.issuer + "/end_session"
    fields = {html.unescape(n): html.unescape(v) for n, v in
              re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', form.group(2))}
    assert set(fields) == {"id_token_hint", "client_id", "post_logout_redirect_uri"}, fields
    assert fields["id_token_hint"].count(".") == 2
    assert fields["client_id"] == "portal"
    assert fields["post_logout_redirect_uri"] == postsrv.url("/.eid/logged-out")
    # the one inline script is allowed by its hash; the form may go to the OP
    csp = r.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    assert len(scripts) == 1 and "submit()" in scripts[0]
    h = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert re.search(r"script-src 'sha256-%s'(;|$)" % re.escape(h), csp), csp
    assert re.search(r"form-action 'self' %s(;|$)" % re.escape(op.issuer), csp), csp
    assert "default-src 'none'" in csp
    # the browser's submission: the OP takes the POST, ends its session and
    # sends the browser to the registered logged-out page
    r = b.post(html.unescape(form.group(1)), data=fields, allow_redirects=False, timeout=20)
    assert r.status_code in (302, 303), (r.status_code, r.text[:300])
    r = follow(b, r)
    assert r.status_code == 200 and r.url == postsrv.url("/.eid/logged-out")
    last = op.admin("/admin/records?kind=end_session", method="GET")["end_session"][-1]
    assert last["id_token_hint_valid"] is True and last["session_ended"] is True, last
