"""Login side of the test OpenID Provider (imported by eid_test_op.py).

Test users, RP clients, the authorization code flow (authorize, login page, token with
PKCE and client authentication, userinfo), RP-initiated logout and the back-channel
logout sender, with the misbehaviour switches the RP tests need. Stdlib plus
python3-cryptography. See README.md next to this file for the API.
"""
import base64
import hashlib
import html
import http.client
import json
import re
import secrets
import socket
import ssl
import threading
import time
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


class BadRequest(Exception):
    """An admin or protocol request the OP refuses with 400 (shared with eid_test_op)."""


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_dec(s):
    if not isinstance(s, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def now():
    return int(time.time())


# ---------------------------------------------------------------- identifiers

def luhn_digit(digits):
    total = 0
    for i, ch in enumerate(digits):
        v = int(ch) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def personnummer(yyyymmdd, nnn):
    return yyyymmdd + nnn + luhn_digit(yyyymmdd[2:] + nnn)


def orgnummer(nine):
    return nine + luhn_digit(nine)


def hsa(org, local):
    return "SE%s-%s" % (org, local)


OIDC_SE = "https://id.oidc.se/claim/"
LOA1_SE = "http://id.elegnamnden.se/loa/1.0/loa1"      # no level in the module's table
LOA2_SE = "http://id.elegnamnden.se/loa/1.0/loa2"
LOA3_SE = "http://id.elegnamnden.se/loa/1.0/loa3"
LOA4_SE = "http://id.elegnamnden.se/loa/1.0/loa4"
# the module's default acr table (mod_src/core/eid_claims.c)
ACR_LEVELS = {
    LOA2_SE: 2, "http://id.sambi.se/loa/loa2": 2,
    LOA3_SE: 3, "http://id.sambi.se/loa/loa3": 3,
    "http://id.elegnamnden.se/loa/1.0/eidas-sub": 3, "http://eidas.europa.eu/LoA/substantial": 3,
    LOA4_SE: 4, "http://id.elegnamnden.se/loa/1.0/eidas-high": 4,
    "http://eidas.europa.eu/LoA/high": 4,
}
LOA_SE_BY_LEVEL = {1: LOA1_SE, 2: LOA2_SE, 3: LOA3_SE, 4: LOA4_SE}

ORG_REGION = orgnummer("232100001")     # 2321000016, Region Exempel (DOMAIN.md)
ORG_OTHER = orgnummer("232100013")      # another region
ORG_COMPANY = orgnummer("556226571")    # 5562265719, Exempelomsorg AB
PNR_NURSE = personnummer("19121212", "121")   # Skatteverket's test person Tolvan
PNR_CITIZEN = personnummer("19800412", "238")
PNR_LOW = personnummer("19870322", "982")
PNR_OTHER = personnummer("19750707", "986")
PNR_STAFF = personnummer("19690214", "984")

INERA_CLAIMS = {"employeeHsaId", "allEmployeeHsaIds", "commissionHsaId", "commissionName",
                "commissionPurpose", "commissionRight", "healthCareProviderHsaId",
                "healthCareProviderOrgNo", "healthCareProviderName", "healthCareUnitHsaId",
                "healthCareUnitName", "systemRole", "credentialPersonalIdentityNumber"}
STD_CLAIMS = {"sub", "given_name", "family_name", "name", "birthdate"}
PROFILES = ("inera", "oidc-sweden", "generic")


def _inera(org, local, unit, unit_name, prov_name, pnr, roles):
    return {
        "employeeHsaId": hsa(org, local), "allEmployeeHsaIds": [hsa(org, local)],
        "commissionHsaId": hsa(org, "U" + local[1:]),
        "commissionName": "Sjuksköterska, " + unit_name,
        "commissionPurpose": "Vård och behandling",
        "commissionRight": ["Läsa;Alla;VG", "Skriva;Alla;VE"],
        "healthCareProviderHsaId": hsa(org, "F0001"), "healthCareProviderOrgNo": org,
        "healthCareProviderName": prov_name,
        "healthCareUnitHsaId": hsa(org, unit), "healthCareUnitName": unit_name,
        "systemRole": roles, "credentialPersonalIdentityNumber": pnr,
    }


def _user(name, label, level, acr, sub, given, family, extra, birthdate=None):
    c = {"sub": sub, "given_name": given, "family_name": family, "name": given + " " + family}
    if birthdate:
        c["birthdate"] = birthdate
    c.update(extra)
    return {"name": name, "label": label, "level": level, "acr": acr, "sub": sub, "claims": c}


USERS = [
    _user("nurse", "Tolvan Tolvansson, sjuksköterska (SITHS, Region Exempel, loa3)", 3, LOA3_SE,
          hsa(ORG_REGION, "P0001N"), "Tolvan", "Tolvansson",
          dict(_inera(ORG_REGION, "P0001N", "E0001", "Akutmottagningen",
                      "Region Exempel", PNR_NURSE,
                      ["BIF;Spärradministratör", "INCIDENT;Rapportör"]),
               **{OIDC_SE + "personalIdentityNumber": PNR_NURSE,
                  OIDC_SE + "orgNumber": ORG_REGION, OIDC_SE + "orgName": "Region Exempel",
                  OIDC_SE + "orgAffiliation": "P0001N@" + ORG_REGION,
                  OIDC_SE + "orgUnit": "Akutmottagningen"}), "1912-12-12"),
    _user("citizen", "Astrid Lindgren-Testsson, invånare (e-legitimation, loa3)", 3, LOA3_SE,
          "c1t1zen-7f3a9b2e", "Astrid", "Lindgren-Testsson",
          {OIDC_SE + "personalIdentityNumber": PNR_CITIZEN}, "1980-04-12"),
    _user("lowlevel", "Lena Lågnivå, undersköterska (Region Exempel, loa2)", 2, LOA2_SE,
          hsa(ORG_REGION, "P0002L"), "Lena", "Lågnivå",
          dict(_inera(ORG_REGION, "P0002L", "E0001", "Akutmottagningen", "Region Exempel",
                      PNR_LOW, ["INCIDENT;Läsare"]),
               **{OIDC_SE + "personalIdentityNumber": PNR_LOW,
                  OIDC_SE + "orgNumber": ORG_REGION, OIDC_SE + "orgName": "Region Exempel"}),
          "1987-03-22"),
    _user("othernurse", "Olle Annansson, sjuksköterska (SITHS, Region Annan, loa3)", 3, LOA3_SE,
          hsa(ORG_OTHER, "P0003A"), "Olle", "Annansson",
          dict(_inera(ORG_OTHER, "P0003A", "E0009", "Vårdcentralen Annanstad", "Region Annan",
                      PNR_OTHER, ["INCIDENT;Rapportör"]),
               **{OIDC_SE + "personalIdentityNumber": PNR_OTHER,
                  OIDC_SE + "orgNumber": ORG_OTHER, OIDC_SE + "orgName": "Region Annan"}),
          "1975-07-07"),
    _user("staff", "Vera Lindman, hemtjänst (Exempelomsorg AB, loa3)", 3, LOA3_SE,
          "st4ff-90b2c71d", "Vera", "Lindman",
          {OIDC_SE + "personalIdentityNumber": PNR_STAFF,
           OIDC_SE + "orgAffiliation": "vlindman@" + ORG_COMPANY,
           OIDC_SE + "orgNumber": ORG_COMPANY, OIDC_SE + "orgName": "Exempelomsorg AB",
           OIDC_SE + "orgUnit": "Hemtjänst Norr"}, "1969-02-14"),
]
USERS_BY_NAME = {u["name"]: u for u in USERS}


def profile_claims(user, profile):
    """The user's identity claims as a client with `profile` receives them."""
    c = user["claims"]
    if profile == "generic":
        return dict(c)
    if profile == "inera":
        keep = STD_CLAIMS | INERA_CLAIMS
        return {k: v for k, v in c.items() if k in keep}
    return {k: v for k, v in c.items() if k in STD_CLAIMS or k.startswith(OIDC_SE)}


def pick_acr(user, acr_values):
    """First requested acr the user can satisfy (known level <= the user's), else the
    user's own acr."""
    for a in acr_values:
        lvl = ACR_LEVELS.get(a)
        if lvl is not None and lvl <= user["level"]:
            return a
    return user["acr"]


def lower_acr(acr, acr_values):
    """An acr one level below what was requested (or chosen): the acr-wrong switch."""
    lvls = [ACR_LEVELS[a] for a in acr_values if a in ACR_LEVELS]
    lvl = min(lvls) if lvls else ACR_LEVELS.get(acr, 2)
    return LOA_SE_BY_LEVEL.get(max(1, lvl - 1), LOA1_SE)


# ---------------------------------------------------------------- clients

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
CLIENT_FIELDS = {"client_id", "client_secret", "redirect_uris", "post_logout_redirect_uris",
                 "backchannel_logout_uri", "token_endpoint_auth_method", "jwks",
                 "public_key_pem", "profile", "pkce_required", "access_token_aud",
                 "backchannel_ca_file", "delete", "replace"}
DEFAULT_RP = {"client_id": "portal", "client_secret": "portal-secret",
              "redirect_uris": [], "post_logout_redirect_uris": [],
              "backchannel_logout_uri": None, "token_endpoint_auth_method":
              "client_secret_basic", "profile": "inera", "pkce_required": True,
              "access_token_aud": "api://incident"}


def client_defaults(cid):
    return {"client_id": cid, "client_secret": None, "redirect_uris": [],
            "post_logout_redirect_uris": [], "backchannel_logout_uri": None,
            "token_endpoint_auth_method": "client_secret_basic", "jwks": None,
            "public_key_pem": None, "profile": "inera", "pkce_required": True,
            "access_token_aud": "api://incident", "backchannel_ca_file": None}


def normalise_client(old, req):
    """Merge an /admin/clients request into the existing client (or the defaults);
    returns the new client record or raises BadRequest."""
    extra = set(req) - CLIENT_FIELDS
    if extra:
        raise BadRequest("unknown client fields: %s" % ", ".join(sorted(extra)))
    cid = req["client_id"]
    c = client_defaults(cid) if (old is None or req.get("replace")) else dict(old)
    for k, v in req.items():
        if k in ("delete", "replace"):
            continue
        c[k] = v
    for k in ("redirect_uris", "post_logout_redirect_uris"):
        if not isinstance(c[k], list) or not all(isinstance(u, str) and u for u in c[k]):
            raise BadRequest("%s must be a list of URLs" % k)
        for u in c[k]:
            p = urllib.parse.urlsplit(u)
            if p.scheme not in ("http", "https") or not p.netloc or p.fragment:
                raise BadRequest("%s: %r is not an absolute http(s) URL without fragment"
                                 % (k, u))
    if c["backchannel_logout_uri"] is not None:
        p = urllib.parse.urlsplit(str(c["backchannel_logout_uri"]))
        if p.scheme not in ("http", "https") or not p.hostname:
            raise BadRequest("backchannel_logout_uri must be an http(s) URL")
    if c["token_endpoint_auth_method"] not in AUTH_METHODS:
        raise BadRequest("token_endpoint_auth_method must be one of %s" % ", ".join(AUTH_METHODS))
    if c["profile"] not in PROFILES:
        raise BadRequest("profile must be one of %s" % ", ".join(PROFILES))
    if c["client_secret"] is not None and (not isinstance(c["client_secret"], str)
                                           or not c["client_secret"]):
        raise BadRequest("client_secret must be a non-empty string")
    if c["token_endpoint_auth_method"] == "private_key_jwt":
        if not client_keys(c):
            raise BadRequest("private_key_jwt needs jwks ({\"keys\": [...]}) or public_key_pem")
    elif not c["client_secret"]:
        raise BadRequest("client_secret required")
    if not isinstance(c["pkce_required"], bool):
        raise BadRequest("pkce_required must be true or false")
    return c


def jwk_to_public(j):
    if not isinstance(j, dict):
        raise ValueError("a JWK must be an object")
    if j.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(int.from_bytes(b64u_dec(j["e"]), "big"),
                                    int.from_bytes(b64u_dec(j["n"]), "big")).public_key()
    if j.get("kty") == "EC" and j.get("crv") == "P-256":
        return ec.EllipticCurvePublicNumbers(int.from_bytes(b64u_dec(j["x"]), "big"),
                                             int.from_bytes(b64u_dec(j["y"]), "big"),
                                             ec.SECP256R1()).public_key()
    raise ValueError("unsupported JWK (RSA or EC P-256)")


def client_keys(c):
    """[(kid or None, public key)] of a private_key_jwt client; BadRequest when broken."""
    out = []
    try:
        if c.get("jwks") is not None:
            keys = c["jwks"].get("keys") if isinstance(c["jwks"], dict) else None
            if not isinstance(keys, list):
                raise ValueError("jwks must be {\"keys\": [...]}")
            out += [(k.get("kid"), jwk_to_public(k)) for k in keys]
        if c.get("public_key_pem"):
            pem = c["public_key_pem"].encode()
            try:
                pub = serialization.load_pem_public_key(pem)
            except ValueError:
                pub = serialization.load_pem_private_key(pem, password=None).public_key()
            out.append((None, pub))
    except (ValueError, KeyError, TypeError) as e:
        raise BadRequest("client key: %s" % e)
    return out


def verify_sig(pub, alg, signing_input, sig):
    try:
        if alg in ("RS256", "PS256") and isinstance(pub, rsa.RSAPublicKey):
            pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            pub.verify(sig, signing_input, pad, hashes.SHA256())
            return True
        if alg == "ES256" and isinstance(pub, ec.EllipticCurvePublicKey) and len(sig) == 64:
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                       int.from_bytes(sig[32:], "big"))
            pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


def split_jws(tok):
    """(header, claims, signing input, signature) of a compact JWS; ValueError if not one."""
    if not isinstance(tok, str) or tok.count(".") != 2:
        raise ValueError("not a compact JWS")
    h, p, s = tok.split(".")
    hdr = json.loads(b64u_dec(h))
    cl = json.loads(b64u_dec(p))
    if not isinstance(hdr, dict) or not isinstance(cl, dict):
        raise ValueError("header and payload must be objects")
    return hdr, cl, (h + "." + p).encode("ascii"), b64u_dec(s)


def sign_jws(header, claims, key, variant=None):
    """Compact JWS; variant bad-signature flips signature bits, alg-none leaves it empty."""
    header = dict(header)
    if variant == "alg-none":
        header["alg"] = "none"
    si = (b64u(jdump(header)) + "." + b64u(jdump(claims))).encode("ascii")
    if variant == "alg-none":
        return si.decode() + "."
    sig = bytearray(key.sign(si))
    if variant == "bad-signature":
        for i in (0, len(sig) // 2, len(sig) - 1):
            sig[i] ^= 0x01
    return si.decode() + "." + b64u(bytes(sig))


def hash_half(value):
    """at_hash / c_hash for RS256/ES256: left half of SHA-256, base64url."""
    return b64u(hashlib.sha256(value.encode("ascii")).digest()[:16])


def pkce_s256(verifier):
    return b64u(hashlib.sha256(verifier.encode("ascii")).digest())


VERIFIER_RE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
CHALLENGE_RE = re.compile(r"[A-Za-z0-9_-]{43}")


# ---------------------------------------------------------------- switches

ID_TOKEN_VARIANTS = {
    "bad-signature": "signature bytes flipped",
    "wrong-iss": "iss of another provider",
    "wrong-aud": "aud = another client only",
    "wrong-azp": "aud = [client, other-client], azp = other-client",
    "wrong-nonce": "a nonce other than the request's",
    "no-nonce": "nonce absent",
    "at_hash-mismatch": "at_hash of another access token",
    "expired": "exp 10 minutes ago (iat 15 minutes ago)",
    "iat-in-future": "iat an hour ahead (exp after it)",
    "unknown-kid": "signed by the real key, kid not in the JWKS",
    "alg-none": "alg none, empty signature",
    "acr-missing": "acr absent",
    "acr-wrong": "acr one level lower than requested (loa1 when loa2 was asked)",
    "auth-time-old": "auth_time 2 hours ago (fails any max_age below that)",
    "no-auth-time": "auth_time absent",
    "no-sid": "sid absent",
    "es256": "signed by the EC key (ES256); not hostile",
    "minimal": "sub and the protocol claims only: the identity claims come from userinfo "
               "(Core 5.4); not hostile",
}
LOGIN_BEHAVIOUR_MODES = {
    "authorize": ("ok", "access_denied", "server_error", "slow", "iss-param-wrong",
                  "iss-param-missing"),
    "token": ("ok", "slow", "500", "malformed", "no-id-token"),
    "userinfo": ("ok", "sub-mismatch", "slow", "500", "garbage", "signed", "signed-badsig",
                 "signed-wrong-aud", "signed-wrong-iss", "signed-no-iss-aud", "signed-alg-none",
                 "encrypted"),
}
BCL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
BCL_VARIANTS = {
    "bad-signature": "signature bytes flipped",
    "with-nonce": "a nonce claim (forbidden in logout tokens)",
    "no-events": "events claim absent",
    "wrong-events": "events without the back-channel logout member",
    "wrong-aud": "aud = another client",
    "wrong-iss": "iss of another provider",
    "old-iat": "iat an hour ago (exp still ahead)",
    "expired": "exp a minute ago",
    "replay": "the jti of the previous logout token sent",
    "no-sid-no-sub": "neither sid nor sub",
    "alg-none": "alg none, empty signature",
    "no-typ": "no typ header (allowed by the spec; not hostile)",
}
CODE_TTL = 60
PENDING_TTL = 600
RECORD_KINDS = ("authorize", "token", "userinfo", "end_session", "backchannel")
MAX_RECORDS = 200


class LoginState:
    """Memory-only login state: pending requests, codes, OP sessions, assertion jtis,
    switches and records. Guarded by self.lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending = {}    # request id -> authorization request
        self.codes = {}      # code -> grant
        self.sessions = {}   # sid -> session
        self.jtis = {}       # private_key_jwt assertion jti -> exp
        self.auto_login = None
        self.last_logout_jti = None
        self.behaviour = self.default_behaviour()
        self.records = {k: [] for k in RECORD_KINDS}

    @staticmethod
    def default_behaviour():
        return {"authorize": "ok", "id_token": [], "token": "ok", "replay_code": False,
                "userinfo": "ok", "slow_seconds": 5, "code_ttl": CODE_TTL}

    def set_behaviour(self, req):
        if not isinstance(req, dict):
            raise BadRequest("body must be a JSON object")
        new = dict(self.behaviour)
        for k, v in req.items():
            if k == "reset":
                if v:
                    new = self.default_behaviour()
                continue
            if k in LOGIN_BEHAVIOUR_MODES:
                if v not in LOGIN_BEHAVIOUR_MODES[k]:
                    raise BadRequest("%s must be one of %s"
                                     % (k, ", ".join(LOGIN_BEHAVIOUR_MODES[k])))
            elif k == "id_token":
                v = [] if v is None else ([v] if isinstance(v, str) else v)
                if not isinstance(v, list) or any(x not in ID_TOKEN_VARIANTS for x in v):
                    raise BadRequest("id_token: variant(s) among %s"
                                     % ", ".join(ID_TOKEN_VARIANTS))
            elif k == "replay_code":
                if not isinstance(v, bool):
                    raise BadRequest("replay_code must be true or false")
            elif k in ("slow_seconds", "code_ttl"):
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                    raise BadRequest("%s must be a non-negative number" % k)
            else:
                raise BadRequest("unknown login-behaviour field %r" % (k,))
            new[k] = v
        with self.lock:
            self.behaviour = new
            return dict(new)

    def record(self, kind, rec):
        rec = dict(rec, time=round(time.time(), 3))
        with self.lock:
            lst = self.records[kind]
            lst.append(rec)
            del lst[:-MAX_RECORDS]

    def clear_records(self):
        with self.lock:
            self.records = {k: [] for k in RECORD_KINDS}

    def purge(self):
        t = time.time()
        with self.lock:
            for d, ttl in ((self.pending, PENDING_TTL), (self.codes, 3600)):
                for k in [k for k, v in d.items() if t - v["created"] > ttl]:
                    del d[k]
            for k in [k for k, exp in self.jtis.items() if exp < t - 60]:
                del self.jtis[k]

    def session_for(self, user, cookie_sid):
        """The OP session of this browser for `user`: the cookie's one when it is for the
        same user (a new authentication renews auth_time), else a new sid."""
        t = now()
        with self.lock:
            s = self.sessions.get(cookie_sid or "")
            if s is None or s["user"] != user["name"]:
                sid = secrets.token_urlsafe(16)
                s = {"sid": sid, "user": user["name"], "sub": user["sub"], "created": t,
                     "auth_time": t, "clients": []}
                self.sessions[sid] = s
            else:
                s["auth_time"] = t
            return dict(s)

    def add_session_client(self, sid, client_id):
        with self.lock:
            s = self.sessions.get(sid)
            if s is not None and client_id not in s["clients"]:
                s["clients"].append(client_id)


def redirect_with(uri, params):
    """uri + params in its query (the uri's own query kept), no fragment."""
    p = urllib.parse.urlsplit(uri)
    q = p.query
    add = urllib.parse.urlencode([(k, v) for k, v in params if v is not None])
    q = q + "&" + add if q and add else (q or add)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, p.path, q, ""))


def html_page(title, body_html):
    return ("<!doctype html>\n<html lang=\"sv\"><head><meta charset=\"utf-8\">"
            "<title>%s</title><style>body{font-family:sans-serif;margin:2em}"
            "form{margin:.4em 0}button{min-width:30em;text-align:left;padding:.5em}"
            "</style></head><body><h1>%s</h1>\n%s\n</body></html>\n"
            % (html.escape(title), html.escape(title), body_html)).encode("utf-8")


def post_loopback(url, body, ca_file=None, timeout=10, headers=None):
    """POST `body` to `url`, always connecting to loopback (127.0.0.1, or ::1 for a [::1]
    URL) whatever its host name says; the name goes into Host and TLS SNI/verification.
    Returns (status, headers dict, body text)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise BadRequest("not an http(s) URL: %r" % (url,))
    port = u.port or (443 if u.scheme == "https" else 80)
    ip = "::1" if u.hostname == "::1" else "127.0.0.1"
    sock = socket.create_connection((ip, port), timeout=timeout)
    try:
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=ca_file)
            sock = ctx.wrap_socket(sock, server_hostname=u.hostname)
        host = "[%s]" % u.hostname if ":" in u.hostname else u.hostname
        conn = http.client.HTTPConnection(host, u.port, timeout=timeout)
        conn.sock = sock
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        hdrs.update(headers or {})
        conn.request("POST", path, body=body, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, \
            r.read().decode("utf-8", "replace")
    finally:
        sock.close()
