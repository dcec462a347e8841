"""The "shm" session store (mod_src/apache/eid_store_socache.c) in a real httpd:
event MPM with two children of 16 threads, mod_socache_shmcb, driven through the
test-only module build/mod_eid_store_test.so (tests/httpd/mod_eid_store_test.c):

    GET /store?op=get|set|add|del|touch|idx_add|idx_take&key=..&val=..&member=..&ttl_ms=..

answers "<rc>\\n" + the value (get) or the percent-encoded members, one per line
(idx_take), with the serving process in X-Store-Pid.

- a value written in one process is read in the other one;
- 32 concurrent clients race `add` on the same 2000 keys: exactly one winner per
  key, and the stored value is the winner's;
- index: take returns every member once, then nothing; concurrent takes never
  share a member; a full index (64) drops its oldest member and deletes its key;
- TTL expiry, touch, add over an expired key;
- binary keys and values (%, spaces, CR/LF, NUL, every byte), the largest value
  at the smallest size, oversized values refused;
- a graceful restart keeps the data (the segment is retained);
- configuration mistakes refused at -t.
"""
import http.client
import os
import random
import signal
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import server_fixture
from eidtest import BUILD, Httpd

TEST_MODULE = os.environ.get("EID_STORE_TEST_MODULE",
                             os.path.join(BUILD, "mod_eid_store_test.so"))
VALUE_MAX = 32768
INDEX_MAX = 64

BODY = """
LoadModule eid_store_test_module %s
EidStoreTest shm:2097152
StartServers 2
ServerLimit 2
# a worker for each of the race tests' 32 clients in each child (with the
# default 25 threads, 32 was cut to 25 and a loaded ASan run logged AH00484)
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 32
MaxSpareThreads 64
LimitRequestLine 120000
# mod_ssl is loaded (no TLS here): without a session cache it warns at each start
SSLSessionCache shmcb:{root}/ssl_scache(512000)
<Location /store>
  SetHandler eid-store-test
</Location>
"""


def make():
    if not os.path.exists(TEST_MODULE):
        raise RuntimeError("build first: make %s" % os.path.relpath(TEST_MODULE))
    return Httpd(BODY % TEST_MODULE, tls=False, name="store")


srv = server_fixture(make)


def q(b):
    """percent-encode every byte that is not plainly safe"""
    if isinstance(b, str):
        b = b.encode("utf-8")
    return urllib.parse.quote_from_bytes(b, safe="")


def path(op, key, val=None, member=None, ttl_ms=None):
    p = "/store?op=%s&key=%s" % (op, q(key))
    if val is not None:
        p += "&val=" + q(val)
    if member is not None:
        p += "&member=" + q(member)
    if ttl_ms is not None:
        p += "&ttl_ms=%d" % ttl_ms
    return p


class Client:
    """One keep-alive connection (or a new one per request with fresh=True)."""

    def __init__(self, srv, fresh=False):
        self.srv = srv
        self.fresh = fresh
        self.conn = None

    def call(self, op, key, **kw):
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
            try:
                hdrs = {"Connection": "close"} if self.fresh else {}
                self.conn.request("GET", path(op, key, **kw), headers=hdrs)
                r = self.conn.getresponse()
                body = r.read()
                pid = r.getheader("X-Store-Pid")
                if self.fresh or r.will_close:
                    self.conn.close()
                    self.conn = None
                assert r.status == 200, (r.status, body)
                rc, _, rest = body.partition(b"\n")
                return rc.decode(), rest, pid
            except (ConnectionError, http.client.HTTPException):
                # a keep-alive connection the server closed: open a new one
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise

    def close(self):
        if self.conn:
            self.conn.close()


def members_of(rest):
    return [urllib.parse.unquote_to_bytes(m) for m in rest.split(b"\n") if m]


def test_value_crosses_processes(srv, logcheck):
    logcheck(srv)
    writer = Client(srv, fresh=True)
    reader = Client(srv, fresh=True)
    crossed = 0
    pids = set()
    for i in range(40):
        key = "s:cross-%d-%d" % (os.getpid(), i)
        rc, _, wpid = writer.call("set", key, val="value-%d" % i)
        assert rc == "ok"
        pids.add(wpid)
        # read on new connections until a process other than the writer answers
        for _ in range(60):
            rc, val, rpid = reader.call("get", key)
            assert (rc, val) == ("ok", b"value-%d" % i)
            pids.add(rpid)
            if rpid != wpid:
                crossed += 1
                break
    assert len(pids) == 2, "both children must have served: %r" % pids
    assert crossed >= 30, crossed


def test_add_race_one_winner_per_key(srv, logcheck):
    logcheck(srv)
    clients, nkeys = 32, 2000
    tag = "%d-%d" % (os.getpid(), random.getrandbits(32))
    keys = ["u:race-%s-%d" % (tag, k) for k in range(nkeys)]
    barrier = threading.Barrier(clients)

    def run(cid):
        c = Client(srv)
        order = list(range(nkeys))
        random.Random(cid).shuffle(order)
        won, lost, other, pids = [], 0, [], set()
        barrier.wait()
        for k in order:
            rc, _, pid = c.call("add", keys[k], val="client-%d" % cid, ttl_ms=600000)
            pids.add(pid)
            if rc == "ok":
                won.append(k)
            elif rc == "exists":
                lost += 1
            else:
                other.append(rc)
        c.close()
        return won, lost, other, pids

    with ThreadPoolExecutor(clients) as ex:
        results = list(ex.map(run, range(clients)))
    winners = {}
    pids = set()
    for cid, (won, lost, other, p) in enumerate(results):
        assert other == []
        pids |= p
        for k in won:
            assert k not in winners, "key %d won by %d and %d" % (k, winners[k], cid)
            winners[k] = cid
    assert len(winners) == nkeys
    assert sum(r[1] for r in results) == nkeys * (clients - 1)
    assert len(pids) == 2, pids
    # the stored value is the winner's
    c = Client(srv)
    for k in range(0, nkeys, 7):
        rc, val, _ = c.call("get", keys[k])
        assert (rc, val) == ("ok", b"client-%d" % winners[k])
    c.close()


def test_index_take(srv, logcheck):
    logcheck(srv)
    idx = "i:sid:take-%d" % os.getpid()
    members = [("s:m%02d" % i).encode() for i in range(20)]
    with ThreadPoolExecutor(8) as ex:
        rcs = list(ex.map(lambda m: Client(srv, fresh=True).call("idx_add", idx, member=m)[0],
                          members))
    assert rcs == ["ok"] * 20
    c = Client(srv, fresh=True)
    assert c.call("idx_add", idx, member=members[3])[0] == "ok"  # duplicate: once
    rc, rest, _ = c.call("idx_take", idx)
    assert rc == "ok"
    got = members_of(rest)
    assert sorted(got) == sorted(members)
    rc, rest, _ = c.call("idx_take", idx)
    assert (rc, rest) == ("notfound", b"")


def test_index_concurrent_takes_share_nothing(srv, logcheck):
    logcheck(srv)
    c = Client(srv)
    for round_ in range(20):
        idx = "i:sub:race-%d-%d" % (os.getpid(), round_)
        for i in range(10):
            assert c.call("idx_add", idx, member="s:r%d" % i)[0] == "ok"
        with ThreadPoolExecutor(4) as ex:
            outs = list(ex.map(lambda _: Client(srv, fresh=True).call("idx_take", idx), range(4)))
        oks = [members_of(rest) for rc, rest, _ in outs if rc == "ok"]
        assert len(oks) == 1, outs
        assert sorted(oks[0]) == sorted(b"s:r%d" % i for i in range(10))
        assert all(rc in ("ok", "notfound") for rc, _, _ in outs)
    c.close()


def test_index_overflow_ends_oldest_session(srv, logcheck):
    logcheck(srv)
    c = Client(srv)
    idx = "i:sub:full-%d" % os.getpid()
    sess = ["s:full-%d-%02d" % (os.getpid(), i) for i in range(INDEX_MAX + 1)]
    for s in sess[:INDEX_MAX]:
        assert c.call("set", s, val="sess")[0] == "ok"
        assert c.call("idx_add", idx, member=s)[0] == "ok"
    assert c.call("get", sess[0])[0] == "ok"
    assert c.call("set", sess[-1], val="sess")[0] == "ok"
    assert c.call("idx_add", idx, member=sess[-1])[0] == "ok"
    # the oldest member left the index and its session ended
    assert c.call("get", sess[0])[:2] == ("notfound", b"")
    assert c.call("get", sess[1])[:2] == ("ok", b"sess")
    rc, rest, _ = c.call("idx_take", idx)
    assert rc == "ok"
    got = members_of(rest)
    assert len(got) == INDEX_MAX
    assert got[0] == sess[1].encode() and got[-1] == sess[-1].encode()
    c.close()


def test_ttl_touch_expiry(srv, logcheck):
    logcheck(srv)
    c = Client(srv, fresh=True)
    k1, k2, k3 = ("s:ttl-%d-%d" % (os.getpid(), i) for i in range(3))
    assert c.call("set", k1, val="a", ttl_ms=1000)[0] == "ok"
    assert c.call("add", k2, val="b", ttl_ms=1000)[0] == "ok"
    assert c.call("set", k3, val="c", ttl_ms=1000)[0] == "ok"
    assert c.call("get", k1)[:2] == ("ok", b"a")
    time.sleep(0.6)
    assert c.call("touch", k3, ttl_ms=2000)[0] == "ok"
    time.sleep(0.7)
    # k1, k2 past 1 s: gone for get, touch, del; add may take the key again
    assert c.call("get", k1)[:2] == ("notfound", b"")
    assert c.call("touch", k1, ttl_ms=1000)[0] == "notfound"
    assert c.call("del", k1)[0] == "notfound"
    assert c.call("add", k2, val="again", ttl_ms=1000)[0] == "ok"
    assert c.call("get", k2)[:2] == ("ok", b"again")
    # k3 was touched at 0.6 s for 2 s more
    assert c.call("get", k3)[:2] == ("ok", b"c")
    assert c.call("del", k3)[0] == "ok"
    assert c.call("del", k3)[0] == "notfound"
    assert c.call("get", k3)[:2] == ("notfound", b"")


def test_binary_keys_and_values(srv, logcheck):
    logcheck(srv)
    c = Client(srv, fresh=True)
    every = bytes(range(256))
    keys = [b"s:% 20\r\n\x00x", b"s:% 20\r\n\x00y", b"\x00", b"a b+c%d", bytes(range(1, 256))]
    for i, k in enumerate(keys):
        v = every + b"-%d" % i
        assert c.call("set", k, val=v)[0] == "ok"
    for i, k in enumerate(keys):
        assert c.call("get", k)[:2] == ("ok", every + b"-%d" % i)
    # keys differing only after a NUL byte are different keys
    assert c.call("get", b"s:% 20\r\n\x00")[0] == "notfound"
    # members with CR/LF and spaces come back intact
    idx = b"i:sid:\x00bin-%d" % os.getpid()
    m = [b"s:a b\r\nc", b"s:%00x", b"s:\xff\xfe"]
    for x in m:
        assert c.call("idx_add", idx, member=x)[0] == "ok"
    rc, rest, _ = c.call("idx_take", idx)
    assert rc == "ok" and members_of(rest) == m
    # an empty value is a value
    assert c.call("set", b"s:empty", val=b"")[0] == "ok"
    assert c.call("get", b"s:empty")[:2] == ("ok", b"")


def test_limits_refused_not_crashed(srv, logcheck):
    logcheck(srv)
    c = Client(srv, fresh=True)
    big = b"v" * VALUE_MAX
    assert c.call("set", "s:big", val=big)[0] == "ok"
    assert c.call("get", "s:big")[:2] == ("ok", big)
    assert c.call("touch", "s:big", ttl_ms=5000)[0] == "ok"
    assert c.call("get", "s:big")[:2] == ("ok", big)
    assert c.call("set", "s:big2", val=big + b"v")[0] == "error"
    assert c.call("set", b"k" * 513, val=b"x")[0] == "error"
    assert c.call("set", b"", val=b"x")[0] == "error"
    assert c.call("set", "s:x", val=b"x", ttl_ms=0)[0] == "error"
    assert c.call("set", "s:x", ttl_ms=1000)[0] == "ok"  # no val: empty value
    assert c.call("idx_add", "i:sid:x", member=b"a\x00b")[0] == "error"
    assert c.call("idx_add", "i:sid:x")[0] == "error"  # no member


def test_capacity_spreads_over_subcaches(srv, logcheck):
    """shmcb picks a sub-cache by the id's first byte; every key starts with the
    same namespace letters, so the store prefixes a hash.  900 values of 1000
    bytes (43% of the 2 MiB segment) must all stay: in one sub-cache (62 KB)
    only about 60 would."""
    logcheck(srv)
    c = Client(srv)
    keys = ["s:fill-%d-%04d" % (os.getpid(), i) for i in range(900)]
    for i, k in enumerate(keys):
        assert c.call("set", k, val=b"%04d" % i + b"x" * 996, ttl_ms=600000)[0] == "ok"
    missing = [k for i, k in enumerate(keys)
               if c.call("get", k)[:2] != ("ok", b"%04d" % i + b"x" * 996)]
    assert missing == []
    for k in keys:
        assert c.call("del", k)[0] == "ok"
    c.close()


def test_graceful_restart_keeps_data(srv, logcheck):
    logcheck(srv)
    c = Client(srv, fresh=True)
    key = "s:graceful-%d" % os.getpid()
    assert c.call("set", key, val="kept", ttl_ms=600000)[0] == "ok"
    old = set()
    for _ in range(400):
        old.add(c.call("get", key)[2])
        if len(old) == 2:
            break
    assert len(old) == 2, old
    restarts = srv.read_error_log().count("AH00493")
    srv.proc.send_signal(signal.SIGUSR1)
    deadline = time.time() + 20
    while srv.read_error_log().count("AH00493") == restarts and time.time() < deadline:
        time.sleep(0.05)
    seen_new = 0
    while time.time() < deadline and seen_new < 10:
        try:
            rc, val, pid = c.call("get", key)
        except OSError:
            time.sleep(0.1)
            continue
        if pid not in old:
            # a child of the new generation (new pool, module reloaded) reads it
            assert (rc, val) == ("ok", b"kept")
            seen_new += 1
    assert seen_new >= 10, "no new generation answered"
    # and the new generation still races correctly
    k = "u:after-graceful-%d" % os.getpid()
    with ThreadPoolExecutor(8) as ex:
        rcs = list(ex.map(lambda i: Client(srv, fresh=True).call("add", k, val="%d" % i)[0],
                          range(16)))
    assert sorted(rcs) == ["exists"] * 15 + ["ok"]


@pytest.mark.parametrize("mech", ["flock:{root}", "pthread", "sysvsem"])
def test_add_race_other_mutex_mechanisms(mech):
    """`Mutex <mech> eid-store`: with flock each child must reopen the lock file
    (child_init), or the children would not exclude each other at all."""
    h = Httpd((BODY % TEST_MODULE) + "Mutex %s eid-store\n" % mech, tls=False, name="store-mx")
    try:
        with h:
            # "slow:" keys: the test module's add waits 20 ms inside the lock
            # between read and write (EID_STORE_SOCACHE_TEST_SEAM)
            clients, nkeys = 32, 40
            keys = ["slow:mx-%d" % k for k in range(nkeys)]

            def run(cid):
                c = Client(h)
                order = list(range(nkeys))
                random.Random(cid).shuffle(order)
                out = [(k, c.call("add", keys[k], val="%d" % cid)[0]) for k in order]
                c.close()
                return out

            with ThreadPoolExecutor(clients) as ex:
                results = [r for rs in ex.map(run, range(clients)) for r in rs]
            assert sorted(set(rc for _, rc in results)) == ["exists", "ok"]
            wins = {}
            for k, rc in results:
                if rc == "ok":
                    wins[k] = wins.get(k, 0) + 1
            assert wins == {k: 1 for k in range(nkeys)}
            assert h.unexpected_log_lines() == []
    finally:
        h.cleanup()


@pytest.mark.parametrize("arg,msg", [
    ("shm:100", "out of range"),
    ("shm:68000000", "out of range"),
    ("shm:12x", "whole number"),
    ("shm:", "whole number"),
    ("redis://x", "expected shm"),
    ("shmx", "expected shm"),
])
def test_config_refused(arg, msg):
    h = Httpd("LoadModule eid_store_test_module %s\nEidStoreTest %s\n" % (TEST_MODULE, arg),
              tls=False, name="store-conf")
    try:
        r = h.configtest()
        assert r.returncode != 0
        assert "line" in r.stderr and "httpd.conf" in r.stderr
        assert msg in r.stderr, r.stderr
    finally:
        h.cleanup()


def test_config_needs_shmcb():
    h = Httpd("LoadModule eid_store_test_module %s\nEidStoreTest shm\n" % TEST_MODULE,
              tls=False, name="store-conf")
    try:
        with open(h.conf) as f:
            conf = f.read()
        with open(h.conf, "w") as f:
            f.write("\n".join(l for l in conf.splitlines() if "socache_shmcb" not in l))
        r = h.configtest()
        assert r.returncode != 0
        assert "mod_socache_shmcb" in r.stderr, r.stderr
    finally:
        h.cleanup()
