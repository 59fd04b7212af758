package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/deb"
)

// plan decides what to install and installs it: fctx bounds the
// downloads (the cycle's fetch_timeout), ctx the installs.
func (a *Agent) plan(ctx, fctx context.Context, inv *Inventory, cands []Candidate) *Outcome {
	best := a.best(cands)
	managed, names := a.managed(inv, best)
	now := a.opts.Now()
	seen := map[string]state.Candidate{}
	defer func() { a.cyc.Candidates = seen }()
	ch, refused := a.choose(fctx, names, managed, best, seen, now)
	if refused != nil {
		return refused
	}
	if len(ch.ups) == 0 {
		return ch.noUpdate(managed)
	}
	target := map[string]string{}
	for _, u := range ch.ups {
		target[u.cand.Package] = u.cand.Version
		ch.pending[u.cand.Package] = u.cand.Version
	}
	if !a.cfg.Window.Open(now) {
		return &Outcome{Result: state.ResultDeferred, Pending: ch.pending, Installed: managed,
			Err: fmt.Errorf("outside the maintenance window %s; next opening %s", a.cfg.Window, a.cfg.Window.Next(now).Format("2006-01-02 15:04"))}
	}
	// Download and verify everything before touching dpkg.
	if err := a.fetchAll(fctx, ch.ups, cands); err != nil {
		return &Outcome{Result: state.ResultFailed, Err: err, Target: target, Installed: managed, attempted: true, undelivered: true}
	}
	return a.install(ctx, ch.ups, &Outcome{Result: state.ResultUpdated, Target: target, Installed: managed, attempted: true})
}

// managed returns the managed packages with their installed versions ("" when
// not installed), and their names sorted: the configured packages, or else
// every installed package the repository offers.
func (a *Agent) managed(inv *Inventory, best map[string]Candidate) (map[string]string, []string) {
	managed := map[string]string{}
	if len(a.cfg.Packages) > 0 {
		for _, p := range a.cfg.Packages {
			managed[p] = inv.Version(p)
		}
	} else {
		for name := range best {
			if v := inv.Version(name); v != "" {
				managed[name] = v
			}
		}
	}
	names := make([]string, 0, len(managed))
	for n := range managed {
		names = append(names, n)
	}
	sort.Strings(names)
	return managed, names
}

// choice is what choose decided for the managed packages: the updates to
// make, those held back after a rollback, those waiting for their next
// attempt after a failure, and every newer version not installed now
// (waiting or phased out) by package.
type choice struct {
	ups           []*update
	held, waiting []*FailedUpdate
	pending       map[string]string
}

// choose decides, package by package, whether the newest candidate is an
// update to make now; it notes each newer candidate in seen. A candidate
// that failed verification ends the cycle: its outcome is returned.
func (a *Agent) choose(fctx context.Context, names []string, managed map[string]string, best map[string]Candidate, seen map[string]state.Candidate, now time.Time) (*choice, *Outcome) {
	ch := &choice{pending: map[string]string{}}
	for _, name := range names {
		from := managed[name]
		c, ok := best[name]
		if !ok {
			if from == "" {
				a.opts.Logf("managed package %s is neither installed nor published", name)
			}
			continue
		}
		if from != "" {
			cmp, err := deb.CompareVersions(c.Version, from)
			if err != nil || cmp <= 0 {
				// up to date, or the repository holds an older version:
				// never downgrade on our own.
				if cmp == 0 && c.Err == nil {
					a.keepForRollback(fctx, c)
				}
				continue
			}
		}
		// New installs are not phased (apt phases upgrades only); a
		// device in a group the rollout names is eligible whatever its
		// draw.
		phasedOut := from != "" && PhasedOut(c, a.machineID) && !state.InGroups(a.cfg.Groups, c.Groups)
		a.noteCandidate(seen, c, !phasedOut)
		if c.Err != nil {
			return nil, &Outcome{Result: state.ResultFailed, Err: fmt.Errorf("refusing %s %s: %w", c.Package, c.Version, c.Err), Installed: managed,
				Target: map[string]string{c.Package: c.Version}}
		}
		if h, w := a.failedGate(c, now); h != nil {
			a.opts.Logf("%s %s rolled back before: held back", c.Package, c.Version)
			ch.held = append(ch.held, h)
			continue
		} else if w != nil {
			a.opts.Logf("%s %s failed before: next attempt after %s", c.Package, c.Version, w.NotBefore.Format(time.RFC3339))
			ch.waiting = append(ch.waiting, w)
			ch.pending[c.Package] = c.Version
			continue
		}
		if phasedOut {
			a.opts.Logf("%s %s is phased (%d%%) and this device is not in the cohort yet", c.Package, c.Version, c.Phased)
			ch.pending[c.Package] = c.Version
			continue
		}
		ch.ups = append(ch.ups, &update{cand: c, from: from})
	}
	return ch, nil
}

// noUpdate is the outcome of a cycle with nothing to install: up to date,
// deferred (phased out or waiting, with the earliest next attempt) or held
// back (after a rollback).
func (ch *choice) noUpdate(managed map[string]string) *Outcome {
	o := &Outcome{Result: state.ResultUpToDate, Installed: managed}
	if len(ch.pending) > 0 {
		o.Result, o.Pending = state.ResultDeferred, ch.pending
	}
	if len(ch.waiting) > 0 {
		o.Err = waitingError(ch.waiting)
		for _, w := range ch.waiting {
			if o.NextAttempt.IsZero() || w.NotBefore.Before(o.NextAttempt) {
				o.NextAttempt = w.NotBefore
			}
		}
	}
	if len(ch.held) > 0 {
		o.Result, o.Err, o.Target = state.ResultHeldBack, heldBackError(ch.held), map[string]string{}
		for _, h := range ch.held {
			o.Target[h.Package] = h.Version
		}
	}
	return o
}

// fetchAll downloads and verifies each update's .deb and finds the .deb
// of the version it replaces (for a rollback): cached, or else fetched
// now when the repository still lists it (cands) — a device whose
// installed version came from elsewhere, or whose first check already
// found an update, has none cached yet.
func (a *Agent) fetchAll(fctx context.Context, ups []*update, cands []Candidate) error {
	for _, u := range ups {
		p, err := a.fetchDeb(fctx, u.cand)
		if err != nil {
			return err
		}
		u.deb = p
		if u.from == "" {
			continue
		}
		if u.prev = a.cachedDeb(u.cand.Package, u.from); u.prev != "" {
			continue
		}
		for _, c := range cands {
			if c.Package == u.cand.Package && c.Version == u.from && c.Architecture == u.cand.Architecture && c.Err == nil {
				if prev, err := a.fetchDeb(fctx, c); err == nil {
					u.prev = prev
				} else {
					a.opts.Logf("cannot fetch %s %s for a rollback: %v", c.Package, c.Version, err)
				}
				break
			}
		}
	}
	return nil
}

// install applies the fetched updates, the agent's own package last and
// through a self-update, and completes o (result updated) with what
// happened.
func (a *Agent) install(ctx context.Context, ups []*update, o *Outcome) *Outcome {
	var self *update
	var normal []*update
	for _, u := range ups {
		if u.cand.Package == a.cfg.SelfPackage {
			self = u
		} else {
			normal = append(normal, u)
		}
	}
	// A dpkg lock held by someone else is no failure of the update:
	// nothing was touched, and the next cycle finds the .deb cached.
	if len(normal) > 0 {
		if res, err := a.apply(ctx, normal); err != nil {
			o.Result, o.Err, o.attempted = res, err, !errors.Is(err, ErrLocked)
			return o
		}
	}
	if self != nil {
		su, err := a.startSelfUpdate(ctx, self)
		if err != nil {
			o.Result, o.Err, o.attempted = state.ResultFailed, err, !errors.Is(err, ErrLocked)
			return o
		}
		o.SelfUpdate = su
		if len(normal) == 0 {
			// its result is the next agent's to report
			o.Result, o.attempted = state.ResultDeferred, false
			o.Pending = map[string]string{self.cand.Package: self.cand.Version}
		}
	}
	a.pruneDebs()
	return o
}
