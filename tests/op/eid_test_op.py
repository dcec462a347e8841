#!/usr/bin/python3
"""eid_test_op: a test OpenID Provider / token issuer for the mod_auth_eid test suites.

    /usr/bin/python3 tests/op/eid_test_op.py --state-dir DIR [--host 127.0.0.1] [--port 0]
                                             [--tls-cert F --tls-key F]

Binds loopback only. Once listening it writes DIR/op.json
({"issuer", "port", "pid", ...}); on SIGTERM/SIGINT it shuts down cleanly and removes
op.json. Keys, registered clients and minted tokens persist in DIR, so a restarted OP
(same port) is the same provider. See README.md next to this file for the API.

The login side (authorization code flow, login page, token, userinfo, end-session,
back-channel logout sender, misbehaviour switches) lives in eid_op_flow.py and
eid_op_login.py next to this file.

Stdlib plus python3-cryptography only (jwcrypto is not needed here; the selftest uses it
as an independent verifier). JWS are built by hand so that malformed variants can be made.
This is a test tool: its admin API is unauthenticated and it must never face a network.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import secrets
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

import eid_op_flow as F
from eid_op_flow import BadRequest
from eid_op_login import LoginHandlers

LOOPBACK_HOSTS = {"127.0.0.1": socket.AF_INET, "localhost": socket.AF_INET,
                  "::1": socket.AF_INET6}
DEFAULT_AUD = "api://incident"
DEFAULT_CLIENT = ("incident-api", "incident-api-secret")
DEFAULT_TTL = 300
MAX_BODY = 4 * 1024 * 1024
HUGE_TOKEN_BYTES = 65536
HUGE_DOC_BYTES = 4 * 1024 * 1024

LOA2_SAMBI = "http://id.sambi.se/loa/loa2"
LOA3_SAMBI = "http://id.sambi.se/loa/loa3"
LOA3_SE = "http://id.elegnamnden.se/loa/1.0/loa3"
LOA3_EIDAS_SUB = "http://id.elegnamnden.se/loa/1.0/eidas-sub"
OIDC_SE = "https://id.oidc.se/claim/"


# ---------------------------------------------------------------- encoding helpers

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_int(n, length=None):
    if length is None:
        length = max(1, (n.bit_length() + 7) // 8)
    return b64u(n.to_bytes(length, "big"))


def jdump(obj):
    """Compact JSON, UTF-8 kept as is (Swedish letters in claims)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def now():
    return int(time.time())


# ---------------------------------------------------------------- Swedish identifiers

def luhn_digit(digits):
    """Check digit for the digit string `digits` (Luhn, weights 2,1,2,1... from the left,
    as used for personnummer over YYMMDDNNN and organisationsnummer over 9 digits)."""
    total = 0
    for i, ch in enumerate(digits):
        v = int(ch) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def luhn_ok(digits):
    return luhn_digit(digits[:-1]) == digits[-1]


def personnummer(yyyymmdd, nnn):
    """12-digit personnummer (or samordningsnummer: pass day + 60) with a computed check."""
    return yyyymmdd + nnn + luhn_digit(yyyymmdd[2:] + nnn)


def orgnummer(nine):
    return nine + luhn_digit(nine)


PNR_NURSE = personnummer("19121212", "121")      # Skatteverket's Tolvan: 191212121212
PNR_CITIZEN = personnummer("19800412", "238")
SAMORDNING = personnummer("19701063", "239")     # day 03 + 60; DOMAIN.md example 197010632391
ORG_REGION = orgnummer("232100001")              # 2321000016
ORG_COMPANY = orgnummer("556226571")             # 5562265719


def hsa(org, local):
    return "SE%s-%s" % (org, local)


def _birthdate(pnr, coordination=False):
    day = int(pnr[6:8]) - (60 if coordination else 0)
    return "%s-%s-%02d" % (pnr[0:4], pnr[4:6], day)


PRESETS = {
    "inera-nurse": lambda: {
        "sub": hsa(ORG_REGION, "P0001N"),
        "employeeHsaId": hsa(ORG_REGION, "P0001N"),
        "allEmployeeHsaIds": [hsa(ORG_REGION, "P0001N")],
        "commissionHsaId": hsa(ORG_REGION, "U0001M"),
        "commissionName": "Sjuksköterska, Akutmottagningen",
        "commissionPurpose": "Vård och behandling",
        "commissionRight": ["Läsa;Alla;VG", "Skriva;Alla;VE"],
        "healthCareProviderHsaId": hsa(ORG_REGION, "F0001"),
        "healthCareProviderOrgNo": ORG_REGION,
        "healthCareProviderName": "Region Exempel",
        "healthCareUnitHsaId": hsa(ORG_REGION, "E0001"),
        "healthCareUnitName": "Akutmottagningen, Exempelsjukhuset",
        "systemRole": ["BIF;Spärradministratör", "INCIDENT;Rapportör"],
        "credentialPersonalIdentityNumber": PNR_NURSE,
        "given_name": "Tolvan",
        "family_name": "Tolvansson",
        "acr": LOA3_SAMBI,
        "scope": "openid profile incident:read incident:write",
    },
    "oidc-sweden-citizen": lambda: {
        "sub": "c1t1zen-7f3a9b2e",
        OIDC_SE + "personalIdentityNumber": PNR_CITIZEN,
        "given_name": "Astrid",
        "family_name": "Lindgren-Testsson",
        "name": "Astrid Lindgren-Testsson",
        "birthdate": _birthdate(PNR_CITIZEN),
        "acr": LOA3_SE,
        "scope": "openid https://id.oidc.se/scope/naturalPersonNumber",
    },
    "oidc-sweden-coord": lambda: {
        "sub": "c00rd-4d1e8a6c",
        OIDC_SE + "coordinationNumber": SAMORDNING,
        "given_name": "Jean",
        "family_name": "Dupont",
        "name": "Jean Dupont",
        "birthdate": _birthdate(SAMORDNING, coordination=True),
        "acr": LOA3_EIDAS_SUB,
        "scope": "openid https://id.oidc.se/scope/naturalPersonNumber",
    },
    "oidc-sweden-staff": lambda: {
        "sub": "st4ff-90b2c71d",
        OIDC_SE + "orgAffiliation": "vlindman@" + ORG_COMPANY,
        OIDC_SE + "orgNumber": ORG_COMPANY,
        OIDC_SE + "orgName": "Exempelomsorg AB",
        OIDC_SE + "orgUnit": "Hemtjänst Norr",
        "given_name": "Vera",
        "family_name": "Lindman",
        "name": "Vera Lindman",
        "acr": LOA3_SE,
        "scope": "openid https://id.oidc.se/scope/naturalPersonOrgId",
    },
}

# Hostile (or merely special) token variants. The value says what the module must do:
# every one of them must be refused by a bearer-token validator.
VARIANTS = {
    "alg-none": "alg none, empty signature",
    "hs256-pubkey": "HS256 with the public key's SPKI PEM bytes as HMAC secret",
    "unknown-kid": "signed by the real key, kid not in the JWKS (fresh random per mint)",
    "kid-junk": "kid with ../../etc/passwd and CRLF, signed by the real key",
    "jku": "jku pointing at the OP's /attacker/jwks, signed by the attacker key",
    "x5u": "x5u pointing at the OP's /attacker/x5u.pem, signed by the attacker key",
    "jwk": "embedded attacker jwk header, signed by the attacker key",
    "x5c": "embedded self-signed attacker certificate, signed by the attacker key",
    "crit-unknown": "crit [x-unknown] with that header present",
    "no-exp": "exp absent",
    "expired": "exp an hour ago",
    "future-nbf": "nbf an hour ahead",
    "wrong-iss": "iss of another provider",
    "no-iss": "iss absent",
    "array-iss": "iss = [our issuer]",
    "foreign-aud": "aud = api://other",
    "no-aud": "aud absent",
    "id-token": "ID token for client portal (typ JWT, nonce, at_hash)",
    "id-token-our-aud": "ID token whose aud also holds our API audience",
    "truncated": "signature segment cut to half its length",
    "garbled": "payload segment with characters outside base64url, signed over as is",
    "two-dots-only": "the string '..'",
    "huge": "valid signature, ~64 KB via a pad claim",
    "exp-string": "exp = \"9999999999\"",
    "exp-float-huge": "exp = 1e300",
    "iat-future": "iat an hour ahead (exp after it)",
    "bad-signature": "signature bytes flipped",
    "json-trailing-garbage": "payload JSON followed by junk, signed",
    "dup-claims": "payload with exp twice (both in the future, different), signed",
    # extras beyond the original brief
    "alg-unknown": "alg XS256 (unknown), RS256 signature bytes",
    "alg-ps256": "PS256 signature made with the RSA key whose alg is RS256",
    "alg-kid-mismatch": "kid of one key, alg and signature of the other key type",
    "kid-nul": "kid with an embedded NUL (\\u0000) after the real kid",
    "iss-trailing-slash": "iss = our issuer + '/'",
    "iss-prefix": "iss = our issuer + '/tenant2'",
    "jwe": "five-segment JWE-shaped token (alg RSA-OAEP, enc A256GCM), random parts",
    "json-jws": "flattened JSON serialization of a valid JWS (not compact)",
}


# ---------------------------------------------------------------- keys

class Key:
    """One signing key: private key object, kid, JOSE alg."""

    def __init__(self, name, priv, kid=None, created=None):
        self.name = name
        self.priv = priv
        self.created = created or now()
        self.is_rsa = isinstance(priv, rsa.RSAPrivateKey)
        self.alg = "RS256" if self.is_rsa else "ES256"
        self.kid = kid or "%s-%s" % ("rsa" if self.is_rsa else "ec", self.thumbprint()[:16])

    @classmethod
    def generate(cls, name, kind):
        if kind == "rsa":
            priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            priv = ec.generate_private_key(ec.SECP256R1())
        return cls(name, priv)

    def public_jwk(self):
        pub = self.priv.public_key().public_numbers()
        if self.is_rsa:
            jwk = {"kty": "RSA", "n": b64u_int(pub.n), "e": b64u_int(pub.e)}
        else:
            jwk = {"kty": "EC", "crv": "P-256", "x": b64u_int(pub.x, 32),
                   "y": b64u_int(pub.y, 32)}
        return jwk

    def thumbprint(self):
        """RFC 7638 thumbprint (members in lexical order, no whitespace)."""
        jwk = self.public_jwk()
        members = ("e", "kty", "n") if self.is_rsa else ("crv", "kty", "x", "y")
        canon = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"),
                           sort_keys=True).encode()
        return b64u(hashlib.sha256(canon).digest())

    def jwks_entry(self):
        jwk = self.public_jwk()
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk

    def public_pem(self):
        return self.priv.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, signing_input, alg=None):
        alg = alg or self.alg
        if alg == "RS256":
            return self.priv.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        if alg == "PS256":
            return self.priv.sign(signing_input,
                                  padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                              salt_length=32), hashes.SHA256())
        if alg == "ES256":
            r, s = decode_dss_signature(self.priv.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        raise ValueError(alg)

    def to_json(self):
        pem = self.priv.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
        return {"name": self.name, "kid": self.kid, "created": self.created, "pem": pem}

    @classmethod
    def from_json(cls, d):
        priv = serialization.load_pem_private_key(d["pem"].encode(), password=None)
        return cls(d["name"], priv, kid=d["kid"], created=d.get("created"))


def self_signed_cert(key, cn):
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Attacker AB"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.priv.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(days=1))
            .not_valid_after(t + datetime.timedelta(days=3650))
            .sign(key.priv, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


# ---------------------------------------------------------------- persistent state

class State:
    """Keys, clients and the minted-token registry; persisted in the state dir."""

    def __init__(self, state_dir):
        self.dir = state_dir
        self.lock = threading.RLock()
        self.keys_path = os.path.join(state_dir, "keys.json")
        self.clients_path = os.path.join(state_dir, "clients.json")
        self.tokens_path = os.path.join(state_dir, "tokens.jsonl")
        self.tokens = {}  # sha256(token) -> {"claims":..., "revoked": bool, "opaque": bool}
        self._load_keys()
        self._load_clients()
        self._load_tokens()

    # -- files
    def _write_json(self, path, obj):
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False)
        os.replace(tmp, path)

    def _load_keys(self):
        if os.path.exists(self.keys_path):
            with open(self.keys_path, encoding="utf-8") as f:
                d = json.load(f)
            self.rsa = Key.from_json(d["rsa"])
            self.rsa_old = Key.from_json(d["rsa_old"]) if d.get("rsa_old") else None
            self.old_published = bool(d.get("old_published"))
            self.ec = Key.from_json(d["ec"])
            self._unknown = Key.from_json(d["unknown"]) if d.get("unknown") else None
            self._attacker = Key.from_json(d["attacker"]) if d.get("attacker") else None
            self._attacker_cert = d.get("attacker_cert")
        else:
            self.rsa = Key.generate("rsa", "rsa")
            self.rsa_old = None
            self.old_published = False
            self.ec = Key.generate("ec", "ec")
            self._unknown = self._attacker = self._attacker_cert = None
            self.save_keys()

    # the unpublished and attacker keys are made on first use (RSA generation is slow)
    @property
    def unknown(self):
        with self.lock:
            if self._unknown is None:
                k = Key.generate("unknown", "rsa")
                k.kid = "unknown-" + k.thumbprint()[:16]
                self._unknown = k
                self.save_keys()
            return self._unknown

    @property
    def attacker(self):
        with self.lock:
            if self._attacker is None:
                k = Key.generate("attacker", "rsa")
                k.kid = "attacker-" + k.thumbprint()[:16]
                self._attacker = k
                self._attacker_cert = self_signed_cert(k, "attacker.example")
                self.save_keys()
            return self._attacker

    @property
    def attacker_cert(self):
        with self.lock:
            self.attacker  # noqa: B018 (creates key and certificate together)
            return self._attacker_cert

    def save_keys(self):
        with self.lock:
            self._write_json(self.keys_path, {
                "rsa": self.rsa.to_json(),
                "rsa_old": self.rsa_old.to_json() if self.rsa_old else None,
                "old_published": self.old_published,
                "ec": self.ec.to_json(),
                "unknown": self._unknown.to_json() if self._unknown else None,
                "attacker": self._attacker.to_json() if self._attacker else None,
                "attacker_cert": self._attacker_cert,
            })

    def _load_clients(self):
        """clients.json: {client_id: client record} (see README). An old file holding
        {client_id: secret} (introspection clients) is read as secret-only records."""
        self.rp_clients = {}
        if os.path.exists(self.clients_path):
            with open(self.clients_path, encoding="utf-8") as f:
                d = json.load(f)
            for cid, v in d.items():
                rec = F.client_defaults(cid)
                rec.update({"client_secret": v} if isinstance(v, str) else v)
                self.rp_clients[cid] = rec
        else:
            for req in ({"client_id": DEFAULT_CLIENT[0], "client_secret": DEFAULT_CLIENT[1]},
                        dict(F.DEFAULT_RP)):
                self.rp_clients[req["client_id"]] = F.normalise_client(None, req)
            self._write_json(self.clients_path, self.rp_clients)

    @property
    def clients(self):
        """{client_id: secret} of the clients that can authenticate with a secret
        (introspection)."""
        with self.lock:
            return {cid: c["client_secret"] for cid, c in self.rp_clients.items()
                    if c.get("client_secret")}

    def set_client(self, req):
        """Register, update or (req["delete"]) remove a client; returns the record."""
        cid = req.get("client_id")
        if not isinstance(cid, str) or not cid:
            raise BadRequest("client_id required")
        with self.lock:
            if req.get("delete"):
                self.rp_clients.pop(cid, None)
                rec = None
            else:
                rec = F.normalise_client(self.rp_clients.get(cid), req)
                self.rp_clients[cid] = rec
            self._write_json(self.clients_path, self.rp_clients)
            return rec

    def _load_tokens(self):
        if not os.path.exists(self.tokens_path):
            return
        with open(self.tokens_path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line after a kill -9
                if "revoke" in rec:
                    if rec["revoke"] in self.tokens:
                        self.tokens[rec["revoke"]]["revoked"] = True
                else:
                    self.tokens[rec["h"]] = {"claims": rec["claims"], "opaque": rec["opaque"],
                                             "revoked": False}

    def _append_token_rec(self, rec):
        with open(self.tokens_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    @staticmethod
    def token_hash(token):
        return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()

    def register_token(self, token, claims, opaque):
        h = self.token_hash(token)
        with self.lock:
            self.tokens[h] = {"claims": claims, "opaque": opaque, "revoked": False}
            self._append_token_rec({"h": h, "claims": claims, "opaque": opaque})

    def revoke(self, token):
        h = self.token_hash(token)
        with self.lock:
            if h not in self.tokens:
                return False
            self.tokens[h]["revoked"] = True
            self._append_token_rec({"revoke": h})
            return True

    def lookup(self, token):
        with self.lock:
            return self.tokens.get(self.token_hash(token))

    # -- keys
    def key(self, name):
        if name == "rsa":
            return self.rsa
        if name == "ec":
            return self.ec
        if name == "rsa-old":
            if self.rsa_old is None:
                raise BadRequest("no rsa-old key: rotate first")
            return self.rsa_old
        if name == "unknown":
            return self.unknown
        if name == "attacker":
            return self.attacker
        raise BadRequest("unknown key %r (rsa, ec, rsa-old, unknown, attacker)" % (name,))

    def rotate(self, drop_old):
        with self.lock:
            new = Key.generate("rsa", "rsa")
            self.rsa.name = "rsa-old"
            self.rsa_old, self.rsa = self.rsa, new
            self.old_published = not drop_old
            self.save_keys()
            return {"kid": self.rsa.kid, "old_kid": self.rsa_old.kid,
                    "old_published": self.old_published}

    def jwks(self):
        with self.lock:
            keys = [self.rsa.jwks_entry(), self.ec.jwks_entry()]
            if self.rsa_old is not None and self.old_published:
                keys.append(self.rsa_old.jwks_entry())
            return {"keys": keys}


# ---------------------------------------------------------------- token minting

def jws_compact(header, payload_bytes, key, alg=None):
    """header dict -> compact JWS over raw payload bytes; returns (token, signing_input)."""
    signing_input = (b64u(jdump(header)) + "." + b64u(payload_bytes)).encode("ascii")
    sig = key.sign(signing_input, alg)
    return signing_input.decode("ascii") + "." + b64u(sig)


def apply_overrides(base, overrides, what):
    if overrides is None:
        return base
    if not isinstance(overrides, dict):
        raise BadRequest("%s must be an object" % what)
    for k, v in overrides.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return base


def at_hash(access_token):
    return b64u(hashlib.sha256(access_token.encode("ascii")).digest()[:16])


def mint(state, issuer, req):
    """Handle an /admin/mint request body; returns the response dict."""
    if not isinstance(req, dict):
        raise BadRequest("body must be a JSON object")
    known = {"claims", "header", "key", "variant", "opaque", "preset", "aud", "ttl",
             "huge_bytes"}
    extra = set(req) - known
    if extra:
        raise BadRequest("unknown mint fields: %s" % ", ".join(sorted(extra)))
    variant = req.get("variant")
    if variant is not None and variant not in VARIANTS:
        raise BadRequest("unknown variant %r" % (variant,))
    preset = req.get("preset")
    if preset is not None and preset not in PRESETS:
        raise BadRequest("unknown preset %r (%s)" % (preset, ", ".join(sorted(PRESETS))))
    opaque = bool(req.get("opaque", False))
    if opaque and variant:
        raise BadRequest("opaque tokens have no variants")
    ttl = req.get("ttl", DEFAULT_TTL)
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        raise BadRequest("ttl must be an integer")
    user_claims = req.get("claims") or {}
    if not isinstance(user_claims, dict):
        raise BadRequest("claims must be an object")
    key = state.key(req.get("key", "rsa"))

    # the audience "we" (the API) use; variants that need it follow the caller's choice
    api_aud = req.get("aud")
    if api_aud is None:
        a = user_claims.get("aud")
        api_aud = a if isinstance(a, str) else DEFAULT_AUD

    t = now()
    claims = {"iss": issuer, "sub": "test-user-0001",
              "aud": req.get("aud", DEFAULT_AUD), "exp": t + ttl, "iat": t,
              "jti": secrets.token_urlsafe(16), "client_id": "portal"}
    if preset:
        claims.update(PRESETS[preset]())
    header = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
    sign_key, sign_alg = key, None
    v = variant

    # ---- claim-level and header-level variants (before the caller's overrides)
    if v == "no-exp":
        claims.pop("exp", None)
    elif v == "expired":
        claims["iat"] = t - 7200
        claims["exp"] = t - 3600
    elif v == "future-nbf":
        claims["nbf"] = t + 3600
        claims["exp"] = t + 3600 + ttl
    elif v == "wrong-iss":
        claims["iss"] = "https://op.attacker.example"
    elif v == "no-iss":
        claims.pop("iss", None)
    elif v == "array-iss":
        claims["iss"] = [issuer]
    elif v == "iss-trailing-slash":
        claims["iss"] = issuer + "/"
    elif v == "iss-prefix":
        claims["iss"] = issuer + "/tenant2"
    elif v == "foreign-aud":
        claims["aud"] = "api://other"
    elif v == "no-aud":
        claims.pop("aud", None)
    elif v == "exp-string":
        claims["exp"] = "9999999999"
    elif v == "exp-float-huge":
        claims["exp"] = 1e300
    elif v == "iat-future":
        claims["iat"] = t + 3600
        claims["exp"] = t + 3600 + ttl
    elif v in ("id-token", "id-token-our-aud"):
        for c in ("jti", "client_id", "scope"):
            claims.pop(c, None)
        claims["aud"] = "portal" if v == "id-token" else ["portal", api_aud]
        claims["azp"] = "portal"
        claims["nonce"] = secrets.token_urlsafe(16)
        claims["auth_time"] = t - 5
        claims["at_hash"] = at_hash(secrets.token_urlsafe(32))
        claims.setdefault("acr", LOA3_SE)
        header["typ"] = "JWT"
    elif v == "alg-none":
        header["alg"] = "none"
    elif v == "hs256-pubkey":
        header["alg"] = "HS256"
    elif v == "unknown-kid":
        header["kid"] = "unknown-" + secrets.token_hex(8)
    elif v == "kid-junk":
        header["kid"] = "../../../../etc/passwd\r\nX-Injected: kid"
    elif v == "kid-nul":
        header["kid"] = key.kid + "\u0000../../etc/passwd"
    elif v in ("jku", "x5u", "jwk", "x5c"):
        sign_key = state.attacker
        header["alg"] = sign_key.alg
        header["kid"] = sign_key.kid
        if v == "jku":
            header["jku"] = issuer + "/attacker/jwks"
        elif v == "x5u":
            header["x5u"] = issuer + "/attacker/x5u.pem"
        elif v == "jwk":
            header["jwk"] = sign_key.jwks_entry()
        else:
            der = x509.load_pem_x509_certificate(state.attacker_cert.encode()).public_bytes(
                serialization.Encoding.DER)
            header["x5c"] = [base64.b64encode(der).decode("ascii")]
    elif v == "crit-unknown":
        header["crit"] = ["x-unknown"]
        header["x-unknown"] = True
    elif v == "alg-unknown":
        if not key.is_rsa:
            raise BadRequest("alg-unknown needs an RSA key")
        header["alg"] = "XS256"
        sign_alg = "RS256"
    elif v == "alg-ps256":
        if not key.is_rsa:
            raise BadRequest("alg-ps256 needs an RSA key")
        header["alg"] = sign_alg = "PS256"
    elif v == "alg-kid-mismatch":
        if key.is_rsa:
            sign_key = state.ec           # kid says RSA, alg/signature are ES256
        else:
            sign_key = state.rsa          # kid says EC, alg/signature are RS256
        header["alg"] = sign_key.alg

    claims = apply_overrides(claims, user_claims, "claims")
    header = apply_overrides(header, req.get("header"), "header")

    if opaque:
        token = secrets.token_urlsafe(32)
        state.register_token(token, claims, opaque=True)
        return {"token": token, "claims": claims, "opaque": True}

    payload = jdump(claims)
    if v == "huge":
        target = int(req.get("huge_bytes", HUGE_TOKEN_BYTES))
        claims["pad"] = ""
        base = len(jws_compact(header, jdump(claims), sign_key, sign_alg))
        # every 3 pad bytes add 4 token characters
        claims["pad"] = "A" * max(0, (target - base) * 3 // 4)
        payload = jdump(claims)
    elif v == "json-trailing-garbage":
        payload = payload + b' {"sub":"attacker"} junk'
    elif v == "dup-claims":
        if "exp" not in claims:
            raise BadRequest("dup-claims needs an exp claim")
        second = claims["exp"] + 300 if isinstance(claims["exp"], int) else t + 600
        # the first exp stays where jdump put it; the duplicate goes last
        payload = payload[:-1] + b',"exp":' + str(second).encode() + b"}"

    hdr_b64 = b64u(jdump(header))
    pay_b64 = b64u(payload)
    if v == "garbled":
        cut = max(1, len(pay_b64) // 2)
        pay_b64 = pay_b64[:cut] + "*!$%" + pay_b64[cut:]
    signing_input = (hdr_b64 + "." + pay_b64).encode("ascii")

    if v == "alg-none":
        sig_b64 = ""
    elif v == "hs256-pubkey":
        secret = key.public_pem()
        sig_b64 = b64u(hmac.new(secret, signing_input, hashlib.sha256).digest())
    else:
        sig_b64 = b64u(sign_key.sign(signing_input, sign_alg))

    if v == "bad-signature":
        sig = bytearray(base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4)))
        for i in (0, len(sig) // 2, len(sig) - 1):
            sig[i] ^= 0x01
        sig_b64 = b64u(bytes(sig))
    elif v == "truncated":
        sig_b64 = sig_b64[:len(sig_b64) // 2]

    token = signing_input.decode("ascii") + "." + sig_b64
    if v == "two-dots-only":
        token = ".."
    elif v == "jwe":
        jwe_hdr = {"alg": "RSA-OAEP", "enc": "A256GCM", "kid": key.kid, "typ": "at+jwt"}
        token = ".".join([b64u(jdump(jwe_hdr)), b64u(os.urandom(256)), b64u(os.urandom(12)),
                          b64u(os.urandom(200)), b64u(os.urandom(16))])
    elif v == "json-jws":
        token = json.dumps({"protected": hdr_b64, "payload": pay_b64,
                            "signature": sig_b64}, separators=(",", ":"))

    if v is None:
        state.register_token(token, claims, opaque=False)
    resp = {"token": token, "header": header, "claims": claims, "kid": header.get("kid"),
            "variant": v}
    if v == "hs256-pubkey":
        resp["hmac_secret_pem"] = key.public_pem().decode("ascii")
    return resp


# ---------------------------------------------------------------- HTTP server

class OP:
    """Runtime: state, behaviour switches and counters."""

    BEHAVIOUR_MODES = {
        "jwks": ("ok", "down", "slow", "huge", "garbage"),
        "discovery": ("ok", "down", "slow", "huge", "garbage"),
        "introspect": ("ok", "down", "slow", "huge", "garbage"),
    }

    def __init__(self, state, issuer):
        self.state = state
        self.issuer = issuer
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.behaviour = self.default_behaviour()
        self.stats = self.zero_stats()
        self.login = F.LoginState()

    @staticmethod
    def default_behaviour():
        return {"jwks": "ok", "discovery": "ok", "introspect": "ok", "slow_seconds": 5,
                "huge_bytes": HUGE_DOC_BYTES, "jwks_cache_control": None}

    @staticmethod
    def zero_stats():
        return {"jwks_fetches": 0, "discovery_fetches": 0, "introspections": 0,
                "attacker_fetches": 0, "token_requests": 0, "authorize_requests": 0,
                "userinfo_requests": 0, "end_session_requests": 0, "backchannel_sent": 0,
                "logins": 0}

    def count(self, name):
        with self.lock:
            self.stats[name] += 1

    def set_behaviour(self, req):
        if not isinstance(req, dict):
            raise BadRequest("body must be a JSON object")
        new = dict(self.behaviour)
        for k, v in req.items():
            if k in self.BEHAVIOUR_MODES:
                if v not in self.BEHAVIOUR_MODES[k]:
                    raise BadRequest("%s must be one of %s" % (k, ", ".join(
                        self.BEHAVIOUR_MODES[k])))
            elif k in ("slow_seconds", "huge_bytes"):
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                    raise BadRequest("%s must be a non-negative number" % k)
            elif k == "jwks_cache_control":
                if v is not None and not isinstance(v, str):
                    raise BadRequest("jwks_cache_control must be a string or null")
            elif k == "reset":
                if v:
                    new = self.default_behaviour()
                continue
            else:
                raise BadRequest("unknown behaviour field %r" % (k,))
            new[k] = v
        with self.lock:
            self.behaviour = new
            return dict(new)

    def mint_access(self, client, user, grant, acr):
        """An access token for a code grant: an RFC 9068 JWT like /admin/mint's, registered
        (so /introspect and /userinfo know it), carrying the profile claims."""
        ttl = DEFAULT_TTL
        claims = F.profile_claims(user, client["profile"])
        claims.update({"sub": user["sub"], "client_id": client["client_id"],
                       "scope": grant["scope"], "acr": acr, "auth_time": grant["auth_time"],
                       "sid": grant["sid"]})
        r = mint(self.state, self.issuer, {"claims": claims, "ttl": ttl,
                                           "aud": client["access_token_aud"]})
        return r["token"], ttl

    def discovery(self):
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": i + "/authorize",
            "token_endpoint": i + "/token",
            "jwks_uri": i + "/jwks",
            "introspection_endpoint": i + "/introspect",
            "userinfo_endpoint": i + "/userinfo",
            "end_session_endpoint": i + "/end_session",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "token_endpoint_auth_methods_supported": list(F.AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "authorization_response_iss_parameter_supported": True,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "claims_parameter_supported": False,
            "scopes_supported": ["openid", "profile",
                                 "https://id.oidc.se/scope/naturalPersonInfo",
                                 "https://id.oidc.se/scope/naturalPersonNumber",
                                 "https://id.oidc.se/scope/naturalPersonOrgId"],
            "acr_values_supported": sorted(F.ACR_LEVELS, key=lambda a: (F.ACR_LEVELS[a], a)),
            "claims_supported": sorted({"sub", "iss", "aud", "exp", "iat", "auth_time",
                                        "nonce", "acr", "azp", "sid", "at_hash"}
                                       | F.STD_CLAIMS | F.INERA_CLAIMS
                                       | {OIDC_SE + n for n in (
                                           "personalIdentityNumber", "coordinationNumber",
                                           "orgNumber", "orgName", "orgAffiliation",
                                           "orgUnit")}),
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": False,
        }


class Handler(LoginHandlers, http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "eid-test-op/1"
    timeout = 30  # idle keep-alive connections

    @property
    def op(self):
        return self.server.op

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    # ---- responses
    def send_bytes(self, status, body, ctype="application/json", headers=None):
        try:
            self.send_response(status)
            hdrs = {"Content-Type": ctype, "Content-Length": str(len(body)),
                    "Cache-Control": "no-store"}
            hdrs.update(headers or {})
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    def send_json(self, status, obj, headers=None):
        self.send_bytes(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"),
                        headers=headers)

    def send_error_json(self, status, error, desc=None, headers=None):
        body = {"error": error}
        if desc:
            body["error_description"] = desc
        self.send_json(status, body, headers)

    def send_doc(self, mode_key, doc, ctype="application/json", extra_headers=None):
        """Serve `doc` (a JSON-able object) according to behaviour[mode_key]."""
        b = self.op.behaviour
        mode = b[mode_key]
        if mode == "down":
            self.send_error_json(503, "temporarily_unavailable", mode_key + " is down",
                                 {"Retry-After": "1"})
            return
        if mode == "slow":
            if self.op.stopping.wait(float(b["slow_seconds"])):
                self.close_connection = True
                return
        if mode == "garbage":
            self.send_bytes(200, b"\x00\xff<html>not json{{{\r\n\"keys\": [", ctype)
            return
        body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        if mode == "huge":
            want = int(b["huge_bytes"])
            pad = max(0, want - len(body) - 16)
            body = body[:-1] + b',"padding":"' + b"A" * pad + b'"}'
        self.send_bytes(200, body, ctype, extra_headers)

    # ---- request helpers
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise BadRequest("chunked bodies not supported")
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise BadRequest("bad Content-Length")
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            raise BadRequest("body too large")
        return self.rfile.read(n) if n else b""

    def read_json(self):
        raw = self.read_body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError as e:
            raise BadRequest("body is not JSON: %s" % e)

    # ---- dispatch
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        path = urllib.parse.urlsplit(self.path).path
        routes = {
            ("GET", "/.well-known/openid-configuration"): self.h_discovery,
            ("GET", "/.well-known/oauth-authorization-server"): self.h_discovery,
            ("GET", "/jwks"): self.h_jwks,
            ("POST", "/introspect"): self.h_introspect,
            ("GET", "/authorize"): self.h_authorize,
            ("POST", "/authorize"): self.h_authorize,
            ("POST", "/authorize/login"): self.h_authorize_login,
            ("POST", "/token"): self.h_token,
            ("GET", "/userinfo"): self.h_userinfo,
            ("POST", "/userinfo"): self.h_userinfo,
            ("GET", "/end_session"): self.h_end_session,
            ("POST", "/end_session"): self.h_end_session,
            ("GET", "/logout"): self.h_end_session,
            ("GET", "/attacker/jwks"): self.h_attacker_jwks,
            ("GET", "/attacker/x5u.pem"): self.h_attacker_x5u,
            ("POST", "/admin/mint"): self.h_mint,
            ("POST", "/admin/rotate"): self.h_rotate,
            ("POST", "/admin/behaviour"): self.h_behaviour,
            ("GET", "/admin/behaviour"): self.h_get_behaviour,
            ("GET", "/admin/stats"): self.h_stats,
            ("POST", "/admin/reset-stats"): self.h_reset_stats,
            ("POST", "/admin/clients"): self.h_clients,
            ("GET", "/admin/clients"): self.h_get_clients,
            ("POST", "/admin/auto-login"): self.h_auto_login,
            ("POST", "/admin/login-behaviour"): self.h_login_behaviour,
            ("GET", "/admin/login-behaviour"): self.h_get_login_behaviour,
            ("POST", "/admin/backchannel"): self.h_backchannel,
            ("GET", "/admin/sessions"): self.h_sessions,
            ("GET", "/admin/users"): self.h_users,
            ("GET", "/admin/records"): self.h_records,
            ("POST", "/admin/clear-records"): self.h_clear_records,
            ("POST", "/admin/revoke"): self.h_revoke,
            ("GET", "/admin/info"): self.h_info,
        }
        if self.command == "HEAD":
            method = "GET"
        h = routes.get((method, path))
        try:
            if h is None:
                if method == "POST":
                    self.read_body()
                if any(p == path for (_, p) in routes):
                    self.send_error_json(405, "method_not_allowed")
                else:
                    self.send_error_json(404, "not_found", path)
                return
            h()
        except BadRequest as e:
            self.send_error_json(400, "invalid_request", str(e))
        except Exception as e:  # a test tool should say what broke, not hang
            self.log_message("error in %s %s: %r", method, path, e)
            self.send_error_json(500, "server_error", repr(e))

    # ---- public endpoints
    def h_discovery(self):
        self.op.count("discovery_fetches")
        self.send_doc("discovery", self.op.discovery())

    def h_jwks(self):
        self.op.count("jwks_fetches")
        cc = self.op.behaviour.get("jwks_cache_control")
        self.send_doc("jwks", self.op.state.jwks(),
                      extra_headers={"Cache-Control": cc} if cc else None)

    def h_introspect(self):
        self.op.count("introspections")
        body = self.read_body()
        mode = self.op.behaviour["introspect"]
        if mode == "down":
            self.send_doc("introspect", None)
            return
        client = self.client_auth()
        if client is None:
            self.send_error_json(401, "invalid_client", "client authentication failed",
                                 {"WWW-Authenticate": 'Basic realm="eid-test-op"'})
            return
        try:
            form = urllib.parse.parse_qs(body.decode("ascii"), keep_blank_values=True,
                                         strict_parsing=False)
        except UnicodeDecodeError:
            raise BadRequest("form body not ASCII")
        tokens = form.get("token", [])
        if len(tokens) != 1 or not tokens[0]:
            raise BadRequest("exactly one token parameter required")
        self.send_doc("introspect", self.introspection_answer(tokens[0]))

    def introspection_answer(self, token):
        rec = self.op.state.lookup(token)
        if rec is None or rec["revoked"]:
            return {"active": False}
        c = rec["claims"]
        t = now()
        exp, nbf = c.get("exp"), c.get("nbf")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp <= t:
            return {"active": False}
        if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and nbf > t:
            return {"active": False}
        ans = dict(c)
        ans.setdefault("token_type", "Bearer")
        ans["active"] = True
        return ans

    def client_auth(self):
        auth = self.headers.get("Authorization", "")
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() != "basic" or not cred:
            return None
        try:
            raw = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        cid, sep, secret = raw.partition(":")
        if not sep:
            return None
        # RFC 6749 2.3.1: both parts are form-urlencoded before base64
        cid, secret = urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret)
        want = self.op.state.clients.get(cid)
        if want is None or not hmac.compare_digest(want.encode(), secret.encode()):
            return None
        return cid

    def h_attacker_jwks(self):
        self.op.count("attacker_fetches")
        self.send_json(200, {"keys": [self.op.state.attacker.jwks_entry()]})

    def h_attacker_x5u(self):
        self.op.count("attacker_fetches")
        self.send_bytes(200, self.op.state.attacker_cert.encode(),
                        "application/pem-certificate-chain")

    # ---- admin
    def h_mint(self):
        self.send_json(200, mint(self.op.state, self.op.issuer, self.read_json()))

    def h_rotate(self):
        req = self.read_json()
        self.send_json(200, self.op.state.rotate(bool(req.get("drop_old", False))))

    def h_behaviour(self):
        self.send_json(200, self.op.set_behaviour(self.read_json()))

    def h_get_behaviour(self):
        self.send_json(200, self.op.behaviour)

    def h_stats(self):
        with self.op.lock:
            self.send_json(200, dict(self.op.stats))

    def h_reset_stats(self):
        self.read_body()
        with self.op.lock:
            self.op.stats = self.op.zero_stats()
        self.op.login.clear_records()
        self.send_json(200, self.op.zero_stats())

    def h_clients(self):
        req = self.read_json()
        if not isinstance(req, dict):
            raise BadRequest("body must be a JSON object")
        rec = self.op.state.set_client(req)
        with self.op.state.lock:
            ids = sorted(self.op.state.rp_clients)
        self.send_json(200, {"clients": ids, "client": rec})

    def h_get_clients(self):
        with self.op.state.lock:
            self.send_json(200, {"clients": {k: dict(v) for k, v in
                                             self.op.state.rp_clients.items()}})

    def h_revoke(self):
        req = self.read_json()
        tok = req.get("token")
        if not isinstance(tok, str):
            raise BadRequest("token required")
        self.send_json(200, {"revoked": self.op.state.revoke(tok)})

    def h_info(self):
        st = self.op.state
        self.send_json(200, {
            "issuer": self.op.issuer,
            "kids": {"rsa": st.rsa.kid, "ec": st.ec.kid,
                     "rsa-old": st.rsa_old.kid if st.rsa_old else None,
                     "unknown": st.unknown.kid, "attacker": st.attacker.kid},
            "old_published": st.old_published,
            "variants": VARIANTS, "presets": sorted(PRESETS),
            "clients": sorted(st.rp_clients),
            "users": [u["name"] for u in F.USERS],
            "id_token_variants": F.ID_TOKEN_VARIANTS,
            "backchannel_variants": F.BCL_VARIANTS,
        })


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, family, tls_ctx):
        self.address_family = family
        self.tls_ctx = tls_ctx
        super().__init__(addr, Handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn()
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def finish_request(self, request, client_address):
        # the TLS handshake runs in the per-connection thread, not in the accept loop
        if self.tls_ctx is not None:
            request.settimeout(10)
            request = self.tls_ctx.wrap_socket(request, server_side=True)
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)


def write_json_atomic(path, obj):
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="test OpenID Provider for mod_auth_eid")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args(argv)

    host = args.host.strip("[]") if args.host.startswith("[") else args.host
    if host not in LOOPBACK_HOSTS:
        sys.stderr.write("eid_test_op: refusing --host %r: loopback only "
                         "(127.0.0.1, ::1, localhost)\n" % args.host)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        sys.stderr.write("eid_test_op: --tls-cert and --tls-key go together\n")
        return 2
    if not 0 <= args.port <= 65535:
        sys.stderr.write("eid_test_op: bad --port\n")
        return 2
    os.makedirs(args.state_dir, exist_ok=True)
    info_path = os.path.join(args.state_dir, "op.json")
    try:
        os.unlink(info_path)
    except FileNotFoundError:
        pass

    tls_ctx = None
    if args.tls_cert:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        tls_ctx.load_cert_chain(args.tls_cert, args.tls_key)

    family = LOOPBACK_HOSTS[host]
    bind_host = "127.0.0.1" if host == "localhost" else host
    state = State(args.state_dir)
    server = Server((bind_host, args.port), family, tls_ctx)
    port = server.server_address[1]
    scheme = "https" if tls_ctx else "http"
    url_host = "[::1]" if host == "::1" else host
    issuer = "%s://%s:%d" % (scheme, url_host, port)
    server.op = OP(state, issuer)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True)
    t.start()
    write_json_atomic(info_path, {"issuer": issuer, "port": port, "pid": os.getpid(),
                                  "host": host, "scheme": scheme,
                                  "jwks_uri": issuer + "/jwks"})
    sys.stderr.write("eid_test_op: listening, issuer %s pid %d\n" % (issuer, os.getpid()))
    sys.stderr.flush()
    while not stop.wait(0.5):
        if not t.is_alive():
            break
    server.op.stopping.set()
    server.shutdown()
    server.server_close()
    try:
        os.unlink(info_path)
    except FileNotFoundError:
        pass
    sys.stderr.write("eid_test_op: stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
