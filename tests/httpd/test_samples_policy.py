"""The county's sample services (conf-samples/*.conf over county-common.conf and
directory-county.txt) as a sysadmin would install them, pointed at the test
PKI and the test OP: for each, who gets in and who does not, near misses
included (right group, wrong purpose; right role, wrong level; a municipality
outside the group)."""
import os

import pytest
import requests

from eidtest import module_op, REPO, Httpd, free_port, pki, sample_conf_dir, user_cert


CA = pki("ca", "server-ca.pem")
VOB = "Vård och behandling"


op = module_op("eid-op-samples-")


def site(op, sample):
    port = free_port()
    body = ("Define EID_CONF_DIR {root}/conf\nDefine EID_STATE_DIR {root}\n"
            "Define EID_LISTEN 127.0.0.1:%d\nDefine EID_STAFF_IDP %s\n"
            "Define EID_SITE https://localhost:%d\n"
            # the service behind: every path answers with the environment
            'ScriptAliasMatch "^/(api|incidents)/.*" "{root}/cgi/echo.py"\n'
            "Include %s\n" % (port, op.issuer, port,
                              os.path.join(REPO, "conf-samples", sample)))
    s = Httpd(body, name=sample.split(".")[0], port=port)
    sample_conf_dir(s.root)
    s.start()
    return s


@pytest.fixture(scope="module")
def sites(op):
    made = {}

    def get_site(sample):
        if sample not in made:
            made[sample] = site(op, sample)
        return made[sample]

    yield get_site
    for s in made.values():
        s.stop()
        s.cleanup()


def staff_token(op, org, local, aud, purpose=VOB, rights=("Läsa;Alla;VG",), **more):
    """A staff IdP token (Inera claims) for a person of organisation `org`."""
    hsa = "SE%s-%s" % (org, local)
    c = {"sub": hsa, "employeeHsaId": hsa, "allEmployeeHsaIds": [hsa],
         "healthCareProviderHsaId": "SE%s-F1" % org, "healthCareProviderOrgNo": org,
         "healthCareUnitHsaId": "SE%s-E1" % org, "commissionHsaId": "SE%s-U1" % org,
         "commissionPurpose": purpose, "commissionRight": list(rights)}
    c.update(more)
    return op.mint(preset="inera-nurse", claims=c, aud=aud)


REGION, KOMMUN, GRANNBY, NORRVARD = "2321000016", "2120002874", "2120009952", "5569999997"


def call(s, path, method="GET", cert=None, token=None):
    h = {"Authorization": "Bearer " + token} if token else {}
    return requests.request(method, s.url(path), headers=h, verify=CA, timeout=20,
                            cert=user_cert(cert) if cert else None).status_code


def test_discharge_planning(sites):
    s = sites("discharge-planning.conf")
    assert call(s, "/", cert="nurse-kommun") == 200          # municipal nurse
    assert call(s, "/", cert="doctor-region") == 200         # the region's physician
    assert call(s, "/", cert="nurse-kommun-reserve") == 403  # right group, LoA 2
    assert call(s, "/", cert="citizen") == 403               # not staff (e-ID card refused)
    assert call(s, "/", cert="nurse-pnr") == 403             # SITHS, no organisation


def test_discharge_planning_browser_login(sites, op):
    """Staff without a card reader log in at the staff IdP (SITHS eID) at LoA 3; the
    same policy decides as for cards."""
    from loginkit import browser, login
    s = sites("discharge-planning.conf")
    base = "https://localhost:%d" % s.port
    op.admin("/admin/clients", {  # the sample's client, its secret from sample_conf_dir
        "profile": "inera", "client_id": "vardsamverkan",
        "client_secret": "not-a-real-secret",
        "redirect_uris": [base + "/.eid/callback"],
        "post_logout_redirect_uris": [base + "/.eid/logged-out"]})
    try:
        b = browser()
        r = login(s, op, b, "/")                      # the region's nurse, loa3
        assert r.status_code == 200
        assert b.get(s.url("/"), allow_redirects=False, timeout=20).status_code == 200
        # a session asked at LoA 3 and answered at LoA 2; another region's nurse
        # (not in the county); a citizen (no organisation)
        for user in ("lowlevel", "othernurse", "citizen"):
            r = login(s, op, browser(), "/", user=user, expect_ok=False)
            assert r.status_code == 403, (user, r.status_code)
        # an API client is never sent to log in
        assert requests.get(s.url("/"), headers={"Accept": "application/json"}, verify=CA,
                            timeout=20).status_code == 401
    finally:
        op.admin("/admin/auto-login", {"user": None})


def test_patient_overview(sites, op):
    s = sites("patient-overview.conf")
    aud = "api://patient-overview"
    physician = staff_token(op, REGION, "K3X9", aud, rights=("Läsa;Alla;Sjf=JA",))
    assert call(s, "/api/patients/1", token=physician) == 200
    assert call(s, "/api/patients/1",
                token=staff_token(op, KOMMUN, "P1", aud)) == 200
    # read only
    assert call(s, "/api/patients/1", "POST", token=physician) == 403
    # right group, wrong purpose; right purpose, outside the county
    admin_purpose = staff_token(op, REGION, "K3X9", aud, purpose="Administration")
    assert call(s, "/api/patients/1", token=admin_purpose) == 403
    assert call(s, "/api/patients/1",
                token=staff_token(op, GRANNBY, "P1", aud)) == 403
    # a contracted provider's nurse is no county staff
    assert call(s, "/api/patients/1",
                token=staff_token(op, NORRVARD, "P1", aud)) == 403
    # right everything, LoA 2
    low = staff_token(op, REGION, "K3X9", aud, acr="http://id.elegnamnden.se/loa/1.0/loa2")
    assert call(s, "/api/patients/1", token=low) == 403
    assert call(s, "/api/patients/1") == 401
    # a token for another service: an audience no provider knows, or another
    # county API's (accepted by the shared provider, refused by EidBearerAudience)
    assert call(s, "/api/patients/1", token=staff_token(op, REGION, "K3X9", "api://x")) == 401
    assert call(s, "/api/patients/1",
                token=staff_token(op, REGION, "K3X9", "api://incident-reporting",
                                  rights=("Läsa;Alla;Sjf=JA",))) == 401


def test_incident_reporting(sites, op):
    s = sites("incident-reporting.conf")
    aud = "api://incident-reporting"
    private = staff_token(op, NORRVARD, "P7", aud)
    # anyone of the collaboration reads and reports, by card or token
    assert call(s, "/incidents/", cert="nurse-kommun") == 200
    assert call(s, "/incidents/", "POST", cert="doctor-region") == 200
    assert call(s, "/incidents/", "POST", token=private) == 200
    # changing: only the own organisation's reports
    assert call(s, "/incidents/org/%s/17" % KOMMUN, "PUT", cert="nurse-kommun") == 200
    assert call(s, "/incidents/org/%s/17" % REGION, "PUT", cert="nurse-kommun") == 403
    assert call(s, "/incidents/org/%s/9" % NORRVARD, "DELETE", token=private) == 200
    assert call(s, "/incidents/org/%s/9" % KOMMUN, "DELETE", token=private) == 403
    # path tricks give the decision the backend's routing would
    assert call(s, "/incidents/org/%s/../../org/%s/17" % (KOMMUN, REGION), "PUT",
                cert="nurse-kommun") == 403
    # outside the collaboration; a citizen; a reserve card
    assert call(s, "/incidents/", token=staff_token(op, GRANNBY, "P1", aud)) == 403
    assert call(s, "/incidents/", cert="citizen") == 403
    assert call(s, "/incidents/", "POST", cert="nurse-kommun-reserve") == 403


def test_guest_staff(sites, op):
    s = sites("guest-staff.conf")
    # the ward system accepts the staff IdP's tokens issued for it
    aud = "api://ward"
    assert call(s, "/", cert="doctor-region") == 200                       # own staff
    assert call(s, "/", token=staff_token(op, NORRVARD, "G0001", aud)) == 200
    assert call(s, "/", token=staff_token(op, NORRVARD, "G0002", aud)) == 200
    # the provider's other staff; a municipal nurse; the guest at LoA 2
    assert call(s, "/", token=staff_token(op, NORRVARD, "P7", aud)) == 403
    assert call(s, "/", cert="nurse-kommun") == 403
    low = staff_token(op, NORRVARD, "G0001", aud, acr="http://id.elegnamnden.se/loa/1.0/loa2")
    assert call(s, "/", token=low) == 403
    # the guest nurse's token for incident reporting, replayed by that service
    replay = staff_token(op, NORRVARD, "G0001", "api://incident-reporting")
    assert call(s, "/", token=replay) == 401


def test_admin(sites, op):
    s = sites("admin.conf")
    assert call(s, "/", cert="doctor-region") == 200          # named admin, LoA 3 card
    assert call(s, "/", cert="nurse-kommun") == 403           # staff, no admin role
    assert call(s, "/", cert="citizen") == 403
    assert call(s, "/", cert="nurse-kommun-reserve") == 403
    # the admin's HSA-ID in a token, without a card: the handshake itself fails
    # (SSLVerifyClient require), and a card is needed in any case
    tok = staff_token(op, REGION, "K3X9", "api://patient-overview")
    with pytest.raises(requests.exceptions.SSLError):
        call(s, "/", token=tok)
    assert call(s, "/", cert="nurse-kommun", token=tok) == 403
