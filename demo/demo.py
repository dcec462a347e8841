#!/usr/bin/python3
"""make demo: httpd with mod_auth_eid protecting a demo service on loopback.

Starts a real httpd (mod_ssl + mod_auth_eid) on https://localhost:8443 (or a free
port), tries every demo user against every demo policy with curl, prints the
matrix and the curl commands, then keeps serving until Ctrl-C.  For the API
part it also starts two test OpenID Providers (tests/op) on loopback: one with
Inera claims, one with the Swedish OIDC profile; their tokens are minted now
and tried the same way.
The portal part is a browser login (OpenID Connect) through the Inera-style test
OP: a user is chosen on its login page; the demo first logs each test user in with
a cookie jar (the OP's auto-login) and prints who gets in where.
--oneshot: stop after the matrices (used by the tests).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "httpd"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "op"))
from eidtest import TRUST_PROFILES, Httpd, free_port, manifest, pki  # noqa: E402
from opctl import TestOP  # noqa: E402

M = manifest()
NURSE, DOCTOR = M["nurse-kommun"], M["doctor-region"]

POLICIES = [
    ("/whoami/", "any accepted e-ID", "EidCertProfiles siths eid\nRequire valid-user"),
    ("/vard/", "care staff, LoA3 card", "EidCertProfiles siths\nRequire eid-loa 3"),
    ("/kommun/", "staff of the municipality, LoA2+",
     "EidCertProfiles siths\n<RequireAll>\nRequire eid-loa 2\nRequire eid-org %s\n"
     "</RequireAll>" % NURSE["org_number"]),
    ("/region/", "staff of Region (SE2321000016-)",
     "EidCertProfiles siths\nRequire eid-org SE2321000016-"),
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

# The API behind bearer tokens (conf-samples/bearer-api.conf in small).
API_AUD = "api://incident"
API_POLICIES = [
    ("/api/", "any valid token from either provider", "Require valid-user"),
    ("/api-report/", "tokens with the scope incident:write", "Require eid-scope incident:write"),
    ("/api-region/", "staff of Region Exempel (org 2321000016)", "Require eid-org 2321000016"),
]
# (name, provider, what to mint, what it is)
TOKENS = [
    ("inera-nurse", "inera", {"preset": "inera-nurse"},
     "nurse, Region Exempel, SITHS login at Inera's IdP (Inera claims)"),
    ("citizen", "region", {"preset": "oidc-sweden-citizen"},
     "citizen, BankID-style login (https://id.oidc.se claims)"),
    ("home-care-staff", "region", {"preset": "oidc-sweden-staff"},
     "staff of a private home-care company (orgNumber 5562265719)"),
    ("expired", "inera", {"preset": "inera-nurse", "variant": "expired"},
     "the nurse's token, expired an hour ago"),
    ("alg-none", "inera", {"preset": "inera-nurse", "variant": "alg-none"},
     "unsigned (alg none)"),
    ("other-api", "inera", {"preset": "inera-nurse", "variant": "foreign-aud"},
     "a valid token issued for another API (aud)"),
]


# Browser login (conf-samples/oidc-login.conf in small): the inera OP logs users in.
PORTAL_POLICIES = [
    ("/portal/", "anyone who logs in at the Inera-style OP", "Require valid-user"),
    ("/portal-region/", "staff of Region Exempel (org 2321000016)",
     "Require eid-org 2321000016"),
    ("/portal-loa3/", "level of assurance 3 (a lower login is sent back to log in)",
     "Require eid-loa 3"),
]
PORTAL_USERS = [
    ("nurse", "Tolvan Tolvansson, nurse, Region Exempel, LoA3"),
    ("othernurse", "Olle Annansson, nurse, Region Annan, LoA3"),
    ("lowlevel", "Lena Lagniva, Region Exempel, LoA2"),
]


def config(ops, port):
    conf = TRUST_PROFILES + """
ScriptAliasMatch "^/[a-z0-9-]+/" "{root}/cgi/service.py"
EidSessionKeyFile {root}/session.key
EidRedirectURI https://localhost:%d/.eid/callback
""" % port
    conf += ("EidProvider inera issuer=%s discovery=on audience=%s claims=inera login=on "
             "client_id=portal client_secret_file={root}/portal.secret\n"
             % (ops["inera"].issuer, API_AUD))
    conf += ("EidProvider region issuer=%s jwks_uri=%s audience=%s claims=oidc-sweden\n"
             % (ops["region"].issuer, ops["region"].jwks_uri, API_AUD))
    for path, _, rules in POLICIES:
        conf += "<Location %s>\nAuthType eid\nEidExportHeaders on\n%s\n</Location>\n" % (
            path, rules)
    for path, _, rules in PORTAL_POLICIES:
        conf += ("<Location %s>\nAuthType eid\nEidMethods oidc\nEidExportHeaders on\n%s\n"
                 "</Location>\n" % (path, rules))
    for path, _, rules in API_POLICIES:
        conf += ("<Location %s>\nAuthType eid\nEidMethods bearer\nEidBearerProviders inera "
                 "region\nEidRealm incident-api\n%s\n</Location>\n" % (path, rules))
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


def bearer_cmd(base, token_file, path):
    return 'curl -s --cacert %s -H "Authorization: Bearer $(cat %s)" %s%s' % (
        pki("ca", "server-ca.pem"), token_file, base, path)


def status(base, user, path, token=None):
    cmd = curl_cmd(base, user, path).split() + ["-o", "/dev/null", "-w", "%{http_code}"]
    if token is not None:
        cmd += ["-H", "Authorization: Bearer " + token]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    return r.stdout.strip() if r.stdout.strip() != "000" else "TLS refused"


def start_ops(root):
    ops = {}
    try:
        for name in ("inera", "region"):
            ops[name] = TestOP(os.path.join(root, "op-" + name)).start()
    except Exception:
        for op in ops.values():
            op.stop()
        raise
    return ops


def mint_tokens(ops, root):
    """name -> (token, file holding it); valid for 8 hours."""
    d = os.path.join(root, "tokens")
    os.makedirs(d, exist_ok=True)
    out = {}
    for name, op, req, _ in TOKENS:
        tok = ops[op].mint(aud=API_AUD, ttl=8 * 3600, **req)
        path = os.path.join(d, name + ".jwt")
        with open(path, "w") as f:
            f.write(tok)
        out[name] = (tok, path)
    return out


def bearer_part(base, ops, tokens):
    print("\nThe API behind bearer tokens (HTTP status):\n")
    print("%-22s" % "" + "".join("%-14s" % p for p, _, _ in API_POLICIES))
    for name, _, _, _ in TOKENS + [(None, None, None, None)]:
        tok = tokens[name][0] if name else None
        row = "%-22s" % (name or "(no token)")
        row += "".join("%-14s" % status(base, None, p, tok) for p, _, _ in API_POLICIES)
        print(row)
    print("\nPolicies:")
    for p, what, _ in API_POLICIES:
        print("  %-13s %s" % (p, what))
    print("\nTokens (minted now by the two test OpenID Providers, valid 8 hours):")
    for name, op, _, what in TOKENS:
        print("  %-22s %s: %s" % (name, op, what))
    print("\nTry it:")
    print("  " + bearer_cmd(base, tokens["inera-nurse"][1], "/api/"))
    print("  " + bearer_cmd(base, tokens["citizen"][1], "/api-report/") + "   # 403")
    print("  curl -si --cacert %s %s/api/ | grep -i www-authenticate   # 401 + challenge"
          % (pki("ca", "server-ca.pem"), base))
    print("Mint more tokens (the answer is JSON; its \"token\" is the token):")
    for op, preset in (("inera", "inera-nurse"), ("region", "oidc-sweden-staff")):
        print("  curl -s -X POST -H 'Content-Type: application/json' "
              "-d '{\"preset\": \"%s\", \"aud\": \"%s\"}' %s/admin/mint"
              % (preset, API_AUD, ops[op].issuer))
    print("  (presets: inera-nurse at inera; oidc-sweden-citizen, -staff, -coord at region)")


def prepare_login(h, ops):
    """Session key and client secret files; the portal client at the OP."""
    key = os.path.join(h.root, "session.key")
    with open(key, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(key, 0o600)
    with open(os.path.join(h.root, "portal.secret"), "w") as f:
        f.write("portal-secret\n")
    ops["inera"].admin("/admin/clients", {
        "client_id": "portal", "client_secret": "portal-secret",
        "redirect_uris": [h.base + "/.eid/callback"],
        "post_logout_redirect_uris": [h.base + "/.eid/logged-out"],
        "backchannel_logout_uri": h.base + "/.eid/backchannel-logout",
        "backchannel_ca_file": pki("ca", "server-ca.pem")})


def login_status(base, op, user, path, jar):
    """Log `user` in with curl and a cookie jar (the OP's auto-login); the
    status of `path` at the end."""
    op.admin("/admin/auto-login", {"user": user})
    cmd = ["curl", "-s", "--cacert", pki("ca", "server-ca.pem"), "-b", jar, "-c", jar, "-L",
           "--max-redirs", "8", "-o", "/dev/null", "-w", "%{http_code}", base + path]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def login_part(base, ops, root):
    op = ops["inera"]
    print("\nThe portal behind a browser login (HTTP status after logging in with curl):\n")
    print("%-14s" % "" + "".join("%-16s" % p for p, _, _ in PORTAL_POLICIES))
    for user, _ in PORTAL_USERS:
        row = "%-14s" % user
        for p, _, _ in PORTAL_POLICIES:
            jar = os.path.join(root, "jar-%s" % user)
            if os.path.exists(jar):
                os.unlink(jar)
            row += "%-16s" % login_status(base, op, user, p, jar)
        print(row)
    op.admin("/admin/auto-login", {"user": None})  # browsers choose on the login page
    print("\nUsers (at the test OP's login page):")
    for u, what in PORTAL_USERS:
        print("  %-12s %s" % (u, what))
    print("\nIn a browser: open %s/portal/ (trust %s), choose a user on the test OP's "
          "login page;\n  %s/portal-loa3/ sends a LoA2 login back to log in at level 3; "
          "log out at %s/.eid/logout"
          % (base, pki("ca", "server-ca.pem"), base, base))
    print("With curl (docs/login.md):")
    print("  curl -s -X POST -d '{\"user\": \"nurse\"}' %s/admin/auto-login" % op.issuer)
    print("  curl -s --cacert %s -b /tmp/jar -c /tmp/jar -L %s/portal/"
          % (pki("ca", "server-ca.pem"), base))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oneshot", action="store_true")
    ap.add_argument("--port", type=int, default=8443)
    args = ap.parse_args()
    port = args.port if port_free(args.port) else free_port()
    ops_dir = tempfile.mkdtemp(prefix="eid-demo-ops-")
    ops = start_ops(ops_dir)
    try:
        h = Httpd(config(ops, port), name="demo", port=port, verify_client="optional")
        prepare_login(h, ops)
    except Exception:
        for op in ops.values():
            op.stop()
        shutil.rmtree(ops_dir, ignore_errors=True)
        raise
    shutil.copy(os.path.join(HERE, "service.py"), os.path.join(h.root, "cgi", "service.py"))
    os.chmod(os.path.join(h.root, "cgi", "service.py"), 0o755)
    try:
        h.start()
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
        bearer_part(base, ops, mint_tokens(ops, h.root))
        login_part(base, ops, h.root)
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
        for op in ops.values():
            op.stop()
        shutil.rmtree(ops_dir, ignore_errors=True)
        print("\nstopped.")


if __name__ == "__main__":
    sys.exit(main())
