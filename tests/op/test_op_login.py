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
    # RFC 9207 mix-up: the success redirect with another or no iss
    op.login_behaviour(authorize="iss-param-wrong")
    q = redirect_query(op.authorize(p))
    assert q["code"] and q["iss"] == "https://op.attacker.example"
    op.login_behaviour(authorize="iss-param-missing")
    q = redirect_query(op.authorize(p))
    assert q["code"] and q["state"] == "st-1" and "iss" not in q
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
            "acr-missing", "acr-wrong", "auth-time-old", "no-auth-time", "no-sid", "es256",
            "minimal"}
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


def test_userinfo_signed_switches(op):
    """Core 5.3.2 signed answers: a JWS by the current key with iss and aud = the client;
    each signed-* mode spoils one thing; encrypted is five random base64url parts."""
    t = flow_tokens(op)
    op.login_behaviour(userinfo="signed")
    r = op.userinfo(t["access_token"])
    assert r.status == 200 and r.headers["content-type"] == "application/jwt"
    tok = r.body.decode("ascii")
    hdr, cl, _ = parts(tok)
    assert hdr["alg"] == "RS256" and hdr["typ"] == "JWT"
    assert verify(op, tok) == cl
    assert cl["iss"] == op.issuer and cl["aud"] == "portal"
    assert cl["sub"] == "SE2321000016-P0001N" and cl["employeeHsaId"] == cl["sub"]
    op.login_behaviour(userinfo="signed-badsig")
    with pytest.raises(Exception):
        verify(op, op.userinfo(t["access_token"]).body.decode("ascii"))
    op.login_behaviour(userinfo="signed-wrong-aud")
    assert parts(op.userinfo(t["access_token"]).body.decode())[1]["aud"] == "other-client"
    op.login_behaviour(userinfo="signed-wrong-iss")
    assert parts(op.userinfo(t["access_token"]).body.decode())[1]["iss"] != op.issuer
    op.login_behaviour(userinfo="signed-no-iss-aud")
    cl = verify(op, op.userinfo(t["access_token"]).body.decode("ascii"))
    assert "iss" not in cl and "aud" not in cl and cl["sub"] == "SE2321000016-P0001N"
    op.login_behaviour(userinfo="signed-alg-none")
    tok = op.userinfo(t["access_token"]).body.decode("ascii")
    assert parts(tok)[0]["alg"] == "none" and tok.endswith(".")
    op.login_behaviour(userinfo="encrypted")
    r = op.userinfo(t["access_token"])
    assert r.status == 200 and r.headers["content-type"] == "application/jwt"
    assert len(r.body.decode("ascii").split(".")) == 5
    op.login_behaviour(userinfo="ok", id_token="minimal")
    idt = flow_tokens(op)["id_token"]
    assert set(verify(op, idt)) - {"iss", "aud", "azp", "exp", "iat", "auth_time", "acr",
                                   "sid", "at_hash", "nonce"} == {"sub"}


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


# ------------------------------------------------------------------ back-channel logout

class _Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def receiver():
    """A loopback RP back-channel endpoint recording what it gets."""
    got = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            got.append({"path": self.path, "host": self.headers.get("Host"),
                        "ctype": self.headers.get("Content-Type"),
                        "form": dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))})
            body = b"refused" if self.path.endswith("/refuse") else b""
            self.send_response(400 if body else 200)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = _Receiver(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    srv.got = got
    yield srv
    srv.shutdown()
    srv.server_close()


def _bcl_client(op, port, path="/.eid/backchannel-logout", host="127.0.0.1", scheme="http",
                **kw):
    uri = "%s://%s:%d%s" % (scheme, host, port, path)
    op.register_client("portal", backchannel_logout_uri=uri, **kw)
    return uri


def test_backchannel_logout(op, receiver):
    op.reset_stats()
    uri = _bcl_client(op, receiver.server_address[1])
    r = op.login("portal", RU, "nurse", "portal-secret")
    c = verify(op, r["tokens"]["id_token"])
    ans = op.backchannel("portal", sid=c["sid"], sub=c["sub"])
    assert ans["status"] == 200 and ans["error"] is None and ans["uri"] == uri
    got = receiver.got[-1]
    assert got["path"] == "/.eid/backchannel-logout"
    assert got["ctype"] == "application/x-www-form-urlencoded"
    tok = got["form"]["logout_token"]
    assert tok == ans["logout_token"]
    hdr = parts(tok)[0]
    assert hdr["typ"] == "logout+jwt" and hdr["kid"] == op.jwks()["keys"][0]["kid"]
    lc = verify(op, tok)
    assert lc["iss"] == op.issuer and lc["aud"] == "portal" and lc["sid"] == c["sid"]
    assert lc["sub"] == c["sub"] and lc["jti"] and abs(lc["iat"] - time.time()) < 5
    assert lc["exp"] > lc["iat"] and "nonce" not in lc
    assert lc["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    # only sid, only sub
    lc = verify(op, op.backchannel("portal", sid="s-only")["logout_token"])
    assert lc["sid"] == "s-only" and "sub" not in lc
    lc = verify(op, op.backchannel("portal", sub="u-only")["logout_token"])
    assert lc["sub"] == "u-only" and "sid" not in lc
    # the RP's refusal comes back as is
    ans = op.backchannel("portal", sid="x", uri=uri + "/refuse")
    assert ans["status"] == 400 and ans["body"] == "refused"
    assert op.stats()["backchannel_sent"] == 4
    rec = op.records("backchannel")[-1]
    assert rec["status"] == 400 and rec["claims"]["sid"] == "x"


def test_backchannel_variants(op, receiver):
    _bcl_client(op, receiver.server_address[1])
    seen = set()

    def send(v, **kw):
        seen.add(v)
        a = op.backchannel("portal", variant=v, **kw)
        assert a["status"] == 200 and receiver.got[-1]["form"]["logout_token"] == \
            a["logout_token"]
        return a["logout_token"], parts(a["logout_token"])
    now = time.time()
    first = verify(op, op.backchannel("portal", sid="s1")["logout_token"])
    tok, (h, c, s) = send("replay", sid="s1")
    assert c["jti"] == first["jti"] and _served_ok(op, tok)
    tok, (h, c, s) = send("bad-signature", sid="s1")
    assert not _served_ok(op, tok) and c["sid"] == "s1"
    tok, (h, c, s) = send("alg-none", sid="s1")
    assert h["alg"] == "none" and s == ""
    for v, check in (
            ("with-nonce", lambda c: c["nonce"]),
            ("no-events", lambda c: "events" not in c),
            ("wrong-events", lambda c: "http://schemas.openid.net/event/backchannel-logout"
             not in c["events"]),
            ("wrong-aud", lambda c: c["aud"] == "other-client"),
            ("wrong-iss", lambda c: c["iss"] == "https://op.attacker.example"),
            ("old-iat", lambda c: c["iat"] < now - 3500 and c["exp"] > now),
            ("expired", lambda c: c["exp"] < now),
            ("no-sid-no-sub", lambda c: "sid" not in c and "sub" not in c)):
        tok, (h, c, s) = send(v, sid="s1", sub="u1")
        assert _served_ok(op, tok) and check(c), v
    tok, (h, c, s) = send("no-typ", sid="s1")
    assert "typ" not in h and _served_ok(op, tok)
    assert seen == set(op.info_admin()["backchannel_variants"])


def test_backchannel_host_name_still_loopback(op, receiver):
    port = receiver.server_address[1]
    _bcl_client(op, port, host="rp.test")
    a = op.backchannel("portal", sid="s")
    assert a["status"] == 200 and receiver.got[-1]["host"] == "rp.test:%d" % port


def test_backchannel_https_with_ca_file(op, tmp_path):
    from test_op_selftest import self_signed
    cert, key = self_signed(tmp_path, cn="localhost")
    got = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            got.append(self.rfile.read(n))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    srv = _Receiver(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        port = srv.server_address[1]
        _bcl_client(op, port, host="localhost", scheme="https", backchannel_ca_file=cert)
        a = op.backchannel("portal", sid="tls")
        assert a["status"] == 200 and a["body"] == "ok" and got[-1].startswith(b"logout_token=")
        # without the CA: the OP refuses the RP's certificate and says so
        op.register_client("portal", backchannel_ca_file=None)
        a = op.backchannel("portal", sid="tls")
        assert a["status"] is None and "CERTIFICATE_VERIFY_FAILED" in a["error"]
        a = op.backchannel("portal", sid="tls", ca_file=cert)
        assert a["status"] == 200
    finally:
        srv.shutdown()
        srv.server_close()


def test_backchannel_admin_errors(op, tmp_path):
    o = TestOP(tmp_path / "s").start()
    try:
        for req, msg in (({"client": "nobody", "sid": "x"}, "unknown client"),
                         ({"client": "portal", "sid": "x"}, "no backchannel_logout_uri")):
            with pytest.raises(OPError) as ei:
                o.backchannel(**req)
            assert ei.value.status == 400 and msg in ei.value.body
        o.register_client("portal", backchannel_logout_uri="http://127.0.0.1:9/x")
        for kw, msg in ((dict(), "sid and/or sub"), (dict(sid="x", variant="nope"), "variant"),
                        (dict(sid="x", variant="replay"), "no logout token"),
                        (dict(sid="x", bogus=1), "unknown backchannel fields")):
            with pytest.raises(OPError) as ei:
                o.backchannel("portal", **kw)
            assert ei.value.status == 400 and msg in ei.value.body, ei.value.body
        # nobody listening: status null and the connection error
        a = o.backchannel("portal", sid="x")
        assert a["status"] is None and "Connection" in a["error"]
    finally:
        assert o.stop() == 0


# ------------------------------------------------------------------ clients

def test_client_registration_rules(op):
    for req, msg in ((dict(redirect_uris="https://x/cb"), "redirect_uris"),
                     (dict(redirect_uris=["/relative"]), "absolute"),
                     (dict(redirect_uris=["https://x/cb#frag"]), "fragment"),
                     (dict(post_logout_redirect_uris=["javascript:alert(1)"]), "absolute"),
                     (dict(backchannel_logout_uri="ftp://x/"), "backchannel_logout_uri"),
                     (dict(token_endpoint_auth_method="none"), "token_endpoint_auth_method"),
                     (dict(profile="saml"), "profile"),
                     (dict(pkce_required="yes"), "pkce_required"),
                     (dict(bogus=1), "unknown client fields")):
        with pytest.raises(OPError) as ei:
            op.register_client("portal", **req)
        assert ei.value.status == 400 and msg in ei.value.body, (req, ei.value.body)
    with pytest.raises(OPError) as ei:
        op.register_client("new-no-secret", redirect_uris=[RU])
    assert "client_secret required" in ei.value.body
    # an update keeps what was not sent; replace starts again
    c = op.register_client("upd", client_secret="a", redirect_uris=[RU], profile="generic")
    c = op.register_client("upd", post_logout_redirect_uris=[PLR])
    assert c["redirect_uris"] == [RU] and c["profile"] == "generic" and c["client_secret"] == "a"
    c = op.register_client("upd", replace=True, client_secret="b")
    assert c["redirect_uris"] == [] and c["profile"] == "inera"
    assert "upd" in op.clients()
    op.delete_client("upd")
    assert "upd" not in op.clients()
    # a login client also authenticates at /introspect
    assert op.introspect(op.mint(opaque=True), client=("portal", "portal-secret")).json()[
        "active"] is True


def test_clients_persist_and_old_format(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    (d / "clients.json").write_text(json.dumps({"old-rs": "old-pw"}))
    o = TestOP(d).start()
    try:
        assert set(o.clients()) == {"old-rs"}
        assert o.introspect(o.mint(opaque=True), client=("old-rs", "old-pw")).json()["active"]
        o.register_client("rp", client_secret="s", redirect_uris=[RU], profile="oidc-sweden",
                          backchannel_logout_uri="http://127.0.0.1:1/b")
        o.restart()
        c = o.clients()["rp"]
        assert c["redirect_uris"] == [RU] and c["profile"] == "oidc-sweden"
        r = o.login("rp", RU, "citizen", "s")
        assert r["token"].status == 200
    finally:
        assert o.stop() == 0
    assert oct(os.stat(d / "clients.json").st_mode & 0o777) == "0o600"


def test_default_clients(tmp_path):
    o = TestOP(tmp_path / "s").start()
    try:
        cs = o.clients()
        assert set(cs) == {"incident-api", "portal"}
        p = cs["portal"]
        assert p["client_secret"] == "portal-secret" and p["profile"] == "inera"
        assert p["token_endpoint_auth_method"] == "client_secret_basic" and p["pkce_required"]
        assert p["redirect_uris"] == []
    finally:
        assert o.stop() == 0


def test_records_and_reset(op):
    flow_tokens(op)
    r = op.records()
    assert set(r) == {"authorize", "token", "userinfo", "end_session", "backchannel"}
    assert r["token"] and r["authorize"][-1]["result"] == "ok"
    assert r["authorize"][-1]["params"]["client_id"] == "portal"
    op.clear_records()
    assert op.records() == {k: [] for k in r}
    flow_tokens(op)
    op.reset_stats()
    assert op.records("token") == []
    with pytest.raises(OPError):
        op.records("nope")


def test_parallel_logins(op):
    """Concurrent flows do not mix up codes, nonces or sessions."""
    out, errs = [], []

    def one(user):
        try:
            r = op.login("portal", RU, user, "portal-secret")
            out.append((user, r["nonce"], verify(op, r["tokens"]["id_token"])))
        except Exception as e:  # noqa: BLE001
            errs.append(e)
    ths = [threading.Thread(target=one, args=(u,)) for u in
           ("nurse", "citizen", "lowlevel", "othernurse", "staff") * 3]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errs and len(out) == 15
    subs = {u["name"]: u["sub"] for u in op.users().values()}
    for user, nonce, c in out:
        assert c["nonce"] == nonce and c["sub"] == subs[user]
    assert len({c["sid"] for _, _, c in out}) == 15


def test_tls_op_login(tmp_path):
    from test_op_selftest import self_signed
    cert, key = self_signed(tmp_path)
    o = TestOP(tmp_path / "s", tls_cert=cert, tls_key=key).start()
    try:
        assert o.discovery()["token_endpoint"].startswith("https://")
        o.register_client("portal", redirect_uris=[RU])
        r = o.login("portal", RU, "nurse", "portal-secret")
        assert r["params"]["iss"] == o.issuer and r["token"].status == 200
        assert verify(o, r["tokens"]["id_token"])["iss"].startswith("https://127.0.0.1:")
    finally:
        assert o.stop() == 0


def test_browser_clicks_login_button(op, receiver, tmp_path):
    """Headless Chromium (Debian's chromium + chromedriver, python3-selenium) clicks the
    nurse's button; the redirect carries a code that redeems."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    port = receiver.server_address[1]
    cb = "http://127.0.0.1:%d/cb" % port
    op.register_client("portal", redirect_uris=[RU, cb])
    v, ch = op.pkce_pair()
    url = op.issuer + "/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": "portal", "redirect_uri": cb,
        "scope": "openid", "state": "br-1", "nonce": "br-n", "code_challenge": ch,
        "code_challenge_method": "S256", "acr_values": LOA3})
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-proxy-server", "--user-data-dir=%s" % (tmp_path / "chrome")):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        d.set_page_load_timeout(30)
        d.get(url)
        assert d.find_element(By.ID, "acr").text == LOA3
        d.save_screenshot(str(tmp_path / "op-login-page.png"))
        d.find_element(By.ID, "login-nurse").click()
        deadline = time.monotonic() + 20
        while not d.current_url.startswith(cb) and time.monotonic() < deadline:
            time.sleep(0.1)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(d.current_url).query))
    finally:
        d.quit()
    assert q["state"] == "br-1" and q["iss"] == op.issuer
    r = basic_redeem(op, q["code"], v, redirect_uri=cb)
    assert r.status == 200, r.body
    c = verify(op, r.json()["id_token"])
    assert c["nonce"] == "br-n" and c["sub"] == "SE2321000016-P0001N" and c["acr"] == LOA3
    assert c["sid"] in {s["sid"] for s in op.sessions()}
    assert os.path.getsize(tmp_path / "op-login-page.png") > 1000
