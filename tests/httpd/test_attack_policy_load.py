"""Policies under load: many client threads at once, each request with an
identity of its own (1,200 distinct staff tokens of four organisations from
the test OP, each sent twice; client certificates on keep-alive connections
that move between locations of two directories).  Every answer is checked
against what was sent: the decision of the named policy, the groups and roles
the directory gave that identity, and - evaluated by httpd itself - that
the identity the policy saw is the one the client sent (X-Expect)."""
import os
import random
import shutil
import sys
import tempfile
import threading

import pytest
import requests

from eidtest import REPO, TRUST_PROFILES, Httpd, pki, user_cert
from test_directory import AUD, write_dir

sys.path.insert(0, os.path.join(REPO, "tests", "op"))
from opctl import TestOP  # noqa: E402

CA = pki("ca", "server-ca.pem")
THREADS, TOKENS = 12, 100
KOMMUN, REGION, NORRVARD, SORSELE = "2120002874", "2321000016", "5569999997", "2120009952"
GROUPS = {KOMMUN: "county,county-kommuner,vardsamverkan", REGION: "county,vardsamverkan",
          NORRVARD: "vardsamverkan", SORSELE: None}
VOB = "Vård och behandling"
WHO = 'Header always set X-Who "%{{EID_HSA_ID}}e|%{{EID_GROUPS}}e|%{{EID_DIR_ROLES}}e"\n'


def loc(path, directory, rules):
    return ("<Location %s>\nAuthType eid\nEidMethods cert bearer\nEidCertProfiles siths eid\n"
            "EidUseDirectory %s\n%s\n%s</Location>\n" % (path, directory, rules, WHO))


@pytest.fixture(scope="module")
def op():
    o = TestOP(tempfile.mkdtemp(prefix="eid-op-polload-")).start()
    yield o
    o.stop()
    shutil.rmtree(o.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def srv(op):
    c = "ThreadsPerChild 24\nMaxRequestWorkers 24\nMaxSpareThreads 24\n" + TRUST_PROFILES
    c += ("EidProvider inera issuer=%s discovery=on audience=%s algs=RS256,ES256 "
          "claims=inera\n" % (op.issuer, AUD))
    c += "EidDirectory county {root}/directory.conf\nEidDirectory empty {root}/empty.conf\n"
    c += ("EidPolicy collab \"'vardsamverkan' -in eid_list('groups') && "
          "%{{EID_LOA}} -ge 3\"\n")
    c += loc("/p/", "county", "Require eid-policy collab")
    c += loc("/q/", "empty", "Require eid-policy collab")
    # httpd compares the identity it evaluates with the one the client says it sent
    c += loc("/e/", "county", "<RequireAll>\nRequire eid-policy collab\n"
             "Require expr %{{EID_HSA_ID}} == req('X-Expect')\n</RequireAll>")
    s = Httpd(c, name="pol-load")
    write_dir(s.root)
    with open(os.path.join(s.root, "empty.conf"), "w") as f:
        f.write('Organisation 212000-9960 kind=municipality name="Kiruna kommun"\n')
    for d in ("p", "q", "e"):
        os.makedirs(os.path.join(s.root, "htdocs", d))
        with open(os.path.join(s.root, "htdocs", d, "x.txt"), "w") as f:
            f.write("x\n")
    s.start()
    yield s
    s.stop()
    s.cleanup()


def run(threads):
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive(), "a client thread hangs"


def person(t, i):
    org = (KOMMUN, REGION, NORRVARD, SORSELE)[i % 4]
    hsa = "SE%s-T%02dN%04d" % (org, t, i)
    purpose = VOB if (i // 4) % 2 == 0 else "Administration"
    return org, hsa, purpose


def expected(org, purpose):
    """(status at /p/, groups, roles) the county directory gives."""
    if GROUPS[org] is None:
        return 403, None, None
    roles = ["reporter"]
    if org == KOMMUN and purpose == VOB:
        roles = ["nurse", "reporter"]
    return 200, GROUPS[org], ",".join(roles)


def test_many_identities_many_threads_policies_and_enrichment(srv, op, logcheck):
    c = logcheck(srv)
    c.expect_log(r"AH01630: client denied")
    tokens = {}
    for t in range(THREADS):
        for i in range(TOKENS):
            org, hsa, purpose = person(t, i)
            tokens[t, i] = op.mint(preset="inera-nurse", aud=AUD, claims={
                "sub": hsa, "employeeHsaId": hsa, "allEmployeeHsaIds": [hsa],
                "healthCareProviderHsaId": "SE%s-F1" % org, "healthCareProviderOrgNo": org,
                "healthCareUnitHsaId": "SE%s-E1" % org, "commissionHsaId": "SE%s-U1" % org,
                "commissionPurpose": purpose, "commissionRight": ["Läsa;Alla;VG"]})
    errors, done = [], []

    def token_client(t):
        order = [i for i in range(TOKENS)] * 2
        random.Random(t).shuffle(order)
        n = 0
        with requests.Session() as s:
            for k, i in enumerate(order):
                org, hsa, purpose = person(t, i)
                status, groups, roles = expected(org, purpose)
                path = ("/p/x.txt", "/q/x.txt", "/e/x.txt")[k % 3]
                want = status if path != "/q/x.txt" else 403
                try:
                    r = s.get(srv.url(path), verify=CA, timeout=60,
                              headers={"Authorization": "Bearer " + tokens[t, i],
                                       "X-Expect": hsa})
                except requests.RequestException as e:
                    errors.append("%s %s: %s" % (hsa, path, e))
                    continue
                who = r.headers.get("X-Who", "").split("|")
                if r.status_code != want:
                    errors.append("%s %s: %d" % (hsa, path, r.status_code))
                elif want == 200 and who != [hsa, groups, roles]:
                    errors.append("%s %s: %r" % (hsa, path, who))
                else:
                    n += 1
        done.append(n)

    certs = [("nurse-kommun", "SE2120002874-P000000004711", 200),
             ("doctor-region", "SE2321000016-K3X9", 200),
             ("nurse-kommun-reserve", "SE2120002874-P000000004711", 403),
             ("citizen", None, 403)]

    def cert_client(t):
        user, hsa, status = certs[t % len(certs)]
        n = 0
        for _ in range(4):
            with requests.Session() as s:
                s.cert = user_cert(user)
                for k in range(15):
                    path = ("/p/x.txt", "/q/x.txt", "/e/x.txt")[(k + t) % 3]
                    want = 403 if path == "/q/x.txt" else status
                    h = {"X-Expect": hsa} if hsa else {}
                    try:
                        r = s.get(srv.url(path), verify=CA, timeout=60, headers=h)
                    except requests.RequestException as e:
                        errors.append("%s %s: %s" % (user, path, e))
                        continue
                    who = r.headers.get("X-Who", "").split("|")
                    if r.status_code != want or (want == 200 and who[0] != hsa):
                        errors.append("%s %s: %d %r" % (user, path, r.status_code, who))
                    else:
                        n += 1
        done.append(n)

    run([threading.Thread(target=token_client, args=(t,)) for t in range(THREADS)] +
        [threading.Thread(target=cert_client, args=(t,)) for t in range(8)])
    assert not errors, "%d wrong answers, e.g. %s" % (len(errors), errors[:5])
    assert sum(done) == THREADS * TOKENS * 2 + 8 * 4 * 15
