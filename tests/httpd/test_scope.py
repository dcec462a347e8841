"""Configuration scope: a location uses exactly the trust profiles and token
providers it names (or its virtual host names), never "all that exist";
verdicts cached on a connection are keyed by what they depended on, not by
the address of a per-request configuration."""
import http.client
import os
import shutil
import ssl
import sys
import tempfile

import pytest
import requests

from eidtest import REPO, TRUST_ISSUERS, Httpd, free_port, pki, user_cert

sys.path.insert(0, os.path.join(REPO, "tests", "op"))
from opctl import TestOP  # noqa: E402

CA = pki("ca", "server-ca.pem")
AUD = "api://scope"
JWKS = os.path.join(REPO, "tests", "fuzz", "fuzz_jwt_jwks.json")

HTACCESS = {
    # directory -> .htaccess
    "a": "AuthType eid\nEidCertProfiles eid\nRequire valid-user\n",
    "b": "AuthType eid\nEidCertProfiles siths\nRequire valid-user\n",
    # names nothing while two profiles / two providers exist: misconfigured
    "none": "AuthType eid\nRequire valid-user\n",
    "tok": "AuthType eid\nEidMethods bearer\nRequire valid-user\n",
}


@pytest.fixture(scope="module")
def hsrv():
    body = TRUST_ISSUERS + (
        "EidProvider p1 issuer=https://p1.example audience=%s jwks_file={root}/jwks.json "
        "algs=ES256\n"
        "EidProvider p2 issuer=https://p2.example audience=%s jwks_file={root}/jwks.json "
        "algs=ES256\n"
        "<Directory {root}/htdocs>\nAllowOverride AuthConfig\n</Directory>\n" % (AUD, AUD))
    s = Httpd(body, name="htaccess")
    shutil.copy(JWKS, os.path.join(s.root, "jwks.json"))
    for d, text in HTACCESS.items():
        os.makedirs(os.path.join(s.root, "htdocs", d))
        with open(os.path.join(s.root, "htdocs", d, ".htaccess"), "w") as f:
            f.write(text)
        with open(os.path.join(s.root, "htdocs", d, "index.html"), "w") as f:
            f.write(d + "\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


def one_connection(srv, user, paths):
    """GET each path on ONE keep-alive TLS connection; the statuses."""
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(*user_cert(user))
    conn = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=20)
    out, sock = [], None
    try:
        for p in paths:
            conn.request("GET", p)
            r = conn.getresponse()
            r.read()
            out.append(r.status)
            # http.client reconnects silently: make sure it never had to.
            assert sock is None or conn.sock is sock, "connection was not kept alive"
            sock = conn.sock
            assert r.getheader("Connection", "").lower() != "close"
    finally:
        conn.close()
    return out


# Each order on a fresh connection.  Before the fix the verdict slot was found by
# the address of the .htaccess profile list, which lives in the request pool: the
# next request's list had the same address, so the verdict for /a/ was reused at
# /b/ (a citizen admitted to the SITHS-only directory) and vice versa.
KEEPALIVE = [
    ("citizen", ["/a/", "/b/", "/a/", "/b/"], [200, 403, 200, 403]),
    ("citizen", ["/b/", "/a/", "/b/", "/a/"], [403, 200, 403, 200]),
    ("nurse-kommun", ["/b/", "/a/", "/b/"], [200, 403, 200]),
    ("nurse-kommun", ["/a/", "/b/", "/a/"], [403, 200, 403]),
]


@pytest.mark.parametrize("user,paths,want", KEEPALIVE,
                         ids=["%s-%s" % (k[0], "".join(p.strip("/") for p in k[1]))
                              for k in KEEPALIVE])
def test_htaccess_profiles_on_one_keepalive_connection(hsrv, logcheck, user, paths, want):
    logcheck(hsrv)
    hsrv.expect_log(r"AH01630", r"EID02004.*client certificate refused")
    assert one_connection(hsrv, user, paths) == want


def test_htaccess_naming_nothing_is_misconfigured(hsrv, logcheck):
    """Two profiles, none named in reach: 500 and one tagged line, not 'accept all'."""
    logcheck(hsrv)
    hsrv.expect_log(r"EID01020")
    before = hsrv.read_error_log().count("EID01020")
    for user in ("citizen", "nurse-kommun", "citizen"):
        r = requests.get(hsrv.url("/none/"), cert=user_cert(user), verify=CA, timeout=20)
        assert r.status_code == 500, (user, r.status_code)
    log = hsrv.read_error_log()
    # logged once per process, not per request (this server has one child)
    assert log.count("EID01020") - before <= 1
    assert "EID01020" in log


def test_htaccess_bearer_naming_nothing_is_misconfigured(hsrv, logcheck):
    logcheck(hsrv)
    hsrv.expect_log(r"EID01520")
    for _ in range(2):
        r = requests.get(hsrv.url("/tok/"), verify=CA, timeout=20,
                         headers={"Authorization": "Bearer aaa.bbb.ccc"})
        assert r.status_code == 500
    assert "EID01520" in hsrv.read_error_log()


# ---- two virtual hosts, each naming its own profile and provider -----------------


@pytest.fixture(scope="module")
def ops():
    made = []
    try:
        for name in ("a", "b"):
            made.append(TestOP(tempfile.mkdtemp(prefix="eid-op-scope-%s-" % name)).start())
        yield made
    finally:
        for op in made:
            op.stop()
            shutil.rmtree(op.state_dir, ignore_errors=True)


VHOST = """<VirtualHost 127.0.0.1:%(port)d>
EidCertProfiles %(profile)s
EidBearerProviders %(provider)s
<Location />
AuthType eid
EidMethods cert bearer
Require valid-user
</Location>
</VirtualHost>
"""


@pytest.fixture(scope="module")
def vsrv(ops):
    opa, opb = ops
    port_a, port_b = free_port(), free_port()
    body = TRUST_ISSUERS
    body += ("EidProvider pa issuer=%s jwks_uri=%s audience=%s claims=inera\n"
             % (opa.issuer, opa.jwks_uri, AUD))
    body += ("EidProvider pb issuer=%s jwks_uri=%s audience=%s claims=oidc-sweden\n"
             % (opb.issuer, opb.jwks_uri, AUD))
    body += VHOST % {"port": port_a, "profile": "eid", "provider": "pa"}
    body += "Listen 127.0.0.1:%d\n" % port_b
    body += VHOST % {"port": port_b, "profile": "siths", "provider": "pb"}
    s = Httpd(body, name="vhosts", port=port_a)
    s.port_b = port_b
    s.start()
    yield s
    s.stop()
    s.cleanup()


def vget(srv, host, user=None, token=None):
    port = srv.port if host == "A" else srv.port_b
    headers = {"Authorization": "Bearer " + token} if token else {}
    return requests.get("https://localhost:%d/index.html" % port, verify=CA, timeout=20,
                        cert=user_cert(user) if user else None, headers=headers).status_code


def test_vhost_certificates_stay_in_their_vhost(vsrv, logcheck):
    logcheck(vsrv)
    vsrv.expect_log(r"EID02004.*client certificate refused", r"AH01630")
    assert vget(vsrv, "A", "citizen") == 200
    assert vget(vsrv, "B", "citizen") == 403
    assert vget(vsrv, "B", "nurse-kommun") == 200
    assert vget(vsrv, "A", "nurse-kommun") == 403


def test_vhost_tokens_stay_in_their_vhost(vsrv, ops, logcheck):
    logcheck(vsrv)
    opa, opb = ops
    ta = opa.mint(preset="inera-nurse", aud=AUD)
    tb = opb.mint(preset="oidc-sweden-citizen", aud=AUD)
    assert vget(vsrv, "A", token=ta) == 200
    assert vget(vsrv, "B", token=ta) == 401
    assert vget(vsrv, "B", token=tb) == 200
    assert vget(vsrv, "A", token=tb) == 401
