"""Attacks on named policies and the per-connection verdict memo (issue 12):
a verdict kept for one identity must never answer for another - not across
connection slots (directories, profiles), not through a subrequest that runs
inside a Require line - and the samples' own-organisation rule must not be
fooled by path parameters a backend may strip."""
import os
import shutil
import tempfile

import pytest
import requests

from eidtest import TRUST_PROFILES, Httpd, pki, user_cert
from test_directory import DIRECTORY, write_dir

CA = pki("ca", "server-ca.pem")

# An empty directory: the same certificate gets no groups there.
EMPTY_DIR = "Organisation 212000-9960 kind=municipality name=\"Kiruna kommun\"\n"

POLICY = ("EidPolicy county-staff \"'county' -in eid_list('groups') && "
          "%{{EID_LOA}} -ge 3\"\n")


def loc(path, directory, profiles, rules):
    return ("<Location %s>\nAuthType eid\nEidMethods cert\nEidUseDirectory %s\n"
            "EidCertProfiles %s\n%s\n</Location>\n" % (path, directory, profiles, rules))


def evict_conf():
    c = TRUST_PROFILES
    c += "EidDirectory county {root}/directory.conf\n"
    c += "EidDirectory empty {root}/empty.conf\n"
    c += POLICY
    # four fillers, each its own (directory, profiles) connection slot
    c += loc("/m/", "empty", "siths", "Require valid-user")
    c += loc("/a/", "none", "siths", "Require valid-user")
    c += loc("/b/", "county", "siths eid", "Require valid-user")
    c += loc("/c/", "empty", "siths eid", "Require valid-user")
    # /main/ has /m/'s slot; the -U look-ahead runs a subrequest of a fifth kind
    # inside its Require lines, which takes a slot of its own
    c += loc("/main/", "empty", "siths",
             "<RequireAll>\nRequire expr \"-U '/sub/'\"\n"
             "Require eid-policy county-staff\n</RequireAll>")
    c += loc("/sub/", "county", "siths", "Require eid-policy county-staff")
    return c


@pytest.fixture(scope="module")
def evict_srv():
    s = Httpd(evict_conf(), name="pol-evict")
    write_dir(s.root)
    with open(os.path.join(s.root, "empty.conf"), "w") as f:
        f.write(EMPTY_DIR)
    for name in ("m", "a", "b", "c", "main", "sub"):
        os.makedirs(os.path.join(s.root, "htdocs", name), exist_ok=True)
        with open(os.path.join(s.root, "htdocs", name, "index.html"), "w") as f:
            f.write(name + "\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


def test_memo_of_an_evicted_slot_answers_for_nobody_else(evict_srv, logcheck):
    """The subrequest of /main/'s `-U` takes the connection slot /main/'s
    identity was in (the ring of four is full) and keeps its own verdict of
    county-staff there - granted: it is enriched from the county directory.
    /main/'s identity (the empty directory: no groups) must still be denied."""
    c = logcheck(evict_srv)
    c.expect_log(r"AH01630: client denied")
    # the same certificate, alone on its connection, is denied at /main/
    r = requests.get(evict_srv.url("/main/"), verify=CA, timeout=20,
                     cert=user_cert("nurse-kommun"))
    assert r.status_code == 403
    assert requests.get(evict_srv.url("/sub/"), verify=CA, timeout=20,
                        cert=user_cert("nurse-kommun")).status_code == 200
    with requests.Session() as sess:
        sess.verify = CA
        sess.cert = user_cert("nurse-kommun")
        got = [sess.get(evict_srv.url(p), verify=CA, timeout=20).status_code
               for p in ("/m/", "/a/", "/b/", "/c/", "/main/")]
    assert got == [200, 200, 200, 200, 403]


# ---- request-dependent policies are never kept --------------------------------

# Each clause flips with something of the request; the identity part is true for
# nurse-kommun.  (name, clause, how to make it true, how to make it false)
GROUP = "'county' -in eid_list('groups')"
FLIPS = [
    ("lower", "tolower(%{{REQUEST_URI}}) =~ m#/yes/#", "/rd/lower/YES/", "/rd/lower/no/"),
    ("query", "%{{QUERY_STRING}} -strmatch 'ok*'", "/rd/query/?ok1", "/rd/query/?no"),
    ("hdr", "req('X-Flag') == 'on'", ("/rd/hdr/", "on"), ("/rd/hdr/", "off")),
    ("http", "http('X-Flag') == 'on'", ("/rd/http/", "on"), ("/rd/http/", "off")),
    ("env", "env('FLAG') == 'on'", ("/rd/env/", "on"), ("/rd/env/", "off")),
    ("backref", "%{{REQUEST_URI}} =~ m#/rd/backref/(\\w+)/# && $1 == 'yes'",
     "/rd/backref/yes/", "/rd/backref/no/"),
]


def flip_conf():
    c = TRUST_PROFILES + "EidDirectory county {root}/directory.conf\n"
    c += 'SetEnvIf X-Flag "^on$" FLAG=on\n'
    for name, clause, _, _ in FLIPS:
        c += 'EidPolicy rd-%s "%s && %s"\n' % (name, GROUP, clause)
        c += ("<Location /rd/%s/>\nAuthType eid\nEidCertProfiles siths\n"
              "Require eid-policy rd-%s\n</Location>\n" % (name, name))
    return c


@pytest.fixture(scope="module")
def flip_srv():
    s = Httpd(flip_conf(), name="pol-flip")
    write_dir(s.root)
    for name, _, _, _ in FLIPS:
        for sub in ("", "YES", "no", "yes"):
            d = os.path.join(s.root, "htdocs", "rd", name, sub)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "index.html"), "w") as f:
                f.write("x\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


@pytest.mark.parametrize("name,clause,yes,no", FLIPS, ids=[f[0] for f in FLIPS])
def test_request_dependent_policy_is_evaluated_per_request(flip_srv, logcheck, name,
                                                           clause, yes, no):
    c = logcheck(flip_srv)
    c.expect_log(r"AH01630: client denied")
    with requests.Session() as sess:
        sess.cert = user_cert("nurse-kommun")
        got = []
        for req in (yes, no, yes, no):
            path, flag = req if isinstance(req, tuple) else (req, None)
            h = {"X-Flag": flag} if flag else {}
            got.append(sess.get(flip_srv.url(path), headers=h, verify=CA,
                                timeout=20).status_code)
    assert got == [200, 403, 200, 403]


# ---- the samples' own-organisation rule and path tricks -------------------------

@pytest.fixture(scope="module")
def sample_op():
    from opctl import TestOP
    d = tempfile.mkdtemp(prefix="eid-op-atk-")
    o = TestOP(d).start()
    yield o
    o.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def incidents(sample_op):
    from test_samples_policy import site
    s = site(sample_op, "incident-reporting.conf")
    yield s
    s.stop()
    s.cleanup()


def raw(s, method, path, cert):
    """The path exactly as written (no client-side dot-segment removal)."""
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(*user_cert(cert))
    conn = http.client.HTTPSConnection("localhost", s.port, context=ctx, timeout=20)
    try:
        conn.request(method, path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_own_organisation_sample_refuses_path_parameters(incidents, logcheck):
    """nurse-kommun (212000-2874) may change only its organisation's reports.
    A servlet container behind the proxy strips ';' parameters from a segment
    before it resolves dot segments: `..;` is `..` there, so the path below
    is the region's report 17.  httpd's REQUEST_URI keeps `..;` as a name, and
    a rule that only looks at the first segment after /org/ granted it."""
    from test_samples_policy import KOMMUN, REGION
    c = logcheck(incidents)
    c.expect_log(r"AH01909")  # the test certificate names only localhost
    c.expect_log(r"AH01630: client denied")
    assert raw(incidents, "PUT", "/incidents/org/%s/17" % KOMMUN, "nurse-kommun") == 200
    for trick in ("/incidents/org/%s/..;/..;/org/%s/17" % (KOMMUN, REGION),
                  "/incidents/org/%s/..;x=1/%s/17" % (KOMMUN, REGION),
                  "/incidents/org/%s;/../%s/17" % (KOMMUN, REGION),
                  "/incidents/org/%s/%%3b/../../%s/17" % (KOMMUN, REGION),
                  "/incidents/org/%s/..%%5c..%%5corg%%5c%s/17" % (KOMMUN, REGION)):
        assert raw(incidents, "PUT", trick, "nurse-kommun") == 403, trick


# ---- a certificate's organisation: the longer HSA-ID prefix wins ------------------

# docs/directory.md: "A private provider whose staff carry HSA-IDs in the region's
# catalogue too: the longer prefix wins".  Here doctor-region's HSA-ID
# SE2321000016-K3X9 lies under the provider's prefix SE2321000016-K3.
NESTED_DIR = """\
Organisation 232100-0016 kind=region       name="Region Exempel" hsa=SE2321000016-
Organisation 556999-9997 kind=private-care name="Norrvård AB"    hsa=SE5569999997-,SE2321000016-K3
Group county 232100-0016
Group vardsamverkan county 556999-9997
"""


@pytest.fixture(scope="module")
def nested_srv():
    c = TRUST_PROFILES + "EidDirectory county {root}/directory.conf\n"
    c += 'ScriptAlias /who/echo "{root}/cgi/echo.py"\n'
    c += ("<Location /who/>\nAuthType eid\nEidCertProfiles siths\nRequire valid-user\n"
          "</Location>\n<Location /county/>\nAuthType eid\nEidCertProfiles siths\n"
          "Require eid-group county\n</Location>\n")
    s = Httpd(c, name="pol-nested")
    write_dir(s.root, NESTED_DIR)
    os.makedirs(os.path.join(s.root, "htdocs", "county"))
    with open(os.path.join(s.root, "htdocs", "county", "index.html"), "w") as f:
        f.write("county\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


def test_card_of_provider_staff_in_region_catalogue_is_the_providers(nested_srv, logcheck):
    """The number a SITHS card's identity carries is read out of its HSA-ID
    (SE2321000016-...): it must not make the provider's staff region staff."""
    c = logcheck(nested_srv)
    c.expect_log(r"AH01630: client denied")
    env = requests.get(nested_srv.url("/who/echo"), verify=CA, timeout=20,
                       cert=user_cert("doctor-region")).json()
    assert env["EID_HSA_ID"] == "SE2321000016-K3X9"
    assert env["EID_ORG_KIND"] == "private-care"
    # ... and the care provider an own-organisation rule compares with
    assert env["EID_ORG_NUMBER"] == "5569999997"
    assert env["EID_GROUPS"] == "vardsamverkan"
    assert requests.get(nested_srv.url("/county/"), verify=CA, timeout=20,
                        cert=user_cert("doctor-region")).status_code == 403
    # the region's other staff stay the region's
    env = requests.get(nested_srv.url("/who/echo"), verify=CA, timeout=20,
                       cert=user_cert("nurse-kommun")).json()
    assert "EID_ORG_KIND" not in env  # 212000-2874 is not in this directory


# ---- .htaccess and virtual hosts that name directories and policies -------------

def scope_conf():
    c = TRUST_PROFILES + "EidDirectory county {root}/directory.conf\n"
    c += "EidDirectory empty {root}/empty.conf\n" + POLICY
    c += ("<Directory {root}/htdocs/ht>\nAllowOverride AuthConfig\n</Directory>\n"
          "<Directory {root}/vh>\nRequire all granted\n</Directory>\n")
    # the first: the default for 127.0.0.1 (Host: localhost, the .htaccess tests)
    c += ("<VirtualHost 127.0.0.1:*>\nServerName localhost\nSSLEngine on\n"
          "SSLCertificateFile {pki}/server/localhost.pem\n"
          "SSLCertificateKeyFile {pki}/server/localhost.key\n"
          "SSLCACertificateFile {pki}/ca/client-trust.pem\nSSLVerifyClient optional\n"
          "SSLVerifyDepth 3\n</VirtualHost>\n")
    for name, directory in (("a", "county"), ("b", "empty")):
        c += ("<VirtualHost 127.0.0.1:*>\nServerName %s.localhost\nSSLEngine on\n"
              "SSLCertificateFile {pki}/server/localhost.pem\n"
              "SSLCertificateKeyFile {pki}/server/localhost.key\n"
              "SSLCACertificateFile {pki}/ca/client-trust.pem\nSSLVerifyClient optional\n"
              "SSLVerifyDepth 3\nDocumentRoot {root}/vh\n<Location />\nAuthType eid\n"
              "EidCertProfiles siths\nEidUseDirectory %s\n"
              "Require eid-policy county-staff\n</Location>\n</VirtualHost>\n"
              % (name, directory))
    return c


@pytest.fixture(scope="module")
def scope_srv():
    s = Httpd(scope_conf(), name="pol-scope")
    write_dir(s.root)
    with open(os.path.join(s.root, "empty.conf"), "w") as f:
        f.write(EMPTY_DIR)
    os.makedirs(os.path.join(s.root, "vh"))
    with open(os.path.join(s.root, "vh", "index.html"), "w") as f:
        f.write("vh\n")
    for name, directory in (("county", "county"), ("empty", "empty")):
        d = os.path.join(s.root, "htdocs", "ht", name)
        os.makedirs(d)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write(name + "\n")
        with open(os.path.join(d, ".htaccess"), "w") as f:
            f.write("AuthType eid\nEidCertProfiles siths\nEidUseDirectory %s\n"
                    "Require eid-policy county-staff\n" % directory)
    with open(os.path.join(s.root, "htdocs", "ht", ".htaccess"), "w") as f:
        f.write("")
    d = os.path.join(s.root, "htdocs", "ht", "define")
    os.makedirs(d)
    with open(os.path.join(d, ".htaccess"), "w") as f:
        f.write("EidPolicy mine \"true\"\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


def one_connection(s, requests_, cert="nurse-kommun"):
    """[(host, path)] on one TLS connection (the SNI is the first host's)."""
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(*user_cert(cert))
    conn = http.client.HTTPSConnection("localhost", s.port, context=ctx, timeout=20)
    out = []
    try:
        for host, path in requests_:
            conn.request("GET", path, headers={"Host": "%s:%d" % (host, s.port)})
            r = conn.getresponse()
            r.read()
            out.append(r.status)
    finally:
        conn.close()
    return out


def test_htaccess_directories_on_one_connection_both_orders(scope_srv, logcheck):
    c = logcheck(scope_srv)
    c.expect_log(r"AH01909")  # the test certificate names only localhost
    c.expect_log(r"AH01630: client denied")
    seq = ["/ht/county/", "/ht/empty/", "/ht/county/", "/ht/empty/"]
    assert one_connection(scope_srv, [("localhost", p) for p in seq]) == [200, 403, 200, 403]
    seq.reverse()
    assert one_connection(scope_srv, [("localhost", p) for p in seq]) == [403, 200, 403, 200]


def test_two_virtual_hosts_on_one_connection(scope_srv, logcheck):
    c = logcheck(scope_srv)
    c.expect_log(r"AH01909")  # the test certificate names only localhost
    c.expect_log(r"AH01630: client denied")
    seq = [("a.localhost", "/"), ("b.localhost", "/"), ("a.localhost", "/"),
           ("b.localhost", "/")]
    assert one_connection(scope_srv, seq) == [200, 403, 200, 403]
    assert one_connection(scope_srv, seq[1:]) == [403, 200, 403]


def test_policy_cannot_be_defined_in_htaccess(scope_srv, logcheck):
    c = logcheck(scope_srv)
    c.expect_log(r"AH01909")  # the test certificate names only localhost
    c.expect_log(r"EidPolicy not allowed here")
    assert one_connection(scope_srv, [("localhost", "/ht/define/")]) == [500]


def test_own_organisation_sample_and_method_override(incidents, logcheck):
    """Below /incidents/org/<number>/ a POST is a change too: many backends
    (servlet filters, Rails, Laravel, Express) turn POST + _method=DELETE or
    X-HTTP-Method-Override into DELETE.  Reporting (POST /incidents/) stays
    open to the collaboration."""
    from test_samples_policy import KOMMUN, REGION
    c = logcheck(incidents)
    c.expect_log(r"AH01909")  # the test certificate names only localhost
    c.expect_log(r"AH01630: client denied")
    assert raw(incidents, "POST", "/incidents/", "nurse-kommun") == 200
    assert raw(incidents, "POST", "/incidents/org/%s/17" % KOMMUN, "nurse-kommun") == 200
    assert raw(incidents, "POST", "/incidents/org/%s/17?_method=DELETE" % REGION,
               "nurse-kommun") == 403
    assert raw(incidents, "GET", "/incidents/org/%s/17" % REGION, "nurse-kommun") == 200


# ---- subrequests and internal redirects into policy locations --------------------

SUB_CONF = """
EidDirectory county {root}/directory.conf
EidPolicy county-staff "'county' -in eid_list('groups') && %{{EID_LOA}} -ge 3"
EidPolicy never "%{{EID_LOA}} -ge 5"
ScriptAliasMatch "^/[a-z]+/echo$" "{root}/cgi/echo.py"
<Directory {root}/htdocs>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
RewriteEngine on
RewriteRule "^/alias/(.*)$" "/pol/$1" [PT]
<Location /pol/>
    AuthType eid
    EidCertProfiles siths
    Require eid-policy county-staff
</Location>
<Location /deny/>
    AuthType eid
    EidCertProfiles siths
    Require eid-policy never
    ErrorDocument 403 /pol/echo
</Location>
"""

OPEN_PAGE = ('I:<!--#include virtual="/pol/echo" -->\n'
             'X:<!--#if expr="%{EID_LOA} -ge 3 || -n %{EID_HSA_ID}" -->SECRET<!--#endif -->\n')


@pytest.fixture(scope="module")
def sub_srv():
    s = Httpd(TRUST_PROFILES + SUB_CONF, name="pol-sub", extra_modules=["include", "rewrite"])
    write_dir(s.root)
    for d in ("open", "pol"):
        os.makedirs(os.path.join(s.root, "htdocs", d))
        with open(os.path.join(s.root, "htdocs", d, "page.shtml"), "w") as f:
            f.write(OPEN_PAGE)
    s.start()
    yield s
    s.stop()
    s.cleanup()


def test_ssi_include_and_if_with_policy(sub_srv, logcheck):
    c = logcheck(sub_srv)
    c.expect_log(r"AH01630: client denied", r"unable to include")
    t = requests.get(sub_srv.url("/open/page.shtml"), verify=CA, timeout=20,
                     cert=user_cert("nurse-kommun")).text
    # the include authenticates on its own: the card's identity, county-enriched
    assert '"EID_HSA_ID": "SE2120002874-P000000004711"' in t
    # the open page itself has no identity: its #if sees none
    assert "SECRET" not in t
    t = requests.get(sub_srv.url("/pol/page.shtml"), verify=CA, timeout=20,
                     cert=user_cert("nurse-kommun")).text
    assert "SECRET" in t
    # the reserve card (LoA 2) is denied by the include's policy
    t = requests.get(sub_srv.url("/open/page.shtml"), verify=CA, timeout=20,
                     cert=user_cert("nurse-kommun-reserve")).text
    assert "EID_HSA_ID" not in t and "SECRET" not in t


def test_rewrite_pt_and_error_document_into_policy(sub_srv, logcheck):
    c = logcheck(sub_srv)
    c.expect_log(r"AH01630: client denied")
    r = requests.get(sub_srv.url("/alias/echo"), verify=CA, timeout=20,
                     cert=user_cert("nurse-kommun-reserve"))
    assert r.status_code == 403
    r = requests.get(sub_srv.url("/alias/echo"), verify=CA, timeout=20,
                     cert=user_cert("nurse-kommun"))
    assert r.status_code == 200 and r.json()["EID_GROUPS"].startswith("county")
    # denied by a policy: the error document (a policy location) gets no identity
    r = requests.get(sub_srv.url("/deny/x"), verify=CA, timeout=20,
                     cert=user_cert("nurse-kommun"))
    assert r.status_code == 403
    assert "EID_HSA_ID" not in r.text


# ---- hostile values: quotes, commas, non-ASCII, long lists ------------------------

def test_hostile_claim_values_in_expressions_and_audit(sample_op, logcheck):
    from test_directory import AUD
    from eidtest import unique_path
    body = TRUST_PROFILES
    body += ("EidProvider inera issuer=%s discovery=on audience=%s algs=RS256,ES256 "
             "claims=inera\n" % (sample_op.issuer, AUD))
    body += "EidDirectory county {root}/directory.conf\n"
    body += 'ScriptAliasMatch "^/[a-z]+/echo(/.*)?$" "{root}/cgi/echo.py"\n'
    for name, rule in (
            # exact membership: the value with a comma is one role
            ("exact", "Require expr \"'x,BIF;Admin' -in eid_list('roles')\""),
            ("split", "Require expr \"'BIF;Admin' -in eid_list('roles')\""),
            # a value with a quote compares as text, never as expression syntax
            ("quote", "Require expr \"%{{EID_ORG_NAME}} == 'Vård \\\"AB\\\"'\""),
            ("pol", "Require eid-policy hostile")):
        body += ("<Location /%s/>\nAuthType eid\nEidMethods bearer\n%s\n</Location>\n"
                 % (name, rule))
    body = body.replace("EidDirectory county {root}/directory.conf\n",
                        "EidDirectory county {root}/directory.conf\n"
                        "EidPolicy hostile \"'reporter' -in eid_list('dir-roles') && "
                        "%{{EID_ORG_NAME}} =~ /\\\"/\"\n")
    s = Httpd(body, name="pol-hostile")
    write_dir(s.root)
    s.start()
    try:
        c = logcheck(s)
        c.expect_log(r"AH01630: client denied")
        roles = ["x,BIF;Admin", 'q"uote', "Läkare ✓", "\\back"] + ["r%04d" % i for i in range(400)]
        hsa = "SE2120002874-H1"
        tok = sample_op.mint(preset="inera-nurse", aud=AUD, claims={
            "sub": hsa, "employeeHsaId": hsa, "allEmployeeHsaIds": [hsa],
            "healthCareProviderHsaId": "SE2120002874-F1", "healthCareProviderOrgNo": "2120002874",
            "healthCareProviderName": 'Vård "AB"', "systemRole": roles,
            "healthCareUnitHsaId": "SE2120002874-E1", "commissionHsaId": "SE2120002874-U1"})
        h = {"Authorization": "Bearer " + tok}

        def st(path):
            return requests.get(s.url(path), headers=h, verify=CA, timeout=20).status_code
        assert st("/exact/echo") == 200
        assert st("/split/echo") == 403
        assert st("/quote/echo") == 200
        p = unique_path("/pol/echo")
        assert st(p) == 200
        rec = s.wait_audit(p, 1)[-1]
        assert rec["roles"] == roles
        assert rec["org_name"] == 'Vård "AB"'
        assert rec["authz"] == ["eid-policy hostile: granted"]
        assert rec["dir_roles"] == ["nurse", "reporter"]
    finally:
        s.stop()
        s.cleanup()


# ---- HTTP/2: many streams of one connection across directories and policies ------

def test_h2_parallel_streams_policies_and_directories(logcheck):
    import collections
    import re
    import subprocess
    conf = "Protocols h2 http/1.1\n" + TRUST_PROFILES
    conf += "EidDirectory county {root}/directory.conf\nEidDirectory empty {root}/empty.conf\n"
    conf += POLICY
    for i in range(6):
        conf += ("<Location /h%d/>\nAuthType eid\nEidCertProfiles %s\nEidUseDirectory %s\n"
                 "Require eid-policy county-staff\n</Location>\n"
                 % (i, "siths" if i % 3 else "siths eid", "county" if i % 2 == 0 else "empty"))
    s = Httpd(conf, name="pol-h2", extra_modules=["http2"])
    write_dir(s.root)
    with open(os.path.join(s.root, "empty.conf"), "w") as f:
        f.write(EMPTY_DIR)
    for i in range(6):
        os.makedirs(os.path.join(s.root, "htdocs", "h%d" % i))
        with open(os.path.join(s.root, "htdocs", "h%d" % i, "x.txt"), "w") as f:
            f.write("h%d\n" % i)
    s.start()
    try:
        c = logcheck(s)
        c.expect_log(r"AH01630: client denied")
        chain, key = user_cert("nurse-kommun")
        cmd = ["curl", "-s", "--http2", "--cacert", CA, "--cert", chain, "--key", key, "-Z",
               "--parallel-max", "50", "-o", "/dev/null", "-w", "%{url} %{http_version} "
               "%{http_code}\\n"]
        for i in range(300):
            cmd.append(s.url("/h%d/x.txt" % (i % 6)))
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
        got = collections.Counter(re.findall(r"/h(\d)/x.txt (\d) (\d{3})", out))
        # county directory (even locations): granted; empty directory: denied
        assert got == {(str(i), "2", "200" if i % 2 == 0 else "403"): 50 for i in range(6)}
    finally:
        s.stop()
        s.cleanup()


# ---- one staff IdP, several services: a token for one is not one for another -----

def test_incident_reporting_token_does_not_read_patient_overview(sample_op, logcheck):
    """county-common.conf's one provider accepts the audiences of both APIs
    (one provider per issuer and server; audiences are not per location): a
    token the incident-reporting service received - for api://incident-reporting
    - must not read patient data when that service replays it."""
    from test_samples_policy import site, staff_token, REGION
    s = site(sample_op, "patient-overview.conf")
    try:
        c = logcheck(s)
        c.expect_log(r"AH01909", r"AH01630: client denied", r"EID01530")
        t = staff_token(sample_op, REGION, "K3X9", "api://incident-reporting",
                        rights=("Läsa;Alla;Sjf=JA",), scope="incident-reporting")
        r = requests.get(s.url("/api/patients/1"), verify=CA, timeout=20,
                         headers={"Authorization": "Bearer " + t})
        # refused by the location's EidBearerAudience: not a token for this API
        assert r.status_code == 401
        t = staff_token(sample_op, REGION, "K3X9", "api://patient-overview",
                        rights=("Läsa;Alla;Sjf=JA",), scope="patient-overview")
        r = requests.get(s.url("/api/patients/1"), verify=CA, timeout=20,
                         headers={"Authorization": "Bearer " + t})
        assert r.status_code == 200
    finally:
        s.stop()
        s.cleanup()


def test_patient_overview_token_does_not_report_incidents(incidents, sample_op, logcheck):
    """The other way round: a token the patient overview received (for
    api://patient-overview) must not file or change incident reports."""
    from test_samples_policy import staff_token, KOMMUN
    c = logcheck(incidents)
    c.expect_log(r"AH01909", r"AH01630: client denied", r"EID01530")
    for aud, scope, want in (("api://patient-overview", "patient-overview", 401),
                             ("api://incident-reporting", "incident-reporting", 200)):
        t = staff_token(sample_op, KOMMUN, "P1", aud, scope=scope)
        for method, path in (("POST", "/incidents/"), ("PUT", "/incidents/org/%s/1" % KOMMUN)):
            r = requests.request(method, incidents.url(path), verify=CA, timeout=20,
                                 headers={"Authorization": "Bearer " + t})
            assert r.status_code == want, (aud, method, path)
