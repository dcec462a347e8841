"""Many clients at once against one httpd child (48 worker threads): every
answer must carry the identity of the credential that was sent with it.

- 32 client threads, each with its own keep-alive TLS connection and its own
  distinct tokens minted by the test OP (subject derived from thread and
  number), every token sent twice in a shuffled order (a miss, then hits of
  the process-wide token cache while other threads insert into it);
- 24 client threads with different client certificates, some requests on new
  TLS connections, some on kept-alive ones.

The identity comes back in a response header set by mod_headers from the
module's EID_* variables (no CGI: thousands of requests stay fast), so a
response that carries another request's identity is seen, not only a crash.
"""
import os
import random
import shutil
import sys
import tempfile
import threading
import time

import pytest
import requests

from eidtest import REPO, TRUST_PROFILES, Httpd, manifest, pki, user_cert

sys.path.insert(0, os.path.join(REPO, "tests", "op"))
from opctl import TestOP  # noqa: E402

AUD = "api://incident"
CA = pki("ca", "server-ca.pem")
THREADS = 32
TOKENS = 120  # per thread: 3840 distinct tokens, 7680 requests
M = manifest()


@pytest.fixture(scope="module")
def op():
    o = TestOP(tempfile.mkdtemp(prefix="eid-op-conc-")).start()
    yield o
    o.stop()
    shutil.rmtree(o.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def srv(op):
    # More workers than eidtest's 16: 32 keep-alive clients must not run the
    # child out of workers (event MPM then closes idle keep-alive connections).
    c = "ThreadsPerChild 48\nMaxRequestWorkers 48\nMaxSpareThreads 48\n"
    c += TRUST_PROFILES
    c += ("EidProvider conc issuer=%s jwks_uri=%s audience=%s jwks_min_refetch=1\n"
          % (op.issuer, op.jwks_uri, AUD))
    c += ('<Location /who/>\nAuthType eid\nEidMethods cert bearer\nRequire valid-user\n'
          'Header always set X-Who "%{{EID_SUBJECT}}e|%{{EID_HSA_ID}}e|%{{EID_PNR}}e"\n'
          '</Location>\n')
    s = Httpd(c, name="conc")
    os.makedirs(os.path.join(s.root, "htdocs", "who"))
    with open(os.path.join(s.root, "htdocs", "who", "x.txt"), "w") as f:
        f.write("x\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture
def logged(srv, logcheck):
    return logcheck(srv)


def run(threads):
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a client thread hangs"


def test_many_distinct_tokens_at_once(srv, op, logged):
    t0 = time.time()
    tokens = [[op.mint(claims={"sub": "conc-%02d-%04d" % (t, i)}) for i in range(TOKENS)]
              for t in range(THREADS)]
    minted = time.time() - t0
    errors, counts = [], []

    def client(t):
        order = [i for i in range(TOKENS)] * 2
        random.Random(t).shuffle(order)
        ok = 0
        with requests.Session() as s:
            for i in order:
                want = "conc-%02d-%04d" % (t, i)
                try:
                    r = s.get(srv.url("/who/x.txt"), verify=CA, timeout=30,
                              headers={"Authorization": "Bearer " + tokens[t][i]})
                except requests.RequestException as e:
                    errors.append("%s: %s" % (want, e))
                    continue
                who = r.headers.get("X-Who", "").split("|")[0]
                if r.status_code != 200 or who != want:
                    errors.append("%s: %d %r" % (want, r.status_code, who))
                else:
                    ok += 1
        counts.append(ok)

    t1 = time.time()
    run([threading.Thread(target=client, args=(t,)) for t in range(THREADS)])
    took = time.time() - t1
    assert not errors, "%d wrong answers, e.g. %s" % (len(errors), errors[:5])
    assert sum(counts) == THREADS * TOKENS * 2
    print("minted %d tokens in %.1f s; %d requests in %.1f s"
          % (THREADS * TOKENS, minted, sum(counts), took))


def expected_identity(user):
    u = M[user]
    return u.get("hsa_id") if u["serial_kind"] == "hsa" else u["pnr"]


CERT_USERS = [u for u, v in M.items() if v["expect"] == "ok"]


def test_many_client_certificates_at_once(srv, logged):
    assert len({expected_identity(u) for u in CERT_USERS}) >= 5
    errors, counts = [], []

    def client(t):
        user = CERT_USERS[t % len(CERT_USERS)]
        want = expected_identity(user)
        ok = 0
        for conn in range(6):
            # a new TLS connection (a new handshake and session) each round,
            # then keep-alive requests on it
            with requests.Session() as s:
                s.cert = user_cert(user)
                for _ in range(8):
                    try:
                        r = s.get(srv.url("/who/x.txt"), verify=CA, timeout=30)
                    except requests.RequestException as e:
                        errors.append("%s: %s" % (user, e))
                        continue
                    who = r.headers.get("X-Who", "").split("|")
                    if r.status_code != 200 or want not in who[1:]:
                        errors.append("%s: %d %r" % (user, r.status_code, who))
                    else:
                        ok += 1
        counts.append(ok)

    run([threading.Thread(target=client, args=(t,)) for t in range(24)])
    assert not errors, "%d wrong answers, e.g. %s" % (len(errors), errors[:5])
    assert sum(counts) == 24 * 6 * 8
