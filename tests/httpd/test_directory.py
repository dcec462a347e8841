"""The organisation directory in httpd: EidDirectory / EidUseDirectory, the
identity enriched with organisation kind, groups and directory roles (client
certificates from the test PKI, bearer tokens from the test OP), the Require
providers eid-group, eid-role, eid-org-kind and eid-commission, the export,
and the start-up errors (file:line of the directive and of the directory)."""
import http.client
import os
import re
import shutil
import signal
import ssl
import sys
import tempfile
import time

import pytest
import requests

from eidtest import REPO, TRUST_PROFILES, Httpd, pki, unique_path, user_cert

sys.path.insert(0, os.path.join(REPO, "tests", "op"))
from opctl import TestOP  # noqa: E402

AUD = "api://county"
CA = pki("ca", "server-ca.pem")

# docs/directory.md's county, with the organisations of the test PKI and OP:
# nurse-kommun's municipality 212000-2874 and the region 232100-0016
# (doctor-region's certificate, the OP's inera-nurse token).
DIRECTORY = """\
# test county
Organisation 232100-0016 kind=region       name="Region Exempel" hsa=SE2321000016-
Organisation 212000-2874 kind=municipality name="Exempel kommun" hsa=SE2120002874-
Organisation 212000-9960 kind=municipality name="Kiruna kommun"
Organisation 212000-9952 kind=municipality name="Sorsele kommun" hsa=SE2120009952-  # other county
Organisation 556999-9997 kind=private-care name="Norrvård AB"    hsa=SE5569999997-

Group county-kommuner 212000-2874 212000-9960
Group county          232100-0016 county-kommuner
Group vardsamverkan   county 556999-9997

Role nurse     group=county-kommuner purpose="Vård och behandling"
Role physician org-kind=region purpose="Vård och behandling" right="Läsa;Alla;Sjf=JA"
Role reporter  group=vardsamverkan
Role admin     hsa-id=SE2321000016-ADM1
"""

LOCATIONS = {
    # members of the county group at LoA 3 or higher
    "grp-loa": "<RequireAll>\nRequire eid-group county\nRequire eid-loa 3\n</RequireAll>",
    "physician": "Require eid-role physician",
    "muni": "Require eid-org-kind municipality",
    "vob": 'Require eid-commission "purpose=Vård och behandling" right=Läsa;Alla;VG',
    "not-private": "<RequireAll>\nRequire valid-user\nRequire not eid-org-kind private-care"
                   "\n</RequireAll>",
    "echo": "Require valid-user",
    "off": "EidUseDirectory none\nRequire valid-user",
    "hdr": "EidExportHeaders on\nRequire valid-user",
}


def conf(op):
    c = TRUST_PROFILES
    c += ("EidProvider inera issuer=%s discovery=on audience=%s algs=RS256,ES256 "
          "claims=inera\n" % (op.issuer, AUD))
    c += "EidDirectory county {root}/directory.conf\n"
    c += 'ScriptAliasMatch "^/[a-z-]+/echo$" "{root}/cgi/echo.py"\n'
    for name, rules in LOCATIONS.items():
        c += ("<Location /%s/>\nAuthType eid\nEidMethods cert bearer\n%s\n</Location>\n"
              % (name, rules))
    return c


@pytest.fixture(scope="module")
def op():
    d = tempfile.mkdtemp(prefix="eid-op-dir-")
    o = TestOP(d).start()
    yield o
    o.stop()
    shutil.rmtree(d, ignore_errors=True)


def write_dir(root, text=DIRECTORY):
    with open(os.path.join(root, "directory.conf"), "w", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture(scope="module")
def srv(op):
    s = Httpd(conf(op), name="directory")
    write_dir(s.root)
    for name in LOCATIONS:
        os.makedirs(os.path.join(s.root, "htdocs", name))
        with open(os.path.join(s.root, "htdocs", name, "index.html"), "w") as f:
            f.write(name + "\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture
def logged(srv, logcheck):
    return logcheck(srv)


@pytest.fixture
def denials(logged):
    logged.expect_log(r"AH01630: client denied")
    return logged


def get(srv, path, cert=None, token=None):
    h = {"Authorization": "Bearer " + token} if token else {}
    return requests.get(srv.url(path), headers=h, verify=CA, timeout=20,
                        cert=user_cert(cert) if cert else None)


def region_token(op, **claims):
    return op.mint(preset="inera-nurse", claims=claims, aud=AUD)


def sorsele_token(op, **claims):
    c = {"sub": "SE2120009952-G7", "employeeHsaId": "SE2120009952-G7",
         "allEmployeeHsaIds": ["SE2120009952-G7"],
         "healthCareProviderHsaId": "SE2120009952-F1",
         "healthCareProviderOrgNo": "2120009952",
         "healthCareUnitHsaId": "SE2120009952-E1",
         "commissionHsaId": "SE2120009952-U1"}
    c.update(claims)
    return op.mint(preset="inera-nurse", claims=c, aud=AUD)


# ---- enrichment and export ------------------------------------------------------

def test_certificate_identity_is_enriched_and_exported(srv, logged):
    env = get(srv, "/echo/echo", cert="nurse-kommun").json()
    assert env["EID_ORG_KIND"] == "municipality"
    assert env["EID_GROUPS"] == "county,county-kommuner,vardsamverkan"
    # a certificate carries no commission: only the group's role
    assert env["EID_DIR_ROLES"] == "reporter"
    env = get(srv, "/echo/echo", cert="doctor-region").json()
    assert env["EID_ORG_KIND"] == "region"
    assert env["EID_GROUPS"] == "county,vardsamverkan"
    env = get(srv, "/echo/echo", cert="citizen").json()
    for k in ("EID_ORG_KIND", "EID_GROUPS", "EID_DIR_ROLES"):
        assert k not in env


def test_token_identity_is_enriched_system_roles_kept_apart(srv, op, logged):
    tok = region_token(op, commissionRight=["Läsa;Alla;Sjf=JA"])
    for _ in range(2):  # a miss, then a token-cache hit: the same answer
        env = get(srv, "/echo/echo", token=tok).json()
        assert env["EID_ORG_KIND"] == "region"
        assert env["EID_GROUPS"] == "county,vardsamverkan"
        assert env["EID_DIR_ROLES"] == "physician,reporter"
        # EID_ROLES keeps its meaning: the token's system roles
        assert env["EID_ROLES"] == "BIF;Spärradministratör,INCIDENT;Rapportör"


def test_headers_carry_the_directory_attributes(srv, op, logged):
    env = get(srv, "/hdr/echo", token=region_token(op)).json()
    assert env["HTTP_X_EID_ORG_KIND"] == "region"
    assert env["HTTP_X_EID_GROUPS"] == "county,vardsamverkan"
    assert env["HTTP_X_EID_DIR_ROLES"] == "reporter"
    # where headers are off (the default) they are not sent
    assert "HTTP_X_EID_ORG_KIND" not in get(srv, "/echo/echo", cert="nurse-kommun").json()


def test_use_directory_none_turns_enrichment_off(srv, logged):
    env = get(srv, "/off/echo", cert="nurse-kommun").json()
    assert env["EID_HSA_ID"] == "SE2120002874-P000000004711"
    assert "EID_GROUPS" not in env and "EID_ORG_KIND" not in env


def test_keepalive_connection_across_directory_and_none(srv, logged):
    # One TLS connection: the verdict is cached per (profiles, directory), so a
    # location without a directory never sees the enriched identity and back.
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(*user_cert("nurse-kommun"))
    conn = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=20)
    try:
        seen = []
        for p in ("/echo/echo", "/off/echo", "/echo/echo"):
            conn.request("GET", p)
            r = conn.getresponse()
            body = r.read().decode()
            seen.append("EID_GROUPS" in body)
    finally:
        conn.close()
    assert seen == [True, False, True]


# ---- policies: who gets in, who does not -----------------------------------------

def test_group_and_loa(srv, op, denials):
    assert get(srv, "/grp-loa/", cert="nurse-kommun").status_code == 200
    assert get(srv, "/grp-loa/", cert="doctor-region").status_code == 200
    assert get(srv, "/grp-loa/", token=region_token(op)).status_code == 200
    # near misses: right group, LoA 2 (reserve card); a citizen; a municipality
    # outside the group
    assert get(srv, "/grp-loa/", cert="nurse-kommun-reserve").status_code == 403
    assert get(srv, "/grp-loa/", cert="citizen").status_code == 403
    assert get(srv, "/grp-loa/", token=sorsele_token(op)).status_code == 403


def test_role(srv, op, denials):
    ok = region_token(op, commissionRight=["Läsa;Alla;Sjf=JA"])
    assert get(srv, "/physician/", token=ok).status_code == 200
    # right role rule, wrong purpose; right purpose, missing right; a region
    # certificate (no commission at all); a municipal nurse
    wrong_purpose = region_token(op, commissionRight=["Läsa;Alla;Sjf=JA"],
                                 commissionPurpose="Administration")
    assert get(srv, "/physician/", token=wrong_purpose).status_code == 403
    assert get(srv, "/physician/", token=region_token(op)).status_code == 403
    assert get(srv, "/physician/", cert="doctor-region").status_code == 403
    assert get(srv, "/physician/", cert="nurse-kommun").status_code == 403


def test_org_kind(srv, op, denials):
    assert get(srv, "/muni/", cert="nurse-kommun").status_code == 200
    # outside the county, but a municipality all the same
    assert get(srv, "/muni/", token=sorsele_token(op)).status_code == 200
    assert get(srv, "/muni/", cert="doctor-region").status_code == 403
    assert get(srv, "/muni/", token=region_token(op)).status_code == 403
    assert get(srv, "/muni/", cert="citizen").status_code == 403
    # RequireNone over the kind: everyone authenticated but private care
    assert get(srv, "/not-private/", cert="citizen").status_code == 200
    assert get(srv, "/not-private/", cert="doctor-region").status_code == 200


def test_commission_purpose_and_right(srv, op, denials):
    assert get(srv, "/vob/", token=region_token(op)).status_code == 200
    assert get(srv, "/vob/", token=region_token(
        op, commissionPurpose="Administration")).status_code == 403
    assert get(srv, "/vob/", token=region_token(
        op, commissionRight=["Skriva;Alla;VE"])).status_code == 403
    assert get(srv, "/vob/", cert="nurse-kommun").status_code == 403


def test_audit_names_the_require_line_that_denied(srv, op, denials):
    path = unique_path("/grp-loa")
    assert get(srv, path, cert="nurse-kommun-reserve").status_code == 403
    path2 = unique_path("/vob")
    tok = region_token(op, commissionPurpose="Administration")
    assert get(srv, path2, token=tok).status_code == 403
    rec = srv.wait_audit(path, 1)[-1]
    assert rec["reason"].startswith("eid-loa 3: ")
    rec = srv.wait_audit(path2, 1)[-1]
    assert rec["reason"] == ('eid-commission "purpose=Vård och behandling" '
                             'right=Läsa;Alla;VG: commission purpose differs')


# ---- start-up errors -------------------------------------------------------------

def configtest(body, directory=DIRECTORY):
    s = Httpd(body, name="dir-conf")
    try:
        write_dir(s.root, directory)
        r = s.configtest()
        return r, s.conf
    finally:
        s.cleanup()


def line_of(conf_text, needle):
    for i, line in enumerate(conf_text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_bad_directory_file_names_both_lines():
    bad = DIRECTORY.replace("Group county          232100-0016 county-kommuner",
                            "Group county          232100-0016 county-kommuner 212000-9945")
    body = TRUST_PROFILES + "EidDirectory county {root}/directory.conf\n"
    s = Httpd(body, name="dir-bad")
    try:
        write_dir(s.root, bad)
        r = s.configtest()
        with open(s.conf) as f:
            n = line_of(f.read(), "EidDirectory county")
    finally:
        s.cleanup()
    assert r.returncode != 0
    assert "line %d of " % n in r.stderr
    assert re.search(r"EidDirectory county: \S*directory\.conf:9: unknown organisation "
                     r"2120009945", r.stderr), r.stderr


def test_missing_directory_file_refused():
    r, _ = configtest(TRUST_PROFILES + "EidDirectory county {root}/nope.conf\n")
    assert r.returncode != 0 and "EidDirectory county: " in r.stderr


def test_directory_inside_virtualhost_refused():
    body = TRUST_PROFILES + ("<VirtualHost 127.0.0.1:*>\n"
                             "EidDirectory county {root}/directory.conf\n</VirtualHost>\n")
    r, _ = configtest(body)
    assert r.returncode != 0
    assert "EidDirectory: define it at server level, outside <VirtualHost>" in r.stderr


def test_directory_defined_twice_refused():
    body = TRUST_PROFILES + ("EidDirectory county {root}/directory.conf\n"
                             "EidDirectory county {root}/directory.conf\n")
    r, _ = configtest(body)
    assert r.returncode != 0 and "'county' is defined twice" in r.stderr


def test_unknown_names_refused_at_start_up():
    base = TRUST_PROFILES + "EidDirectory county {root}/directory.conf\n"
    cases = {
        "EidUseDirectory nosuch": "EidUseDirectory: unknown directory 'nosuch'",
        "Require eid-group countyy": "eid-group: no directory defines the group 'countyy'",
        "Require eid-role nurze": "eid-role: no directory defines a rule giving the role "
                                  "'nurze'",
        "Require eid-org-kind kommun": "eid-org-kind: unknown kind 'kommun'",
        "Require eid-commission right=X": "eid-commission: purpose=<text> is required",
    }
    for line, msg in cases.items():
        r, _ = configtest(base + "<Location /x/>\nAuthType eid\n%s\n</Location>\n" % line)
        assert r.returncode != 0, line
        assert msg in r.stderr, (line, r.stderr)
    # Require eid-group before any EidDirectory
    r, _ = configtest(TRUST_PROFILES + "<Location /x/>\nAuthType eid\nRequire eid-group a\n"
                      "</Location>\n")
    assert r.returncode != 0
    assert "eid-group: no EidDirectory is defined before this line" in r.stderr


def test_several_directories_location_names_one():
    body = TRUST_PROFILES + ("EidDirectory a {root}/directory.conf\n"
                             "EidDirectory b {root}/directory.conf\n"
                             "<Location /x/>\nAuthType eid\nEidUseDirectory b\n"
                             "Require eid-group county\n</Location>\n")
    r, _ = configtest(body)
    assert r.returncode == 0, r.stderr


def test_several_directories_none_named_refused_at_start_up():
    body = TRUST_PROFILES + ("EidDirectory a {root}/directory.conf\n"
                             "EidDirectory b {root}/directory.conf\n"
                             "<Location /named/>\nAuthType eid\nEidUseDirectory none\n"
                             "Require valid-user\n</Location>\n"
                             "<Location /unnamed/>\nAuthType eid\nRequire valid-user\n"
                             "</Location>\n")
    s = Httpd(body, name="dir-two-t")
    try:
        write_dir(s.root)
        r = s.configtest()
        with open(s.conf) as f:
            n = line_of(f.read(), "<Location /unnamed/>") + 1
    finally:
        s.cleanup()
    assert r.returncode != 0
    assert ("Syntax error on line %d of " % n) in r.stderr, r.stderr
    assert ("AuthType eid: this location authenticates identities but names no "
            "organisation directory, and 2 are defined") in r.stderr


def test_several_directories_none_named_in_htaccess_is_500():
    # .htaccess is read per request: -t cannot see it, the request is refused
    body = TRUST_PROFILES + ("EidDirectory a {root}/directory.conf\n"
                             "EidDirectory b {root}/directory.conf\n"
                             "<Directory {root}/htdocs>\nAllowOverride AuthConfig\n"
                             "</Directory>\n")
    s = Httpd(body, name="dir-two")
    try:
        write_dir(s.root)
        for d, extra in (("named", "EidUseDirectory b\nRequire eid-group county\n"),
                         ("unnamed", "Require valid-user\n")):
            os.makedirs(os.path.join(s.root, "htdocs", d))
            with open(os.path.join(s.root, "htdocs", d, "index.html"), "w") as f:
                f.write(d)
            with open(os.path.join(s.root, "htdocs", d, ".htaccess"), "w") as f:
                f.write("AuthType eid\n" + extra)
        s.start()
        assert get(s, "/named/", cert="nurse-kommun").status_code == 200
        assert get(s, "/unnamed/", cert="nurse-kommun").status_code == 500
        s.stop()
        log = s.read_error_log()
        assert re.search(r"auth_eid:error.*EID04010: misconfigured: this location names no "
                         r"EidUseDirectory, and 2 directories are defined", log), log
    finally:
        s.stop()
        s.cleanup()


def test_graceful_restart_reloads_the_directory(logcheck):
    # The directory is configuration: a graceful restart re-reads the file.
    body = TRUST_PROFILES + ("EidDirectory county {root}/directory.conf\n"
                             "ScriptAlias /g/echo {root}/cgi/echo.py\n"
                             "<Location /g/>\nAuthType eid\nRequire eid-group county\n"
                             "</Location>\n")
    s = Httpd(body, name="dir-graceful")
    try:
        write_dir(s.root)
        s.start()
        logcheck(s).expect_log(r"AH01630", r"AH00493")
        env = get(s, "/g/echo", cert="nurse-kommun").json()
        assert env["EID_GROUPS"] == "county,county-kommuner,vardsamverkan"
        # the municipality leaves the county group (Kiruna stays in it)
        write_dir(s.root, DIRECTORY.replace("Group county-kommuner 212000-2874 212000-9960",
                                            "Group county-kommuner 212000-9960"))
        assert s.configtest().returncode == 0
        gen = s.read_error_log().count("resuming normal operations")
        s.proc.send_signal(signal.SIGUSR1)
        deadline = time.time() + 15
        while s.read_error_log().count("resuming normal operations") <= gen:
            assert time.time() < deadline, s.read_error_log()
            time.sleep(0.1)
        time.sleep(1)
        assert get(s, "/g/echo", cert="nurse-kommun").status_code == 403
        assert get(s, "/g/echo", cert="doctor-region").json()["EID_GROUPS"] == \
            "county,vardsamverkan"
    finally:
        s.stop()
        s.cleanup()
