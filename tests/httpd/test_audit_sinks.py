"""Audit records through a piped logger, and with pseudonymisation off."""
import json
import os
import time

import requests

from eidtest import TRUST_PROFILES, Httpd, manifest, pki, user_cert

CA = pki("ca", "server-ca.pem")


def poll_lines(path, n, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            lines = open(path, encoding="utf-8").read().splitlines()
            if len(lines) >= n:
                return [json.loads(x) for x in lines]
        time.sleep(0.05)
    raise AssertionError("no %d audit lines in %s" % (n, path))


def test_piped_logger_and_clear_pnr(logcheck):
    body = TRUST_PROFILES + """
EidAuditLog "|/bin/sh -c 'cat >> {root}/piped.log'"
EidAuditPseudonymise off
<Location /p/>
AuthType eid
Require eid-loa 3
</Location>
"""
    h = Httpd(body, name="pipe")
    h.start()
    try:
        logcheck(h)
        h.expect_log(r"AH01630")
        cit = manifest()["citizen"]
        assert requests.get(h.url("/p/"), cert=user_cert("citizen"), verify=CA,
                            timeout=20).status_code == 404  # admitted; no such file
        assert requests.get(h.url("/p/"), cert=user_cert("nurse-kommun-reserve"), verify=CA,
                            timeout=20).status_code == 403
        recs = poll_lines(os.path.join(h.root, "piped.log"), 2)
        assert recs[0]["decision"] == "allow" and recs[0]["status"] == 404
        assert recs[0]["pnr"] == cit["pnr"]  # pseudonymisation turned off on purpose
        assert "pnr_pseudonym" not in recs[0]
        assert recs[1]["decision"] == "deny" and recs[1]["loa"] == 2
        assert not os.path.exists(h.audit_log) or os.path.getsize(h.audit_log) == 0
    finally:
        h.stop()
        h.cleanup()


BATCHED = TRUST_PROFILES + """
EidAuditLog %s flush=%d
<Location /p/>
AuthType eid
Require eid-loa 3
</Location>
"""


def _lines(path):
    if not os.path.exists(path):
        return []
    return open(path, encoding="utf-8").read().splitlines()


def test_batched_records_arrive_late_but_whole(logcheck):
    """flush=300: records are held by the child's writer, then written
    together: none is lost, each line is whole JSON, and none comes before the
    batch window has passed nor long after it."""
    h = Httpd(BATCHED % ("{root}/batched.log", 300), name="batch")
    h.start()
    try:
        logcheck(h)
        path = os.path.join(h.root, "batched.log")
        s = requests.Session()
        s.verify = CA
        s.trust_env = False
        s.cert = user_cert("citizen")
        t0 = time.time()
        for i in range(40):
            assert s.get(h.url("/p/b%d" % i), timeout=20).status_code == 404
        sent = time.time()
        if sent - t0 < 0.25:  # still inside the first batch's window
            assert len(_lines(path)) < 40
        recs = poll_lines(path, 40, timeout=5)
        assert time.time() - sent < 2.5
        assert sorted(r["resource"] for r in recs) == sorted("/p/b%d" % i for i in range(40))
        assert all(r["decision"] == "allow" for r in recs)
    finally:
        h.stop()
        h.cleanup()


def test_batched_records_written_when_the_server_stops(logcheck):
    """flush=1000 and a stop right after the requests: the children write
    what they hold before they exit."""
    h = Httpd(BATCHED % ("{root}/batched.log", 1000), name="batchstop")
    h.start()
    try:
        logcheck(h)
        s = requests.Session()
        s.verify = CA
        s.trust_env = False
        s.cert = user_cert("citizen")
        for i in range(25):
            assert s.get(h.url("/p/s%d" % i), timeout=20).status_code == 404
        s.close()
        t0 = time.time()
        h.stop()
        took = time.time() - t0
        path = os.path.join(h.root, "batched.log")
        recs = [json.loads(x) for x in _lines(path)]
        assert sorted(r["resource"] for r in recs) == sorted("/p/s%d" % i for i in range(25)), (
            "stop took %.1f s; %d records then, %d a second later; error log:\n%s"
            % (took, len(recs), (time.sleep(1), len(_lines(path)))[1],
               h.read_error_log()[-4000:]))
    finally:
        h.stop()
        h.cleanup()


def test_batched_pipe_lines_never_interleave(logcheck):
    """A piped logger with batches: two children, many threads, records larger
    than PIPE_BUF in sum - every line arrives whole (writes to the pipe are cut
    at line ends, at most PIPE_BUF bytes)."""
    import concurrent.futures
    h = Httpd(BATCHED % ("\"|/bin/sh -c 'cat >> {root}/piped.log'\"", 20), name="batchpipe")
    h.start()
    try:
        logcheck(h)
        h.expect_log(r"AH01630")

        def worker(k):
            s = requests.Session()
            s.verify = CA
            s.trust_env = False
            s.cert = user_cert("citizen")
            for i in range(25):
                # a long path: ~1 KB records, several per PIPE_BUF
                assert s.get(h.url("/p/%d-%d-%s" % (k, i, "x" * 600)),
                             timeout=20).status_code == 404
            s.close()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(worker, range(8)))
        recs = poll_lines(os.path.join(h.root, "piped.log"), 200, timeout=10)
        assert len(recs) == 200  # json.loads of each line passed: none torn
        assert len({r["request_id"] for r in recs}) == 200
    finally:
        h.stop()
        h.cleanup()
