"""Identity headers: a prefix is known when inbound headers are scrubbed (never
set by .htaccess), and only the names the module could write are removed."""
import os

import requests

from conftest import server_fixture
from eidtest import TRUST_PROFILES, Httpd, free_port, manifest, pki, user_cert

M = manifest()
NURSE = M["nurse-kommun"]
CA = pki("ca", "server-ca.pem")

ECHO_ALL = """#!/usr/bin/python3
import json, os, sys
env = dict(os.environ)
env["BODY"] = sys.stdin.buffer.read(int(env.get("CONTENT_LENGTH") or 0)).decode()
body = json.dumps(env, sort_keys=True).encode()
sys.stdout.write("Content-Type: application/json\\r\\n")
sys.stdout.write("Content-Length: %d\\r\\n\\r\\n" % len(body))
sys.stdout.flush()
sys.stdout.buffer.write(body)
"""


# ---- .htaccess cannot choose a prefix -----------------------------------------

def make_ht():
    h = Httpd(TRUST_PROFILES + """
ScriptAliasMatch "^/ht/echo$" "{root}/htdocs/ht/echo.py"
<Directory {root}/htdocs/ht>
    AllowOverride AuthConfig
    Options +ExecCGI
    SetHandler cgi-script
</Directory>
""", name="hdr-ht")
    d = os.path.join(h.root, "htdocs", "ht")
    os.makedirs(d)
    with open(os.path.join(d, "echo.py"), "w") as f:
        f.write(ECHO_ALL)
    os.chmod(os.path.join(d, "echo.py"), 0o755)
    with open(os.path.join(d, ".htaccess"), "w") as f:
        f.write("AuthType eid\nRequire valid-user\nEidExportHeaders on\n"
                "EidHeaderPrefix X-Spoof-\n")
    return h


ht = server_fixture(make_ht)


def test_htaccess_header_prefix_cannot_be_spoofed(ht, logcheck):
    logcheck(ht)
    # httpd's own "not allowed here" for the .htaccess line
    ht.expect_log(r"AH00529|EidHeaderPrefix not allowed here")
    spoof = {"X-Spoof-Pnr": "191212121212", "X-Spoof-Hsa-Id": "SE0000000000-evil"}
    for _ in range(2):
        r = requests.get(ht.url("/ht/echo"), cert=user_cert("nurse-kommun"), verify=CA,
                         headers=spoof, timeout=20)
        assert "evil" not in r.text and "191212121212" not in r.text, r.text
        assert r.status_code == 500, r.status_code


# ---- a generic prefix strips only the names the module writes ----------------

def make_vh():
    port = free_port()
    return Httpd("""
<VirtualHost 127.0.0.1:%d>
    ServerName content.test
    <Location /eid/>
        AuthType eid
        EidHeaderPrefix Content-
        EidExportHeaders on
        Require all granted
    </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:%d>
    ServerName other.test
</VirtualHost>
""" % (port, port), tls=False, name="hdr-vh", port=port)


vh = server_fixture(make_vh)



def post(vh, host, path, headers=None):
    with open(os.path.join(vh.root, "cgi", "all.py"), "w") as f:
        f.write(ECHO_ALL)
    os.chmod(os.path.join(vh.root, "cgi", "all.py"), 0o755)
    h = {"Host": host, "Content-Type": "application/x-test"}
    h.update(headers or {})
    return requests.post(vh.url(path), data=b"abc", headers=h, timeout=20)


def test_content_prefix_leaves_content_type_alone(vh, logcheck):
    logcheck(vh)
    vh.expect_log(r"AH01873")  # mod_ssl loaded, no TLS here
    for host in ("other.test", "content.test"):
        r = post(vh, host, "/cgi/all.py")
        assert r.status_code == 200, r.text
        env = r.json()
        assert env.get("CONTENT_TYPE") == "application/x-test", (host, env)
        assert env.get("CONTENT_LENGTH") == "3" and env["BODY"] == "abc", (host, env)


def test_exact_names_are_scrubbed_per_vhost(vh, logcheck):
    logcheck(vh)
    vh.expect_log(r"AH01873")
    spoof = {"Content-Pnr": "191212121212", "content_hsa_id": "SE0000000000-evil",
             "X-Eid-Hsa-Id": "SE0000000000-evil", "Content-Request-Id": "evil"}
    r = post(vh, "content.test", "/cgi/all.py", spoof)
    env = r.json()
    assert not [k for k, v in env.items() if "evil" in v or "191212121212" in v], env
    assert env.get("CONTENT_TYPE") == "application/x-test"
