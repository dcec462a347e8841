"""Browser login in a second virtual host (issue 10, review): the login's
callback must reach the virtual host that started it - its state cookie and
its session are sealed to that virtual host - so a callback URL on a port
that another server of this httpd listens on is refused at `apachectl -t`,
and a virtual host with its own EidRedirectURI logs users in."""
import urllib.parse

import requests

from eidtest import free_port
from loginkit import (CA, browser, make_httpd, op, register, session_cookie,  # noqa: F401
                      raw_cookie_get)

VHOST = ("Listen 127.0.0.1:{port2}\n<VirtualHost 127.0.0.1:{port2}>\nServerName localhost\n"
         "SSLEngine on\nSSLCertificateFile {{pki}}/server/localhost.pem\n"
         "SSLCertificateKeyFile {{pki}}/server/localhost.key\n{own}"
         'ScriptAliasMatch "^/([a-z0-9-]+)/echo(/.*)?$" "{{root}}/cgi/hits.py$2"\n'
         "<Location /app/>\nAuthType eid\nEidMethods oidc\nRequire valid-user\n"
         "</Location>\n</VirtualHost>\n")


def vhost(port2, own=""):
    return VHOST.format(port2=port2, own=own)


def test_vhost_whose_callback_is_another_servers_port_is_refused(op):
    port, port2 = free_port(), free_port()
    # inherited from the main server (its port), or its own pointing there
    for own in ("", "EidRedirectURI https://localhost:%d/.eid/callback\n" % port):
        h = make_httpd(op, {"/main/": "EidMethods oidc\nRequire valid-user"}, port=port,
                       vhost=vhost(port2, own), name="vh")
        try:
            r = h.configtest()
            assert r.returncode != 0, (own, r.stderr)
            assert "EidRedirectURI" in r.stderr and "port %d" % port in r.stderr, r.stderr
            assert "httpd.conf" in r.stderr and "EidMethods" in r.stderr, r.stderr
        finally:
            h.cleanup()


def test_vhost_with_its_own_callback_logs_in(op):
    port, port2 = free_port(), free_port()
    ru2 = "https://localhost:%d/.eid/callback" % port2
    h = make_httpd(op, {"/main/": "EidMethods oidc\nRequire valid-user"}, port=port,
                   vhost=vhost(port2, "EidRedirectURI %s\n" % ru2), name="vh")
    register(op, h, ru2)
    h.start()
    h.log_mark()
    try:
        op.admin("/admin/login-behaviour", {"reset": True})
        op.admin("/admin/auto-login", {"user": "nurse"})
        b = browser()
        r = b.get("https://localhost:%d/app/echo/v2" % port2, allow_redirects=False, timeout=20)
        assert r.status_code == 302
        q = urllib.parse.parse_qs(urllib.parse.urlparse(r.headers["Location"]).query)
        assert q["redirect_uri"] == [ru2]
        for _ in range(4):
            if r.status_code not in (302, 303):
                break
            r = b.get(urllib.parse.urljoin(r.url, r.headers["Location"]),
                      allow_redirects=False, timeout=20)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        assert r.url == "https://localhost:%d/app/echo/v2" % port2
        assert r.json()["EID_HSA_ID"] == "SE2321000016-P0001N"
        # its session is the second virtual host's only
        c = session_cookie(b)
        r = requests.get(h.url("/main/echo/x"), headers={"Cookie": "__Host-eid-session=" + c,
                                                         "Accept": "application/json"},
                         verify=CA, allow_redirects=False, timeout=20)
        assert r.status_code == 401
        assert not h.unexpected_log_lines()
    finally:
        h.stop()
        h.cleanup()
