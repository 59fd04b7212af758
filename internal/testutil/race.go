package testutil

import (
	"os"
	"strings"
)

// FastRaceExit makes the race-enabled processes a test binary starts — the
// binary itself run again as lampi-pkg or lampi-agent (testscript, daemon
// tests) or as a child collector — exit at once: at every exit the race
// runtime otherwise sleeps GORACE's atexit_sleep_ms, 1000 ms by default, a
// second of wall time per command a scenario runs. Races are still reported
// as they are found and still fail the process (exit status 66). An
// atexit_sleep_ms the user set in GORACE is kept. Call it from TestMain
// before the tests start processes; it changes only the environment those
// processes inherit (the test binary's own runtime has read GORACE already).
func FastRaceExit() {
	g := os.Getenv("GORACE")
	if strings.Contains(g, "atexit_sleep_ms") {
		return
	}
	os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
}
