"""Spoofed identity headers, every spelling: case, '_' for '-', the same name
twice, a vhost with its own prefix next to one without, a prefix set in the
main server's <Location>, HTTP/2 (lower-case names, h2c).  What a backend sees:
the CGI's environment, and - for names CGI does not pass on ('_') - SetEnvIf
matching header names by regex in the location (runs after our scrubbing)."""
import os
import socket
import subprocess

from conftest import server_fixture
from eidtest import Httpd, free_port

DUMP = """#!/usr/bin/python3
import json, os, sys
body = json.dumps(dict(os.environ), sort_keys=True).encode()
sys.stdout.write("Content-Type: application/json\\r\\n")
sys.stdout.write("Content-Length: %d\\r\\n\\r\\n" % len(body))
sys.stdout.flush()
sys.stdout.buffer.write(body)
"""
EVIL = "evil-191212121212"


def make():
    port = free_port()
    conf = """
Protocols h2c http/1.1
<Location /m/>
    AuthType eid
    EidHeaderPrefix X-Main-
    EidExportHeaders on
    Require all granted
</Location>
<VirtualHost 127.0.0.1:{port}>
    ServerName own.test
    ScriptAlias /cgi/ {{root}}/cgi/
    <Location /cgi/>
        AuthType eid
        EidHeaderPrefix X-Ident-
        EidExportHeaders on
        Require all granted
        SetEnvIfNoCase ^x.(eid|ident|main).(pnr|hsa.id|request.id)$ "(.+)" SEEN_$0=$1
        SetEnvIfNoCase ^x.(eid|ident|main).(pnr|hsa.id|request.id)$ "(.+)" SEEN=$1
    </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:{port}>
    ServerName plain.test
    ScriptAlias /cgi/ {{root}}/cgi/
    <Location /cgi/>
        AuthType eid
        EidExportHeaders on
        Require all granted
        SetEnvIfNoCase ^x.(eid|main).(pnr|hsa.id|request.id)$ "(.+)" SEEN=$1
    </Location>
</VirtualHost>
""".format(port=port)
    h = Httpd(conf, tls=False, name="attack-hdr", port=port, extra_modules=["http2"])
    p = os.path.join(h.root, "cgi", "dump.py")
    with open(p, "w") as f:
        f.write(DUMP)
    os.chmod(p, 0o755)
    return h


srv = server_fixture(make)

SPELLINGS = ["X-Eid-Pnr", "x-eid-pnr", "X-EID-PNR", "X_Eid_Pnr", "x_eid-pnr", "X-Eid_Hsa_Id",
             "X-Eid-Request-Id", "x_eid_request_id", "X-Main-Pnr", "x_main_hsa-id"]


def raw_get(srv, host, headers):
    """HTTP/1.1 by hand: the same name several times, any spelling."""
    req = "GET /cgi/dump.py HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % host
    req += "".join("%s: %s\r\n" % (k, v) for k, v in headers) + "\r\n"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        s.sendall(req.encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], data[:300]
    return body.decode()


def check_clean(text):
    assert EVIL not in text and "SEEN" not in text, text


def test_every_spelling_and_duplicates_http1(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01873")
    for host in ("own.test", "plain.test", "localhost"):
        hdrs = [(n, EVIL) for n in SPELLINGS] + [(n, EVIL) for n in SPELLINGS]
        hdrs += [("X-Ident-Pnr", EVIL), ("x_ident_hsa_id", EVIL)] * 2 \
            if host == "own.test" else []
        check_clean(raw_get(srv, host, hdrs))
    # the detector works: a name no backend maps onto ours ('.') is left alone
    # and seen by SetEnvIf
    assert '"SEEN": "control"' in raw_get(srv, "own.test", [("X.Eid.Pnr", "control")])


def test_every_spelling_http2(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01873")
    for host in ("own.test", "plain.test"):
        cmd = ["curl", "-s", "--http2-prior-knowledge", "-H", "Host: " + host]
        own = ["X-Ident-Pnr", "x-ident-hsa-id"] if host == "own.test" else []
        for n in SPELLINGS + own:
            cmd += ["-H", "%s: %s" % (n, EVIL)] * 2
        cmd += ["-w", "\n%{http_version}", srv.url("/cgi/dump.py")]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
        assert out.rstrip().endswith("\n2"), out
        check_clean(out)
