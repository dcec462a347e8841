"""HTTP handlers of the test OP's login side (a mixin of eid_test_op.Handler).

/authorize (+ /authorize/login), /token, /userinfo, /end_session, and the admin calls
/admin/clients (RP fields), /admin/auto-login, /admin/login-behaviour, /admin/backchannel,
/admin/sessions, /admin/users, /admin/records. See README.md for the contract.
"""
import base64
import hmac
import html
import secrets
import time
import urllib.parse

import eid_op_flow as F
from eid_op_flow import BadRequest

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
COOKIE = "eidop_sid"
JWT_META = {"iss", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "typ", "azp",
            "auth_time", "acr", "sid", "nonce", "at_hash"}


def fake_jwe():
    """Five base64url parts shaped like a compact JWE (RSA-OAEP / A256GCM, content JWT):
    random bytes, since no RP key is known to encrypt to."""
    hdr = {"alg": "RSA-OAEP", "enc": "A256GCM", "cty": "JWT"}
    return ".".join([F.b64u(F.jdump(hdr))] + [F.b64u(secrets.token_bytes(n))
                                                for n in (256, 12, 200, 16)])


class AuthzError(Exception):
    """An authorization error sent to the (validated) redirect_uri (RFC 6749 4.1.2.1)."""

    def __init__(self, error, desc):
        super().__init__(desc)
        self.error = error
        self.desc = desc


class TokenError(Exception):
    def __init__(self, status, error, desc, basic=False):
        super().__init__(desc)
        self.status, self.error, self.desc, self.basic = status, error, desc, basic


def parse_form(raw):
    """Form body or query string -> {name: value}; a repeated parameter is refused."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadRequest("form is not UTF-8")
    out = {}
    for k, v in urllib.parse.parse_qsl(text, keep_blank_values=True):
        if k in out:
            raise BadRequest("parameter %s repeated" % k)
        out[k] = v
    return out


class LoginHandlers:
    # ------------------------------------------------------------ helpers
    @property
    def lg(self):
        return self.op.login

    def sleep_or_stop(self, seconds):
        """True when the OP is stopping (the request is cut short)."""
        if self.op.stopping.wait(float(seconds)):
            self.close_connection = True
            return True
        return False

    def send_html(self, status, title, body_html, headers=None):
        self.send_bytes(status, F.html_page(title, body_html), "text/html; charset=utf-8",
                        headers)

    def send_redirect(self, location, headers=None):
        h = {"Location": location}
        h.update(headers or {})
        self.send_bytes(302, b"", "text/plain", h)

    def cookie_sid(self):
        for part in self.headers.get("Cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == COOKIE:
                return v
        return None

    def client(self, cid):
        return self.op.state.rp_clients.get(cid) if isinstance(cid, str) else None

    # ------------------------------------------------------------ /authorize
    def h_authorize(self):
        self.op.count("authorize_requests")
        self.lg.purge()
        q = urllib.parse.urlsplit(self.path).query
        raw = self.read_body() if self.command == "POST" else b""
        try:
            params = parse_form(raw if self.command == "POST" else q)
        except BadRequest as e:
            return self.authorize_page_error(str(e), {})
        c = self.client(params.get("client_id"))
        if c is None:
            return self.authorize_page_error("unknown client_id", params)
        ru = params.get("redirect_uri")
        if ru is None or ru not in c["redirect_uris"]:
            # never redirect to an unregistered URI (RFC 6749 4.1.2.1)
            return self.authorize_page_error("redirect_uri not registered for this client",
                                             params)
        try:
            req = self.check_authorize(c, params)
        except AuthzError as e:
            self.lg.record("authorize", {"client_id": c["client_id"], "params": params,
                                         "result": e.error, "error_description": e.desc})
            return self.send_redirect(F.redirect_with(ru, [
                ("error", e.error), ("error_description", e.desc),
                ("state", params.get("state")), ("iss", self.op.issuer)]))
        b = self.lg.behaviour
        if b["authorize"] == "slow" and self.sleep_or_stop(b["slow_seconds"]):
            return
        self.lg.record("authorize", {"client_id": c["client_id"], "params": params,
                                     "result": "ok"})
        auto = self.lg.auto_login
        sid = self.cookie_sid()
        if auto is not None:
            return self.finish_login(req, F.USERS_BY_NAME[auto], sid)
        if "none" in req["prompt"]:
            with self.lg.lock:
                s = dict(self.lg.sessions.get(sid or "") or {})
            if not s:
                return self.authz_redirect(req, "login_required", "no session at the OP")
            if req["max_age"] is not None and F.now() - s["auth_time"] > req["max_age"]:
                return self.authz_redirect(req, "login_required", "session older than max_age")
            return self.issue_code(req, F.USERS_BY_NAME[s["user"]], s)
        rid = secrets.token_urlsafe(16)
        with self.lg.lock:
            self.lg.pending[rid] = dict(req, created=time.time())
        self.send_login_page(rid, req)

    def authorize_page_error(self, why, params):
        self.lg.record("authorize", {"client_id": params.get("client_id"), "params": params,
                                     "result": "error_page", "error_description": why})
        self.send_html(400, "Felaktig inloggningsbegäran",
                       '<p id="error">%s</p>' % html.escape(why))

    def check_authorize(self, c, p):
        b = self.lg.behaviour
        if p.get("response_type") != "code":
            raise AuthzError("unsupported_response_type", "response_type must be code")
        if p.get("response_mode") not in (None, "query"):
            raise AuthzError("invalid_request", "only response_mode=query")
        scopes = p.get("scope", "").split()
        if "openid" not in scopes:
            raise AuthzError("invalid_scope", "scope must contain openid")
        if "request" in p or "request_uri" in p:
            raise AuthzError("request_not_supported", "request objects are not supported")
        ch, meth = p.get("code_challenge"), p.get("code_challenge_method")
        if ch is None:
            if c["pkce_required"]:
                raise AuthzError("invalid_request", "code_challenge required (PKCE S256)")
            if meth is not None:
                raise AuthzError("invalid_request", "code_challenge_method without challenge")
        else:
            if meth != "S256":
                raise AuthzError("invalid_request",
                                 "code_challenge_method must be S256 (plain is refused)")
            if not F.CHALLENGE_RE.fullmatch(ch):
                raise AuthzError("invalid_request", "code_challenge is not 43 base64url chars")
        prompt = p.get("prompt", "").split()
        if any(x not in ("none", "login", "consent", "select_account") for x in prompt) or \
                ("none" in prompt and len(prompt) > 1):
            raise AuthzError("invalid_request", "bad prompt")
        max_age = p.get("max_age")
        if max_age is not None:
            if not max_age.isdigit() or len(max_age) > 9:
                raise AuthzError("invalid_request", "max_age must be a non-negative integer")
            max_age = int(max_age)
        acr_values = p.get("acr_values", "").split()
        if acr_values and not any(a in F.ACR_LEVELS for a in acr_values):
            raise AuthzError("unmet_authentication_requirements",
                             "none of the acr_values is supported")
        if b["authorize"] == "access_denied":
            raise AuthzError("access_denied", "the user (switch) refused")
        if b["authorize"] == "server_error":
            raise AuthzError("server_error", "the OP (switch) failed")
        return {"client_id": c["client_id"], "redirect_uri": p["redirect_uri"],
                "scope": " ".join(scopes), "state": p.get("state"), "nonce": p.get("nonce"),
                "code_challenge": ch, "acr_values": acr_values, "prompt": prompt,
                "max_age": max_age, "login_hint": p.get("login_hint")}

    def authz_redirect(self, req, error, desc):
        self.send_redirect(F.redirect_with(req["redirect_uri"], [
            ("error", error), ("error_description", desc), ("state", req["state"]),
            ("iss", self.op.issuer)]))

    def send_login_page(self, rid, req):
        hint = req.get("login_hint")
        users = sorted(F.USERS, key=lambda u: 0 if hint in (u["name"], u["sub"]) else 1)
        rows = []
        for u in users:
            rows.append(
                '<form method="post" action="/authorize/login">'
                '<input type="hidden" name="req" value="%s">'
                '<input type="hidden" name="user" value="%s">'
                '<button type="submit" id="login-%s" name="login" value="1">%s</button></form>'
                % (rid, u["name"], u["name"], html.escape(u["label"])))
        rows.append('<form method="post" action="/authorize/login">'
                    '<input type="hidden" name="req" value="%s">'
                    '<button type="submit" id="cancel" name="cancel" value="1">Avbryt</button>'
                    '</form>' % rid)
        info = ('<p>Klient: <span id="client">%s</span>; begärd nivå: <span id="acr">%s</span>'
                '; login_hint: <span id="login-hint">%s</span></p>'
                % (html.escape(req["client_id"]), html.escape(" ".join(req["acr_values"])),
                   html.escape(hint or "")))
        self.send_html(200, "eid-test-op: välj testanvändare", info + "\n".join(rows))

    def h_authorize_login(self):
        form = parse_form(self.read_body())
        with self.lg.lock:
            req = self.lg.pending.pop(form.get("req", ""), None)
        if req is None or time.time() - req["created"] > F.PENDING_TTL:
            return self.send_html(400, "Inloggningen har gått ut",
                                  '<p id="error">unknown or expired login request</p>')
        if form.get("cancel"):
            return self.authz_redirect(req, "access_denied", "the user cancelled")
        user = F.USERS_BY_NAME.get(form.get("user", ""))
        if user is None:
            return self.send_html(400, "Okänd användare", '<p id="error">unknown user</p>')
        self.finish_login(req, user, self.cookie_sid())

    def finish_login(self, req, user, cookie_sid):
        self.op.count("logins")
        s = self.lg.session_for(user, cookie_sid)
        self.issue_code(req, user, s, {"Set-Cookie": "%s=%s; Path=/; HttpOnly; SameSite=Lax"
                                       % (COOKIE, s["sid"])})

    def issue_code(self, req, user, session, headers=None):
        code = secrets.token_urlsafe(32)
        self.lg.add_session_client(session["sid"], req["client_id"])
        with self.lg.lock:
            self.lg.codes[code] = dict(req, user=user["name"], sid=session["sid"],
                                       auth_time=session["auth_time"], created=time.time(),
                                       used=0, access_tokens=[])
        iss = {"iss-param-wrong": "https://op.attacker.example",
               "iss-param-missing": None}.get(self.lg.behaviour["authorize"], self.op.issuer)
        self.send_redirect(F.redirect_with(req["redirect_uri"], [
            ("code", code), ("state", req["state"]), ("iss", iss)]), headers)

    # ------------------------------------------------------------ /token
    def h_token(self):
        self.op.count("token_requests")
        raw = self.read_body()
        rec = {"client_id": None, "auth_method": None, "grant_type": None}
        b = self.lg.behaviour
        try:
            form = parse_form(raw)
            rec["grant_type"] = form.get("grant_type")
            c, method = self.token_client_auth(form)
            rec["client_id"], rec["auth_method"] = c["client_id"], method
            if b["token"] == "slow" and self.sleep_or_stop(b["slow_seconds"]):
                return
            if b["token"] == "500":
                raise TokenError(500, "server_error", "token endpoint failing (switch)")
            if form.get("grant_type") != "authorization_code":
                raise TokenError(400, "unsupported_grant_type", "only authorization_code")
            answer = self.redeem(c, form)
        except BadRequest as e:
            rec.update(result="invalid_request", error_description=str(e))
            self.lg.record("token", rec)
            return self.send_error_json(400, "invalid_request", str(e),
                                        {"Pragma": "no-cache"})
        except TokenError as e:
            rec.update(result=e.error, error_description=e.desc)
            self.lg.record("token", rec)
            hdrs = {"Pragma": "no-cache"}
            if e.basic:
                hdrs["WWW-Authenticate"] = 'Basic realm="eid-test-op"'
            return self.send_error_json(e.status, e.error, e.desc, hdrs)
        rec["result"] = "ok"
        self.lg.record("token", rec)
        if b["token"] == "malformed":
            return self.send_bytes(200, b'{"access_token": "x", "token_type": "Bearer", '
                                   b'"id_token": "eyJ', "application/json")
        if b["token"] == "no-id-token":
            answer.pop("id_token", None)
        self.send_json(200, answer, {"Pragma": "no-cache"})

    def token_client_auth(self, form):
        auth = self.headers.get("Authorization")
        used = [m for m, present in (("client_secret_basic", auth is not None),
                                     ("client_secret_post", "client_secret" in form),
                                     ("private_key_jwt", "client_assertion" in form)) if present]
        if len(used) != 1:
            raise TokenError(401, "invalid_client",
                             "exactly one client authentication method is required",
                             basic=True)
        method = used[0]
        if method == "client_secret_basic":
            scheme, _, cred = auth.partition(" ")
            try:
                if scheme.lower() != "basic":
                    raise ValueError
                cid, sep, secret = base64.b64decode(cred.strip(), validate=True) \
                    .decode("utf-8").partition(":")
                if not sep:
                    raise ValueError
            except (ValueError, UnicodeDecodeError):
                raise TokenError(401, "invalid_client", "bad Basic credentials", basic=True)
            cid, secret = urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret)
        elif method == "client_secret_post":
            cid, secret = form.get("client_id"), form["client_secret"]
        else:
            return self.assertion_auth(form), method
        c = self.client(cid)
        if c is None or not c["client_secret"] or not hmac.compare_digest(
                c["client_secret"].encode(), (secret or "").encode()):
            raise TokenError(401, "invalid_client", "client authentication failed",
                             basic=method == "client_secret_basic")
        if c["token_endpoint_auth_method"] != method:
            raise TokenError(401, "invalid_client", "client is registered for %s"
                             % c["token_endpoint_auth_method"],
                             basic=method == "client_secret_basic")
        if form.get("client_id", cid) != cid:
            raise TokenError(401, "invalid_client", "client_id does not match the credentials")
        return c, method

    def assertion_auth(self, form):
        """RFC 7523 client assertion (private_key_jwt)."""
        def bad(desc):
            return TokenError(401, "invalid_client", desc)
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise bad("client_assertion_type must be " + ASSERTION_TYPE)
        try:
            hdr, cl, si, sig = F.split_jws(form["client_assertion"])
        except (ValueError, UnicodeDecodeError):
            raise bad("client_assertion is not a JWS")
        cid = cl.get("iss")
        c = self.client(cid)
        if c is None or cl.get("sub") != cid:
            raise bad("iss and sub must both be the client_id")
        if c["token_endpoint_auth_method"] != "private_key_jwt":
            raise bad("client is registered for %s" % c["token_endpoint_auth_method"])
        if form.get("client_id", cid) != cid:
            raise bad("client_id does not match the assertion")
        alg = hdr.get("alg")
        if alg not in ("RS256", "PS256", "ES256"):
            raise bad("assertion alg must be RS256, PS256 or ES256")
        keys = [k for kid, k in F.client_keys(c) if hdr.get("kid") in (None, kid) or
                kid is None]
        if not any(F.verify_sig(k, alg, si, sig) for k in keys):
            raise bad("assertion signature does not verify")
        aud = cl.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not {self.op.issuer + "/token", self.op.issuer} & set(a for a in auds
                                                                if isinstance(a, str)):
            raise bad("assertion aud must be the token endpoint or the issuer")
        t = F.now()
        exp = cl.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= t:
            raise bad("assertion exp missing or past")
        for k in ("iat", "nbf"):
            v = cl.get(k)
            if v is not None and (not isinstance(v, int) or v > t + 60):
                raise bad("assertion %s in the future" % k)
        jti = cl.get("jti")
        if not isinstance(jti, str) or not jti:
            raise bad("assertion jti required")
        with self.lg.lock:
            if (cid, jti) in self.lg.jtis:
                raise bad("assertion jti already used")
            self.lg.jtis[(cid, jti)] = exp
        return c

    def redeem(self, c, form):
        code = form.get("code") or ""
        b = self.lg.behaviour
        with self.lg.lock:
            g = self.lg.codes.get(code)
            if g is None:
                raise TokenError(400, "invalid_grant", "unknown code")
            if g["used"] and not b["replay_code"]:
                # a code used twice: also revoke what it gave (RFC 6749 4.1.2)
                for tok in g["access_tokens"]:
                    self.op.state.revoke(tok)
                raise TokenError(400, "invalid_grant", "code already used")
            g["used"] += 1
            g = dict(g)
        if time.time() - g["created"] > b["code_ttl"]:
            raise TokenError(400, "invalid_grant", "code expired")
        if g["client_id"] != c["client_id"]:
            raise TokenError(400, "invalid_grant", "code issued to another client")
        if form.get("redirect_uri") != g["redirect_uri"]:
            raise TokenError(400, "invalid_grant", "redirect_uri differs from the request's")
        ver = form.get("code_verifier")
        if g["code_challenge"] is not None:
            if ver is None or not F.VERIFIER_RE.fullmatch(ver):
                raise TokenError(400, "invalid_grant", "code_verifier missing or malformed")
            if not hmac.compare_digest(F.pkce_s256(ver), g["code_challenge"]):
                raise TokenError(400, "invalid_grant", "code_verifier does not match")
        elif ver is not None:
            raise TokenError(400, "invalid_grant", "code_verifier without a code_challenge")
        user = F.USERS_BY_NAME[g["user"]]
        acr = F.pick_acr(user, g["acr_values"])
        access, ttl = self.op.mint_access(c, user, g, acr)
        with self.lg.lock:
            if code in self.lg.codes:
                self.lg.codes[code]["access_tokens"].append(access)
        idt = self.id_token(c, user, g, acr, access)
        return {"access_token": access, "token_type": "Bearer", "expires_in": ttl,
                "id_token": idt, "scope": g["scope"]}

    def id_token(self, c, user, g, acr, access):
        v = set(self.lg.behaviour["id_token"])
        st, t, cid = self.op.state, F.now(), c["client_id"]
        key = st.ec if "es256" in v else st.rsa
        cl = F.profile_claims(user, c["profile"])
        if "minimal" in v:
            cl = {"sub": user["sub"]}
        cl.update({"iss": self.op.issuer, "aud": cid, "azp": cid, "exp": t + 300, "iat": t,
                   "auth_time": g["auth_time"], "acr": acr, "sid": g["sid"],
                   "at_hash": F.hash_half(access)})
        if g["nonce"] is not None:
            cl["nonce"] = g["nonce"]
        hdr = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
        if "wrong-iss" in v:
            cl["iss"] = "https://op.attacker.example"
        if "wrong-aud" in v:
            cl["aud"] = cl["azp"] = "other-client"
        if "wrong-azp" in v:
            cl["aud"], cl["azp"] = [cid, "other-client"], "other-client"
        if "wrong-nonce" in v:
            cl["nonce"] = secrets.token_urlsafe(16)
        if "no-nonce" in v:
            cl.pop("nonce", None)
        if "at_hash-mismatch" in v:
            cl["at_hash"] = F.hash_half(secrets.token_urlsafe(32))
        if "expired" in v:
            cl["iat"], cl["exp"] = t - 900, t - 600
        if "iat-in-future" in v:
            cl["iat"], cl["exp"] = t + 3600, t + 3900
        if "unknown-kid" in v:
            hdr["kid"] = "unknown-" + secrets.token_hex(8)
        if "acr-missing" in v:
            cl.pop("acr", None)
        if "acr-wrong" in v:
            cl["acr"] = F.lower_acr(acr, g["acr_values"])
        if "auth-time-old" in v:
            cl["auth_time"] = t - 7200
        if "no-auth-time" in v:
            cl.pop("auth_time", None)
        if "no-sid" in v:
            cl.pop("sid", None)
        sv = "alg-none" if "alg-none" in v else ("bad-signature" if "bad-signature" in v
                                                  else None)
        return F.sign_jws(hdr, cl, key, sv)

    # ------------------------------------------------------------ /userinfo
    def h_userinfo(self):
        self.op.count("userinfo_requests")
        raw = self.read_body() if self.command == "POST" else b""
        auth = self.headers.get("Authorization", "")
        scheme, _, tok = auth.partition(" ")
        tok = tok.strip() if scheme.lower() == "bearer" else None
        if tok is None and self.command == "POST":
            try:
                tok = parse_form(raw).get("access_token")
            except BadRequest:
                tok = None
        rec = self.op.state.lookup(tok) if tok else None
        t = F.now()
        ok = (rec is not None and not rec["revoked"] and "sub" in rec["claims"] and
              not (isinstance(rec["claims"].get("exp"), int) and rec["claims"]["exp"] <= t))
        self.lg.record("userinfo", {"result": "ok" if ok else "invalid_token",
                                    "sub": rec["claims"].get("sub") if rec else None})
        if not ok:
            return self.send_bytes(401, b"", "text/plain", {
                "WWW-Authenticate": 'Bearer error="invalid_token"'})
        b = self.lg.behaviour
        if b["userinfo"] == "slow" and self.sleep_or_stop(b["slow_seconds"]):
            return
        if b["userinfo"] == "500":
            return self.send_error_json(500, "server_error", "userinfo failing (switch)")
        if b["userinfo"] == "garbage":
            return self.send_bytes(200, b"\x00<html>not json{", "application/json")
        ans = {k: v for k, v in rec["claims"].items() if k not in JWT_META}
        if b["userinfo"] == "sub-mismatch":
            ans["sub"] = "someone-else-" + secrets.token_hex(4)
        if b["userinfo"] == "encrypted":
            return self.send_bytes(200, fake_jwe().encode("ascii"), "application/jwt")
        if b["userinfo"].startswith("signed"):
            return self.send_bytes(200, self.signed_userinfo(ans, rec, b["userinfo"]).encode(
                "ascii"), "application/jwt")
        self.send_json(200, ans)

    def signed_userinfo(self, ans, rec, mode):
        """Core 5.3.2: the answer as a JWS by the current RSA key, with iss and aud (the
        token's client); the signed-* modes spoil one thing each."""
        st, cl = self.op.state, dict(ans)
        cl.update({"iss": self.op.issuer, "aud": rec["claims"].get("client_id")})
        if mode == "signed-wrong-iss":
            cl["iss"] = "https://op.attacker.example"
        if mode == "signed-wrong-aud":
            cl["aud"] = "other-client"
        if mode == "signed-no-iss-aud":
            del cl["iss"], cl["aud"]
        variant = {"signed-badsig": "bad-signature", "signed-alg-none": "alg-none"}.get(mode)
        return F.sign_jws({"alg": st.rsa.alg, "typ": "JWT", "kid": st.rsa.kid}, cl, st.rsa,
                          variant)

    # ------------------------------------------------------------ /end_session
    def verify_ours(self, tok):
        """Claims of an ID token signed by one of our keys with our iss (exp not checked),
        else None."""
        try:
            hdr, cl, si, sig = F.split_jws(tok)
        except (ValueError, UnicodeDecodeError):
            return None
        st = self.op.state
        for k in (st.rsa, st.ec, st.rsa_old):
            if k is not None and hdr.get("kid") == k.kid and hdr.get("alg") == k.alg:
                pub = k.priv.public_key()
                if F.verify_sig(pub, k.alg, si, sig) and cl.get("iss") == self.op.issuer:
                    return cl
        return None

    def h_end_session(self):
        self.op.count("end_session_requests")
        raw = self.read_body() if self.command == "POST" else urllib.parse.urlsplit(
            self.path).query
        try:
            p = parse_form(raw)
        except BadRequest as e:
            p = {"_error": str(e)}
        rec = {"params": p, "method": self.command, "id_token_hint_valid": None,
               "client_id": p.get("client_id"),
               "sid": None, "sub": None, "post_logout_redirect_uri":
               p.get("post_logout_redirect_uri"), "state": p.get("state")}

        def fail(why):
            rec.update(result="error", error=why)
            self.lg.record("end_session", rec)
            self.send_html(400, "Utloggningen misslyckades",
                           '<p id="error">%s</p>' % html.escape(why))
        if "_error" in p:
            return fail(p["_error"])
        cl = None
        if "id_token_hint" in p:
            cl = self.verify_ours(p["id_token_hint"])
            rec["id_token_hint_valid"] = cl is not None
            if cl is None:
                return fail("id_token_hint is not an ID token of this OP")
            aud = cl.get("aud")
            hint_client = aud if isinstance(aud, str) else cl.get("azp")
            if rec["client_id"] is not None and rec["client_id"] != hint_client:
                return fail("client_id does not match the id_token_hint")
            rec.update(client_id=hint_client, sid=cl.get("sid"), sub=cl.get("sub"))
        plr = p.get("post_logout_redirect_uri")
        if plr is not None:
            c = self.client(rec["client_id"])
            if c is None:
                return fail("post_logout_redirect_uri needs id_token_hint or client_id")
            if plr not in c["post_logout_redirect_uris"]:
                return fail("post_logout_redirect_uri not registered for the client")
        sid = rec["sid"] or self.cookie_sid()
        with self.lg.lock:
            ended = self.lg.sessions.pop(sid or "", None)
        rec["session_ended"] = ended is not None
        clear = {"Set-Cookie": "%s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0" % COOKIE}
        if plr is not None:
            rec["result"] = "redirect"
            self.lg.record("end_session", rec)
            return self.send_redirect(F.redirect_with(plr, [("state", p.get("state"))]), clear)
        rec["result"] = "page"
        self.lg.record("end_session", rec)
        self.send_html(200, "Du är utloggad", '<p id="logged-out">logged out</p>', clear)

    # ------------------------------------------------------------ admin
    def h_auto_login(self):
        req = self.read_json()
        if not isinstance(req, dict) or "user" not in req:
            raise BadRequest('body must be {"user": name or null}')
        u = req["user"]
        if u is not None and u not in F.USERS_BY_NAME:
            raise BadRequest("unknown user %r (%s)" % (u, ", ".join(F.USERS_BY_NAME)))
        with self.lg.lock:
            self.lg.auto_login = u
        self.send_json(200, {"user": u})

    def h_login_behaviour(self):
        self.send_json(200, self.lg.set_behaviour(self.read_json()))

    def h_get_login_behaviour(self):
        with self.lg.lock:
            self.send_json(200, dict(self.lg.behaviour))

    def h_users(self):
        self.send_json(200, {"users": [
            {"name": u["name"], "label": u["label"], "sub": u["sub"], "level": u["level"],
             "acr": u["acr"], "claims": {p: F.profile_claims(u, p) for p in F.PROFILES}}
            for u in F.USERS]})

    def h_sessions(self):
        with self.lg.lock:
            self.send_json(200, {"sessions": [dict(s) for s in self.lg.sessions.values()]})

    def h_records(self):
        q = parse_form(urllib.parse.urlsplit(self.path).query)
        with self.lg.lock:
            recs = {k: list(v) for k, v in self.lg.records.items()}
        kind = q.get("kind")
        if kind is not None:
            if kind not in recs:
                raise BadRequest("kind must be one of %s" % ", ".join(F.RECORD_KINDS))
            return self.send_json(200, {kind: recs[kind]})
        self.send_json(200, recs)

    def h_clear_records(self):
        self.read_body()
        self.lg.clear_records()
        self.send_json(200, {"cleared": True})

    def h_backchannel(self):
        req = self.read_json()
        if not isinstance(req, dict):
            raise BadRequest("body must be a JSON object")
        extra = set(req) - {"client", "sid", "sub", "variant", "ca_file", "timeout", "uri"}
        if extra:
            raise BadRequest("unknown backchannel fields: %s" % ", ".join(sorted(extra)))
        c = self.client(req.get("client"))
        if c is None:
            raise BadRequest("unknown client")
        uri = req.get("uri") or c["backchannel_logout_uri"]
        if not uri:
            raise BadRequest("the client has no backchannel_logout_uri")
        v = req.get("variant")
        if v is not None and v not in F.BCL_VARIANTS:
            raise BadRequest("variant must be one of %s" % ", ".join(F.BCL_VARIANTS))
        sid, sub = req.get("sid"), req.get("sub")
        if sid is None and sub is None and v != "no-sid-no-sub":
            raise BadRequest("sid and/or sub required")
        t, st = F.now(), self.op.state
        cl = {"iss": self.op.issuer, "aud": c["client_id"], "iat": t, "exp": t + 120,
              "jti": secrets.token_urlsafe(16), "events": {F.BCL_EVENT: {}}}
        if sid is not None:
            cl["sid"] = sid
        if sub is not None:
            cl["sub"] = sub
        hdr = {"alg": st.rsa.alg, "typ": "logout+jwt", "kid": st.rsa.kid}
        if v == "with-nonce":
            cl["nonce"] = secrets.token_urlsafe(16)
        elif v == "no-events":
            del cl["events"]
        elif v == "wrong-events":
            cl["events"] = {"http://schemas.openid.net/event/other": {}}
        elif v == "wrong-aud":
            cl["aud"] = "other-client"
        elif v == "wrong-iss":
            cl["iss"] = "https://op.attacker.example"
        elif v == "old-iat":
            cl["iat"] = t - 3600
        elif v == "expired":
            cl["iat"], cl["exp"] = t - 180, t - 60
        elif v == "replay":
            if self.lg.last_logout_jti is None:
                raise BadRequest("replay: no logout token was sent before")
            cl["jti"] = self.lg.last_logout_jti
        elif v == "no-sid-no-sub":
            cl.pop("sid", None)
            cl.pop("sub", None)
        elif v == "no-typ":
            del hdr["typ"]
        tok = F.sign_jws(hdr, cl, st.rsa, v if v in ("alg-none", "bad-signature") else None)
        self.lg.last_logout_jti = cl["jti"]
        ans = {"uri": uri, "logout_token": tok, "header": hdr, "claims": cl, "variant": v}
        try:
            status, headers, body = F.post_loopback(
                uri, urllib.parse.urlencode({"logout_token": tok}).encode(),
                ca_file=req.get("ca_file") or c.get("backchannel_ca_file"),
                timeout=float(req.get("timeout", 10)))
            ans.update(status=status, headers=headers, body=body, error=None)
        except (OSError, ValueError) as e:
            ans.update(status=None, headers={}, body="", error=repr(e))
        self.op.count("backchannel_sent")
        self.lg.record("backchannel", {k: ans[k] for k in ("uri", "claims", "variant",
                                                           "status", "error")})
        self.send_json(200, ans)
