"""Configuration mistakes are refused by `apachectl -t`, naming file, line and
directive."""
import os
import re
import subprocess

import pytest

from eidtest import HTTPD, Httpd, REPO, pki, sample_conf_dir

GOOD = "EidTrustIssuer siths {pki}/ca/hsa3.pem loa=3 ids=hsa-id\n"
PROVIDERS = ("EidProvider a issuer=https://a.example audience=api://x "
             "jwks_uri=https://a.example/jwks claims=oidc-sweden\n"
             "EidProvider b issuer=https://b.example audience=api://x "
             "jwks_uri=https://b.example/jwks\n")
SAME_ISSUER = ("EidProvider c issuer=https://a.example audience=api://x "
               "jwks_uri=https://a.example/jwks claims=inera\n")

BAD = [
    ("EidCertProfiles", "<Location /x>\nAuthType eid\nEidCertProfiles nosuch\n"
     "Require valid-user\n</Location>", r"unknown trust profile 'nosuch'"),
    ("EidTrustIssuer", "EidTrustIssuer p /nonexistent/ca.pem loa=3 ids=hsa-id", r"ca\.pem"),
    ("EidTrustIssuer", "EidTrustIssuer p {pki}/ca/hsa3.pem", r"loa=1\.\.4"),
    ("EidTrustIssuer", "EidTrustIssuer p {pki}/ca/hsa3.pem loa=9", r"loa"),
    ("EidTrustIssuer", "EidTrustIssuer p {pki}/ca/hsa3.pem loa=3 ids=nothing", r"ids"),
    ("EidTrustIssuer", "EidTrustIssuer p {pki}/users/nurse-kommun.pem loa=3 ids=hsa-id",
     r"CA"),
    ("EidTrustPolicy", "EidTrustPolicy siths 1..2 loa=3", r"OID|oid"),
    ("EidTrustPolicy", "EidTrustPolicy siths notanoid loa=3", r"OID|oid"),
    ("EidTrustPolicy", "EidTrustPolicy siths 1.2.3 loa=0", r"loa"),
    ("Require", "<Location /x>\nAuthType eid\nRequire eid-loa 7\n</Location>", r"eid-loa"),
    ("Require", "<Location /x>\nAuthType eid\nRequire eid-loa\n</Location>", r"eid-loa"),
    ("Require", "<Location /x>\nAuthType eid\nRequire eid-org 123\n</Location>", r"eid-org"),
    ("Require", "<Location /x>\nAuthType eid\nRequire eid-org 2321000017\n</Location>",
     r"eid-org"),
    ("Require", "<Location /x>\nAuthType eid\nRequire eid-hsa-id bob\n</Location>",
     r"eid-hsa-id"),
    ("Require", "<Location /x>\nAuthType eid\nRequire eid-method carrier-pigeon\n"
     "</Location>", r"eid-method"),
    ("Require", "<Location /x>\nAuthType eid\nRequire eid-scope\n</Location>", r"eid-scope"),
    ("EidMethods", "<Location /x>\nEidMethods cert smoke-signal\n</Location>", r"EidMethods"),
    # oidc (login sessions) needs the session keys, a login provider and a
    # redirect URI: test_login.py checks each of them.
    ("EidMethods", "<Location /x>\nAuthType eid\nEidMethods oidc\n</Location>",
     r"EidSessionKeyFile"),
    # Token providers: option syntax on the line, completeness at the end of
    # the configuration (check_config), both naming the EidProvider line.
    ("EidProvider", "EidProvider op issuer=https://op.example", r"needs a name|audience"),
    ("EidProvider", "EidProvider op issuer", r"key=value"),
    ("EidProvider", "EidProvider op issuer=https://op.example colour=blue", r"colour"),
    ("EidProvider", "EidProvider op issuer=https://op.example algs=HS256", r"HS256"),
    ("EidProvider", "EidProvider op issuer=https://op.example algs=none", r"none"),
    ("EidProvider", "EidProvider op issuer=https://op.example leeway=-5", r"leeway"),
    ("EidProvider", "EidProvider op issuer=https://op.example claims=klingon", r"claims: use generic"),
    ("EidProvider", "EidProvider op issuer=https://op.example client_secret_file=/nonexistent",
     r"client_secret_file"),
    ("EidProvider", "EidProvider op issuer=https://op.example audience=api://x",
     r"key|jwks|introspect"),
    ("EidProvider", "EidProvider op audience=api://x jwks_uri=https://op.example/jwks",
     r"issuer"),
    ("EidProvider", "EidProvider op issuer=https://op.example audience=api://x "
     "jwks_uri=http://op.example/jwks", r"http"),
    ("EidProvider", "EidProvider op issuer=https://op.example audience=api://x "
     "jwks_uri=https://op.example/jwks discovery=on", r"jwks_uri|discovery|one"),
    ("EidProvider", "EidProvider op issuer=https://op.example audience=api://x "
     "introspect=https://op.example/introspect", r"client"),
    ("EidProvider", "EidProvider op issuer=https://op.example audience=api://x "
     "jwks_file={root}/httpd.conf", r"jwks_file|key"),
    ("EidProvider", "<Location /x>\nEidProvider op issuer=https://op.example\n</Location>",
     r"EidProvider"),
    ("EidProvider", "EidProvider b@d issuer=https://op.example", r"name"),
    # Login options (issue 10): refused at -t naming the EidProvider line.
    ("EidProvider", "EidProvider op issuer=https://op.example jwks_uri=https://op.example/j "
     "login=on", r"login=on needs client_id"),
    ("EidProvider", "EidProvider op issuer=https://op.example jwks_uri=https://op.example/j "
     "login=on client_id=rp token_auth=private_key_jwt", r"private_key_file"),
    ("EidProvider", "EidProvider op issuer=https://op.example token_endpoint=http://op.example/t",
     r"token_endpoint: .*http"),
    ("EidProvider", "EidProvider op issuer=https://op.example scope=profile", r"openid"),
    ("EidProvider", "EidProvider op issuer=https://op.example audience=api://x "
     "jwks_uri=https://op.example/j prompt=consent", r"prompt: only with login=on"),
    ("EidProvider", "EidProvider op issuer=https://op.example jwks_uri=https://op.example/j "
     "login=on client_id=rp end_session_method=put", r"end_session_method: get or post"),
    ("EidBearerProviders", "<Location /x>\nEidBearerProviders nosuch\n</Location>",
     r"unknown provider 'nosuch'"),
    ("EidTokenCache", "EidTokenCache lots", r"EidTokenCache"),
    ("EidTokenCache", "EidTokenCache 100 max_ttl=0", r"max_ttl"),
    ("EidUserAttribute", "<Location /x>\nEidUserAttribute shoe-size\n</Location>",
     r"shoe-size"),
    ("EidExportAttributes", "<Location /x>\nEidExportAttributes nope\n</Location>", r"nope"),
    ("EidHeaderPrefix", "<Location /x>\nEidHeaderPrefix X_Bad:\n</Location>",
     r"EidHeaderPrefix"),
    ("EidPseudonymKeyFile", "EidPseudonymKeyFile /nonexistent/key", r"EidPseudonymKeyFile"),
    ("EidAuditLog", "EidAuditLog /nonexistent/dir/audit.log", r"EidAuditLog"),
    ("EidTrustIssuer", "<Location /x>\nEidTrustIssuer p {pki}/ca/hsa3.pem loa=3\n"
     "</Location>", r"EidTrustIssuer"),
] + [
    # Issue 9, item 10: unsafe trust definitions that used to pass.
    # No ids=: the issuer would silently vouch for every identifier kind.
    ("EidTrustIssuer", "EidTrustIssuer p {pki}/ca/eid.pem loa=3", r"ids="),
    # A bundle (roots included): every CA in it would become an issuer.
    ("EidTrustIssuer", "EidTrustIssuer p {pki}/ca/client-trust.pem loa=3 ids=pnr",
     r"exactly one"),
    # A root alone refuses every card at run time (it issues CAs, not people).
    ("EidTrustIssuer", "EidTrustIssuer p {pki}/ca/root.pem loa=3 ids=hsa-id",
     r"self-signed.*root-issuer"),
    # A policy for a profile no EidTrustIssuer defined used to create it, empty.
    ("EidTrustPolicy", "EidTrustPolicy nosuch 1.2.752.74.8.512 loa=3",
     r"unknown trust profile 'nosuch'.*EidTrustIssuer"),
    # Item 6: definitions are server-level; a vhost names what it accepts.
    ("EidTrustIssuer", "<VirtualHost 127.0.0.1:9>\nEidTrustIssuer v {pki}/ca/eid.pem loa=3 "
     "ids=pnr\n</VirtualHost>", r"outside <VirtualHost>.*EidCertProfiles"),
    ("EidTrustPolicy", "<VirtualHost 127.0.0.1:9>\nEidTrustPolicy siths 1.2.3.4 loa=3\n"
     "</VirtualHost>", r"outside <VirtualHost>"),
    ("EidProvider", "<VirtualHost 127.0.0.1:9>\nEidProvider v issuer=https://op.example "
     "audience=api://x jwks_uri=https://op.example/jwks\n</VirtualHost>",
     r"outside <VirtualHost>.*EidBearerProviders"),
    # Several profiles / providers and a location naming none of them.
    ("AuthType", "EidTrustIssuer e {pki}/ca/eid.pem loa=3 ids=pnr\n"
     "<Location /x>\nAuthType eid\nRequire valid-user\n</Location>", r"EidCertProfiles"),
    ("AuthType", "EidTrustIssuer e {pki}/ca/eid.pem loa=3 ids=pnr\n"
     "<VirtualHost 127.0.0.1:9>\n<Location /y/>\nAuthType eid\nRequire valid-user\n"
     "</Location>\n</VirtualHost>", r"EidCertProfiles"),
    # ... named in another virtual host is not in reach
    ("AuthType", "EidTrustIssuer e {pki}/ca/eid.pem loa=3 ids=pnr\n"
     "<VirtualHost 127.0.0.1:9>\nEidCertProfiles e\n</VirtualHost>\n"
     "<VirtualHost 127.0.0.1:10>\n<Location /y/>\nAuthType eid\nRequire valid-user\n"
     "</Location>\n</VirtualHost>", r"EidCertProfiles"),
    ("EidMethods", PROVIDERS + "<Location /x>\nAuthType eid\nEidMethods bearer\n"
     "Require valid-user\n</Location>", r"EidBearerProviders"),
    # Item 7: two providers for one issuer in reach of one location.
    ("EidBearerProviders", PROVIDERS + SAME_ISSUER + "<Location /x>\nAuthType eid\n"
     "EidMethods bearer\nEidBearerProviders a c\nRequire valid-user\n</Location>",
     r"same issuer|issuer https://a\.example"),
    # One shared strict reader of levels, numbers and files (eid_util): no
    # sign, space or leading zero that strtol() let through; a directory is
    # named as such.
    ("EidTrustIssuer", "EidTrustIssuer p {pki}/ca/hsa3.pem loa=03 ids=hsa-id",
     r"loa must be a level"),
    ("EidTrustPolicy", "EidTrustPolicy siths 1.2.3 loa=+3", r"loa must be a level"),
    ("Require", "<Location /x>\nAuthType eid\nRequire eid-loa +3\n</Location>",
     r"eid-loa: '\+3' is not a level"),
    ("EidTokenCache", "EidTokenCache +100", r"EidTokenCache: entries"),
    ("EidTokenCache", "EidTokenCache 100 max_ttl=+60", r"max_ttl"),
    ("EidTrustIssuer", "EidTrustIssuer p {pki}/ca loa=3 ids=hsa-id",
     r"ca is not a regular file"),
    ("EidPseudonymKeyFile", "EidPseudonymKeyFile {pki}/ca", r"ca is not a regular file"),
    ("EidProvider", "EidProvider op issuer=https://op.example client_secret_file={pki}/ca",
     r"client_secret_file: \S+ca is not a regular file"),
    ("EidProvider", "EidProvider op issuer=https://op.example audience=api://x "
     "jwks_file={pki}/ca", r"jwks_file: \S+ca is not a regular file"),
    # EidAuditLog flush= (batched records): milliseconds 0..1000, nothing else
    ("EidAuditLog", "EidAuditLog {root}/a2.log flush=abc", r"flush= takes milliseconds"),
    ("EidAuditLog", "EidAuditLog {root}/a2.log flush=1001", r"flush= takes milliseconds"),
    ("EidAuditLog", "EidAuditLog {root}/a2.log flush=-5", r"flush= takes milliseconds"),
    ("EidAuditLog", "EidAuditLog {root}/a2.log buffer=5", r"unknown option 'buffer=5'"),
    ("EidAuditLog", "EidAuditLog off flush=5", r"'off' takes no options"),
]


@pytest.mark.parametrize("directive,snippet,msg", BAD, ids=[b[1][:40] for b in BAD])
def test_config_error_named(directive, snippet, msg):
    h = Httpd(GOOD + "# padding line\n" + snippet, name="cfg")
    try:
        r = h.configtest()
        assert r.returncode != 0, r.stderr
        out = r.stderr
        # file and line number of the offending directive
        m = re.search(r"line (\d+) of (\S+?):", out)
        assert m, out
        assert m.group(2) == h.conf
        lines = open(h.conf).read().splitlines()
        assert directive in lines[int(m.group(1)) - 1], (out, lines[int(m.group(1)) - 1])
        assert re.search(msg, out), out
    finally:
        h.cleanup()


GOOD_MORE = [
    # one profile: it is the default of every location
    GOOD + "<Location /x>\nAuthType eid\nRequire eid-loa 3\n</Location>",
    # several: named by the virtual host, or by an enclosing location
    GOOD + "EidTrustIssuer e {pki}/ca/eid.pem loa=3 ids=pnr\n<VirtualHost 127.0.0.1:9>\n"
    "EidCertProfiles e\n<Location /x>\nAuthType eid\nRequire valid-user\n</Location>\n"
    "</VirtualHost>",
    GOOD + "EidTrustIssuer e {pki}/ca/eid.pem loa=3 ids=pnr\nEidCertProfiles siths\n"
    "<Location /x>\nAuthType eid\nRequire valid-user\n</Location>",
    GOOD + "EidTrustIssuer e {pki}/ca/eid.pem loa=3 ids=pnr\n<Location />\n"
    "EidCertProfiles e\n</Location>\n<Location /x/>\nAuthType eid\nRequire valid-user\n"
    "</Location>",
    # a main-server location is merged into each virtual host, which names its own
    GOOD + "EidTrustIssuer e {pki}/ca/eid.pem loa=3 ids=pnr\n<Location /x>\nAuthType eid\n"
    "Require valid-user\n</Location>\n<VirtualHost 127.0.0.1:9>\nEidCertProfiles e\n"
    "</VirtualHost>",
    # two providers for one issuer, never in reach of one location together
    PROVIDERS + SAME_ISSUER + "<Location /x>\nAuthType eid\nEidMethods bearer\n"
    "EidBearerProviders a b\nRequire valid-user\n</Location>\n<Location /y>\n"
    "AuthType eid\nEidMethods bearer\nEidBearerProviders c\nRequire valid-user\n</Location>",
    # the documented opt-ins: a root that issues people's certificates, ids=any
    "EidTrustIssuer r {pki}/ca/root.pem loa=3 ids=any root-issuer\n",
]


@pytest.mark.parametrize("body", GOOD_MORE, ids=range(len(GOOD_MORE)))
def test_good_config_passes(body):
    h = Httpd(body, name="cfg")
    try:
        r = h.configtest()
        assert r.returncode == 0, r.stderr
    finally:
        h.cleanup()


@pytest.mark.parametrize("sample", sorted(f for f in os.listdir(os.path.join(REPO, "conf-samples"))
                                          if f.endswith(".conf") and f != "auth_eid.conf"))
def test_conf_samples_pass_configtest(sample):
    """Each shipped sample, with its file locations pointed at the test PKI."""
    path = os.path.join(REPO, "conf-samples", sample)
    h = Httpd("Define EID_CONF_DIR {root}/conf\nDefine EID_STATE_DIR {root}\nInclude %s"
              % path, name="sample")
    sample_conf_dir(h.root)
    try:
        r = h.configtest()
        assert r.returncode == 0, r.stderr
    finally:
        h.cleanup()
