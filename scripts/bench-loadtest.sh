#!/usr/bin/env bash
# bench-loadtest.sh — the fleet ingest benchmark with `lampi-pkg loadtest`:
# simulated devices (one MQTT connection each, their own client id, QoS 1,
# PUBACK awaited) publish state reports through an MQTT broker into the
# collector; a plain subscriber on the same broker measures what the broker
# alone delivers, and the collector's stored count is read back through
# the fleet API (drops = acknowledged − stored).
#
# Without BROKER it runs each of TARGETS on this machine:
#   mosquitto  Mosquitto on MQTT_PORT [18830] (no persistence, unlimited
#              queues) and `lampi-pkg fleet collect` reading it
#   embedded   `lampi-pkg serve` on an empty repository: its embedded
#              broker (anonymous access allowed) and collector
#
# Usage: scripts/bench-loadtest.sh [PATH-TO-lampi-pkg]
# Environment (defaults in brackets):
#   DEVICES [4000]  CONNECTIONS [DEVICES: one per device]  RATE [16700]
#   DURATION [60s]  QOS [1]  TARGETS [mosquitto embedded]
#   BROKER  an already running broker (then SERVER, if set, is the server
#           whose collector reads it; unset: broker and subscriber only)
#   OUT     where the JSON results go, TARGET substituted [bench-loadtest-TARGET.json]
# Output: per target the loadtest's JSON result (mqtt.per_second, latency,
# subscriber.per_second, collector.per_second and drops) in OUT, and the
# load generator's max RSS and CPU on standard error.
set -eu
bin=${1:-lampi-pkg}
DEVICES=${DEVICES:-4000}
CONNECTIONS=${CONNECTIONS:-$DEVICES}
RATE=${RATE:-16700}
DURATION=${DURATION:-60s}
QOS=${QOS:-1}
TARGETS=${TARGETS:-mosquitto embedded}
OUT=${OUT:-bench-loadtest-TARGET.json}
MQTT_PORT=${MQTT_PORT:-18830}
HTTP_PORT=${HTTP_PORT:-18880}

dir=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

waitport() { # waitport PORT: until something listens on 127.0.0.1:PORT
	i=0
	while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "bench-loadtest: nothing listens on port $1" >&2; exit 1; }
		sleep 0.1
	done
}

# run TARGET BROKER SERVER: one loadtest, text to stdout, JSON to OUT.
run() {
	out=$(echo "$OUT" | sed "s/TARGET/$1/")
	set -- loadtest --devices "$DEVICES" --connections "$CONNECTIONS" --rate "$RATE" \
		--duration "$DURATION" --qos "$QOS" --broker "$2" --server "$3" \
		--poll-interval 0 --subscribe --no-check-devices --json
	echo "+ $bin $*" >&2
	st=0
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f 'loadtest max RSS %M KiB, %U s user, %S s system' "$bin" "$@" >"$out" || st=$?
	else
		"$bin" "$@" >"$out" || st=$?
	fi
	echo "result in $out (exit $st)" >&2
	status=$((status + st))
}

status=0
if [ -n "${BROKER:-}" ]; then
	run external "$BROKER" "${SERVER:-}"
	exit $status
fi
for target in $TARGETS; do
	case $target in
	mosquitto)
		cat >"$dir/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 0
log_dest stderr
log_type error
log_type warning
CONF
		[ "$(id -u)" != 0 ] || echo "user root" >>"$dir/mosquitto.conf"
		mosquitto -c "$dir/mosquitto.conf" &
		mpid=$!
		waitport "$MQTT_PORT"
		"$bin" fleet collect --broker "mqtt://127.0.0.1:$MQTT_PORT" --db "$dir/fleet.db" \
			--client-id bench-collector --listen "127.0.0.1:$HTTP_PORT" 2>"$dir/collect.log" &
		cpid=$!
		pids="$mpid $cpid"
		waitport "$HTTP_PORT"
		sleep 1 # the collector subscribes
		run mosquitto "mqtt://127.0.0.1:$MQTT_PORT" "http://127.0.0.1:$HTTP_PORT"
		kill "$cpid" "$mpid" 2>/dev/null || true
		wait "$cpid" "$mpid" 2>/dev/null || true
		pids=""
		;;
	embedded)
		"$bin" repo init "$dir/repo" --codename stable --suite stable --architectures armhf >/dev/null
		"$bin" serve --repo "$dir/repo" --listen "127.0.0.1:$HTTP_PORT" --mqtt-listen "127.0.0.1:$MQTT_PORT" \
			--allow-anonymous --access-log off 2>"$dir/serve.log" &
		spid=$!
		pids=$spid
		waitport "$HTTP_PORT"
		waitport "$MQTT_PORT"
		sleep 1 # the collector subscribes
		run embedded "mqtt://127.0.0.1:$MQTT_PORT" "http://127.0.0.1:$HTTP_PORT"
		kill "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
		pids=""
		;;
	*)
		echo "bench-loadtest: unknown target $target (mosquitto or embedded)" >&2
		exit 2
		;;
	esac
done
exit $status
