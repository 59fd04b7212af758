package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// TestVersionStats: the numbers a rollout of hi 0.2 is judged on, from
// devices' reports stored through Apply as the collector stores them.
func TestVersionStats(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	cand := func(v string, eligible bool, checks int) map[string]state.Candidate {
		return map[string]state.Candidate{"hi": {Version: v, Phased: 50, Eligible: eligible, Checks: checks}}
	}
	att := func(v, result, health string) map[string]state.Attempt {
		return map[string]state.Attempt{"hi": {Version: v, Result: result, Health: health, Time: now}}
	}
	devices := map[string]state.State{
		// runs 0.2, installed by the agent, health check passed
		"up1": {Packages: map[string]string{"hi": "0.2"}, Attempts: att("0.2", state.ResultUpdated, state.HealthPassed)},
		// runs 0.2, installed by plain apt (no attempt reported)
		"up2": {Packages: map[string]string{"hi": "0.2"}},
		// rolled back by its health check: eligible, attempted, failed
		"bad": {Packages: map[string]string{"hi": "0.1"}, Candidates: cand("0.2", true, 4), Attempts: att("0.2", state.ResultRolledBack, state.HealthFailed)},
		// eligible for 6 checks without trying: stuck
		"stuck": {Packages: map[string]string{"hi": "0.1"}, Candidates: cand("0.2", true, 6)},
		// eligible for 2 checks only: not yet stuck
		"slow": {Packages: map[string]string{"hi": "0.1"}, Candidates: cand("0.2", true, 2)},
		// waits for its phasing draw
		"wait": {Packages: map[string]string{"hi": "0.1"}, Candidates: cand("0.2", false, 0)},
		// a failure of the previous version does not count against 0.2
		"old": {Packages: map[string]string{"hi": "0.1"}, Attempts: att("0.1", state.ResultFailed, "")},
		// does not have hi at all
		"other": {Packages: map[string]string{"lamp": "1"}},
	}
	var msgs []Message
	for id, st := range devices {
		st.Seq, st.Time, st.Device = 1, now, id
		b, err := state.Encode(st)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, Message{Topic: state.StateTopic(state.DefaultPrefix, id), Payload: b, Received: now})
	}
	if _, err := s.Apply(state.DefaultPrefix, msgs); err != nil {
		t.Fatal(err)
	}
	q := VersionQuery{Package: "hi", Version: "0.2", StuckChecks: 6}
	got, err := s.VersionStats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want := VersionStats{Devices: 7, Updated: 2, Eligible: 5, Attempted: 3, Failed: 1, HealthFailed: 1, Stuck: 1}
	if got != want {
		t.Fatalf("VersionStats = %+v\n          want %+v", got, want)
	}
	devs, err := s.Devices(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c := CountVersion(devs, q); c != want {
		t.Fatalf("CountVersion = %+v, want %+v", c, want)
	}
}
