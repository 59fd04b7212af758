#!/usr/bin/env bash
# make bench: lampi-pkg build on real Debian packages, against dpkg-deb
# --build and "xz -6" of the same data.tar (dpkg-deb's default compressor).
# Each package (from the cache scripts/deps.sh fills) is unpacked with
# dpkg-deb -R; the tree is built by each tool, runs alternating; prints the
# median wall time, the median CPU time (user+sys), the median peak RSS and
# the size of the data member. On a shared machine wall time follows the load; CPU time much less.
#
# Usage: scripts/bench-real.sh [BIN] [OTHER-BIN...]; RUNS=3 by default.
# Each OTHER-BIN (e.g. an older lampi-pkg, before/after) is measured
# alongside, in the same alternation, labelled by its file name.
set -euo pipefail
bin=$(realpath "${1:-bin/lampi-pkg}")
others=()
for b in "${@:2}"; do others+=("$(realpath "$b")"); done
runs=${RUNS:-3}
debs=${LAMPI_REAL_DEBS:-${XDG_CACHE_HOME:-$HOME/.cache}/lampi-pkg/debs}
pkgs=${PKGS:-sudo perl-base tzdata}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
# run NAME CMD...: appends the wall time of CMD to $work/NAME.t, its CPU
# time to $work/NAME.cpu, its peak RSS (MB) to $work/NAME.rss
run() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/$name.one" "$@" >/dev/null 2>&1
  awk '{print $1}' "$work/$name.one" >> "$work/$name.t"
  awk '{printf "%.2f\n", $2+$3}' "$work/$name.one" >> "$work/$name.cpu"
  awk '{printf "%.0f\n", $4/1024}' "$work/$name.one" >> "$work/$name.rss"
}
printf '%-10s %-16s %9s %9s %8s %12s %7s\n' package tool "wall (s)" "cpu (s)" "rss (MB)" "data bytes" "vs xz-6"
for p in $pkgs; do
  deb=$(ls "$debs/${p}"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || { echo "bench-real: no $p in $debs (run scripts/deps.sh)" >&2; exit 1; }
  rm -rf "$work/tree" && dpkg-deb -R "$deb" "$work/tree"
  dpkg-deb --fsys-tarfile "$deb" > "$work/data.tar"
  rm -f "$work"/*.t "$work"/*.cpu "$work"/*.rss
  for ((i = 0; i < runs; i++)); do
    run lampi "$bin" build "$work/tree" -o "$work/lampi.deb"
    for ((k = 0; k < ${#others[@]}; k++)); do
      run "other$k" "${others[k]}" build "$work/tree" -o "$work/other$k.deb"
    done
    run dpkg dpkg-deb --root-owner-group --build "$work/tree" "$work/dpkg.deb"
    run xz6 sh -c "xz -6 -c '$work/data.tar' > '$work/data.tar.xz'"
  done
  ref=$(stat -c %s "$work/data.tar.xz")
  tools=(lampi)
  for ((k = 0; k < ${#others[@]}; k++)); do tools+=("other$k"); done
  for t in "${tools[@]}" dpkg xz6; do
    [ -f "$work/$t.t" ] || continue
    case $t in
      xz6) size=$ref label="xz -6" ;;
      dpkg) size=$(ar p "$work/dpkg.deb" data.tar.xz | wc -c) label="dpkg-deb --build" ;;
      lampi) size=$(ar p "$work/$t.deb" data.tar.xz | wc -c) label="$(basename "$bin")" ;;
      *) size=$(ar p "$work/$t.deb" data.tar.xz | wc -c) label="$(basename "${others[${t#other}]}")" ;;
    esac
    printf '%-10s %-16s %9s %9s %8.0f %12d %7.3f\n' "$p" "$label" "$(median < "$work/$t.t")" "$(median < "$work/$t.cpu")" "$(median < "$work/$t.rss")" "$size" \
      "$(awk -v a="$size" -v b="$ref" 'BEGIN {print a/b}')"
  done
done
echo "median of $runs alternating runs; cpu = user+sys; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
