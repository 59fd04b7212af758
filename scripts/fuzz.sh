#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each (default 10s).
# Usage: scripts/fuzz.sh [DURATION]
set -euo pipefail
dur=${1:-10s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $target ($dur)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$dur" >/tmp/lampi-fuzz.log 2>&1 || { cat /tmp/lampi-fuzz.log; exit 1; }
  done
done
echo "fuzz: all targets passed"
