package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// Fleet is what the controller reads of the fleet: the numbers of one
// version (fleet.Store implements it).
type Fleet interface {
	VersionStats(ctx context.Context, q fleet.VersionQuery) (fleet.VersionStats, error)
}

// Publisher is what the controller changes in the repository, always
// through its signed, atomic publish path. RepoPublisher implements it.
type Publisher interface {
	// Phase sets the Phased-Update-Percentage of one version of a
	// package in a distribution and the rollout groups offered it
	// whatever the percentage (none: the field goes), in one publish;
	// setting what it has must succeed.
	Phase(ctx context.Context, distribution, pkg, version string, percent int, groups []string) error
	// Pin keeps a version published whatever Limit says; Unpin ends it.
	Pin(ctx context.Context, distribution, pkg, version, reason string) error
	Unpin(ctx context.Context, distribution, pkg, version string) error
	// Versions lists the published versions of a package.
	Versions(ctx context.Context, distribution, pkg string) ([]string, error)
	// Republish publishes the package of version good again, payload
	// untouched, as version.
	Republish(ctx context.Context, distribution, pkg, good, version string) error
}

// Controller walks running rollouts through their plans: each Tick reads
// the fleet's numbers, decides (Evaluate), publishes the new percentage
// and records the decision. Only the holder of the store's lease acts, so
// several servers may run a controller on one store.
type Controller struct {
	Store     Store
	Fleet     Fleet
	Publisher Publisher
	// Holder names this controller in the lease (host and process).
	Holder string
	// LeaseTTL is how long a lease lasts without renewal; Tick renews
	// it. Default 1 minute: run Tick more often than that.
	LeaseTTL time.Duration
	Now      func() time.Time
	// OnDecision, if set, is called with the rollout and each decision
	// once it is stored — every evaluation of a running rollout (holds
	// included, with the numbers they were made on) and every start,
	// pause, resume, abort and revert — so that a dashboard, metrics or a
	// webhook (Webhook.Notify) follow the controller. It runs on the
	// controller's goroutine: it must not block.
	OnDecision func(r Rollout, d Decision)
}

func (c *Controller) observe(r *Rollout, d Decision) {
	if c.OnDecision != nil {
		c.OnDecision(*r, d)
	}
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Time{}
}

// Start opens a rollout of r's version at the plan's first step: it
// records the previous version's numbers as the baseline of the relative
// failure rule, publishes the first percentage, and stores the rollout
// with its first decision.
func (c *Controller) Start(ctx context.Context, r Rollout) (*Rollout, error) {
	if err := r.Plan.Validate(); err != nil {
		return nil, err
	}
	if r.Distribution == "" || r.Package == "" || r.Version == "" {
		return nil, fmt.Errorf("%w: a rollout needs a distribution, a package and a version", ErrPlan)
	}
	now := c.now()
	r.State, r.Step, r.Started, r.StepStarted, r.Reason = Running, 0, now, now, ""
	if r.Previous != "" {
		base, err := c.Fleet.VersionStats(ctx, fleet.VersionQuery{Package: r.Package, Version: r.Previous, StuckChecks: r.Plan.Rules.StuckPolls})
		if err != nil {
			return nil, fmt.Errorf("rollout %s: baseline of %s: %w", r.Key(), r.Previous, err)
		}
		r.Baseline = base
	}
	// Refuse before publishing anything (Create checks again).
	if old, err := c.Store.Get(ctx, r.Key()); err == nil && !old.Closed() {
		return nil, fmt.Errorf("%w: rollout %s is %s; abort it first", ErrExists, r.Key(), old.State)
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if r.Previous != "" {
		if err := c.Publisher.Pin(ctx, r.Distribution, r.Package, r.Previous, "rollout "+r.Key()); err != nil {
			return nil, fmt.Errorf("rollout %s: keep %s for a revert: %w", r.Key(), r.Previous, err)
		}
	}
	pct := r.Plan.Steps[0].Percent
	if err := c.Publisher.Phase(ctx, r.Distribution, r.Package, r.Version, pct, r.Groups()); err != nil {
		if r.Previous != "" {
			c.Publisher.Unpin(ctx, r.Distribution, r.Package, r.Previous)
		}
		return nil, fmt.Errorf("rollout %s: publish %d%%: %w", r.Key(), pct, err)
	}
	d := Decision{Time: now, Rollout: r.Key(), Action: Hold, From: 0, To: pct,
		Reason: fmt.Sprintf("started at %s with plan %s", r.Plan.Steps[0].Name(), r.Plan)}
	if err := c.Store.Create(ctx, &r, d); err != nil {
		return nil, err
	}
	c.observe(&r, d)
	return &r, nil
}

// Tick evaluates every running rollout once, if this controller holds the
// lease, and returns the decisions that changed something (advance,
// complete, halt). held reports whether it held the lease.
func (c *Controller) Tick(ctx context.Context) (decisions []Decision, held bool, err error) {
	ttl := c.LeaseTTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	held, err = c.Store.Lease(ctx, c.Holder, c.now(), ttl)
	if err != nil || !held {
		return nil, held, err
	}
	list, err := c.Store.List(ctx)
	if err != nil {
		return nil, true, err
	}
	var errs []error
	for i := range list {
		r := &list[i]
		if r.State != Running {
			continue
		}
		d, err := c.step(ctx, r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if d.Action != Hold {
			decisions = append(decisions, d)
		}
	}
	return decisions, true, errors.Join(errs...)
}

// step evaluates one running rollout and carries out the decision: the
// percentage is published before the new state is stored, so a crash in
// between repeats the (idempotent) publish on the next tick.
func (c *Controller) step(ctx context.Context, r *Rollout) (Decision, error) {
	vs, err := c.Fleet.VersionStats(ctx, fleet.VersionQuery{Package: r.Package, Version: r.Version, StuckChecks: r.Plan.Rules.StuckPolls})
	if err != nil {
		return Decision{}, fmt.Errorf("rollout %s: %w", r.Key(), err)
	}
	d := Evaluate(r, statsOf(vs, r.Baseline), c.now())
	if d.Action == Hold {
		c.observe(r, d)
		return d, nil
	}
	next := *r
	Apply(&next, d)
	if next.Percent() != r.Percent() || !slices.Equal(next.Groups(), r.Groups()) {
		if err := c.Publisher.Phase(ctx, r.Distribution, r.Package, r.Version, next.Percent(), next.Groups()); err != nil {
			return d, fmt.Errorf("rollout %s: publish %d%%: %w", r.Key(), d.To, err)
		}
	}
	Apply(r, d)
	if err := c.Store.Save(ctx, r, d); err != nil {
		return d, c.settle(ctx, r.Key(), err)
	}
	c.observe(r, d)
	switch {
	case d.Action == Complete:
		return d, c.unpin(ctx, r)
	case d.Action == Halt && r.Plan.Rules.AutoRevert && r.Previous != "":
		if _, err := c.revert(ctx, r, "automatic: "+d.Reason); err != nil {
			return d, err
		}
	}
	return d, nil
}

// unpin releases the last good version once the rollout is closed.
func (c *Controller) unpin(ctx context.Context, r *Rollout) error {
	if r.Previous == "" {
		return nil
	}
	if err := c.Publisher.Unpin(ctx, r.Distribution, r.Package, r.Previous); err != nil {
		return fmt.Errorf("rollout %s: release %s: %w", r.Key(), r.Previous, err)
	}
	return nil
}

// Revert rolls the fleet forward to the last good version: its package
// is published again, payload untouched, under a version just above the
// bad one (1.4.1 → 1.4.1+revert1), at 100 %, so that every apt client —
// with lampi-agent or without — upgrades to it. The bad version stays at
// phase 0. The rollout is closed as reverted.
func (c *Controller) Revert(ctx context.Context, key, reason string) (*Rollout, error) {
	r, err := c.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if r.State == Reverted {
		return nil, fmt.Errorf("%w: rollout %s was reverted already", ErrState, key)
	}
	if r.Previous == "" {
		return nil, fmt.Errorf("%w: rollout %s names no previous version to revert to", ErrState, key)
	}
	if r.State != Halted {
		from := r.Percent()
		if err := c.Publisher.Phase(ctx, r.Distribution, r.Package, r.Version, 0, nil); err != nil {
			return nil, fmt.Errorf("rollout %s: publish 0%%: %w", key, err)
		}
		r.State, r.Reason = Halted, "reverting: "+reason
		d := Decision{Time: c.now(), Rollout: key, Action: Halt, From: from, To: 0, Reason: r.Reason}
		if err := c.Store.Save(ctx, r, d); err != nil {
			return nil, err
		}
		c.observe(r, d)
	}
	return c.revert(ctx, r, reason)
}

// revert publishes the revert of a halted rollout and closes it.
func (c *Controller) revert(ctx context.Context, r *Rollout, reason string) (*Rollout, error) {
	have, err := c.Publisher.Versions(ctx, r.Distribution, r.Package)
	if err != nil {
		return nil, err
	}
	v := RevertVersion(r.Version, have)
	if err := c.Publisher.Republish(ctx, r.Distribution, r.Package, r.Previous, v); err != nil {
		return nil, fmt.Errorf("rollout %s: revert to %s as %s: %w", r.Key(), r.Previous, v, err)
	}
	r.State, r.Reason, r.RevertedAs = Reverted, reason, v
	d := Decision{Time: c.now(), Rollout: r.Key(), Action: Revert, From: 0, To: 100,
		Reason: fmt.Sprintf("reverted to %s, published as %s: %s", r.Previous, v, reason)}
	if err := c.Store.Save(ctx, r, d); err != nil {
		return nil, err
	}
	c.observe(r, d)
	return r, c.unpin(ctx, r)
}

// RevertVersion is the version a revert of bad publishes: bad+revertN
// with the smallest N not in have. It sorts above bad and below any
// later release (1.4.1+revert1 < 1.4.2, and < 1.4.1.1).
func RevertVersion(bad string, have []string) string {
	taken := map[string]bool{}
	for _, v := range have {
		taken[v] = true
	}
	for n := 1; ; n++ {
		if v := fmt.Sprintf("%s+revert%d", bad, n); !taken[v] {
			return v
		}
	}
}

// statsOf turns the fleet's numbers into Evaluate's, with the baseline.
func statsOf(vs, base fleet.VersionStats) Stats {
	return Stats{Devices: vs.Devices, Eligible: vs.Eligible, Updated: vs.Updated, Attempted: vs.Attempted,
		Failed: vs.Failed, HealthFailed: vs.HealthFailed, Stuck: vs.Stuck,
		PrevAttempted: base.Attempted, PrevFailed: base.Failed}
}

// Pause keeps a running rollout at its percentage until Resume.
func (c *Controller) Pause(ctx context.Context, key, reason string) (*Rollout, error) {
	return c.change(ctx, key, func(r *Rollout) (Decision, error) {
		if r.State != Running {
			return Decision{}, fmt.Errorf("%w: rollout %s is %s, not running", ErrState, key, r.State)
		}
		r.State, r.Reason = Paused, reason
		p := r.Percent()
		return Decision{Action: Hold, From: p, To: p, Reason: "paused: " + reason}, nil
	})
}

// Resume lets a paused or halted rollout go on from its step: a halted
// one gets its step's percentage published again, and its soak starts
// over.
func (c *Controller) Resume(ctx context.Context, key, reason string) (*Rollout, error) {
	return c.change(ctx, key, func(r *Rollout) (Decision, error) {
		if r.State != Paused && r.State != Halted {
			return Decision{}, fmt.Errorf("%w: rollout %s is %s; only a paused or halted rollout resumes", ErrState, key, r.State)
		}
		from, fromGroups := r.Percent(), r.Groups()
		r.State, r.Reason, r.StepStarted = Running, "", c.now()
		to := r.Percent()
		if to != from || !slices.Equal(fromGroups, r.Groups()) {
			if err := c.Publisher.Phase(ctx, r.Distribution, r.Package, r.Version, to, r.Groups()); err != nil {
				return Decision{}, fmt.Errorf("rollout %s: publish %d%%: %w", key, to, err)
			}
		}
		return Decision{Action: Hold, From: from, To: to, Reason: "resumed: " + reason}, nil
	})
}

// Abort halts a rollout by hand: phase 0, nobody new takes the version.
func (c *Controller) Abort(ctx context.Context, key, reason string) (*Rollout, error) {
	return c.change(ctx, key, func(r *Rollout) (Decision, error) {
		if r.Closed() {
			return Decision{}, fmt.Errorf("%w: rollout %s is %s", ErrState, key, r.State)
		}
		from := r.Percent()
		if err := c.Publisher.Phase(ctx, r.Distribution, r.Package, r.Version, 0, nil); err != nil {
			return Decision{}, fmt.Errorf("rollout %s: publish 0%%: %w", key, err)
		}
		r.State, r.Reason = Halted, "aborted: "+reason
		return Decision{Action: Halt, From: from, To: 0, Reason: r.Reason}, nil
	})
}

// change applies a manual transition to the stored rollout and records
// it in the audit log.
func (c *Controller) change(ctx context.Context, key string, fn func(*Rollout) (Decision, error)) (*Rollout, error) {
	r, err := c.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	d, err := fn(r)
	if err != nil {
		return nil, err
	}
	d.Time, d.Rollout = c.now(), key
	if err := c.Store.Save(ctx, r, d); err != nil {
		return nil, c.settle(ctx, key, err)
	}
	c.observe(r, d)
	return r, nil
}

// settle follows a save refused with ErrConflict: what was published for
// the refused change gives way to the stored rollout's percentage, so
// that the repository says what the store says. It returns err, with
// what settling did.
func (c *Controller) settle(ctx context.Context, key string, err error) error {
	if !errors.Is(err, ErrConflict) {
		return err
	}
	cur, gerr := c.Store.Get(ctx, key)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	if cur.State == Reverted {
		return err // the revert published what it publishes
	}
	if perr := c.Publisher.Phase(ctx, cur.Distribution, cur.Package, cur.Version, cur.Percent(), cur.Groups()); perr != nil {
		return errors.Join(err, fmt.Errorf("rollout %s: publish the stored %d%% again: %w", key, cur.Percent(), perr))
	}
	return fmt.Errorf("%w; its %d%% is published again (try again, if this was a change by hand)", err, cur.Percent())
}

// ReaderFleet gives the controller the numbers of a fleet it can only
// read device by device, such as a running server's fleet API
// (fleet.APIClient): it walks every device once per question.
type ReaderFleet struct {
	Reader fleet.Reader
}

// VersionStats implements Fleet.
func (f ReaderFleet) VersionStats(ctx context.Context, q fleet.VersionQuery) (fleet.VersionStats, error) {
	devs, err := f.Reader.Devices(ctx, 0)
	if err != nil {
		return fleet.VersionStats{}, err
	}
	return fleet.CountVersion(devs, q), nil
}
