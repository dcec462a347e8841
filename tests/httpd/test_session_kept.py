"""The session a keep-alive connection keeps (issue 10 speed): its identity,
export encoding and audit fields are made once per kept session and shared by
the connection's requests.  These tests drive one TLS connection by hand
(http.client, the same socket throughout, asserted) and check that what every
request exports and audits is its own session's, whatever came before on the
connection: a touch that replaces the kept session mid-request, another
user's cookie, another directory, a logout."""
import http.client
import json
import os
import ssl
import time

import pytest

# fresh: loginkit's, on this module's srv
from loginkit import (CA, fresh, logged_in, make_httpd, op, register,  # noqa: F401
                      session_cookie)

DIRECTORY = """Organisation 232100-0016 kind=region name="Region Exempel" hsa=SE2321000016-
Group county 232100-0016
Role reporter group=county
"""

LOCS = {
    "/app/": "EidMethods oidc\nEidExportHeaders on\nRequire valid-user",
    "/dir/": "EidMethods oidc\nEidUseDirectory county\nRequire valid-user",
    "/nodir/": "EidMethods oidc\nEidUseDirectory none\nRequire valid-user",
}


@pytest.fixture(scope="module")
def srv(op):
    # The shortest idle timeout: the last use is written every 15 s, so a
    # request 16 s after the previous one on the same connection touches the
    # session it was given from the kept copy.
    h = make_httpd(op, LOCS, name="kept",
                   extra="EidDirectory county {root}/directory.conf\n"
                         "EidSessionIdleTimeout 60\nKeepAliveTimeout 40\n"
                         "MaxKeepAliveRequests 0\n")
    with open(os.path.join(h.root, "directory.conf"), "w") as f:
        f.write(DIRECTORY)
    h.start()
    yield h
    h.stop()
    h.cleanup()


class Conn:
    """One keep-alive TLS connection; fails if the server closes it."""

    def __init__(self, h):
        ctx = ssl.create_default_context(cafile=CA)
        self.h = h
        self.c = http.client.HTTPSConnection("localhost", h.port, context=ctx, timeout=20)
        self.c.connect()
        self.sock = self.c.sock

    def get(self, path, cookie):
        self.c.request("GET", path, headers={"Cookie": "__Host-eid-session=" + cookie,
                                             "Accept": "text/html"})
        r = self.c.getresponse()
        body = r.read()
        assert self.c.sock is self.sock, "the server closed the keep-alive connection"
        return r.status, body

    def env(self, path, cookie):
        """The backend's view, less what differs per request."""
        status, body = self.get(path, cookie)
        assert status == 200, (status, body[:300])
        e = json.loads(body)
        rid = e.pop("EID_REQUEST_ID")
        assert e.pop("HTTP_X_EID_REQUEST_ID", rid) == rid
        return e

    def close(self):
        self.c.close()


def audit_of(h, resource, n):
    return h.wait_audit(resource, n)


def test_touch_on_a_kept_session_keeps_the_identity_whole(fresh, op):
    h = fresh
    cookie = session_cookie(logged_in(op, h, "nurse"))
    c = Conn(h)
    try:
        first = c.env("/app/echo/touch", cookie)
        assert first["EID_HSA_ID"] == "SE2321000016-P0001N"
        again = c.env("/app/echo/touch", cookie)
        assert again == first
        # past the touch interval: this request is served from the kept copy,
        # writes the last use and replaces the kept copy while it runs
        time.sleep(16)
        touched = c.env("/app/echo/touch", cookie)
        assert touched == first
        for _ in range(20):
            assert c.env("/app/echo/touch", cookie) == first
    finally:
        c.close()
    recs = audit_of(h, "/app/echo/touch", 23)
    assert [r.get("hsa_id") for r in recs] == ["SE2321000016-P0001N"] * 23
    assert all(r["decision"] == "allow" and r["auth_method"] == "oidc" for r in recs)


def test_another_users_cookie_on_the_same_connection_is_that_user(fresh, op):
    h = fresh
    nurse = session_cookie(logged_in(op, h, "nurse"))
    other = session_cookie(logged_in(op, h, "othernurse"))
    c = Conn(h)
    seq = [nurse, other, nurse, nurse, other, other, nurse, other]
    want = {nurse: "SE2321000016-P0001N", other: None}
    try:
        seen = []
        for ck in seq:
            e = c.env("/app/echo/who", ck)
            seen.append(e["EID_HSA_ID"])
            if want[other] is None and ck == other:
                want[other] = e["EID_HSA_ID"]
            # the header copy of the export agrees with the variable
            assert e["HTTP_X_EID_HSA_ID"] == e["EID_HSA_ID"]
            assert e["REMOTE_USER"] == e["EID_HSA_ID"]
    finally:
        c.close()
    assert want[other] and want[other] != want[nurse]
    assert seen == [want[ck] for ck in seq]
    recs = audit_of(h, "/app/echo/who", len(seq))
    assert [r.get("hsa_id") for r in recs] == [want[ck] for ck in seq]


def test_two_directories_on_one_connection(fresh, op):
    """The kept identity is enriched by one directory; a location with another
    (here: none) gets its own enrichment, and the kept one is not changed."""
    h = fresh
    cookie = session_cookie(logged_in(op, h, "nurse"))
    c = Conn(h)
    try:
        for _ in range(3):
            d = c.env("/dir/echo/g", cookie)
            assert d["EID_GROUPS"] == "county" and d["EID_ORG_KIND"] == "region"
            assert d["EID_DIR_ROLES"] == "reporter"
            n = c.env("/nodir/echo/g", cookie)
            assert "EID_GROUPS" not in n and "EID_ORG_KIND" not in n
            assert n["EID_HSA_ID"] == d["EID_HSA_ID"]
    finally:
        c.close()
    recs = audit_of(h, "/dir/echo/g", 3)
    assert all(r.get("groups") == ["county"] and r.get("org_kind") == "region" for r in recs)
    recs = audit_of(h, "/nodir/echo/g", 3)
    assert all("groups" not in r and "org_kind" not in r for r in recs)


def test_logout_elsewhere_ends_the_kept_session(fresh, op):
    h = fresh
    b = logged_in(op, h, "nurse")
    cookie = session_cookie(b)
    c = Conn(h)
    try:
        assert c.env("/app/echo/lo", cookie)["EID_HSA_ID"] == "SE2321000016-P0001N"
        # RP-initiated logout on another connection (the logout page's form)
        r = b.get(h.url("/.eid/logout"), timeout=20)
        assert r.status_code == 200
        token = r.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        r = b.post(h.url("/.eid/logout"), data={"csrf": token}, allow_redirects=False,
                   timeout=20)
        assert r.status_code in (302, 303), r.status_code
        status, _ = c.get("/app/echo/lo", cookie)
        assert status == 302  # no session: sent to log in
    finally:
        c.close()
