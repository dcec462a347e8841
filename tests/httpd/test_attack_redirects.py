"""Attacks on the subrequest / internal-redirect rule (docs/architecture.md):
mod_dir's and mod_negotiation's fast redirects, ErrorDocument into the same
configuration after a denial, mod_rewrite [PT] in a per-directory context,
Action handlers, ErrorDocument to a CGI after 401/500.  What the backend (the
echo CGI) sees must follow the configuration of the location that serves it."""
import json
import os
import re

import requests

from conftest import server_fixture
from eidtest import ECHO_CGI, TRUST_PROFILES, Httpd, manifest, pki, unique_path, user_cert

M = manifest()
CIT = M["citizen"]
NURSE = M["nurse-kommun"]
CA = pki("ca", "server-ca.pem")
RID = r"[A-Za-z0-9_-]{16}"


def body():
    return TRUST_PROFILES + """
ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"
<Directory {root}/htdocs/ssi>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
<Directory {root}/htdocs/dxs>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
<Location /dxs/>
    AuthType eid
    Require valid-user
</Location>
<Location /dxs/index.cgi>
    AuthType None
    Require all granted
</Location>
<Location /ssi/>
    AuthType eid
    Require valid-user
</Location>
<Location /eid2/>
    AuthType eid
    Require valid-user
    EidExportAttributes hsa-id pnr-pseudonym
</Location>
<Directory {root}/htdocs>
    Options +ExecCGI +MultiViews
    MultiviewsMatch Handlers
    AddHandler cgi-script .cgi
    DirectoryIndex index.cgi
    AllowOverride AuthConfig FileInfo
</Directory>
# mod_dir: the directory is an eid location exporting everything; its index
# script is not (AuthType None) - or exports no pnr.
<Location /dx/>
    AuthType eid
    Require valid-user
    EidExportHeaders on
</Location>
<Location /dx/index.cgi>
    AuthType None
    Require all granted
</Location>
<Location /dp/>
    AuthType eid
    Require valid-user
    EidExportHeaders on
</Location>
<Location /dp/index.cgi>
    EidExportAttributes -pnr
    EidExportHeaders off
</Location>
# mod_negotiation: /mv/page -> page.cgi, which is not an eid location
<Location /mv/>
    AuthType eid
    Require valid-user
    EidExportHeaders on
</Location>
<LocationMatch "^/mv/page\\.cgi$">
    AuthType None
    Require all granted
</LocationMatch>
# ErrorDocument into the very configuration that denied the user
<Location /same/>
    AuthType eid
    Require eid-loa 3
    ErrorDocument 403 /same/echo
</Location>
# Action: the handler script lives outside any eid location
Action eid-act /cgi/echo.py virtual
<Location /act/>
    AuthType eid
    Require valid-user
    SetHandler eid-act
</Location>
# ErrorDocument to a CGI after 401 (bearer, no token) and after 500
<Location /b401/>
    AuthType eid
    EidMethods bearer
    Require valid-user
    ErrorDocument 401 /cgi/echo.py
</Location>
<Location /e500/>
    AuthType eid
    Require valid-user
    ErrorDocument 500 /cgi/echo.py
</Location>
"""


def cgi(path, text=ECHO_CGI):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


FAIL_CGI = "#!/bin/sh\nexit 1\n"


def make():
    h = Httpd(body(), name="attack-redir",
              extra_modules=["rewrite", "include", "negotiation", "actions"])
    ht = os.path.join(h.root, "htdocs")
    cgi(os.path.join(ht, "dx", "index.cgi"))
    cgi(os.path.join(ht, "dp", "index.cgi"))
    cgi(os.path.join(ht, "mv", "page.cgi"))
    cgi(os.path.join(ht, "e500", "fail.cgi"), FAIL_CGI)
    os.makedirs(os.path.join(ht, "ssi"))
    with open(os.path.join(ht, "ssi", "page.shtml"), "w") as f:
        f.write('A:<!--#include virtual="/dx/" -->\n'
                'B:<!--#include virtual="/dp/" -->\n'
                'C:<!--#exec cgi="/eid2/echo" -->\n'
                'D:<!--#include virtual="/open/echo" -->\n')
    cgi(os.path.join(ht, "dxs", "index.cgi"))
    with open(os.path.join(ht, "dxs", "page.shtml"), "w") as f:
        f.write('A:<!--#include virtual="/dxs/" -->\n')
    # per-directory mod_rewrite [PT] from an eid directory into an open one
    os.makedirs(os.path.join(ht, "rwpt"))
    with open(os.path.join(ht, "rwpt", ".htaccess"), "w") as f:
        f.write("AuthType eid\nRequire valid-user\nEidExportHeaders on\n"
                "RewriteEngine on\nRewriteRule ^go$ /open/echo [PT]\n")
    return h


srv = server_fixture(make)


def get(srv, path, user=None, headers=None):
    return requests.get(srv.url(path), cert=user_cert(user) if user else None, verify=CA,
                        timeout=20, headers=headers)


def no_identity(env, who, user_ok=False):
    """Nothing of the user in what the backend sees.  user_ok: a fast redirect
    keeps httpd's r->user of the request the client made (authenticated there),
    so REMOTE_USER - the log-safe name - may remain."""
    bad = {k: v for k, v in env.items()
           if (k.startswith(("EID_", "HTTP_X_EID", "REDIRECT_EID_")) and
               not k.endswith("REQUEST_ID")) or
           (not user_ok and k in ("REMOTE_USER", "AUTH_TYPE"))}
    assert not bad, bad
    text = repr(env)
    for secret in (M[who].get("pnr"), M[who].get("hsa_id")):
        assert not secret or secret not in text, env


def test_directory_index_fast_redirect_into_open_location(srv, logcheck):
    logcheck(srv)
    r = get(srv, "/dx/", "citizen")
    assert r.status_code == 200, r.text
    no_identity(r.json(), "citizen", user_ok=True)


def test_directory_index_fast_redirect_follows_target_export_config(srv, logcheck):
    logcheck(srv)
    r = get(srv, "/dp/", "citizen")
    assert r.status_code == 200, r.text
    env = r.json()
    # the script's location: no pnr, no headers - the directory's would be both
    assert "EID_PNR" not in env, env
    assert not [k for k in env if k.startswith("HTTP_X_EID")], env
    assert env["EID_METHOD"] == "cert" and env["EID_PNR_PSEUDONYM"], env


def test_multiviews_fast_redirect_into_open_location(srv, logcheck):
    logcheck(srv)
    r = get(srv, "/mv/page", "citizen")
    assert r.status_code == 200, r.text
    no_identity(r.json(), "citizen", user_ok=True)


def test_error_document_same_config_after_denial_has_no_user(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630|AH01631|EID01101")
    path = unique_path("/same/echo")
    r = get(srv, path, "nurse-kommun-reserve")  # loa 2: denied
    assert r.status_code == 403
    env = r.json()
    no_identity(env, "nurse-kommun-reserve")
    rec = srv.wait_audit(path, 1)
    assert len(rec) == 1 and rec[0]["decision"] == "deny", rec
    assert env.get("EID_REQUEST_ID", rec[0]["request_id"]) == rec[0]["request_id"]


def test_rewrite_pt_in_htaccess_into_open_location(srv, logcheck):
    logcheck(srv)
    r = get(srv, "/rwpt/go", "citizen")
    assert r.status_code == 200, r.text
    no_identity(r.json(), "citizen")


def test_action_handler_outside_eid_location_gets_no_identity(srv, logcheck):
    logcheck(srv)
    r = get(srv, "/act/x", "citizen")
    assert r.status_code == 200, r.text
    no_identity(r.json(), "citizen")


def test_error_document_cgi_after_401_and_500(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01215|AH01220|AH01221|End of script output|fail\.cgi|EID0")
    path = unique_path("/b401/x")
    r = get(srv, path, headers={"X-Eid-Pnr": CIT["pnr"]})
    assert r.status_code == 401
    env = r.json()
    no_identity(env, "citizen")
    rec = srv.wait_audit(path, 1)
    assert len(rec) == 1 and re.fullmatch(RID, rec[0]["request_id"]), rec
    assert env.get("EID_REQUEST_ID", rec[0]["request_id"]) == rec[0]["request_id"]
    r = get(srv, "/e500/fail.cgi", "citizen")
    assert r.status_code == 500
    no_identity(r.json(), "citizen")


def test_ssi_includes_of_fast_redirecting_directories(srv, logcheck):
    logcheck(srv)
    path = "/ssi/page.shtml"
    r = get(srv, path, "citizen")
    assert r.status_code == 200, r.text
    inc = {}
    for line in r.text.splitlines():
        m = re.match(r"([A-Z]):(.*)$", line)
        if m:
            inc[m.group(1)] = json.loads(m.group(2))
    assert set(inc) == {"A", "B", "C", "D"}, r.text
    rid = srv.wait_audit(path, 1)[0]["request_id"]
    # A: /dx/ -> index.cgi without AuthType eid
    no_identity(inc["A"], "citizen", user_ok=True)
    # B: /dp/ -> index.cgi exporting all but pnr, no headers
    b = inc["B"]
    assert "EID_PNR" not in b and b["EID_PNR_PSEUDONYM"], b
    assert not [k for k in b if k.startswith("HTTP_X_EID")], b
    # C: exec cgi into an eid location: its own list
    c = inc["C"]
    assert {k for k in c if k.startswith("EID_")} == {
        "EID_PNR_PSEUDONYM", "EID_REQUEST_ID"}, c
    # D: an open location
    no_identity(inc["D"], "citizen")
    for e in inc.values():
        assert e.get("EID_REQUEST_ID", rid) == rid, (e, rid)


def test_ssi_include_sharing_the_page_config_then_fast_redirect(srv, logcheck):
    # the include of the page's own directory runs with the page's very
    # configuration (it shares the page's identity); mod_dir then moves it
    # to an index script without AuthType eid
    logcheck(srv)
    r = get(srv, "/dxs/page.shtml", "citizen")
    assert r.status_code == 200, r.text
    m = re.match(r"A:(.*)$", r.text.splitlines()[0])
    assert m, r.text
    no_identity(json.loads(m.group(1)), "citizen", user_ok=True)


# ---- with mod_unique_id: one id for the request, its subrequests, its error
# document, the backend and the audit record --------------------------------

def make_uid():
    h = Httpd(TRUST_PROFILES + """
ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"
<Location /u/>
    AuthType eid
    Require eid-loa 3
    ErrorDocument 403 /open/echo
    ErrorDocument 404 /u/echo
</Location>
""", name="attack-uid", extra_modules=["unique_id"])
    return h


uid = server_fixture(make_uid)


def test_unique_id_is_the_request_id_everywhere(uid, logcheck):
    logcheck(uid)
    uid.expect_log(r"AH01630|AH01631|EID01101")
    for user, path, status in (("nurse-kommun", unique_path("/u/echo"), 200),
                               ("nurse-kommun", unique_path("/u/missing"), 404),
                               ("nurse-kommun-reserve", unique_path("/u/echo"), 403)):
        r = get(uid, path, user)
        assert r.status_code == status, (path, r.text)
        rec = uid.wait_audit(path, 1)
        assert len(rec) == 1, rec
        env = r.json()
        assert env["EID_REQUEST_ID"] == rec[0]["request_id"], (env, rec)
        assert re.fullmatch(r"[A-Za-z0-9@_-]{20,32}", rec[0]["request_id"]), rec
