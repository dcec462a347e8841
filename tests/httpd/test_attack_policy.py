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
