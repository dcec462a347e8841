"""Browser login with OpenID Connect (issue 10): the directives and what
`apachectl -t` refuses; the login flow end to end through the real test OP
(tests/op) with a cookie jar."""
import os
import re

import pytest

from eidtest import Httpd

KEY_A = "11" * 32
KEY_B = "22" * 32


def write_key(root, *keys, mode=0o600, name="session.key"):
    path = os.path.join(root, name)
    with open(path, "w") as f:
        f.write("".join(k + "\n" for k in keys))
    os.chmod(path, mode)
    return path


def configtest(body, keys=(KEY_A,), mode=0o600):
    h = Httpd(body, name="logincfg")
    try:
        if keys is not None:
            write_key(h.root, *keys, mode=mode)
        r = h.configtest()
        return r, h.conf, open(h.conf).read().splitlines()
    finally:
        h.cleanup()


def assert_refused(body, directive, msg, **kw):
    r, conf, lines = configtest(body, **kw)
    assert r.returncode != 0, r.stderr
    m = re.search(r"line (\d+) of (\S+?):", r.stderr)
    assert m, r.stderr
    assert m.group(2) == conf
    assert directive in lines[int(m.group(1)) - 1], (r.stderr, lines[int(m.group(1)) - 1])
    assert re.search(msg, r.stderr), r.stderr


LOC_OIDC = "<Location /app/>\nAuthType eid\nEidMethods oidc\nRequire valid-user\n</Location>\n"

BAD = [
    ("EidSessionKeyFile", "EidSessionKeyFile /nonexistent/session.key", r"EidSessionKeyFile"),
    ("EidSessionKeyFile", "<VirtualHost 127.0.0.1:9>\nEidSessionKeyFile {root}/session.key\n"
     "</VirtualHost>", r"EidSessionKeyFile|VirtualHost"),
    ("EidSessionStore", "EidSessionStore redis://127.0.0.1", r"unknown store"),
    ("EidSessionStore", "EidSessionStore shm:12", r"65536"),
    ("EidSessionStore", "EidSessionStore shm:lots", r"65536"),
    ("EidSessionIdleTimeout", "EidSessionIdleTimeout 5", r"60 to"),
    ("EidSessionMaxAge", "EidSessionMaxAge forever", r"60 to"),
    ("EidRedirectURI", "EidRedirectURI /.eid/callback", r"absolute"),
    ("EidRedirectURI", "EidRedirectURI http://rp.example/.eid/callback", r"https"),
    ("EidRedirectURI", "EidRedirectURI https://user@rp.example/.eid/callback", r"absolute"),
    ("EidReturnAllow", "EidReturnAllow https://other.example/path", r"not an origin"),
    ("EidReturnAllow", "EidReturnAllow http://other.example", r"https"),
    ("EidLogoutRedirectAllow", "EidLogoutRedirectAllow javascript:alert(1)",
     r"not an origin"),
    ("EidLoginProviders", "<Location /x>\nEidLoginProviders nosuch\n</Location>",
     r"unknown provider 'nosuch'"),
    ("EidLoginProviders", "EidProvider api issuer=https://op.example audience=api://x "
     "jwks_uri=https://op.example/jwks\n<Location /x>\nEidLoginProviders api\n</Location>",
     r"no login=on"),
    ("EidLoginLoA", "<Location /x>\nEidLoginLoA 5\n</Location>", r"level from 1 to 4"),
    # a location with oidc and no session keys
    ("EidMethods", LOC_OIDC, r"EidSessionKeyFile"),
    # ... with keys, but no provider that logs users in
    ("EidMethods", "EidSessionKeyFile {root}/session.key\n" + LOC_OIDC,
     r"no EidProvider has login=on"),
]


@pytest.mark.parametrize("directive,snippet,msg", BAD, ids=[b[1][:40] for b in BAD])
def test_login_config_refused(directive, snippet, msg):
    assert_refused("# padding\n" + snippet, directive, msg)


@pytest.mark.parametrize("mode,keys,msg", [
    (0o644, (KEY_A,), r"readable|mode|permission"),
    (0o600, ("abc",), r"64|hex"),
    (0o600, (KEY_A, KEY_B, "33" * 32), r"line|two|lines"),
    (0o600, ("zz" * 32,), r"hex"),
])
def test_session_key_file_refused(mode, keys, msg):
    r, conf, lines = configtest("# padding\nEidSessionKeyFile {root}/session.key\n",
                                keys=keys, mode=mode)
    assert r.returncode != 0
    assert "EidSessionKeyFile" in r.stderr and re.search(msg, r.stderr), r.stderr
    # the key itself never appears in the message
    for k in keys:
        if len(k) == 64:
            assert k not in r.stderr


def test_login_settings_accepted():
    r, _, _ = configtest("EidSessionKeyFile {root}/session.key\nEidSessionStore shm:1048576\n"
                         "EidSessionIdleTimeout 600\nEidSessionMaxAge 7200\n"
                         "EidRedirectURI https://localhost/.eid/callback\n"
                         "EidReturnAllow https://portal.example https://x.example:8443\n"
                         "EidLogoutRedirectAllow https://portal.example\n",
                         keys=(KEY_A, KEY_B))
    assert r.returncode == 0, r.stderr
