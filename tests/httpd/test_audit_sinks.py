"""Audit records through a piped logger, and with pseudonymisation off."""
import json
import os
import time

import requests

from eidtest import TRUST_PROFILES, Httpd, manifest, pki, user_cert

CA = pki("ca", "server-ca.pem")


def poll_lines(path, n, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            lines = open(path, encoding="utf-8").read().splitlines()
            if len(lines) >= n:
                return [json.loads(x) for x in lines]
        time.sleep(0.05)
    raise AssertionError("no %d audit lines in %s" % (n, path))


def test_piped_logger_and_clear_pnr(logcheck):
    body = TRUST_PROFILES + """
EidAuditLog "|/bin/sh -c 'cat >> {root}/piped.log'"
EidAuditPseudonymise off
<Location /p/>
AuthType eid
Require eid-loa 3
</Location>
"""
    h = Httpd(body, name="pipe")
    h.start()
    try:
        logcheck(h)
        h.expect_log(r"AH01630")
        cit = manifest()["citizen"]
        assert requests.get(h.url("/p/"), cert=user_cert("citizen"), verify=CA,
                            timeout=20).status_code == 404  # admitted; no such file
        assert requests.get(h.url("/p/"), cert=user_cert("nurse-kommun-reserve"), verify=CA,
                            timeout=20).status_code == 403
        recs = poll_lines(os.path.join(h.root, "piped.log"), 2)
        assert recs[0]["decision"] == "allow" and recs[0]["status"] == 404
        assert recs[0]["pnr"] == cit["pnr"]  # pseudonymisation turned off on purpose
        assert "pnr_pseudonym" not in recs[0]
        assert recs[1]["decision"] == "deny" and recs[1]["loa"] == 2
        assert not os.path.exists(h.audit_log) or os.path.getsize(h.audit_log) == 0
    finally:
        h.stop()
        h.cleanup()
