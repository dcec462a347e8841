"""Back-channel logout of sessions in use (issue 10, review): the indexes
that find a provider's sessions by sid live in the same shmcb rings as
everything else, where the oldest copy is dropped first when a ring is full.
A session in use is re-written every touch interval; its index entries must
be too, else a busy store drops the index of a long, active session and the
provider's logout no longer reaches it."""
import concurrent.futures
import time

from loginkit import (browser, follow, logged_in, op, own, raw_cookie_get,  # noqa: F401
                      session_cookie)

VICTIMS = 8


def flood(op, h, n):
    """n logins of another user: writes (sessions, markers, its index)."""
    def one(_):
        b = browser()
        r = follow(b, b.get(h.url("/app/echo/flood"), allow_redirects=False, timeout=20))
        return r.status_code
    op.admin("/admin/auto-login", {"user": "othernurse"})
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        assert set(ex.map(one, range(n))) == {200}


def test_backchannel_logout_reaches_a_session_in_use_in_a_busy_store(op, own):
    # the smallest store (32 rings), touches every 15 s (idle timeout 60 s)
    h = own("EidSessionStore shm:2097152\nEidSessionIdleTimeout 60\n")
    victims = []
    for _ in range(VICTIMS):
        b = logged_in(op, h)
        victims.append((session_cookie(b), op.sessions()[-1]["sid"]))
    start = time.time()
    # measured: a session untouched since its login survives about 650 such
    # logins in this store; 500 fill the rings without wrapping past it
    flood(op, h, 500)
    time.sleep(max(0, start + 16 - time.time()))
    alive = [v for v in victims
             if raw_cookie_get(h, "/app/echo/use", "__Host-eid-session=" + v[0]).status_code
             == 200]  # used: re-written now
    assert len(alive) >= VICTIMS // 2, len(alive)
    flood(op, h, 300)  # 800 in all: the rings wrapped past what the victims' logins wrote
    alive = [v for v in alive
             if raw_cookie_get(h, "/app/echo/use", "__Host-eid-session=" + v[0]).status_code
             == 200]
    assert alive
    for cookie, sid in alive:
        a = op.admin("/admin/backchannel", {"client": "portal", "sid": sid})
        assert a["status"] == 200, a
    still = [v for v in alive
             if raw_cookie_get(h, "/app/echo/use", "__Host-eid-session=" + v[0]).status_code
             == 200]
    assert still == [], "%d of %d sessions in use outlived their back-channel logout" % (
        len(still), len(alive))
