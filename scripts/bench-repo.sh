#!/usr/bin/env bash
# make bench (repository part): lampi-pkg repo against reprepro and aptly,
# side by side on the same generated .debs (N small amd64 packages, xz as
# dpkg-deb makes them), the same index compressions (Packages and
# Packages.gz), signed with the same throwaway key:
#
#   import + publish   all N packages into an empty repository
#   add one            include one more package and republish signed
#   remove one         remove it again and republish signed
#
# Prints the median wall time of each step (RUNS runs for add/remove), the
# CPU time (user + sys) of the import and the median CPU time of add and
# remove, the peak RSS of each tool, and the ratios lampi-pkg / other
# (< 1: faster). On a shared machine the CPU time is the steadier figure:
# wall time also counts waiting for other work. The packages are
# generated once into BENCH_CACHE (about a minute).
#
# Every add and remove starts GAP seconds (1.1 by default) after the
# previous command, outside the measured time and for every tool alike:
# lampi-pkg publishes a distribution at most once per second (apt cannot
# see two changes within one second, DESIGN.md), so a publish right after
# another one waits for the next second; GAP=0 measures that too.
#
# Usage: scripts/bench-repo.sh [BIN] ; N=10000 RUNS=5 GAP=1.1 by default;
# APTLY=0 leaves aptly out (its import takes about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-bin/lampi-pkg}")
n=${N:-10000}
runs=${RUNS:-5}
gap=${GAP:-1.1}
with_aptly=${APTLY:-1}
cache=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lampi-pkg/bench-debs-$n}
work=$(mktemp -d)
# The three repositories hold ~30,000 files. For a minute after inodes are
# freed (six if their inode table is not yet written back) ext4 passes
# over them when it allocates new ones (recently_deleted in
# fs/ext4/ialloc.c), one buffer lookup each: an import started in that
# window spends seconds of system time on it. The cleanup syncs and notes
# when it deleted, and the next run waits until that is 65 s ago, so that
# no tool (lampi-pkg's import comes first) measures the previous run's
# cleanup.
stamp="$(dirname "$cache")/.bench-repo-cleanup"
cleanup() {
  rm -rf "$work"
  sync
  date +%s >"$stamp" 2>/dev/null || true
}
trap cleanup EXIT
if [ -f "$stamp" ]; then
  wait_s=$(( $(cat "$stamp") + 65 - $(date +%s) ))
  if [ "$wait_s" -gt 0 ]; then
    echo "bench-repo: waiting ${wait_s}s until the previous run's deleted inodes are a minute old (ext4 skips recently deleted ones)" >&2
    sleep "$wait_s"
  fi
fi

tools="reprepro gpg /usr/bin/time"
[ "$with_aptly" = 0 ] || tools="$tools aptly"
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "bench-repo: $tool is missing (apt-get install reprepro aptly gnupg time)" >&2; exit 1; }
done

if [ ! -f "$cache/.complete" ]; then
  echo "bench-repo: generating $n packages into $cache" >&2
  rm -rf "$cache"
  go test ./repo -run '^TestGenerateBenchDebs$' -count=1 -args -gen-bench-debs="$cache" -gen-bench-count="$n" >/dev/null
  touch "$cache/.complete"
fi
extra=$(ls "$cache"/extra/*.deb)

key=$(realpath fixtures/keys/lampi-test.sec.asc)
fpr=CC5374517F7777D40DCA13C1AD66EEC63F85E605
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --import "$key" 2>/dev/null

# measure NAME CMD…: runs CMD, appends "seconds rss_kb user sys" to $work/NAME.
measure() {
  local name=$1
  shift
  case $name in *.add | *.remove) sleep "$gap" ;; esac
  # Every measured command starts with nothing dirty in the page cache:
  # otherwise it pays for the writeback of what the previous one (or the
  # previous run's cleanup) left behind, and its own syncs wait for it.
  sync
  if ! /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >"$work/out" 2>&1; then
    echo "bench-repo: $name failed: $*" >&2
    tail -20 "$work/out" >&2
    exit 1
  fi
  cat "$work/time" >> "$work/$name"
}

conf() { # DIR SIGNWITH
  mkdir -p "$1/conf"
  printf 'Origin: Bench\nLabel: Bench\nSuite: stable\nCodename: bench\nArchitectures: amd64\nComponents: main\nDescription: benchmark\nSignWith: %s\n' "$2" > "$1/conf/distributions"
}

# lampi-pkg
conf "$work/lampi" "$key"
measure lampi.import "$bin" repo -b "$work/lampi" includedeb bench "$cache"/all/*.deb
# reprepro
conf "$work/reprepro" "$fpr"
measure reprepro.import reprepro -b "$work/reprepro" includedeb bench "$cache"/all/*.deb
# aptly
cat > "$work/aptly.conf" <<EOF
{"rootDir": "$work/aptly", "gpgProvider": "gpg", "architectures": ["amd64"], "dependencyFollowSuggests": false}
EOF
aptly() { command aptly -config="$work/aptly.conf" "$@"; }
publish() { # repo|update [FLAGS] NAME: flags go before the name
  local sub=$1
  shift
  command aptly -config="$work/aptly.conf" publish "$sub" -gpg-key="$fpr" -batch -skip-contents -skip-bz2 "$@"
}
export -f aptly publish
export work fpr
if [ "$with_aptly" != 0 ]; then
  aptly repo create -distribution=bench -component=main bench >/dev/null
  measure aptly.import bash -c 'aptly repo add bench "$0" && publish repo -architectures=amd64 bench' "$cache/all"
fi

for ((i = 0; i < runs; i++)); do
  measure lampi.add "$bin" repo -b "$work/lampi" includedeb bench "$extra"
  measure lampi.remove "$bin" repo -b "$work/lampi" remove bench bench-extra
  measure reprepro.add reprepro -b "$work/reprepro" includedeb bench "$extra"
  measure reprepro.remove reprepro -b "$work/reprepro" remove bench bench-extra
  [ "$with_aptly" != 0 ] || continue
  measure aptly.add bash -c 'aptly repo add bench "$0" && publish update bench' "$extra"
  measure aptly.remove bash -c 'aptly repo remove bench bench-extra && publish update bench'
done

# Sanity: the same package count published by all three.
count() { zcat "$1" | grep -c '^Package: '; }
l=$(count "$work/lampi/dists/bench/main/binary-amd64/Packages.gz")
r=$(count "$work/reprepro/dists/bench/main/binary-amd64/Packages.gz")
a=$n
[ "$with_aptly" = 0 ] || a=$(count "$work/aptly/public/dists/bench/main/binary-amd64/Packages.gz")
[ "$l" = "$n" ] && [ "$r" = "$n" ] && [ "$a" = "$n" ] || { echo "bench-repo: published $l / $r / $a packages, want $n" >&2; exit 1; }

# median FILE [cpu]: of the wall times, or of user + sys.
median() {
  [ -f "$1" ] || { printf -- "-"; return; }
  awk -v cpu="${2:-}" '{print cpu ? $3 + $4 : $1}' "$1" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'
}
peak() { cat "$work"/"$1".* 2>/dev/null | awk '$2>m {m=$2} END {printf "%.1f", m/1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) printf "-"; else printf "%.2f", a/b}'; }

printf '%-22s %10s %10s %10s %12s %12s\n' "$n packages" lampi-pkg reprepro aptly "/reprepro" "/aptly"
for step in import add remove; do
  lm=$(median "$work/lampi.$step") rm=$(median "$work/reprepro.$step") am=$(median "$work/aptly.$step")
  label=$step
  [ "$step" = import ] && label="import + publish (s)"
  [ "$step" = add ] && label="add one, signed (s)"
  [ "$step" = remove ] && label="remove one, signed (s)"
  printf '%-22s %10s %10s %10s %12s %12s\n' "$label" "$lm" "$rm" "$am" "$(ratio "$lm" "$rm")" "$(ratio "$lm" "$am")"
done
for step in add remove; do
  lm=$(median "$work/lampi.$step" cpu) rm=$(median "$work/reprepro.$step" cpu) am=$(median "$work/aptly.$step" cpu)
  printf '%-22s %10s %10s %10s %12s %12s\n' "$step one CPU (s)" "$lm" "$rm" "$am" "$(ratio "$lm" "$rm")" "$(ratio "$lm" "$am")"
done
cpu() { [ -f "$1" ] && awk '{printf "%.2f", $3 + $4}' "$1" || printf -- "-"; }
lc=$(cpu "$work/lampi.import") rc=$(cpu "$work/reprepro.import") ac=$(cpu "$work/aptly.import")
printf '%-22s %10s %10s %10s %12s %12s\n' "import CPU (s)" "$lc" "$rc" "$ac" "$(ratio "$lc" "$rc")" "$(ratio "$lc" "$ac")"
lp=$(peak lampi) rp=$(peak reprepro) ap=$(peak aptly)
printf '%-22s %10s %10s %10s %12s %12s\n' "peak RSS (MB)" "$lp" "$rp" "$ap" "$(ratio "$lp" "$rp")" "$(ratio "$lp" "$ap")"
av=""
[ "$with_aptly" = 0 ] || av=", $(command aptly version | head -1)"
echo "median of $runs runs for add/remove, each ${gap}s after the previous command; reprepro $(reprepro --version 2>&1 | awk '{print $NF}')$av; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
