#!/usr/bin/python3
"""Fail when the docs and the code disagree.

- every directive in a command table (AP_INIT_*("Eid...")) has a "### Name"
  section in docs/directives.md, and every such section names a real directive;
- every Require provider registered ("eid-...") has a "### Require eid-..."
  section there too;
- every EidProvider option (key=value) that eid_provider_set() takes has a
  row in the EidProvider table there, and every row is an option it takes;
- every log/result tag (EIDnnnnn) used in the sources is listed in
  docs/errors.md, and every listed tag is used.
"""
import glob
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def sources():
    for pat in ("mod_src/*/*.c", "mod_src/*/*.h", "include/eid/*.h"):
        for p in sorted(glob.glob(os.path.join(ROOT, pat))):
            yield p, open(p, encoding="utf-8").read()


def provider_options(ref):
    """(options the code takes, options the docs list); "claim." for claim.<field>."""
    src = read("mod_src/core/eid_bearer.c")
    m = re.search(r"\nconst char \*eid_provider_set\(.*?\n}\n", src, re.S)
    body = m.group(0) if m else ""
    code = set(re.findall(r'\bstrcmp\(key, "([a-z_]+)"\)', body))
    code |= set(re.findall(r'\bstrncmp\(key, "([a-z_]+\.)"', body))
    m = re.search(r"^### EidProvider\s*$(.*?)^### ", ref, re.M | re.S)
    rows = re.findall(r"^\|([^|]*)\|", m.group(1) if m else "", re.M)
    doc = set()
    for cell in rows:
        for name in re.findall(r"`([a-z_]+(?:\.<[a-z]+>)?)=`", cell):
            doc.add(re.sub(r"<[a-z]+>$", "", name))
    return code, doc


def main():
    code_dirs, code_provs, code_tags = set(), set(), set()
    for _, text in sources():
        code_dirs |= set(re.findall(r'(?:AP_INIT_[A-Z0-9_]+|DIR_FLAG)\(\s*"(Eid[A-Za-z]+)"', text))
        code_provs |= set(re.findall(r'AUTHZ_PROVIDER_GROUP,\s*"(eid-[a-z-]+)"', text))
        code_tags |= set(re.findall(r'"(EID\d{5})', text))
    ref = read("docs/directives.md")
    doc_dirs = set(re.findall(r"^### (Eid[A-Za-z]+)\s*$", ref, re.M))
    doc_provs = set(re.findall(r"^### Require (eid-[a-z-]+)\s*$", ref, re.M))
    doc_tags = set(re.findall(r"^\|\s*(EID\d{5})\s*\|", read("docs/errors.md"), re.M))
    problems = []
    for name in sorted(code_dirs - doc_dirs):
        problems.append("directive %s is not documented in docs/directives.md" % name)
    for name in sorted(doc_dirs - code_dirs):
        problems.append("docs/directives.md documents %s, which the code does not have" % name)
    for name in sorted(code_provs - doc_provs):
        problems.append("Require %s is not documented in docs/directives.md" % name)
    for name in sorted(doc_provs - code_provs):
        problems.append("docs/directives.md documents Require %s, which is not registered" % name)
    code_opts, doc_opts = provider_options(ref)
    for name in sorted(code_opts - doc_opts):
        problems.append("EidProvider option %s= is not in the table in docs/directives.md" % name)
    for name in sorted(doc_opts - code_opts):
        problems.append("docs/directives.md lists EidProvider option %s=, which the code "
                        "does not take" % name)
    if len(code_opts) < 10:
        problems.append("found few EidProvider options in eid_provider_set(): check the patterns")
    for tag in sorted(code_tags - doc_tags):
        problems.append("tag %s is not listed in docs/errors.md" % tag)
    for tag in sorted(doc_tags - code_tags):
        problems.append("docs/errors.md lists %s, which no source uses" % tag)
    if not code_dirs or not code_provs:
        problems.append("found no directives or providers in the sources: check the patterns")
    for p in problems:
        print("check-docs:", p)
    print("check-docs: %d directives, %d Require providers, %d provider options, %d tags "
          "checked: %s" % (len(code_dirs), len(code_provs), len(code_opts), len(code_tags),
                           "FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
