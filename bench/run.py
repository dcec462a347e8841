#!/usr/bin/python3
"""Side-by-side throughput benchmarks of mod_auth_eid against its peers.

    bench/run.py --suite cert   [--rounds 3] [--seconds 10] [--only a,b] ...
    bench/run.py --suite bearer [--rounds 3] [--seconds 10] [--extra] ...
    bench/run.py --suite client            # eidload against wrk on a plain httpd
    bench/run.py --suite bearer --callgrind 500 [--callgrind-top 15]

One httpd per scenario (own ServerRoot, port, error log; same MPM block, same
1 KB file), all on 127.0.0.1 and all running for the whole suite.  Each
scenario must first prove that it enforces (no credential and bad credentials
refused, the good one gets 200 and the full body); then every scenario gets a
warm-up, then R rounds run interleaved (A B C ... A B C ...).  Reported per
scenario: median req/s, the median of the per-round ratios to the baseline,
httpd CPU microseconds per request (parent + children, reaped children
included) and its delta to the baseline, latency, and Redis commands per
request where Redis is used.  Results go to bench/results/.

With --callgrind N no timed rounds are run: after the enforcement checks each
scenario's httpd is restarted with the same configuration as one process
(-X) under valgrind --tool=callgrind, twice, serving N and 3N keep-alive
requests on one connection; instructions per request = (total(3N) -
total(N)) / 2N, so start-up and first-request costs cancel out.

Exit status: 0 all good; 1 a timed run had errors or a scenario failed to
start or to prove enforcement; 2 usage error (e.g. missing module or PKI).
See bench/README.md.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (AUDIENCE, BODY, CLK_TCK, ISSUER, VALGRIND, BenchError,  # noqa: E402
                      Httpd, Redis, Tokens, b64u, callgrind_profile, callgrind_total,
                      cpu_busy, cpu_jiffies, http_get, log, make_rogue_cert, subject_o,
                      tree_ticks)
import hashlib  # noqa: E402
import resource  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
EIDLOAD = os.path.join(BENCH, "eidload")
DEFAULT_MODULE = os.path.join(REPO, "build", "mod_auth_eid.so")
DEFAULT_PKI = os.path.join(REPO, "build", "pki")
RESULTS = os.path.join(BENCH, "results")
WRK = "/usr/bin/wrk"
PATH = "/p/1k.txt"  # the protected 1 KB static file


# ---- scenarios ---------------------------------------------------------------------
class Scenario:
    def __init__(self, name, desc, tls=False, modules=(), conf=None, client_cert=None,
                 checks=(), needs_module=False, needs_jwks=False, tokens=False, redis=False,
                 tool="eidload", threads=None, audit=False):
        self.name, self.desc, self.tls, self.modules = name, desc, tls, list(modules)
        self.conf = conf or (lambda c: "")
        self.client_cert, self.checks = client_cert, list(checks)
        self.needs_module, self.needs_jwks, self.tokens = needs_module, needs_jwks, tokens
        self.redis, self.tool, self.threads, self.audit = redis, tool, threads, audit
        self.server = None
        self.redis_srv = None
        self.failure = None
        self.check_results = []
        self.runs = []
        self.cg_runs = []       # --callgrind: the N and 3N runs
        self.cg_per_req = None  # instructions per request
        self.cg_funcs = None    # --callgrind-top: {function: inclusive Ir per request}
        self.headers = []       # extra request headers of the load (session cookies)
        self.setup = None       # callable run once the server is up (session: log in)


def eid_load(ctx):
    return "LoadModule auth_eid_module %s" % ctx["module"]


# issue 12: a 10-clause policy over groups, roles and LoA (the county directory
# of conf-samples); the nurse's certificate satisfies it.
POLICY10 = ("EidDirectory county %s\n"
            "EidPolicy p10 \"%%{{EID_LOA}} -ge 3 && 'county' -in eid_list('groups') "
            "&& 'care-collaboration' -in eid_list('groups') "
            "&& !('contracted' -in eid_list('groups')) "
            "&& ('reporter' -in eid_list('dir-roles') || 'nurse' -in eid_list('dir-roles') "
            "|| 'physician' -in eid_list('dir-roles')) "
            "&& %%{{EID_ORG_KIND}} -in {{'municipality', 'region'}} "
            "&& %%{{EID_METHOD}} == 'cert' && %%{{EID_PROFILE}} == 'siths'\"" %
            os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "conf-samples", "directory-county.txt"))


def eid_cert_scenario(ctx, verify, checks, name, desc, audit=True, export=True,
                      policy10=False, ocsp=False):
    lines = ["EidTrustIssuer siths {pki}/ca/hsa3.pem loa=3 ids=hsa-id"]
    if ocsp:  # answers cached: only the first request of a process asks the responder
        # timeout=10: the responder is a thread of this runner; on a machine loaded by
        # others it can take seconds, and fail=closed would then refuse (503)
        lines.append("EidRevocation siths ocsp responder=http://127.0.0.1:{ocsp_port}/ "
                     "max-age=3600 timeout=10")
    if audit:
        lines.append("EidAuditLog {root}/audit.log")
    if policy10:
        lines.append(POLICY10)
    loc = ["AuthType eid", "EidMethods cert", "EidCertProfiles siths"]
    loc.append("EidExportHeaders on" if export else "EidExportEnv off\nEidExportHeaders off")
    loc.append("Require eid-policy p10" if policy10 else "Require eid-loa 3")
    body = "\n".join(lines) + "\n<Location /p/>\n" + "\n".join(loc) + "\n</Location>\n"
    sc = Scenario(name, desc, tls=True, client_cert=ctx["nurse"], needs_module=True,
                  modules=[eid_load(ctx)], audit=audit, checks=checks,
                  conf=lambda c: verify.format(**c) + body.format(**c))
    sc.needs_ocsp = ocsp
    return sc


def ocsp_responder(ctx, workdir):
    """A loopback OCSP responder for the nurse's card (eid-cert-ocsp): one answer made
    by `openssl ocsp -index` over a one-line database (good, nextUpdate in a day), sent
    to every POST; a daemon thread of this process on 127.0.0.1."""
    import http.server
    import threading
    hsa3 = os.path.join(ctx["pki"], "ca", "hsa3")
    serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", ctx["nurse"][0]],
                            check=True, capture_output=True, text=True).stdout
    exp = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + 86400 * 30))
    with open(os.path.join(workdir, "index.txt"), "w") as f:
        f.write("V\t%s\t\t%s\tunknown\t/CN=nurse\n" % (exp, serial.strip().split("=")[1]))
    req, resp = os.path.join(workdir, "req.der"), os.path.join(workdir, "resp.der")
    subprocess.run(["openssl", "ocsp", "-issuer", hsa3 + ".pem", "-cert", ctx["nurse"][0],
                    "-no_nonce", "-reqout", req], check=True, capture_output=True)
    subprocess.run(["openssl", "ocsp", "-index", os.path.join(workdir, "index.txt"), "-CA",
                    hsa3 + ".pem", "-rsigner", hsa3 + ".pem", "-rkey", hsa3 + ".key",
                    "-ndays", "1", "-reqin", req, "-respout", resp], check=True,
                   capture_output=True)
    answer = open(resp, "rb").read()

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def cert_scenarios(ctx, extra=False):
    nurse = ctx["nurse"]
    rogue = ctx["rogue"]
    doctor = ctx.get("doctor")
    citizen = ctx.get("citizen")
    org = ctx["nurse_o"].replace("'", "\\'")
    verify = textwrap.dedent("""\
        SSLCACertificateFile {pki}/ca/client-trust.pem
        SSLVerifyClient require
        SSLVerifyDepth 3
        """)
    deny_common = [("no client certificate", "deny", {}),
                   ("self-signed certificate with the nurse's subject", "deny",
                    {"cert": rogue})]
    if citizen:
        # mod_ssl accepts it; only the authorization layer can refuse it
        deny_common.append(("citizen e-ID (CA trusted by mod_ssl, outside the siths "
                            "profile)", "deny", {"cert": citizen}))
    expr_checks = list(deny_common)
    if doctor:
        expr_checks.append(("trusted certificate, other organisation (doctor-region)", "deny",
                            {"cert": doctor}))
    expr_checks.append(("nurse-kommun certificate", "ok", {"cert": nurse}))
    eid_checks = deny_common + [("nurse-kommun certificate", "ok", {"cert": nurse})]
    out = [
        Scenario("tls-noauth", "TLS, no client certificate requested, no auth (baseline)",
                 tls=True, checks=[("no credential (open by design)", "ok", {})]),
        Scenario("tls-require-expr",
                 "SSLVerifyClient require + Require expr on SSL_CLIENT_S_DN_O", tls=True,
                 client_cert=nurse,
                 conf=lambda c: verify.format(**c) + textwrap.dedent("""\
                     <Location /p/>
                         Require expr "%{{SSL_CLIENT_S_DN_O}} == '{org}'"
                     </Location>
                     """).format(org=org),
                 checks=expr_checks),
        eid_cert_scenario(ctx, verify, eid_checks, "eid-cert",
                          "mod_auth_eid: AuthType eid, EidMethods cert, Require eid-loa 3, "
                          "env + header export, audit log"),
        eid_cert_scenario(ctx, verify, eid_checks, "eid-cert-policy10",
                          "eid-cert with a 10-clause named policy over directory groups, "
                          "roles and LoA (Require eid-policy) instead of Require eid-loa 3",
                          policy10=True),
        eid_cert_scenario(ctx, verify, eid_checks, "eid-cert-ocsp",
                          "eid-cert + EidRevocation (OCSP, loopback responder, answers "
                          "cached)", ocsp=True),
    ]
    if extra:  # where the per-request cost of eid-cert goes
        out += [
            eid_cert_scenario(ctx, verify, eid_checks, "eid-cert-noaudit",
                              "eid-cert without an audit log", audit=False),
            eid_cert_scenario(ctx, verify, eid_checks, "eid-cert-noexport",
                              "eid-cert with EidExportEnv off, EidExportHeaders off",
                              export=False),
            eid_cert_scenario(ctx, verify, eid_checks, "eid-cert-bare",
                              "eid-cert without audit and without export",
                              audit=False, export=False),
        ]
    return out


def bearer_checks(tokens):
    checks = [("no token", "deny", {})]
    for label, tok in tokens.bad.items():
        checks.append((label, "deny", {"headers": {"Authorization": "Bearer " + tok}}))
    checks.append(("valid token", "ok",
                   {"headers": {"Authorization": "Bearer " + tokens.good[0]}}))
    return checks


def audit_line(c):
    return "EidAuditLog %s/audit.log" % c["root"]


def bearer_scenarios(ctx, extra):
    tokens = ctx["tokens"]
    checks = bearer_checks(tokens)
    eid_common = textwrap.dedent("""\
        EidProvider bench issuer={issuer} jwks_file={jwks_file} audience={aud} algs=RS256
        EidTokenCache {cache}
        {audit}
        <Location /p/>
            AuthType eid
            EidMethods bearer
            EidBearerProviders bench
            Require valid-user
        </Location>
        """)
    openidc = textwrap.dedent("""\
        OIDCCryptoPassphrase {passphrase}
        OIDCOAuthVerifyJwksUri {jwks_url}
        OIDCOAuthSSLValidateServer Off
        OIDCOAuthRemoteUserClaim sub
        {cache}
        <Location /p/>
            AuthType oauth20
            <RequireAll>
                Require valid-user
                Require claim aud:{aud}
            </RequireAll>
        </Location>
        """)
    common = dict(issuer=ISSUER, aud=AUDIENCE)
    out = [
        Scenario("noauth", "plain HTTP, no auth (baseline; the same Authorization header is "
                 "sent and ignored)", tokens=True,
                 checks=[("no credential (open by design)", "ok", {})]),
        Scenario("eid-bearer-cache", "mod_auth_eid bearer, RS256 JWT, token cache on, "
                 "env export and audit log", tokens=True, needs_module=True,
                 modules=[eid_load(ctx)], checks=checks, audit=True,
                 conf=lambda c: eid_common.format(cache="4096", jwks_file=c["jwks_file"],
                                                  audit=audit_line(c), **common)),
        Scenario("eid-bearer-nocache",
                 "mod_auth_eid bearer, RS256 JWT, EidTokenCache off (verified per request), "
                 "env export and audit log", tokens=True, needs_module=True,
                 modules=[eid_load(ctx)], checks=checks, audit=True,
                 conf=lambda c: eid_common.format(cache="off", jwks_file=c["jwks_file"],
                                                  audit=audit_line(c), **common)),
        Scenario("oauth2", "mod_oauth2 %s, jwks_uri verify (its 300 s result cache)"
                 % ctx["versions"].get("libapache2-mod-oauth2", "?"),
                 tokens=True, needs_jwks=True, modules=["oauth2"], checks=checks,
                 conf=lambda c: textwrap.dedent("""\
                     <Location /p/>
                         AuthType oauth2
                         OAuth2TokenVerify jwks_uri {jwks_url} jwks_uri.ssl_verify=false
                         <RequireAll>
                             Require valid-user
                             Require oauth2_claim aud:{aud}
                         </RequireAll>
                     </Location>
                     """).format(jwks_url=c["jwks_url"], **common)),
        Scenario("openidc-rs", "mod_auth_openidc %s resource server, JWKS over https, shm cache"
                 % ctx["versions"].get("libapache2-mod-auth-openidc", "?"),
                 tokens=True, needs_jwks=True, modules=["auth_openidc"], checks=checks,
                 conf=lambda c: openidc.format(passphrase=c["passphrase"],
                                               jwks_url=c["jwks_url"],
                                               cache="OIDCCacheType shm", **common)),
    ]
    if extra:
        out.append(Scenario(
            "eid-bearer-cache-noaudit", "eid-bearer-cache without the audit log (what the "
            "audit write costs)", tokens=True, needs_module=True, modules=[eid_load(ctx)],
            checks=checks,
            conf=lambda c: eid_common.format(cache="4096", jwks_file=c["jwks_file"], audit="",
                                             **common)))
        out.append(Scenario(
            "openidc-rs-redis", "mod_auth_openidc resource server, cache in Redis",
            tokens=True, needs_jwks=True, modules=["auth_openidc"], checks=checks, redis=True,
            conf=lambda c: openidc.format(
                passphrase=c["passphrase"], jwks_url=c["jwks_url"],
                cache="OIDCCacheType redis\nOIDCRedisCacheServer 127.0.0.1:%d"
                      % c["redis_port"], **common)))
    return out


def client_scenarios(ctx):
    ok = [("no credential (open by design)", "ok", {})]
    return [
        Scenario("eidload-t1", "eidload, 1 thread (baseline)", checks=ok, threads=1),
        Scenario("wrk-t2", "wrk -t2 (Debian wrk)", checks=ok, tool="wrk", threads=2),
        Scenario("eidload-t2", "eidload, 2 threads", checks=ok, threads=2),
        Scenario("wrk-t1", "wrk -t1", checks=ok, tool="wrk", threads=1),
    ]


# suite -> baseline scenario
SUITES = {"cert": "tls-noauth", "bearer": "noauth", "session": "noauth",
          "client": "eidload-t1"}


# ---- runner --------------------------------------------------------------------------
def pkg_versions(names):
    out = {}
    for n in names:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", n], capture_output=True,
                           text=True)
        if r.returncode == 0 and r.stdout:
            out[n] = r.stdout
    return out


def run_check(sc, ctx, label, expect, kw):
    srv = sc.server
    cert = kw.get("cert")
    if "fn" in kw:  # the scenario's own check: fn() -> (pass, what it got)
        try:
            return kw["fn"]()
        except Exception as e:
            return False, "error: %s" % e
    try:
        status, body = http_get(srv.port, PATH, tls=sc.tls, server_ca=ctx.get("server_ca"),
                                cert=cert, headers=kw.get("headers"))
    except Exception as e:  # a check that cannot even run is a failure
        return False, "error: %s" % e
    if expect == "ok":
        good = status == 200 and body == BODY
        got = "%s, %d-byte body%s" % (status, len(body) if isinstance(body, bytes) else 0,
                                      "" if good or status != 200 else " (wrong body)")
    else:
        good = status in (401, 403) or status == "refused"
        got = "%s%s" % (status, "" if status != "refused" else " (%s)" % body)
    return good, got


def load_cmd(sc, ctx, args, seconds, cpu_window=True, connections=None, threads=None,
             max_requests=None, timeout=None):
    url = "%s://127.0.0.1:%d%s" % ("https" if sc.tls else "http", sc.server.port, PATH)
    threads = threads or sc.threads or args.threads
    connections = connections or args.connections
    if sc.tool == "wrk":
        return [WRK, "-t%d" % threads, "-c%d" % connections, "-d%ds" % max(1, round(seconds)),
                "--latency", url]
    cmd = [EIDLOAD, "-q", "-c", str(connections), "-t", str(threads),
           "-d", str(seconds), "-n", str(max_requests or int(seconds * 200000) + 1000),
           "-e", str(len(BODY))]
    if timeout:
        cmd += ["-T", str(timeout)]
    if cpu_window:
        cmd += ["--cpu-pid", str(sc.server.pid)]
    if sc.tls:
        cmd += ["--cafile", ctx["server_ca"], "--sni", "localhost"]
        if sc.client_cert:
            cmd += ["--cert", sc.client_cert[0], "--key", sc.client_cert[1]]
            if len(sc.client_cert) > 2 and sc.client_cert[2]:
                cmd += ["--chain", sc.client_cert[2]]
    if sc.tokens:
        cmd += ["-R", ctx["tokens"].file]
    for h in sc.headers:
        cmd += ["-H", h]
    cmd.append(url)
    return cmd


def parse_wrk(text, seconds):
    def num(pat, default=0.0):
        m = re.search(pat, text)
        return float(m.group(1)) if m else default

    def dur_us(s):
        m = re.match(r"([\d.]+)(us|ms|s)", s)
        if not m:
            return 0.0
        return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
    reqs = int(num(r"(\d+) requests in"))
    secs = seconds
    m = re.search(r"requests in ([\d.]+)(ms|s|m)\b", text)
    if m:
        secs = float(m.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     text)
    errs = {"connect": 0, "read": 0, "write": 0, "timeout": 0,
            "non2xx": int(num(r"Non-2xx or 3xx responses: (\d+)"))}
    if sock:
        errs.update(connect=int(sock.group(1)), read=int(sock.group(2)),
                    write=int(sock.group(3)), timeout=int(sock.group(4)))
    lat = {}
    for p in ("50", "99"):
        m = re.search(r"\s%s%%\s+(\S+)" % p, text)
        if m:
            lat["p" + p] = dur_us(m.group(1))
    return {"requests": reqs, "seconds": secs, "rps": reqs / secs if secs else 0.0,
            "errors": errs, "errors_total": sum(errs.values()), "latency_us": lat,
            "established": None, "raw": text}


def timed_run(sc, ctx, args, seconds, label):
    srv = sc.server
    cmd = load_cmd(sc, ctx, args, seconds, cpu_window=sc.tool != "wrk" and
                   args.suite != "client")
    redis0 = sc.redis_srv.command_calls() if sc.redis_srv else None
    rticks0 = tree_ticks(sc.redis_srv.proc.pid) if sc.redis_srv else None
    ticks0 = tree_ticks(srv.pid)
    sys0 = cpu_jiffies()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    log_off = srv.log_size()
    audit0 = os.path.getsize(srv.audit_log) if sc.audit and os.path.exists(srv.audit_log) else 0
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 90)
    wall = time.time() - t0
    ticks1 = tree_ticks(srv.pid)
    sys1 = cpu_jiffies()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rticks1 = tree_ticks(sc.redis_srv.proc.pid) if sc.redis_srv else None
    redis1 = sc.redis_srv.command_calls() if sc.redis_srv else None
    if sc.tool == "wrk":
        if r.returncode != 0:
            raise BenchError("wrk failed: %s" % r.stderr.strip())
        res = parse_wrk(r.stdout, seconds)
    else:
        try:
            res = json.loads(r.stdout)
        except ValueError:
            raise BenchError("eidload (rc %d) gave no JSON: %s" % (r.returncode,
                                                                   r.stderr.strip()))
    res["label"] = label
    res["wall"] = wall
    reqs = res["requests"]
    if ticks0 is not None and ticks1 is not None and reqs:
        res["runner_cpu_us_per_req"] = (ticks1 - ticks0) * 1e6 / CLK_TCK / reqs
    if ticks0 is not None and ticks1 is not None:
        # Everything else the machine did meanwhile: the load client, redis-server
        # and httpd are ours; the rest is foreign load that skews the round.
        ours = (ticks1 - ticks0) / CLK_TCK
        ours += (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
        if rticks0 is not None and rticks1 is not None:
            ours += (rticks1 - rticks0) / CLK_TCK
        busy = (sys1[0] - sys0[0]) / CLK_TCK
        res["foreign_cpu_pct"] = max(0.0, (busy - ours) / max(wall, 1e-3) * 100)
    cpu = res.get("server_cpu_us_per_req", res.get("runner_cpu_us_per_req"))
    res["cpu_us_per_req"] = cpu
    if redis0 is not None and reqs:
        res["redis_cmds_per_req"] = (redis1 - redis0) / reqs
        if rticks0 is not None and rticks1 is not None:
            res["redis_cpu_us_per_req"] = (rticks1 - rticks0) * 1e6 / CLK_TCK / reqs
    if sc.audit and reqs:
        # batched records (EidAuditLog ... flush=N, N <= 1000 ms) arrive late
        with open(srv.conf) as f:
            if "flush=" in f.read():
                time.sleep(1.1)
        try:
            with open(srv.audit_log, "rb") as f:
                f.seek(audit0)
                res["audit_lines_per_req"] = f.read().count(b"\n") / reqs
        except OSError:
            res["audit_lines_per_req"] = 0.0
    res["error_log_lines"] = srv.problems_since(log_off)
    problems = []
    if res.get("errors_total"):
        problems.append("%d errors %s" % (res["errors_total"],
                                          {k: v for k, v in res["errors"].items() if v}))
    if res.get("established") is not None and res["established"] != args.connections:
        problems.append("only %s of %d connections established" % (res["established"],
                                                                   args.connections))
    if reqs == 0:
        problems.append("no requests completed")
    crashes = [ln for ln in res["error_log_lines"] if Httpd.CRASH.search(ln)]
    if crashes:
        problems.append("httpd child crashed: " + crashes[0][-160:])
    if sc.audit and reqs and res.get("audit_lines_per_req", 0) < 0.99:
        problems.append("audit log has %.3f records per request, expected 1"
                        % res.get("audit_lines_per_req", 0))
    res["problems"] = problems
    return res


# ---- --callgrind: instructions per request ---------------------------------------
CG_TIMEOUT = 600  # seconds for valgrind to start httpd, serve the first request, exit


def callgrind_run(sc, ctx, args, count):
    """One httpd -X under callgrind (the scenario's own configuration), one
    probe request with the good credential, then `count` keep-alive requests
    on one connection with the timed runs' headers / client certificate, then
    SIGTERM.  Returns a dict with the program total and any problems."""
    srv = sc.server
    srv.stop()  # the instance that passed the enforcement checks, if still up
    out = os.path.join(srv.root, "callgrind", "%s.%d.out" % (sc.name, count))
    res = {"requests_wanted": count, "out_file": out, "problems": []}
    problems = res["problems"]
    log_off = srv.log_size()
    audit0 = os.path.getsize(srv.audit_log) if sc.audit and os.path.exists(srv.audit_log) else 0
    probe = next((kw for _, expect, kw in reversed(sc.checks) if expect == "ok"), {})
    t0 = time.time()
    try:
        srv.start_callgrind(out, timeout=CG_TIMEOUT)
        if sc.setup:  # a fresh process: log in again (the same cost in both runs)
            sc.setup()
        # Answered once the server is ready (valgrind start-up takes seconds);
        # the same probe in both runs, so it cancels out like start-up.
        status, body = http_get(srv.port, PATH, tls=sc.tls, server_ca=ctx.get("server_ca"),
                                cert=probe.get("cert"), headers=probe.get("headers"),
                                timeout=CG_TIMEOUT)
        if status != 200 or body != BODY:
            problems.append("first request got %s, not 200 with the 1 KB body" % status)
        else:
            cmd = load_cmd(sc, ctx, args, 3600, cpu_window=False, connections=1, threads=1,
                           max_requests=count, timeout=CG_TIMEOUT)
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600 + 60)
            try:
                res["load"] = json.loads(r.stdout)
            except ValueError:
                problems.append("eidload (rc %d) gave no JSON: %s" % (r.returncode,
                                                                      r.stderr.strip()[-300:]))
    except (BenchError, OSError, subprocess.TimeoutExpired) as e:
        problems.append(str(e).strip().replace("\n", " / ")[-600:])
    finally:
        # valgrind writes the profile at exit; that can take a while
        res["exit_status"] = srv.stop(timeout=CG_TIMEOUT, resend=10)
    res["wall"] = time.time() - t0
    load = res.get("load")
    if load is not None:
        if load.get("errors_total"):
            problems.append("%d errors %s" % (load["errors_total"],
                                              {k: v for k, v in load["errors"].items() if v}))
        if load.get("requests") != count or load.get("ok") != count:
            problems.append("%s requests, %s ok, wanted %d" % (load.get("requests"),
                                                                load.get("ok"), count))
    crashes = [ln for ln in srv.problems_since(log_off) if Httpd.CRASH.search(ln)]
    if crashes:
        problems.append("httpd crashed: " + crashes[0][-160:])
    if sc.audit and load is not None:
        try:
            with open(srv.audit_log, "rb") as f:
                f.seek(audit0)
                res["audit_records"] = f.read().count(b"\n")
        except OSError:
            res["audit_records"] = 0
        if res["audit_records"] < count:
            problems.append("%d audit records for %d requests" % (res["audit_records"], count))
    res["total"] = callgrind_total(out)
    if res["total"] is None and not problems:
        problems.append("no totals in %s (exit status %s): %s" % (
            out, res["exit_status"], Httpd.tail_file(out + ".log", 8).replace("\n", " / ")))
    # A crash at exit (after the profile's requests) leaves a complete profile
    # (totals); it is shown with the exit status.  It was the shm store's
    # (shmcb cleanup after its DSO was unloaded; fixed, tests/httpd/test_shm_shutdown.py).
    return res


def callgrind_scenario(sc, ctx, args, top):
    n = args.callgrind
    for count in (n, 3 * n):
        res = callgrind_run(sc, ctx, args, count)
        sc.cg_runs.append(res)
        log("[%s] callgrind, %d requests: %s instructions in %.0f s%s%s" % (
            sc.name, count, fmt(res["total"], ","), res["wall"],
            "" if res["exit_status"] in (0, None) or res["problems"] else
            " (exit status %s after the requests; the profile is complete)"
            % res["exit_status"],
            ("  PROBLEMS: " + "; ".join(res["problems"])) if res["problems"] else ""))
        if res["problems"]:
            sc.failure = "callgrind, %d requests: %s" % (count, "; ".join(res["problems"]))
            return
    t1, t3 = sc.cg_runs[0]["total"], sc.cg_runs[1]["total"]
    sc.cg_per_req = (t3 - t1) / (2.0 * n)
    if top:
        f1 = callgrind_profile(sc.cg_runs[0]["out_file"])
        f3 = callgrind_profile(sc.cg_runs[1]["out_file"])
        zero = [0, 0]
        sc.cg_funcs = {k: [(f3.get(k, zero)[i] - f1.get(k, zero)[i]) / (2.0 * n)
                           for i in (0, 1)] for k in set(f1) | set(f3)}


def top_functions(funcs, base_funcs, base_per_req, k):
    """The k functions with the largest inclusive cost per request over the
    baseline.  The frames around every request (thread start, the MPM's
    connection loop: >= 90 % of the baseline's instructions per request in
    the baseline itself) only repeat the total and are left out."""
    zero = [0, 0]
    rows = []
    for name in set(funcs) | set(base_funcs):
        b = base_funcs.get(name, zero)
        if b[1] >= 0.9 * base_per_req:
            continue
        f = funcs.get(name, zero)
        rows.append({"function": name, "inclusive_per_req": round(f[1] - b[1], 1),
                     "self_per_req": round(f[0] - b[0], 1)})
    rows.sort(key=lambda r: (-r["inclusive_per_req"], r["function"]))
    return rows[:k]


def summarise_callgrind(scenarios, baseline_name, top):
    base = next(s for s in scenarios if s.name == baseline_name)
    rows = []
    for sc in scenarios:
        row = {"scenario": sc.name, "description": sc.desc, "failure": sc.failure,
               "checks": sc.check_results}
        if sc.cg_per_req is not None:
            row.update(
                instr_per_req=round(sc.cg_per_req, 1),
                instr_delta=(None if base.cg_per_req is None
                             else round(sc.cg_per_req - base.cg_per_req, 1)),
                totals={str(r["requests_wanted"]): r["total"] for r in sc.cg_runs},
                valgrind_exit=[r["exit_status"] for r in sc.cg_runs],
                audit_records=[r.get("audit_records") for r in sc.cg_runs] if sc.audit
                else None)
            if top and sc is not base and sc.cg_funcs is not None and \
                    base.cg_funcs is not None:
                row["top_functions"] = top_functions(sc.cg_funcs, base.cg_funcs,
                                                     base.cg_per_req, top)
        rows.append(row)
    return rows


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarise(scenarios, baseline_name, rounds):
    base = next(s for s in scenarios if s.name == baseline_name)
    base_runs = {r["round"]: r for r in base.runs}
    rows = []
    for sc in scenarios:
        row = {"scenario": sc.name, "description": sc.desc, "failure": sc.failure,
               "checks": sc.check_results}
        if sc.runs:
            ratios, deltas = [], []
            for r in sc.runs:
                b = base_runs.get(r["round"])
                if b and b["rps"]:
                    ratios.append(r["rps"] / b["rps"])
                if b and r.get("cpu_us_per_req") is not None and \
                        b.get("cpu_us_per_req") is not None:
                    deltas.append(r["cpu_us_per_req"] - b["cpu_us_per_req"])
            row.update(
                rps_median=median([r["rps"] for r in sc.runs]),
                rps_rounds=[round(r["rps"], 1) for r in sc.runs],
                ratio_median=median(ratios),
                ratio_rounds=[round(x, 3) for x in ratios],
                cpu_us_per_req=median([r.get("cpu_us_per_req") for r in sc.runs]),
                cpu_delta_us=median(deltas),
                runner_cpu_us_per_req=median([r.get("runner_cpu_us_per_req")
                                              for r in sc.runs]),
                p50_us=median([r.get("latency_us", {}).get("p50") for r in sc.runs]),
                p99_us=median([r.get("latency_us", {}).get("p99") for r in sc.runs]),
                redis_cmds_per_req=median([r.get("redis_cmds_per_req") for r in sc.runs]),
                redis_cpu_us_per_req=median([r.get("redis_cpu_us_per_req") for r in sc.runs]),
                audit_lines_per_req=median([r.get("audit_lines_per_req") for r in sc.runs]),
                errors=sum(r.get("errors_total", 0) for r in sc.runs),
                error_log_lines=sum(len(r["error_log_lines"]) for r in sc.runs),
                foreign_cpu_pct=max([r.get("foreign_cpu_pct", 0) for r in sc.runs]),
            )
        rows.append(row)
    return rows


def fmt(x, spec, none="—"):
    return none if x is None else format(x, spec)


def markdown(meta, rows):
    L = ["# Benchmark: suite `%s` — %s" % (meta["suite"], meta["timestamp"]), ""]
    L.append("%d rounds x %gs, %d connections, %s; warm-up %gs per scenario; baseline `%s`."
             % (meta["rounds"], meta["seconds"], meta["connections"],
                "load client threads %d" % meta["threads"], meta["warmup"], meta["baseline"]))
    L.append("Machine: %s, %d CPUs, %.0f%% busy before the start; %s." % (
        meta["machine"], meta["cpus"], meta["cpu_busy_before"] * 100,
        ", ".join("%s %s" % kv for kv in sorted(meta["versions"].items()))))
    if any(s.get("rps_median") is not None for s in rows) and meta.get("module_sha256"):
        L.append("mod_auth_eid: `%s` built %s, sha256 `%s`." % (
            meta["module"], meta["module_mtime"], meta["module_sha256"][:16]))
    foreign = [(r.get("foreign_cpu_pct") or 0, r["scenario"]) for r in rows]
    worst = max(foreign) if foreign else (0, "")
    if worst[0] > 10:
        L.append("")
        L.append("**Warning: other processes used up to %.0f%% of a CPU during the timed runs "
                 "(%s): absolute figures are skewed, ratios less so.**" % worst)
    L.append("")
    L.append("| scenario | req/s (median) | ratio to baseline | httpd CPU µs/req | "
             "Δ µs/req vs baseline | p50 / p99 ms | Redis cmds/req (redis-server µs/req) | "
             "req/s per round |")
    L.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("rps_median") is None:
            L.append("| %s | **%s** | | | | | | |" % (
                r["scenario"], "FAILED: " + " / ".join((r["failure"] or "not run").splitlines())[:220]
                .replace("|", "\\|")))
            continue
        L.append("| %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
            r["scenario"], fmt(r["rps_median"], ".0f"), fmt(r["ratio_median"], ".2f"),
            fmt(r["cpu_us_per_req"], ".1f"),
            ("+" if (r["cpu_delta_us"] or 0) >= 0 else "") + fmt(r["cpu_delta_us"], ".1f"),
            fmt(r["p50_us"] and r["p50_us"] / 1000, ".2f"),
            fmt(r["p99_us"] and r["p99_us"] / 1000, ".2f"),
            fmt(r["redis_cmds_per_req"], ".2f") + (
                "" if r.get("redis_cpu_us_per_req") is None
                else " (%.1f)" % r["redis_cpu_us_per_req"]),
            " ".join("%.0f" % x for x in r["rps_rounds"])))
    L.append("")
    L.append("Ratio = median over rounds of (scenario req/s / baseline req/s in the same "
             "round). CPU = utime+stime+cutime+cstime of the httpd parent and its children "
             "over the timed window (connection set-up and TLS handshakes excluded), per "
             "completed request.")
    L.append("")
    L += checks_section(meta, rows)
    return "\n".join(L) + "\n"


def checks_section(meta, rows):
    L = ["## Scenarios and enforcement checks"]
    for r in rows:
        L.append("- **%s** — %s" % (r["scenario"], r["description"]))
        for c in r["checks"]:
            L.append("  - %s: expected %s, got %s — %s" % (
                c["check"], c["expect"], c["got"], "ok" if c["pass"] else "**FAILED**"))
        if r.get("audit_lines_per_req") is not None:
            L.append("  - audit records per request: %.3f" % r["audit_lines_per_req"])
        if r.get("error_log_lines"):
            L.append("  - warn/error lines in the error log during timed runs: %d"
                     % r["error_log_lines"])
        if r["failure"]:
            L.append("  - **failure**: %s" % r["failure"].replace("\n", " / ")[:600])
    L.append("")
    L.append("Command: `%s`" % meta["command"])
    return L


def markdown_callgrind(meta, rows):
    n = meta["callgrind_n"]
    L = ["# Instructions per request: suite `%s` — %s" % (meta["suite"], meta["timestamp"]),
         ""]
    L.append("callgrind (valgrind %s): each scenario's httpd configuration, one process (`-X`), "
             "run twice: %d and %d keep-alive requests on one connection (`eidload -c 1`)%s; "
             "baseline `%s`." % (meta["valgrind"], n, 3 * n,
                                 ", %d tokens rotating" % meta["tokens"]
                                 if meta.get("tokens") else "", meta["baseline"]))
    L.append("Machine: %s, %d CPUs; %s." % (
        meta["machine"], meta["cpus"],
        ", ".join("%s %s" % kv for kv in sorted(meta["versions"].items()))))
    if any(s.get("instr_per_req") is not None for s in rows) and meta.get("module_sha256"):
        L.append("mod_auth_eid: `%s` built %s, sha256 `%s`." % (
            meta["module"], meta["module_mtime"], meta["module_sha256"][:16]))
    L.append("")
    L.append("| scenario | instructions/req | Δ vs baseline | total (%d req) | total (%d req) |"
             % (n, 3 * n))
    L.append("|---|---|---|---|---|")
    for r in rows:
        if r.get("instr_per_req") is None:
            L.append("| %s | **%s** | | | |" % (
                r["scenario"], "FAILED: " + " / ".join(
                    (r["failure"] or "not run").splitlines())[:220].replace("|", "\\|")))
            continue
        d = r["instr_delta"]
        L.append("| %s | %s | %s | %s | %s |" % (
            r["scenario"], fmt(r["instr_per_req"], ",.0f"),
            "—" if d is None else ("+" if d >= 0 else "") + format(d, ",.0f"),
            fmt(r["totals"].get(str(n)), ","), fmt(r["totals"].get(str(3 * n)), ",")))
    L.append("")
    first = {"cert": "the connection's TLS handshake",
             "session": "the login through the test OP, the connection's TLS handshake"}.get(
        meta["suite"]) or "the first pass over the %d tokens (cache misses)" % meta["tokens"]
    L.append("Instructions/req = (total(%d) − total(%d)) / %d: start-up, the first requests "
             "(configuration and key loading, %s) and shut-down are the same in both runs and "
             "cancel out. Only httpd's instructions are counted (not redis-server's). Counts "
             "are valgrind's: OpenSSL sees no SHA-NI/AES-NI under valgrind, so crypto costs "
             "more instructions than it does natively." % (3 * n, n, 2 * n, first))
    if any(r.get("top_functions") for r in rows):
        L.append("")
        L.append("## What each scenario adds (instructions per request, baseline subtracted)")
        L.append("")
        L.append("The functions with the largest inclusive cost over the baseline (a function "
                 "and its callees); self = in the function itself. The frames around every "
                 "request (thread start, the MPM's connection loop) are left out.")
        for r in rows:
            if not r.get("top_functions"):
                continue
            L.append("")
            L.append("**%s** (%s/req over the baseline)" % (
                r["scenario"], ("+" if r["instr_delta"] >= 0 else "") +
                format(r["instr_delta"], ",.0f")))
            L.append("")
            L.append("| inclusive Ir/req | self Ir/req | function (object) |")
            L.append("|---|---|---|")
            for f in r["top_functions"]:
                L.append("| %s | %s | `%s` |" % (
                    format(f["inclusive_per_req"], "+,.0f"), format(f["self_per_req"], "+,.0f"),
                    f["function"].replace("|", "\\|")[:160]))
    L.append("")
    L += checks_section(meta, rows)
    return "\n".join(L) + "\n"


def write_report(args, scenarios, versions, ctx, busy):
    """Markdown on stdout; JSON + Markdown under --results."""
    rows = summarise(scenarios, SUITES[args.suite], args.rounds)
    meta = run_meta(args, versions, ctx, rounds=args.rounds, seconds=args.seconds,
                    warmup=args.warmup, connections=args.connections, threads=args.threads,
                    cpu_busy_before=round(busy, 3))
    raw = {s.name: [{k: v for k, v in r.items() if k != "raw"} for r in s.runs]
           for s in scenarios}
    save_report(args.results, "%s-%s" % (args.suite, meta["timestamp"]),
                "latest-%s.md" % args.suite, markdown(meta, rows),
                {"meta": meta, "summary": rows, "runs": raw})


def run_meta(args, versions, ctx, **mode):
    """What every report says about the run: suite, machine, versions, module."""
    meta = {"suite": args.suite, "timestamp": time.strftime("%Y%m%d-%H%M%S"),
            "baseline": SUITES[args.suite], "cpus": os.cpu_count(),
            "machine": "%s %s" % (platform.system(), platform.release()),
            "versions": versions, "module": ctx["module_src"],
            "module_sha256": ctx.get("module_sha256"), "module_mtime": ctx.get("module_mtime"),
            "pki": ctx["pki"], "command": " ".join([sys.argv[0]] + sys.argv[1:])}
    meta.update(mode)
    return meta


def save_report(results, name, latest, md, data):
    """Print the markdown; write <name>.json, <name>.md and <latest> in `results`."""
    print(md)
    os.makedirs(results, exist_ok=True)
    stem = os.path.join(results, name)
    with open(stem + ".json", "w") as f:
        json.dump(data, f, indent=2)
    for path in (stem + ".md", os.path.join(results, latest)):
        with open(path, "w") as f:
            f.write(md)
    log("results: %s.{json,md}" % stem)


def write_callgrind_report(args, scenarios, versions, ctx):
    rows = summarise_callgrind(scenarios, SUITES[args.suite], args.callgrind_top)
    vg = subprocess.run([VALGRIND, "--version"], capture_output=True, text=True).stdout.strip()
    meta = run_meta(args, versions, ctx, mode="callgrind", callgrind_n=args.callgrind,
                    callgrind_top=args.callgrind_top,
                    tokens=args.tokens if args.suite == "bearer" else None,
                    valgrind=vg.replace("valgrind-", ""))
    save_report(args.results, "%s-callgrind-%s" % (args.suite, meta["timestamp"]),
                "latest-%s-callgrind.md" % args.suite, markdown_callgrind(meta, rows),
                {"meta": meta, "summary": rows, "runs": {s.name: s.cg_runs for s in scenarios}})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=sorted(SUITES), required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="eidload threads (default 1)")
    ap.add_argument("--only", help="comma-separated scenarios (the baseline is always run)")
    ap.add_argument("--extra", action="store_true",
                    help="also the extra scenarios: bearer: openidc-rs-redis (needs "
                         "redis-server); cert: eid-cert without audit / export; session: "
                         "eid-session-shm without audit")
    ap.add_argument("--tokens", type=int, default=64,
                    help="bearer: distinct valid tokens the load rotates through")
    ap.add_argument("--pki", default=DEFAULT_PKI, help="test PKI (default build/pki)")
    ap.add_argument("--module", default=DEFAULT_MODULE, help="mod_auth_eid.so under test")
    ap.add_argument("--results", default=RESULTS)
    ap.add_argument("--wait-idle", type=float, default=0, metavar="S",
                    help="wait up to S seconds for the machine to be idle before starting")
    ap.add_argument("--loglevel", default="warn",
                    help="httpd LogLevel of the measured servers (default warn), e.g. "
                         "'warn mpm_event:trace1' to see keep-alive closes")
    ap.add_argument("--keep", action="store_true", help="keep server roots (for debugging)")
    ap.add_argument("--list", action="store_true", help="list the suite's scenarios and exit")
    ap.add_argument("--callgrind", type=int, metavar="N",
                    help="no timed rounds: count instructions per request with callgrind "
                         "(httpd -X, N and 3N keep-alive requests on one connection)")
    ap.add_argument("--callgrind-top", type=int, default=0, metavar="K",
                    help="with --callgrind: the K functions each scenario adds most "
                         "(inclusive, per request, baseline subtracted)")
    args = ap.parse_args()
    if args.callgrind is not None:
        if args.suite == "client":
            ap.error("--callgrind: the cert, bearer and session suites only")
        if not 10 <= args.callgrind <= 100000:
            ap.error("--callgrind N: 10..100000")
        if args.suite == "bearer" and args.callgrind < args.tokens:
            ap.error("--callgrind N must be at least --tokens (%d): every token must be seen "
                     "in the first run so that both runs pay the same first-pass misses"
                     % args.tokens)
        if not 0 <= args.callgrind_top <= 200:
            ap.error("--callgrind-top K: 0..200")
    elif args.callgrind_top:
        ap.error("--callgrind-top needs --callgrind N")
    if not (1 <= args.rounds <= 50 and 1 <= args.seconds <= 600 and 0 <= args.warmup <= 60
            and 1 <= args.connections <= 1024 and 1 <= args.threads <= 16
            and 0 <= args.wait_idle <= 3600):
        ap.error("rounds 1..50, seconds 1..600, warmup 0..60, connections 1..1024, "
                 "threads 1..16, wait-idle 0..3600")

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    if not os.access(EIDLOAD, os.X_OK):
        log("eidload is not built: run `make -C bench` first")
        return 2
    if args.callgrind is not None:
        if not os.access(VALGRIND, os.X_OK):
            log("%s is missing: apt-get install valgrind" % VALGRIND)
            return 2
    busy = cpu_busy()
    deadline = time.time() + args.wait_idle
    while busy > 0.15 and time.time() < deadline:
        log("machine %.0f%% busy: waiting for it to go idle (--wait-idle, %.0f s left)"
            % (busy * 100, deadline - time.time()))
        time.sleep(min(5.0, max(0.0, deadline - time.time())))
        busy = cpu_busy()
    if busy > 0.15 and args.callgrind is None:  # instruction counts do not mind
        log("warning: the machine is %.0f%% busy before the benchmark starts: other load "
            "skews absolute numbers (ratios within a round suffer less)" % (busy * 100))
    workdir = tempfile.mkdtemp(prefix="eidbench-")
    os.chmod(workdir, 0o755)
    versions = pkg_versions(["apache2-bin", "libssl3", "libapache2-mod-oauth2",
                             "libapache2-mod-auth-openidc", "wrk", "redis-server"])
    ctx = {"module": os.path.abspath(args.module), "pki": os.path.abspath(args.pki),
           "versions": versions, "passphrase": b64u(os.urandom(24))}
    ctx["module_src"] = ctx["module"]
    if os.path.exists(ctx["module"]):
        # Load a private copy: `make` overwrites build/mod_auth_eid.so in place,
        # which would crash httpd children that have the old one mapped, and
        # every eid scenario must run the same binary.
        snap = os.path.join(workdir, "mod_auth_eid.so")
        shutil.copyfile(ctx["module"], snap)
        os.chmod(snap, 0o755)
        with open(snap, "rb") as f:
            ctx["module_sha256"] = hashlib.sha256(f.read()).hexdigest()
        ctx["module_mtime"] = time.strftime(
            "%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(ctx["module"])))
        ctx["module"] = snap
    servers = []
    scenarios = []
    exit_code = 0
    try:
        baseline = SUITES[args.suite]
        if args.suite == "cert":
            pki = ctx["pki"]
            need = ["server/localhost.pem", "server/localhost.key", "ca/server-ca.pem",
                    "ca/client-trust.pem", "ca/hsa3.pem", "users/nurse-kommun.pem",
                    "users/nurse-kommun.key"]
            missing = [p for p in need if not os.path.exists(os.path.join(pki, p))]
            if missing:
                log("test PKI incomplete in %s (missing %s).\n  Build it with `make pki`, or "
                    "build it with: make pki, or pass one: bench/run.py "
                    "--pki /tmp/bench-pki ..." % (pki, ", ".join(missing)))
                return 2
            ctx["server_ca"] = os.path.join(pki, "ca/server-ca.pem")
            u = os.path.join(pki, "users")
            chain = os.path.join(u, "nurse-kommun.chain.pem")
            ctx["nurse"] = (os.path.join(u, "nurse-kommun.pem"),
                            os.path.join(u, "nurse-kommun.key"),
                            chain if os.path.exists(chain) else None)
            for name in ("doctor-region", "citizen"):
                if os.path.exists(os.path.join(u, name + ".pem")):
                    ctx[name.split("-")[0]] = (os.path.join(u, name + ".pem"),
                                               os.path.join(u, name + ".key"))
            ctx["nurse_o"] = subject_o(ctx["nurse"][0])
            ctx["rogue"] = make_rogue_cert(workdir, ctx["nurse"][0])
            scenarios = cert_scenarios(ctx, args.extra)
        elif args.suite == "bearer":
            pki = ctx["pki"]
            if not os.path.exists(os.path.join(pki, "server/localhost.pem")):
                log("the JWKS server needs a server certificate: `make pki`, or "
                    "make pki (or --pki DIR)")
                return 2
            ctx["server_ca"] = os.path.join(pki, "ca/server-ca.pem")
            ctx["tokens"] = Tokens(workdir, args.tokens)
            ctx["jwks_file"] = ctx["tokens"].jwks_file
            scenarios = bearer_scenarios(ctx, args.extra)
        elif args.suite == "session":
            import session
            if not args.list:
                session.prepare(ctx, workdir)
            scenarios = session.session_scenarios(ctx, Scenario, eid_load, args.extra)
        else:
            if not os.access(WRK, os.X_OK):
                log("wrk is missing: bench/setup.sh")
                return 2
            scenarios = client_scenarios(ctx)

        if args.list:
            for s in scenarios:
                print("%-20s %s" % (s.name, s.desc))
            return 0
        if args.only:
            want = [w.strip() for w in args.only.split(",") if w.strip()]
            unknown = [w for w in want if w not in [s.name for s in scenarios]]
            if unknown:
                log("unknown scenario(s) %s; this suite has: %s" % (
                    ", ".join(unknown), ", ".join(s.name for s in scenarios)))
                return 2
            scenarios = [s for s in scenarios if s.name in want or s.name == baseline]
        if any(s.needs_module for s in scenarios) and not os.path.exists(ctx["module"]):
            rest = [s.name for s in scenarios if not s.needs_module]
            argv, skip = [], False
            for a in sys.argv[1:]:
                if skip:
                    skip = False
                elif a == "--only":
                    skip = True
                elif not a.startswith("--only="):
                    argv.append(a)
            log("mod_auth_eid is not built: %s does not exist (run `make` at the top).\n"
                "To benchmark the peers meanwhile:\n  bench/run.py %s --only %s"
                % (ctx["module_src"], " ".join(argv), ",".join(rest)))
            return 2
        if any(s.needs_jwks for s in scenarios):
            jw = Httpd("jwks", lambda c: "AddType application/json .json\n", ctx, tls=True,
                       mpm="StartServers 1\nServerLimit 1\nThreadsPerChild 16\n"
                           "MaxRequestWorkers 16\n", min_children=1, keep=args.keep)
            shutil.copy(ctx["tokens"].jwks_file, os.path.join(jw.root, "htdocs", "jwks.json"))
            os.chmod(os.path.join(jw.root, "htdocs", "jwks.json"), 0o644)
            servers.append(jw)
            jw.start()
            ctx["jwks_url"] = "https://localhost:%d/jwks.json" % jw.port
            st, body = http_get(jw.port, "/jwks.json", tls=True, server_ca=ctx["server_ca"])
            if st != 200 or json.loads(body) != ctx["tokens"].jwks:
                raise BenchError("JWKS server does not serve the JWKS (%s)" % st)
        if any(getattr(s, "needs_ocsp", False) for s in scenarios):
            ocsp_dir = os.path.join(workdir, "ocsp")  # removed with workdir
            os.makedirs(ocsp_dir)
            ctx["ocsp_port"] = ocsp_responder(ctx, ocsp_dir).server_address[1]
        if any(s.name == "eid-cert" for s in scenarios) or any(
                s.needs_module for s in scenarios):
            log("module under test: %s (built %s, sha256 %s), loaded from a private copy"
                % (ctx["module_src"], ctx.get("module_mtime"),
                   ctx.get("module_sha256", "?")[:16]))

        # Start every scenario's server and prove it enforces.
        for sc in scenarios:
            try:
                if sc.redis:
                    sc.redis_srv = Redis(keep=args.keep).start()
                    ctx["redis_port"] = sc.redis_srv.port
                sc.server = Httpd(sc.name, sc.conf, ctx, tls=sc.tls, modules=sc.modules,
                                  keep=args.keep, loglevel=args.loglevel)
                servers.append(sc.server)
                sc.server.start()
            except BenchError as e:
                sc.failure = "start: %s" % e
                m = re.search(r"Invalid command '(Eid\w+)'", str(e))
                if sc.needs_module and m:
                    sc.failure = ("this build of mod_auth_eid does not know %s (yet?): %s"
                                  % (m.group(1), sc.failure))
                log("[%s] FAILED to start: %s" % (sc.name, e))
                continue
            if sc.setup:
                try:
                    sc.setup()
                except BenchError as e:
                    sc.failure = "set-up: %s" % e
                    log("[%s] FAILED to set up: %s\n%s" % (sc.name, e, sc.server.tail_log(8)))
                    continue
            for label, expect, kw in sc.checks:
                good, got = run_check(sc, ctx, label, expect, kw)
                sc.check_results.append({"check": label, "expect": expect, "got": got,
                                         "pass": good})
                log("[%s] check %-55s expect %-4s got %s%s" % (
                    sc.name, label, expect, got, "" if good else "   <-- FAILED"))
            bad = [c["check"] for c in sc.check_results if not c["pass"]]
            if bad:
                sc.failure = "enforcement check failed: " + "; ".join(bad)

        base = next(s for s in scenarios if s.name == baseline)
        if base.failure:
            raise BenchError("baseline %s failed: %s" % (base.name, base.failure))
        live = [s for s in scenarios if not s.failure]

        if args.callgrind is not None:
            # A separate mode: no timed rounds.  Each server that passed its
            # checks is restarted from the same configuration under callgrind.
            for sc in live:
                sc.server.stop()
            live.sort(key=lambda s: s is not base)  # the baseline first
            for sc in live:
                callgrind_scenario(sc, ctx, args, args.callgrind_top)
                if sc is base and base.failure:
                    raise BenchError("baseline %s failed: %s" % (base.name, base.failure))
            live = []

        # Warm-up (keys fetched, caches filled, children's first requests), then rounds.
        for sc in live:
            if args.warmup > 0:
                w = timed_run(sc, ctx, args, args.warmup, "warmup")
                log("[%s] warm-up: %.0f req/s%s" % (sc.name, w["rps"], (
                    "  problems: " + "; ".join(w["problems"])) if w["problems"] else ""))
                if w["problems"]:
                    sc.failure = "warm-up: " + "; ".join(w["problems"])
        live = [s for s in live if not s.failure]
        for rnd in range(1, args.rounds + 1):
            for sc in live:
                res = timed_run(sc, ctx, args, args.seconds, "round %d" % rnd)
                res["round"] = rnd
                sc.runs.append(res)
                log("[%s] round %d: %.0f req/s, %s µs/req CPU, foreign load %.0f%% of a CPU%s%s"
                    % (sc.name, rnd, res["rps"], fmt(res.get("cpu_us_per_req"), ".1f"),
                       res.get("foreign_cpu_pct", 0),
                    "" if res.get("redis_cmds_per_req") is None else
                    ", %.2f Redis cmds/req" % res["redis_cmds_per_req"],
                    ("  PROBLEMS: " + "; ".join(res["problems"])) if res["problems"] else ""))
                if res["problems"] and not sc.failure:
                    sc.failure = "timed run with errors: " + "; ".join(res["problems"])
    except KeyboardInterrupt:
        log("interrupted: stopping servers")
        exit_code = 130
    except BenchError as e:
        log("error: %s" % e)
        exit_code = 1
    finally:
        for s in servers:
            s.stop()
            s.cleanup()
        for sc in scenarios:
            if sc.redis_srv:
                sc.redis_srv.stop()
                sc.redis_srv.cleanup()
        if ctx.get("op"):
            ctx["op"].stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    if exit_code == 0 and scenarios and any(s.runs for s in scenarios):
        write_report(args, scenarios, versions, ctx, busy)
    if exit_code == 0 and any(s.cg_per_req is not None for s in scenarios):
        write_callgrind_report(args, scenarios, versions, ctx)
    if exit_code == 0 and any(s.failure for s in scenarios):
        for s in scenarios:
            if s.failure:
                log("FAILED %s: %s" % (s.name, s.failure))
        exit_code = 1
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
