"""The pages a user sees (issue 10, item 8) and the endpoints under
EidEndpointPath: a refused browser gets a page in Swedish or English with the
request id, an API client the plain status; the sysadmin's ErrorDocument and
templates win; endpoint URIs cannot be bent into opening a protected resource."""
import os
import re
import socket
import ssl

import pytest
import requests

from conftest import server_fixture
from eidtest import TRUST_PROFILES, Httpd, manifest, pki, unique_path, user_cert

M = manifest()
NURSE = M["nurse-kommun"]
DOCTOR = M["doctor-region"]
KOMMUN_ORG = NURSE["org_number"]
CA = pki("ca", "server-ca.pem")
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

CUSTOM_EN = """<!DOCTYPE html>
<html lang="{{lang}}"><head><meta charset="utf-8"><title>{{title}}</title></head>
<body><h1>CUSTOM-REFUSED {{title}}</h1><p>{{why}}</p><p>Ref {{request_id}} ({{status}})</p>
</body></html>
"""


def body():
    conf = TRUST_PROFILES
    conf += 'ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"\n'
    conf += "EidPageTemplate refused en {root}/custom-refused-en.html\n"
    conf += "<Location /loa3/>\nAuthType eid\nRequire eid-loa 3\n</Location>\n"
    conf += "<Location /kommun/>\nAuthType eid\nRequire eid-org %s\n</Location>\n" % KOMMUN_ORG
    conf += "<Location /cert/>\nAuthType eid\nRequire valid-user\n</Location>\n"
    conf += ("<Location /api/>\nAuthType eid\nEidMethods cert bearer\nRequire valid-user\n"
             "</Location>\n")
    conf += ("<Location /errdoc/>\nAuthType eid\nRequire eid-loa 3\n"
             "ErrorDocument 403 \"sysadmin-says-no\"\n</Location>\n")
    return conf


def make():
    h = Httpd(body(), name="pages")
    with open(os.path.join(h.root, "custom-refused-en.html"), "w") as f:
        f.write(CUSTOM_EN)
    return h


srv = server_fixture(make)


def get(srv, path, user=None, headers=None, method="GET"):
    return requests.request(method, srv.url(path), cert=user_cert(user) if user else None,
                            verify=CA, headers=headers or {}, timeout=20,
                            allow_redirects=False)


def ref_of(text):
    m = re.search(r"<strong>([^<]+)</strong>", text) or re.search(r"Ref (\S+) ", text)
    assert m, text
    return m.group(1)


# What no page may show: tags, the Require line, certificate fields, identifiers.
def assert_no_detail(text, user=None):
    for bad in ("EID0", "eid-loa", "eid-org", "Require", "CN=", "serialNumber", "SE2321",
                "issuer", "AH0"):
        assert bad not in text, bad
    if user:
        u = M[user]
        for v in (u.get("hsa_id"), u.get("pnr"), u.get("org_number")):
            if v:
                assert v not in text


def assert_page_headers(r, lang):
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Language"] == lang
    assert "Accept-Language" in r.headers["Vary"]
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp


def test_refused_level_page_in_swedish_with_request_id(srv, logcheck):
    logcheck(srv).expect_log(r"AH01630")
    path = unique_path("/loa3/echo")
    r = get(srv, path, "nurse-kommun-reserve", HTML)
    assert r.status_code == 403
    assert_page_headers(r, "sv")
    t = r.content.decode("utf-8")
    assert '<html lang="sv">' in t and t.count("<h1>") == 1
    assert "Högre säkerhetsnivå krävs" in t and "tillitsnivå 3" in t
    rec = srv.wait_audit(path, 1)[0]
    assert rec["status"] == 403 and ref_of(t) == rec["request_id"]
    assert_no_detail(t, "nurse-kommun-reserve")


@pytest.mark.parametrize("al,lang", [
    ("en-GB,en;q=0.8", "en"),
    ("sv;q=0.1, en;q=0.9", "en"),
    ("EN", "en"),
    ("de-DE, fr;q=0.9", "sv"),
    ("en;q=0, sv;q=0.5", "sv"),
    ("en;q=0", "sv"),
    ("*;q=0.5, en;q=0.4", "sv"),
    ("en;q=abc, sv", "sv"),
    ("sv-FI;q=0.3, en-US;q=0.2", "sv"),
    ("x" * 6000 + ", en", "sv"),          # past the bounded parse: default
    (",;=,;q=,q=1;;" * 300, "sv"),
], ids=["en-GB", "en-q-higher", "EN", "other", "en-q0-sv", "en-q0", "star", "bad-q",
        "sv-FI", "huge", "junk"])
def test_language_choice(srv, logcheck, al, lang):
    logcheck(srv).expect_log(r"AH01630")
    r = get(srv, "/loa3/echo", "nurse-kommun-reserve", dict(HTML, **{"Accept-Language": al}))
    assert r.status_code == 403
    assert r.headers["Content-Language"] == lang
    t = r.content.decode("utf-8")
    if lang == "en":
        # the sysadmin's English refusal template
        assert "CUSTOM-REFUSED A higher security level is needed" in t
        assert '<html lang="en">' in t and "(403)" in t
        assert "level of assurance 3" in t
    else:
        assert '<html lang="sv">' in t


def test_not_your_organisation(srv, logcheck):
    logcheck(srv).expect_log(r"AH01630")
    r = get(srv, "/kommun/echo", "doctor-region", HTML)
    assert r.status_code == 403
    t = r.content.decode("utf-8")
    assert "din organisation eller din roll" in t
    assert_no_detail(t, "doctor-region")


def test_no_card(srv, logcheck):
    r = get(srv, "/cert/echo", None, HTML)
    assert r.status_code == 403
    t = r.content.decode("utf-8")
    assert "Vi hittade inget SITHS-kort" in t
    assert_no_detail(t)


@pytest.mark.parametrize("user", ["function", "other-ca"])
def test_card_not_accepted(srv, logcheck, user):
    logcheck(srv).expect_log(r"EID0\d{4}", r"AH01630")
    r = get(srv, "/cert/echo", user, HTML)
    assert r.status_code == 403
    t = r.content.decode("utf-8")
    assert "godtogs inte" in t
    assert_no_detail(t, user)


def test_head_gets_status_and_headers_only(srv, logcheck):
    logcheck(srv).expect_log(r"AH01630")
    r = get(srv, "/loa3/echo", "nurse-kommun-reserve", HTML, method="HEAD")
    assert r.status_code == 403 and r.content == b""
    assert_page_headers(r, "sv")


@pytest.mark.parametrize("headers", [
    {"Accept": "application/json"},
    {"Accept": "*/*"},
    dict(HTML, Authorization="Bearer abc.def.ghi"),
    dict(HTML, **{"X-Requested-With": "XMLHttpRequest"}),
])
def test_api_client_gets_plain_status(srv, logcheck, headers):
    logcheck(srv).expect_log(r"AH01630")
    r = get(srv, "/loa3/echo", "nurse-kommun-reserve", headers)
    assert r.status_code == 403
    assert "Content-Language" not in r.headers
    assert "Referens" not in r.text and "tillitsnivå" not in r.text


def test_api_client_keeps_bearer_challenge(srv, logcheck):
    r = get(srv, "/api/echo", None, {"Accept": "application/json"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Referens" not in r.text


def test_browser_on_bearer_location_gets_page_and_challenge(srv, logcheck):
    r = get(srv, "/api/echo", None, HTML)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Referens" in r.content.decode("utf-8")


def test_sysadmin_errordocument_wins(srv, logcheck):
    logcheck(srv).expect_log(r"AH01630")
    r = get(srv, "/errdoc/echo", "nurse-kommun-reserve", HTML)
    assert r.status_code == 403
    assert r.text.strip() == "sysadmin-says-no"


def test_refused_page_not_served_directly(srv, logcheck):
    r = get(srv, "/.eid/page/refused", None, HTML)
    assert r.status_code == 404
    assert "Referens" not in r.text
    r = get(srv, "/.eid/page/refused", None, HTML, method="POST")
    assert r.status_code == 405


def test_logged_out_page(srv, logcheck):
    r = get(srv, "/.eid/logged-out", None, dict(HTML, **{"Accept-Language": "en"}))
    assert r.status_code == 200
    assert_page_headers(r, "en")
    assert "You are logged out" in r.text and 'href="/"' in r.text


def test_login_endpoints_are_stubs_until_login_is_configured(srv, logcheck):
    for ep in ("login", "callback", "logout", "backchannel-logout", "choose"):
        assert get(srv, "/.eid/" + ep, None, HTML).status_code == 404


# ---- start-up checks of EidPageTemplate / EidEndpointPath -----------------------

BAD_TEMPLATES = [
    ("<p>{{title}}</p>\n<p>ok</p>\n<p>{{secret}}</p>\n", r"line 3: unknown placeholder \{\{secret\}\}"),
    ("<p>{{title</p>\n", r"line 1: '\{\{' without a closing"),
    (b"<p>\xff\xfe</p>", r"not valid UTF-8"),
    (b"<p>\x00</p>", r"NUL"),
    ("", r"size"),
    ("x" * (64 * 1024 + 1), r"size"),
]


@pytest.mark.parametrize("content,msg", BAD_TEMPLATES, ids=range(len(BAD_TEMPLATES)))
def test_bad_template_refused_at_configtest(content, msg):
    h = Httpd("\n\nEidPageTemplate refused sv {root}/bad.html\n", name="badtpl")
    try:
        path = os.path.join(h.root, "bad.html")
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        r = h.configtest()
        assert r.returncode != 0
        assert "EidPageTemplate" in r.stderr and path in r.stderr, r.stderr
        assert re.search(msg, r.stderr), r.stderr
        assert re.search(r"line \d+ of %s" % re.escape(h.conf), r.stderr), r.stderr
    finally:
        h.cleanup()


@pytest.mark.parametrize("line,msg", [
    ("EidPageTemplate refused sv /nonexistent/x.html", r"cannot read"),
    ("EidPageTemplate refused de {root}/htdocs/index.html", r"unknown language"),
    ("EidPageTemplate welcome sv {root}/htdocs/index.html", r"unknown page"),
    ("EidPageTemplate refused sv {root}/htdocs/index.html\n"
     "EidPageTemplate refused sv {root}/htdocs/index.html", r"set twice"),
    ("<VirtualHost 127.0.0.1:1>\nEidPageTemplate refused sv {root}/htdocs/index.html\n"
     "</VirtualHost>", r"main server"),
    ("EidEndpointPath .eid", r"must start with '/'"),
    ("EidEndpointPath /", r"must start with '/'"),
    ("EidEndpointPath /a/../b", r"'\.\.'"),
    ("EidEndpointPath /a/..", r"'\.\.'"),
    ("EidEndpointPath //eid", r"'//'"),
    ("EidEndpointPath /eid/", r"trailing"),
    ("EidEndpointPath /e%id", r"only letters"),
    ("<Location /x>\nEidEndpointPath /auth\n</Location>", r"not allowed|cannot occur"),
])
def test_bad_directive_refused_at_configtest(line, msg):
    h = Httpd(line + "\n", name="badep")
    try:
        r = h.configtest()
        assert r.returncode != 0
        assert re.search(msg, r.stderr), r.stderr
        assert "line" in r.stderr and h.conf in r.stderr, r.stderr
    finally:
        h.cleanup()


# ---- endpoint routing: URI tricks inside a protected tree ---------------------

SECRET = "TOP-SECRET-CONTENT"


def tree_body():
    # The whole site needs the doctor; the endpoint path lies inside it and a
    # custom one (/auth/x) is used by the second virtual host.
    return TRUST_PROFILES + """
<Directory {root}/htdocs>
    AllowOverride All
    Options +Includes
</Directory>
AddOutputFilter INCLUDES .shtml
<Location />
    AuthType eid
    Require eid-hsa-id %s
</Location>
<Location /open/>
    Require all granted
</Location>
ErrorDocument 404 /.eid/callback
""" % DOCTOR["hsa_id"]


def tree_make():
    h = Httpd(tree_body(), name="eptree", extra_modules=["include", "rewrite"])
    ht = os.path.join(h.root, "htdocs")
    os.makedirs(os.path.join(ht, ".eid", "page", "refused"))
    os.makedirs(os.path.join(ht, "open"))
    for f in ("secret.html", ".eid/index.html", ".eid/Callback", ".eid/callback;x",
              ".eid/page/refused/x.html", ".eid/callback", ".eid/logged-out"):
        with open(os.path.join(ht, f), "w") as fh:
            fh.write(SECRET + "\n")
    # an .htaccess in the protected tree, at the endpoint path itself
    with open(os.path.join(ht, ".eid", ".htaccess"), "w") as fh:
        fh.write("Require all granted\nRewriteEngine on\nRewriteRule ^go$ /secret.html [PT]\n")
    with open(os.path.join(ht, "open", "ssi.shtml"), "w") as fh:
        fh.write('A:<!--#include virtual="/.eid/logged-out" -->\n'
                 'B:<!--#include virtual="/.eid/callback" -->\n'
                 'C:<!--#include virtual="/secret.html" -->\n')
    return h


tree = server_fixture(tree_make)


def raw_get(srv, target, user="nurse-kommun"):
    """Send the request line as given (no client-side normalisation)."""
    ctx = ssl.create_default_context(cafile=CA)
    chain, key = user_cert(user)
    ctx.load_cert_chain(chain, key)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n"
                       "Connection: close\r\n\r\n" % target).encode())
            data = b""
            while True:
                b = t.recv(65536)
                if not b:
                    break
                data += b
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest.decode("utf-8", "replace")


@pytest.mark.parametrize("target", [
    "/secret.html",
    "/.eid/page/refused/../../secret.html",
    "/.eid/page/refused/..%2f..%2fsecret.html",
    "/.eid/page/refused/x.html",
    "/.eid/Callback",
    "/.eid/callback;x",
    "/.eid/callback%2f",
    "/.eid/callback/",
    "/.eid/",
    "/.eid/index.html",
    "/.eid/go",
    "/.eid//callback",
    "/.eid/./callback/../Callback",
    "/x/../.eid/Callback",
    "/.EID/callback",
])
def test_endpoint_tricks_open_nothing(tree, logcheck, target):
    logcheck(tree).expect_log(r"AH01630", r"AH01797", r"AH00126", r"AH10244")
    status, text = raw_get(tree, target)
    assert SECRET not in text
    assert status in (400, 403, 404), (status, text[:300])


@pytest.mark.parametrize("target", ["/.eid/callback", "//.eid/callback", "/.eid/./callback",
                                    "/.eid/x/../callback"])
def test_exact_endpoint_reaches_handler_not_file(tree, logcheck, target):
    # httpd normalises these to /.eid/callback: our handler (a stub: 404), never
    # the file of that name, and the refused user passes no Require for it
    status, text = raw_get(tree, target)
    assert status == 404 and SECRET not in text


def test_internal_redirect_to_endpoint_is_not_served(tree, logcheck):
    # the doctor may read the site; a 404 goes to ErrorDocument /.eid/callback,
    # an internal redirect: the login endpoint is not run there, the request is
    # an ordinary one (the file of that name, which the doctor may read)
    status, text = raw_get(tree, "/nonexistent", user="doctor-region")
    assert status == 404
    assert SECRET in text  # the file, not the endpoint: the doctor may read it
    # the refused nurse gets no file through the same path
    logcheck(tree).expect_log(r"AH01630")
    status, text = raw_get(tree, "/nonexistent")
    assert status == 403 and SECRET not in text


def test_subrequest_to_endpoint_is_not_served(tree, logcheck):
    logcheck(tree).expect_log(r"AH01630", r"AH01797", r"unable to include")
    status, text = raw_get(tree, "/open/ssi.shtml")
    assert status == 200
    assert SECRET not in text
    assert "logged out" not in text and "utloggad" not in text


# ---- a custom EidEndpointPath -----------------------------------------------

def custom_make():
    return Httpd(TRUST_PROFILES + "EidEndpointPath /auth/x\n"
                 'ScriptAliasMatch "^/[a-z0-9-]+/echo$" "{root}/cgi/echo.py"\n'
                 "<Location /loa3/>\nAuthType eid\nRequire eid-loa 3\n</Location>\n",
                 name="epcustom")


custom = server_fixture(custom_make)


def test_custom_endpoint_path(custom, logcheck):
    logcheck(custom).expect_log(r"AH01630")
    r = get(custom, "/loa3/echo", "nurse-kommun-reserve", HTML)
    assert r.status_code == 403 and "tillitsnivå 3" in r.content.decode("utf-8")
    r = get(custom, "/auth/x/logged-out", None, HTML)
    assert r.status_code == 200 and "Du är utloggad" in r.content.decode("utf-8")
    # the default path is an ordinary URI there
    r = get(custom, "/.eid/logged-out", None, HTML)
    assert r.status_code == 404 and "utloggad" not in r.text
