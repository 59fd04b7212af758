#!/usr/bin/env bash
# make bench: lampi-pkg build against dpkg-deb --build, side by side.
# Same tree, same compressor and level, runs alternating between the two
# tools; prints the median wall time of each, their ratio and the sizes.
#
# Usage: scripts/bench.sh [BIN] ; RUNS=5 by default.
set -euo pipefail
bin=$(realpath "${1:-bin/lampi-pkg}")
runs=${RUNS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000

go run ./scripts/mktree "$work/big" >/dev/null
cp -a fixtures/hi "$work/hi"

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m/1e9}'; }

printf '%-6s %-5s %-5s %12s %12s %8s %12s %12s\n' tree comp level "lampi (s)" "dpkg-deb (s)" ratio "lampi bytes" "dpkg bytes"
for tree in hi big; do
  for spec in gzip:9 xz:6; do
    comp=${spec%%:*} level=${spec#*:}
    : > "$work/t.lampi"; : > "$work/t.dpkg"
    for ((i = 0; i < runs; i++)); do
      t0=$(now); "$bin" build "$work/$tree" -o "$work/l.deb" --compress "$comp" --level "$level" >/dev/null; t1=$(now)
      echo $((t1 - t0)) >> "$work/t.lampi"
      t0=$(now); dpkg-deb --root-owner-group -Z"$comp" -z"$level" --build "$work/$tree" "$work/d.deb" >/dev/null; t1=$(now)
      echo $((t1 - t0)) >> "$work/t.dpkg"
    done
    ml=$(median < "$work/t.lampi"); md=$(median < "$work/t.dpkg")
    printf '%-6s %-5s %-5s %12s %12s %8.2f %12d %12d\n' "$tree" "$comp" "$level" "$ml" "$md" \
      "$(awk -v a="$ml" -v b="$md" 'BEGIN {print a/b}')" "$(stat -c %s "$work/l.deb")" "$(stat -c %s "$work/d.deb")"
  done
done
echo "ratio = lampi median / dpkg-deb median (< 1: lampi-pkg is faster); $runs alternating runs each; $(nproc) cores"
