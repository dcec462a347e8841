"""Shared revocation answers over Redis (issue 13 + issue 11): two httpd instances
on one real redis-server (`EidSessionStore redis://...`); the OCSP responder
(OpenSSL's, behind the counting loopback front of test_revocation.py) must see ONE
request for a card used on both.  A value written into Redis by someone else
(garbage, or another card's signed answer) is refused and fetched again."""
import hashlib
import http.client
import re
import shutil
import time

import pytest

from eidtest import Httpd, unique_path
from test_redis_sessions import Redis
from test_revocation import Front, Pki, ctx_for
from test_revocation_share import share_key

PREFIX = "t-rev:"


def body(redis_port, front_port, cache):
    return """
EidSessionStore redis://127.0.0.1:%d/0 prefix=%s%s timeout=500
ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"
EidTrustIssuer rv-redis {pki}/ca/hsa3.pem loa=3 ids=hsa-id
EidRevocation rv-redis ocsp responder=http://127.0.0.1:%d/redis max-age=300
<Location /redis/>
AuthType eid
EidCertProfiles rv-redis
Require valid-user
</Location>
EidTrustIssuer rv-long {pki}/ca/hsa3.pem loa=3 ids=hsa-id
EidRevocation rv-long ocsp responder=http://127.0.0.1:%d/long max-age=3600
<Location /long/>
AuthType eid
EidCertProfiles rv-long
Require valid-user
</Location>
""" % (redis_port, PREFIX, cache, front_port, front_port)


@pytest.fixture(scope="module")
def env():
    r = Redis().start()
    front = Front()
    p = Pki(front.port)
    front.pki = p
    # one with the per-process cache in front of Redis, one without
    h1 = Httpd(body(r.port, front.port, " cache=100"), name="revredis1",
               loglevel="warn auth_eid:debug")
    h2 = Httpd(body(r.port, front.port, ""), name="revredis2", loglevel="warn auth_eid:debug")
    try:
        h1.start()
        h2.start()
        yield {"h1": h1, "h2": h2, "front": front, "pki": p, "redis": r}
    finally:
        for h in (h1, h2):
            h.stop()
            h.cleanup()
        front.stop()
        r.cleanup()
        shutil.rmtree(p.dir, ignore_errors=True)


def get(srv, cert, loc="redis"):
    path = unique_path("/%s/echo" % loc)
    c = http.client.HTTPSConnection("localhost", srv.port, context=ctx_for(cert), timeout=30)
    try:
        c.request("GET", path)
        resp = c.getresponse()
        resp.read()
    finally:
        c.close()
    recs = srv.wait_audit(path, 1)
    return resp.status, (recs[0] if recs else {})


def test_answer_fetched_by_one_server_used_by_the_other(env, logcheck):
    h1, h2, p, front, r = env["h1"], env["h2"], env["pki"], env["front"], env["redis"]
    logcheck(h1)
    logcheck(h2)
    h1.expect_log(r"EID05001.*certificate revoked \(OCSP")
    h2.expect_log(r"EID05001.*certificate revoked \(OCSP")
    for name, status, want in (("redis-good", "V", 200), ("redis-revoked", "R", 403)):
        card = p.leaf(name, status)
        hits = front.hits.get("/redis", 0)
        st, rec = get(h1, card["cert"])
        assert st == want and rec["revocation_source"] == "ocsp", rec
        # in Redis: the signed response under the prefix + "v:" + the key
        val = r.cmd("GET", PREFIX.encode() + share_key(card["serial"]))
        assert val and val[0] == 1 and val[9] == 0x30, val
        ttl = r.cmd("PTTL", PREFIX.encode() + share_key(card["serial"]))
        assert 0 < ttl <= 300000, ttl  # max-age=300 (nextUpdate is 10 min away)
        st, rec = get(h2, card["cert"])
        assert st == want, rec
        assert rec["revocation_source"] == "store", rec
        assert front.hits.get("/redis", 0) == hits + 1, front.hits


def test_value_written_by_someone_else_is_refused(env, logcheck):
    h1, h2, p, front, r = env["h1"], env["h2"], env["pki"], env["front"], env["redis"]
    logcheck(h1)
    logcheck(h2)
    for h in (h1, h2):
        h.expect_log(r"EID05132: trust profile rv-redis: a shared revocation answer .*fails "
                     r"its check", r"EID05001.*certificate revoked \(OCSP")
    # garbage
    card = p.leaf("redis-garbage")
    key = PREFIX.encode() + share_key(card["serial"])
    r.cmd("SET", key, b"\x01" + b"\x00" * 8 + b"garbage", "PX", 60000)
    hits = front.hits.get("/redis", 0)
    st, rec = get(h2, card["cert"])
    assert st == 200 and rec["revocation_source"] == "ocsp", rec
    assert front.hits.get("/redis", 0) == hits + 1
    assert b"garbage" not in r.cmd("GET", key)  # the fresh answer replaced it
    # a revoked card's signed answer under a good card's key
    revoked, good = p.leaf("redis-other-revoked", "R"), p.leaf("redis-victim")
    st, rec = get(h1, revoked["cert"])
    assert st == 403, rec
    rval = r.cmd("GET", PREFIX.encode() + share_key(revoked["serial"]))
    r.cmd("SET", PREFIX.encode() + share_key(good["serial"]), rval, "PX", 60000)
    hits = front.hits.get("/redis", 0)
    st, rec = get(h2, good["cert"])
    assert st == 200 and rec["revocation"] == "good" and rec["revocation_source"] == "ocsp", rec
    assert front.hits.get("/redis", 0) == hits + 1
    assert hashlib.sha256(r.cmd("GET", PREFIX.encode() + share_key(good["serial"]))).digest() \
        != hashlib.sha256(rval).digest()


def test_ttl_never_beyond_next_update(env, logcheck):
    """max-age=3600, the responder's nextUpdate 10 min ahead: the value lives
    until nextUpdate, not max-age."""
    h1, p, r = env["h1"], env["pki"], env["redis"]
    logcheck(h1)
    card = p.leaf("redis-long")
    st, rec = get(h1, card["cert"], "long")
    assert st == 200 and rec["revocation_source"] == "ocsp", rec
    ttl = r.cmd("PTTL", PREFIX.encode() + share_key(card["serial"]))
    assert 500000 < ttl <= 600000, ttl


def test_redis_down_is_a_miss_logged_once(env, logcheck):
    h1, h2, p, front, r = env["h1"], env["h2"], env["pki"], env["front"], env["redis"]
    logcheck(h2)
    h2.expect_log(r"EID05130: the session store \(redis\) failed to (read|write) a shared "
                  r"revocation answer", r"EID063\d\d")
    mark = len(h2.read_error_log())
    r.stop()
    try:
        for i in range(3):
            card = p.leaf("redis-down%d" % i)
            hits = front.hits.get("/redis", 0)
            st, rec = get(h2, card["cert"])
            # never a refusal because of the store: the responder answers
            assert st == 200 and rec["revocation_source"] == "ocsp", rec
            assert front.hits.get("/redis", 0) == hits + 1
    finally:
        r.start()
    log = h2.read_error_log()[mark:]
    assert len(re.findall(r"EID05130", log)) == 1, log
    # Redis back: the next shared answer is written and read again
    card = p.leaf("redis-back")
    deadline = time.time() + 10
    while True:
        st, rec = get(h2, card["cert"])
        assert st == 200, rec
        if r.cmd("GET", PREFIX.encode() + share_key(card["serial"])) or time.time() > deadline:
            break
        card = p.leaf("redis-back-%d" % int(time.time() * 1000))
        time.sleep(0.3)
    assert r.cmd("GET", PREFIX.encode() + share_key(card["serial"]))
    assert re.search(r"EID05131: the session store answers again", h2.read_error_log()[mark:])
