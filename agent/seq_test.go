package agent_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
)

// TestSeqFollowsTheClock: the next report's seq is max(previous + 1, the
// clock in microseconds), persisted: a device that lost its state (or ran
// an older agent with a small counter) starts above its old reports when
// its clock is sane, and seq still grows when the clock stands still or
// goes back.
func TestSeqFollowsTheClock(t *testing.T) {
	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	d := at.NewDevice(t, r, "lamp-seq", "")
	a := newAgent(t, d, clock, agent.Options{})
	seq := func(a *agent.Agent) uint64 {
		t.Helper()
		s, err := a.NewState("")
		if err != nil {
			t.Fatal(err)
		}
		return s.Seq
	}
	us := func() uint64 { return uint64(clock.Now().UnixMicro()) }

	if got, want := seq(a), us(); got != want {
		t.Errorf("first seq %d, want the clock in µs %d", got, want)
	}
	if got, want := seq(a), us()+1; got != want {
		t.Errorf("same clock: seq %d, want %d", got, want)
	}
	clock.Advance(time.Hour)
	if got, want := seq(a), us(); got != want {
		t.Errorf("an hour later: seq %d, want %d", got, want)
	}
	clock.Advance(-2 * time.Hour) // the clock goes back: seq does not
	last := us() + 2*uint64(time.Hour/time.Microsecond)
	if got := seq(a); got != last+1 {
		t.Errorf("clock set back: seq %d, want %d", got, last+1)
	}

	// Persisted: a new agent on the same state continues.
	if got := seq(newAgent(t, d, clock, agent.Options{})); got != last+2 {
		t.Errorf("after a restart: seq %d, want %d", got, last+2)
	}
	// An older agent's small counter: the clock takes over.
	path := filepath.Join(d.StateDir, "agent.json")
	if err := os.WriteFile(path, []byte(`{"seq":41}`), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3 * time.Hour)
	if got, want := seq(newAgent(t, d, clock, agent.Options{})), us(); got != want {
		t.Errorf("after a legacy counter: seq %d, want %d", got, want)
	}
	// State lost: above every report sent before (the clock moved on).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if got, want := seq(newAgent(t, d, clock, agent.Options{})), us(); got != want {
		t.Errorf("after losing its state: seq %d, want %d", got, want)
	}
}
