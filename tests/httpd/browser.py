"""Headless Chromium for the httpd suite (test_browser.py), driven by Debian's
chromedriver through python3-selenium.

Isolation: a fresh HOME and user-data dir in a temp dir per browser; the test
PKI's server CA is trusted through an NSS database in that HOME (certutil, from
libnss3-tools), so certificate errors are never ignored.  Loopback only: the
browser gets --no-proxy-server and no network features that phone home.
quit() ends chromedriver and every Chromium process started with this
browser's user-data dir, by pid, even when the driver is wedged.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CERTUTIL = "/usr/bin/certutil"


def _pids_with(marker):
    """Pids whose command line contains marker (our own browser's processes)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


class Chromium:
    """One headless browser.  lang: its Accept-Language."""

    def __init__(self, ca_file, artefacts, lang="sv-SE,sv", width=1000, height=900):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        for p in (CHROMIUM, CHROMEDRIVER, CERTUTIL):
            if not os.access(p, os.X_OK):
                raise RuntimeError("%s is missing: make deps" % p)
        self.artefacts = artefacts
        os.makedirs(artefacts, exist_ok=True)
        self.home = tempfile.mkdtemp(prefix="eid-chromium-")
        self.profile = os.path.join(self.home, "profile")
        nss = os.path.join(self.home, ".pki", "nssdb")
        os.makedirs(nss)
        subprocess.run([CERTUTIL, "-N", "-d", "sql:" + nss, "--empty-password"], check=True,
                       capture_output=True)
        subprocess.run([CERTUTIL, "-A", "-d", "sql:" + nss, "-n", "eid-test-server-ca",
                        "-t", "C,,", "-i", ca_file], check=True, capture_output=True)
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        args = ["--headless=new", "--user-data-dir=" + self.profile, "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--disable-sync", "--disable-background-networking",
                "--disable-component-update", "--no-proxy-server", "--lang=" + lang.split(",")[0],
                "--window-size=%d,%d" % (width, height)]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
        for a in args:
            opts.add_argument(a)
        opts.add_experimental_option("prefs", {"intl.accept_languages": lang})
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        env = {k: v for k, v in os.environ.items()
               if not k.lower().endswith("_proxy") and k != "DISPLAY"}
        env["HOME"] = self.home  # the NSS database above
        self.service = Service(CHROMEDRIVER, env=env,
                               log_path=os.path.join(artefacts, "chromedriver.log"))
        self.driver = None
        try:
            self.driver = webdriver.Chrome(service=self.service, options=opts)
        except Exception:
            self.quit()
            raise
        self.driver.set_page_load_timeout(30)
        self.driver.execute_cdp_cmd("Network.enable", {})

    # ---- helpers
    def get(self, url):
        self.driver.get(url)
        return self

    @property
    def url(self):
        return self.driver.current_url

    def text(self):
        return self.driver.find_element("tag name", "body").text

    def lang(self):
        return self.driver.execute_script("return document.documentElement.lang || ''")

    def cookies(self):
        return {c["name"]: c for c in self.driver.get_cookies()}

    def cookies_for(self, url):
        """The browser's cookies for url, whatever page it is on (CDP)."""
        r = self.driver.execute_cdp_cmd("Network.getCookies", {"urls": [url]})
        return {c["name"]: c for c in r["cookies"]}

    def set_accept_language(self, value):
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                                    {"headers": {"Accept-Language": value}})

    def click(self, xpath):
        self.driver.find_element("xpath", xpath).click()

    def wait_for(self, pred, what, timeout=15):
        deadline = time.time() + timeout
        while True:
            try:
                if pred():
                    return
            except Exception:  # the page is changing under us: try again
                pass
            if time.time() > deadline:
                self.shot("timeout-" + re.sub(r"\W+", "-", what)[:40])
                raise AssertionError("timed out waiting for %s; at %s:\n%s"
                                     % (what, self.url, self.text()[:1500]))
            time.sleep(0.05)

    def shot(self, name):
        """A screenshot artefact NN-name.png (numbered in order of the test)."""
        n = len([f for f in os.listdir(self.artefacts) if f.endswith(".png")]) + 1
        path = os.path.join(self.artefacts, "%02d-%s.png" % (n, name))
        try:
            self.driver.save_screenshot(path)
        except Exception:
            pass
        return path

    def console(self):
        """The browser console's messages since the last call (CSP violations land here)."""
        try:
            return [e["message"] for e in self.driver.get_log("browser")]
        except Exception:
            return []

    def quit(self):
        try:
            if self.driver is not None:
                with open(os.path.join(self.artefacts, "console.log"), "a") as f:
                    for m in self.console():
                        f.write(m + "\n")
                self.driver.quit()
        except Exception:
            pass
        self.driver = None
        try:
            self.service.stop()
        except Exception:
            pass
        # Anything left of this browser (a wedged driver leaves Chromium behind).
        for pid in _pids_with(self.profile):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()
