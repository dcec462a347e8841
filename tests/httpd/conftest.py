import os

import pytest

from eidtest import MODULE, PKI


def pytest_sessionstart(session):
    missing = [p for p in (MODULE, os.path.join(PKI, "manifest.json")) if not os.path.exists(p)]
    if missing:
        raise pytest.UsageError("build first (make all pki): missing " + ", ".join(missing))


def server_fixture(make):
    """A module-scoped server built by make(); after every test of the module
    the error-log lines that test produced are checked."""

    @pytest.fixture(scope="module")
    def _srv():
        s = make()
        s.start()
        yield s
        s.stop()
        s.cleanup()

    return _srv


@pytest.fixture
def logcheck():
    """Register servers whose new error-log lines must all be expected."""
    servers = []

    def add(s):
        s.log_mark()
        servers.append(s)
        return s

    yield add
    problems = []
    for s in servers:
        problems += s.unexpected_log_lines()
    assert not problems, "unexpected error-log lines:\n" + "\n".join(problems)
