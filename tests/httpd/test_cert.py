"""Client-certificate login end to end: real httpd + mod_ssl, certificates
from the test PKI, requests from a real TLS client."""
import json
import re
import ssl

import pytest
import requests

from conftest import server_fixture
from eidtest import TRUST_PROFILES, Httpd, manifest, pki, unique_path, user_cert

M = manifest()
NURSE = M["nurse-kommun"]
DOCTOR = M["doctor-region"]
KOMMUN_ORG = NURSE["org_number"]


LOCATIONS = {
    "open": "Require all granted",
    "loa3": "Require eid-loa 3",
    "loa2": "Require eid-loa 2",
    "kommun": "Require eid-org %s" % KOMMUN_ORG,
    "region": "Require eid-org SE2321000016-",
    "nurse": "Require eid-hsa-id %s" % NURSE["hsa_id"],
    "all": "<RequireAll>\nRequire eid-loa 3\nRequire eid-org SE2321000016-\n</RequireAll>",
    "any": "<RequireAny>\nRequire eid-hsa-id %s\nRequire eid-org 2321000016\n</RequireAny>"
           % NURSE["hsa_id"],
    "none": "<RequireAll>\nRequire eid-loa 2\n<RequireNone>\nRequire eid-org %s\n"
            "</RequireNone>\n</RequireAll>" % KOMMUN_ORG,
    "method": "Require eid-method cert",
    "bearer-only": "Require eid-method bearer",
    "citizen": "EidCertProfiles eid\nRequire eid-loa 3",
    "siths": "EidCertProfiles siths\nRequire valid-user",
    "headers": "EidExportHeaders on\nRequire valid-user",
    "prefix": "EidExportHeaders on\nEidHeaderPrefix X-Ident-\nRequire valid-user",
    "noexport": "EidExportEnv off\nRequire valid-user",
    "user-pnr": "EidUserAttribute pnr\nRequire valid-user",
    "some-attrs": "EidExportAttributes hsa-id loa\nRequire valid-user",
}


def body():
    conf = TRUST_PROFILES + 'ScriptAliasMatch "^/[a-z0-9-]+/echo(/[a-z0-9-]+)?$" "{root}/cgi/echo.py$1"\n'
    conf += "ErrorDocument 403 /errdoc/echo\n"
    for name, rules in LOCATIONS.items():
        conf += "<Location /%s/>\nAuthType eid\n%s\n</Location>\n" % (name, rules)
    return conf


srv = server_fixture(lambda: Httpd(body(), name="cert"))
CA = pki("ca", "server-ca.pem")


def get(srv, path, user=None, headers=None):
    return requests.get(srv.url(path), cert=user_cert(user) if user else None, verify=CA,
                        headers=headers or {}, timeout=20)


# Who may enter where: 200 or 403.  Citizens, reserve cards, function
# certificates and foreign issuers are all here; None is "no certificate".
MATRIX = {
    #            nurse  reserve doctor citizen nurse-pnr
    "open":     (200, 200, 200, 200, 200),
    "loa3":     (200, 403, 200, 200, 200),
    "loa2":     (200, 200, 200, 200, 200),
    "kommun":   (200, 200, 403, 403, 403),
    "region":   (403, 403, 200, 403, 403),
    "nurse":    (200, 200, 403, 403, 403),
    "all":      (403, 403, 200, 403, 403),
    "any":      (200, 200, 200, 403, 403),
    "none":     (403, 403, 200, 200, 200),
    "method":   (200, 200, 200, 200, 200),
    "bearer-only": (403, 403, 403, 403, 403),
    "citizen":  (403, 403, 403, 200, 403),
    "siths":    (200, 200, 200, 403, 200),
}
USERS = ["nurse-kommun", "nurse-kommun-reserve", "doctor-region", "citizen", "nurse-pnr"]
CASES = [(loc, u, MATRIX[loc][i]) for loc in MATRIX for i, u in enumerate(USERS)]


@pytest.mark.parametrize("loc,user,want", CASES, ids=["%s-%s" % c[:2] for c in CASES])
def test_policy_matrix(srv, logcheck, loc, user, want):
    logcheck(srv)
    if want == 403:
        # core's "client denied" line; an untrusted issuer is our own refusal
        srv.expect_log(r"AH01630", r"EID0200\d|EID020\d\d")
    r = get(srv, "/%s/echo" % loc, user)
    assert r.status_code == want, r.text[:200]
    env = r.json()
    if want == 200:
        assert env["AUTH_TYPE"] == "eid"
        assert env["EID_METHOD"] == "cert"
    else:
        # the error document ran unauthenticated: no identity leaked into it
        assert not any(k.startswith("EID_") and k != "EID_REQUEST_ID" for k in env), env


@pytest.mark.parametrize("user", ["function", "other-ca"])
def test_refused_certificates(srv, logcheck, user):
    logcheck(srv)
    srv.expect_log(r"EID0\d{4}.*client certificate refused")
    for loc in ("open", "loa2", "method"):
        r = get(srv, "/%s/echo" % loc, user)
        assert r.status_code == 403
    log = srv.read_error_log()
    assert re.search(r"client certificate refused: .*(function|issuer|profile)", log,
                     re.I), log[-2000:]


def test_no_certificate(srv, logcheck):
    logcheck(srv)
    r = get(srv, "/open/echo")
    assert r.status_code == 200
    assert "REMOTE_USER" not in r.json()
    assert get(srv, "/loa2/echo").status_code == 403


def test_identity_reaches_backend(srv, logcheck):
    logcheck(srv)
    env = get(srv, "/headers/echo", "nurse-kommun").json()
    assert env["REMOTE_USER"] == NURSE["hsa_id"]
    assert env["EID_HSA_ID"] == NURSE["hsa_id"]
    assert env["EID_GIVEN_NAME"] == NURSE["given_name"]
    assert env["EID_SURNAME"] == NURSE["surname"]
    assert env["EID_ORG_NUMBER"] == KOMMUN_ORG
    assert env["EID_LOA"] == "3"
    assert env["EID_PROFILE"] == "siths"
    assert env["HTTP_X_EID_HSA_ID"] == NURSE["hsa_id"]
    # headers are pure ASCII: non-ASCII names arrive percent-encoded UTF-8
    want = requests.utils.quote(NURSE["given_name"].encode("utf-8"), safe=" -.'")
    assert env["HTTP_X_EID_GIVEN_NAME"] == want
    assert re.fullmatch(r"[A-Za-z0-9_@-]{10,}", env["EID_REQUEST_ID"])
    if NURSE.get("email"):
        assert env["EID_EMAIL"] == NURSE["email"]


def test_doctor_mobile_policy_gives_loa3(srv, logcheck):
    logcheck(srv)
    env = get(srv, "/headers/echo", "doctor-region").json()
    assert env["EID_LOA"] == "3"
    assert "1.2.752.74.8.512" in env["EID_POLICY_OIDS"].split(",")
    assert env["EID_ORG_NUMBER"] == "2321000016"


def test_header_prefix_and_selection(srv, logcheck):
    logcheck(srv)
    env = get(srv, "/prefix/echo", "nurse-kommun").json()
    assert env["HTTP_X_IDENT_HSA_ID"] == NURSE["hsa_id"]
    assert "HTTP_X_EID_HSA_ID" not in env
    env = get(srv, "/noexport/echo", "nurse-kommun").json()
    assert not [k for k in env if k.startswith("EID_")]
    assert env["REMOTE_USER"] == NURSE["hsa_id"]
    env = get(srv, "/some-attrs/echo", "nurse-kommun").json()
    assert env["EID_HSA_ID"] == NURSE["hsa_id"] and env["EID_LOA"] == "3"
    assert "EID_GIVEN_NAME" not in env


def test_citizen_user_is_pseudonym_by_default(srv, logcheck):
    logcheck(srv)
    cit = M["citizen"]
    env = get(srv, "/open/echo", "citizen").json()
    assert env["EID_PNR"] == cit["pnr"]  # the backend gets the number...
    assert env["REMOTE_USER"] == env["EID_PNR_PSEUDONYM"]  # ...but not as REMOTE_USER
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["REMOTE_USER"])
    env = get(srv, "/user-pnr/echo", "citizen").json()
    assert env["REMOTE_USER"] == cit["pnr"]


SPOOF = {
    "X-Eid-Hsa-Id": "SE0000000000-evil",
    "x-eid-loa": "4",
    "X_Eid_Org_Number": "2321000016",
    "X-EID-REQUEST-ID": "x",  # exact names only: X-Eid-Anything is not ours
    "X-Ident-Hsa-Id": "SE0000000000-evil",
}


@pytest.mark.parametrize("path,user", [("/open/echo", None), ("/headers/echo", "nurse-kommun"),
                                       ("/loa3/echo", "nurse-kommun-reserve"),
                                       ("/errdoc/echo", None), ("/prefix/echo", "citizen")])
def test_spoofed_headers_are_removed(srv, logcheck, path, user):
    logcheck(srv)
    srv.expect_log(r"AH01630")
    r = get(srv, path, user, headers=SPOOF)
    env = r.json()
    for k, v in env.items():
        assert "evil" not in v, (k, v)
        assert not (k.startswith("HTTP_X_EID") and v in SPOOF.values()), (k, v)
    if r.status_code == 200 and user == "nurse-kommun":
        assert env["HTTP_X_EID_HSA_ID"] == NURSE["hsa_id"]


def test_audit_records(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630")
    path = unique_path("/loa3/echo")
    get(srv, path, "nurse-kommun")
    get(srv, path, "nurse-kommun-reserve")
    get(srv, path, "citizen")
    get(srv, path)
    recs = srv.wait_audit(path, 4)
    assert len(recs) == 4, recs
    ok, reserve, cit, anon = recs
    for r in recs:
        for k in ("time", "request_id", "http_method", "resource", "decision", "status"):
            assert k in r, (k, r)
        assert r["resource"] == path and r["http_method"] == "GET"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["time"])
    assert ok["decision"] == "allow" and ok["status"] == 200
    assert ok["hsa_id"] == NURSE["hsa_id"] and ok["loa"] == 3 and ok["auth_method"] == "cert"
    assert ok["org_number"] == KOMMUN_ORG
    assert reserve["decision"] == "deny" and reserve["status"] == 403
    assert "eid-loa 3" in reserve["reason"] and reserve["loa"] == 2
    assert cit["decision"] == "allow" and "pnr" not in cit
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cit["pnr_pseudonym"])
    assert anon["decision"] == "unauthenticated" and anon["status"] == 403
    assert len({r["request_id"] for r in recs}) == 4


def test_no_personnummer_in_clear_in_logs(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630", r"EID0\d{4}")
    for u in ("citizen", "citizen-coord", "citizen-pnose", "nurse-pnr"):
        get(srv, "/loa3/echo", u)
        get(srv, "/kommun/echo", u)
    text = open(srv.audit_log, encoding="utf-8").read() + srv.read_error_log()
    for u in ("citizen", "citizen-coord", "citizen-pnose", "nurse-pnr"):
        assert M[u]["pnr"] not in text, u


def test_keepalive_reuses_connection(srv, logcheck):
    logcheck(srv)
    s = requests.Session()
    s.cert = user_cert("nurse-kommun")
    ids = set()
    for _ in range(5):
        # verify= per request: requests lets REQUESTS_CA_BUNDLE override Session.verify
        env = s.get(srv.url("/headers/echo"), verify=CA, timeout=20).json()
        assert env["EID_HSA_ID"] == NURSE["hsa_id"]
        ids.add(env["EID_REQUEST_ID"])
    assert len(ids) == 5


HOSTILE = [u for u, m in M.items() if m["expect"] not in ("ok", "untrusted", "function")]


@pytest.mark.parametrize("user", HOSTILE)
def test_hostile_certificates_never_admitted(srv, logcheck, user):
    """mod_ssl may refuse some at the handshake; the rest the module refuses.
    None of them ever reaches the backend."""
    logcheck(srv)
    srv.expect_log(r"EID0\d{4}", r"AH02039|AH02261|AH02008|SSL Library Error|AH02276|"
                   r"AH02042|AH01964|AH02221|Certificate Verification")
    try:
        r = get(srv, "/open/echo", user)
    except (requests.exceptions.SSLError, requests.exceptions.ConnectionError, ssl.SSLError):
        return
    assert r.status_code == 403, (user, r.status_code)
    assert "EID_HSA_ID" not in r.text and "REMOTE_USER" not in r.json()


def cert_serial(user):
    from cryptography import x509
    with open(pki("users", user + ".pem"), "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).serial_number


def test_refused_certificate_is_identified(srv, logcheck):
    """The refusal names the certificate: issuer DN and serial (not the subject)."""
    logcheck(srv)
    srv.expect_log(r"EID02004.*client certificate refused")
    before = len(srv.read_error_log())
    assert get(srv, "/open/echo", "other-ca").status_code == 403
    text = srv.read_error_log()[before:]
    m = re.search(r'EID02004: client certificate refused: [^\n]*\[issuer "([^"\n]*)", '
                  r'serial ([0-9A-F]+), subject "([^"\n]*)"\]', text)
    assert m, text
    assert "CN=Other Issuing CA" in m.group(1), m.group(1)
    assert int(m.group(2), 16) == cert_serial("other-ca")
    assert "serialNumber=" in m.group(3) or "withheld" in m.group(3), m.group(3)


def test_refused_personal_certificate_is_identified_without_pnr(srv, logcheck):
    """A refused citizen e-ID (its profile is not accepted here): the log line and the
    audit record name issuer, serial and subject, with the personnummer as its
    pseudonym - never in clear, in any spelling."""
    logcheck(srv)
    srv.expect_log(r"EID02004.*client certificate refused")
    citizen = M["citizen"]
    pnr = citizen["pnr"]
    path = unique_path("/siths/echo")
    before = len(srv.read_error_log())
    assert get(srv, path, "citizen").status_code == 403
    text = srv.read_error_log()[before:]
    m = re.search(r'EID02004: [^\n]*\[issuer "([^"\n]*)", serial ([0-9A-F]+), '
                  r'subject "([^"\n]*)"\]', text)
    assert m, text
    assert int(m.group(2), 16) == cert_serial("citizen")
    subject = m.group(3)
    # httpd's log escapes bytes above 0x7f; the audit record keeps UTF-8
    assert "serialNumber=" in subject and "ngstr" in subject, subject
    recs = srv.wait_audit(path, 1)
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["decision"] == "unauthenticated" and rec["status"] == 403, rec
    assert rec["cert_serial"] == m.group(2), rec
    assert "CN=" in rec["cert_issuer"], rec
    assert rec["cert_subject"].startswith(subject.split(",")[0] + ","), rec
    assert "CN=Lars Ängström" in rec["cert_subject"], rec
    for spelling in (pnr, pnr[2:], pnr[:8] + "-" + pnr[8:], pnr[2:8] + "-" + pnr[8:]):
        assert spelling not in text, (spelling, text)
        assert spelling not in json.dumps(rec, ensure_ascii=False), (spelling, rec)


def unverified_leaf(tmp_path, issuer_cn, subject_cn, serial, self_signed=False):
    """A client certificate (cert file, key file) from a CA that mod_ssl does not
    know, sent without its CA: mod_ssl says FAILED, the module refuses (EID01002)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    ca_key = key if self_signed else ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    cf, kf = tmp_path / "c.pem", tmp_path / "k.pem"
    cf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kf.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return str(cf), str(kf)


def test_unverified_certificate_is_identified(logcheck, tmp_path):
    """EID01002 (mod_ssl did not vouch for it) names the certificate too, and quotes
    mod_ssl's verdict in full (it used to be cut at 40 bytes, mid-word)."""
    cf, kf = unverified_leaf(tmp_path, "Nobody Knows Me CA", "Some One", 0x5C0FE)
    body = TRUST_PROFILES + "<Location />\nAuthType eid\nRequire valid-user\n</Location>\n"
    with Httpd(body, verify_client="optional_no_ca", name="nover") as h:
        logcheck(h)
        h.expect_log(r"EID01002", r"AH02039|AH02008")
        r = requests.get(h.url("/index.html"), cert=(cf, kf), verify=CA, timeout=20)
        assert r.status_code == 403
        text = h.read_error_log()
    h.cleanup()
    m = re.search(r'EID01002: [^\n]*\(SSL_CLIENT_VERIFY=FAILED:unable to (verify the first|'
                  r'get local issuer) certificate\) \[issuer "CN=Nobody Knows Me CA", serial ([0-9A-F]+), subject "CN=Some One"\]', text)
    assert m, text
    assert int(m.group(2), 16) == 0x5C0FE


def test_unverified_certificate_with_pnr_in_names_is_masked(logcheck, tmp_path):
    """EID01002 for a certificate whose names are the client's to choose: a
    personnummer in the issuer's CN and in the subject's CN (no serialNumber)
    reaches neither the error log nor the audit record, in any spelling."""
    pnr = "198503171236"
    cf, kf = unverified_leaf(tmp_path, "CA of 850317-1236", "Lars " + pnr, 0x5C0FF,
                             self_signed=True)
    body = TRUST_PROFILES + "<Location />\nAuthType eid\nRequire valid-user\n</Location>\n"
    with Httpd(body, verify_client="optional_no_ca", name="nover2") as h:
        logcheck(h)
        h.expect_log(r"EID01002", r"AH02039|AH02008")
        path = unique_path("/p")
        r = requests.get(h.url(path), cert=(cf, kf), verify=CA, timeout=20)
        assert r.status_code == 403
        rec = h.wait_audit(path, 1)[0]
        text = h.read_error_log()
    h.cleanup()
    assert "EID01002" in text and rec["tag"] == "EID01002", rec
    assert "[pnr]" in rec["cert_subject"] and "[pnr]" in rec["cert_issuer"], rec
    for spelling in (pnr, pnr[2:], pnr[:8] + "-" + pnr[8:], pnr[2:8] + "-" + pnr[8:]):
        assert spelling not in text, (spelling, text)
        assert spelling not in json.dumps(rec, ensure_ascii=False), (spelling, rec)
