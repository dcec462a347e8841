#!/usr/bin/python3
"""The demo service behind mod_auth_eid: shows the identity it received.
HTML for browsers, JSON for everything else."""
import html
import json
import os
import sys

ident = {k: v for k, v in sorted(os.environ.items())
         if k.startswith("EID_") or k in ("REMOTE_USER", "AUTH_TYPE")}
if "text/html" in os.environ.get("HTTP_ACCEPT", ""):
    rows = "".join("<tr><th>%s</th><td>%s</td></tr>" % (html.escape(k), html.escape(v))
                   for k, v in ident.items())
    body = ("<!doctype html><meta charset=utf-8><title>mod_auth_eid demo</title>"
            "<h1>Inloggad via mod_auth_eid</h1><p>Resource: %s</p><table>%s</table>"
            % (html.escape(os.environ.get("REQUEST_URI", "")), rows)).encode()
    ctype = "text/html; charset=utf-8"
else:
    body = (json.dumps(ident, ensure_ascii=False, indent=1) + "\n").encode()
    ctype = "application/json; charset=utf-8"
sys.stdout.write("Content-Type: %s\r\nContent-Length: %d\r\n\r\n" % (ctype, len(body)))
sys.stdout.flush()
sys.stdout.buffer.write(body)
