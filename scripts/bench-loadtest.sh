#!/usr/bin/env bash
# bench-loadtest.sh — the fleet ingest benchmark with `lampi-pkg loadtest`:
# simulated devices (one MQTT connection each, their own client id, QoS 1,
# PUBACK awaited) publish state reports through an MQTT broker into the
# collector; a plain subscriber on the same broker measures what the broker
# alone delivers, and the collector's stored count is read back through
# the fleet API (drops = acknowledged − stored).
#
# Without BROKER it runs each of TARGETS on this machine, in two rounds:
#   plain      the broker alone, and `loadtest --subscribe`: what the broker
#              delivers to a plain QoS 1 subscriber (the baseline)
#   collector  the broker and the collector, and `loadtest` reading the
#              collector's stored count back through the fleet API
# with the targets
#   mosquitto  Mosquitto on MQTT_PORT [18830] (no persistence, unlimited
#              queues); the collector is `lampi-pkg fleet collect`
#   embedded   the plain round: `lampi-pkg fleet broker` (the embedded broker
#              alone, anonymous); the collector round: `lampi-pkg serve` on
#              an empty repository (its broker hands each report to its
#              collector before the device's PUBACK)
#   postgres   Mosquitto as for mosquitto; the collector round: two
#              `lampi-pkg fleet collect --group bench` into one private
#              PostgreSQL cluster (initdb from /usr/lib/postgresql/*/bin,
#              fsync on, run as nobody when root; PG_PORT [18832])
# PLAIN=concurrent runs one round per target instead, with the plain
# subscriber beside the collector (on a 2-core machine the four processes
# then compete for the CPU).
#
# Usage: scripts/bench-loadtest.sh [PATH-TO-lampi-pkg]
# Environment (defaults in brackets):
#   DEVICES [4000]  CONNECTIONS [DEVICES: one per device]  RATE [16700]
#   DURATION [60s]  QOS [1]  TARGETS [mosquitto embedded]  PLAIN [separate]
#   BROKER  an already running broker (then SERVER, if set, is the server
#           whose collector reads it; unset: broker and subscriber only)
#   OUT     where the JSON results go, TARGET substituted [bench-loadtest-TARGET.json]
#           (TARGET-plain and TARGET-collector in separate rounds)
# Output: per round the loadtest's JSON result (mqtt.per_second, latency,
# subscriber.per_second, collector.per_second and drops) in OUT, the load
# generator's max RSS and CPU and the broker's and collector's CPU on
# standard error, and per target a summary line: reports/s acknowledged,
# collected, delivered to the plain subscriber, the ratio, and the drops.
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

PLAIN=${PLAIN:-separate}
case $PLAIN in separate | concurrent) ;; *)
	echo "bench-loadtest: PLAIN=$PLAIN: want separate or concurrent" >&2
	exit 2
	;;
esac

# cpu PID: the process's user + system CPU seconds so far.
cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo "?"
}

# run ROUND BROKER SERVER SUBSCRIBE: one loadtest, JSON to OUT (TARGET
# replaced by ROUND); the CPU of the processes in $pids on stderr.
run() {
	out=$(echo "$OUT" | sed "s/TARGET/$1/")
	sub=""
	[ "$4" = no ] || sub=--subscribe
	set -- "$1" loadtest --devices "$DEVICES" --connections "$CONNECTIONS" --rate "$RATE" \
		--duration "$DURATION" --qos "$QOS" --broker "$2" --server "$3" \
		--poll-interval 0 $sub --no-check-devices --json
	round=$1
	shift
	echo "+ $bin $*" >&2
	before=""
	for p in $pids; do before="$before $(cpu "$p")"; done
	st=0
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f 'loadtest max RSS %M KiB, %U s user, %S s system' "$bin" "$@" >"$out" || st=$?
	else
		"$bin" "$@" >"$out" || st=$?
	fi
	set -- $before
	for p in $pids; do
		echo "$round: $(tr '\0' ' ' </proc/"$p"/cmdline | cut -c1-40)… CPU $1 → $(cpu "$p") s" >&2
		shift
	done
	echo "result in $out (exit $st)" >&2
	status=$((status + st))
}

stop() {
	for p in $pids; do kill -INT "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	pids=""
}

start_mosquitto() {
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
	pids="$pids $!"
	waitport "$MQTT_PORT"
}

start_collect() {
	rm -f "$dir/fleet.db"
	"$bin" fleet collect --broker "mqtt://127.0.0.1:$MQTT_PORT" --db "$dir/fleet.db" \
		--client-id bench-collector --listen "127.0.0.1:$HTTP_PORT" 2>"$dir/collect.log" &
	pids="$pids $!"
	waitport "$HTTP_PORT"
	sleep 1 # the collector subscribes
}

# start_postgres: a private cluster in $dir/pg, database "fleet"; sets dsn.
start_postgres() {
	pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
	PG_PORT=${PG_PORT:-18832}
	mkdir -p "$dir/pg"
	as=""
	if [ "$(id -u)" = 0 ]; then
		chown nobody "$dir" "$dir/pg"
		as="setpriv --reuid=65534 --regid=65534 --clear-groups"
	fi
	$as "$pgbin/initdb" -D "$dir/pg/data" -U lampi --auth=trust --no-instructions >/dev/null
	$as "$pgbin/postgres" -D "$dir/pg/data" -k "$dir/pg" -h 127.0.0.1 -p "$PG_PORT" \
		-c max_connections=100 -c shared_buffers=256MB 2>"$dir/pg/log" &
	pids="$pids $!"
	waitport "$PG_PORT"
	until "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do sleep 0.1; done
	"$pgbin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U lampi fleet
	dsn="postgres://lampi@127.0.0.1:$PG_PORT/fleet?sslmode=disable"
}

# start_collect_pg: two collectors of one $share group into $dsn, the
# first serving the fleet API (its stats count both).
start_collect_pg() {
	for n in 1 2; do
		listen=""
		[ $n = 2 ] || listen="--listen 127.0.0.1:$HTTP_PORT"
		"$bin" fleet collect --broker "mqtt://127.0.0.1:$MQTT_PORT" --db "$dsn" --group bench \
			--client-id "bench-collector-$n" $listen 2>"$dir/collect-$n.log" &
		pids="$pids $!"
	done
	waitport "$HTTP_PORT"
	sleep 1 # the collectors subscribe
}

start_serve() {
	rm -rf "$dir/repo"
	"$bin" repo init "$dir/repo" --codename stable --suite stable --architectures armhf >/dev/null
	"$bin" serve --repo "$dir/repo" --listen "127.0.0.1:$HTTP_PORT" --mqtt-listen "127.0.0.1:$MQTT_PORT" \
		--allow-anonymous --access-log off 2>"$dir/serve.log" &
	pids="$pids $!"
	waitport "$HTTP_PORT"
	waitport "$MQTT_PORT"
}

# summary TARGET PLAIN-JSON COLLECTOR-JSON
summary() {
	command -v python3 >/dev/null || return 0
	python3 - "$@" <<'PY'
import json, sys
target, plain, coll = sys.argv[1:4]
def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
p, c = load(plain), load(coll)
acked = (c.get("mqtt") or {}).get("per_second", 0)
got = (c.get("collector") or {}).get("per_second", 0)
drops = (c.get("collector") or {}).get("drops", "?")
base = (p.get("subscriber") or {}).get("per_second", 0)
ratio = got / base if base else float("nan")
print(f"{target}: acknowledged {acked:,.0f}/s, collector {got:,.0f}/s, "
      f"plain subscriber {base:,.0f}/s, collector/plain {ratio:.3f}, drops {drops}")
PY
}

status=0
if [ -n "${BROKER:-}" ]; then
	run external "$BROKER" "${SERVER:-}" yes
	exit $status
fi
for target in $TARGETS; do
	case $target in
	mosquitto)
		if [ "$PLAIN" = concurrent ]; then
			start_mosquitto
			start_collect
			run mosquitto "mqtt://127.0.0.1:$MQTT_PORT" "http://127.0.0.1:$HTTP_PORT" yes
			stop
			continue
		fi
		start_mosquitto
		run mosquitto-plain "mqtt://127.0.0.1:$MQTT_PORT" "" yes
		stop
		start_mosquitto
		start_collect
		run mosquitto-collector "mqtt://127.0.0.1:$MQTT_PORT" "http://127.0.0.1:$HTTP_PORT" no
		stop
		;;
	embedded)
		if [ "$PLAIN" = concurrent ]; then
			start_serve
			run embedded "mqtt://127.0.0.1:$MQTT_PORT" "http://127.0.0.1:$HTTP_PORT" yes
			stop
			continue
		fi
		"$bin" fleet broker --listen "127.0.0.1:$MQTT_PORT" --allow-anonymous 2>"$dir/broker.log" &
		pids=$!
		waitport "$MQTT_PORT"
		run embedded-plain "mqtt://127.0.0.1:$MQTT_PORT" "" yes
		stop
		start_serve
		run embedded-collector "mqtt://127.0.0.1:$MQTT_PORT" "http://127.0.0.1:$HTTP_PORT" no
		stop
		;;
	postgres)
		if [ "$PLAIN" = concurrent ]; then
			start_postgres
			start_mosquitto
			start_collect_pg
			run postgres "mqtt://127.0.0.1:$MQTT_PORT" "http://127.0.0.1:$HTTP_PORT" yes
			stop
			continue
		fi
		start_mosquitto
		run postgres-plain "mqtt://127.0.0.1:$MQTT_PORT" "" yes
		stop
		start_postgres
		start_mosquitto
		start_collect_pg
		run postgres-collector "mqtt://127.0.0.1:$MQTT_PORT" "http://127.0.0.1:$HTTP_PORT" no
		stop
		;;
	*)
		echo "bench-loadtest: unknown target $target (mosquitto, embedded or postgres)" >&2
		exit 2
		;;
	esac
done
if [ "$PLAIN" = separate ]; then
	for target in $TARGETS; do
		summary "$target" "$(echo "$OUT" | sed "s/TARGET/$target-plain/")" "$(echo "$OUT" | sed "s/TARGET/$target-collector/")"
	done
fi
exit $status
