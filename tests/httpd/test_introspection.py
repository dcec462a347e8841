"""Opaque tokens by RFC 7662 introspection, hardened: an answer must carry
`aud` naming this service, `iss` and `exp`; refusals are remembered for a
short time (keyed by the token's SHA-256); calls to the introspection
endpoint in flight and per second are bounded per provider and child, beyond
that 503 at once.  Real httpd with the module, the real test OP (tests/op) on loopback;
the OP's counter of introspection calls is the measure of outbound calls."""
import concurrent.futures
import os
import secrets
import shutil
import sys
import tempfile
import time

import pytest
import requests

from eidtest import REPO, TRUST_PROFILES, Httpd, pki

sys.path.insert(0, os.path.join(REPO, "tests", "op"))
from opctl import TestOP  # noqa: E402

AUD = "api://incident"
CA = pki("ca", "server-ca.pem")
# The default of introspect_max_inflight (docs/directives.md).
DEFAULT_MAX_INFLIGHT = 8


@pytest.fixture(scope="module")
def op():
    d = tempfile.mkdtemp(prefix="eid-op-intro-")
    o = TestOP(d).start()
    yield o
    o.stop()
    shutil.rmtree(d, ignore_errors=True)


def server(op, name, options=""):
    # Only introspection: every token of this issuer, opaque or not, is
    # asked about.  The strict server uses the defaults of the hardening.
    c = TRUST_PROFILES
    c += ("EidProvider intro issuer=%s audience=%s introspect=%s client_id=incident-api "
          "client_secret_file={root}/secret introspect_cache=60 %s\n"
          % (op.issuer, AUD, op.introspection_uri, options))
    c += "<Location /api/>\nAuthType eid\nEidMethods bearer\nRequire valid-user\n</Location>\n"
    s = Httpd(c, name=name)
    os.makedirs(os.path.join(s.root, "htdocs", "api"), exist_ok=True)
    with open(os.path.join(s.root, "htdocs", "api", "index.html"), "w") as f:
        f.write("protected\n")
    with open(os.path.join(s.root, "secret"), "w") as f:
        f.write("incident-api-secret\n")
    return s


@pytest.fixture(scope="module")
def strict(op):
    s = server(op, "intro-strict")
    s.start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def short_negative(op):
    s = server(op, "intro-neg", "introspect_negative_cache=1 introspect_rate=5")
    s.start()
    yield s
    s.stop()
    s.cleanup()


def call(srv, token):
    return requests.get(srv.url("/api/index.html"), verify=CA, timeout=20,
                        headers={"Authorization": "Bearer " + token})


def random_token():
    return secrets.token_urlsafe(32)


def assert_invalid_token(r):
    assert r.status_code == 401, r.text
    assert 'error="invalid_token"' in r.headers.get("WWW-Authenticate", "")
    assert "protected" not in r.text


# ---- required members of the answer ---------------------------------------------


def test_complete_answer_admits(strict, op, logcheck):
    logcheck(strict)
    tok = op.mint(preset="oidc-sweden-staff", opaque=True)
    r = call(strict, tok)
    assert r.status_code == 200, r.text
    assert r.text == "protected\n"


@pytest.mark.parametrize("claims", [
    {"aud": None},                       # no aud: a token for any service of the OP
    {"aud": "api://some-other-service"},  # another service's token
    {"aud": ["api://a", "api://b"]},
    {"iss": None},
    {"exp": None},
], ids=["no-aud", "foreign-aud", "foreign-aud-list", "no-iss", "no-exp"])
def test_incomplete_or_foreign_answer_is_401(strict, op, claims, logcheck):
    logcheck(strict)
    info = op.mint_info(preset="oidc-sweden-staff", opaque=True, claims=claims)
    for k, v in claims.items():
        assert info["claims"].get(k) == v  # the OP's answer is as intended
    op.reset_stats()
    assert_invalid_token(call(strict, info["token"]))
    assert op.stats()["introspections"] == 1


# ---- remembered refusals ------------------------------------------------------------


def test_refusal_is_remembered(strict, op, logcheck):
    logcheck(strict)
    tok = random_token()
    op.reset_stats()
    assert_invalid_token(call(strict, tok))
    for _ in range(5):
        assert_invalid_token(call(strict, tok))
    assert op.stats()["introspections"] == 1
    # a refusal by the checks (foreign aud) too
    foreign = op.mint(preset="oidc-sweden-staff", opaque=True,
                      claims={"aud": "api://some-other-service"})
    assert_invalid_token(call(strict, foreign))
    assert_invalid_token(call(strict, foreign))
    assert op.stats()["introspections"] == 2


def test_refusal_memory_expires(short_negative, op, logcheck):
    logcheck(short_negative)
    tok = random_token()
    op.reset_stats()
    assert_invalid_token(call(short_negative, tok))
    assert_invalid_token(call(short_negative, tok))
    assert op.stats()["introspections"] == 1
    time.sleep(1.3)
    assert_invalid_token(call(short_negative, tok))
    assert op.stats()["introspections"] == 2


def test_endpoint_down_is_not_remembered(strict, op, logcheck):
    logcheck(strict)
    strict.expect_log(r"EID03502")
    tok = op.mint(preset="oidc-sweden-staff", opaque=True)
    op.behaviour(introspect="down")
    try:
        r = call(strict, tok)
        assert r.status_code == 503
        assert r.headers.get("Retry-After")
    finally:
        op.behaviour(reset=True)
    assert call(strict, tok).status_code == 200


# ---- a flood of made-up tokens ----------------------------------------------------------


def test_flood_of_random_tokens_is_bounded(strict, op, logcheck):
    logcheck(strict)
    # httpd notes that every worker was busy for a moment: that is the flood
    strict.expect_log(r"EID03505", r"AH00484")
    n = 40
    op.behaviour(introspect="slow", slow_seconds=2)
    op.reset_stats()

    def one(tok):
        t0 = time.monotonic()
        r = call(strict, tok)
        return r.status_code, r.headers.get("Retry-After"), time.monotonic() - t0

    try:
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            results = list(ex.map(one, [random_token() for _ in range(n)]))
        calls = op.stats()["introspections"]
    finally:
        op.behaviour(reset=True)
    busy = [r for r in results if r[0] == 503]
    # at most max_inflight calls went out (one child in the test server) ...
    assert calls <= DEFAULT_MAX_INFLIGHT, calls
    # ... the others were answered 503 at once, with Retry-After, without
    # waiting for the slow endpoint
    assert len(busy) >= n - DEFAULT_MAX_INFLIGHT, results
    assert all(r[1] for r in busy)
    assert max(r[2] for r in busy) < 1.5, sorted(r[2] for r in busy)
    # the others: the slow endpoint's "not active" (401)
    assert all(r[0] in (401, 503) for r in results), results


def test_rate_of_calls_is_bounded(short_negative, op, logcheck):
    # A fast endpoint: the bound in flight alone would let every made-up
    # token through to it; introspect_rate=5 caps the calls per second.
    logcheck(short_negative)
    short_negative.expect_log(r"EID03506")
    time.sleep(1.1)  # a full bucket
    op.reset_stats()
    t0 = time.monotonic()
    results = [call(short_negative, random_token()) for _ in range(30)]
    elapsed = time.monotonic() - t0
    calls = op.stats()["introspections"]
    assert calls <= 5 + 5 * elapsed + 1, (calls, elapsed)
    busy = [r for r in results if r.status_code == 503]
    assert len(busy) >= 30 - calls
    assert all(r.headers.get("Retry-After") for r in busy)
    assert all(r.status_code in (401, 503) for r in results)
