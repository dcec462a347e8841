"""The personnummer of a bearer-token user inside other claims (sub, email,
name) in any spelling, and the samordningsnummer: never in clear in
REMOTE_USER, the access log (%u), the error log (denials, at debug level) or
the audit record.  The real test OP on loopback."""
import os
import re
import shutil
import sys
import tempfile

import pytest
import requests

from eidtest import REPO, TRUST_PROFILES, Httpd, pki, unique_path

sys.path.insert(0, os.path.join(REPO, "tests", "op"))
from opctl import TestOP  # noqa: E402

AUD = "api://incident"
CA = pki("ca", "server-ca.pem")
ATTRS = ["subject", "display-name", "given-name"]  # email: not in the oidc-sweden map


@pytest.fixture(scope="module")
def op():
    d = tempfile.mkdtemp(prefix="eid-op-pnr-")
    o = TestOP(d).start()
    yield o
    o.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def srv(op):
    c = TRUST_PROFILES
    c += ("EidProvider sweden issuer=%s jwks_uri=%s audience=%s claims=oidc-sweden\n"
          % (op.issuer, op.jwks_uri, AUD))
    c += 'ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"\n'
    c += 'LogFormat "%h %u \\"%r\\" %>s" eidtest\nCustomLog {root}/access.log eidtest\n'
    for a in ATTRS:
        c += ("<Location /%s/>\nAuthType eid\nEidMethods bearer\nEidUserAttribute %s\n"
              "Require valid-user\n</Location>\n" % (a, a))
        c += ("<Location /%s-deny/>\nAuthType eid\nEidMethods bearer\nEidUserAttribute %s\n"
              "Require eid-loa 4\n</Location>\n" % (a, a))
    s = Httpd(c, name="attack-pnr", loglevel="debug ssl:info")
    s.start()
    yield s
    s.stop()
    s.cleanup()


def forms(pnr):
    return {pnr, pnr[2:], pnr[:8] + "-" + pnr[8:], pnr[2:8] + "-" + pnr[8:],
            pnr[2:8] + "+" + pnr[8:]}


def call(srv, path, tok):
    return requests.get(srv.url(path), verify=CA, timeout=20,
                        headers={"Authorization": "Bearer " + tok})


@pytest.mark.parametrize("preset,claim", [
    ("oidc-sweden-citizen", "https://id.oidc.se/claim/personalIdentityNumber"),
    ("oidc-sweden-coord", "https://id.oidc.se/claim/coordinationNumber"),
])
def test_pnr_inside_claims_never_in_logs(srv, op, preset, claim, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630|AH01631|EID01101")
    pnr = op.mint_info(preset=preset)["claims"][claim]
    p10 = pnr[2:8] + "-" + pnr[8:]
    claims = {"sub": "PNOSE-" + pnr, "email": pnr + "@example.se",
              "name": "Test " + p10, "given_name": pnr[:8] + "-" + pnr[8:]}
    tok = op.mint(preset=preset, claims=claims)
    paths = []
    for a in ATTRS:
        path = unique_path("/%s/echo" % a)
        paths.append(path)
        r = call(srv, path, tok)
        assert r.status_code == 200, (a, r.text)
        env = r.json()
        assert env["EID_PNR"] == pnr, env
        for f in forms(pnr):
            assert f not in env["REMOTE_USER"], (a, env["REMOTE_USER"])
        assert call(srv, unique_path("/%s-deny/echo" % a), tok).status_code == 403
    for path in paths:
        assert srv.wait_audit(path, 1), path
    srv.stop()  # flushes the access log
    srv.start()
    text = (open(srv.audit_log, encoding="utf-8").read() + srv.read_error_log() +
            open(os.path.join(srv.root, "access.log"), encoding="utf-8").read())
    for f in forms(pnr):
        hits = [line for line in text.splitlines() if f in line]
        assert not hits, (f, hits[:3])
