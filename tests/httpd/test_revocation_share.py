"""OCSP answers shared through the session store (issue 13): one httpd, event MPM
with two children, `EidSessionStore shm`; the responder (OpenSSL's, behind the
loopback front of test_revocation.py) counts its requests.

- an answer fetched by one child is used by the other: the responder sees one
  request, the other child's audit record says `store`; a revoked card too;
- the value in the store is the signed response under "v:" + hex(SHA-256(SHA-256
  of the issuer's public key || serial)), for at most max-age;
- a value that does not check (garbage, or another card's signed answer) is
  refused and the responder is asked again; the new answer replaces it.

Values are read and written through the test-only module build/mod_eid_rev_test.so
(tests/httpd/mod_eid_rev_test.c, never installed), which uses mod_auth_eid's own
store and adds X-Eid-Pid (the serving process) to every response.
"""
import hashlib
import http.client
import os
import re
import shutil
import ssl
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from eidtest import BUILD, Httpd, pki, unique_path
from test_revocation import SERVER_CA, Front, Pki, ctx_for

REV_TEST_MODULE = os.environ.get("EID_REV_TEST_MODULE",
                                 os.path.join(BUILD, "mod_eid_rev_test.so"))

BODY = """
LoadModule eid_rev_test_module %s
EidSessionStore shm:2097152
StartServers 2
ServerLimit 2
# a listening socket per child (SO_REUSEPORT): the kernel spreads new
# connections over both, where one shared socket let one child take them all
ListenCoresBucketsRatio 1
ThreadsPerChild 8
MaxRequestWorkers 16
MinSpareThreads 4
MaxSpareThreads 16
KeepAlive Off
ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"
EidTrustIssuer rv-share {pki}/ca/hsa3.pem loa=3 ids=hsa-id
EidRevocation rv-share ocsp responder=http://127.0.0.1:%d/share max-age=300
<Location /share/>
AuthType eid
EidCertProfiles rv-share
Require valid-user
</Location>
<Location /revtest>
SetHandler eid-rev-test
</Location>
"""


def _der_tlv(b, i):
    """(tag, content start, content end) of the DER element at b[i]."""
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    return tag, i, i + n


def share_key(serial_hex):
    """The store key: "v:" + hex(SHA-256(SHA-256(hsa3's subjectPublicKey bits) || serial))."""
    with open(pki("ca", "hsa3.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    spki = ca.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    _, s, _ = _der_tlv(spki, 0)            # SubjectPublicKeyInfo
    _, _, alg_end = _der_tlv(spki, s)      # AlgorithmIdentifier
    tag, bs, be = _der_tlv(spki, alg_end)  # BIT STRING
    assert tag == 0x03
    ikh = hashlib.sha256(spki[bs + 1:be]).digest()  # without the unused-bits octet
    n = int(serial_hex, 16)
    serial = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"v:" + hashlib.sha256(ikh + serial).hexdigest().encode()


@pytest.fixture(scope="module")
def env():
    if not os.path.exists(REV_TEST_MODULE):
        raise RuntimeError("build first: make %s" % os.path.relpath(REV_TEST_MODULE))
    front = Front()
    p = Pki(front.port)
    front.pki = p
    h = Httpd(BODY % (REV_TEST_MODULE, front.port), name="revshare",
              loglevel="warn auth_eid:debug")
    h.start()
    yield {"srv": h, "front": front, "pki": p}
    h.stop()
    h.cleanup()
    front.stop()
    shutil.rmtree(p.dir, ignore_errors=True)


def get(srv, cert):
    """A request with the card on a new connection: (status, audit record, pid)."""
    path = unique_path("/share/echo")
    c = http.client.HTTPSConnection("localhost", srv.port, context=ctx_for(cert), timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        pid = r.getheader("X-Eid-Pid")
    finally:
        c.close()
    recs = srv.wait_audit(path, 1)
    return r.status, (recs[0] if recs else {}), pid


def store(srv, op, key, val=None, ttl_ms=None):
    path = "/revtest?op=%s&key=%s" % (op, key.hex())
    if val is not None:
        path += "&val=%s&ttl_ms=%d" % (val.hex(), ttl_ms)
    c = http.client.HTTPSConnection("localhost", srv.port, timeout=30,
                                    context=ssl.create_default_context(cafile=SERVER_CA))
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    assert r.status == 200, (r.status, body)
    rc, _, rest = body.partition(b"\n")
    return rc.decode(), bytes.fromhex(rest.decode())


def test_answer_fetched_by_one_child_used_by_the_other(env, logcheck):
    srv, p, front = env["srv"], env["pki"], env["front"]
    logcheck(srv)
    srv.expect_log(r"EID05001.*client certificate refused: certificate revoked \(OCSP")
    for name, status, want in (("share-good", "V", 200), ("share-revoked", "R", 403)):
        card = p.leaf(name, status)
        hits = front.hits.get("/share", 0)
        st, rec, first = get(srv, card["cert"])
        assert st == want and rec["revocation_source"] == "ocsp", rec
        assert front.hits.get("/share", 0) == hits + 1
        # the signed response, under the documented key, for at most max-age
        rc, val = store(srv, "get", share_key(card["serial"]))
        assert rc == "ok" and val[0] == 1 and val[9] == 0x30, (rc, val[:16])
        fetched = int.from_bytes(val[1:9], "big") / 1e6
        assert abs(fetched - time.time()) < 30, fetched
        # new connections until the other child serves one
        seen = None
        for _ in range(300):
            st, rec, pid = get(srv, card["cert"])
            assert st == want, rec
            assert rec["revocation"] == ("good" if want == 200 else "revoked"), rec
            if pid != first:
                seen = rec
                break
            assert rec["revocation_source"] == "cache", rec
        assert seen is not None, "the other child never served a connection"
        assert seen["revocation_source"] == "store", seen
        # the responder was asked once for both children
        assert front.hits.get("/share", 0) == hits + 1, front.hits


def test_value_that_does_not_check_is_refused_and_fetched_again(env, logcheck):
    srv, p, front = env["srv"], env["pki"], env["front"]
    logcheck(srv)
    srv.expect_log(r"EID05132: trust profile rv-share: a shared revocation answer .*"
                   r"fails its check \(EID0510[58]",
                   r"EID05001.*client certificate refused: certificate revoked \(OCSP")
    # garbage under a card's key, before anyone asked for it
    card = p.leaf("share-garbage")
    key = share_key(card["serial"])
    assert store(srv, "set", key, b"\x01" + b"\x00" * 8 + b"garbage", 60000)[0] == "ok"
    hits = front.hits.get("/share", 0)
    st, rec, _ = get(srv, card["cert"])
    assert st == 200 and rec["revocation_source"] == "ocsp", rec
    assert front.hits.get("/share", 0) == hits + 1
    rc, val = store(srv, "get", key)  # the fresh answer replaced the garbage
    assert rc == "ok" and val[0] == 1 and val[9] == 0x30 and b"garbage" not in val, val[:16]

    # another card's SIGNED answer (a revoked one) under a good card's key:
    # authentic, but not this card's (certId): refused, asked again
    revoked, good = p.leaf("share-other-revoked", "R"), p.leaf("share-victim")
    st, rec, _ = get(srv, revoked["cert"])
    assert st == 403, rec
    rc, rval = store(srv, "get", share_key(revoked["serial"]))
    assert rc == "ok"
    assert store(srv, "set", share_key(good["serial"]), rval, 60000)[0] == "ok"
    mark = len(srv.read_error_log())
    hits = front.hits.get("/share", 0)
    st, rec, _ = get(srv, good["cert"])
    assert st == 200 and rec["revocation"] == "good", rec
    assert rec["revocation_source"] == "ocsp", rec
    assert front.hits.get("/share", 0) == hits + 1
    # a warning once per process until a shared answer checks again (this
    # child may have warned about the garbage already), else at debug
    log = srv.read_error_log()[mark:]
    assert re.search(r"EID05132: .*EID05108", log), log
