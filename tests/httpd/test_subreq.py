"""What subrequests (mod_rewrite -U, SSI includes) and internal redirects
(ErrorDocument) see: the main request's request id, never its identity in a
location that does not authenticate, and never memory of their own pool left in
the main request's state."""
import json
import os
import re

import requests

from conftest import server_fixture
from eidtest import TRUST_PROFILES, Httpd, manifest, pki, unique_path, user_cert

M = manifest()
NURSE = M["nurse-kommun"]
CIT = M["citizen"]
RID = r"[A-Za-z0-9_-]{16}"

# The SSI page: each include's output on a line of its own, after a label.
PAGE = ('A:<!--#include virtual="/open/echo" -->\n'
        'B:<!--#include virtual="/eid2/echo" -->\n'
        'C:<!--#include virtual="/main/echo" -->\n')


def body():
    return TRUST_PROFILES + """
ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"
<Directory {root}/htdocs>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
ErrorDocument 403 /errdoc/echo
<Location /main/>
    AuthType eid
    Require valid-user
    EidExportEnv off
</Location>
<Location /eid2/>
    AuthType eid
    Require valid-user
</Location>
<Location /rw/>
    AuthType eid
    Require valid-user
    RewriteEngine on
    RewriteCond %{{REQUEST_URI}} -U
    RewriteRule ^ - [E=EIDTEST_LOOKED_UP:1]
</Location>
<Location /loa3/>
    AuthType eid
    Require eid-loa 3
</Location>
<Location /e404/>
    AuthType eid
    Require valid-user
    ErrorDocument 404 /eiderr/echo
</Location>
<Location /eiderr/>
    AuthType eid
    Require valid-user
    EidExportAttributes hsa-id
</Location>
<Location /sithsonly/>
    AuthType eid
    EidCertProfiles siths
    Require valid-user
    ErrorDocument 403 /eid2/echo
</Location>
<Location /noidx/>
    AuthType eid
    Require valid-user
    Options -Indexes
    ErrorDocument 403 /eiderr/echo
</Location>
<Location /loa3e/>
    AuthType eid
    Require eid-loa 3
    ErrorDocument 403 /eid2/echo
</Location>
"""


def make():
    h = Httpd(body(), name="subreq", extra_modules=["rewrite", "include", "autoindex"])
    os.makedirs(os.path.join(h.root, "htdocs", "main"))
    os.makedirs(os.path.join(h.root, "htdocs", "noidx"))
    with open(os.path.join(h.root, "htdocs", "main", "page.shtml"), "w") as f:
        f.write(PAGE)
    return h


srv = server_fixture(make)
CA = pki("ca", "server-ca.pem")


def get(srv, path, user=None):
    return requests.get(srv.url(path), cert=user_cert(user) if user else None, verify=CA,
                        timeout=20)


def audit_id(srv, path):
    recs = srv.wait_audit(path, 1)
    assert len(recs) == 1, recs
    assert re.fullmatch(RID, recs[0]["request_id"]), recs[0]
    return recs[0]["request_id"]


def includes(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"([A-Z]):(.*)$", line)
        if m:
            out[m.group(1)] = json.loads(m.group(2))
    return out


def test_ssi_include_into_open_location_gets_no_identity(srv, logcheck):
    logcheck(srv)
    r = get(srv, "/main/page.shtml", "citizen")
    assert r.status_code == 200, r.text
    inc = includes(r.text)
    assert set(inc) == {"A", "B", "C"}, r.text
    rid = audit_id(srv, "/main/page.shtml")
    # A: no AuthType eid there - nothing about the user, although the main
    # request was authenticated (and exports nothing itself: EidExportEnv off).
    a = inc["A"]
    assert not [k for k in a if k.startswith("EID_") and k != "EID_REQUEST_ID"], a
    assert "REMOTE_USER" not in a, a
    assert CIT["pnr"] not in json.dumps(a)
    assert a.get("EID_REQUEST_ID", rid) == rid
    # B: an eid location with its own configuration: what that location exports,
    # under the main request's id.
    b = inc["B"]
    assert b["EID_PNR"] == CIT["pnr"] and b["EID_METHOD"] == "cert", b
    assert b["EID_REQUEST_ID"] == rid, (b, rid)
    # C: the main location itself (EidExportEnv off): no EID_ variables.
    c = inc["C"]
    assert not [k for k in c if k.startswith("EID_") and k != "EID_REQUEST_ID"], c


def test_rewrite_lookup_subrequest_keeps_request_id(srv, logcheck):
    logcheck(srv)
    for i in range(5):
        path = unique_path("/rw/echo")
        # a long query string: the bytes a dangling id used to show
        r = get(srv, path + "?" + "q=" + "Z" * (200 + i), "nurse-kommun")
        assert r.status_code == 200, r.text
        env = r.json()
        assert env["EID_HSA_ID"] == NURSE["hsa_id"]
        assert re.fullmatch(RID, env["EID_REQUEST_ID"]), env["EID_REQUEST_ID"]
        assert env["EID_REQUEST_ID"] == audit_id(srv, path)


def test_error_document_in_eid_location_has_main_request_id(srv, logcheck):
    logcheck(srv)
    path = unique_path("/e404/missing")
    r = get(srv, path, "nurse-kommun")
    assert r.status_code == 404
    env = r.json()
    # the error document's own location config: hsa-id only
    assert env["EID_HSA_ID"] == NURSE["hsa_id"] and "EID_GIVEN_NAME" not in env, env
    assert env["EID_REQUEST_ID"] == audit_id(srv, path)


def test_error_document_after_denial_has_id_but_no_identity(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630")
    path = unique_path("/loa3/echo")
    r = get(srv, path, "nurse-kommun-reserve")
    assert r.status_code == 403
    env = r.json()
    assert not [k for k in env if "EID_" in k and not k.endswith("EID_REQUEST_ID")], env
    assert env["EID_REQUEST_ID"] == audit_id(srv, path)


def test_error_document_into_eid_location_after_refusal_has_no_identity(srv, logcheck):
    # A citizen certificate refused at a SITHS-only location, and a user
    # denied by Require eid-loa: the ErrorDocument is in another eid location
    # that would accept them.  The error page must not authenticate the
    # refused credential (it would hand the refused user to it); the client
    # gets the refusal's status, and exactly one audit record says why.
    logcheck(srv)
    srv.expect_log(r"EID0\d{4}|AH01630|AH01631|AH00\d+")
    for base, user, decision in (("/sithsonly/echo", "citizen", "unauthenticated"),
                                 ("/loa3e/echo", "nurse-kommun-reserve", "deny")):
        path = unique_path(base)
        r = get(srv, path, user)
        assert r.status_code == 403, (base, r.status_code)
        assert CIT["pnr"] not in r.text and "EID_" not in r.text, (base, r.text[:300])
        recs = srv.wait_audit(path, 1)
        assert len(recs) == 1 and recs[0]["status"] == 403, recs
        assert recs[0]["decision"] == decision, recs
        assert CIT["pnr"] not in json.dumps(recs[0]), recs


def test_error_document_after_handler_403_keeps_identity(srv, logcheck):
    # The user was authenticated and admitted; the 403 is the handler's (no
    # directory listing).  The error document in an eid location is that
    # user's ordinary page: it authenticates as any request would.
    logcheck(srv)
    srv.expect_log(r"AH01276")
    r = get(srv, "/noidx/", "nurse-kommun")
    assert r.status_code == 403
    assert r.json()["EID_HSA_ID"] == NURSE["hsa_id"], r.text[:300]
