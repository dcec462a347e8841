"""A provider that cannot be asked is 503 with Retry-After, never 401 (a 401
tells the client to drop a token that may be good) and never 200: the
introspection endpoint not listening, stalling past fetch_timeout, answering
megabytes or garbage.  (The JWKS side: tests/httpd/test_bearer.py,
test_provider_down_cached_keys_keep_working and test_jwks_fetch_is_bounded.)
Real httpd, the real test OP on loopback."""
import time

import pytest

from eidtest import Httpd  # noqa: F401  (the fixtures below build servers)
from test_introspection import call, op, server, strict  # noqa: F401


def assert_unavailable(r):
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.headers.get("Retry-After")
    assert "protected" not in r.text
    assert 'error="invalid_token"' not in r.headers.get("WWW-Authenticate", "")


def test_introspection_endpoint_not_listening(strict, op, logcheck):
    logcheck(strict)
    strict.expect_log(r"EID03602|EID03502")
    tok = op.mint(preset="oidc-sweden-staff", opaque=True)
    op.stop()
    try:
        assert_unavailable(call(strict, tok))
        assert_unavailable(call(strict, tok))  # not remembered as a refusal
    finally:
        op.start()
    assert call(strict, tok).status_code == 200


@pytest.mark.parametrize("mode", ["slow", "huge", "garbage"])
def test_introspection_endpoint_broken(strict, op, mode, logcheck):
    logcheck(strict)
    strict.expect_log(r"EID0360\d|EID0350\d")
    tok = op.mint(preset="oidc-sweden-staff", opaque=True)
    op.behaviour(introspect=mode, slow_seconds=10, huge_bytes=4 * 1024 * 1024)
    try:
        t0 = time.monotonic()
        r = call(strict, tok)
        assert time.monotonic() - t0 < 3 + 1.5  # fetch_timeout (default 3 s)
        assert_unavailable(r)
    finally:
        op.behaviour(reset=True)
    assert call(strict, tok).status_code == 200
