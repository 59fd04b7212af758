#!/bin/sh
# bench-loadtest.sh — the fleet ingest benchmark: simulated devices publish
# state reports through an MQTT broker; a plain subscriber measures what the
# broker alone delivers, and with SERVER set the collector's stored count
# is read back through the fleet API (drops = acknowledged − stored).
#
# Usage: scripts/bench-loadtest.sh [PATH-TO-lampi-pkg]
# Environment (defaults in brackets):
#   DEVICES [4000]  CONNECTIONS [DEVICES: one per device]  RATE [16700]
#   DURATION [60s]  QOS [1]
#   BROKER  an already running broker; unset: start Mosquitto on MQTT_PORT [18830]
#   SERVER  the update server whose collector reads BROKER; unset: broker only
#   OUT     where the JSON result goes [bench-loadtest.json]
set -eu
bin=${1:-lampi-pkg}
DEVICES=${DEVICES:-4000}
CONNECTIONS=${CONNECTIONS:-$DEVICES}
RATE=${RATE:-16700}
DURATION=${DURATION:-60s}
QOS=${QOS:-1}
OUT=${OUT:-bench-loadtest.json}

if [ -z "${BROKER:-}" ]; then
	port=${MQTT_PORT:-18830}
	dir=$(mktemp -d)
	trap 'kill "$mpid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
	# Mosquitto drops QoS 1 messages queued past max_queued_messages
	# (1000 by default) for a slow subscriber: lift the limit so a drop
	# means the consumer, not the broker's default.
	cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 0
log_dest stderr
log_type error
log_type warning
CONF
	mosquitto -c "$dir/mosquitto.conf" &
	mpid=$!
	sleep 0.5
	BROKER=mqtt://127.0.0.1:$port
fi

set -- loadtest --devices "$DEVICES" --connections "$CONNECTIONS" --rate "$RATE" \
	--duration "$DURATION" --qos "$QOS" --broker "$BROKER" --server "${SERVER:-}" \
	--poll-interval 0 --subscribe --no-check-devices --json
echo "+ $bin $*" >&2
status=0
if [ -x /usr/bin/time ]; then
	/usr/bin/time -f 'loadtest max RSS %M KiB, %U s user, %S s system' "$bin" "$@" >"$OUT" || status=$?
else
	"$bin" "$@" >"$OUT" || status=$?
fi
echo "result in $OUT (exit $status)" >&2
exit $status
