"""Policies in httpd's own expression language: %{EID_*} variables and
eid_list() in `Require expr`, named policies (EidPolicy + Require eid-policy),
own-organisation rules, the audit record naming the lines that decided, and the
start-up errors.  Identities: client certificates from the test PKI and bearer
tokens from the test OP, enriched by the county directory of test_directory."""
import os

import pytest
import requests

from eidtest import module_op, TRUST_PROFILES, Httpd, pki, unique_path, user_cert
from test_directory import AUD, DIRECTORY, region_token, sorsele_token, write_dir


CA = pki("ca", "server-ca.pem")


def esc(text):
    """Httpd(body) formats the body ({root}): keep expression braces literal."""
    return text.replace("{", "{{").replace("}", "}}")

POLICIES = """\
EidPolicy county-staff "'county' -in eid_list('groups') && %{EID_LOA} -ge 3"
EidPolicy vob "%{EID_COMMISSION_PURPOSE} == 'Vård och behandling'"
EidPolicy physician-or-admin "'physician' -in eid_list('dir-roles') || 'admin' -in eid_list('dir-roles')"
EidPolicy region "%{EID_ORG_KIND} == 'region'"
EidPolicy own-org "%{REQUEST_URI} =~ m#^/ownorg/([0-9]{10})/# && $1 == %{EID_ORG_NUMBER}"
"""

LOCATIONS = {
    "staff": "Require eid-policy county-staff",
    "kind": "Require expr %{EID_ORG_KIND} == 'municipality'",
    "scope": "Require expr 'incident.read' -in eid_list('scopes')",
    # own organisation: the organisation number in the path must be the user's
    "org": 'Require expr "%{REQUEST_URI} =~ m#^/org/([0-9]{10})/# && $1 == %{EID_ORG_NUMBER}"',
    "any": "<RequireAny>\nRequire eid-policy vob\nRequire eid-policy physician-or-admin\n"
           "</RequireAny>",
    "echo": "Require valid-user",
    "region": "Require eid-policy region",
    "ownorg": "Require eid-policy own-org",
}


def conf(op):
    c = TRUST_PROFILES
    c += ("EidProvider inera issuer=%s discovery=on audience=%s algs=RS256,ES256 "
          "claims=inera\n" % (op.issuer, AUD))
    c += "EidDirectory county {root}/directory.conf\n" + esc(POLICIES)
    c += 'ScriptAliasMatch "^/[a-z-]+/echo$" "{root}/cgi/echo.py"\n'
    for name, rules in LOCATIONS.items():
        c += ("<Location /%s/>\nAuthType eid\nEidMethods cert bearer\n%s\n</Location>\n"
              % (name, esc(rules)))
    c += ("<Directory {root}/htdocs/ht>\nAllowOverride AuthConfig\n</Directory>\n")
    return c


op = module_op("eid-op-pol-")


@pytest.fixture(scope="module")
def srv(op):
    s = Httpd(conf(op), name="policy")
    write_dir(s.root)
    for name in list(LOCATIONS) + ["ht", "org/2120002874", "org/2321000016",
                                   "ownorg/2120002874", "ownorg/2321000016"]:
        os.makedirs(os.path.join(s.root, "htdocs", name), exist_ok=True)
        with open(os.path.join(s.root, "htdocs", name, "index.html"), "w") as f:
            f.write(name + "\n")
    with open(os.path.join(s.root, "htdocs", "ht", ".htaccess"), "w") as f:
        f.write("AuthType eid\nEidMethods cert bearer\nRequire eid-policy county-staff\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture
def denials(srv, logcheck):
    c = logcheck(srv)
    c.expect_log(r"AH01630: client denied")
    return c


def get(srv, path, cert=None, token=None):
    h = {"Authorization": "Bearer " + token} if token else {}
    return requests.get(srv.url(path), headers=h, verify=CA, timeout=20,
                        cert=user_cert(cert) if cert else None)


def test_named_policy_over_groups_and_loa(srv, op, denials):
    assert get(srv, "/staff/", cert="nurse-kommun").status_code == 200
    assert get(srv, "/staff/", cert="doctor-region").status_code == 200
    assert get(srv, "/staff/", token=region_token(op)).status_code == 200
    # near misses: the reserve card (LoA 2), a citizen, a municipality outside
    # the county group
    assert get(srv, "/staff/", cert="nurse-kommun-reserve").status_code == 403
    assert get(srv, "/staff/", cert="citizen").status_code == 403
    assert get(srv, "/staff/", token=sorsele_token(op)).status_code == 403


def test_named_policy_from_htaccess(srv, op, denials):
    assert get(srv, "/ht/", cert="nurse-kommun").status_code == 200
    assert get(srv, "/ht/", cert="nurse-kommun-reserve").status_code == 403


def test_require_expr_with_variables_and_lists(srv, op, denials):
    assert get(srv, "/kind/", cert="nurse-kommun").status_code == 200
    assert get(srv, "/kind/", token=sorsele_token(op)).status_code == 200
    assert get(srv, "/kind/", cert="doctor-region").status_code == 403
    assert get(srv, "/kind/", cert="citizen").status_code == 403
    assert get(srv, "/scope/", token=op.mint(preset="inera-nurse", aud=AUD,
                                             claims={"scope": "incident.read"})
               ).status_code == 200
    assert get(srv, "/scope/", token=op.mint(preset="inera-nurse", aud=AUD,
                                             claims={"scope": "incident.write"})
               ).status_code == 403


def test_own_organisation_rule(srv, op, denials):
    assert get(srv, "/org/2120002874/", cert="nurse-kommun").status_code == 200
    assert get(srv, "/org/2321000016/", cert="nurse-kommun").status_code == 403
    assert get(srv, "/org/2321000016/", cert="doctor-region").status_code == 200
    # path tricks reach the same decision the file system's routing does
    assert get(srv, "/org/2120002874/../2321000016/", cert="nurse-kommun").status_code == 403
    assert get(srv, "//org/2321000016/", cert="nurse-kommun").status_code in (403, 404)


def test_keepalive_verdicts_per_policy_and_request(srv, op, denials):
    """On one connection a certificate's identity-only policy verdicts are kept
    (per policy name); a policy that reads the request is evaluated anew."""
    with requests.Session() as sess:
        sess.verify = CA
        sess.cert = user_cert("nurse-kommun")
        seq = ["/staff/", "/region/", "/staff/", "/region/", "/ownorg/2120002874/",
               "/ownorg/2321000016/", "/ownorg/2120002874/", "/ownorg/2321000016/"]
        got = [sess.get(srv.url(p), verify=CA, timeout=20).status_code for p in seq]
    assert got == [200, 403, 200, 403, 200, 403, 200, 403]
    with requests.Session() as sess:  # and the region's doctor on its own connection
        sess.verify = CA
        sess.cert = user_cert("doctor-region")
        got = [sess.get(srv.url(p), verify=CA, timeout=20).status_code for p in seq]
    assert got == [200, 200, 200, 200, 403, 200, 403, 200]


def test_require_any_of_two_policies(srv, op, denials):
    assert get(srv, "/any/", token=region_token(op)).status_code == 200  # vob
    admin = region_token(op, commissionPurpose="Administration",
                         employeeHsaId="SE2321000016-ADM1", sub="SE2321000016-ADM1")
    assert get(srv, "/any/", token=admin).status_code == 200  # admin role
    nobody = region_token(op, commissionPurpose="Administration")
    assert get(srv, "/any/", token=nobody).status_code == 403
    assert get(srv, "/any/", cert="nurse-kommun").status_code == 403


def test_audit_names_policies_groups_and_roles(srv, op, denials):
    ok = unique_path("/staff")
    assert get(srv, ok, cert="nurse-kommun").status_code in (200, 404)
    rec = srv.wait_audit(ok, 1)[-1]
    assert rec["authz"] == ["eid-policy county-staff: granted"]
    assert rec["groups"] == ["county", "county-kommuner", "vardsamverkan"]
    assert rec["org_kind"] == "municipality"
    assert rec["dir_roles"] == ["reporter"]
    no = unique_path("/any")
    assert get(srv, no, cert="nurse-kommun").status_code == 403
    rec = srv.wait_audit(no, 1)[-1]
    assert rec["decision"] == "deny"
    assert rec["authz"] == ["eid-policy vob: denied", "eid-policy physician-or-admin: denied"]


# ---- start-up errors -------------------------------------------------------------

def configtest(body):
    s = Httpd(body, name="pol-conf")
    try:
        write_dir(s.root, DIRECTORY)
        r = s.configtest()
        with open(s.conf) as f:
            text = f.read()
        return r, text
    finally:
        s.cleanup()


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_policy_errors_name_file_line_and_directive():
    base = TRUST_PROFILES + "EidDirectory county {root}/directory.conf\n"
    cases = {
        'EidPolicy p "%{EID_NOPE} == 1"': "EidPolicy p: cannot parse the expression: "
                                           "EID01111: unknown variable EID_NOPE",
        "EidPolicy p \"'a' -in eid_list('nope')\"": "EID01112: eid_list('nope'): unknown list",
        'EidPolicy p "%{EID_LOA} -ge"': "EidPolicy p: cannot parse the expression",
        'EidPolicy "p q" "true"': "EidPolicy: 'p q' is not a valid name",
        'EidPolicy p "true"\nEidPolicy p "false"': "EidPolicy: 'p' is defined twice",
        "<Location /x/>\nAuthType eid\nRequire eid-policy p\n</Location>":
            "eid-policy: no EidPolicy 'p' is defined before this line",
        "<VirtualHost 127.0.0.1:*>\nEidPolicy p \"true\"\n</VirtualHost>":
            "EidPolicy cannot occur within <VirtualHost> section",
        "<Location /x/>\nAuthType eid\nRequire expr %{EID_ORG_NUMMER} == '1'\n</Location>":
            "EID01111: unknown variable EID_ORG_NUMMER",
    }
    for body, msg in cases.items():
        r, text = configtest(base + esc(body) + "\n")
        assert r.returncode != 0, body
        assert msg in r.stderr, (body, r.stderr)
        first = body.splitlines()[-1] if "defined twice" in msg else body.splitlines()[0]
        if "Location" not in first and "VirtualHost" not in first:
            assert "line %d of " % line_of(text, first) in r.stderr, (body, r.stderr)
