"""Attacks on sessions kept per keep-alive connection with the Redis store
(the deletion generation of eid_store_redis_cache.c): two real httpd on one
real redis-server, one hand-driven keep-alive connection.  Every ending must
reach the kept connection within 100 ms; every death of the invalidation
channel must make the kept session be read again; steady state sends no
command to Redis.

How "read again" is seen: a value swapped under the session's key in Redis
without an ending (no marker) is not noticed by a kept copy (200) but is by a
read (the AEAD refuses it: 302)."""
import signal
import time

import pytest

from loginkit import browser, login, op, session_cookie  # noqa: F401
from test_redis_sessions import (KeepAlive, Redis, as_primary, logout_form, redis,  # noqa: F401
                                 make_httpd, redis_calls, status, LOC)

PFX = "t-httpd:"


def two_on_redis(op, redis, *servers):
    """httpd servers on one Redis, started; servers: (name, make_httpd keywords);
    stopped when the generator is closed."""
    store = ("EidSessionStore redis://127.0.0.1:%d/0 prefix=%s cache=1000 timeout=500 "
             "breaker=3/200\n" % (redis.port, PFX))
    hs = [make_httpd(op, LOC, extra=store, name=name, **kw) for name, kw in servers]
    for h in hs:
        h.start()
    yield hs
    for h in hs:
        h.stop()
        h.cleanup()


@pytest.fixture(scope="module")
def pair(op, redis):
    yield from two_on_redis(op, redis, ("rk1", {}), ("rk2", {}))


def new_session(op, pair, redis):
    """A login on h1; (browser, cookie, the session's Redis key)."""
    h1, h2 = pair
    as_primary(op, h1, h2)
    before = set(redis.cmd("KEYS", PFX + "s:*"))
    for attempt in range(6):
        b = browser()
        try:
            login(h1, op, b, "/app/echo/x")
            break
        except AssertionError:
            # after a Redis restart the pooled connections of h1's children fail
            # once each (503, the breaker opens for 200 ms): not what is tested
            if attempt == 5:
                raise
            time.sleep(0.5)
    new = set(redis.cmd("KEYS", PFX + "s:*")) - before
    assert len(new) == 1
    return b, session_cookie(b), new.pop()


def kept_on_h2(pair, redis, cookie, key):
    """A keep-alive connection to h2 that has kept the session (proved: a
    tampered value in Redis is not noticed by it); the value restored."""
    ka = KeepAlive(pair[1], cookie)
    for _ in range(3):
        assert ka.get() == 200
    good = redis.cmd("GET", key)
    tamper(redis, key, good)
    assert status(pair[1], cookie).status_code == 302  # a new connection reads it
    assert ka.get() == 200  # the kept copy
    redis.cmd("SET", key, good, "KEEPTTL")
    time.sleep(0.05)
    return ka, good


def tamper(redis, key, good):
    redis.cmd("SET", key, good[:-1] + bytes([good[-1] ^ 1]), "KEEPTTL")
    time.sleep(0.05)


def test_no_redis_command_per_kept_request(op, pair, redis):
    b, cookie, key = new_session(op, pair, redis)
    ka, good = kept_on_h2(pair, redis, cookie, key)
    try:
        n = redis_calls(redis)
        for _ in range(90):  # MaxKeepAliveRequests 100
            assert ka.get() == 200
        assert redis_calls(redis) == n
    finally:
        ka.close()


def test_marker_before_delete_ordering(op, pair, redis):
    """The ending's marker reaches h2 long before its delete (a slow writer,
    2 s): h2 re-reads the still present session after the marker and keeps
    it; the delete then still reaches the kept connection within 100 ms."""
    b, cookie, key = new_session(op, pair, redis)
    ka, good = kept_on_h2(pair, redis, cookie, key)
    try:
        skey = key[len(PFX):]
        redis.cmd("SET", PFX.encode() + b"x:" + skey, "1", "PX", 60000)
        time.sleep(0.05)
        for _ in range(3):
            assert ka.get() == 200  # still in Redis: read again, kept again
        time.sleep(2)
        redis.cmd("DEL", key)
        took = ka.refused_after(time.monotonic())
        assert took < 0.1, took
    finally:
        ka.close()


@pytest.mark.xfail(strict=True, reason="the marker's delete is awaited 10 s only "
                   "(pend_window of eid_store_redis_cache.c): an operator's manual ending "
                   "whose DEL follows the SET x: later than that is not counted, the kept "
                   "connection uses the session until its next touch (<= 60 s); docs/redis.md "
                   "now says to send both at once (MULTI)")
def test_manual_ending_with_a_slow_delete(op, pair, redis):
    """docs/redis.md's manual ending, typed by hand: SET x:<key>, then, 11 s
    later, DEL <key>."""
    b, cookie, key = new_session(op, pair, redis)
    ka, good = kept_on_h2(pair, redis, cookie, key)
    try:
        skey = key[len(PFX):]
        redis.cmd("SET", PFX.encode() + b"x:" + skey, "1", "PX", 600000)
        time.sleep(0.05)
        assert ka.get() == 200  # re-read: the session is still in Redis
        for _ in range(11):  # under KeepAliveTimeout: the connection stays
            time.sleep(1)
            assert ka.get() == 200
        redis.cmd("DEL", key)
        assert status(pair[1], cookie).status_code == 302
        took = ka.refused_after(time.monotonic(), limit=1.0)
        assert took < 0.1, took
    finally:
        ka.close()


def test_manual_ending_in_one_multi(op, pair, redis):
    """The documented manual ending sent at once (MULTI/EXEC)."""
    b, cookie, key = new_session(op, pair, redis)
    ka, good = kept_on_h2(pair, redis, cookie, key)
    try:
        skey = key[len(PFX):].decode()
        out = redis.cli("--no-raw", "EVAL",
                        "redis.call('SET', KEYS[1], '1', 'PX', 600000) "
                        "return redis.call('DEL', KEYS[2])", "2",
                        PFX + "x:" + skey, key.decode())
        assert "1" in out, out
        took = ka.refused_after(time.monotonic())
        assert took < 0.1, took
    finally:
        ka.close()


def test_index_eviction_ends_kept_session(op, pair, redis):
    """The user's 65th session evicts the oldest member of its index: the
    kept connection of that member (made the oldest by hand) is refused
    within 100 ms."""
    b, cookie, key = new_session(op, pair, redis)
    skey = key[len(PFX):]
    ka, good = kept_on_h2(pair, redis, cookie, key)
    try:
        idx = [i for i in redis.cmd("KEYS", PFX + "i:sub:*")
               if redis.cmd("ZSCORE", i, skey) is not None]
        assert len(idx) == 1, idx
        idx = idx[0]
        redis.cmd("ZADD", idx, "XX", "0", skey)
        n = redis.cmd("ZCARD", idx)
        for i in range(64 - n):
            redis.cmd("ZADD", idx, str(100000 + i), "fake-%d" % i)
        assert redis.cmd("ZCARD", idx) == 64
        for _ in range(3):
            assert ka.get() == 200
        b2 = browser()
        t0 = time.monotonic()
        login(pair[0], op, b2, "/app/echo/x")
        assert redis.cmd("ZSCORE", idx, skey) is None
        assert redis.cmd("EXISTS", key) == 0
        took = ka.refused_after(time.monotonic())
        assert took < 0.1, (took, time.monotonic() - t0)
    finally:
        ka.close()


def channel_death_reread(op, pair, redis, kill, settle=0.0):
    """The session kept on h2 with a tampered value under its key (no
    ending); `kill` the channel: the kept connection must read Redis again
    (302) from its next request after the channel died."""
    b, cookie, key = new_session(op, pair, redis)
    ka, good = kept_on_h2(pair, redis, cookie, key)
    try:
        tamper(redis, key, good)
        assert ka.get() == 200  # kept: Redis not asked
        kill()
        time.sleep(settle)
        assert ka.get() == 302, "kept session used after the invalidation channel died"
        time.sleep(0.6)  # the channel up again before the next test keeps a session
    finally:
        ka.close()
        if redis.proc:
            redis.cmd("SET", key, good, "KEEPTTL")


def test_channel_client_kill(op, pair, redis):
    channel_death_reread(op, pair, redis,
                         lambda: redis.cmd("CLIENT", "KILL", "TYPE", "pubsub"), 0.1)


def test_channel_sigstop(op, pair, redis):
    def stop():
        redis.proc.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        redis.proc.send_signal(signal.SIGCONT)
    channel_death_reread(op, pair, redis, stop, 0.0)


def test_channel_restart(op, pair, redis):
    def restart():
        redis.stop()
        redis.start()
    channel_death_reread(op, pair, redis, restart, 0.5)
    time.sleep(1.5)  # the circuit breakers close again (for the next test's login)


def test_channel_acl_resetchannels(op, pair, redis):
    def acl():
        redis.cmd("ACL", "SETUSER", "default", "resetchannels")
        time.sleep(0.2)
        redis.cmd("ACL", "SETUSER", "default", "allchannels")
    channel_death_reread(op, pair, redis, acl, 0.5)


def test_channel_output_buffer_limit(op, pair, redis):
    """CONFIG SET a pubsub output buffer limit the next message exceeds:
    Redis drops the subscriber."""
    b, cookie, key = new_session(op, pair, redis)
    ka, good = kept_on_h2(pair, redis, cookie, key)
    old = redis.cli("CONFIG", "GET", "client-output-buffer-limit")
    try:
        tamper(redis, key, good)
        assert ka.get() == 200
        redis.cmd("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1 1 1")
        # one invalidation message of 3000 keys (BCAST: one per event loop
        # turn), well over the 16 KiB a client's fixed buffer holds
        redis.cmd("EVAL", "for i = 1, 3000 do redis.call('SET', ARGV[1] .. i, '1', 'PX', "
                  "60000) end return 1", "0", PFX + "junk-" + "j" * 40 + "-")
        time.sleep(0.1)
        assert "EID06330" in open(pair[1].error_log, errors="replace").read()
        assert ka.get() == 302
    finally:
        redis.cmd("CONFIG", "SET", "client-output-buffer-limit",
                  "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
        ka.close()
        redis.cmd("SET", key, good, "KEEPTTL")
        time.sleep(0.6)  # the channel up again before the next test keeps a session


def test_flushdb(op, pair, redis):
    b, cookie, key = new_session(op, pair, redis)
    ka, good = kept_on_h2(pair, redis, cookie, key)
    try:
        redis.cmd("FLUSHDB")
        took = ka.refused_after(time.monotonic())
        assert took < 0.1, took
    finally:
        ka.close()


@pytest.mark.xfail(strict=True, reason="Redis 7 sends no invalidation at SWAPDB (nor a "
                   "flush message): nothing tells the processes that every key of the database "
                   "changed; documented in docs/redis.md (never SWAPDB the store's database "
                   "under running servers)")
def test_swapdb(op, pair, redis):
    """SWAPDB 0 1 empties the store's database without deleting a key."""
    b, cookie, key = new_session(op, pair, redis)
    ka, good = kept_on_h2(pair, redis, cookie, key)
    try:
        redis.cmd("SWAPDB", "0", "1")
        time.sleep(0.05)
        assert status(pair[1], cookie).status_code == 302
        took = ka.refused_after(time.monotonic(), limit=1.0)
        assert took < 0.1, took
    finally:
        redis.cmd("SWAPDB", "0", "1")
        ka.close()


@pytest.fixture(scope="module")
def rot_pair(op, redis):
    """A key rotation under way on several servers, as docs/login.md's
    procedure leaves it while the servers are restarted one by one (the new
    key B already second everywhere, now swapped to first on h1 only): h1
    seals with B and still opens A, h2 seals with A and already opens B."""
    from loginkit import KEY_A, KEY_B
    yield from two_on_redis(op, redis, ("rot1", {"keys": (KEY_B, KEY_A)}),
                            ("rot2", {"keys": (KEY_A, KEY_B)}))


def test_logout_on_kept_connection_after_another_server_resealed(op, rot_pair, redis):
    """The session is kept on h2 under its store key of key A; h1 uses it
    once and re-seals it under key B (new store key; the old one deleted,
    no ending).  The user logs out over h2's kept connection: the session
    must be ended everywhere - h1 must no longer admit the cookie."""
    import re
    h1, h2 = rot_pair
    as_primary(op, h2, h1)
    before = set(redis.cmd("KEYS", PFX + "s:*"))
    b = browser()
    login(h2, op, b, "/app/echo/x")
    cookie = session_cookie(b)
    ka = KeepAlive(h2, cookie)
    try:
        for _ in range(3):
            assert ka.get() == 200
        okey = (set(redis.cmd("KEYS", PFX + "s:*")) - before).pop()
        assert status(h1, cookie).status_code == 200  # re-sealed under B by h1
        assert redis.cmd("EXISTS", okey) == 0
        assert ka.get() == 200
        ka.c.request("GET", "/.eid/logout", headers={"Cookie": "__Host-eid-session=" + cookie,
                                                     "Accept": "text/html"})
        r = ka.c.getresponse()
        page = r.read().decode()
        csrf = re.search(r'name="csrf" value="([A-Za-z0-9_-]{43})"', page).group(1)
        ka.c.request("POST", "/.eid/logout", body="csrf=" + csrf,
                     headers={"Cookie": "__Host-eid-session=" + cookie,
                              "Content-Type": "application/x-www-form-urlencoded",
                              "Accept": "text/html"})
        r = ka.c.getresponse()
        r.read()
        assert r.status == 303, r.status
        time.sleep(0.1)
        assert status(h1, cookie).status_code == 302, "logged out on h2, still admitted on h1"
        assert status(h2, cookie).status_code == 302
    finally:
        ka.close()
