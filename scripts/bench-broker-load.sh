#!/usr/bin/env bash
# bench-broker-load.sh — the broker's memory under the 4,000-device load
# (issue 18 §2): `lampi-pkg loadtest` devices (one connection each, QoS 1,
# RATE reports/s for DURATION) publish through the broker into a collector
# in another process; the broker process's VmRSS is sampled every 0.25 s.
# Printed: its VmRSS before any device connected, the peak under load, and
# (peak − before) / DEVICES; for the embedded broker also its largest live
# Go heap and goroutine stacks (GODEBUG=gctrace=1).
#
# Usage: scripts/bench-broker-load.sh PATH-TO-lampi-pkg TARGET
# TARGET:
#   broker     `lampi-pkg fleet broker --db` (the embedded broker alone)
#              with a device credential per device, and `lampi-pkg fleet
#              collect` logged in with a collector credential
#   mosquitto  Mosquitto (anonymous, no persistence, unlimited queues) and
#              `lampi-pkg fleet collect`
#   serve      `lampi-pkg serve` (broker and collector in one process)
# Environment: DEVICES [4000] RATE [16700] DURATION [30s]
#   MQTT_PORT [18937] HTTP_PORT [18987]
set -eu
bin=$1 target=$2
DEVICES=${DEVICES:-4000} RATE=${RATE:-16700} DURATION=${DURATION:-30s}
MQTT_PORT=${MQTT_PORT:-18937} HTTP_PORT=${HTTP_PORT:-18987}
dir=$(mktemp -d); pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
waitport() { i=0; while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do i=$((i+1)); [ $i -lt 300 ] || { echo "no listener on $1" >&2; exit 1; }; sleep 0.1; done; }
rss() { awk '/^VmRSS/{print $2}' /proc/$1/status; }
creds=""
case $target in
serve)
	"$bin" repo init "$dir/repo" --codename stable --suite stable --architectures armhf >/dev/null
	"$bin" device add --repo "$dir/repo" $(w=$((DEVICES-1)); seq -f "loadtest-%0${#w}g" 0 $((DEVICES-1))) >"$dir/creds"
	creds="--credentials $dir/creds"
	"$bin" serve --repo "$dir/repo" --listen "127.0.0.1:$HTTP_PORT" --mqtt-listen "127.0.0.1:$MQTT_PORT" --access-log off 2>"$dir/serve.log" &
	bpid=$!; pids="$pids $!"; waitport $MQTT_PORT; waitport $HTTP_PORT ;;
broker)
	w=$((DEVICES-1))
	"$bin" device add --db "$dir/auth.db" $(seq -f "loadtest-%0${#w}g" 0 $w) >"$dir/creds"
	csec=$("$bin" device add --collector bench-collector --db "$dir/auth.db" | awk '$1=="bench-collector"{print $3}')
	creds="--credentials $dir/creds"
	GODEBUG=gctrace=1 "$bin" fleet broker --listen "127.0.0.1:$MQTT_PORT" --db "$dir/auth.db" 2>"$dir/broker.log" &
	bpid=$!; pids="$pids $!"; waitport $MQTT_PORT
	echo "$csec" >"$dir/csec"
	"$bin" fleet collect --broker "mqtt://127.0.0.1:$MQTT_PORT" --username bench-collector --password-file "$dir/csec" --db "$dir/fleet.db" --client-id bench-collector --listen "127.0.0.1:$HTTP_PORT" 2>"$dir/collect.log" &
	pids="$pids $!"; waitport $HTTP_PORT ;;
mosquitto)
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\nlog_dest stderr\nlog_type error\nuser root\n' $MQTT_PORT >"$dir/m.conf"
	mosquitto -c "$dir/m.conf" & bpid=$!; pids="$pids $!"; waitport $MQTT_PORT
	"$bin" fleet collect --broker "mqtt://127.0.0.1:$MQTT_PORT" --db "$dir/fleet.db" --client-id bench-collector --listen "127.0.0.1:$HTTP_PORT" 2>"$dir/collect.log" &
	pids="$pids $!"; waitport $HTTP_PORT ;;
esac
sleep 1
r0=$(rss $bpid)
( while sleep 0.25; do r=$(rss $bpid 2>/dev/null) || exit 0; echo $r; done ) >"$dir/samples" & spid=$!
"$bin" loadtest --devices $DEVICES --rate $RATE --duration $DURATION --qos 1 --broker "mqtt://127.0.0.1:$MQTT_PORT" \
	--server "http://127.0.0.1:$HTTP_PORT" --poll-interval 0 --no-check-devices $creds --json >"$dir/out.json" 2>"$dir/lt.err" || { echo "loadtest exit $?"; tail -3 "$dir/lt.err"; } >&2
kill $spid; wait $spid 2>/dev/null || true
peak=$(sort -n "$dir/samples" | tail -1); r1=$(rss $bpid)
[ ! -f "$dir/collect.log" ] || tail -3 "$dir/collect.log" >&2
if [ -f "$dir/broker.log" ]; then
	# gctrace: "gc N @… A->B->C MB, D MB goal, E MB stacks": the largest live heap and stacks
	awk '/^gc /{for(i=1;i<=NF;i++){if($i ~ /->.*->/){split($i,a,"->"); if(a[3]+0>h)h=a[3]+0} if($(i+1)=="MB" && $(i+2) ~ /^stacks/ && $i+0>s)s=$i+0}} END{printf "broker Go: largest live heap after a GC %d MB, largest stacks %d MB (gctrace)\n",h,s}' "$dir/broker.log" >&2
	grep '^gc ' "$dir/broker.log" | head -2 >&2; grep '^gc ' "$dir/broker.log" | tail -2 >&2
fi
hwm=$(awk '/^VmHWM/{print $2}' /proc/$bpid/status)
python3 - "$dir/out.json" $target $r0 $peak $r1 $hwm $DEVICES <<'PY'
import json,sys
f,t=sys.argv[1],sys.argv[2]; r0,peak,r1,hwm,n=map(int,sys.argv[3:])
j=json.load(open(f))
m=j.get('mqtt',{})

print(f"{t}: VmRSS idle {r0} KiB, peak under load {peak} KiB, after {r1} KiB, VmHWM {hwm} KiB; (peak-idle)/conn {(peak-r0)*1024/n:.0f} B; reports/s {m.get('per_second')}, acked {m.get('acked')} of {m.get('sent')}, failed {m.get('failed')}, drops {j.get('drops')}")
PY
