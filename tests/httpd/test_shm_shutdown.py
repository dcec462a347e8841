"""httpd with the shm session store must stop cleanly: exit status 0, no
crash, in the normal multi-process server (after a graceful restart too) and
in one process (-X, as the callgrind benchmark runs it).

Why this can break: the store's shmcb instance lives in the process pool (it
is kept across graceful restarts), and mod_socache_shmcb registers a cleanup
of its own code on that pool; mod_socache_shmcb.so is unloaded with pconf,
which httpd destroys before the process pool's cleanups run at exit, so the
cleanup jumped into unmapped memory (SIGSEGV in the parent at every stop, and
in httpd -X at its exit).  See eid_store_socache.c, pin_provider().
"""
import re

from loginkit import browser, graceful, login, make_httpd, op  # noqa: F401

LOCS = {"/app/": "EidMethods oidc\nRequire valid-user"}
CRASH = re.compile(r"Segmentation fault|exit signal|AH00052|AH00060")


def use(h, b):
    """The session works: the protected page, no redirect to the OP."""
    r = b.get(h.url("/app/echo/use"), allow_redirects=False, timeout=20)
    assert r.status_code == 200, (r.status_code, r.headers)


def crashes(h):
    return [ln for ln in h.read_error_log().splitlines() if CRASH.search(ln)]


def test_stop_after_graceful_restart_exits_cleanly(op, logcheck):  # noqa: F811
    h = make_httpd(op, LOCS, extra="EidSessionStore shm\n", name="shmstop")
    try:
        h.start()
        logcheck(h)
        b = browser()
        login(h, op, b, "/app/echo/login")
        use(h, b)
        graceful(h)
        use(h, b)  # the segment was kept: the same session
        graceful(h)
        use(h, b)
        h.stop()
        assert h.returncode == 0, "httpd exited with status %s at stop" % h.returncode
        assert crashes(h) == []
    finally:
        h.stop()
        h.cleanup()


def test_one_process_exits_cleanly(op, logcheck):  # noqa: F811
    h = make_httpd(op, LOCS, extra="EidSessionStore shm\n", name="shmstopx")
    try:
        h.start(extra_args=("-X",))
        logcheck(h)
        b = browser()
        login(h, op, b, "/app/echo/login")
        use(h, b)
        h.stop()
        assert h.returncode == 0, "httpd -X exited with status %s" % h.returncode
        assert crashes(h) == []
    finally:
        h.stop()
        h.cleanup()


def test_stop_after_a_restart_that_changed_the_size(op, logcheck):  # noqa: F811
    """A new size takes a new segment at the graceful restart; the old one
    (and its shmcb cleanup) stays in the process pool until the stop."""
    h = make_httpd(op, LOCS, extra="EidSessionStore shm:2097152\n", name="shmresize")
    try:
        h.start()
        logcheck(h)
        b = browser()
        login(h, op, b, "/app/echo/login")
        use(h, b)
        with open(h.conf) as f:
            conf = f.read()
        with open(h.conf, "w") as f:
            f.write(conf.replace("shm:2097152", "shm:4194304"))
        graceful(h)
        assert "EID06204" in h.read_error_log()
        h.stop()
        assert h.returncode == 0, "httpd exited with status %s at stop" % h.returncode
        assert crashes(h) == []
    finally:
        h.stop()
        h.cleanup()
