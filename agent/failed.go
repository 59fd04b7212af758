package agent

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/deb"
)

// FailedUpdate is a package version whose update failed, remembered in
// the state directory so that the agent does not install and remove the
// same broken version on every poll.
//
// A version that was rolled back is held back: it is not tried again
// until a newer version of the package is published or the operator asks
// (Agent.RetryFailed, "lampi-agent once --retry-failed"). A version whose
// update failed otherwise (download, verification, dpkg lock, install
// without a rollback) is tried again after a backoff: 5 minutes after the
// first failure, doubling with each further failure of the same version,
// capped by max_backoff, jittered over its upper half.
type FailedUpdate struct {
	Package string `json:"package"`
	Version string `json:"version"`
	// RolledBack: the update was rolled back; the version is held back.
	RolledBack bool `json:"rolled_back,omitempty"`
	// Failures counts the failed attempts of this version in a row.
	Failures int `json:"failures"`
	// Last is when the last attempt failed.
	Last time.Time `json:"last"`
	// NotBefore is the earliest next attempt (not for held-back versions).
	NotBefore time.Time `json:"not_before,omitzero"`
	// Error is the last attempt's error.
	Error string `json:"error,omitempty"`
}

// failedUpdateBackoff is the wait after the first failed attempt of a
// version; it doubles with each further failure, up to max_backoff.
const failedUpdateBackoff = 5 * time.Minute

// failedFor returns the remembered failure of pkg at version (nil: none).
func (c *Cycle) failedFor(pkg, version string) *FailedUpdate {
	for i := range c.FailedUpdates {
		if f := &c.FailedUpdates[i]; f.Package == pkg && f.Version == version {
			return f
		}
	}
	return nil
}

// forgetFailed drops the failures of pkg at versions up to and including
// version (a newer version was published, or version is installed now).
func (c *Cycle) forgetFailed(pkg, version string) {
	c.FailedUpdates = slices.DeleteFunc(c.FailedUpdates, func(f FailedUpdate) bool {
		cmp, err := deb.CompareVersions(f.Version, version)
		return f.Package == pkg && (err != nil || cmp <= 0)
	})
}

// failedGate decides about a candidate newer than the installed version:
// held (rolled back before), waiting (a failed attempt's backoff runs), or
// free to try. Failures of versions older than the candidate are dropped.
func (a *Agent) failedGate(c Candidate, now time.Time) (held, waiting *FailedUpdate) {
	f := a.cyc.failedFor(c.Package, c.Version)
	if f == nil {
		// failures of older versions no longer matter
		a.cyc.forgetFailed(c.Package, c.Version)
		return nil, nil
	}
	if f.RolledBack {
		return f, nil
	}
	if now.Before(f.NotBefore) {
		return nil, f
	}
	return nil, nil
}

// noteAttempt remembers the outcome of an update attempt: success forgets
// the package's failures, a rollback holds the versions back, a failure
// schedules the next attempt.
func (a *Agent) noteAttempt(o *Outcome) {
	now := a.opts.Now()
	for pkg, v := range o.Target {
		a.noteAttemptOf(pkg, v, o, now)
		switch o.Result {
		case state.ResultUpdated:
			a.cyc.forgetFailed(pkg, v)
		case state.ResultRolledBack, state.ResultFailed:
			f := a.cyc.failedFor(pkg, v)
			if f == nil {
				a.cyc.FailedUpdates = append(a.cyc.FailedUpdates, FailedUpdate{Package: pkg, Version: v})
				f = &a.cyc.FailedUpdates[len(a.cyc.FailedUpdates)-1]
			}
			f.Failures++
			f.Last = now
			f.Error = ""
			if o.Err != nil {
				f.Error = o.Err.Error()
			}
			f.RolledBack = o.Result == state.ResultRolledBack
			f.NotBefore = time.Time{}
			if !f.RolledBack {
				f.NotBefore = now.Add(a.jittered(backoff(failedUpdateBackoff, f.Failures, a.cfg.MaxBackoff)))
			}
		}
	}
	sort.Slice(a.cyc.FailedUpdates, func(i, j int) bool {
		x, y := a.cyc.FailedUpdates[i], a.cyc.FailedUpdates[j]
		return x.Package < y.Package || x.Package == y.Package && x.Version < y.Version
	})
}

// noteAttemptOf records the attempt of pkg at version v for the reports
// (state.State.Attempts): its result and what the health check said. An
// update that failed before dpkg ran (Outcome.undelivered) is none.
func (a *Agent) noteAttemptOf(pkg, v string, o *Outcome, now time.Time) {
	if o.undelivered {
		return
	}
	switch o.Result {
	case state.ResultUpdated, state.ResultRolledBack, state.ResultFailed:
	default:
		return
	}
	at := state.Attempt{Version: v, Result: o.Result, Time: now.UTC()}
	switch {
	case o.Result == state.ResultUpdated && a.cfg.HealthCheck != "":
		at.Health = state.HealthPassed
	case errors.Is(o.Err, ErrHealthCheck):
		at.Health = state.HealthFailed
	}
	if a.cyc.Attempts == nil {
		a.cyc.Attempts = map[string]state.Attempt{}
	}
	a.cyc.Attempts[pkg] = at
}

// noteCandidate records what planning saw of a version newer than the
// installed one: its phasing and whether this device is eligible, with
// the count of checks in a row that found it eligible (a device that
// stays eligible without updating is what a rollout calls stuck).
func (a *Agent) noteCandidate(cands map[string]state.Candidate, c Candidate, eligible bool) {
	phased := c.Phased
	if phased < 0 {
		phased = 100
	}
	nc := state.Candidate{Version: c.Version, Phased: phased, Eligible: eligible}
	if eligible {
		nc.Checks = 1
		if prev, ok := a.cyc.Candidates[c.Package]; ok && prev.Version == c.Version && prev.Eligible {
			nc.Checks = prev.Checks + 1
		}
	}
	cands[c.Package] = nc
}

// backoff is base·2^(n-1), capped at max.
func backoff(base time.Duration, n int, max time.Duration) time.Duration {
	b := base
	for i := 1; i < n && b < max; i++ {
		b *= 2
	}
	return min(b, max)
}

// jittered returns a duration between d/2 and d (full jitter on the upper
// half), so devices that failed together do not come back together.
func (a *Agent) jittered(d time.Duration) time.Duration {
	return d/2 + time.Duration(a.rand()*float64(d/2))
}

// heldBackError explains held-back versions.
func heldBackError(held []*FailedUpdate) error {
	parts := make([]string, len(held))
	for i, f := range held {
		parts[i] = fmt.Sprintf("%s %s rolled back at %s (%s)", f.Package, f.Version, f.Last.UTC().Format(time.RFC3339), f.Error)
	}
	return fmt.Errorf("%s; not tried again until a newer version is published (lampi-agent once --retry-failed tries now)", strings.Join(parts, "; "))
}

// waitingError explains updates that wait for their backoff.
func waitingError(waiting []*FailedUpdate) error {
	parts := make([]string, len(waiting))
	for i, f := range waiting {
		parts[i] = fmt.Sprintf("%s %s failed %d time(s), next attempt after %s (last error: %s)",
			f.Package, f.Version, f.Failures, f.NotBefore.UTC().Format(time.RFC3339), f.Error)
	}
	return fmt.Errorf("%s; lampi-agent once --retry-failed tries now", strings.Join(parts, "; "))
}

// RetryFailed forgets every failed update (held-back versions and
// backoffs), so the next cycle tries them again; it returns what it
// forgot. This is "lampi-agent once --retry-failed".
func (a *Agent) RetryFailed() ([]FailedUpdate, error) {
	a.cycleMu.Lock()
	defer a.cycleMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	was := a.st.FailedUpdates
	if len(was) == 0 {
		return nil, nil
	}
	a.st.FailedUpdates = nil
	if err := a.st.save(a.cfg.StateDir); err != nil {
		a.st.FailedUpdates = was
		return nil, fmt.Errorf("state: %w", err)
	}
	return was, nil
}
