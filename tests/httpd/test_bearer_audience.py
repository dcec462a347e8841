"""EidBearerAudience: a location accepts only tokens meant for it, although its
provider (one per issuer) lists the audiences of every API of the server."""
import os

import pytest
import requests

from eidtest import module_op, Httpd, pki


CA = pki("ca", "server-ca.pem")


op = module_op("eid-op-aud-")


@pytest.fixture(scope="module")
def srv(op):
    body = ("EidProvider p issuer=%s discovery=on audience=api://a,api://b,api://c "
            "claims=inera\n" % op.issuer)
    body += 'ScriptAliasMatch "^/[a-z]+/echo$" "{root}/cgi/echo.py"\n'
    for loc, extra in (("a", "EidBearerAudience api://a"), ("b", "EidBearerAudience api://b"),
                       ("ab", "EidBearerAudience api://a api://b"), ("any", ""),
                       ("ht", "")):
        body += ("<Location /%s/>\nAuthType eid\nEidMethods bearer\n%s\nRequire valid-user\n"
                 "</Location>\n" % (loc, extra))
    body += "<Directory {root}/htdocs/ht>\nAllowOverride AuthConfig\n</Directory>\n"
    s = Httpd(body, name="aud")
    os.makedirs(os.path.join(s.root, "htdocs", "ht"))
    with open(os.path.join(s.root, "htdocs", "ht", "index.html"), "w") as f:
        f.write("ht\n")
    with open(os.path.join(s.root, "htdocs", "ht", ".htaccess"), "w") as f:
        f.write("EidBearerAudience api://c\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


def get(srv, path, tok):
    return requests.get(srv.url(path), headers={"Authorization": "Bearer " + tok},
                        verify=CA, timeout=20)


def test_each_location_its_own_audience(srv, op, logcheck):
    logcheck(srv)
    ta = op.mint(preset="inera-nurse", aud="api://a")
    tab = op.mint(preset="inera-nurse", aud=["api://a", "api://b"])
    for _ in range(2):  # a token-cache miss, then hits
        assert get(srv, "/a/echo", ta).status_code == 200
        r = get(srv, "/b/echo", ta)
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert get(srv, "/ab/echo", ta).status_code == 200
        assert get(srv, "/any/echo", ta).status_code == 200
        assert get(srv, "/a/echo", tab).status_code == 200
        assert get(srv, "/b/echo", tab).status_code == 200
    # .htaccess narrows its own directory
    assert get(srv, "/ht/", ta).status_code == 401
    assert get(srv, "/ht/", op.mint(preset="inera-nurse", aud="api://c")).status_code == 200
    # the audit record says why
    assert any(rec.get("tag") == "EID01530" and rec["resource"] == "/b/echo"
               for rec in srv.audit_records())


def test_configuration_errors():
    for line, msg in (("EidBearerAudience", "EidBearerAudience: name at least one audience"),):
        s = Httpd("<Location /x/>\nAuthType eid\n%s\n</Location>\n" % line, name="audcfg")
        try:
            r = s.configtest()
        finally:
            s.cleanup()
        assert r.returncode != 0 and msg in r.stderr, r.stderr
