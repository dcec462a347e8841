"""HTTP/2 over TLS with a client certificate: many streams of one connection
at once (mod_http2 runs them on several worker threads, each on a secondary
connection) across locations with different trust profile lists and export
lists.  Every stream gets exactly its location's attributes; ASan (make
test-asan) stays clean."""
import collections
import json
import re
import subprocess

from conftest import server_fixture
from eidtest import TRUST_PROFILES, Httpd, manifest, pki, user_cert

M = manifest()
CA = pki("ca", "server-ca.pem")
N = 8


def make():
    conf = "Protocols h2 http/1.1\n" + TRUST_PROFILES
    conf += 'ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"\n'
    for i in range(N):
        conf += ("<Location /l%d/>\nAuthType eid\nRequire valid-user\nEidExportHeaders on\n"
                 "EidExportAttributes %s\n%s</Location>\n"
                 % (i, "hsa-id" if i % 2 else "method",
                    "EidCertProfiles siths\n" if i % 3 else ""))
    return Httpd(conf, name="attack-h2", extra_modules=["http2"])


srv = server_fixture(make)


def test_parallel_streams_one_connection(srv, logcheck):
    logcheck(srv)
    chain, key = user_cert("nurse-kommun")
    cmd = ["curl", "-s", "--http2", "--cacert", CA, "--cert", chain, "--key", key, "-Z",
           "--parallel-max", "50", "-w", "\\n%{http_version} %{http_code}\\n"]
    for i in range(200):
        cmd += [srv.url("/l%d/echo" % (i % N)), "-o", "-"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert collections.Counter(re.findall(r"\n(\d) (\d{3})\n", out)) == {("2", "200"): 200}
    kinds = collections.Counter()
    for body in re.findall(r"\{[^{}]*\}", out):
        env = json.loads(body)
        keys = frozenset(k for k in env if k.startswith("EID_") and k != "EID_REQUEST_ID")
        hdrs = frozenset(k for k in env if k.startswith("HTTP_X_EID")
                         and k != "HTTP_X_EID_REQUEST_ID")
        kinds[(keys, hdrs)] += 1
        assert re.fullmatch(r"[A-Za-z0-9_-]{16}", env["EID_REQUEST_ID"]), env
        assert env["EID_REQUEST_ID"] == env["HTTP_X_EID_REQUEST_ID"], env
        if "EID_HSA_ID" in env:
            assert env["EID_HSA_ID"] == M["nurse-kommun"]["hsa_id"], env
    assert kinds == {
        (frozenset({"EID_HSA_ID"}), frozenset({"HTTP_X_EID_HSA_ID"})): 100,
        (frozenset({"EID_METHOD"}), frozenset({"HTTP_X_EID_METHOD"})): 100,
    }, kinds
