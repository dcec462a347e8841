"""`make demo` works: the demo starts a real httpd, runs curl for every user
against every policy, and prints the matrix the README shows."""
import os
import socket
import subprocess
import sys

from eidtest import REPO


def test_demo_oneshot():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))  # an occupied port: the demo must pick another
    busy.listen(1)
    try:
        r = subprocess.run([sys.executable, os.path.join(REPO, "demo", "demo.py"),
                            "--oneshot", "--port", str(busy.getsockname()[1])],
                           capture_output=True, text=True, timeout=120)
    finally:
        busy.close()
    assert r.returncode == 0, r.stdout + r.stderr
    matrix = r.stdout.split("Who gets in where")[1].split("Policies:")[0]
    rows = {line.split()[0]: line.split()[1:] for line in matrix.splitlines() if line.strip()}
    #                          whoami vard  kommun region invanare
    assert rows["nurse-kommun"] == ["200", "200", "200", "403", "403"], r.stdout
    assert rows["nurse-kommun-reserve"] == ["200", "403", "200", "403", "403"], r.stdout
    assert rows["doctor-region"] == ["200", "200", "403", "200", "403"], r.stdout
    assert rows["citizen"] == ["200", "403", "403", "403", "200"], r.stdout
    assert rows["function"] == ["403"] * 5, r.stdout
    assert rows["other-ca"] == ["403"] * 5, r.stdout
    assert "curl -s --cacert" in r.stdout
    api = r.stdout.split("The API behind bearer tokens")[1].split("Policies:")[0]
    rows = {line[:22].strip(): line[22:].split() for line in api.splitlines()
            if line.strip() and not line.startswith((" ", "(HTTP"))}
    #                           /api/  /api-report/ /api-region/
    assert rows["inera-nurse"] == ["200", "200", "200"], r.stdout
    assert rows["citizen"] == ["200", "403", "403"], r.stdout
    assert rows["home-care-staff"] == ["200", "403", "403"], r.stdout
    for bad in ("expired", "alg-none", "other-api", "(no token)"):
        assert rows[bad] == ["401"] * 3, (bad, r.stdout)
    assert 'Authorization: Bearer $(cat' in r.stdout
    # the browser login through the test OP (curl with a cookie jar, auto-login)
    portal = r.stdout.split("The portal behind a browser login")[1].split("Users")[0]
    rows = {line.split()[0]: line.split()[1:] for line in portal.splitlines()[1:]
            if line.strip() and not line.startswith(" ")}
    #                       /portal/ /portal-region/ /portal-loa3/
    assert rows["nurse"] == ["200", "200", "200"], r.stdout
    assert rows["othernurse"] == ["200", "403", "200"], r.stdout
    assert rows["lowlevel"] == ["200", "200", "403"], r.stdout
    assert "/admin/auto-login" in r.stdout and "/portal/" in r.stdout
