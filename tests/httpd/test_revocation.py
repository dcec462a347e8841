"""Revocation of client certificates end to end (issue 13): real httpd + mod_ssl,
certificates issued at test time by the test PKI's SITHS-style HSA-ID CA (hsa3),
OpenSSL's own OCSP responder over that CA's database, and CRLs made by
`openssl ca -gencrl`.

The responder is `openssl ocsp -index ... -reqin -respout`, run once per request
behind a small HTTP front in this test bound to 127.0.0.1: `openssl ocsp -port`
listens on every interface, and these tests never listen beyond loopback.  Each
openssl process is waited for before its answer is sent.

The answer cache is per process and keyed by issuer key and serial (by content,
across profiles), so every test uses certificates of its own.
"""
import http.client
import http.server
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import server_fixture
from eidtest import BUILD, Httpd, free_port, manifest, pki, unique_path

MKCERT = os.path.join(BUILD, "eid-mkcert")
NURSE_HSA = manifest()["nurse-kommun"]["hsa_id"]
SERVER_CA = pki("ca", "server-ca.pem")
_serial = [0x5A00]


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def aia_ocsp_hex(url):
    """extnValue of authorityInfoAccess with one OCSP URI."""
    uri = url.encode()
    gn = b"\x86" + der_len(len(uri)) + uri
    oid = bytes.fromhex("06082b06010505073001")  # id-ad-ocsp
    ad = b"\x30" + der_len(len(oid) + len(gn)) + oid + gn
    return (b"\x30" + der_len(len(ad)) + ad).hex()


class Pki:
    """Leaves of hsa3 made here, its OCSP database (index.txt) and CRLs."""

    def __init__(self, front_port):
        self.dir = tempfile.mkdtemp(prefix="eid-rev-")
        os.chmod(self.dir, 0o755)  # the children (www-data) read the CRL files again
        self.front_port = front_port
        self.entries = {}  # serial hex -> (status, subject)
        self.lock = threading.Lock()
        with open(os.path.join(self.dir, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = CA_default\n[CA_default]\ndatabase = crlindex.txt\n"
                    "crlnumber = crlnumber\ndefault_md = sha256\n")
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("1000\n")
        self.write_index()

    def leaf(self, name, status="V", aia=True):
        """A card for the nurse from hsa3; its serial in the database with
        `status` (V good, R revoked, None: not in the database)."""
        _serial[0] += 1
        serial = "%04X" % _serial[0]
        f = os.path.join(self.dir, name)
        args = [MKCERT, "--out", f + ".pem", "--key-out", f + ".key", "--key-type", "ec",
                "--ca", pki("ca", "hsa3.pem"), "--ca-key", pki("ca", "hsa3.key"),
                "--serial", serial, "--not-before", "-1", "--not-after", "30",
                "--key-usage", "digitalSignature", "--eku", "clientAuth",
                "--basic-constraints", "leaf", "--subj-attr", "C=SE",
                "--subj-attr", "O=Sjoviks kommun", "--subj-attr", "CN=Rev %s" % name,
                "--subj-attr", "serialNumber=" + NURSE_HSA]
        if aia:
            args += ["--ext-hex", "1.3.6.1.5.5.7.1.1=" + aia_ocsp_hex(
                "http://127.0.0.1:%d/aia" % self.front_port)]
        subprocess.run(args, check=True, capture_output=True)
        with open(f + ".chain.pem", "w") as out:
            out.write(open(f + ".pem").read() + open(pki("ca", "hsa3.pem")).read())
        if status:
            self.set_status(serial, status, name)
        return {"serial": serial, "cert": (f + ".chain.pem", f + ".key")}

    def set_status(self, serial, status, name=None):
        with self.lock:
            old = self.entries.get(serial)
            self.entries[serial] = (status, "/C=SE/CN=Rev %s" % (name or old[1]))
            self.write_index()

    def write_index(self):
        exp = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + 86400 * 30))
        rt = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() - 3600))
        lines = []
        for serial, (st, subj) in sorted(self.entries.items()):
            rev = rt + ",keyCompromise" if st == "R" else ""
            lines.append("%s\t%s\t%s\t%s\tunknown\t%s\n" % (st, exp, rev, serial, subj))
        tmp = os.path.join(self.dir, "index.txt.tmp")
        with open(tmp, "w") as f:
            f.writelines(lines)
        os.replace(tmp, os.path.join(self.dir, "index.txt"))

    def crl(self, name, stale=False):
        """A CRL of hsa3 listing the serials revoked now (openssl ca -gencrl)."""
        shutil.copy(os.path.join(self.dir, "index.txt"), os.path.join(self.dir, "crlindex.txt"))
        out = os.path.join(self.dir, name)
        args = ["openssl", "ca", "-config", os.path.join(self.dir, "ca.cnf"), "-gencrl",
                "-keyfile", pki("ca", "hsa3.key"), "-cert", pki("ca", "hsa3.pem"),
                "-out", out + ".tmp"]
        if stale:
            def ago(days):
                return time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() - days * 86400))
            args += ["-crl_lastupdate", ago(2), "-crl_nextupdate", ago(1)]
        else:
            args += ["-crldays", "1"]
        subprocess.run(args, check=True, capture_output=True, cwd=self.dir)
        os.replace(out + ".tmp", out)  # whole, as a cron job should put it
        return out

    def respond(self, der, signer="hsa3"):
        """One OCSP answer from OpenSSL's responder over the database, signed
        with `signer`'s key (hsa3: the issuer itself)."""
        fd, reqf = tempfile.mkstemp(dir=self.dir, suffix=".req")
        with os.fdopen(fd, "wb") as f:
            f.write(der)
        respf = reqf[:-4] + ".resp"
        with self.lock:
            subprocess.run(["openssl", "ocsp", "-index", os.path.join(self.dir, "index.txt"),
                            "-CA", pki("ca", "hsa3.pem"), "-rsigner", pki("ca", signer + ".pem"),
                            "-rkey", pki("ca", signer + ".key"), "-nmin", "10", "-reqin", reqf,
                            "-respout", respf], check=True, capture_output=True, timeout=20)
        with open(respf, "rb") as f:
            body = f.read()
        os.unlink(reqf)
        os.unlink(respf)
        return body


class Front:
    """The loopback HTTP front of the responder.  modes[path]: "ok", "down"
    (HTTP 503) or a number of seconds to wait before answering ("slow")."""

    def __init__(self):
        self.modes = {}
        self.hits = {}
        self.active = 0
        self.max_active = {}
        self.lock = threading.Lock()
        front = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path
                with front.lock:
                    front.hits[path] = front.hits.get(path, 0) + 1
                    front.active += 1
                    front.max_active[path] = max(front.max_active.get(path, 0), front.active)
                try:
                    mode = front.modes.get(path, "ok")
                    if mode == "down":
                        self.send_response(503)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if mode != "ok":
                        time.sleep(float(mode))
                    # /forged: another CA of the same root signs (not the issuer,
                    # not a responder it delegated to)
                    resp = front.pki.respond(body, "hsa2" if path == "/forged" else "hsa3")
                    self.send_response(200)
                    self.send_header("Content-Type", "application/ocsp-response")
                    self.send_header("Content-Length", str(len(resp)))
                    self.end_headers()
                    self.wfile.write(resp)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with front.lock:
                        front.active -= 1

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


DEAD = free_port()  # nobody listens there


def profile(name, rev):
    return "EidTrustIssuer %s {pki}/ca/hsa3.pem loa=3 ids=hsa-id\n%s" % (
        name, "EidRevocation %s %s\n" % (name, rev) if rev else "")


def body(front, crl, stale, refresh):
    url = "http://127.0.0.1:%d" % front.port
    conf = ""
    locs = {
        "ocsp": "ocsp max-age=2",  # the card's AIA
        "down": "ocsp responder=http://127.0.0.1:%d/ timeout=1" % DEAD,
        "grace": "ocsp responder=%s/grace fail=grace grace=60 max-age=1" % url,
        "slow": "ocsp responder=%s/slow timeout=2 inflight=2" % url,
        "forged": "ocsp responder=%s/forged" % url,
        "crl": "crl crl=" + crl,
        "stale": "crl crl=" + stale,
        "refresh": "crl crl=%s crl-refresh=1 max-age=1" % refresh,
        "both": "ocsp,crl responder=http://127.0.0.1:%d/ timeout=1 crl=%s" % (DEAD, crl),
        "none": None,
    }
    conf += 'ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"\n'
    conf += "KeepAliveTimeout 20\nThreadsPerChild 32\nMaxRequestWorkers 32\nMaxSpareThreads 32\n"
    for name, rev in locs.items():
        conf += profile("rv-" + name, rev)
        conf += ("<Location /%s/>\nAuthType eid\nEidCertProfiles rv-%s\nRequire valid-user\n"
                 "</Location>\n" % (name, name))
    return conf


@pytest.fixture(scope="module")
def env():
    front = Front()
    p = Pki(front.port)
    front.pki = p
    # CRLs: made now, listing what is revoked now
    p.leaf("crl-revoked", "R")
    crl = p.crl("crl.pem")
    stale = p.crl("crl-stale.pem", stale=True)
    refresh = p.crl("crl-refresh.pem")
    h = Httpd(body(front, crl, stale, refresh), name="rev", loglevel="warn auth_eid:debug")
    h.start()
    yield {"srv": h, "front": front, "pki": p}
    h.stop()
    h.cleanup()
    front.stop()
    shutil.rmtree(p.dir, ignore_errors=True)


def ctx_for(cert):
    ctx = ssl.create_default_context(cafile=SERVER_CA)
    ctx.load_cert_chain(*cert)
    return ctx


def get(srv, loc, cert, conn=None):
    """GET /loc/echo/<unique> with the card; (status, audit record, conn)."""
    path = unique_path("/%s/echo" % loc)
    c = conn or http.client.HTTPSConnection("localhost", srv.port, context=ctx_for(cert),
                                            timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    recs = srv.wait_audit(path, 1)
    if conn is None:
        c.close()
    return r.status, (recs[0] if recs else {}), c


def test_good_card_admitted_revoked_refused(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05001.*client certificate refused: certificate revoked \(OCSP")
    good, revoked = p.leaf("good"), p.leaf("revoked", "R")
    st, rec, _ = get(srv, "ocsp", good["cert"])
    assert st == 200, rec
    assert rec["revocation"] == "good" and rec["revocation_source"] == "ocsp", rec
    st, rec, _ = get(srv, "ocsp", revoked["cert"])
    assert st == 403, rec
    assert rec["revocation"] == "revoked" and rec["revocation_source"] == "ocsp", rec
    assert rec["tag"] == "EID05001" and rec["cert_serial"] == revoked["serial"], rec
    # a second connection with the good card: the process cache answers
    hits = env["front"].hits.get("/aia", 0)
    st, rec, _ = get(srv, "ocsp", good["cert"])
    assert st == 200 and rec["revocation_source"] == "cache", rec
    assert env["front"].hits.get("/aia", 0) == hits


def test_unknown_card_refused(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05002")
    unknown = p.leaf("unknown", None)
    st, rec, _ = get(srv, "ocsp", unknown["cert"])
    assert st == 403 and rec["revocation"] == "unknown" and rec["tag"] == "EID05002", rec


def test_card_without_responder_is_misconfiguration(env, logcheck):
    """ocsp without responder= and a card without AIA: 500, never admitted."""
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05101.*client certificate refused")
    mark = len(srv.read_error_log())
    st, rec, _ = get(srv, "ocsp", p.leaf("no-aia", aia=False)["cert"])
    assert st == 500 and rec["tag"] == "EID05101", rec
    assert rec["revocation"] == "undetermined" and rec["decision"] == "error", rec
    # a card's own misconfiguration: logged with the refusal, not as an outage
    log = srv.read_error_log()[mark:]
    assert re.search(r"warn.*EID05101.*client certificate refused", log), log
    assert "EID05120" not in log, log


def test_no_revocation_configured(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    card = p.leaf("none-revoked", "R")
    st, rec, _ = get(srv, "none", card["cert"])
    assert st == 200 and "revocation" not in rec, rec


def test_responder_down_fail_closed_one_line_per_outage(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05120: trust profile rv-down: .*EID05103.*fail=closed")
    mark = len(srv.read_error_log())
    for i in range(3):
        st, rec, _ = get(srv, "down", p.leaf("down%d" % i)["cert"])
        assert st == 503, rec
        assert rec["revocation"] == "undetermined" and rec["tag"] == "EID05103", rec
        assert rec["decision"] == "error", rec
    log = srv.read_error_log()[mark:]
    assert len(re.findall(r"EID05120: trust profile rv-down", log)) == 1, log


def test_grace_admits_known_good_only(env, logcheck):
    srv, p, front = env["srv"], env["pki"], env["front"]
    logcheck(srv)
    srv.expect_log(r"EID05120: trust profile rv-grace: .*EID05104.*grace")
    card, other = p.leaf("grace-good"), p.leaf("grace-other")
    front.modes["/grace"] = "ok"
    st, rec, _ = get(srv, "grace", card["cert"])
    assert st == 200 and rec["revocation_source"] == "ocsp", rec
    front.modes["/grace"] = "down"
    try:
        time.sleep(1.3)  # past max-age=1: the cached answer is too old
        st, rec, _ = get(srv, "grace", card["cert"])
        assert st == 200, rec
        assert rec["revocation"] == "good" and rec["revocation_source"] == "grace", rec
        st, rec, _ = get(srv, "grace", other["cert"])  # never seen good: refused
        assert st == 503 and rec["revocation"] == "undetermined", rec
    finally:
        front.modes["/grace"] = "ok"
    st, rec, _ = get(srv, "grace", other["cert"])
    assert st == 200 and rec["revocation_source"] == "ocsp", rec
    assert re.search(r"EID05121: trust profile rv-grace", srv.read_error_log())


def test_answer_signed_by_another_key_refused(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05120: trust profile rv-forged: .*EID05107")
    card = p.leaf("forged-revoked", "R")  # even a "revoked" is not believed
    for _ in range(2):
        st, rec, _ = get(srv, "forged", card["cert"])
        assert st == 503 and rec["tag"] == "EID05107", rec
        assert rec["revocation"] == "undetermined", rec
    assert env["front"].hits.get("/forged", 0) == 2


def test_slow_responder_bounded_in_flight(env, logcheck):
    srv, p, front = env["srv"], env["pki"], env["front"]
    logcheck(srv)
    srv.expect_log(r"EID05120: trust profile rv-slow")
    front.modes["/slow"] = "4"  # longer than timeout=2
    cards = [p.leaf("slow%d" % i) for i in range(6)]
    out = [None] * len(cards)

    def one(i):
        t = time.time()
        st, rec, _ = get(srv, "slow", cards[i]["cert"])
        out[i] = (st, rec.get("tag"), time.time() - t)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(cards))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert all(o and o[0] == 503 for o in out), out
    # never more than inflight=2 fetches at the responder; the others were
    # refused at once (EID05111), not queued behind the slow ones
    assert front.max_active.get("/slow", 0) <= 2, front.max_active
    fast = [o for o in out if o[1] == "EID05111"]
    assert len(fast) >= 3 and all(o[2] < 1.5 for o in fast), out
    assert all(o[2] < 3.5 for o in out if o[1] == "EID05103"), out
    time.sleep(2.5)  # let the responder's sleeping handlers finish


def test_crl_mode(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05001.*\(CRL")
    good = p.leaf("crl-good")  # not in the CRL (made before it existed)
    st, rec, _ = get(srv, "crl", good["cert"])
    assert st == 200 and rec["revocation_source"] == "crl", rec
    crl_revoked = os.path.join(p.dir, "crl-revoked")
    st, rec, _ = get(srv, "crl", (crl_revoked + ".chain.pem", crl_revoked + ".key"))
    assert st == 403 and rec["revocation"] == "revoked", rec
    assert rec["revocation_source"] in ("crl", "cache"), rec


def test_crl_file_read_again_in_the_background(env, logcheck):
    """A new CRL file is taken without a restart; a bad or older one is not."""
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05001.*\(CRL", r"EID05211: trust profile rv-refresh: .*not taken")
    card = p.leaf("refresh-card")
    st, rec, _ = get(srv, "refresh", card["cert"])
    assert st == 200 and rec["revocation_source"] == "crl", rec
    older = os.path.join(p.dir, "crl-refresh.pem")
    shutil.copy(older, older + ".old")
    time.sleep(1.1)  # a lastUpdate after the current one (second resolution)
    p.set_status(card["serial"], "R")
    p.crl("crl-refresh.pem")
    deadline, st = time.time() + 6, 200
    while st != 403 and time.time() < deadline:
        time.sleep(0.3)
        st, rec, _ = get(srv, "refresh", card["cert"])
    assert st == 403 and rec["revocation"] == "revoked", (rec, srv.read_error_log()[-3000:])
    assert re.search(r"EID05210: trust profile rv-refresh: CRL file \S+crl-refresh.pem read "
                     r"again", srv.read_error_log())
    # garbage, then the older CRL: neither is taken, the card stays refused
    for bad in (b"not a CRL", open(older + ".old", "rb").read()):
        with open(older + ".tmp", "wb") as f:
            f.write(bad)
        os.replace(older + ".tmp", older)
        time.sleep(2.2)
        st, rec, _ = get(srv, "refresh", card["cert"])
        assert st == 403 and rec["revocation"] == "revoked", rec
    log = srv.read_error_log()
    assert re.search(r"EID05211: .*not taken: CRL is neither PEM nor DER", log), log[-1500:]
    assert re.search(r"EID05211: .*not taken: older \(lastUpdate\)", log), log[-1500:]


def test_stale_crl_fails_closed(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05120: trust profile rv-stale: .*EID05204")
    st, rec, _ = get(srv, "stale", p.leaf("stale-good")["cert"])
    assert st == 503 and rec["tag"] == "EID05204", rec


def test_ocsp_then_crl(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05120: trust profile rv-both: OCSP .*EID05103.*asking the next")
    mark = len(srv.read_error_log())
    for i in range(3):
        st, rec, _ = get(srv, "both", p.leaf("both-good%d" % i)["cert"])
        assert st == 200 and rec["revocation_source"] == "crl", rec
    # the responder's outage is logged once, though the CRL answers meanwhile
    log = srv.read_error_log()[mark:]
    assert len(re.findall(r"EID05120: trust profile rv-both", log)) == 1, log
    assert "EID05121" not in log, log


def test_keepalive_recheck_after_revocation(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05001")
    card = p.leaf("keepalive")
    st, rec, conn = get(srv, "ocsp", card["cert"], conn=http.client.HTTPSConnection(
        "localhost", srv.port, context=ctx_for(card["cert"]), timeout=30))
    sock = conn.sock
    assert st == 200, rec
    st, rec, _ = get(srv, "ocsp", card["cert"], conn=conn)
    assert st == 200 and conn.sock is sock, rec
    p.set_status(card["serial"], "R")
    time.sleep(2.3)  # max-age=2
    st, rec, _ = get(srv, "ocsp", card["cert"], conn=conn)
    assert conn.sock is sock, "the connection was not kept alive"
    assert st == 403 and rec["revocation"] == "revoked", rec
    conn.close()


def test_24_concurrent_clients(env, logcheck):
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    srv.expect_log(r"EID05001")
    good, revoked = p.leaf("conc-good"), p.leaf("conc-revoked", "R")
    out = {}
    hits = env["front"].hits.get("/aia", 0)

    def one(i):
        card = good if i % 2 == 0 else revoked
        res = []
        c = http.client.HTTPSConnection("localhost", srv.port, context=ctx_for(card["cert"]),
                                        timeout=30)
        for _ in range(3):
            res.append(get(srv, "ocsp", card["cert"], conn=c)[0])
        c.close()
        out[i] = res

    ts = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(out) == 24
    for i, res in out.items():
        assert res == ([200] * 3 if i % 2 == 0 else [403] * 3), (i, res)
    # one fetch per card (single flight), not one per connection; a few more
    # only if the run outlived max-age=2
    assert env["front"].hits.get("/aia", 0) - hits <= 4, env["front"].hits


def test_graceful_restart_and_stop(env, logcheck):
    """Children with the CRL refresh thread end cleanly (graceful restart: the
    thread is joined before the child's pool goes), and the new generation
    checks as before."""
    srv, p = env["srv"], env["pki"]
    logcheck(srv)
    # graceful restart noise: notices, the certificate-name note, and (ServerLimit 1, an
    # old child still exiting under a slow ASan build) the scoreboard being full
    srv.expect_log(r"AH00493|AH00492|AH00171", r"AH01909", r"AH00485")
    mark = len(srv.read_error_log())
    srv.proc.send_signal(signal.SIGUSR1)
    deadline = time.time() + 15
    while "resuming normal operations" not in srv.read_error_log()[mark:]:
        assert time.time() < deadline, srv.read_error_log()[-3000:]
        time.sleep(0.1)
    time.sleep(0.5)
    for loc in ("crl", "ocsp"):
        st, rec, _ = get(srv, loc, p.leaf("graceful-" + loc)["cert"])
        assert st == 200 and rec["revocation"] == "good", rec
    log = srv.read_error_log()[mark:]
    assert not re.search(r"exit signal|AH00052|AH00060", log), log


# ---- apachectl -t ----------------------------------------------------------------

BASE = "EidTrustIssuer p {pki}/ca/hsa3.pem loa=3 ids=hsa-id\n"
BAD = [
    ("EidRevocation q ocsp", r"unknown trust profile 'q'"),
    ("EidRevocation p crl", r"the crl method needs crl=FILE"),
    ("EidRevocation p ocsp crl=CRL", r"crl= without the crl method"),
    ("EidRevocation p crl crl={pki}/manifest.json", r"EID05202"),
    ("EidRevocation p crl crl={pki}/nothing.crl", r"EID05201"),
    ("EidRevocation p ocsp fail=grace", r"fail=grace needs grace="),
    ("EidRevocation p ocsp grace=60", r"grace= needs fail=grace"),
    ("EidRevocation p ocsp fail=open", r"fail=open: use closed or grace"),
    ("EidRevocation p ocsp responder=ftp://127.0.0.1/", r"responder=ftp"),
    ("EidRevocation p crl responder=http://127.0.0.1/", r"responder= without the ocsp"),
    ("EidRevocation p ocsp timeout=0", r"timeout= wants whole seconds from 1 to 30"),
    ("EidRevocation p ocsp cache=lots", r"cache= wants a number"),
    ("EidRevocation p ocsp colour=blue", r"unknown option 'colour'"),
    ("EidRevocation p ocsp,ocsp", r"not a method list"),
    ("EidRevocation p off timeout=3", r"'off' takes no options"),
    ("EidRevocation p ocsp\nEidRevocation p crl", r"profile 'p' has one already"),
    # a CA added to the profile after the line: crl alone could never check its cards
    ("EidRevocation p crl crl=CRL\nEidTrustIssuer p {pki}/ca/hsa2.pem loa=2 ids=hsa-id",
     r"no crl= file for issuing CA .*HSA-id 2 CA.*after this one"),
    ("<VirtualHost 127.0.0.1:9>\nEidRevocation p ocsp\n</VirtualHost>",
     r"outside <VirtualHost>"),
    ("<Location /x>\nEidRevocation p ocsp\n</Location>", r"not allowed|cannot occur"),
]


@pytest.fixture(scope="module")
def hsa3_crl():
    """A current CRL of hsa3 (nothing revoked)."""
    d = tempfile.mkdtemp(prefix="eid-revcrl-")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\ndefault_md = sha256\n")
    open(os.path.join(d, "index.txt"), "w").close()
    subprocess.run(["openssl", "ca", "-config", "ca.cnf", "-gencrl", "-keyfile",
                    pki("ca", "hsa3.key"), "-cert", pki("ca", "hsa3.pem"), "-crldays", "1",
                    "-out", "hsa3.crl"], check=True, capture_output=True, cwd=d)
    yield os.path.join(d, "hsa3.crl")
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("snippet,msg", BAD, ids=[b[0][:40] for b in BAD])
def test_config_errors(snippet, msg, hsa3_crl):
    h = Httpd(BASE + "# padding\n" + snippet.replace("CRL", hsa3_crl), name="revcfg")
    try:
        r = h.configtest()
        assert r.returncode != 0, r.stderr
        m = re.search(r"line (\d+) of (\S+?):", r.stderr)
        assert m and m.group(2) == h.conf, r.stderr
        assert "EidRevocation" in open(h.conf).read().splitlines()[int(m.group(1)) - 1]
        assert re.search(msg, r.stderr), r.stderr
    finally:
        h.cleanup()


def test_crl_of_another_ca_refused():
    """A CRL signed by a CA the profile does not hold."""
    d = tempfile.mkdtemp(prefix="eid-revcrl-")
    try:
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\ndefault_md = sha256\n")
        open(os.path.join(d, "index.txt"), "w").close()
        subprocess.run(["openssl", "ca", "-config", "ca.cnf", "-gencrl", "-keyfile",
                        pki("ca", "eid.key"), "-cert", pki("ca", "eid.pem"), "-crldays", "1",
                        "-out", "eid.crl"], check=True, capture_output=True, cwd=d)
        h = Httpd(BASE + "EidRevocation p crl crl=%s/eid.crl" % d, name="revcfg")
        try:
            r = h.configtest()
            assert r.returncode != 0 and "not signed by an issuing CA of trust profile 'p'" \
                in r.stderr, r.stderr
        finally:
            h.cleanup()
    finally:
        shutil.rmtree(d, ignore_errors=True)


GOOD = ["EidRevocation p", "EidRevocation p off", "EidRevocation p ocsp",
        "EidRevocation p crl,ocsp crl=CRL", "EidRevocation p crl crl=CRL timeout=2",
        "EidRevocation p ocsp fail=grace grace=3600 timeout=5 max-age=300 cache=1000 "
        "inflight=4 nonce=off responder=http://ocsp.example/"]


@pytest.mark.parametrize("snippet", GOOD)
def test_good_configs_pass(snippet, hsa3_crl):
    h = Httpd(BASE + snippet.replace("CRL", hsa3_crl), name="revcfg")
    try:
        r = h.configtest()
        assert r.returncode == 0, (snippet, r.stderr)
    finally:
        h.cleanup()
