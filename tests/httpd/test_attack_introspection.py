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
