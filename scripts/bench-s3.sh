#!/usr/bin/env bash
# Publishing to S3-compatible object storage (a real MinIO on 127.0.0.1),
# beside the local-disk publish, on the generated benchmark packages of
# scripts/bench-repo.sh (N small amd64 packages, signed):
#
#   first publish   import all N packages and upload the whole tree
#   add one         include one package more: uploads only that package,
#                   the changed indices and the Release files
#
# Prints the wall time of each step (median of RUNS for "add one") with and
# without --publish-to, and the number of objects each upload wrote
# (lampi-pkg's "uploaded N objects" line).
#
# Usage: scripts/bench-s3.sh [BIN] ; N=10000 RUNS=5 WORKERS=8 by default. The MinIO
# binary is $LAMPI_MINIO or ~/.cache/lampi-pkg/minio-bin/minio (make test
# builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-bin/lampi-pkg}")
n=${N:-10000}
runs=${RUNS:-5}
cache=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lampi-pkg/bench-debs-$n}
minio=${LAMPI_MINIO:-$HOME/.cache/lampi-pkg/minio-bin/minio}
[ -x "$bin" ] || { echo "bench-s3: $bin missing (make build)" >&2; exit 1; }
[ -x "$minio" ] || { echo "bench-s3: $minio missing (make test or scripts/deps.sh builds it)" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench-s3: curl is missing" >&2; exit 1; }

work=$(mktemp -d)
minio_pid=
cleanup() {
  [ -n "$minio_pid" ] && kill "$minio_pid" 2>/dev/null && wait "$minio_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [ ! -f "$cache/.complete" ]; then
  echo "bench-s3: generating $n packages into $cache" >&2
  rm -rf "$cache"
  go test ./repo -run '^TestGenerateBenchDebs$' -count=1 -args -gen-bench-debs="$cache" -gen-bench-count="$n" >/dev/null
  touch "$cache/.complete"
fi
extra=$(ls "$cache"/extra/*.deb)

# MinIO on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=lampibench AWS_SECRET_ACCESS_KEY=lampibench-secret-0123
MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
  "$minio" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$cport" "$work/minio" >"$work/minio.log" 2>&1 &
minio_pid=$!
for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$port/minio/health/live" >/dev/null && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/minio/health/live" >/dev/null || { echo "bench-s3: minio did not start" >&2; cat "$work/minio.log" >&2; exit 1; }
# Create the bucket (curl signs the request).
curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -X PUT "http://127.0.0.1:$port/bench" >/dev/null

key=$(realpath fixtures/keys/lampi-test.sec.asc)
conf() {
  mkdir -p "$1/conf"
  printf 'Origin: Bench\nLabel: Bench\nSuite: stable\nCodename: bench\nArchitectures: amd64\nComponents: main\nDescription: benchmark\nSignWith: %s\n' "$key" > "$1/conf/distributions"
}
s3=(--publish-to s3://bench/apt --s3-endpoint "127.0.0.1:$port" --s3-path-style --s3-insecure --upload-workers "${WORKERS:-8}")

# seconds CMD…: wall time of CMD; its stderr goes to $work/err.
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  if ! "$@" >"$work/out" 2>"$work/err"; then
    echo "bench-s3: failed: $*" >&2
    cat "$work/out" "$work/err" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
objects() { sed -n 's/.*uploaded \([0-9]*\) objects (\(.*\)), copied \([0-9]*\) in place, deleted \([0-9]*\).*/\1 uploaded (\2) + \3 copied in the bucket, \4 deleted/p' "$work/err"; }

conf "$work/local"
conf "$work/s3"
t_local_first=$(seconds "$bin" repo -b "$work/local" includedeb bench "$cache"/all/*.deb)
t_s3_first=$(seconds "$bin" repo -b "$work/s3" "${s3[@]}" includedeb bench "$cache"/all/*.deb)
first_objects=$(objects)

: >"$work/add.local"
: >"$work/add.s3"
for _ in $(seq "$runs"); do
  seconds "$bin" repo -b "$work/local" includedeb bench "$extra" >>"$work/add.local"
  seconds "$bin" repo -b "$work/local" remove bench bench-extra >/dev/null
  seconds "$bin" repo -b "$work/s3" "${s3[@]}" includedeb bench "$extra" >>"$work/add.s3"
  # The first run makes new index generations; later ones find their
  # by-hash objects still in the bucket (within --byhash-keep).
  [ -n "${add_objects:-}" ] || add_objects=$(objects)
  seconds "$bin" repo -b "$work/s3" "${s3[@]}" remove bench bench-extra >/dev/null
  [ -n "${remove_objects:-}" ] || remove_objects=$(objects)
done
seconds "$bin" repo -b "$work/s3" "${s3[@]}" check >/dev/null

printf 'bench-s3: %d packages, MinIO on 127.0.0.1, %s\n' "$n" "$(nproc) cores"
printf '%-34s %10s %10s   %s\n' step local s3 "objects uploaded to s3"
printf '%-34s %9.2fs %9.2fs   %s\n' "first publish (import + upload)" "$t_local_first" "$t_s3_first" "$first_objects"
printf '%-34s %9.3fs %9.3fs   %s (first run)\n' "add one + republish (median $runs)" "$(median <"$work/add.local")" "$(median <"$work/add.s3")" "$add_objects"
printf '%-34s %10s %10s   %s\n' "remove one (first run)" "" "" "$remove_objects"
