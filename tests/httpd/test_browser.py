"""A real browser through the login flow (issue 10): headless Chromium (Debian's
chromium + chromium-driver, python3-selenium) against httpd + mod_auth_eid
(EidMethods oidc, shm session store) and the test OpenID Provider, all over TLS
on loopback with the test PKI's server certificate (the browser trusts the
test CA; no certificate error is ignored).

The user logs in at the OP's login page by clicking a test user, sees a
protected page with her identity, steps up to a location that needs a higher
LoA (logging in again at the OP, her first session kept until then), is refused
at a location of another organisation (the refusal page in Swedish, then in
English, with the request id of the audit record).  Screenshots of every step (and
the browser console) are kept in build/test-artefacts/browser/.

She logs out through the confirmation form and the OP's end-session endpoint; with
the provider's end_session_method=post the module's page POSTs the ID token to the
OP by its one script (allowed by the page's CSP by hash), so no URL carries it.
"""
import os
import shutil
import sys
import textwrap
import urllib.parse

import pytest

from eidtest import BUILD, Httpd, pki
from browser import Chromium

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "op"))
from opctl import TestOP  # noqa: E402

ARTEFACTS = os.path.join(BUILD, "test-artefacts", "browser")
CLIENT_ID = "browser-rp"
CLIENT_SECRET = "browser-rp-secret-4f1d0c2a9b7e"
NURSE_HSA = "SE2321000016-P0001N"
NURSE_LABEL = "Tolvan Tolvansson"      # on the OP's login page
OTHER_ORG = "5562265719"               # an organisation the nurse does not belong to
SESSION_COOKIE = "__Host-eid-session"

# The protected application: one CGI for every URL under /app/, an HTML page
# with the identity the module exported.
APP_CGI = r'''#!/usr/bin/python3
import html, os, sys
e = lambda k: html.escape(os.environ.get(k, ""))
body = ("<!doctype html><html lang='sv'><head><meta charset='utf-8'><title>Vårdplanering"
        "</title></head><body><h1>Vårdplanering</h1>"
        "<p>Inloggad: <span id='user'>%s</span> (<span id='name'>%s</span>)</p>"
        "<p>Organisation: <span id='org'>%s</span></p>"
        "<p>Tillitsnivå: <span id='loa'>%s</span>, metod <span id='method'>%s</span></p>"
        "<p>Sida: <span id='path'>%s</span></p>"
        "<p><a id='logout' href='/.eid/logout'>Logga ut</a></p></body></html>"
        % (e("REMOTE_USER"), e("EID_GIVEN_NAME") + " " + e("EID_SURNAME"), e("EID_ORG_NAME"), e("EID_LOA"),
           e("EID_METHOD"), e("REQUEST_URI"))).encode("utf-8")
sys.stdout.write("Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
                 "Content-Length: %d\r\n\r\n" % len(body))
sys.stdout.flush()
sys.stdout.buffer.write(body)
'''

CONF = textwrap.dedent("""\
    EidSessionKeyFile {{root}}/session.key
    EidSessionStore shm
    EidProvider op issuer={issuer} discovery=on login=on client_id={cid} \\
                client_secret_file={{root}}/client.secret claims=inera \\
                ca_file={{pki}}/ca/server-ca.pem {provider_extra}
    EidRedirectURI https://localhost:{port}/.eid/callback
    EidLogoutRedirectAllow https://localhost:{port}
    ScriptAliasMatch ^/app/ {{root}}/cgi/app.py
    <Location /app/>
        AuthType eid
        EidMethods oidc
        EidLoginProviders op
        EidLoginLoA 2
        Require valid-user
    </Location>
    <Location /app/high/>
        AuthType eid
        EidMethods oidc
        EidLoginProviders op
        Require eid-loa 3
    </Location>
    <Location /app/other-org/>
        AuthType eid
        EidMethods oidc
        EidLoginProviders op
        Require eid-org {other_org}
    </Location>
    """)


def write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The test OP (TLS) with our client registered, and httpd; both stopped at the end."""
    yield from make_site(tmp_path_factory, "")


@pytest.fixture(scope="module")
def site_post(tmp_path_factory):
    """The same with the provider's end_session_method=post."""
    yield from make_site(tmp_path_factory, "end_session_method=post")


def make_site(tmp_path_factory, provider_extra):
    op = TestOP(str(tmp_path_factory.mktemp("op")), tls_cert=pki("server", "localhost.pem"),
                tls_key=pki("server", "localhost.key"), ca_file=pki("ca", "server-ca.pem"))
    srv = None
    op.start()
    try:
        from eidtest import free_port
        port = free_port()
        base = "https://localhost:%d" % port
        op.admin("/admin/clients", {
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uris": [base + "/.eid/callback"],
            "post_logout_redirect_uris": [base + "/.eid/logged-out"],
            "token_endpoint_auth_method": "client_secret_basic", "profile": "inera"})
        op.admin("/admin/auto-login", {"user": None})  # the user clicks on the login page
        srv = Httpd(CONF.format(issuer=op.issuer, cid=CLIENT_ID, port=port,
                                other_org=OTHER_ORG, provider_extra=provider_extra),
                    verify_client="none", name="browser", port=port)
        write_secret(os.path.join(srv.root, "session.key"), os.urandom(32).hex() + "\n")
        write_secret(os.path.join(srv.root, "client.secret"), CLIENT_SECRET + "\n")
        app = os.path.join(srv.root, "cgi", "app.py")
        with open(app, "w") as f:
            f.write(APP_CGI)
        os.chmod(app, 0o755)
        srv.start()
        yield op, srv, base
    finally:
        if srv is not None:
            srv.stop()
            srv.cleanup()
        op.stop()


@pytest.fixture
def chromium():
    shutil.rmtree(ARTEFACTS, ignore_errors=True)
    b = Chromium(pki("ca", "server-ca.pem"), ARTEFACTS, lang="sv-SE,sv")
    try:
        yield b
    finally:
        b.shot("final")  # where the browser was at the end (a failure's last page)
        b.quit()


def at_op(b, op):
    return b.url.startswith(op.issuer + "/")


def login_at_op(b, op, what):
    """On the OP's login page: click the nurse; back at the service.  Returns the
    acr_values the module asked for (the page shows them)."""
    b.wait_for(lambda: at_op(b, op) and NURSE_LABEL in b.text(), "the OP's login page")
    b.shot(what + "-op-login-page")
    assert b.driver.find_element("id", "client").text == CLIENT_ID
    acr = b.driver.find_element("id", "acr").text.split()
    b.click("//button[@id='login-nurse']")
    b.wait_for(lambda: not at_op(b, op) and "/.eid/callback" not in b.url,
               "the way back from the OP")
    return acr


def app_field(b, field):
    return b.driver.find_element("id", field).text


def check_session_cookie(b):
    c = b.cookies().get(SESSION_COOKIE)
    assert c is not None, "no %s cookie: %s" % (SESSION_COOKIE, sorted(b.cookies()))
    assert c["secure"] is True and c["httpOnly"] is True, c
    assert c.get("sameSite") == "Lax", c
    assert c["path"] == "/", c
    # __Host-: host-only (no Domain attribute): the browser lists the bare host
    assert c["domain"] == "localhost", c
    assert len(c["value"]) == 43, c
    for name, other in b.cookies().items():  # every cookie of the module
        if name.startswith("__Host-"):
            assert other["secure"] and other["httpOnly"] and other["path"] == "/", other
    return c["value"]


def refused_request_id(srv, resource, n):
    """The request id of the n-th audit record of resource: a denial of the nurse."""
    recs = srv.wait_audit(resource, n)
    assert len(recs) == n, "audit records of %s: %s" % (resource, recs)
    rec = recs[-1]
    assert rec["decision"] == "deny" and rec["status"] == 403, rec
    assert rec["auth_method"] == "oidc" and rec["hsa_id"] == NURSE_HSA, rec
    return rec["request_id"]


def login_stepup_refusal(b, op, srv, base):
    """Steps 1-3 of the flow; returns with a live LoA 3 session on /app/after-refusal."""

    # 1. A protected page: off to the OP, log in by clicking a test user, back with a session.
    b.get(base + "/app/start")
    acr = login_at_op(b, op, "login")
    # acr_values from the location's EidLoginLoA (2) through the provider's table, lowest first
    assert acr and acr[0].endswith("loa2"), acr
    b.wait_for(lambda: "Vårdplanering" in b.text(), "the protected page")
    b.shot("protected-page")
    assert urllib.parse.urlsplit(b.url).path == "/app/start"
    assert app_field(b, "user") == NURSE_HSA
    assert app_field(b, "name") == "Tolvan Tolvansson"
    assert app_field(b, "org") == "Region Exempel"
    assert app_field(b, "method") == "oidc"
    assert app_field(b, "loa") == "2"   # the OP gives the lowest level the location asks for
    first = check_session_cookie(b)

    # The same session on the next page: no trip to the OP.
    b.get(base + "/app/again")
    b.wait_for(lambda: "Vårdplanering" in b.text(), "the second protected page")
    assert app_field(b, "path") == "/app/again" and app_field(b, "user") == NURSE_HSA
    assert b.cookies()[SESSION_COOKIE]["value"] == first

    # 2. Step-up: /app/high/ needs LoA 3 (Require eid-loa 3): the session's 2 is not
    #    refused, the browser is sent to the OP again for level 3; a new session.
    b.get(base + "/app/high/journal")
    b.wait_for(lambda: at_op(b, op), "the OP for the step-up")
    # the session of level 2 is kept while the user is at the OP
    assert b.cookies_for(base + "/")[SESSION_COOKIE]["value"] == first
    acr = login_at_op(b, op, "step-up")
    assert acr and acr[0].endswith("loa3") and not any(a.endswith("loa2") for a in acr), acr
    b.wait_for(lambda: "Vårdplanering" in b.text(), "the LoA 3 page")
    b.shot("step-up-page")
    assert urllib.parse.urlsplit(b.url).path == "/app/high/journal"
    assert app_field(b, "loa") == "3" and app_field(b, "user") == NURSE_HSA
    second = check_session_cookie(b)
    assert second != first, "a login must issue a new session id"

    # 3. Refusal: another organisation's location; a page in Swedish, then English,
    #    with the request id of the refused request's audit record.
    b.get(base + "/app/other-org/rapport")
    b.wait_for(lambda: "Vårdplanering" not in b.text() and b.lang().startswith("sv"),
               "the Swedish refusal page")
    b.shot("refusal-sv")
    sv = b.text()
    assert urllib.parse.urlsplit(b.url).path == "/app/other-org/rapport"
    assert b.driver.title == "Du har inte behörighet till sidan", b.driver.title
    assert "din organisation eller din roll" in sv, sv
    rid = refused_request_id(srv, "/app/other-org/rapport", 1)
    assert "Referens: " + rid in sv, "request id %s not on the page:\n%s" % (rid, sv)
    assert NURSE_HSA not in sv and "EID0" not in sv and "eid-org" not in sv, \
        "internal detail on the page:\n" + sv

    b.set_accept_language("en")
    b.get(base + "/app/other-org/rapport")
    b.wait_for(lambda: b.lang().startswith("en"), "the English refusal page")
    b.shot("refusal-en")
    en = b.text()
    assert b.driver.title == "You do not have access to this page", b.driver.title
    assert "your organisation or your role" in en, en
    rid_en = refused_request_id(srv, "/app/other-org/rapport", 2)
    assert rid_en != rid and "Reference: " + rid_en in en, en
    b.set_accept_language("sv-SE,sv")
    # httpd's own line for every denial (the step-up's and these two), and the module's
    srv.expect_log(r"AH01630", r"EID01101")
    # the refusal ended nothing: the session still opens the allowed pages
    b.get(base + "/app/after-refusal")
    b.wait_for(lambda: "Vårdplanering" in b.text(), "the page after the refusal")
    assert b.cookies()[SESSION_COOKIE]["value"] == second


def test_browser_login_stepup_refusal_logout(site, chromium, logcheck):
    op, srv, base = site
    b = chromium
    logcheck(srv)
    login_stepup_refusal(b, op, srv, base)

    # The logout step: the confirmation page's form POST is followed through the
    # OP's end_session (the page's CSP form-action names the OP's origin: with
    # 'self' alone Chromium stopped at the OP and the session stayed).

    # 4. Logout: the link leads to a confirmation page; its form POSTs.
    b.click("//a[@id='logout']")
    b.wait_for(lambda: b.driver.find_elements("xpath", "//form[@method='post' or "
                                                       "@method='POST']"),
               "the logout confirmation page")
    b.shot("logout-confirm")
    assert urllib.parse.urlsplit(b.url).path == "/.eid/logout"
    assert b.driver.title == "Logga ut?", b.driver.title
    form = b.driver.find_element("xpath", "//form[@method='post' or @method='POST']")
    csrf = form.find_element("xpath", ".//input[@type='hidden' and @name='csrf']")
    assert len(csrf.get_attribute("value")) == 43, "no CSRF token in the form"
    form.find_element("xpath", ".//button | .//input[@type='submit']").click()
    b.wait_for(lambda: urllib.parse.urlsplit(b.url).netloc == "localhost:%d" % srv.port
               and "/.eid/logout" not in b.url, "the page after logout")
    b.shot("logged-out")
    assert b.driver.title == "Du är utloggad", (b.driver.title, b.url)
    assert urllib.parse.urlsplit(b.url).path == "/.eid/logged-out"
    assert SESSION_COOKIE not in b.cookies(), b.cookies()
    # the browser went through the OP's end_session with the ID token as the hint
    ends = op.admin("/admin/records?kind=end_session", method="GET")["end_session"]
    assert ends and ends[-1]["id_token_hint_valid"] is True, ends
    assert ends[-1]["client_id"] == CLIENT_ID and ends[-1]["result"] == "redirect", ends
    assert ends[-1]["session_ended"] is True, ends

    # Logged out for real: the protected page sends the browser to the OP again.
    b.get(base + "/app/start")
    b.wait_for(lambda: at_op(b, op), "the OP after logout")
    b.shot("after-logout-at-op")


def test_browser_logout_end_session_by_post(site_post, chromium, logcheck):
    """end_session_method=post in Chromium: after the confirmation form, the
    module's page submits itself (its script allowed by the CSP hash; a
    blocked script would leave the browser on that page) with a POST to the
    OP's end-session endpoint, which ends its session and sends the browser
    to the logged-out page: the OP got the ID token in a POST body."""
    op, srv, base = site_post
    b = chromium
    logcheck(srv)
    b.get(base + "/app/start")
    login_at_op(b, op, "post-login")
    b.wait_for(lambda: "Vårdplanering" in b.text(), "the protected page")
    b.click("//a[@id='logout']")
    b.wait_for(lambda: b.driver.find_elements("xpath", "//form[@method='post']"),
               "the logout confirmation page")
    b.driver.find_element("xpath", "//form[@method='post']//button").click()
    b.wait_for(lambda: urllib.parse.urlsplit(b.url).path == "/.eid/logged-out",
               "the logged-out page, through the OP")
    b.shot("post-logged-out")
    assert b.driver.title == "Du är utloggad", (b.driver.title, b.url)
    assert SESSION_COOKIE not in b.cookies(), b.cookies()
    ends = op.admin("/admin/records?kind=end_session", method="GET")["end_session"]
    assert ends and ends[-1]["method"] == "POST", ends
    assert ends[-1]["id_token_hint_valid"] is True and ends[-1]["session_ended"] is True, ends
    assert ends[-1]["result"] == "redirect", ends
    assert "id_token_hint" not in b.url
    for entry in b.driver.get_log("browser"):  # a CSP violation is logged there
        assert "Content Security Policy" not in entry.get("message", ""), entry
