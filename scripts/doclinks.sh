#!/usr/bin/env bash
# Checks the links of the documentation (run by make test): every relative
# link [text](path#anchor) in ROOT/README.md, ROOT/BENCHMARKS.md and
# ROOT/docs/*.md must name an existing file, and an anchor a heading of that
# file (GitHub's slug rule). Usage: scripts/doclinks.sh [ROOT]
set -euo pipefail
root=${1:-.}
python3 - "$root" <<'PY'
import re, sys, os
root = sys.argv[1]
files = [os.path.join(root, f) for f in ("README.md", "BENCHMARKS.md")]
files += sorted(os.path.join(root, "docs", f) for f in os.listdir(os.path.join(root, "docs")) if f.endswith(".md"))
def slugs(path):
    out, code = set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"): code = not code
        m = None if code else re.match(r"^#{1,6} (.*)", line)
        if m:
            t = m.group(1).strip().lower()
            t = re.sub(r"[^\w\- ]", "", t)
            base = t.replace(" ", "-"); s = base; n = 1
            while s in out: s = f"{base}-{n}"; n += 1
            out.add(s)
    return out
bad = 0
for f in files:
    text = open(f, encoding="utf-8").read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        link = m.group(1)
        if re.match(r"^[a-z]+:", link): continue
        path, _, anchor = link.partition("#")
        target = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(target):
            print(f"{f}: {link}: no such file"); bad += 1; continue
        if anchor and target.endswith(".md") and anchor not in slugs(target):
            print(f"{f}: {link}: no heading #{anchor}"); bad += 1
print(f"{len(files)} files checked, {bad} bad links")
sys.exit(1 if bad else 0)
PY
