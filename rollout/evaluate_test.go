package rollout

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

func running(t *testing.T, plan string) *Rollout {
	t.Helper()
	p, err := ParsePlan(plan)
	if err != nil {
		t.Fatal(err)
	}
	return &Rollout{Distribution: "stable", Package: "lamp", Version: "1.4.1", Previous: "1.4.0", Plan: p, State: Running, Started: t0, StepStarted: t0}
}

// TestWalk: a healthy release holds while it soaks and while too few
// devices run it, then walks every step to 100 % and completes.
func TestWalk(t *testing.T) {
	t.Parallel()
	r := running(t, "10%:1h/2,50%:1h/5,100%:30m/10")
	now := t0
	healthy := func(updated int) Stats {
		return Stats{Devices: 30, Eligible: updated, Updated: updated, Attempted: updated}
	}
	steps := []struct {
		after   time.Duration
		stats   Stats
		action  Action
		to      int
		message string
	}{
		{30 * time.Minute, healthy(3), Hold, 10, "soaking at 10%: 30m of 1h"},
		{40 * time.Minute, healthy(1), Hold, 10, "waiting at 10%: 1 of 2 devices run 1.4.1"},
		{10 * time.Minute, healthy(3), Advance, 50, "10% healthy: 3 devices on 1.4.1"},
		{time.Hour, healthy(16), Advance, 100, "50% healthy"},
		{30 * time.Minute, healthy(30), Complete, 100, "100% soaked for 30m with 30 devices"},
	}
	for i, st := range steps {
		now = now.Add(st.after)
		d := Evaluate(r, st.stats, now)
		if d.Action != st.action || d.To != st.to || !strings.Contains(d.Reason, st.message) || d.Rollout != "stable/lamp/1.4.1" {
			t.Fatalf("step %d: %+v, want %s to %d%% (%q)", i, d, st.action, st.to, st.message)
		}
		Apply(r, d)
	}
	if r.State != Completed || r.Percent() != 100 {
		t.Fatalf("after the walk: %s at %d%%", r.State, r.Percent())
	}
	if d := Evaluate(r, healthy(30), now.Add(time.Hour)); d.Action != Hold || d.Reason != "rollout is completed" {
		t.Errorf("a completed rollout is not evaluated again: %+v", d)
	}
}

// TestStopRules: each stop rule halts the rollout at phase 0 — during the
// soak too — and names its numbers; healthy numbers just below each
// threshold do not.
func TestStopRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		stats Stats
		halt  string // "" when the rollout must not halt
	}{
		{"a fifth fails", Stats{Eligible: 10, Updated: 8, Attempted: 10, Failed: 2}, "2 of 10 attempts failed or rolled back (20.0% > max-failed=5.0%)"},
		{"at the threshold", Stats{Eligible: 20, Updated: 19, Attempted: 20, Failed: 1}, ""},
		{"too few attempts to judge", Stats{Eligible: 4, Updated: 2, Attempted: 4, Failed: 2}, ""},
		{"min-failures before min-attempts", Stats{Eligible: 4, Updated: 1, Attempted: 4, Failed: 3}, "3 devices failed the version before 5 attempted it"},
		{"relative to the previous version", Stats{Eligible: 100, Updated: 96, Attempted: 100, Failed: 4, PrevAttempted: 100, PrevFailed: 1}, "failure share 4.0% is more than 2× the previous version's 1.0%"},
		{"no worse than the previous version", Stats{Eligible: 100, Updated: 97, Attempted: 100, Failed: 3, PrevAttempted: 100, PrevFailed: 2}, ""},
		{"health checks", Stats{Eligible: 10, Updated: 10, Attempted: 10, HealthFailed: 1}, "1 of 10 devices failed the health check"},
		{"stuck devices", Stats{Eligible: 8, Updated: 5, Attempted: 5, Stuck: 3}, "3 of 8 eligible devices still run an older version after 6 checks"},
		{"some stuck", Stats{Eligible: 8, Updated: 6, Attempted: 6, Stuck: 2}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := running(t, "10%:1h/2,100%")
			d := Evaluate(r, tc.stats, t0.Add(time.Minute))
			if tc.halt == "" {
				if d.Action != Hold {
					t.Fatalf("%+v, want hold (still soaking)", d)
				}
				return
			}
			if d.Action != Halt || d.To != 0 || d.From != 10 || !strings.Contains(d.Reason, tc.halt) || d.Stats != tc.stats {
				t.Fatalf("%+v, want halt with %q", d, tc.halt)
			}
			Apply(r, d)
			if r.State != Halted || r.Percent() != 0 || r.Reason != d.Reason {
				t.Fatalf("after the halt: %+v", r)
			}
		})
	}
}

func TestPausedIsNotEvaluated(t *testing.T) {
	t.Parallel()
	r := running(t, "10%,100%")
	r.State = Paused
	d := Evaluate(r, Stats{Attempted: 10, Failed: 10}, t0)
	if d.Action != Hold || r.Percent() != 10 {
		t.Fatalf("%+v at %d%%", d, r.Percent())
	}
}
