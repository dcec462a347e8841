"""`make demo` works: the demo starts a real httpd, runs curl for every user
against every policy, and prints the matrix the README shows."""
import os
import subprocess
import sys

from eidtest import REPO


def test_demo_oneshot():
    r = subprocess.run([sys.executable, os.path.join(REPO, "demo", "demo.py"), "--oneshot",
                        "--port", "1"],  # port 1 is never free: the demo picks another
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()
            if line.split() and line.split()[0] in ("nurse-kommun", "nurse-kommun-reserve",
                                                    "doctor-region", "citizen", "function",
                                                    "other-ca")}
    #                          whoami vard  kommun region invanare
    assert rows["nurse-kommun"] == ["200", "200", "200", "403", "403"], r.stdout
    assert rows["nurse-kommun-reserve"] == ["200", "403", "200", "403", "403"], r.stdout
    assert rows["doctor-region"] == ["200", "200", "403", "200", "403"], r.stdout
    assert rows["citizen"] == ["200", "403", "403", "403", "200"], r.stdout
    assert rows["function"] == ["403"] * 5, r.stdout
    assert rows["other-ca"] == ["403"] * 5, r.stdout
    assert "curl -s --cacert" in r.stdout
