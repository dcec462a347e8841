"""Selftest of the test OpenID Provider (eid_test_op.py) and its controller (opctl.py).

    /usr/bin/python3 -m pytest -q tests/op

Tokens are checked with tools independent of the OP's own signing code: jwcrypto for
the default tokens, raw `cryptography` verification against keys taken from the served
JWKS (or the attacker material the token points at) for the hostile variants.
"""
import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from jwcrypto import jwk, jws

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opctl import OP_SCRIPT, PYTHON, OPError, TestOP  # noqa: E402

API_AUD = "api://incident"
B64U = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# ------------------------------------------------------------------ helpers

def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def parse(token):
    """(header, payload bytes, signature bytes, signing input bytes) of a compact JWS."""
    h, p, s = token.split(".")
    return json.loads(b64d(h)), b64d(p), b64d(s), (h + "." + p).encode("ascii")


def claims_of(token):
    return json.loads(parse(token)[1])


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        v = int(ch) * (2 if i % 2 else 1)
        total += v // 10 + v % 10
    return total % 10 == 0


def pyca_from_jwk(d):
    return jwk.JWK(**d).get_op_key("verify")


def sig_ok(pub, alg, signing_input, sig):
    """Raw JWS signature check with `cryptography` (no header processing at all)."""
    try:
        if alg == "RS256":
            pub.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            pub.verify(sig, signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                       salt_length=32), hashes.SHA256())
        elif alg == "ES256":
            if len(sig) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                       int.from_bytes(sig[32:], "big"))
            pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            raise AssertionError(alg)
        return True
    except InvalidSignature:
        return False


def jwks_key(jwks, kid):
    for k in jwks["keys"]:
        if k["kid"] == kid:
            return k
    raise KeyError(kid)


def served_sig_ok(op, token, kid=None, alg=None):
    """The token's signature verifies under a key of the served JWKS."""
    hdr, _, sig, si = parse(token)
    k = jwks_key(op.jwks(), kid or hdr["kid"])
    return sig_ok(pyca_from_jwk(k), alg or k["alg"], si, sig)


def jwcrypto_verify(token, jwks):
    keyset = jwk.JWKSet.from_json(json.dumps(jwks))
    hdr = json.loads(b64d(token.split(".")[0]))
    key = keyset.get_key(hdr["kid"])
    assert key is not None, "kid %s not in JWKS" % hdr["kid"]
    obj = jws.JWS()
    obj.deserialize(token)
    obj.verify(key, alg=key.get("alg"))
    return json.loads(obj.payload)


def self_signed(tmp_path, cn="127.0.0.1"):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(hours=1))
            .not_valid_after(t + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cf, kf = tmp_path / "tls.crt", tmp_path / "tls.key"
    cf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kf.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return str(cf), str(kf)


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def op(tmp_path_factory):
    o = TestOP(tmp_path_factory.mktemp("op-shared")).start()
    yield o
    assert o.stop() == 0
    assert not os.path.exists(o.info_path), "op.json must go on clean shutdown"


def seeded_dir(op, path):
    """A state dir holding a copy of the shared OP's keys: a fresh OP without the cost of
    generating RSA keys (the selftest must stay quick on a loaded machine)."""
    path.mkdir()
    shutil.copy(os.path.join(op.state_dir, "keys.json"), path / "keys.json")
    return path


@pytest.fixture
def fresh_op(op, tmp_path):
    o = TestOP(seeded_dir(op, tmp_path / "state")).start()
    yield o
    assert o.stop() == 0


@pytest.fixture(autouse=True)
def _ok_behaviour(request):
    yield
    if "op" in request.fixturenames:
        request.getfixturevalue("op").behaviour(reset=True)


# ------------------------------------------------------------------ process

def test_op_json_and_loopback(op):
    with open(op.info_path, encoding="utf-8") as f:
        info = json.load(f)
    assert info["issuer"] == "http://127.0.0.1:%d" % info["port"]
    assert info["pid"] == op.proc.pid
    assert op.port == info["port"] > 0


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com", "127.0.0.2", "::"])
def test_refuses_non_loopback_host(tmp_path, host):
    r = subprocess.run([PYTHON, OP_SCRIPT, "--state-dir", str(tmp_path), "--host", host,
                        "--port", "0"], capture_output=True, timeout=10)
    assert r.returncode == 2
    assert b"loopback only" in r.stderr
    assert not (tmp_path / "op.json").exists()


def test_ipv6_loopback(op, tmp_path):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    o = TestOP(seeded_dir(op, tmp_path / "state"), host="::1").start()
    try:
        assert o.issuer.startswith("http://[::1]:")
        assert o.discovery()["issuer"] == o.issuer
    finally:
        assert o.stop() == 0


def test_tls(op, tmp_path):
    cert, key = self_signed(tmp_path)
    o = TestOP(seeded_dir(op, tmp_path / "state"), tls_cert=cert, tls_key=key).start()
    try:
        assert o.issuer.startswith("https://127.0.0.1:")
        d = o.discovery()
        assert d["issuer"] == o.issuer and d["jwks_uri"].startswith("https://")
        assert len(o.jwks()["keys"]) == 2
        # a plain-HTTP client gets nowhere, and the server survives it
        with socket.create_connection(("127.0.0.1", o.port), timeout=5) as s:
            s.sendall(b"GET /jwks HTTP/1.0\r\n\r\n")
            try:
                assert not s.recv(100).startswith(b"HTTP/")
            except ConnectionResetError:
                pass
        assert o.discovery()["issuer"] == o.issuer
    finally:
        assert o.stop() == 0


# ------------------------------------------------------------------ discovery + JWKS

def test_discovery(op):
    op.reset_stats()
    d = op.discovery()
    assert d["issuer"] == op.issuer
    assert d["jwks_uri"] == op.issuer + "/jwks"
    assert d["introspection_endpoint"] == op.issuer + "/introspect"
    for k in ("authorization_endpoint", "token_endpoint"):
        assert d[k].startswith(op.issuer + "/")
    assert set(d["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert "S256" in d["code_challenge_methods_supported"]
    assert op.stats()["discovery_fetches"] == 1


def test_jwks(op):
    op.reset_stats()
    ks = op.jwks()["keys"]
    assert [(k["kty"], k["alg"], k["use"]) for k in ks] == [("RSA", "RS256", "sig"),
                                                            ("EC", "ES256", "sig")]
    assert len({k["kid"] for k in ks}) == 2
    for k in ks:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(k), "private key material served"
    rsa_pub = pyca_from_jwk(ks[0])
    assert isinstance(rsa_pub, rsa.RSAPublicKey) and rsa_pub.key_size == 2048
    ec_pub = pyca_from_jwk(ks[1])
    assert ks[1]["crv"] == "P-256" and isinstance(ec_pub.curve, ec.SECP256R1)
    assert op.stats()["jwks_fetches"] == 1


# ------------------------------------------------------------------ minting

def test_default_token_rsa(op):
    info = op.mint_info()
    tok = info["token"]
    hdr = parse(tok)[0]
    assert hdr == {"alg": "RS256", "typ": "at+jwt", "kid": op.jwks()["keys"][0]["kid"]}
    c = jwcrypto_verify(tok, op.jwks())
    t = time.time()
    assert c["iss"] == op.issuer and c["aud"] == API_AUD
    assert c["exp"] - c["iat"] == 300 and abs(c["iat"] - t) < 5
    assert "nbf" not in c and c["sub"] and c["jti"]
    assert c == info["claims"]
    assert op.mint_info()["claims"]["jti"] != c["jti"]


def test_default_token_ec(op):
    tok = op.mint(key="ec", aud="api://other-api", ttl=60)
    hdr = parse(tok)[0]
    assert hdr["alg"] == "ES256" and hdr["kid"] == op.jwks()["keys"][1]["kid"]
    c = jwcrypto_verify(tok, op.jwks())
    assert c["aud"] == "api://other-api" and c["exp"] - c["iat"] == 60


def test_overrides_and_deletions(op):
    tok = op.mint(claims={"sub": "x", "scope": "a b", "client_id": None, "nbf": 1},
                  header={"typ": None, "x-extra": "1"})
    hdr, _, _, _ = parse(tok)
    c = jwcrypto_verify(tok, op.jwks())
    assert "typ" not in hdr and hdr["x-extra"] == "1"
    assert c["sub"] == "x" and c["scope"] == "a b" and "client_id" not in c and c["nbf"] == 1


def test_unknown_key_is_unpublished(op):
    info = op.mint_info(key="unknown")
    kids = {k["kid"] for k in op.jwks()["keys"]}
    assert info["kid"] not in kids
    assert info["kid"] == op.info_admin()["kids"]["unknown"]


def test_admin_errors(op):
    for kw, msg in ((dict(variant="nope"), "unknown variant"),
                    (dict(preset="nope"), "unknown preset"),
                    (dict(key="nope"), "unknown key"),
                    (dict(key="rsa-old"), "rotate first"),
                    (dict(bogus=1), "unknown mint fields"),
                    (dict(opaque=True, variant="alg-none"), "no variants")):
        with pytest.raises(OPError) as ei:
            op.mint(**kw)
        assert ei.value.status == 400 and msg in ei.value.body
    with pytest.raises(OPError):
        op.behaviour(jwks="sometimes")
    assert op.get("/nope").status == 404
    assert op.get("/introspect").status == 405


# ------------------------------------------------------------------ hostile variants

def _attacker_pub_from_cert(pem_or_der):
    if pem_or_der.startswith(b"-----"):
        return x509.load_pem_x509_certificate(pem_or_der).public_key()
    return x509.load_der_x509_certificate(pem_or_der).public_key()


def ck_alg_none(op, tok):
    hdr, payload, sig, _ = parse(tok)
    assert hdr["alg"] == "none" and sig == b"" and tok.endswith(".")
    assert json.loads(payload)["iss"] == op.issuer


def ck_hs256_pubkey(op, tok):
    hdr, _, sig, si = parse(tok)
    assert hdr["alg"] == "HS256"
    k = jwks_key(op.jwks(), hdr["kid"])
    assert k["kty"] == "RSA"
    pem = jwk.JWK(**k).export_to_pem()  # SPKI PEM, as a naive verifier would load it
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert hmac.compare_digest(sig, hmac.new(pem, si, hashlib.sha256).digest())
    # jwcrypto agrees when handed the PEM as an oct key
    obj = jws.JWS()
    obj.deserialize(tok)
    obj.verify(jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(pem).rstrip(b"=").decode()),
               alg="HS256")
    assert not sig_ok(pyca_from_jwk(k), "RS256", si, sig)


def ck_unknown_kid(op, tok):
    hdr = parse(tok)[0]
    ks = op.jwks()
    assert hdr["kid"] not in {k["kid"] for k in ks["keys"]}
    assert served_sig_ok(op, tok, kid=ks["keys"][0]["kid"])
    assert parse(op.mint(variant="unknown-kid"))[0]["kid"] != hdr["kid"]


def ck_kid_junk(op, tok):
    kid = parse(tok)[0]["kid"]
    assert "../../etc/passwd" in kid and "\r\n" in kid
    assert served_sig_ok(op, tok, kid=op.jwks()["keys"][0]["kid"])


def ck_kid_nul(op, tok):
    kid = parse(tok)[0]["kid"]
    real = op.jwks()["keys"][0]["kid"]
    assert kid.startswith(real + "\x00")
    assert served_sig_ok(op, tok, kid=real)


def _assert_not_signed_by_served(op, tok):
    _, _, sig, si = parse(tok)
    for k in op.jwks()["keys"]:
        if k["kty"] == "RSA":
            assert not sig_ok(pyca_from_jwk(k), "RS256", si, sig)


def ck_jku(op, tok):
    hdr, _, sig, si = parse(tok)
    assert hdr["jku"] == op.issuer + "/attacker/jwks"
    before = op.stats()["attacker_fetches"]
    r = op.get("/attacker/jwks")
    assert op.stats()["attacker_fetches"] == before + 1
    k = jwks_key(r.json(), hdr["kid"])
    assert sig_ok(pyca_from_jwk(k), "RS256", si, sig)
    assert hdr["kid"] not in {k["kid"] for k in op.jwks()["keys"]}
    _assert_not_signed_by_served(op, tok)


def ck_x5u(op, tok):
    hdr, _, sig, si = parse(tok)
    assert hdr["x5u"] == op.issuer + "/attacker/x5u.pem"
    r = op.get("/attacker/x5u.pem")
    assert sig_ok(_attacker_pub_from_cert(r.body), "RS256", si, sig)
    _assert_not_signed_by_served(op, tok)


def ck_jwk(op, tok):
    hdr, _, sig, si = parse(tok)
    assert hdr["jwk"]["kty"] == "RSA" and "d" not in hdr["jwk"]
    assert sig_ok(pyca_from_jwk(hdr["jwk"]), "RS256", si, sig)
    _assert_not_signed_by_served(op, tok)


def ck_x5c(op, tok):
    hdr, _, sig, si = parse(tok)
    der = base64.b64decode(hdr["x5c"][0], validate=True)
    assert sig_ok(_attacker_pub_from_cert(der), "RS256", si, sig)
    _assert_not_signed_by_served(op, tok)


def ck_crit_unknown(op, tok):
    hdr = parse(tok)[0]
    assert hdr["crit"] == ["x-unknown"] and "x-unknown" in hdr
    assert served_sig_ok(op, tok)


def _claims_ck(pred):
    def ck(op, tok):
        assert served_sig_ok(op, tok)
        c = claims_of(tok)
        assert pred(op, c, time.time()), c
    return ck


def ck_id_token(op, tok):
    hdr = parse(tok)[0]
    c = claims_of(tok)
    assert served_sig_ok(op, tok)
    assert hdr["typ"] == "JWT" and c["aud"] == "portal" and c["azp"] == "portal"
    assert c["nonce"] and len(b64d(c["at_hash"])) == 16 and c["iss"] == op.issuer
    assert "jti" not in c and "client_id" not in c


def ck_id_token_our_aud(op, tok):
    hdr = parse(tok)[0]
    c = claims_of(tok)
    assert served_sig_ok(op, tok)
    assert hdr["typ"] == "JWT" and set(c["aud"]) == {"portal", API_AUD} and c["nonce"]
    assert c["at_hash"] and c["azp"] == "portal"


def ck_truncated(op, tok):
    hdr, payload, sig, _ = parse(tok)
    assert len(sig) < 256 and json.loads(payload)["iss"] == op.issuer


def ck_garbled(op, tok):
    h, p, s = tok.split(".")
    assert not set(p) <= B64U
    pub = pyca_from_jwk(op.jwks()["keys"][0])
    assert sig_ok(pub, "RS256", (h + "." + p).encode(), b64d(s)), "signed over as is"


def ck_two_dots_only(op, tok):
    assert tok == ".."


def ck_huge(op, tok):
    assert 60000 <= len(tok) <= 70000
    assert served_sig_ok(op, tok)
    assert len(claims_of(tok)["pad"]) > 40000


def ck_exp_float_huge(op, tok):
    _, payload, _, _ = parse(tok)
    assert b'"exp":1e+300' in payload and json.loads(payload)["exp"] == 1e300
    assert served_sig_ok(op, tok)


def ck_bad_signature(op, tok):
    hdr, payload, sig, si = parse(tok)
    assert len(sig) == 256 and json.loads(payload)["iss"] == op.issuer
    assert not served_sig_ok(op, tok)
    fixed = bytearray(sig)
    for i in (0, 128, 255):
        fixed[i] ^= 1
    assert sig_ok(pyca_from_jwk(jwks_key(op.jwks(), hdr["kid"])), "RS256", si, bytes(fixed))


def ck_json_trailing_garbage(op, tok):
    _, payload, _, _ = parse(tok)
    with pytest.raises(ValueError):
        json.loads(payload)
    obj, end = json.JSONDecoder().raw_decode(payload.decode())
    assert obj["iss"] == op.issuer and payload.decode()[end:].strip()
    assert served_sig_ok(op, tok)


def ck_dup_claims(op, tok):
    _, payload, _, _ = parse(tok)
    pairs = json.loads(payload, object_pairs_hook=lambda p: p)
    exps = [v for k, v in pairs if k == "exp"]
    assert len(exps) == 2 and exps[0] != exps[1] and min(exps) > time.time()
    assert payload.count(b'"exp":') == 2
    assert served_sig_ok(op, tok)


def ck_alg_unknown(op, tok):
    hdr = parse(tok)[0]
    assert hdr["alg"] == "XS256"
    assert served_sig_ok(op, tok, alg="RS256")


def ck_alg_ps256(op, tok):
    hdr = parse(tok)[0]
    k = jwks_key(op.jwks(), hdr["kid"])
    assert hdr["alg"] == "PS256" and k["alg"] == "RS256"
    assert served_sig_ok(op, tok, alg="PS256")


def ck_alg_kid_mismatch(op, tok):
    hdr = parse(tok)[0]
    rsa_k, ec_k = op.jwks()["keys"][:2]
    assert hdr["kid"] == rsa_k["kid"] and hdr["alg"] == "ES256"
    assert served_sig_ok(op, tok, kid=ec_k["kid"])


def ck_jwe(op, tok):
    parts = tok.split(".")
    assert len(parts) == 5 and json.loads(b64d(parts[0]))["enc"] == "A256GCM"


def ck_json_jws(op, tok):
    d = json.loads(tok)
    compact = "%s.%s.%s" % (d["protected"], d["payload"], d["signature"])
    assert served_sig_ok(op, compact)


CHECKS = {
    "alg-none": ck_alg_none,
    "hs256-pubkey": ck_hs256_pubkey,
    "unknown-kid": ck_unknown_kid,
    "kid-junk": ck_kid_junk,
    "kid-nul": ck_kid_nul,
    "jku": ck_jku,
    "x5u": ck_x5u,
    "jwk": ck_jwk,
    "x5c": ck_x5c,
    "crit-unknown": ck_crit_unknown,
    "no-exp": _claims_ck(lambda op, c, t: "exp" not in c),
    "expired": _claims_ck(lambda op, c, t: c["exp"] < t - 600),
    "future-nbf": _claims_ck(lambda op, c, t: c["nbf"] > t + 600 and c["exp"] > c["nbf"]),
    "wrong-iss": _claims_ck(lambda op, c, t: isinstance(c["iss"], str)
                            and c["iss"] != op.issuer),
    "no-iss": _claims_ck(lambda op, c, t: "iss" not in c),
    "array-iss": _claims_ck(lambda op, c, t: c["iss"] == [op.issuer]),
    "iss-trailing-slash": _claims_ck(lambda op, c, t: c["iss"] == op.issuer + "/"),
    "iss-prefix": _claims_ck(lambda op, c, t: c["iss"].startswith(op.issuer)
                             and c["iss"] != op.issuer),
    "foreign-aud": _claims_ck(lambda op, c, t: API_AUD not in (
        c["aud"] if isinstance(c["aud"], list) else [c["aud"]])),
    "no-aud": _claims_ck(lambda op, c, t: "aud" not in c),
    "id-token": ck_id_token,
    "id-token-our-aud": ck_id_token_our_aud,
    "truncated": ck_truncated,
    "garbled": ck_garbled,
    "two-dots-only": ck_two_dots_only,
    "huge": ck_huge,
    "exp-string": _claims_ck(lambda op, c, t: c["exp"] == "9999999999"),
    "exp-float-huge": ck_exp_float_huge,
    "iat-future": _claims_ck(lambda op, c, t: c["iat"] > t + 600 and c["exp"] > c["iat"]),
    "bad-signature": ck_bad_signature,
    "json-trailing-garbage": ck_json_trailing_garbage,
    "dup-claims": ck_dup_claims,
    "alg-unknown": ck_alg_unknown,
    "alg-ps256": ck_alg_ps256,
    "alg-kid-mismatch": ck_alg_kid_mismatch,
    "jwe": ck_jwe,
    "json-jws": ck_json_jws,
}


def test_every_variant_has_a_check(op):
    assert set(op.info_admin()["variants"]) == set(CHECKS)


@pytest.mark.parametrize("variant", sorted(CHECKS))
def test_variant_has_its_defect(op, variant):
    info = op.mint_info(variant=variant)
    assert info["variant"] == variant
    CHECKS[variant](op, info["token"])


def test_variant_with_ec_key(op):
    ec_kid = op.jwks()["keys"][1]["kid"]
    tok = op.mint(variant="expired", key="ec")
    assert parse(tok)[0] == {"alg": "ES256", "typ": "at+jwt", "kid": ec_kid}
    assert served_sig_ok(op, tok)
    hdr = parse(op.mint(variant="hs256-pubkey", key="ec"))[0]
    assert hdr["alg"] == "HS256" and hdr["kid"] == ec_kid


# ------------------------------------------------------------------ presets

def test_preset_inera_nurse(op):
    c = jwcrypto_verify(op.mint(preset="inera-nurse"), op.jwks())
    assert c["commissionPurpose"] == "Vård och behandling"
    assert "BIF;Spärradministratör" in c["systemRole"]
    assert isinstance(c["commissionRight"], list) and c["commissionRight"]
    assert c["acr"] == "http://id.sambi.se/loa/loa3"
    org = c["healthCareProviderOrgNo"]
    assert len(org) == 10 and luhn_ok(org)
    for k in ("employeeHsaId", "commissionHsaId", "healthCareProviderHsaId",
              "healthCareUnitHsaId"):
        v = c[k]
        assert v.startswith("SE") and v[12] == "-" and luhn_ok(v[2:12]) and len(v) <= 31, v
    pnr = c["credentialPersonalIdentityNumber"]
    assert len(pnr) == 12 and luhn_ok(pnr[2:])
    for k in ("commissionName", "healthCareProviderName", "healthCareUnitName",
              "given_name", "family_name", "scope"):
        assert c[k]
    assert c["iss"] == op.issuer and c["aud"] == API_AUD


def test_preset_oidc_sweden(op):
    se = "https://id.oidc.se/claim/"
    c = jwcrypto_verify(op.mint(preset="oidc-sweden-citizen"), op.jwks())
    pnr = c[se + "personalIdentityNumber"]
    assert len(pnr) == 12 and luhn_ok(pnr[2:]) and se + "coordinationNumber" not in c
    assert c["birthdate"] == "%s-%s-%s" % (pnr[:4], pnr[4:6], pnr[6:8])
    assert c["acr"] == "http://id.elegnamnden.se/loa/1.0/loa3" and c["given_name"]

    c = claims_of(op.mint(preset="oidc-sweden-coord"))
    sam = c[se + "coordinationNumber"]
    assert len(sam) == 12 and luhn_ok(sam[2:]) and int(sam[6:8]) > 60
    assert se + "personalIdentityNumber" not in c

    c = claims_of(op.mint(preset="oidc-sweden-staff"))
    org = c[se + "orgNumber"]
    assert luhn_ok(org) and c[se + "orgAffiliation"] == "vlindman@" + org
    assert c[se + "orgName"] and c["acr"].startswith("http://id.elegnamnden.se/loa/1.0/")


def test_preset_overrides(op):
    c = claims_of(op.mint(preset="inera-nurse",
                          claims={"commissionPurpose": "Administration", "acr": None,
                                  "extra": [1]}))
    assert c["commissionPurpose"] == "Administration" and "acr" not in c
    assert c["extra"] == [1] and c["employeeHsaId"]
    c = claims_of(op.mint(preset="oidc-sweden-citizen", variant="id-token"))
    assert c["nonce"] and c["https://id.oidc.se/claim/personalIdentityNumber"]


# ------------------------------------------------------------------ introspection

def test_introspection(op):
    op.reset_stats()
    tok = op.mint(preset="inera-nurse")
    r = op.introspect(tok)
    assert r.status == 200
    a = r.json()
    assert a["active"] is True and a["sub"] and a["iss"] == op.issuer
    assert a["aud"] == API_AUD and a["employeeHsaId"] and a["exp"] > time.time()

    info = op.mint_info(opaque=True, preset="oidc-sweden-citizen")
    assert info["opaque"] and "." not in info["token"] and len(info["token"]) >= 40
    a = op.introspect(info["token"]).json()
    assert a["active"] is True
    assert a["https://id.oidc.se/claim/personalIdentityNumber"] == \
        info["claims"]["https://id.oidc.se/claim/personalIdentityNumber"]

    assert op.introspect("not-a-token").json() == {"active": False}
    assert op.introspect(op.mint(variant="alg-none")).json() == {"active": False}
    assert op.introspect(op.mint(variant="dup-claims")).json() == {"active": False}
    # minted with a past exp: inactive; with a future nbf: inactive
    assert op.introspect(op.mint(claims={"exp": int(time.time()) - 1})).json()["active"] is False
    assert op.introspect(op.mint(claims={"nbf": int(time.time()) + 99})).json()["active"] is False

    assert op.revoke(tok) is True
    assert op.introspect(tok).json() == {"active": False}
    assert op.revoke("never-minted") is False
    assert op.stats()["introspections"] == 8


def test_introspection_client_auth(op):
    tok = op.mint(opaque=True)
    r = op.introspect(tok, client=None)
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert op.introspect(tok, client=("incident-api", "wrong")).status == 401
    assert op.introspect(tok, client=("nobody", "x")).status == 401
    op.add_client("rs-2", "s:e cr+et/ä")
    assert op.introspect(tok, client=("rs-2", "s:e cr+et/ä")).json()["active"] is True
    r = op.request("POST", "/introspect", body=b"", headers={
        "Authorization": "Basic " + base64.b64encode(b"incident-api:incident-api-secret")
        .decode()})
    assert r.status == 400


# ------------------------------------------------------------------ behaviour + stats

def test_behaviour_switches(op):
    op.reset_stats()
    op.behaviour(jwks="down")
    r = op.get("/jwks")
    assert r.status == 503 and r.headers.get("retry-after")

    op.behaviour(jwks="slow", slow_seconds=1)
    t0 = time.monotonic()
    r = op.get("/jwks")
    assert r.status == 200 and time.monotonic() - t0 >= 0.9 and r.json()["keys"]

    op.behaviour(jwks="huge")
    r = op.get("/jwks")
    assert r.status == 200 and len(r.body) >= 2 * 1024 * 1024
    assert int(r.headers["content-length"]) == len(r.body) and len(r.json()["keys"]) == 2

    op.behaviour(jwks="garbage")
    r = op.get("/jwks")
    assert r.status == 200
    with pytest.raises(ValueError):
        json.loads(r.body)

    op.behaviour(jwks_cache_control="max-age=7", jwks="ok")
    r = op.get("/jwks")
    assert r.status == 200 and r.headers["cache-control"] == "max-age=7"
    assert op.stats()["jwks_fetches"] == 5

    op.behaviour(discovery="down", introspect="down")
    assert op.get("/.well-known/openid-configuration").status == 503
    assert op.introspect(op.mint(opaque=True)).status == 503
    b = op.behaviour(reset=True)
    assert b["jwks"] == b["discovery"] == b["introspect"] == "ok"
    assert op.introspect(op.mint(opaque=True)).json()["active"] is True

    s = op.stats()
    assert s["discovery_fetches"] == 1 and s["introspections"] == 2
    assert op.reset_stats()["jwks_fetches"] == 0
    assert op.stats() == {k: 0 for k in s}


def test_slow_does_not_block_others(op):
    op.behaviour(jwks="slow", slow_seconds=2)
    th = threading.Thread(target=op.get, args=("/jwks",))
    th.start()
    time.sleep(0.1)
    assert op.discovery()["issuer"] == op.issuer
    assert th.is_alive(), "discovery answered while the JWKS request sleeps"
    th.join()


# ------------------------------------------------------------------ rotation, restart

def test_rotate(fresh_op):
    op = fresh_op
    k0 = [k["kid"] for k in op.jwks()["keys"]]
    r = op.rotate()
    assert r["old_kid"] == k0[0] and r["kid"] not in k0 and r["old_published"]
    k1 = [k["kid"] for k in op.jwks()["keys"]]
    assert k1 == [r["kid"], k0[1], k0[0]]
    old_tok = op.mint(key="rsa-old")
    assert parse(old_tok)[0]["kid"] == k0[0]
    jwcrypto_verify(old_tok, op.jwks())
    assert parse(op.mint())[0]["kid"] == r["kid"]

    r2 = op.rotate(drop_old=True)
    assert r2["old_kid"] == r["kid"] and not r2["old_published"]
    assert [k["kid"] for k in op.jwks()["keys"]] == [r2["kid"], k0[1]]
    assert parse(op.mint(key="rsa-old"))[0]["kid"] == r["kid"]  # signable, not published


def test_restart_keeps_keys_and_state(fresh_op):
    op = fresh_op
    op.rotate()
    tok = op.mint(preset="inera-nurse")
    opaque = op.mint(opaque=True)
    revoked = op.mint()
    op.revoke(revoked)
    op.add_client("rs-3", "pw3")
    op.behaviour(jwks="down")
    issuer1, pid1 = op.issuer, op.proc.pid
    op.behaviour(jwks="ok")
    jwks1 = op.jwks()
    op.behaviour(jwks="down")

    assert op.stop() == 0
    assert not os.path.exists(op.info_path)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", op.port), timeout=1).close()
    op.start()
    assert op.proc.pid != pid1 and op.issuer == issuer1
    assert op.jwks() == jwks1
    jwcrypto_verify(tok, op.jwks())
    assert op.introspect(tok).json()["active"] is True
    assert op.introspect(opaque, client=("rs-3", "pw3")).json()["active"] is True
    assert op.introspect(revoked).json()["active"] is False
    assert op.get("/jwks").status == 200, "behaviour resets to ok on restart"
    op.restart()
    assert op.jwks() == jwks1


def test_kill_then_start(fresh_op):
    op = fresh_op
    jwks1 = op.jwks()
    op.kill()
    assert os.path.exists(op.info_path)  # stale; start() must not trust it
    op.start()
    assert op.jwks() == jwks1
