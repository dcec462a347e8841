"""Logout (issue 10): RP-initiated with a CSRF-protected form and the provider's
end-session endpoint; back-channel logout from the provider."""
import re
import urllib.parse

import requests

from loginkit import (CA, browser, follow, fresh, logged_in, op, raw_cookie_get,  # noqa: F401
                      session_cookie, srv)


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
