"""A bearer token's identity is enriched from the organisation directory once,
when it goes into the token cache; a cache hit at a location with another
directory (or none) is enriched for that location on the request's own copy,
never by changing the cached entry - also with many threads at once."""
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from eidtest import module_op, TRUST_PROFILES, Httpd, pki
from test_directory import AUD, DIRECTORY, region_token


CA = pki("ca", "server-ca.pem")

# A second directory that sees the region differently.
OTHER = """\
Organisation 232100-0016 kind=state-agency name="Myndigheten" hsa=SE2321000016-
Group agencies 232100-0016
Role auditor group=agencies
"""

LOCS = {"a": "EidUseDirectory county", "b": "EidUseDirectory other",
        "n": "EidUseDirectory none"}
WANT = {
    "a": {"EID_ORG_KIND": "region", "EID_GROUPS": "county,vardsamverkan",
          "EID_DIR_ROLES": "reporter"},
    "b": {"EID_ORG_KIND": "state-agency", "EID_GROUPS": "agencies",
          "EID_DIR_ROLES": "auditor"},
    "n": {},
}


op = module_op("eid-op-enr-")


@pytest.fixture(scope="module")
def srv(op):
    body = TRUST_PROFILES + (
        "EidProvider inera issuer=%s discovery=on audience=%s algs=RS256,ES256 claims=inera\n"
        "EidDirectory county {root}/county.conf\nEidDirectory other {root}/other.conf\n"
        'ScriptAliasMatch "^/[a-z]/echo$" "{root}/cgi/echo.py"\n' % (op.issuer, AUD))
    for name, line in LOCS.items():
        body += ("<Location /%s/>\nAuthType eid\nEidMethods bearer\n%s\nRequire valid-user\n"
                 "</Location>\n" % (name, line))
    s = Httpd(body, name="tokenrich")
    for fname, text in (("county.conf", DIRECTORY), ("other.conf", OTHER)):
        with open(os.path.join(s.root, fname), "w", encoding="utf-8") as f:
            f.write(text)
    s.start()
    yield s
    s.stop()
    s.cleanup()


def seen(srv, loc, tok):
    env = requests.get(srv.url("/%s/echo" % loc), headers={"Authorization": "Bearer " + tok},
                       verify=CA, timeout=20).json()
    return {k: env[k] for k in ("EID_ORG_KIND", "EID_GROUPS", "EID_DIR_ROLES") if k in env}


def test_one_token_three_directories_in_turn(srv, op):
    # the first request fills the cache under one directory, the others hit it
    for first in ("a", "b", "n"):
        tok = region_token(op)
        order = [first] + [x for x in "abn" if x != first]
        for loc in order + order:
            assert seen(srv, loc, tok) == WANT[loc], (first, loc)


def test_threads_share_entries_and_never_change_them(srv, op):
    toks = [region_token(op) for _ in range(40)]
    jobs = [(loc, t) for t in toks for loc in "abnabn"]

    def run(job):
        loc, tok = job
        return loc, seen(srv, loc, tok)

    with ThreadPoolExecutor(16) as ex:
        for loc, got in ex.map(run, jobs):
            assert got == WANT[loc], loc
