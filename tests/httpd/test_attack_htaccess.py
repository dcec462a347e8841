"""What .htaccess can do with the Eid* directives it may use (AllowOverride
AuthConfig): nothing process-wide, and nothing that changes what another
directory sees on the same keep-alive connection - also with many threads at
once against a few hundred directories."""
import concurrent.futures
import os

import requests

from conftest import server_fixture
from eidtest import TRUST_PROFILES, Httpd, manifest, pki, user_cert

M = manifest()
CA = pki("ca", "server-ca.pem")
NDIRS = 200

# Directory i: a profile list, user attribute and export list of its own.
# The profile list comes first and both kinds allocate the same sizes before
# it: the next request's list can then land where the previous one was.
KINDS = [
    ("EidCertProfiles citiz\nAuthType eid\nRequire valid-user\n"
     "EidUserAttribute pnr-pseudonym\nEidExportAttributes method pnr-pseudonym\n",
     "citizen"),
    ("EidCertProfiles siths\nAuthType eid\nRequire valid-user\n"
     "EidUserAttribute hsa-id\nEidExportAttributes method hsa-id\n",
     "nurse-kommun"),
]

PAD = max(len(k[0]) for k in KINDS) + 80  # every .htaccess file the same size
NSWEEP = 24


def make():
    h = Httpd(TRUST_PROFILES + """
# one name length for every directory (d100 .. d299) and for both profiles
EidTrustIssuer citiz {pki}/ca/eid.pem loa=3 ids=pnr,coord
""" + "".join("EidTrustIssuer s%s {pki}/ca/hsa3.pem loa=3 ids=hsa-id\n" % ("x" * k)
              for k in range(NSWEEP)) + """

<Directory {root}/htdocs/ht>
    AllowOverride AuthConfig
    Options +ExecCGI
    AddHandler cgi-script .py
</Directory>
""", name="attack-ht")
    echo = open(os.path.join(h.root, "cgi", "echo.py")).read()
    for i in range(NDIRS):
        d = os.path.join(h.root, "htdocs", "ht", "d%d" % (100 + i))
        os.makedirs(d)
        with open(os.path.join(d, ".htaccess"), "w") as f:
            # kind 1 allocates a little more or less before its list, by
            # directory: one of them lands where kind 0's list was
            lead = "EidRealm %s\n" % ("r" * (1 + 4 * ((i // 2) % 12))) if i % 2 else ""
            text = lead + KINDS[i % 2][0] + "EidRealm d%03d\n" % i
            f.write(text + "#" * (PAD - len(text)) + "\n")
        with open(os.path.join(d, "echo.py"), "w") as f:
            f.write(echo)
        os.chmod(os.path.join(d, "echo.py"), 0o755)
    # the sweep: SITHS-only profiles whose names grow by one character
    for k in range(NSWEEP):
        d = os.path.join(h.root, "htdocs", "ht", "s%02d" % k)
        os.makedirs(d)
        with open(os.path.join(d, ".htaccess"), "w") as f:
            f.write("EidCertProfiles s%s\nAuthType eid\nRequire valid-user\n" % ("x" * k))
        with open(os.path.join(d, "echo.py"), "w") as f:
            f.write(echo)
        os.chmod(os.path.join(d, "echo.py"), 0o755)
    d = os.path.join(h.root, "htdocs", "ht", "c00")
    os.makedirs(d)
    with open(os.path.join(d, ".htaccess"), "w") as f:
        f.write("EidCertProfiles citiz\nAuthType eid\nRequire valid-user\n")
    with open(os.path.join(d, "echo.py"), "w") as f:
        f.write(echo)
    os.chmod(os.path.join(d, "echo.py"), 0o755)
    return h


srv = server_fixture(make)


def expect(i, user, status, env):
    """What directory i must answer to `user`."""
    kind = i % 2
    if user != KINDS[kind][1]:
        # the other kind's certificate is not trusted by this profile list
        assert status == 403, (i, user, status, env)
        return
    assert status == 200, (i, user, status)
    keys = {k for k in env if k.startswith("EID_") and k != "EID_REQUEST_ID"}
    if kind == 0:
        assert keys == {"EID_METHOD", "EID_PNR_PSEUDONYM"}, (i, env)
    else:
        assert keys == {"EID_METHOD", "EID_HSA_ID"}, (i, env)
        assert env["REMOTE_USER"] == M["nurse-kommun"]["hsa_id"], env


def test_htaccess_profile_list_verdict_not_reused_on_keepalive(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630|AH01631|EID0[12]\d{3}")
    admitted = []
    for k in range(NSWEEP):
        # a directory that trusts the e-ID certificate, then one whose profile
        # list (SITHS only) does not, on one keep-alive connection; the name
        # lengths make one of them allocate its list exactly where the first
        # request's list was
        with requests.Session() as s:
            s.cert = user_cert("citizen")
            assert s.get(srv.url("/ht/c00/echo.py"), verify=CA, timeout=20).status_code == 200
            r = s.get(srv.url("/ht/s%02d/echo.py" % k), verify=CA, timeout=20)
            if r.status_code != 403:
                admitted.append((k, r.status_code))
    assert not admitted, admitted


def test_htaccess_profile_lists_on_one_keepalive_connection(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630|AH01631|EID0[12]\d{3}")
    for user, first in (("citizen", 0), ("nurse-kommun", 1)):
        for i in range(1 - first, 48, 2):
            # a directory that trusts the user, then one that does not, on one
            # keep-alive connection
            with requests.Session() as s:
                s.cert = user_cert(user)
                for j in (first, i):
                    r = s.get(srv.url("/ht/d%d/echo.py" % (100 + j)), verify=CA, timeout=20)
                    expect(j, user, r.status_code,
                           r.json() if r.status_code == 200 else r.text)


def test_htaccess_many_threads_many_directories(srv, logcheck):
    logcheck(srv)
    srv.expect_log(r"AH01630|AH01631|EID0[12]\d{3}")

    def worker(w):
        user = KINDS[w % 2][1]
        out = []
        with requests.Session() as s:
            s.cert = user_cert(user)
            # only the directories of this user's kind (a switch of profile list on
            # one connection is the test above)
            for i in range(w % 2, NDIRS, 2):
                r = s.get(srv.url("/ht/d%d/echo.py" % (100 + i)), verify=CA, timeout=30)
                out.append((i, user, r.status_code,
                            r.json() if r.status_code == 200 else r.text))
        return out

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        for res in ex.map(worker, range(12)):
            for i, user, status, env in res:
                expect(i, user, status, env)
