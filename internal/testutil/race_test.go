package testutil

import (
	"os"
	"testing"
)

func TestFastRaceExit(t *testing.T) {
	for _, c := range []struct{ before, after string }{
		{"", "atexit_sleep_ms=0"},
		{"halt_on_error=1", "halt_on_error=1 atexit_sleep_ms=0"},
		{"log_path=/tmp/r atexit_sleep_ms=50", "log_path=/tmp/r atexit_sleep_ms=50"},
	} {
		t.Setenv("GORACE", c.before)
		FastRaceExit()
		if got := os.Getenv("GORACE"); got != c.after {
			t.Errorf("GORACE %q: after FastRaceExit %q, want %q", c.before, got, c.after)
		}
	}
}
