"""OAuth2 bearer tokens end to end: real httpd with the module, two real test
OpenID Providers (tests/op) serving discovery, JWKS and introspection on
loopback, tokens minted by them (valid and hostile), requests from a real
HTTP client.  A CGI behind every protected location records each request
that reaches it, so "never reaches the backend" is checked, not assumed."""
import json
import os
import re
import shutil
import sys
import tempfile
import time

import pytest
import requests

from eidtest import REPO, TRUST_PROFILES, Httpd, manifest, pki, unique_path, user_cert

sys.path.insert(0, os.path.join(REPO, "tests", "op"))
from opctl import TestOP  # noqa: E402

AUD = "api://incident"
M = manifest()

# A backend that records the requests that reach it, then echoes the identity.
HITS_CGI = """#!/usr/bin/python3
import json, os, sys
with open(os.path.join(os.path.dirname(__file__), "..", "hits.log"), "a") as f:
    f.write(os.environ.get("REQUEST_URI", "") + "\\n")
env = {k: v for k, v in os.environ.items()
       if k.startswith(("EID_", "HTTP_X_EID", "REMOTE_USER", "AUTH_TYPE", "HTTP_AUTHORIZATION"))}
body = json.dumps(env, sort_keys=True, ensure_ascii=False).encode("utf-8")
sys.stdout.write("Content-Type: application/json; charset=utf-8\\r\\n")
sys.stdout.write("Content-Length: %d\\r\\n\\r\\n" % len(body))
sys.stdout.flush()
sys.stdout.buffer.write(body)
"""


def start_op(name):
    d = tempfile.mkdtemp(prefix="eid-op-%s-" % name)
    return TestOP(d).start()


def stop_op(op):
    op.stop()
    shutil.rmtree(op.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ops():
    a, b = start_op("inera"), start_op("sweden")
    yield a, b
    stop_op(a)
    stop_op(b)


def conf(op_a, op_b):
    c = TRUST_PROFILES
    # Provider A: Inera claims, keys by discovery, default throttling (one
    # refetch per 60 s).  Provider B: oidc-sweden claims, JWKS URL, a short
    # refetch interval so rotation and outages can be tested quickly, and
    # introspection for opaque tokens.
    c += ("EidProvider inera issuer=%s discovery=on audience=%s algs=RS256,ES256 "
          "claims=inera\n" % (op_a.issuer, AUD))
    c += ("EidProvider sweden issuer=%s jwks_uri=%s audience=%s claims=oidc-sweden "
          "jwks_min_refetch=1 jwks_refresh=3600 leeway=1 max_token_size=8192 "
          "fetch_timeout=2 fetch_max_bytes=65536 "
          "introspect=%s client_id=incident-api client_secret_file={root}/secret "
          "introspect_cache=1\n"
          % (op_b.issuer, op_b.jwks_uri, AUD, op_b.introspection_uri))
    c += "EidBearerProviders inera sweden\n"  # several defined: name them (server level)
    c += 'ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/hits.py$1"\n'
    locs = {
        "api": "EidMethods bearer\nRequire valid-user",
        "inera-only": "EidMethods bearer\nEidBearerProviders inera\nRequire valid-user",
        "loa3": "EidMethods bearer\nRequire eid-loa 3",
        "org": "EidMethods bearer\nRequire eid-org 2321000016",
        "nurse": "EidMethods bearer\nRequire eid-hsa-id SE2321000016-P0001N",
        "write": "EidMethods bearer\nRequire eid-scope incident:write",
        "read": "EidMethods bearer\nRequire eid-scope incident:read",
        "write-errdoc": "EidMethods bearer\nRequire eid-scope incident:write\n"
                        "ErrorDocument 403 /api/echo",
        "either": "EidMethods cert bearer\nRequire valid-user",
        "bearer-only": "EidMethods cert bearer\nRequire eid-method bearer",
        "headers": "EidMethods bearer\nEidExportHeaders on\nRequire valid-user",
    }
    for name, rules in locs.items():
        c += ("<Location /%s/>\nAuthType eid\nEidRealm incident-api\n%s\n</Location>\n"
              % (name, rules))
    return c


@pytest.fixture(scope="module")
def srv(ops):
    s = Httpd(conf(*ops), name="bearer")
    with open(os.path.join(s.root, "secret"), "w") as f:
        f.write("incident-api-secret\n")
    hits = os.path.join(s.root, "cgi", "hits.py")
    with open(hits, "w") as f:
        f.write(HITS_CGI)
    os.chmod(hits, 0o755)
    open(os.path.join(s.root, "hits.log"), "w").close()
    os.chmod(os.path.join(s.root, "hits.log"), 0o666)
    s.start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture
def logged(srv, logcheck):
    return logcheck(srv)


CA = pki("ca", "server-ca.pem")


def call(srv, path, token=None, headers=None, cert=None, auth=None):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if auth is not None:
        h["Authorization"] = auth
    return requests.get(srv.url(path), headers=h, verify=CA, timeout=20,
                        cert=user_cert(cert) if cert else None)


def hits(srv):
    with open(os.path.join(srv.root, "hits.log")) as f:
        return f.read().splitlines()


def audit_record(srv, match, timeout=5):
    """The first audit record that matches: records are written after the
    response, so poll for it."""
    deadline = time.time() + timeout
    while True:
        found = [a for a in srv.audit_records() if match(a)]
        if found or time.time() > deadline:
            assert found, "no matching audit record"
            return found[0]
        time.sleep(0.02)


def challenge(r):
    return r.headers.get("WWW-Authenticate", "")


# ---- valid tokens ------------------------------------------------------------


def test_inera_token_gives_identity(srv, ops, logged):
    tok = ops[0].mint(preset="inera-nurse", claims={"scope": "incident:read"})
    r = call(srv, "/api/echo", tok)
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["EID_METHOD"] == "bearer"
    assert env["EID_PROFILE"] == "inera"
    assert env["EID_HSA_ID"] == "SE2321000016-P0001N"
    assert env["REMOTE_USER"] == "SE2321000016-P0001N"
    assert env["AUTH_TYPE"] == "eid"
    assert env["EID_LOA"] == "3"
    assert env["EID_ORG_NUMBER"] == "2321000016"
    assert "INCIDENT;Rapportör" in env["EID_ROLES"]
    assert env["EID_SCOPES"] == "incident:read"
    assert env["EID_COMMISSION_PURPOSE"] == "Vård och behandling"
    # Which client system presented the token, and which token: for the audit trail.
    assert env["EID_CLIENT_ID"] == "portal"
    assert env["EID_TOKEN_ID"]
    rec = audit_record(srv, lambda a: a.get("token_id") == env["EID_TOKEN_ID"])
    assert rec["client_id"] == "portal" and rec["decision"] == "allow"
    # The personnummer reaches the backend, but never the logs.
    assert env["EID_PNR"] == "191212121212"
    assert "191212121212" not in srv.read_error_log()
    assert all("191212121212" not in json.dumps(a) for a in srv.audit_records())


def test_oidc_sweden_tokens(srv, ops, logged):
    tok = ops[1].mint(preset="oidc-sweden-citizen")
    r = call(srv, "/api/echo", tok)
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["EID_PROFILE"] == "sweden"
    assert env["EID_PNR"] == "198004122381"
    assert env["EID_LOA"] == "3"
    # No HSA-ID: the user name is the personnummer's pseudonym.
    assert env["REMOTE_USER"] == env["EID_PNR_PSEUDONYM"]
    tok = ops[1].mint(preset="oidc-sweden-staff")
    env = call(srv, "/api/echo", tok).json()
    assert env["EID_ORG_NUMBER"] == "5562265719"
    tok = ops[1].mint(preset="oidc-sweden-coord")
    env = call(srv, "/api/echo", tok).json()
    assert env["EID_PNR"] == "197010632391"


def test_ec_key_token(srv, ops, logged):
    tok = ops[0].mint(preset="inera-nurse", key="ec")
    assert call(srv, "/api/echo", tok).status_code == 200


def test_same_require_lines_as_certificates(srv, ops, logged):
    srv.expect_log(r"AH01630")
    nurse = ops[0].mint(preset="inera-nurse", claims={"scope": "incident:read"})
    citizen = ops[1].mint(preset="oidc-sweden-citizen")
    weak = ops[0].mint(preset="inera-nurse", claims={"acr": "http://id.sambi.se/loa/loa2"})
    uncert = ops[1].mint(preset="oidc-sweden-citizen",
                         claims={"acr": "http://id.elegnamnden.se/loa/1.0/nf-loa3"})
    assert call(srv, "/loa3/echo", nurse).status_code == 200
    assert call(srv, "/loa3/echo", citizen).status_code == 200
    assert call(srv, "/loa3/echo", weak).status_code == 403
    assert call(srv, "/loa3/echo", uncert).status_code == 403
    assert call(srv, "/org/echo", nurse).status_code == 200
    assert call(srv, "/org/echo", citizen).status_code == 403
    assert call(srv, "/nurse/echo", nurse).status_code == 200
    assert call(srv, "/nurse/echo", citizen).status_code == 403


def test_provider_restriction(srv, ops, logged):
    assert call(srv, "/inera-only/echo", ops[0].mint(preset="inera-nurse")).status_code == 200
    r = call(srv, "/inera-only/echo", ops[1].mint(preset="oidc-sweden-citizen"))
    assert r.status_code == 401
    assert 'error="invalid_token"' in challenge(r)


def test_scope_denial_with_error_document_in_bearer_location(srv, ops, logged):
    # The error document is in another bearer location that would admit the
    # token: it must not authenticate it (no identity for the error page),
    # and the denial's challenge must reach the client unchanged.
    srv.expect_log(r"AH01630|AH00\d+|EID01101")
    tok = ops[0].mint(preset="inera-nurse", claims={"scope": "incident:read openid"})
    r = call(srv, "/write-errdoc/echo", tok)
    assert r.status_code == 403
    assert challenge(r) == 'Bearer error="insufficient_scope", scope="incident:write"'
    assert "EID_" not in r.text and "REMOTE_USER" not in r.text, r.text[:300]


def test_scope(srv, ops, logged):
    srv.expect_log(r"AH01630")
    tok = ops[0].mint(preset="inera-nurse", claims={"scope": "incident:read openid"})
    assert call(srv, "/read/echo", tok).status_code == 200
    r = call(srv, "/write/echo", tok)
    assert r.status_code == 403
    assert challenge(r) == 'Bearer error="insufficient_scope", scope="incident:write"'
    tok = ops[0].mint(preset="inera-nurse", claims={"scope": None, "scp": ["incident:write"]})
    assert call(srv, "/write/echo", tok).status_code == 200


def test_cert_and_bearer_in_one_location(srv, ops, logged):
    srv.expect_log(r"AH01630")
    tok = ops[0].mint(preset="inera-nurse")
    assert call(srv, "/either/echo", tok).status_code == 200
    r = call(srv, "/either/echo", cert="doctor-region")
    assert r.status_code == 200 and r.json()["EID_METHOD"] == "cert"
    assert call(srv, "/bearer-only/echo", tok).status_code == 200
    assert call(srv, "/bearer-only/echo", cert="doctor-region").status_code == 403


def test_headers_export_and_spoofing(srv, ops, logged):
    tok = ops[0].mint(preset="inera-nurse")
    r = call(srv, "/headers/echo", tok, headers={"X-Eid-Hsa-Id": "SE-spoofed",
                                                  "X-Eid-Loa": "4"})
    assert r.status_code == 200
    env = r.json()
    assert env["HTTP_X_EID_HSA_ID"] == "SE2321000016-P0001N"
    assert env["HTTP_X_EID_LOA"] == "3"


# ---- refusals ----------------------------------------------------------------


def test_no_credential_gets_challenge(srv, logged):
    before = len(hits(srv))
    r = call(srv, "/api/echo")
    assert r.status_code == 401
    assert challenge(r) == 'Bearer realm="incident-api"'
    # Other schemes, and tokens in the query string, are not bearer credentials.
    r = call(srv, "/api/echo", auth="Basic dXNlcjpwdw==")
    assert r.status_code == 401 and "error=" not in challenge(r)
    r = requests.get(srv.url("/api/echo?access_token=abc.def.ghi"), verify=CA, timeout=20)
    assert r.status_code == 401
    assert len(hits(srv)) == before


MALFORMED = ["Bearer", "Bearer ", "Bearer a b", "Bearer a\tb", "Bearer ab==cd",
             "Bearer {\"a\":1}", "Bearer x,Bearer y", "Bearer é"]


@pytest.mark.parametrize("value", MALFORMED)
def test_malformed_authorization_is_400(srv, value, logged):
    before = len(hits(srv))
    r = requests.get(srv.url("/api/echo"), headers={"Authorization": value.encode("utf-8")},
                     verify=CA, timeout=20)
    if value.strip() == "Bearer":
        # RFC 6750: an empty credential is no credential at all.
        assert r.status_code in (400, 401)
    else:
        assert r.status_code == 400, value
        assert 'error="invalid_request"' in challenge(r)
    assert len(hits(srv)) == before


# variant -> expected status.  Every one is refused and never reaches the backend.
VARIANTS = {
    "alg-none": 401, "hs256-pubkey": 401, "unknown-kid": 401, "kid-junk": 401,
    "jku": 401, "x5u": 401, "jwk": 401, "x5c": 401, "crit-unknown": 401,
    "no-exp": 401, "expired": 401, "future-nbf": 401, "wrong-iss": 401, "no-iss": 401,
    "array-iss": 401, "foreign-aud": 401, "no-aud": 401, "id-token": 401,
    "id-token-our-aud": 401, "truncated": 401, "garbled": 400, "two-dots-only": 401,
    "exp-string": 401, "exp-float-huge": 401, "iat-future": 401, "bad-signature": 401,
    "json-trailing-garbage": 401, "dup-claims": 401, "alg-unknown": 401, "alg-ps256": 401,
    "alg-kid-mismatch": 401, "kid-nul": 401, "iss-trailing-slash": 401, "iss-prefix": 401,
    "jwe": 401, "json-jws": 400,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_hostile_token(srv, ops, variant, logged):
    op = ops[0]
    before_hits = len(hits(srv))
    before_att = op.stats()["attacker_fetches"]
    path = unique_path("/api/echo")
    tok = op.mint(preset="inera-nurse", variant=variant)
    r = call(srv, path, tok)
    assert r.status_code == VARIANTS[variant], (variant, r.status_code, r.text)
    want = "invalid_token" if r.status_code == 401 else "invalid_request"
    assert 'error="%s"' % want in challenge(r)
    # The description is fixed text: nothing of the token or the reason.
    desc = re.search(r'error_description="([^"]*)"', challenge(r)).group(1)
    assert desc in ("the access token is not valid", "malformed Authorization header",
                    "malformed token")
    assert len(hits(srv)) == before_hits
    assert op.stats()["attacker_fetches"] == before_att
    # The token never appears in the error log or the audit log.
    assert tok[-40:] not in srv.read_error_log()
    recs = srv.wait_audit(path, 1)
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["decision"] == "unauthenticated" and rec["status"] == VARIANTS[variant]
    assert rec["reason"]
    assert tok[-40:] not in json.dumps(rec)


def test_huge_tokens(srv, ops, logged):
    # Larger than the provider's max_token_size (8192): refused by the module.
    tok = ops[1].mint(preset="oidc-sweden-citizen", variant="huge", huge_bytes=8000 + 400)
    assert len(tok) > 8192
    srv.expect_log(r"AH00567|LimitRequestFieldSize")
    r = call(srv, "/api/echo", tok)
    assert r.status_code in (400, 401)
    # Larger than httpd's own header limit: httpd refuses before any module runs.
    tok = ops[0].mint(preset="inera-nurse", variant="huge")
    r = call(srv, "/api/echo", tok)
    assert r.status_code == 400


def test_wrong_claim_types(srv, ops, logged):
    bad = [{"employeeHsaId": 12}, {"systemRole": [1, 2]}, {"acr": ["x"]},
           {"healthCareProviderOrgNo": "1234567890"}, {"employeeHsaId": "SE\u0001X"},
           {"credentialPersonalIdentityNumber": "191212121213"}, {"auth_time": "now"},
           {"scope": 7}]
    before = len(hits(srv))
    for claims in bad:
        r = call(srv, "/api/echo", ops[0].mint(preset="inera-nurse", claims=claims))
        assert r.status_code == 401, claims
    assert len(hits(srv)) == before


# ---- key sets: throttling, rotation, outages ----------------------------------


def test_unknown_kid_flood_refetches_at_most_once(srv, ops, logged):
    op = ops[0]  # jwks_min_refetch at its default, 60 s
    call(srv, "/api/echo", op.mint(preset="inera-nurse"))
    op.reset_stats()
    t0 = time.time()
    for _ in range(40):
        r = call(srv, "/api/echo", op.mint(preset="inera-nurse", variant="unknown-kid"))
        assert r.status_code == 401
    assert time.time() - t0 < 60
    st = op.stats()
    assert st["jwks_fetches"] <= 1, st
    assert st["discovery_fetches"] <= 1, st


def test_key_rotation_without_restart(srv, ops, logged):
    op = ops[1]  # jwks_min_refetch=1
    assert call(srv, "/api/echo", op.mint(preset="oidc-sweden-citizen")).status_code == 200
    op.rotate(drop_old=False)
    time.sleep(1.2)
    new = op.mint(preset="oidc-sweden-citizen")
    old = op.mint(preset="oidc-sweden-citizen", key="rsa-old")
    assert call(srv, "/api/echo", new).status_code == 200
    assert call(srv, "/api/echo", old).status_code == 200
    # The old key leaves the document: tokens it signs are still accepted
    # until jwks_max_stale; a key never published is never accepted.
    unknown = op.mint(preset="oidc-sweden-citizen", key="unknown")
    time.sleep(1.2)
    assert call(srv, "/api/echo", unknown).status_code == 401


def test_provider_down_cached_keys_keep_working(srv, ops, logged):
    op = ops[1]
    assert call(srv, "/api/echo", op.mint(preset="oidc-sweden-citizen")).status_code == 200
    fresh = [op.mint(preset="oidc-sweden-citizen", claims={"jti": "down-%d" % i})
             for i in range(3)]
    rogue = op.mint(preset="oidc-sweden-citizen", variant="unknown-kid")
    op.stop()
    try:
        time.sleep(1.2)  # past jwks_min_refetch: the next unknown kid tries a fetch
        srv.expect_log(r"EID03602|EID03208")
        # Never seen before, so not from the token cache: verified with cached keys.
        for t in fresh:
            assert call(srv, "/api/echo", t).status_code == 200
        # An unknown kid while the provider is down: the refetch fails, the
        # keys held do not know the kid.  It is never let through for want of
        # a key to check it with, and never a 401 either: the provider may
        # have rotated, and a 401 tells the client to drop a good token.
        r = call(srv, "/api/echo", rogue)
        assert r.status_code == 503
        assert r.headers.get("Retry-After")
        # throttled (within jwks_min_refetch of the failed fetch): still 503
        r = call(srv, "/api/echo", rogue)
        assert r.status_code == 503
        assert r.headers.get("Retry-After")
    finally:
        op.start()


def test_jwks_endpoint_garbage_keeps_old_keys(srv, ops, logged):
    op = ops[1]
    op.behaviour(jwks="garbage")
    try:
        srv.expect_log(r"EID03209|EID03208|EID0360\d")
        time.sleep(1.2)
        call(srv, "/api/echo", op.mint(preset="oidc-sweden-citizen", variant="unknown-kid"))
        assert call(srv, "/api/echo", op.mint(preset="oidc-sweden-citizen")).status_code == 200
    finally:
        op.behaviour(reset=True)


@pytest.mark.parametrize("mode,tag", [("slow", "EID03603"), ("huge", "EID03604")])
def test_jwks_fetch_is_bounded(srv, ops, mode, tag, logged):
    """A JWKS endpoint that stalls (10 s) or answers with 4 MB: the fetch is cut
    at fetch_timeout (2 s) / fetch_max_bytes (64 KiB), the request that caused
    it is answered (503), and the keys already held keep working."""
    op = ops[1]
    assert call(srv, "/api/echo", op.mint(preset="oidc-sweden-citizen")).status_code == 200
    op.behaviour(jwks=mode, slow_seconds=10, huge_bytes=4 * 1024 * 1024)
    srv.expect_log(tag, r"EID03208")
    mark = len(srv.read_error_log())
    op.reset_stats()
    try:
        time.sleep(1.2)  # past jwks_min_refetch: an unknown kid makes a fetch
        t0 = time.time()
        r = call(srv, "/api/echo", op.mint(preset="oidc-sweden-citizen", variant="unknown-kid"))
        took = time.time() - t0
        # the fetch failed: the kid cannot be told forged or rotated in (503)
        assert r.status_code == 503 and r.headers.get("Retry-After")
        assert took < 2 + 1.5, took
        assert op.stats()["jwks_fetches"] >= 1
        deadline = time.time() + 5
        while tag not in srv.read_error_log()[mark:] and time.time() < deadline:
            time.sleep(0.05)
        assert tag in srv.read_error_log()[mark:]
        fresh = op.mint(preset="oidc-sweden-citizen", claims={"jti": "bounded-" + mode})
        assert call(srv, "/api/echo", fresh).status_code == 200
    finally:
        op.behaviour(reset=True)


def test_cache_never_outlives_exp(srv, ops, logged):
    tok = ops[1].mint(preset="oidc-sweden-citizen", ttl=2)
    assert call(srv, "/api/echo", tok).status_code == 200
    assert call(srv, "/api/echo", tok).status_code == 200
    time.sleep(3.5)  # exp + leeway (1 s) passed
    r = call(srv, "/api/echo", tok)
    assert r.status_code == 401


# ---- introspection (RFC 7662) for opaque tokens ----------------------------------


def test_opaque_token_by_introspection(srv, ops, logged):
    op = ops[1]
    info = op.mint_info(preset="oidc-sweden-staff", opaque=True)
    op.reset_stats()
    r = call(srv, "/api/echo", info["token"])
    assert r.status_code == 200, r.text
    assert r.json()["EID_ORG_NUMBER"] == "5562265719"
    assert op.stats()["introspections"] == 1
    # Revoked: refused once the introspection cache (1 s) has run out.
    op.revoke(info["token"])
    time.sleep(1.2)
    assert call(srv, "/api/echo", info["token"]).status_code == 401
    # A token nobody minted.
    assert call(srv, "/api/echo", "A" * 43).status_code == 401


def test_introspection_down_is_503(srv, ops, logged):
    op = ops[1]
    tok = op.mint(preset="oidc-sweden-staff", opaque=True)
    op.behaviour(introspect="down")
    try:
        srv.expect_log(r"EID0350\d|EID0360\d")
        r = call(srv, "/api/echo", tok)
        assert r.status_code == 503
        assert r.headers.get("Retry-After")
    finally:
        op.behaviour(reset=True)
    assert call(srv, "/api/echo", tok).status_code == 200


# ---- start-up without the provider ---------------------------------------------


def test_start_with_provider_down(logcheck):
    op = start_op("late")
    issuer = op.issuer
    op.stop()
    c = ("EidProvider late issuer=%s discovery=on audience=%s jwks_min_refetch=1\n"
         "<Location />\nAuthType eid\nEidMethods bearer\nRequire valid-user\n"
         "</Location>\n" % (issuer, AUD))
    with Httpd(c, name="late") as s:
        logcheck(s)
        s.expect_log(r"EID03602|EID03208|EID03218")
        try:
            op.start()
            tok = op.mint(preset="inera-nurse")
            op.stop()
            # No keys yet and the provider is down: 503, never 200 or 401.
            r = call(s, "/index.html", tok)
            assert r.status_code == 503
            op.start()
            time.sleep(1.2)
            r = call(s, "/index.html", tok)
            assert r.status_code == 200
        finally:
            stop_op(op)
    s.cleanup()


# ---- a key the provider withdraws (issue 9, item 8) --------------------------------


def test_withdrawn_key_is_refused_cached_tokens_too(srv, ops, logged):
    """Once a successful fetch no longer lists a key, tokens signed with it are
    refused (401 invalid_token) - also those already in the token cache; no
    grace until jwks_max_stale (that is for a provider that cannot be
    reached, see test_provider_down_cached_keys_keep_working)."""
    op = ops[1]  # jwks_min_refetch=1
    op.rotate(drop_old=False)  # K1 current, K0 still published as rsa-old
    time.sleep(1.2)
    k1 = op.mint(preset="oidc-sweden-citizen", claims={"jti": "wd-k1"})
    assert call(srv, "/api/echo", k1).status_code == 200  # unknown kid: fetched
    k0 = op.mint(preset="oidc-sweden-citizen", key="rsa-old", claims={"jti": "wd-k0"})
    for _ in range(2):  # verified, then a hit of the token cache
        assert call(srv, "/api/echo", k0).status_code == 200
        assert call(srv, "/api/echo", k1).status_code == 200
    op.rotate(drop_old=True)  # K2 current; K1 (now rsa-old) and K0 withdrawn
    k1_fresh = op.mint(preset="oidc-sweden-citizen", key="rsa-old", claims={"jti": "wd-k1b"})
    time.sleep(1.2)  # past jwks_min_refetch
    # K2's kid is unknown to the module: one fetch, which drops K1 and K0
    k2 = op.mint(preset="oidc-sweden-citizen", claims={"jti": "wd-k2"})
    assert call(srv, "/api/echo", k2).status_code == 200
    before = len(hits(srv))
    for t in (k0, k1, k1_fresh):
        r = call(srv, "/api/echo", t)
        assert r.status_code == 401, r.text
        assert 'error="invalid_token"' in challenge(r)
    assert len(hits(srv)) == before  # none of them reached the backend
    assert call(srv, "/api/echo", k2).status_code == 200


# ---- a jwks_file the children cannot read (issue 9, item 12) -------------------------


def test_jwks_file_not_readable_by_children(logcheck):
    """httpd reads jwks_file as root at start-up; its children (User www-data)
    re-read it.  A root-only file: one tagged line per child (EID03220) at
    once, not one per request, and the keys read at start-up keep serving."""
    op = start_op("file")
    try:
        doc = json.dumps(op.jwks())
        c = ("EidProvider filed issuer=%s jwks_file={root}/jwks.json audience=%s\n"
             "<Location />\nAuthType eid\nEidMethods bearer\nRequire valid-user\n"
             "</Location>\n" % (op.issuer, AUD))
        s = Httpd(c, name="jwksfile")
        path = os.path.join(s.root, "jwks.json")
        with open(path, "w") as f:
            f.write(doc)
        os.chmod(path, 0o600)  # root only
        with s:
            logcheck(s)
            s.expect_log(r"EID03220")
            tok = op.mint(preset="inera-nurse")
            for _ in range(5):
                assert call(s, "/index.html", tok).status_code == 200
            for i in range(5):
                t = op.mint(preset="inera-nurse", claims={"jti": "file-%d" % i})
                assert call(s, "/index.html", t).status_code == 200
            deadline = time.time() + 5
            while "EID03220" not in s.read_error_log() and time.time() < deadline:
                time.sleep(0.05)
            lines = [ln for ln in s.read_error_log().splitlines() if "EID03220" in ln]
            assert len(lines) == 1, lines
            assert path in lines[0] and "readable" in lines[0]
        s.cleanup()
    finally:
        stop_op(op)
