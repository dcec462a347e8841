"""The idle timeout of a login session (issue 10, review): a session in
continuous use never reaches its idle timeout, also at the shortest one the
directive allows (its last use is written often enough for the timeout)."""
import time

from loginkit import logged_in, op, own, raw_cookie_get, session_cookie  # noqa: F401


def test_session_in_use_outlives_the_shortest_idle_timeout(op, own):
    h = own("EidSessionIdleTimeout 60\n")
    b = logged_in(op, h)
    cookie = session_cookie(b)
    start = time.time()
    seen = []
    # a request every 5 s for 75 s: never idle for more than 5 s
    while time.time() - start < 75:
        r = raw_cookie_get(h, "/app/echo/busy", "__Host-eid-session=" + cookie)
        seen.append((round(time.time() - start), r.status_code))
        assert r.status_code == 200, seen
        time.sleep(5)
