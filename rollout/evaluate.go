package rollout

import (
	"fmt"
	"slices"
	"time"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// State is where a rollout stands.
type State string

// The states of a rollout. Running rollouts are evaluated; paused ones
// keep their percentage and wait for resume; halted ones sit at phase 0
// after a stop rule fired (or an abort) and wait for a person; completed
// ones reached 100 %; reverted ones were superseded by a revert.
const (
	Running   State = "running"
	Paused    State = "paused"
	Halted    State = "halted"
	Completed State = "completed"
	Reverted  State = "reverted"
)

// Rollout is one release walking through its plan: the version of a
// package (binary or source name) in a distribution.
type Rollout struct {
	Distribution string `json:"distribution"`
	Package      string `json:"package"`
	Version      string `json:"version"`
	// Previous is the last good version: what a revert republishes.
	Previous string `json:"previous,omitempty"`
	Plan     Plan   `json:"plan"`
	State    State  `json:"state"`
	// Step is the index in Plan.Steps of the stage the rollout is at.
	Step int `json:"step"`
	// Started is when the rollout began, StepStarted when it reached Step.
	Started     time.Time `json:"started"`
	StepStarted time.Time `json:"step_started"`
	// Reason says why the rollout halted (or was paused).
	Reason string `json:"reason,omitempty"`
	// Baseline is the previous version's numbers when the rollout
	// started: the reference of the relative failure rule.
	Baseline fleet.VersionStats `json:"baseline"`
	// RevertedAs is the version a revert published the last good
	// version's payload under.
	RevertedAs string `json:"reverted_as,omitempty"`
	// Rev counts the saves of the rollout: Store.Save refuses a rollout
	// whose Rev is not the stored one (ErrConflict), so that a change
	// made meanwhile is not overwritten.
	Rev uint64 `json:"rev"`
}

// Closed reports whether the rollout is over (completed or reverted): the
// same version may then be rolled out again, and nothing changes it.
func (r *Rollout) Closed() bool { return r.State == Completed || r.State == Reverted }

// Key names the rollout: DISTRIBUTION/PACKAGE/VERSION.
func (r *Rollout) Key() string { return r.Distribution + "/" + r.Package + "/" + r.Version }

// Percent is the Phased-Update-Percentage the rollout wants published now:
// its step's, 0 once halted, 100 once completed.
func (r *Rollout) Percent() int {
	switch r.State {
	case Halted, Reverted:
		return 0
	case Completed:
		return 100
	}
	return r.Plan.Steps[r.Step].Percent
}

// Groups are the rollout groups the rollout wants offered the version now
// whatever the percentage: those of the group steps up to its step while
// it runs or is paused below 100 %, none at 100 % (everyone is offered
// the version) or once halted or closed.
func (r *Rollout) Groups() []string {
	if r.State != Running && r.State != Paused || r.Percent() >= 100 {
		return nil
	}
	var out []string
	for i := 0; i <= r.Step && i < len(r.Plan.Steps); i++ {
		for _, g := range r.Plan.Steps[i].Groups {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

// Stats are the fleet's numbers for the version being rolled out, as the
// controller reads them from the fleet's reports.
type Stats struct {
	// Devices is how many devices run the package at any version.
	Devices int `json:"devices"`
	// Eligible is how many devices say their phasing draw admits them to
	// the version at the current percentage.
	Eligible int `json:"eligible"`
	// Updated is how many devices run the version.
	Updated int `json:"updated"`
	// Attempted is how many devices tried to install the version (those
	// that run it, and those whose attempt failed or was rolled back).
	Attempted int `json:"attempted"`
	// Failed is how many attempts ended failed or rolled back.
	Failed int `json:"failed"`
	// HealthFailed is how many devices failed the version's health check.
	HealthFailed int `json:"health_failed"`
	// Stuck is how many eligible devices still run an older version after
	// the plan's StuckPolls checks.
	Stuck int `json:"stuck"`
	// PrevAttempted and PrevFailed are the same numbers for the previous
	// version, the baseline of the relative failure rule.
	PrevAttempted int `json:"prev_attempted"`
	PrevFailed    int `json:"prev_failed"`
}

// Action is what a decision does.
type Action string

// The actions of a decision.
const (
	Hold     Action = "hold"     // stay at the current step
	Advance  Action = "advance"  // move to the next step
	Complete Action = "complete" // the last step is done
	Halt     Action = "halt"     // a stop rule fired: phase 0
	Revert   Action = "revert"   // the last good version republished above the bad one
)

// Decision is one evaluation's outcome with the numbers it was made on:
// the audit log is a list of them.
type Decision struct {
	Time    time.Time `json:"time"`
	Rollout string    `json:"rollout"`
	Action  Action    `json:"action"`
	// From and To are the percentages before and after.
	From   int    `json:"from"`
	To     int    `json:"to"`
	Reason string `json:"reason"`
	Stats  Stats  `json:"stats"`
}

// Evaluate decides what a running rollout does next from its fleet's
// numbers at time now. It does not change r; Apply does. Stop rules are
// checked before progress, at every step, so a failing release halts even
// while its soak time has not run out.
func Evaluate(r *Rollout, s Stats, now time.Time) Decision {
	d := Decision{Time: now, Rollout: r.Key(), Action: Hold, From: r.Percent(), To: r.Percent(), Stats: s}
	if r.State != Running {
		d.Reason = fmt.Sprintf("rollout is %s", r.State)
		return d
	}
	if reason := stopReason(r.Plan.Rules, s); reason != "" {
		d.Action, d.To, d.Reason = Halt, 0, reason
		return d
	}
	st := r.Plan.Steps[r.Step]
	soaked := now.Sub(r.StepStarted)
	switch {
	case soaked < st.Soak:
		d.Reason = fmt.Sprintf("soaking at %s: %s of %s", st.Name(), formatDuration(soaked.Truncate(time.Second)), formatDuration(st.Soak))
	case s.Updated < st.MinUpdated:
		d.Reason = fmt.Sprintf("waiting at %s: %d of %d devices run %s (%d eligible)", st.Name(), s.Updated, st.MinUpdated, r.Version, s.Eligible)
	case r.Step == len(r.Plan.Steps)-1:
		d.Action, d.To = Complete, 100
		d.Reason = fmt.Sprintf("100%% soaked for %s with %d devices on %s", formatDuration(st.Soak), s.Updated, r.Version)
	default:
		d.Action, d.To = Advance, r.Plan.Steps[r.Step+1].Percent
		d.Reason = fmt.Sprintf("%s healthy: %d devices on %s, %d of %d attempts failed, soaked %s", st.Name(), s.Updated, r.Version, s.Failed, s.Attempted, formatDuration(st.Soak))
	}
	return d
}

// stopReason returns why a stop rule fires on s, or "".
func stopReason(ru Rules, s Stats) string {
	if ru.MinFailures > 0 && s.Failed >= ru.MinFailures && s.Attempted < ru.MinAttempts {
		return fmt.Sprintf("%d devices failed the version before %d attempted it (min-failures=%d)", s.Failed, ru.MinAttempts, ru.MinFailures)
	}
	if s.Attempted >= ru.MinAttempts && s.Attempted > 0 {
		share := float64(s.Failed) / float64(s.Attempted)
		if share > ru.MaxFailed {
			return fmt.Sprintf("%d of %d attempts failed or rolled back (%s > max-failed=%s)", s.Failed, s.Attempted, pct(share), pct(ru.MaxFailed))
		}
		if ru.MaxFailedRatio > 0 && s.Failed > 0 {
			prev := 0.0
			if s.PrevAttempted > 0 {
				prev = float64(s.PrevFailed) / float64(s.PrevAttempted)
			}
			if prev > 0 && share > ru.MaxFailedRatio*prev {
				return fmt.Sprintf("failure share %s is more than %g× the previous version's %s (%d of %d)", pct(share), ru.MaxFailedRatio, pct(prev), s.PrevFailed, s.PrevAttempted)
			}
		}
		if h := float64(s.HealthFailed) / float64(s.Attempted); h > ru.MaxHealthFailed {
			return fmt.Sprintf("%d of %d devices failed the health check (%s > max-health-failed=%s)", s.HealthFailed, s.Attempted, pct(h), pct(ru.MaxHealthFailed))
		}
	}
	if s.Eligible >= ru.MinAttempts && s.Eligible > 0 {
		if st := float64(s.Stuck) / float64(s.Eligible); st > ru.MaxStuck {
			return fmt.Sprintf("%d of %d eligible devices still run an older version after %d checks (%s > max-stuck=%s)", s.Stuck, s.Eligible, ru.StuckPolls, pct(st), pct(ru.MaxStuck))
		}
	}
	return ""
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

// Apply changes r as d says, at d.Time.
func Apply(r *Rollout, d Decision) {
	switch d.Action {
	case Advance:
		r.Step++
		r.StepStarted = d.Time
	case Complete:
		r.State = Completed
	case Halt:
		r.State, r.Reason = Halted, d.Reason
	}
}
