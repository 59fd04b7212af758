package agent

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// NewState builds the next state report from the persisted outcome of the
// last attempt, with the next sequence number: one more than the last, or
// the clock in microseconds since 1970 when that is higher (persisted
// before it is returned, so seq grows across restarts, and a device that
// lost its state starts above its old counter when its clock is sane).
func (a *Agent) NewState(arch string) (state.State, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.Seq = max(a.st.Seq+1, uint64(max(0, a.opts.Now().UnixMicro())))
	a.st.Unsent = true
	if err := a.st.save(a.cfg.StateDir); err != nil {
		return state.State{}, fmt.Errorf("state: %w", err)
	}
	if arch == "" {
		arch = a.cfg.Architecture
	}
	pk := maps.Clone(a.st.Managed)
	if inv, err := a.inventory(); err == nil {
		pk = a.managedVersions(inv, a.st.Managed)
	}
	s := state.State{Seq: a.st.Seq, Time: a.opts.Now().UTC(), Device: a.deviceID, Agent: a.opts.Version, Arch: arch,
		Packages: pk, LastCheck: a.st.LastCheck.UTC(), Result: a.st.Result, Error: a.st.Error, Target: a.st.Target}
	if s.LastCheck.Equal(time.Time{}.UTC()) {
		s.LastCheck = time.Time{}
	}
	s.ReleaseDate = a.releaseDate()
	s.Groups, s.BootID = a.cfg.Groups, a.bootID
	s.Attempts = maps.Clone(a.st.Attempts)
	// A candidate the device runs by now (installed in the cycle that
	// saw it) is no longer one.
	for name, c := range a.st.Candidates {
		if v, ok := pk[name]; ok && v == c.Version {
			continue
		}
		if s.Candidates == nil {
			s.Candidates = map[string]state.Candidate{}
		}
		s.Candidates[name] = c
	}
	return s, nil
}

// releaseDate is the Date of the newest Release accepted (signature
// verified) from each source; with several sources, the oldest of those,
// so a source whose view stopped moving shows. Zero before any.
func (a *Agent) releaseDate() time.Time {
	var d time.Time
	for _, src := range a.sources {
		if ss := a.st.Sources[src.Key()]; ss != nil && !ss.ReleaseDate.IsZero() && (d.IsZero() || ss.ReleaseDate.Before(d)) {
			d = ss.ReleaseDate
		}
	}
	if d.IsZero() {
		return d
	}
	return d.UTC()
}

// MarkSent records that the report with seq reached the broker.
func (a *Agent) MarkSent(seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq == a.st.Seq && a.st.Unsent {
		a.st.Unsent = false
		a.st.save(a.cfg.StateDir)
	}
}

// Status is what "lampi-agent status" shows.
type Status struct {
	Device       string            `json:"device"`
	Sources      []string          `json:"sources"`
	Architecture string            `json:"architecture"`
	LastCheck    time.Time         `json:"last_check,omitzero"`
	LastAttempt  time.Time         `json:"last_attempt,omitzero"`
	Result       string            `json:"result,omitempty"`
	Error        string            `json:"error,omitempty"`
	Installed    map[string]string `json:"installed"`
	Pending      map[string]string `json:"pending,omitempty"`
	Target       map[string]string `json:"target,omitempty"`
	Seq          uint64            `json:"seq"`
	Unsent       bool              `json:"report_unsent,omitempty"`
	SelfUpdate   *SelfUpdate       `json:"self_update,omitempty"`
	Window       string            `json:"maintenance_window"`
	Failures     int               `json:"consecutive_failures,omitempty"`
	// NotBefore is set while the repository's Retry-After holds: no
	// check before then ("once" defers, "run" waits).
	NotBefore time.Time `json:"not_before,omitzero"`
	// ReleaseDates is the newest accepted Release Date per source.
	ReleaseDates map[string]time.Time `json:"release_dates,omitempty"`
	// ReleaseDate is what the reports carry (state.State.ReleaseDate).
	ReleaseDate time.Time `json:"release_date,omitzero"`
	// FailedUpdates are the versions held back after a rollback or
	// waiting for the backoff of a failed attempt.
	FailedUpdates []FailedUpdate `json:"failed_updates,omitempty"`
}

// Status returns what the agent knows, without contacting anything.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{Device: a.deviceID, Architecture: a.cfg.Architecture, LastCheck: a.st.LastCheck, LastAttempt: a.st.LastAttempt,
		Result: a.st.Result, Error: a.st.Error, Pending: a.st.Pending, Target: a.st.Target, Seq: a.st.Seq,
		Unsent: a.st.Unsent, SelfUpdate: a.st.SelfUpdate, Window: a.cfg.Window.String(), Failures: a.st.Failures,
		Installed: map[string]string{}, ReleaseDates: map[string]time.Time{}, NotBefore: a.notBefore(),
		ReleaseDate: a.releaseDate(), FailedUpdates: a.st.FailedUpdates}
	for _, src := range a.sources {
		s.Sources = append(s.Sources, src.String())
		if ss := a.st.Sources[src.Key()]; ss != nil && !ss.ReleaseDate.IsZero() {
			s.ReleaseDates[src.Key()] = ss.ReleaseDate
		}
	}
	if inv, err := a.inventory(); err == nil {
		s.Installed = a.managedVersions(inv, a.st.Managed)
	}
	return s
}

// NotBefore returns the time before which the repository asked not to be
// contacted again (its Retry-After, persisted across runs), or the zero
// time when that time has passed or there was none.
func (a *Agent) NotBefore() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.notBefore()
}

func (a *Agent) notBefore() time.Time {
	if nb := a.st.RetryAfter; nb.After(a.opts.Now()) {
		return nb
	}
	return time.Time{}
}

// NextDelay returns how long to wait before the next check after o:
// poll_interval plus a random part of poll_jitter; after failures an
// exponential backoff from 30 s (capped by max_backoff, with jitter); no
// later than when a waiting update may be tried again or the maintenance
// window opens; never less than the server's Retry-After.
func (a *Agent) NextDelay(o *Outcome) time.Duration {
	a.mu.Lock()
	failures := a.st.Failures
	a.mu.Unlock()
	d := a.cfg.PollInterval + time.Duration(a.rand()*float64(a.cfg.PollJitter))
	if o.Result == state.ResultFailed && failures > 0 {
		d = a.jittered(backoff(30*time.Second, failures, a.cfg.MaxBackoff))
	}
	now := a.opts.Now()
	if o.Result == state.ResultDeferred && len(o.Pending) > 0 && a.cfg.Window.Set {
		if open := a.cfg.Window.Next(now).Sub(now); open > 0 && open < d {
			d = open + time.Duration(a.rand()*float64(a.cfg.PollJitter))
		}
	}
	if !o.NextAttempt.IsZero() {
		if next := o.NextAttempt.Sub(now); next > 0 && next < d {
			d = next
		}
	}
	if o.RetryAfter > d {
		d = o.RetryAfter
	}
	return d
}

// Reporter receives state reports (the MQTT reporter, or a test double).
type Reporter interface {
	// Report queues s, replacing any report not sent yet.
	Report(s state.State)
}

// Run checks on the poll schedule until ctx ends, handing each outcome's
// state to rep (nil: no reporting), and re-sending the state as a
// heartbeat every Heartbeat — also while a cycle runs, however long it
// takes.
func (a *Agent) Run(ctx context.Context, rep Reporter) error {
	send := func() {
		if rep == nil {
			return
		}
		s, err := a.NewState("")
		if err != nil {
			a.opts.Logf("report: %v", err)
			return
		}
		rep.Report(s)
	}
	// A Retry-After from before a restart (or from "once") still holds.
	if nb := a.NotBefore(); !nb.IsZero() {
		wait := nb.Sub(a.opts.Now())
		a.opts.Logf("the repository asked not to be contacted before %s: first check in %s", nb.Format(time.RFC3339), wait.Round(time.Second))
		send()
		for wait > 0 {
			step := min(wait, a.cfg.Heartbeat)
			if err := a.opts.Sleep(ctx, step); err != nil {
				return nil
			}
			if wait -= step; wait > 0 {
				send()
			}
		}
	}
	for {
		o := a.onceBeating(ctx, send)
		if ctx.Err() != nil {
			return nil
		}
		send()
		if a.opts.AfterCycle != nil {
			a.opts.AfterCycle()
		}
		wait := a.NextDelay(o)
		a.opts.Logf("next check in %s", wait.Round(time.Second))
		for wait > 0 {
			step := min(wait, a.cfg.Heartbeat)
			if err := a.opts.Sleep(ctx, step); err != nil {
				return nil
			}
			wait -= step
			if wait > 0 {
				send()
			}
		}
	}
}

// onceBeating runs one cycle in a goroutine of its own and sends the
// heartbeat every Heartbeat until it ends: a cycle stuck in a request or
// an install never silences the device's reports.
func (a *Agent) onceBeating(ctx context.Context, send func()) *Outcome {
	done := make(chan *Outcome, 1)
	go func() { done <- a.Once(ctx) }()
	tick := time.NewTicker(a.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case o := <-done:
			return o
		case <-tick.C:
			send()
		}
	}
}
