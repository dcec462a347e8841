"""CRLs fetched by URL (issue 13): `EidRevocation ... crl crl=http://...` (or
`crl-url=`), fetched by each child's refresh thread with the bounded HTTP client,
never by a request; CRLs made by `openssl ca -gencrl` over the test PKI's hsa3
(the Pki helper of test_revocation.py) and served by a loopback HTTP server of
this test.

- a revoked serial is refused, a good one admitted;
- the CRL replaced at the URL: the new revocation is seen within the refresh
  interval;
- the URL down at start: the fail mode applies (503) until a fetch succeeds;
- an answer over `crl-max=` is refused (and so is one not signed by the CA).
"""
import http.server
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from eidtest import Httpd, free_port, pki
from test_revocation import Pki, get


class CrlServer:
    """Loopback HTTP: files[path] = bytes (200), absent: 404.  hits[path] counted."""

    def __init__(self):
        self.files = {}
        self.hits = {}
        self.lock = threading.Lock()
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with srv.lock:
                    srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
                    body = srv.files.get(self.path)
                try:
                    if body is None:
                        self.send_response(404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "application/pkix-crl")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def put(self, path, filename):
        with open(filename, "rb") as f:
            data = f.read()
        with self.lock:
            self.files[path] = data

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


DEAD = free_port()


def body(port):
    url = "http://127.0.0.1:%d" % port
    locs = {
        "url": "crl crl=%s/hsa3.crl crl-refresh=1 max-age=1" % url,
        "late": "crl crl-url=%s/late.crl crl-refresh=1 max-age=1" % url,
        "dead": "crl crl-url=http://127.0.0.1:%d/x.crl crl-refresh=1" % DEAD,
        "big": "crl crl=%s/big.crl crl-max=1024 crl-refresh=1" % url,
        "forged": "crl crl=%s/forged.crl crl-refresh=1" % url,
    }
    conf = 'ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"\n'
    for name, rev in locs.items():
        conf += "EidTrustIssuer rv-%s {pki}/ca/hsa3.pem loa=3 ids=hsa-id\n" % name
        conf += "EidRevocation rv-%s %s\n" % (name, rev)
        conf += ("<Location /%s/>\nAuthType eid\nEidCertProfiles rv-%s\nRequire valid-user\n"
                 "</Location>\n" % (name, name))
    return conf


def wait_log(srv, pattern, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if re.search(pattern, srv.read_error_log()):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def env():
    cs = CrlServer()
    p = Pki(0)  # no OCSP here: the cards carry no AIA
    revoked = p.leaf("url-revoked", "R", aia=False)
    # 40 more revoked serials: a CRL well over 1 KiB, for crl-max=1024
    for i in range(40):
        p.set_status("7F%02X" % i, "R", "filler%d" % i)
    cs.put("/hsa3.crl", p.crl("url.crl"))
    cs.put("/big.crl", p.crl("big.crl"))
    # signed by another CA (hsa2): never taken for hsa3's profile
    forged = os.path.join(p.dir, "forged.crl")
    subprocess.run(["openssl", "ca", "-config", os.path.join(p.dir, "ca.cnf"), "-gencrl",
                    "-keyfile", pki("ca", "hsa2.key"), "-cert", pki("ca", "hsa2.pem"),
                    "-crldays", "1", "-out", forged], check=True, capture_output=True,
                   cwd=p.dir)
    cs.put("/forged.crl", forged)
    h = Httpd(body(cs.port), name="revurl", loglevel="warn auth_eid:debug")
    h.start()
    assert wait_log(h, r"EID05210: trust profile rv-url: CRL from \S+/hsa3.crl taken"), \
        h.read_error_log()
    yield {"srv": h, "cs": cs, "pki": p, "revoked": revoked}
    h.stop()
    h.cleanup()
    cs.stop()
    shutil.rmtree(p.dir, ignore_errors=True)


# Lines of the start-up fetches (every test's log check may see them late).
START = [r"EID05214: trust profile rv-(late|dead|big|forged): CRL from",
         r"EID05120: trust profile rv-(late|dead|big|forged): the CRL .*EID05213"]


def test_revoked_refused_good_admitted(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05001.*\(CRL", *START)
    good = p.leaf("url-good", aia=False)
    st, rec, _ = get(srv, "url", good["cert"])
    assert st == 200 and rec["revocation_source"] == "crl", rec
    st, rec, _ = get(srv, "url", env["revoked"]["cert"])
    assert st == 403 and rec["revocation"] == "revoked" and rec["tag"] == "EID05001", rec


def test_crl_replaced_at_the_url(env, logcheck):
    srv, p, cs = env["srv"], env["pki"], env["cs"]
    logcheck(srv)
    srv.expect_log(r"EID05001.*\(CRL", *START)
    card = p.leaf("url-later", aia=False)
    st, rec, _ = get(srv, "url", card["cert"])
    assert st == 200, rec
    time.sleep(1.1)  # a lastUpdate after the current one (second resolution)
    p.set_status(card["serial"], "R")
    cs.put("/hsa3.crl", p.crl("url2.crl"))
    t0 = time.time()
    deadline, st = t0 + 6, 200
    while st != 403 and time.time() < deadline:
        time.sleep(0.3)
        st, rec, _ = get(srv, "url", card["cert"])
    assert st == 403 and rec["revocation"] == "revoked", (rec, srv.read_error_log()[-2000:])
    assert time.time() - t0 < 4, "seen only after %.1f s" % (time.time() - t0)
    # fetched by the child's thread, not per request
    hits = cs.hits.get("/hsa3.crl", 0)
    for _ in range(5):
        get(srv, "url", card["cert"])
    assert cs.hits.get("/hsa3.crl", 0) <= hits + 3


def test_url_down_fail_mode_until_a_fetch_succeeds(env, logcheck):
    srv, p, cs = env["srv"], env["pki"], env["cs"]
    logcheck(srv)
    srv.expect_log(*START)
    log = srv.read_error_log()
    # logged at start, once, with the reason
    assert re.search(r"error.*EID05214: trust profile rv-dead: CRL from \S+ not taken: .*"
                     r"EID0360[23].*no CRL from it yet", log), log[-2000:]
    assert len(re.findall(r"error.*EID05214: trust profile rv-dead", log)) == 1, log[-2000:]
    card = p.leaf("url-down", aia=False)
    for loc in ("dead", "late"):
        st, rec, _ = get(srv, loc, card["cert"])
        assert st == 503 and rec["tag"] == "EID05213", rec
        assert rec["revocation"] == "undetermined", rec
    # the CRL appears at the URL: taken at the next refresh, the card admitted
    cs.put("/late.crl", os.path.join(p.dir, "url.crl"))
    assert wait_log(srv, r"EID05215: trust profile rv-late: CRL from \S+ fetched again"), \
        srv.read_error_log()[-2000:]
    assert wait_log(srv, r"EID05210: trust profile rv-late: CRL from \S+ taken")
    st, rec, _ = get(srv, "late", card["cert"])
    assert st == 200 and rec["revocation_source"] == "crl", rec


def test_oversized_or_forged_crl_refused(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(*START)
    assert os.path.getsize(os.path.join(p.dir, "big.crl")) > 1024
    log = srv.read_error_log()
    assert re.search(r"EID05214: trust profile rv-big: CRL from \S+ not taken: .*larger than "
                     r"1024 bytes \(EID03604\)", log), log[-2000:]
    assert re.search(r"EID05214: trust profile rv-forged: CRL from \S+ not taken: not signed "
                     r"by an issuing CA of the profile", log), log[-2000:]
    card = p.leaf("url-big", aia=False)
    for loc in ("big", "forged"):
        st, rec, _ = get(srv, loc, card["cert"])
        assert st == 503 and rec["tag"] == "EID05213", rec


def test_config_errors():
    for rev, msg in (("crl crl-url=ftp://127.0.0.1/x.crl", r"crl-url=ftp://127.0.0.1/x.crl: "),
                     ("crl crl=http://127.0.0.1/x.crl crl-max=10", r"crl-max= wants bytes"),
                     ("ocsp crl-url=http://127.0.0.1/x.crl", r"crl= without the crl method")):
        h = Httpd("EidTrustIssuer p {pki}/ca/hsa3.pem loa=3 ids=hsa-id\n# pad\n"
                  "EidRevocation p %s\n" % rev, name="revurlcfg")
        try:
            r = h.configtest()
            assert r.returncode != 0, rev
            assert re.search(r"line 3\d* of .*httpd.conf.*EidRevocation p: " + msg,
                             r.stderr.replace("\n", " ")) or re.search(msg, r.stderr), r.stderr
            assert "EidRevocation" in r.stderr and "httpd.conf" in r.stderr, r.stderr
        finally:
            h.cleanup()
