"""A personnummer inside another value (a subject DN) never reaches a log in
clear; Require eid-* without AuthType eid is refused (at -t, or at run time with
a tagged log line, an audit record and 500); an exclusion-only attribute list
means "all except"."""
import os
import re

import requests

from conftest import server_fixture
from eidtest import TRUST_PROFILES, Httpd, manifest, pki, unique_path, user_cert

M = manifest()
CA = pki("ca", "server-ca.pem")
PNR_USERS = ("citizen", "citizen-coord", "citizen-pnose", "nurse-pnr")


def pnr_forms(pnr):
    """The spellings a log could hold: 12 and 10 digits, with and without '-'."""
    return {pnr, pnr[2:], pnr[:8] + "-" + pnr[8:], pnr[2:8] + "-" + pnr[8:]}


def make():
    h = Httpd(TRUST_PROFILES + """
ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"
LogFormat "%h %u \\"%r\\" %>s user=%{{REMOTE_USER}}e" eidtest
CustomLog {root}/access.log eidtest
<Location /subj/>
    AuthType eid
    EidUserAttribute subject
    Require eid-loa 3
</Location>
<Location /subj-deny/>
    AuthType eid
    EidUserAttribute subject
    Require eid-org 2321000016
</Location>
<Location /hsaonly/>
    AuthType eid
    EidUserAttribute hsa-id
    Require valid-user
</Location>
<Location /nopnr/>
    AuthType eid
    EidExportAttributes -pnr
    Require valid-user
</Location>
<Directory {root}/htdocs/ht>
    AllowOverride AuthConfig
</Directory>
""", name="pnrlog", loglevel="warn auth_eid:info authz_core:info")
    d = os.path.join(h.root, "htdocs", "ht")
    os.makedirs(d)
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("hi\n")
    with open(os.path.join(d, ".htaccess"), "w") as f:
        f.write("Require eid-loa 3\n")
    # the misconfigured line inside a RequireAny that another line grants
    d = os.path.join(h.root, "htdocs", "ht", "any")
    os.makedirs(d)
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("hi\n")
    with open(os.path.join(d, ".htaccess"), "w") as f:
        f.write("<RequireAny>\nRequire eid-loa 3\nRequire all granted\n</RequireAny>\n")
    return h


srv = server_fixture(make)


def get(srv, path, user=None):
    return requests.get(srv.url(path), cert=user_cert(user) if user else None, verify=CA,
                        timeout=20)


def test_subject_user_never_shows_pnr_in_logs(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630|AH01631|EID0\d{4}")
    paths = {}
    for u in PNR_USERS:
        paths[u] = unique_path("/subj/echo")
        r = get(srv, paths[u], u)
        assert r.status_code == 200, (u, r.text)
        env = r.json()
        # the backend has the real subject, REMOTE_USER is the log-safe form
        assert M[u]["pnr"] in env["EID_SUBJECT"]
        assert M[u]["pnr"] not in env["REMOTE_USER"], env
        assert env["REMOTE_USER"].startswith("serialNumber="), env
        assert get(srv, unique_path("/subj-deny/echo"), u).status_code == 403
    for u in PNR_USERS:
        recs = srv.wait_audit(paths[u], 1)
        assert recs and recs[0]["user"].startswith("serialNumber="), recs
    srv.stop()  # flushes the access log
    srv.start()
    text = (open(srv.audit_log, encoding="utf-8").read() + srv.read_error_log() +
            open(os.path.join(srv.root, "access.log"), encoding="utf-8").read())
    assert "serialNumber=" in text
    for u in PNR_USERS:
        for form in pnr_forms(M[u]["pnr"]):
            assert form not in text, (u, form)


def test_exclusion_only_export_list_means_all_except(srv, logcheck):
    logcheck(srv)
    env = get(srv, "/nopnr/echo", "citizen").json()
    assert "EID_PNR" not in env, env
    assert env["EID_PNR_PSEUDONYM"] and env["EID_METHOD"] == "cert", env


def test_htaccess_require_eid_without_authtype(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"EID01102")
    path = unique_path("/ht")
    r = get(srv, path, "nurse-kommun")
    assert r.status_code == 500
    assert re.search(r"EID01102: .*AuthType eid", srv.read_error_log())
    recs = srv.wait_audit(path, 1)
    assert len(recs) == 1, recs
    assert recs[0]["decision"] == "error" and recs[0]["status"] == 500, recs
    assert recs[0]["tag"] == "EID01102", recs


def test_htaccess_require_eid_without_authtype_in_require_any(srv, logcheck):
    # Another line of the RequireAny grants: the misconfigured eid line must
    # not be skipped silently (documented: 500, EID01102, audit "error"), and
    # the audit record must agree with the status sent.
    logcheck(srv)
    srv.expect_log(r"EID01102")
    path = unique_path("/ht/any")
    r = get(srv, path, "nurse-kommun")
    assert r.status_code == 500, r.status_code
    recs = srv.wait_audit(path, 1)
    assert len(recs) == 1, recs
    assert recs[0]["decision"] == "error" and recs[0]["status"] == 500, recs
    assert recs[0]["tag"] == "EID01102", recs


def test_audit_reason_carries_tag(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630|AH01631")
    path = unique_path("/subj-deny/echo")
    assert get(srv, path, "nurse-kommun").status_code == 403
    rec = srv.wait_audit(path, 1)[0]
    assert rec["decision"] == "deny" and rec["tag"] == "EID01101", rec


def configtest(snippet):
    h = Httpd(TRUST_PROFILES + "# pad\n" + snippet, name="cfg")
    try:
        r = h.configtest()
        return r, h.conf, open(h.conf).read().splitlines()
    finally:
        h.cleanup()


def test_require_eid_without_authtype_refused_at_configtest():
    r, conf, lines = configtest("<Location /x>\n<RequireAll>\nRequire eid-loa 3\n"
                                "</RequireAll>\n</Location>\n")
    assert r.returncode != 0, r.stderr
    m = re.search(r"line (\d+) of (\S+?):", r.stderr)
    assert m and m.group(2) == conf, r.stderr
    assert lines[int(m.group(1)) - 1] == "Require eid-loa 3", r.stderr
    assert "AuthType eid" in r.stderr


def test_require_eid_with_enclosing_authtype_passes():
    for snippet in ("<Location /x>\nAuthType eid\n<RequireAny>\nRequire eid-loa 3\n"
                    "</RequireAny>\n</Location>\n",
                    "<Location /y>\nAuthType eid\n<Limit GET>\nRequire eid-method cert\n"
                    "</Limit>\n</Location>\n"):
        r, _, _ = configtest(snippet)
        assert r.returncode == 0, (snippet, r.stderr)


def test_no_user_attribute_is_one_refusal_without_identity(srv, logcheck):
    # EID01006: the citizen has no HSA-ID, the only EidUserAttribute.  403,
    # one audit record saying why, no identity for the backend or the logs.
    logcheck(srv)
    srv.expect_log(r"EID01006")
    pnr = M["citizen"]["pnr"]
    path = unique_path("/hsaonly/echo")
    r = get(srv, path, "citizen")
    assert r.status_code == 403
    assert pnr not in r.text and "EID_" not in r.text
    recs = srv.wait_audit(path, 1)
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["tag"] == "EID01006" and rec["status"] == 403, rec
    assert rec["decision"] == "unauthenticated" and not rec.get("user"), rec
    text = srv.read_error_log() + open(os.path.join(srv.root, "access.log")).read()
    for f in pnr_forms(pnr):
        assert f not in text and f not in str(rec), f
