#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each (default 10s).
# Each package's test binary is built once, instrumented for coverage as
# `go test -fuzz` does, then run per target from the package directory, so a
# failing input is written to that package's testdata/fuzz/ as usual.
# Usage: scripts/fuzz.sh [DURATION]
set -euo pipefail
dur=${1:-10s}
mod=$(go list -m)
cache=$(go env GOCACHE)/fuzz
bindir=$(mktemp -d)
# count DIR: the number of files under DIR (0 when it does not exist).
count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
trap 'rm -rf "$bindir"' EXIT
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  [ -n "$targets" ] || continue
  bin="$bindir/$(basename "$dir").test"
  go test -c -o "$bin" -gcflags="$mod/...=-d=libfuzzer" "$pkg"
  for target in $targets; do
    echo "fuzz: $pkg $target ($dur)"
    before=$(count "$dir/testdata/fuzz/$target")
    for attempt in 1 2 3; do
      if (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${target}\$" -test.fuzztime "$dur" -test.fuzzcachedir "$cache/$pkg" >"$bindir/log" 2>&1); then
        break
      fi
      cat "$bindir/log"
      after=$(count "$dir/testdata/fuzz/$target")
      # A failing input found by the fuzzer is always a failure. A fuzzing
      # process that stopped without one gets one more run, said out loud;
      # two more when it is Go's own coordinator race at the end of
      # -fuzztime (golang/go#75804: a bare "context deadline exceeded" as
      # the workers are stopped; seen about once per make test under load).
      last=2
      if grep -qx '    context deadline exceeded' "$bindir/log"; then last=3; fi
      if [ "$after" -ne "$before" ] || [ "$attempt" -ge "$last" ]; then
        echo "fuzz: $pkg $target FAILED" >&2
        exit 1
      fi
      echo "fuzz: $pkg $target: the fuzzing process failed without a failing input; running it once more"
    done
  done
done
echo "fuzz: all targets passed"
