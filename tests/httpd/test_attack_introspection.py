"""Attacks on RFC 7662 introspection answers: the type and spelling of aud,
iss and exp; a token that was inactive and becomes active (the refusal memory
is bounded in time); huge and garbage answers.  Real httpd, the test OP."""
import time

import pytest

from eidtest import Httpd  # noqa: F401  (the fixtures below build servers)
from test_introspection import (AUD, assert_invalid_token, call, op, server,  # noqa: F401
                                short_negative, strict)


def now():
    return int(time.time())


@pytest.mark.parametrize("claims", [
    {"aud": [AUD]},
    {"aud": ["api://other", AUD]},
], ids=["aud-list", "aud-list-2"])
def test_good_variants_admit(strict, op, claims, logcheck):
    logcheck(strict)
    tok = op.mint(preset="oidc-sweden-staff", opaque=True, claims=claims)
    r = call(strict, tok)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("claims", [
    {"aud": AUD + "/"},
    {"aud": AUD.upper()},
    {"aud": [[AUD]]},
    {"aud": {"x": AUD}},
    {"aud": 1},
    {"aud": []},
    {"iss": "ISS/"},
    {"iss": ["ISS"]},
    {"exp": str(now() + 600)},
    {"exp": True},
    {"exp": 1e300},
    {"exp": 2 ** 62},
    {"exp": -1},
    {"exp": now() + 600.5},  # a fraction: refused like in a JWT (fail closed)
], ids=["aud-slash", "aud-case", "aud-nested", "aud-object", "aud-number", "aud-empty",
        "iss-slash", "iss-list", "exp-string", "exp-bool", "exp-1e300", "exp-2^62",
        "exp-negative", "exp-float"])
def test_bad_variants_are_401(strict, op, claims, logcheck):
    logcheck(strict)
    claims = {k: (v.replace("ISS", op.issuer) if isinstance(v, str) else
                  [x.replace("ISS", op.issuer) for x in v] if isinstance(v, list) and
                  v and isinstance(v[0], str) else v) for k, v in claims.items()}
    info = op.mint_info(preset="oidc-sweden-staff", opaque=True, claims=claims)
    assert_invalid_token(call(strict, info["token"]))


def test_exp_beyond_64_bits_is_not_admitted(strict, op, logcheck):
    # the answer no longer parses as JSON of C integers: the endpoint is
    # treated as broken (503), never as an answer that admits
    logcheck(strict)
    strict.expect_log(r"EID03503")
    info = op.mint_info(preset="oidc-sweden-staff", opaque=True, claims={"exp": 2 ** 70})
    r = call(strict, info["token"])
    assert r.status_code in (401, 503) and "protected" not in r.text, r.text


def test_inactive_token_that_becomes_active(short_negative, op, logcheck):
    # not yet valid (nbf) -> the OP says inactive; a second later it is active:
    # the remembered refusal must not outlast introspect_negative_cache (1 s)
    logcheck(short_negative)
    time.sleep(1.1)  # a full rate bucket
    tok = op.mint(preset="oidc-sweden-staff", opaque=True, claims={"nbf": now() + 2})
    assert_invalid_token(call(short_negative, tok))
    assert_invalid_token(call(short_negative, tok))
    time.sleep(3.2)
    r = call(short_negative, tok)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("mode", ["huge", "garbage"])
def test_huge_or_garbage_answer(strict, op, mode, logcheck):
    logcheck(strict)
    strict.expect_log(r"EID035\d\d|EID033\d\d|EID036\d\d")
    tok = op.mint(preset="oidc-sweden-staff", opaque=True)
    op.behaviour(introspect=mode)
    try:
        r = call(strict, tok)
        assert r.status_code in (401, 503), r.text
        assert "protected" not in r.text
    finally:
        op.behaviour(reset=True)
    # not remembered as a refusal of the token: it works once the endpoint does
    assert call(strict, tok).status_code == 200


# ---- a flood spread over several introspecting providers ----------------------------


def test_flood_over_two_providers_leaves_workers_free(op, logcheck):
    # Each provider bounds its own calls in flight (8 by default); two of them
    # must not together hold every worker thread of the child (16 here)
    # while a slow endpoint keeps them: a request for a static page during
    # the flood is answered at once.
    import concurrent.futures
    import os
    import secrets
    import requests
    from eidtest import TRUST_PROFILES, pki
    ca = pki("ca", "server-ca.pem")
    c = TRUST_PROFILES
    for i in range(2):
        c += ("EidProvider p%d issuer=%s/x%d audience=%s introspect=%s "
              "client_id=incident-api client_secret_file={root}/secret\n"
              % (i, op.issuer, i, AUD, op.introspection_uri))
        c += ("<Location /a%d/>\nAuthType eid\nEidMethods bearer\nEidBearerProviders p%d\n"
              "Require valid-user\n</Location>\n" % (i, i))
    s = Httpd(c, name="intro-two")
    with open(os.path.join(s.root, "secret"), "w") as f:
        f.write("incident-api-secret\n")
    for i in range(2):
        os.makedirs(os.path.join(s.root, "htdocs", "a%d" % i))
    s.start()
    try:
        logcheck(s)
        s.expect_log(r"EID03505", r"AH00484", r"EID03301|EID03302")
        op.behaviour(introspect="slow", slow_seconds=3)

        def one(i):
            return requests.get(s.url("/a%d/x" % (i % 2)), verify=ca, timeout=30,
                                headers={"Authorization": "Bearer " +
                                         secrets.token_urlsafe(32)}).status_code

        with concurrent.futures.ThreadPoolExecutor(40) as ex:
            futs = [ex.submit(one, i) for i in range(40)]
            time.sleep(1.0)
            t0 = time.monotonic()
            r = requests.get(s.url("/index.html"), verify=ca, timeout=30)
            waited = time.monotonic() - t0
            codes = [f.result() for f in futs]
        assert r.status_code == 200
        assert waited < 1.0, waited
        assert all(c in (401, 503) for c in codes), codes
    finally:
        op.behaviour(reset=True)
        s.stop()
        s.cleanup()
