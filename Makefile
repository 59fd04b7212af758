# lampi-pkg — see README.md. Every target installs what it needs.
GO ?= go
BIN := bin
FUZZTIME ?= 5s
# Compute-heavy tests kept out of the race detector's build (files tagged
# !race: the xz round trips and the real Debian packages rebuilt and judged
# by dpkg-deb and lintian, 10-40 times slower under it; the rollout fleet of
# 30 real agent processes, 3 times slower; the fleet aggregate model tests,
# pure CPU in one goroutine, 10 times slower): a second pass runs them.
HEAVY_TESTS := ^(TestXZSizeNearXZ6OnRealPackages|TestMultiBlockXZAcceptedByDpkg|TestRoundTrip|TestChunks|TestRebuildRealPackages|TestRebuiltRealPackagesLintian|TestInfoMatchesDpkgDebOnRealPackages|TestExtractControlLikeRawExtract|TestRolloutFleet|TestAggregatesMatchScan|TestAggregatesMigration)$$

.PHONY: all build demo test test-short check fuzz bench soak deps dist clean conformance

all: build

deps:
	@scripts/deps.sh

build:
	$(GO) build -o $(BIN)/lampi-pkg ./cmd/lampi-pkg
	$(GO) build -o $(BIN)/lampi-agent ./cmd/lampi-agent

# The main job end to end on the embedded defaults.
demo: deps build
	@scripts/demo.sh $(BIN)/lampi-pkg

# Everything: formatting, vet, the race-enabled test suite against the real
# Debian tools, and a short run of every fuzz target.
test: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@$(GO) run ./scripts/lencheck
	@scripts/doclinks.sh .
	$(GO) test -race -count=1 -timeout 30m ./...
	$(GO) test -count=1 -timeout 30m -run '$(HEAVY_TESTS)' ./deb/ ./internal/xzenc/ ./internal/cli/ ./fleet/
	@scripts/fuzz.sh $(FUZZTIME)

# The fast edit loop: every package's tests without the heavy ones
# (testutil.Heavy: real apt-get/dpkg roots, reprepro, lintian, Mosquitto,
# MinIO, the end-to-end scenarios, large fuzz-like loops). Not a
# substitute for "make test", which runs everything with -race.
test-short: deps
	$(GO) test -short -count=1 ./...

fuzz: deps
	@scripts/fuzz.sh 2m

bench: build
	@scripts/deps.sh bench
	$(GO) test -run '^$$' -bench . -benchtime 3x ./deb/
	@scripts/bench.sh $(BIN)/lampi-pkg
	@scripts/bench-real.sh $(BIN)/lampi-pkg
	@scripts/bench-repo.sh $(BIN)/lampi-pkg
	@scripts/bench-s3.sh $(BIN)/lampi-pkg
	@scripts/bench-serve.sh $(BIN)/lampi-pkg
	@scripts/bench-fleet.sh
	@scripts/bench-loadtest.sh $(BIN)/lampi-pkg
	$(GO) test -run '^$$' -bench BenchmarkIdleCheck -benchtime 200x ./agent/
	$(GO) test -run '^$$' -bench BenchmarkDaemonRSS -benchtime 1x ./internal/agentcli/

# reprepro's own shunit2 suite (tests/basic.sh, tests/multiversion.sh of
# github.com/ionos-cloud/reprepro at 3afde91f) against bin/lampi-pkg:
# REPREPRO_SUITE_SRC is a copy of it made outside this repository (see
# docs/repo.md); ONLY="basic.sh:test_ls …" runs a subset.
SUITE_RUNNER ?= /work/shared/tools/reprepro-suite/run-suite.sh
conformance: build
	@test -n "$(REPREPRO_SUITE_SRC)" || { echo "conformance: set REPREPRO_SUITE_SRC to a copy of reprepro's source at 3afde91f (docs/repo.md)"; exit 2; }
	@command -v shunit2 >/dev/null && command -v db_verify >/dev/null || { echo "conformance: apt-get install shunit2 db-util dpkg-dev"; exit 2; }
	LAMPI_PKG=$(abspath $(BIN)/lampi-pkg) REPREPRO_SUITE_SRC=$(abspath $(REPREPRO_SUITE_SRC)) ONLY="$(ONLY)" $(SUITE_RUNNER) lampi

# Crash safety at length: kill -9 during repo writes, 500 trials.
soak: deps
	$(GO) test ./repo -run TestKillDuringWrites -count=1 -crash-trials=500 -timeout 60m

# lampi-agent .debs for amd64, armhf and arm64, built with lampi-pkg itself.
dist: build
	@scripts/dist.sh $(BIN)/lampi-pkg $(VERSION)

clean:
	rm -rf $(BIN) dist
