"""PENDING, not in the default run (its name is not test_*.py): the logout step of the
browser flow of test_browser.py.  It fails today, on a real defect: the logout
confirmation page's Content-Security-Policy `form-action 'self'` makes Chromium block
the form POST's 303 to the OP's end_session_endpoint (another origin), so the user
stays on "Logga ut?" with the session alive.  Run it with
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/httpd/browser_logout_pending.py
Once it passes it moves into test_browser.py (one flow) and this file goes.
"""
import urllib.parse

from test_browser import (CLIENT_ID, SESSION_COOKIE, chromium, login_stepup_refusal,  # noqa: F401
                          site)
from test_browser import at_op


def test_browser_logout(site, chromium, logcheck):  # noqa: F811
    op, srv, base = site
    b = chromium
    logcheck(srv)
    login_stepup_refusal(b, op, srv, base)
    srv.expect_log(r"AH01630", r"EID01101")

    # 4. Logout: the link leads to a confirmation page; its form POSTs.
    b.click("//a[@id='logout']")
    b.wait_for(lambda: b.driver.find_elements("xpath", "//form[@method='post' or "
                                                       "@method='POST']"),
               "the logout confirmation page")
    b.shot("logout-confirm")
    assert urllib.parse.urlsplit(b.url).path == "/.eid/logout"
    assert b.driver.title == "Logga ut?", b.driver.title
    form = b.driver.find_element("xpath", "//form[@method='post' or @method='POST']")
    csrf = form.find_element("xpath", ".//input[@type='hidden' and @name='csrf']")
    assert len(csrf.get_attribute("value")) == 43, "no CSRF token in the form"
    form.find_element("xpath", ".//button | .//input[@type='submit']").click()
    b.wait_for(lambda: urllib.parse.urlsplit(b.url).netloc == "localhost:%d" % srv.port
               and "/.eid/logout" not in b.url, "the page after logout")
    b.shot("logged-out")
    assert b.driver.title == "Du är utloggad", (b.driver.title, b.url)
    assert urllib.parse.urlsplit(b.url).path == "/.eid/logged-out"
    assert SESSION_COOKIE not in b.cookies(), b.cookies()
    # the browser went through the OP's end_session with the ID token as the hint
    ends = op.admin("/admin/records?kind=end_session", method="GET")["end_session"]
    assert ends and ends[-1]["id_token_hint_valid"] is True, ends
    assert ends[-1]["client_id"] == CLIENT_ID and ends[-1]["result"] == "redirect", ends
    assert ends[-1]["session_ended"] is True, ends

    # Logged out for real: the protected page sends the browser to the OP again.
    b.get(base + "/app/start")
    b.wait_for(lambda: at_op(b, op), "the OP after logout")
    b.shot("after-logout-at-op")
