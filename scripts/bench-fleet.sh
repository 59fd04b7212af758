#!/bin/sh
# bench-fleet.sh — the collector's ingest benchmark (fleet/bench_test.go):
# 4,000 simulated devices (one MQTT connection each) publish QoS 1 state
# reports through Mosquitto and through the embedded broker; the collector
# (MQTT 5, persistent session, ack after bbolt commit with fsync) and, in
# the same run, a plain subscriber that only counts and acknowledges both
# receive them. Then the size and peak RSS of a fleet database of
# 1,000,000 devices, the time of its reports and of a rollout's version
# count, and the memory each idle device connection costs the embedded
# broker and Mosquitto.
#
# Usage: scripts/bench-fleet.sh
# Environment (defaults in brackets):
#   DEVICES [4000]  REPORTS per device [50]
#   RATE    reports/s for the sustained run [16700]; the first run is unpaced
#   STORE_DEVICES [1000000]  IDLE connections [2000]
#   PLAIN   concurrent: the plain subscriber receives alongside the
#           collector [default]; separate: it receives a first round
#           alone, the collector a second round alone
# Output: the go test -bench lines; metrics published/s, plain/s,
# collected/s, ratio (collected/plain), lost (must be 0), and the CPU per
# report of the test process (devices, collector, plain subscriber,
# embedded broker) and of Mosquitto. A run through the embedded broker
# fails at once if the broker drops a message it acknowledged.
set -eu
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}
DEVICES=${DEVICES:-4000}
REPORTS=${REPORTS:-50}
RATE=${RATE:-16700}
STORE_DEVICES=${STORE_DEVICES:-1000000}
IDLE=${IDLE:-2000}
export FLEET_BENCH_PLAIN=${PLAIN:-concurrent}

echo "== peak: $DEVICES devices x $REPORTS reports, as fast as the devices can send"
FLEET_BENCH_DEVICES=$DEVICES FLEET_BENCH_REPORTS=$REPORTS FLEET_BENCH_RATE=0 \
	go test -run '^$' -bench '^BenchmarkIngest$' -benchtime 1x -timeout 30m ./fleet
echo "== sustained: $DEVICES devices at $RATE reports/s in total"
FLEET_BENCH_DEVICES=$DEVICES FLEET_BENCH_REPORTS=$REPORTS FLEET_BENCH_RATE=$RATE \
	go test -run '^$' -bench '^BenchmarkIngest$' -benchtime 1x -timeout 30m ./fleet
echo "== fleet database of $STORE_DEVICES devices"
FLEET_BENCH_STORE_DEVICES=$STORE_DEVICES \
	go test -run '^$' -bench '^BenchmarkStoreSize$' -benchtime 1x -timeout 30m ./fleet
echo "== broker memory: $IDLE idle device connections"
FLEET_BENCH_IDLE=$IDLE \
	go test -run '^$' -bench '^BenchmarkBrokerIdleMemory$' -benchtime 1x -timeout 30m ./fleet
