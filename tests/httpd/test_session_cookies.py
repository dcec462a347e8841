"""The session cookie (issue 10): tampering, fixation, the many-tabs cap, a failing
store, key rotation, virtual hosts - real httpd, the test OP, a cookie jar."""
import concurrent.futures
import os

import requests

from loginkit import (CA, KEY_A, KEY_B, browser, cookies, fresh, follow, graceful,  # noqa: F401
                      logged_in, login, op, own, raw_cookie_get, session_cookie, srv,
                      write_keys)


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
    login(fresh, op, b, "/app/echo/fix")
    new = session_cookie(b)
    assert new and new != planted
    assert raw_cookie_get(fresh, "/app/echo/t", "__Host-eid-session=" + planted).status_code == 302
    # the real session of the user, from before, does not survive a new login either
    old = new
    r = login(fresh, op, b, "/.eid/login?provider=op&return=/app/echo/again")
    assert r.json()["EID_METHOD"] == "oidc"
    assert session_cookie(b) != old
    assert raw_cookie_get(fresh, "/app/echo/t", "__Host-eid-session=" + old).status_code == 302


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


def test_one_session_many_parallel_requests(op, fresh):
    b = logged_in(op, fresh)
    cookie = session_cookie(b)

    def get(i):
        r = raw_cookie_get(fresh, "/app/echo/par%d" % i, "__Host-eid-session=" + cookie)
        return r.status_code, r.json().get("EID_HSA_ID") if r.status_code == 200 else None

    # 8 clients: the test server has 16 worker threads (AH00484 at the limit)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        out = list(ex.map(get, range(64)))
    assert out == [(200, "SE2321000016-P0001N")] * 64


def test_error_document_in_an_oidc_location_starts_no_login(op, own):
    # a 404 outside any login location, its ErrorDocument inside one: the
    # browser gets the 404 (httpd's text), never a login redirect or cookie
    h = own("ErrorDocument 404 /app/echo/notfound\n")
    r = requests.get(h.url("/no/such/file"), verify=CA, allow_redirects=False, timeout=20,
                     headers={"Accept": "text/html"})
    assert r.status_code == 404, (r.status_code, r.headers)
    assert "Location" not in r.headers and "Set-Cookie" not in r.headers
    # with a session, the error document is served with its identity
    b = logged_in(op, h)
    r = b.get(h.url("/no/such/file"), allow_redirects=False, timeout=20)
    assert r.status_code == 404 and "Set-Cookie" not in r.headers


def test_cookie_headers_over_16k_are_no_session(op, own):
    import http.client
    import ssl
    # httpd joins Cookie headers into one line, which its default limit (8190)
    # refuses with 400 before we see it; a site that raised the limit still
    # gets bounded work from us
    fresh = own("LimitRequestFieldSize 65536\n")
    b = logged_in(op, fresh)
    good = session_cookie(b)
    ctx = ssl.create_default_context(cafile=CA)
    for n_pad in (0, 3):
        c = http.client.HTTPSConnection("localhost", fresh.port, context=ctx, timeout=20)
        c.putrequest("GET", "/app/echo/big")
        c.putheader("Accept", "text/html")
        for i in range(n_pad):  # each under httpd's 8190-byte line limit
            c.putheader("Cookie", "pad%d=%s" % (i, "x" * 7000))
        c.putheader("Cookie", "__Host-eid-session=" + good)
        c.endheaders()
        r = c.getresponse()
        r.read()
        c.close()
        # the session alone works; with 21 KiB of cookies around it: no session
        assert r.status == (200 if n_pad == 0 else 302), (n_pad, r.status)
    fresh.expect_log(r"EID08201")


def test_state_cookies_stay_within_a_byte_budget(op, fresh):
    """Tabs opened on deep links (return URLs of ~900 bytes; longer ones log in
    to "/", as the sealed state has a size limit): the
    state cookies together stay within 4096 bytes (the oldest pruned first),
    so with a site's own cookies the Cookie header stays under httpd's
    LimitRequestFieldSize (8190) - over it, every request to the site would
    answer 400 until the state cookies expired.  The newest tab still logs in."""
    b = browser()
    answers = []
    for i in range(6):
        path = "/app/echo/deep%d/%s" % (i, "x" * 880)  # ~1.5 KB state cookie each
        a = b.get(fresh.url(path), allow_redirects=False, timeout=20)
        assert a.status_code == 302, a.status_code
        answers.append(a)
        st = cookies(b, "__Host-eid-st-")
        total = sum(len(c.name) + 1 + len(c.value) + 2 for c in st)
        assert total <= 4096, (i, len(st), total)
    # the site's own cookies (3 KB) next to them: requests still pass
    for k in range(3):
        b.cookies.set("site%d" % k, "v" * 1000, domain="localhost.local", path="/")
    r = b.get(fresh.url("/app/echo/deep-check"), allow_redirects=False, timeout=20)
    assert r.status_code == 302, r.status_code
    for k in range(3):
        b.cookies.clear("localhost.local", "/", "site%d" % k)
    r = follow(b, answers[-1])
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.url.startswith(fresh.url("/app/echo/deep5/")), r.url
    assert r.json()["EID_METHOD"] == "oidc"
    fresh.expect_log(r"EID08112", r"EID08110")
