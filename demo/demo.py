#!/usr/bin/python3
"""make demo: httpd with mod_auth_eid protecting a demo service on loopback.

Starts a real httpd (mod_ssl + mod_auth_eid) on https://localhost:8443 (or a free
port), tries every demo user against every demo policy with curl, prints the
matrix and the curl commands, then keeps serving until Ctrl-C.
--oneshot: stop after the matrix (used by the tests).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "httpd"))
from eidtest import TRUST_PROFILES, Httpd, manifest, pki  # noqa: E402

M = manifest()
NURSE, DOCTOR = M["nurse-kommun"], M["doctor-region"]

POLICIES = [
    ("/whoami/", "any accepted e-ID", "Require valid-user"),
    ("/vard/", "care staff, LoA3 card", "EidCertProfiles siths\nRequire eid-loa 3"),
    ("/kommun/", "staff of the municipality, LoA2+",
     "<RequireAll>\nRequire eid-loa 2\nRequire eid-org %s\n</RequireAll>" % NURSE["org_number"]),
    ("/region/", "staff of Region (SE2321000016-)", "Require eid-org SE2321000016-"),
    ("/invanare/", "citizens with e-legitimation", "EidCertProfiles eid\nRequire eid-loa 3"),
]
USERS = [
    ("nurse-kommun", "nurse, municipality, LoA3 HSA-ID card"),
    ("nurse-kommun-reserve", "same nurse, reserve card (LoA2)"),
    ("doctor-region", "doctor, region, Mobile SITHS (LoA3 by policy)"),
    ("citizen", "citizen, e-ID with personnummer"),
    ("function", "function certificate (a system, not a person)"),
    ("other-ca", "certificate from a CA no profile names"),
]


def config():
    conf = TRUST_PROFILES + """
ScriptAliasMatch "^/[a-z]+/" "{root}/cgi/service.py"
"""
    for path, _, rules in POLICIES:
        conf += "<Location %s>\nAuthType eid\nEidExportHeaders on\n%s\n</Location>\n" % (
            path, rules)
    return conf


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def curl_cmd(base, user, path):
    ca = pki("ca", "server-ca.pem")
    cert = "" if user is None else " --cert %s --key %s" % (
        pki("users", user + ".chain.pem"), pki("users", user + ".key"))
    return "curl -s --cacert %s%s %s%s" % (ca, cert, base, path)


def status(base, user, path):
    cmd = curl_cmd(base, user, path).split() + ["-o", "/dev/null", "-w", "%{http_code}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    return r.stdout.strip() if r.stdout.strip() != "000" else "TLS refused"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oneshot", action="store_true")
    ap.add_argument("--port", type=int, default=8443)
    args = ap.parse_args()
    port = args.port if port_free(args.port) else None
    h = Httpd(config(), name="demo", port=port, verify_client="optional")
    shutil.copy(os.path.join(HERE, "service.py"), os.path.join(h.root, "cgi", "service.py"))
    os.chmod(os.path.join(h.root, "cgi", "service.py"), 0o755)
    h.start()
    try:
        base = h.base
        print("\nmod_auth_eid demo: %s  (ServerRoot %s)\n" % (base, h.root))
        print("Who gets in where (HTTP status):\n")
        head = "%-22s" % "" + "".join("%-13s" % p for p, _, _ in POLICIES)
        print(head)
        for user, _ in USERS + [(None, "no certificate")]:
            row = "%-22s" % (user or "(no certificate)")
            row += "".join("%-13s" % status(base, user, p) for p, _, _ in POLICIES)
            print(row)
        print("\nPolicies:")
        for p, what, _ in POLICIES:
            print("  %-11s %s" % (p, what))
        print("\nUsers:")
        for u, what in USERS:
            print("  %-22s %s" % (u, what))
        print("\nTry it:")
        print("  " + curl_cmd(base, "nurse-kommun", "/whoami/"))
        print("  " + curl_cmd(base, "nurse-kommun-reserve", "/vard/") + "   # 403: LoA2 card")
        print("  " + curl_cmd(base, "citizen", "/invanare/"))
        print("\nIn a browser: import %s (password: demo) and open %s/whoami/"
              % (pki("users", "nurse-kommun.p12"), base))
        print("Audit records: %s\nError log:     %s" % (h.audit_log, h.error_log))
        if args.oneshot:
            return 0
        print("\nServing until Ctrl-C ...")
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        h.stop()
        print("\nstopped.")


if __name__ == "__main__":
    sys.exit(main())
