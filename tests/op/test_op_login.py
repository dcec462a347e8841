"""Selftest of the test OP's login side: authorization code flow with PKCE, client
authentication, ID token, userinfo, end-session, back-channel logout sender and every
misbehaviour switch.

    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/op

The RP side is done here in Python (opctl.TestOP.login and friends); ID tokens are
verified with jwcrypto against the served JWKS, independently of the OP's own code.
"""
import base64
import hashlib
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwcrypto import jwk, jws

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opctl import OPError, TestOP  # noqa: E402

RU = "https://localhost:8443/.eid/callback"
PLR = "https://localhost:8443/.eid/logged-out"
LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
LOA4 = "http://id.elegnamnden.se/loa/1.0/loa4"
OIDC_SE = "https://id.oidc.se/claim/"


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def parts(tok):
    h, p, s = tok.split(".")
    return json.loads(b64d(h)), json.loads(b64d(p)), s


def verify(op, tok):
    """Claims of `tok` after a jwcrypto signature check against the served JWKS."""
    keyset = jwk.JWKSet.from_json(json.dumps(op.jwks()))
    hdr = parts(tok)[0]
    key = keyset.get_key(hdr["kid"])
    assert key is not None, "kid %s not served" % hdr["kid"]
    o = jws.JWS()
    o.deserialize(tok)
    o.verify(key, alg=key.get("alg"))
    return json.loads(o.payload)


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        v = int(ch) * (2 if i % 2 else 1)
        total += v // 10 + v % 10
    return total % 10 == 0


@pytest.fixture(scope="module")
def op(tmp_path_factory):
    o = TestOP(tmp_path_factory.mktemp("op-login")).start()
    o.register_client("portal", redirect_uris=[RU], post_logout_redirect_uris=[PLR])
    yield o
    assert o.stop() == 0


@pytest.fixture(autouse=True)
def _reset(op):
    yield
    op.login_behaviour(reset=True)
    op.auto_login(None)


def test_code_flow_basic(op):
    r = op.login("portal", RU, "nurse", "portal-secret")
    q = r["params"]
    assert q["state"] == r["state"] and q["iss"] == op.issuer and len(q["code"]) >= 43
    assert r["location"].startswith(RU + "?")
    assert r["token"].status == 200, r["token"].body
    t = r["tokens"]
    assert t["token_type"] == "Bearer" and t["expires_in"] == 300
    assert r["token"].headers["cache-control"] == "no-store"
    c = verify(op, t["id_token"])
    hdr = parts(t["id_token"])[0]
    assert hdr["kid"] == op.jwks()["keys"][0]["kid"] and hdr["alg"] == "RS256"
    now = time.time()
    assert c["iss"] == op.issuer and c["aud"] == "portal" and c["azp"] == "portal"
    assert c["nonce"] == r["nonce"] and abs(c["iat"] - now) < 5 and c["exp"] > now
    assert c["sub"] == c["employeeHsaId"] == "SE2321000016-P0001N"
    assert c["acr"] == LOA3 and abs(c["auth_time"] - now) < 5
    want = base64.urlsafe_b64encode(
        hashlib.sha256(t["access_token"].encode()).digest()[:16]).rstrip(b"=").decode()
    assert c["at_hash"] == want
    assert c["sid"] in {s["sid"] for s in op.sessions()}
    a = verify(op, t["access_token"])
    assert a["client_id"] == "portal" and a["sub"] == c["sub"] and a["aud"] == "api://incident"
    assert op.introspect(t["access_token"]).json()["active"] is True
    u = op.userinfo(t["access_token"])
    assert u.status == 200 and u.json()["sub"] == c["sub"]
    assert u.json()["healthCareProviderOrgNo"] == "2321000016"
