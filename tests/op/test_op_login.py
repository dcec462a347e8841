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


# ------------------------------------------------------------------ helpers for raw requests

def auth_params(op, **kw):
    v, ch = op.pkce_pair()
    p = {"response_type": "code", "client_id": "portal", "redirect_uri": RU,
         "scope": "openid profile", "state": "st-1", "nonce": "n-1", "code_challenge": ch,
         "code_challenge_method": "S256"}
    for k, val in kw.items():
        if val is None:
            p.pop(k, None)
        else:
            p[k] = val
    return p, v


def redirect_query(r):
    assert r.status == 302, (r.status, r.body[:300])
    loc = r.headers["location"]
    assert loc.startswith(RU + "?"), loc
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))


def code_for(op, user="nurse", **kw):
    """(code, verifier) through auto-login."""
    op.auto_login(user)
    p, v = auth_params(op, **kw)
    q = redirect_query(op.authorize(p))
    return q["code"], v


def basic_redeem(op, code, verifier, redirect_uri=RU, secret="portal-secret", cid="portal"):
    return op.token_request({"grant_type": "authorization_code", "code": code,
                             "redirect_uri": redirect_uri, "code_verifier": verifier},
                            basic=(cid, secret))


def flow_tokens(op, user="nurse", **kw):
    code, v = code_for(op, user, **kw)
    r = basic_redeem(op, code, v)
    assert r.status == 200, r.body
    return r.json()


# ------------------------------------------------------------------ discovery, users

def test_discovery_login_fields(op):
    d = op.discovery()
    i = op.issuer
    assert d["authorization_endpoint"] == i + "/authorize"
    assert d["token_endpoint"] == i + "/token"
    assert d["userinfo_endpoint"] == i + "/userinfo"
    assert d["end_session_endpoint"] == i + "/end_session"
    assert d["backchannel_logout_supported"] is True
    assert d["backchannel_logout_session_supported"] is True
    assert set(d["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt"}
    assert d["response_types_supported"] == ["code"]
    assert d["subject_types_supported"] == ["public"]
    assert "openid" in d["scopes_supported"]
    assert {"sub", "acr", "sid", "employeeHsaId", OIDC_SE + "personalIdentityNumber"} <= \
        set(d["claims_supported"])
    assert d["code_challenge_methods_supported"] == ["S256"]
    assert LOA2 in d["acr_values_supported"] and LOA3 in d["acr_values_supported"]
    assert d["authorization_response_iss_parameter_supported"] is True


def test_users(op):
    us = op.users()
    assert {"nurse", "citizen", "lowlevel", "othernurse", "staff"} <= set(us)
    n = us["nurse"]
    assert n["acr"] == LOA3 and n["level"] == 3
    ic = n["claims"]["inera"]
    assert ic["employeeHsaId"].startswith("SE2321000016-") and ic["sub"] == n["sub"]
    assert ic["commissionPurpose"] == "Vård och behandling" and ic["healthCareUnitHsaId"]
    assert not any(k.startswith(OIDC_SE) for k in ic)
    c = us["citizen"]["claims"]["oidc-sweden"]
    assert set(c) >= {"sub", OIDC_SE + "personalIdentityNumber", "given_name", "family_name"}
    assert "employeeHsaId" not in c
    assert us["lowlevel"]["acr"] == LOA2 and us["lowlevel"]["level"] == 2
    other = us["othernurse"]["claims"]["inera"]["healthCareProviderOrgNo"]
    assert other != ic["healthCareProviderOrgNo"]
    for u in us.values():
        g = u["claims"]["generic"]
        for k in ("credentialPersonalIdentityNumber", OIDC_SE + "personalIdentityNumber"):
            if k in g:
                assert len(g[k]) == 12 and luhn_ok(g[k][2:]), (u["name"], g[k])
        for k in ("healthCareProviderOrgNo", OIDC_SE + "orgNumber"):
            if k in g:
                assert len(g[k]) == 10 and luhn_ok(g[k]), g[k]
        if "employeeHsaId" in g:
            org = g["employeeHsaId"][2:12]
            assert luhn_ok(org) and g["employeeHsaId"][12] == "-"
    aff = us["staff"]["claims"]["oidc-sweden"][OIDC_SE + "orgAffiliation"]
    assert aff.endswith("@" + us["staff"]["claims"]["oidc-sweden"][OIDC_SE + "orgNumber"])


# ------------------------------------------------------------------ authorize

def test_login_page_and_button(op):
    p, v = auth_params(op, login_hint="citizen", acr_values=LOA3)
    r = op.authorize(p)
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    page = r.body.decode()
    for u in ("nurse", "citizen", "lowlevel", "othernurse", "staff"):
        assert 'id="login-%s"' % u in page
    assert 'id="cancel"' in page and 'action="/authorize/login"' in page
    assert page.index('id="login-citizen"') < page.index('id="login-nurse"'), "hint first"
    assert '<span id="acr">%s</span>' % LOA3 in page
    r2 = op.choose_user(r, "citizen")
    q = redirect_query(r2)
    assert q["state"] == "st-1" and q["iss"] == op.issuer and q["code"]
    assert r2.headers["set-cookie"].startswith("eidop_sid=")
    # the pending request is single-use
    assert op.choose_user(r, "citizen").status == 400
    t = basic_redeem(op, q["code"], v).json()
    c = verify(op, t["id_token"])
    assert c["sub"] == "c1t1zen-7f3a9b2e" and c["acr"] == LOA3
    # the default client has profile inera: the citizen has no Inera claims
    assert "employeeHsaId" not in c and OIDC_SE + "personalIdentityNumber" not in c


def test_cancel_is_access_denied(op):
    p, _ = auth_params(op)
    q = redirect_query(op.choose_user(op.authorize(p), None, cancel=True))
    assert q["error"] == "access_denied" and q["state"] == "st-1" and q["iss"] == op.issuer
    assert "code" not in q


@pytest.mark.parametrize("change,why", [
    (dict(client_id="nobody"), "unknown client_id"),
    (dict(client_id=None), "unknown client_id"),
    (dict(redirect_uri=RU + "x"), "redirect_uri not registered"),
    (dict(redirect_uri="https://evil.example/.eid/callback"), "redirect_uri not registered"),
    (dict(redirect_uri=None), "redirect_uri not registered"),
    (dict(redirect_uri=RU.upper()), "redirect_uri not registered"),
])
def test_authorize_error_page_never_redirects(op, change, why):
    op.auto_login("nurse")
    p, _ = auth_params(op, **change)
    r = op.authorize(p)
    assert r.status == 400 and "location" not in r.headers
    assert why in r.body.decode()
    assert op.records("authorize")[-1]["result"] == "error_page"


def test_authorize_repeated_parameter_is_an_error_page(op):
    p, _ = auth_params(op)
    r = op.get("/authorize?" + urllib.parse.urlencode(p) + "&state=two")
    assert r.status == 400 and "location" not in r.headers and "repeated" in r.body.decode()


@pytest.mark.parametrize("change,error", [
    (dict(response_type="token"), "unsupported_response_type"),
    (dict(response_type=None), "unsupported_response_type"),
    (dict(scope="profile"), "invalid_scope"),
    (dict(code_challenge=None, code_challenge_method=None), "invalid_request"),
    (dict(code_challenge_method="plain"), "invalid_request"),
    (dict(code_challenge_method=None), "invalid_request"),
    (dict(code_challenge="short"), "invalid_request"),
    (dict(prompt="none login"), "invalid_request"),
    (dict(prompt="sometimes"), "invalid_request"),
    (dict(max_age="-1"), "invalid_request"),
    (dict(response_mode="fragment"), "invalid_request"),
    (dict(request="eyJ.x.y"), "request_not_supported"),
    (dict(acr_values="http://id.swedenconnect.se/loa/1.0/uncertified-loa3"),
     "unmet_authentication_requirements"),
])
def test_authorize_errors_redirect(op, change, error):
    op.auto_login("nurse")
    p, _ = auth_params(op, **change)
    q = redirect_query(op.authorize(p))
    assert q["error"] == error and q["state"] == "st-1" and q["iss"] == op.issuer
    assert "code" not in q and q["error_description"]


def test_plain_refused_even_without_pkce_requirement(op):
    op.register_client("nopkce", client_secret="s", redirect_uris=[RU], pkce_required=False)
    op.auto_login("nurse")
    p, _ = auth_params(op, client_id="nopkce", code_challenge_method="plain")
    assert redirect_query(op.authorize(p))["error"] == "invalid_request"
    p, _ = auth_params(op, client_id="nopkce", code_challenge=None, code_challenge_method=None)
    q = redirect_query(op.authorize(p))
    r = op.token_request({"grant_type": "authorization_code", "code": q["code"],
                          "redirect_uri": RU}, basic=("nopkce", "s"))
    assert r.status == 200 and verify(op, r.json()["id_token"])["aud"] == "nopkce"


def test_state_and_redirect_query_kept(op):
    ru2 = "https://localhost:8443/cb?x=1&y=%C3%A5"
    op.register_client("portal", redirect_uris=[RU, ru2])
    op.auto_login("nurse")
    p, _ = auth_params(op, redirect_uri=ru2, state="a b&c=d")
    loc = op.authorize(p).headers["location"]
    assert loc.startswith("https://localhost:8443/cb?x=1&y=%C3%A5&code=")
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))["state"] == "a b&c=d"
    p, _ = auth_params(op, state=None)
    assert "state" not in redirect_query(op.authorize(p))


def test_auto_login(op):
    op.reset_stats()
    assert op.auto_login("lowlevel") == {"user": "lowlevel"}
    t = flow_tokens(op, "lowlevel")
    c = verify(op, t["id_token"])
    assert c["sub"] == "SE2321000016-P0002L" and c["acr"] == LOA2
    assert op.stats()["logins"] == 1
    op.auto_login(None)
    p, _ = auth_params(op)
    assert op.authorize(p).status == 200
    with pytest.raises(OPError) as ei:
        op.auto_login("nobody")
    assert ei.value.status == 400


def test_prompt_none_and_sessions(op):
    op.auto_login(None)
    p, _ = auth_params(op, prompt="none")
    assert redirect_query(op.authorize(p))["error"] == "login_required"
    r = op.login("portal", RU, "nurse", "portal-secret")
    sid = verify(op, r["tokens"]["id_token"])["sid"]
    assert r["cookie"] == "eidop_sid=" + sid
    s = [x for x in op.sessions() if x["sid"] == sid][0]
    assert s["user"] == "nurse" and s["clients"] == ["portal"]
    # prompt=none with the OP cookie: a code for the session's user, same sid
    p, v = auth_params(op, prompt="none")
    q = redirect_query(op.authorize(p, cookie=r["cookie"]))
    c = verify(op, basic_redeem(op, q["code"], v).json()["id_token"])
    assert c["sid"] == sid and c["sub"] == "SE2321000016-P0001N"
    # max_age=0 makes the session too old for prompt=none
    time.sleep(1.1)
    p, _ = auth_params(op, prompt="none", max_age="0")
    assert redirect_query(op.authorize(p, cookie=r["cookie"]))["error"] == "login_required"
    # the same browser logging in as the same user keeps the sid; another user gets a new one
    p, v = auth_params(op)
    q = redirect_query(op.choose_user(op.authorize(p), "nurse", cookie=r["cookie"]))
    assert verify(op, basic_redeem(op, q["code"], v).json()["id_token"])["sid"] == sid
    p, v = auth_params(op)
    q = redirect_query(op.choose_user(op.authorize(p), "citizen", cookie=r["cookie"]))
    assert verify(op, basic_redeem(op, q["code"], v).json()["id_token"])["sid"] != sid


def test_acr_choice(op):
    both = LOA2 + " " + LOA3
    assert verify(op, flow_tokens(op, acr_values=both)["id_token"])["acr"] == LOA2
    assert verify(op, flow_tokens(op, acr_values=LOA3 + " " + LOA2)["id_token"])["acr"] == LOA3
    # sambi URIs are known too
    sambi = "http://id.sambi.se/loa/loa3"
    assert verify(op, flow_tokens(op, acr_values=sambi)["id_token"])["acr"] == sambi
    # a level the user cannot reach: the user's own acr (the RP must refuse it)
    assert verify(op, flow_tokens(op, "lowlevel", acr_values=LOA3)["id_token"])["acr"] == LOA2
    assert verify(op, flow_tokens(op, acr_values=LOA4)["id_token"])["acr"] == LOA3
    # unknown URIs next to a known one are skipped
    x = "http://id.swedenconnect.se/loa/1.0/uncertified-loa3 " + LOA3
    assert verify(op, flow_tokens(op, acr_values=x)["id_token"])["acr"] == LOA3


def test_authorize_switches(op):
    op.login_behaviour(authorize="access_denied")
    op.auto_login("nurse")
    p, _ = auth_params(op)
    q = redirect_query(op.authorize(p))
    assert q["error"] == "access_denied" and q["state"] == "st-1"
    op.login_behaviour(authorize="server_error")
    assert redirect_query(op.authorize(p))["error"] == "server_error"
    op.login_behaviour(authorize="slow", slow_seconds=1)
    t0 = time.monotonic()
    assert redirect_query(op.authorize(p))["code"]
    assert time.monotonic() - t0 >= 0.9
    # a bad redirect_uri still gets the error page, whatever the switch
    op.login_behaviour(authorize="access_denied")
    p, _ = auth_params(op, redirect_uri="https://evil.example/")
    assert op.authorize(p).status == 400


# ------------------------------------------------------------------ token endpoint

def test_code_replay_refused_and_revokes(op):
    code, v = code_for(op)
    r1 = basic_redeem(op, code, v)
    assert r1.status == 200
    at = r1.json()["access_token"]
    assert op.introspect(at).json()["active"] is True
    r2 = basic_redeem(op, code, v)
    assert r2.status == 400 and r2.json()["error"] == "invalid_grant"
    assert "already used" in r2.json()["error_description"]
    assert op.introspect(at).json()["active"] is False, "replay revokes the first tokens"
    assert op.userinfo(at).status == 401


def test_replay_code_switch(op):
    op.login_behaviour(replay_code=True)
    code, v = code_for(op)
    a = basic_redeem(op, code, v)
    b = basic_redeem(op, code, v)
    assert a.status == b.status == 200
    assert a.json()["access_token"] != b.json()["access_token"]
    assert verify(op, b.json()["id_token"])["sub"] == verify(op, a.json()["id_token"])["sub"]


def test_pkce_verifier(op):
    code, v = code_for(op)
    r = basic_redeem(op, code, v[:-1] + ("A" if v[-1] != "A" else "B"))
    assert r.status == 400 and r.json()["error"] == "invalid_grant"
    assert "code_verifier" in r.json()["error_description"]
    assert basic_redeem(op, code, v).status == 400, "a failed try used the code up"
    code, v = code_for(op)
    r = op.token_request({"grant_type": "authorization_code", "code": code,
                          "redirect_uri": RU}, basic=("portal", "portal-secret"))
    assert r.status == 400 and r.json()["error"] == "invalid_grant"
    code, _ = code_for(op)
    assert basic_redeem(op, code, "short").status == 400


def test_code_bound_to_client_and_redirect_uri(op):
    op.register_client("other", client_secret="other-secret", redirect_uris=[RU])
    code, v = code_for(op)
    r = basic_redeem(op, code, v, cid="other", secret="other-secret")
    assert r.status == 400 and "another client" in r.json()["error_description"]
    code, v = code_for(op)
    r = basic_redeem(op, code, v, redirect_uri=RU + "/")
    assert r.status == 400 and "redirect_uri" in r.json()["error_description"]
    r = basic_redeem(op, "no-such-code", v)
    assert r.status == 400 and r.json()["error"] == "invalid_grant"
    code, v = code_for(op)
    r = op.token_request({"grant_type": "refresh_token", "code": code, "redirect_uri": RU,
                          "code_verifier": v}, basic=("portal", "portal-secret"))
    assert r.status == 400 and r.json()["error"] == "unsupported_grant_type"


def test_code_lifetime(op):
    op.login_behaviour(code_ttl=0)
    code, v = code_for(op)
    time.sleep(1.05)
    r = basic_redeem(op, code, v)
    assert r.status == 400 and "expired" in r.json()["error_description"]
    assert op.get_login_behaviour()["code_ttl"] == 0
    op.login_behaviour(reset=True)
    assert op.get_login_behaviour()["code_ttl"] == 60


def test_client_secret_basic_errors(op):
    code, v = code_for(op)
    r = basic_redeem(op, code, v, secret="wrong")
    assert r.status == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    r = op.token_request({"grant_type": "authorization_code", "code": code,
                          "redirect_uri": RU, "code_verifier": v},
                         headers={"Authorization": "Basic !!!"})
    assert r.status == 401
    # no authentication at all, and two methods at once
    r = op.token_request({"grant_type": "authorization_code", "code": code,
                          "redirect_uri": RU, "code_verifier": v, "client_id": "portal"})
    assert r.status == 401
    r = op.token_request({"grant_type": "authorization_code", "code": code,
                          "redirect_uri": RU, "code_verifier": v,
                          "client_secret": "portal-secret"}, basic=("portal", "portal-secret"))
    assert r.status == 401 and "exactly one" in r.json()["error_description"]
    # the code was not consumed by failed client authentication
    assert basic_redeem(op, code, v).status == 200
    rec = op.records("token")[-1]
    assert rec["auth_method"] == "client_secret_basic" and rec["result"] == "ok"


def test_client_secret_post(op):
    op.register_client("poster", client_secret="p ö+st", redirect_uris=[RU],
                       token_endpoint_auth_method="client_secret_post", profile="oidc-sweden")
    r = op.login("poster", RU, "citizen", "p ö+st", method="client_secret_post")
    assert r["token"].status == 200, r["token"].body
    c = verify(op, r["tokens"]["id_token"])
    assert c["aud"] == "poster" and c[OIDC_SE + "personalIdentityNumber"] == "198004122381"
    assert op.records("token")[-1]["auth_method"] == "client_secret_post"
    # the registered method only
    r = op.login("poster", RU, "citizen", "p ö+st", method="client_secret_basic")
    assert r["token"].status == 401 and "registered for" in r["token"].json()["error_description"]
    r = op.login("portal", RU, "nurse", "portal-secret", method="client_secret_post")
    assert r["token"].status == 401
    r = op.login("poster", RU, "citizen", "wrong", method="client_secret_post")
    assert r["token"].status == 401


def _jwk_of(pub, kid):
    d = json.loads(jwk.JWK.from_pyca(pub).export_public())
    d["kid"] = kid
    return d


@pytest.fixture(scope="module")
def pkjwt(op):
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ek = ec.generate_private_key(ec.SECP256R1())
    op.register_client("jwtclient", redirect_uris=[RU], profile="generic",
                       token_endpoint_auth_method="private_key_jwt",
                       jwks={"keys": [_jwk_of(rk.public_key(), "rk1"),
                                      _jwk_of(ek.public_key(), "ek1")]})
    pk = ec.generate_private_key(ec.SECP256R1())
    pem = pk.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    op.register_client("pemclient", redirect_uris=[RU], public_key_pem=pem.decode(),
                       token_endpoint_auth_method="private_key_jwt")
    return {"rsa": rk, "ec": ek, "pem": pk}


@pytest.mark.parametrize("which,kid,alg", [("rsa", "rk1", None), ("ec", "ek1", None),
                                           ("rsa", "rk1", "PS256"), ("rsa", None, None)])
def test_private_key_jwt(op, pkjwt, which, kid, alg):
    code, v = code_for(op, client_id="jwtclient")
    a = op.client_assertion("jwtclient", pkjwt[which], kid=kid, alg=alg)
    r = op.token_request({"grant_type": "authorization_code", "code": code,
                          "redirect_uri": RU, "code_verifier": v, "client_id": "jwtclient",
                          "client_assertion_type":
                              "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                          "client_assertion": a})
    assert r.status == 200, r.body
    c = verify(op, r.json()["id_token"])
    assert c["aud"] == "jwtclient" and c["employeeHsaId"] and c[OIDC_SE + "orgNumber"]
    assert op.records("token")[-1]["auth_method"] == "private_key_jwt"


def test_private_key_jwt_pem(op, pkjwt):
    r = op.login("pemclient", RU, "nurse", method="private_key_jwt", private_key=pkjwt["pem"])
    assert r["token"].status == 200, r["token"].body


@pytest.mark.parametrize("how,why", [
    ("aud-other", "aud"), ("aud-issuer", None), ("aud-list", None), ("expired", "exp"),
    ("no-exp", "exp"), ("no-jti", "jti"), ("replay", "jti already used"),
    ("iss-sub-differ", "iss and sub"), ("wrong-key", "signature"), ("wrong-kid", "signature"),
    ("alg-hs256", "alg"), ("bad-type", "client_assertion_type"), ("iat-future", "iat"),
    ("client-id-differs", "client_id"), ("not-a-jws", "not a JWS"),
])
def test_private_key_jwt_refusals(op, pkjwt, how, why):
    code, v = code_for(op, client_id="jwtclient")
    t = int(time.time())
    claims, kid, key, alg = {}, "rk1", pkjwt["rsa"], None
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": RU,
            "code_verifier": v,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    if how == "aud-other":
        claims["aud"] = "https://other.example/token"
    elif how == "aud-issuer":
        claims["aud"] = op.issuer
    elif how == "aud-list":
        claims["aud"] = ["x", op.issuer + "/token"]
    elif how == "expired":
        claims["exp"] = t - 1
    elif how == "no-exp":
        claims["exp"] = None
    elif how == "no-jti":
        claims["jti"] = None
    elif how == "replay":
        claims["jti"] = "fixed-jti-1"
        first = op.client_assertion("jwtclient", key, kid=kid, claims=claims)
        code0, v0 = code_for(op, client_id="jwtclient")
        f0 = dict(form, code=code0, code_verifier=v0, client_assertion=first)
        assert op.token_request(f0).status == 200
    elif how == "iss-sub-differ":
        claims["sub"] = "portal"
    elif how == "wrong-key":
        key = pkjwt["pem"]
        kid = None
    elif how == "wrong-kid":
        kid = "ek1"
    elif how == "iat-future":
        claims["iat"] = t + 3600
    elif how == "client-id-differs":
        form["client_id"] = "portal"
    a = op.client_assertion("jwtclient", key, kid=kid, claims=claims, alg=alg)
    if how == "alg-hs256":
        h, p, s = a.split(".")
        a = base64.urlsafe_b64encode(b'{"alg":"HS256"}').rstrip(b"=").decode() + "." + p + "." + s
    if how == "bad-type":
        form["client_assertion_type"] = "jwt"
    if how == "not-a-jws":
        a = "abc"
    form["client_assertion"] = a
    r = op.token_request(form)
    if why is None:
        assert r.status == 200, r.body
        return
    assert r.status == 401 and r.json()["error"] == "invalid_client", r.body
    assert why in r.json()["error_description"]


def test_private_key_jwt_client_needs_a_key(op):
    with pytest.raises(OPError) as ei:
        op.register_client("nokey", redirect_uris=[RU],
                           token_endpoint_auth_method="private_key_jwt")
    assert ei.value.status == 400 and "jwks" in ei.value.body
    with pytest.raises(OPError):
        op.register_client("badkey", token_endpoint_auth_method="private_key_jwt",
                           jwks={"keys": [{"kty": "oct", "k": "AAAA"}]})


def test_token_endpoint_switches(op):
    op.login_behaviour(token="500")
    code, v = code_for(op)
    r = basic_redeem(op, code, v)
    assert r.status == 500 and r.json()["error"] == "server_error"
    op.login_behaviour(token="malformed")
    code, v = code_for(op)
    r = basic_redeem(op, code, v)
    assert r.status == 200
    with pytest.raises(ValueError):
        json.loads(r.body)
    op.login_behaviour(token="no-id-token")
    code, v = code_for(op)
    r = basic_redeem(op, code, v)
    assert r.status == 200 and "id_token" not in r.json() and r.json()["access_token"]
    op.login_behaviour(token="slow", slow_seconds=1)
    code, v = code_for(op)
    t0 = time.monotonic()
    assert basic_redeem(op, code, v).status == 200
    assert time.monotonic() - t0 >= 0.9
    with pytest.raises(OPError):
        op.login_behaviour(token="sometimes")
    with pytest.raises(OPError):
        op.login_behaviour(bogus=1)


# ------------------------------------------------------------------ ID token switches

def _served_ok(op, tok):
    try:
        verify(op, tok)
        return True
    except Exception:  # noqa: BLE001 (any jwcrypto refusal)
        return False


def _flow_with(op, variant, **kw):
    op.login_behaviour(id_token=variant)
    code, v = code_for(op, **kw)
    r = basic_redeem(op, code, v)
    assert r.status == 200, r.body
    t = r.json()
    return t, parts(t["id_token"])


def test_every_id_token_variant_has_a_test(op):
    have = {"bad-signature", "wrong-iss", "wrong-aud", "wrong-azp", "wrong-nonce", "no-nonce",
            "at_hash-mismatch", "expired", "iat-in-future", "unknown-kid", "alg-none",
            "acr-missing", "acr-wrong", "auth-time-old", "no-auth-time", "no-sid", "es256"}
    assert set(op.info_admin()["id_token_variants"]) == have


@pytest.mark.parametrize("variant", ["bad-signature", "unknown-kid", "alg-none"])
def test_id_token_signature_variants(op, variant):
    t, (hdr, c, sig) = _flow_with(op, variant)
    assert not _served_ok(op, t["id_token"])
    assert c["iss"] == op.issuer and c["aud"] == "portal" and c["nonce"] == "n-1"
    kids = {k["kid"] for k in op.jwks()["keys"]}
    if variant == "alg-none":
        assert hdr["alg"] == "none" and sig == ""
    elif variant == "unknown-kid":
        assert hdr["kid"] not in kids
    else:
        assert hdr["kid"] in kids and len(b64d(sig)) == 256


def test_id_token_claim_variants(op):
    def claims(variant, **kw):
        t, (hdr, c, _) = _flow_with(op, variant, **kw)
        assert _served_ok(op, t["id_token"]), "claim variants are correctly signed"
        return t, c
    now = time.time()
    assert claims("wrong-iss")[1]["iss"] == "https://op.attacker.example"
    c = claims("wrong-aud")[1]
    assert c["aud"] == "other-client" and c["azp"] == "other-client"
    c = claims("wrong-azp")[1]
    assert c["aud"] == ["portal", "other-client"] and c["azp"] == "other-client"
    assert claims("wrong-nonce")[1]["nonce"] not in ("n-1", None)
    assert "nonce" not in claims("no-nonce")[1]
    t, c = claims("at_hash-mismatch")
    good = base64.urlsafe_b64encode(hashlib.sha256(
        t["access_token"].encode()).digest()[:16]).rstrip(b"=").decode()
    assert c["at_hash"] != good and len(c["at_hash"]) == len(good)
    c = claims("expired")[1]
    assert c["exp"] < now - 500 and c["iat"] < c["exp"]
    c = claims("iat-in-future")[1]
    assert c["iat"] > now + 3000 and c["exp"] > c["iat"]
    assert "acr" not in claims("acr-missing")[1]
    assert claims("acr-wrong", acr_values=LOA3)[1]["acr"] == LOA2
    assert claims("acr-wrong", acr_values=LOA2)[1]["acr"] == \
        "http://id.elegnamnden.se/loa/1.0/loa1"
    assert claims("acr-wrong")[1]["acr"] == LOA2
    assert claims("auth-time-old", max_age="600")[1]["auth_time"] < now - 7000
    assert "auth_time" not in claims("no-auth-time")[1]
    assert "sid" not in claims("no-sid")[1]
    t, c = claims(["wrong-nonce", "no-sid"])
    assert "sid" not in c and c["nonce"] != "n-1"


def test_id_token_es256(op):
    t, (hdr, c, _) = _flow_with(op, "es256")
    assert hdr["alg"] == "ES256" and hdr["kid"] == op.jwks()["keys"][1]["kid"]
    assert verify(op, t["id_token"])["nonce"] == "n-1"


def test_id_token_after_rotation_uses_current_key(tmp_path):
    o = TestOP(tmp_path / "s").start()
    try:
        o.register_client("portal", redirect_uris=[RU])
        new = o.rotate()["kid"]
        r = o.login("portal", RU, "nurse", "portal-secret")
        assert parts(r["tokens"]["id_token"])[0]["kid"] == new
        verify(o, r["tokens"]["id_token"])
    finally:
        assert o.stop() == 0


# ------------------------------------------------------------------ userinfo

def test_userinfo(op):
    op.reset_stats()
    t = flow_tokens(op)
    r = op.userinfo(t["access_token"])
    assert r.status == 200
    u = r.json()
    assert u["sub"] == "SE2321000016-P0001N" and u["employeeHsaId"] == u["sub"]
    assert not {"iss", "aud", "exp", "scope", "client_id", "jti"} & set(u)
    r = op.request("POST", "/userinfo", body=urllib.parse.urlencode(
        {"access_token": t["access_token"]}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200 and r.json() == u
    assert op.userinfo(t["access_token"], method="POST").json() == u
    for bad in ("nope", t["access_token"] + "x", op.mint(variant="bad-signature")):
        r = op.userinfo(bad)
        assert r.status == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert op.get("/userinfo").status == 401
    assert op.stats()["userinfo_requests"] == 7
    assert op.records("userinfo")[0]["result"] == "ok"


def test_userinfo_switches(op):
    t = flow_tokens(op)
    op.login_behaviour(userinfo="sub-mismatch")
    u = op.userinfo(t["access_token"]).json()
    assert u["sub"] != "SE2321000016-P0001N" and u["employeeHsaId"] == "SE2321000016-P0001N"
    op.login_behaviour(userinfo="500")
    assert op.userinfo(t["access_token"]).status == 500
    op.login_behaviour(userinfo="garbage")
    r = op.userinfo(t["access_token"])
    assert r.status == 200
    with pytest.raises(ValueError):
        json.loads(r.body)
    op.login_behaviour(userinfo="slow", slow_seconds=1)
    t0 = time.monotonic()
    assert op.userinfo(t["access_token"]).status == 200
    assert time.monotonic() - t0 >= 0.9


# ------------------------------------------------------------------ end session

def test_end_session(op):
    op.reset_stats()
    r = op.login("portal", RU, "nurse", "portal-secret")
    idt = r["tokens"]["id_token"]
    c = verify(op, idt)
    assert c["sid"] in {s["sid"] for s in op.sessions()}
    q = urllib.parse.urlencode({"id_token_hint": idt, "post_logout_redirect_uri": PLR,
                                "state": "bye-1"})
    e = op.get("/end_session?" + q)
    assert e.status == 302 and e.headers["location"] == PLR + "?state=bye-1"
    assert "Max-Age=0" in e.headers["set-cookie"]
    assert c["sid"] not in {s["sid"] for s in op.sessions()}
    rec = op.end_session_records()[-1]
    assert rec["result"] == "redirect" and rec["id_token_hint_valid"] is True
    assert rec["sid"] == c["sid"] and rec["sub"] == c["sub"] and rec["client_id"] == "portal"
    assert rec["state"] == "bye-1" and rec["post_logout_redirect_uri"] == PLR
    assert rec["session_ended"] is True
    # the same hint again: valid, the session is already gone
    e = op.get("/end_session?" + q)
    assert e.status == 302 and op.end_session_records()[-1]["session_ended"] is False
    # without a post_logout_redirect_uri: a page
    e = op.get("/end_session?" + urllib.parse.urlencode({"id_token_hint": idt}))
    assert e.status == 200 and b'id="logged-out"' in e.body
    assert op.end_session_records()[-1]["result"] == "page"
    # POST form and the /logout alias
    e = op.request("POST", "/end_session", body=q.encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert e.status == 302
    assert op.get("/logout?" + q).status == 302
    assert op.stats()["end_session_requests"] == 5


@pytest.mark.parametrize("how", ["unregistered", "forged", "foreign-key", "other-iss",
                                 "client-differs", "no-hint-no-client", "garbage-hint"])
def test_end_session_refusals(op, how):
    idt = flow_tokens(op)["id_token"]
    p = {"id_token_hint": idt, "post_logout_redirect_uri": PLR, "state": "s"}
    if how == "unregistered":
        p["post_logout_redirect_uri"] = "https://evil.example/"
    elif how == "forged":
        op.login_behaviour(id_token="bad-signature")
        p["id_token_hint"] = flow_tokens(op)["id_token"]
    elif how == "foreign-key":
        p["id_token_hint"] = op.mint(variant="jwk")
    elif how == "other-iss":
        op.login_behaviour(id_token="wrong-iss")
        p["id_token_hint"] = flow_tokens(op)["id_token"]
    elif how == "client-differs":
        p["client_id"] = "other"
    elif how == "no-hint-no-client":
        del p["id_token_hint"]
    elif how == "garbage-hint":
        p["id_token_hint"] = "a.b"
    e = op.get("/end_session?" + urllib.parse.urlencode(p))
    assert e.status == 400 and "location" not in e.headers and b'id="error"' in e.body
    rec = op.end_session_records()[-1]
    assert rec["result"] == "error" and rec["error"]


def test_end_session_with_client_id_only(op):
    e = op.get("/end_session?" + urllib.parse.urlencode(
        {"client_id": "portal", "post_logout_redirect_uri": PLR}))
    assert e.status == 302 and e.headers["location"] == PLR
