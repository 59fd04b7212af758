#!/usr/bin/env bash
# make bench (server part): lampi-pkg serve against nginx from Debian,
# side by side on the same directory, same machine, same wrk settings:
#
#   304        conditional GET of dists/stable/InRelease (If-None-Match
#              with the server's own ETag) answered 304 Not Modified
#   Packages   full GET of a 5 MB dists/…/Packages
#   deb        full GET of a 1 MB pool/…/.deb
#
# Both servers log every request to a file, buffered in memory and
# written out at least every second: nginx's combined access log with
# "buffer=64k flush=1s", lampi-pkg's JSON access log (its LogWriter).
# (Earlier versions of this script left nginx on Debian's unbuffered
# default, one write(2) per request that lampi-pkg did not pay: unfair
# to nginx.) nginx runs with its Debian defaults plus sendfile on,
# tcp_nopush on, worker_processes auto (2 workers here; lampi-pkg runs
# with GOMAXPROCS = the CPU count, the same 2).
#
# Usage: scripts/bench-serve.sh [BIN]
#   CONNS=50 THREADS=2 DURATION=5s ROUNDS=3 by default: each test runs
#   ROUNDS times, alternating lampi-pkg and nginx so that load from other
#   processes hits both alike; the table shows the median of each, and
#   the median CPU time (user + system, from /proc) each server spent per
#   request: on a machine shared with other work req/s swings with the
#   neighbours' load, CPU per request much less. VERBOSE=1 prints every
#   round.
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${CONNS:-50}
threads=${THREADS:-2}
duration=${DURATION:-5s}
rounds=${ROUNDS:-3}
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as another user
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
    { echo "bench-serve: $tool is missing (apt-get install wrk nginx-light curl)" >&2; exit 1; }
done
nginx=$(command -v nginx || echo /usr/sbin/nginx)

if [ -n "${1:-}" ]; then
  bin=$(realpath "$1")
else
  bin="$work/lampi-pkg"
  GOFLAGS=-buildvcs=false go build -o "$bin" ./cmd/lampi-pkg
fi

# The repository: signed, a 1 MB package in the pool and a 5 MB Packages
# file in place of the real one (the server does not care what they hold).
repo="$work/repo"
"$bin" repo init "$repo" --codename bookworm --suite stable --architectures amd64 \
  --sign-with "$(realpath fixtures/keys/lampi-test.sec.asc)" >/dev/null
"$bin" repo -b "$repo" createsymlinks >/dev/null
mkdir -p "$work/big/DEBIAN" "$work/big/usr/share/big"
printf 'Package: big\nVersion: 1.0\nArchitecture: all\nMaintainer: Bench <bench@example.org>\nSection: misc\nPriority: optional\nDescription: 1 MB of noise\n' > "$work/big/DEBIAN/control"
head -c 1048576 /dev/urandom > "$work/big/usr/share/big/noise"
"$bin" build "$work/big" -o "$work/big.deb" >/dev/null
# Copied into the pool directly: serving does not depend on the index.
deb=pool/main/b/big/big_1.0_all.deb
mkdir -p "$repo/pool/main/b/big" && cp "$work/big.deb" "$repo/$deb"
pk="$repo/dists/bookworm/main/binary-amd64/Packages"
for i in $(seq 1 9000); do
  printf 'Package: pkg%d\nVersion: 1.%d\nArchitecture: all\nMaintainer: Bench <bench@example.org>\nInstalled-Size: 12\nFilename: pool/main/p/pkg%d/pkg%d_1.%d_all.deb\nSize: 1234\nSHA256: %064d\nSection: misc\nPriority: optional\nDescription: generated package %d\n\n' \
    "$i" "$i" "$i" "$i" "$i" "$i" "$i"
done | head -c 5242880 > "$pk.new" && mv "$pk.new" "$pk"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lport=$(port)
nport=$(port)

"$bin" serve --repo "$repo" --no-fleet --listen "127.0.0.1:$lport" --access-log "$work/lampi-access.log" 2>"$work/lampi.err" &
pids+=($!)
lpid=$!

mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
daemon off;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  access_log $work/nginx/access.log combined buffer=64k flush=1s;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nport;
    root $repo;
    location /conf/ { deny all; }
    location /db/ { deny all; }
  }
}
EOF
"$nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
npid=$!

for p in "$lport" "$nport"; do
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$p/dists/stable/InRelease" >/dev/null && break; sleep 0.1; done
done

cat > "$work/cond.lua" <<'EOF'
wrk.headers["If-None-Match"] = os.getenv("ETAG")
EOF

# cputicks PID: user+system clock ticks of PID and its child processes
# (nginx's workers).
cputicks() {
  local t=0 q
  for q in "$1" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14+$15}' "/proc/$q/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)

# run NAME PORT PATH [cond]: prints "req/s p99(ms) cpu-us/request status-check"
run() {
  local url="http://127.0.0.1:$2$3" args=()
  if [ "${4:-}" = cond ]; then
    etag=$(curl -fsI "$url" | tr -d '\r' | awk 'tolower($1)=="etag:"{print $2}')
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$url")
    [ "$code" = 304 ] || { echo "bench-serve: $1 answers $code, not 304, to If-None-Match $etag" >&2; exit 1; }
    export ETAG=$etag
    args=(-s "$work/cond.lua")
  fi
  local pid=$lpid
  [ "$1" = nginx ] && pid=$npid
  local t0 t1
  t0=$(cputicks "$pid")
  out=$(wrk -t"$threads" -c"$conns" -d"$duration" --latency "${args[@]}" "$url")
  t1=$(cputicks "$pid")
  rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  nreq=$(awk '/requests in/{print $1}' <<<"$out")
  cpu=$(python3 -c "print(f'{($t1-$t0)*1e6/$hz/max($nreq,1):.1f}')")
  errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)
  echo "$rps $p99 $cpu $errs"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# p99 as wrk prints it (12.34ms, 1.2s, 850us) in milliseconds.
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000} print v}'; }

echo "wrk -t$threads -c$conns -d$duration --latency, median of $rounds alternating rounds; $(nproc) CPUs; $(nginx -v 2>&1); $("$bin" --version)"
printf '| %-9s | %-11s | %-13s | %-11s | %-13s | %-11s | %-9s | %-15s | %-15s |\n' test "lampi req/s" "lampi p99 ms" "nginx req/s" "nginx p99 ms" "req/s ratio" "p99 ratio" "lampi CPU µs/req" "nginx CPU µs/req"
printf '|%s|\n' "-----------|-------------|---------------|-------------|---------------|-------------|-----------|------------------|-----------------"
for t in "304 /dists/stable/InRelease cond" "Packages /dists/bookworm/main/binary-amd64/Packages" "deb /$deb"; do
  set -- $t
  : > "$work/l" ; : > "$work/n"
  for _ in $(seq "$rounds"); do
    run lampi "$lport" "$2" "${3:-}" >> "$work/l"
    run nginx "$nport" "$2" "${3:-}" >> "$work/n"
  done
  lr=$(awk '{print $1}' "$work/l" | median); lp=$(awk '{print $2}' "$work/l" | ms | median)
  nr=$(awk '{print $1}' "$work/n" | median); np=$(awk '{print $2}' "$work/n" | ms | median)
  lc=$(awk '{print $3}' "$work/l" | median); nc=$(awk '{print $3}' "$work/n" | median)
  printf '| %-9s | %-11s | %-13s | %-11s | %-13s | %-11s | %-9s | %-16s | %-16s |\n' "$1" "$lr" "$lp" "$nr" "$np" \
    "$(python3 -c "print(f'{$lr/$nr:.2f}')")" "$(python3 -c "print(f'{$lp/$np:.2f}')")" "$lc" "$nc"
  if [ -n "${VERBOSE:-}" ]; then
    echo "  lampi rounds (req/s p99 cpu): $(tr '\n' ';' < "$work/l")"
    echo "  nginx rounds (req/s p99 cpu): $(tr '\n' ';' < "$work/n")"
  fi
done
