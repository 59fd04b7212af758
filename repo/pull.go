package repo

import (
	"context"
	"fmt"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// PullOptions refine Pull.
type PullOptions struct {
	// Selection narrows the package lists pulled into (reprepro's -C, -A
	// and -T); a component or architecture a distribution lacks is
	// simply not pulled into there.
	Selection Selection
	// Check only computes what would be done (checkpull).
	Check bool
}

// Pull actions of a PullItem, as reprepro's checkpull tells them.
const (
	PullAdd     = "add"     // newly installed
	PullUpgrade = "upgrade" // replaces the version in use (or, after "-", an older one)
	PullKeep    = "keep"    // the version in use stays
	PullDelete  = "delete"  // removed: no rule offers it any more ("-")
	PullSkip    = "skip"    // offered but not added
)

// PullItem is what pull decides for one package name of one package list.
type PullItem struct {
	Action  string `json:"action"`
	Package string `json:"package"`
	// OldVersion is the version in use before ("" when none).
	OldVersion string `json:"old_version,omitempty"`
	// Version is the version installed by PullAdd and PullUpgrade.
	Version string `json:"version,omitempty"`
	// Best is the newest version the rules offered, for PullKeep,
	// PullDelete and PullSkip ("" when none).
	Best string `json:"best,omitempty"`
	// Rule and From name the rule and distribution Version comes from.
	Rule string `json:"rule,omitempty"`
	From string `json:"from,omitempty"`
	// Files are the pool files Version needs.
	Files []string `json:"files,omitempty"`

	src   Entry // the pulled entry (PullAdd, PullUpgrade)
	inUse *Entry
}

// PullTarget is the decisions for one package list pulled into.
type PullTarget struct {
	Target Target     `json:"target"`
	Items  []PullItem `json:"items"`
}

// PullResult reports what Pull did (with Check: would do).
type PullResult struct {
	Result
	// Targets are the package lists pulled into, in reprepro's order:
	// distributions in configuration order, each one's lists in reverse
	// configuration order (as reprepro prints them).
	Targets []PullTarget
}

// Pull fills the distributions named (all that have a Pull field when
// none is named) from other distributions of the same repository, as
// "reprepro pull" does. Each word of a distribution's Pull field names a
// paragraph of conf/pulls, or is "-": every package of the list is then
// to be deleted unless a rule after the "-" offers it (or its FilterList
// says hold).
//
// Per package list and name, starting from the version in use, a rule
// offering a newer version (after FilterList, FilterSrcList and
// FilterFormula) replaces it; an older or equal one changes nothing
// (only after "-" can an older version come back). The same pool files
// are used; stanzas are copied verbatim; Limit applies as for copy.
//
// Everything is computed from the state before the command — a
// distribution pulled into is not seen by another pulling from it in the
// same command, as reprepro computes every list first — then changed in
// one database transaction and published all or nothing (pullPublish):
// an error anywhere (a FilterList "error", a signing key that cannot be
// loaded, a failed export) leaves the database, dists/ and the Log:
// files of every distribution as they were. Nothing to do writes nothing.
func (r *Repo) Pull(ctx context.Context, codenames []string, o PullOptions) (*PullResult, error) {
	rules, err := LoadPullRules(r.Conf.Dir)
	if err != nil {
		return nil, err
	}
	dists, err := r.pullDists(codenames, rules, o.Check)
	if err != nil {
		return nil, err
	}
	res := &PullResult{}
	err = r.view(func(tx *bolt.Tx) error {
		res.Targets, err = r.pullPlan(tx, dists, rules, o.Selection, r.opts.Warn)
		return err
	})
	if err != nil || o.Check || !pullChanges(res.Targets) {
		return res, err // nothing to change: nothing is written
	}
	for _, d := range dists {
		if _, err := r.PublishSigner(ctx, d.Codename); err != nil {
			return nil, fmt.Errorf("pull %s: %w", d.Codename, err)
		}
	}
	one, err := r.pullPublish(ctx, dists, func(tx *bolt.Tx, out *Result) ([]string, error) {
		plans, err := r.pullPlan(tx, dists, rules, o.Selection, func(string) {}) // warned above
		if err != nil {
			return nil, err
		}
		res.Targets = plans
		return r.pullApply(tx, plans, out)
	})
	if one != nil {
		res.Result = *one
	}
	return res, err
}

// pullChanges reports whether plans change anything.
func pullChanges(plans []PullTarget) bool {
	for _, p := range plans {
		for _, it := range p.Items {
			switch it.Action {
			case PullAdd, PullUpgrade, PullDelete:
				return true
			}
		}
	}
	return false
}

// pullDists returns the distributions to pull into, in configuration
// order, and checks their Pull fields and the rules they name.
func (r *Repo) pullDists(codenames []string, rules map[string]*PullRule, check bool) ([]*Distribution, error) {
	named := map[string]bool{}
	for _, c := range codenames {
		d, err := r.Conf.Distribution(c)
		if err != nil {
			return nil, err
		}
		if len(d.Pull) == 0 {
			return nil, fmt.Errorf("pull %s: %w: the distribution has no Pull field (%s:%d); add \"Pull: RULE\" naming a paragraph of conf/pulls", c, ErrConfig, d.File, d.Line)
		}
		named[d.Codename] = true
	}
	var dists []*Distribution
	for _, d := range r.Conf.Distributions {
		if len(d.Pull) == 0 || (len(codenames) > 0 && !named[d.Codename]) {
			continue
		}
		if d.ReadOnly && !check {
			return nil, fmt.Errorf("pull %s: %w (ReadOnly in %s:%d)", d.Codename, ErrReadOnly, d.File, d.Line)
		}
		for _, name := range d.Pull {
			if name == "-" {
				continue
			}
			rule := rules[name]
			if rule == nil {
				return nil, fmt.Errorf("%s: %w: Pull: no rule %q in conf/pulls", d.PullAt, ErrConfig, name)
			}
			if _, err := r.Conf.Distribution(rule.From); err != nil {
				return nil, fmt.Errorf("%s:%d: %w: From: pull rule %q names distribution %q, which conf/distributions does not have", rule.File, rule.Line, ErrConfig, rule.Name, rule.From)
			}
		}
		dists = append(dists, d)
	}
	return dists, nil
}

// pullPlan decides, from the state tx shows, what every selected package
// list of dists gets.
func (r *Repo) pullPlan(tx *bolt.Tx, dists []*Distribution, rules map[string]*PullRule, sel Selection, warn func(string)) ([]PullTarget, error) {
	var out []PullTarget
	for _, d := range dists {
		ts := d.Targets()
		for i := len(ts) - 1; i >= 0; i-- {
			t := ts[i]
			if !sel.matches(t) {
				continue
			}
			items, err := r.pullTarget(tx, d, t, rules, warn)
			if err != nil {
				return nil, fmt.Errorf("pull %s: %w", t, err)
			}
			out = append(out, PullTarget{Target: t, Items: items})
		}
	}
	return out, nil
}

// pullCand is what pull knows of one name while it reads the rules: the
// version in use, the newest offered, which of them is chosen, and
// whether it is to be deleted.
type pullCand struct {
	inUse   *Entry
	best    string // newest version offered ("" when none)
	chosen  *Entry // the offered entry chosen (nil: the one in use)
	rule    *PullRule
	deleted bool
}

// version is the version chosen.
func (c *pullCand) version() string {
	if c.chosen != nil {
		return c.chosen.Version
	}
	return c.inUse.Version
}

// pullTarget applies d's Pull field to target t.
func (r *Repo) pullTarget(tx *bolt.Tx, d *Distribution, t Target, rules map[string]*PullRule, warn func(string)) ([]PullItem, error) {
	if tx == nil {
		return nil, nil // no database yet: no packages anywhere
	}
	have, err := listTarget(tx, t, nil, nil)
	if err != nil {
		return nil, err
	}
	cands := map[string]*pullCand{}
	for i := range have {
		e := &have[i]
		if c := cands[e.Package]; c == nil || looseVersion(e.Version).Compare(looseVersion(c.inUse.Version)) > 0 {
			cands[e.Package] = &pullCand{inUse: e}
		}
	}
	for _, name := range d.Pull {
		if name == "-" {
			for _, c := range cands {
				c.deleted = true
			}
			continue
		}
		rule := rules[name]
		from, _ := r.Conf.Distribution(rule.From)
		for _, st := range rule.sources(from, t) {
			es, err := listTarget(tx, st, nil, nil)
			if err != nil {
				return nil, err
			}
			for i := range es {
				e := &es[i]
				if !t.IsSource() && e.Architecture != "all" && e.Architecture != t.Arch {
					continue // reprepro's pull skips these too
				}
				if err := pullTry(t, rule, e, cands, warn); err != nil {
					return nil, err
				}
			}
		}
	}
	names := make([]string, 0, len(cands))
	for n := range cands {
		names = append(names, n)
	}
	sort.Strings(names)
	items := make([]PullItem, 0, len(names))
	for _, n := range names {
		c := cands[n]
		it := PullItem{Package: n, Best: c.best, inUse: c.inUse}
		if c.inUse != nil {
			it.OldVersion = c.inUse.Version
		}
		switch {
		case c.deleted && c.inUse != nil:
			it.Action = PullDelete
		case c.deleted:
			it.Action = PullSkip
		case c.chosen == nil:
			it.Action = PullKeep
		default:
			it.Action, it.Best = PullUpgrade, ""
			if c.inUse == nil {
				it.Action = PullAdd
			}
			it.Version, it.Rule, it.From = c.chosen.Version, c.rule.Name, c.rule.From
			it.Files, it.src = c.chosen.Files(), *c.chosen
		}
		items = append(items, it)
	}
	return items, nil
}

// sources lists the package lists of from that rule pulls into t.
func (rule *PullRule) sources(from *Distribution, t Target) []Target {
	comps := rule.Components
	switch t.Type {
	case UDeb:
		comps = rule.UDebComponents
		if comps == nil {
			comps = from.UDebComponents
		}
	case DDeb:
		comps = rule.DDebComponents
		if comps == nil {
			comps = from.DDebComponents
		}
	default:
		if comps == nil {
			comps = from.Components
		}
	}
	if !slices.Contains(comps, t.Component) {
		return nil
	}
	archs := rule.Architectures
	if archs == nil {
		for _, a := range from.Architectures {
			archs = append(archs, Mapping{a, a})
		}
		if from.HasSource && !slices.Contains(from.Architectures, SourceArch) {
			archs = append(archs, Mapping{SourceArch, SourceArch})
		}
	}
	var out []Target
	for _, a := range archs {
		if a.To != t.Arch {
			continue
		}
		st := Target{Codename: from.Codename, Component: t.Component, Arch: a.From, Type: t.Type}
		if from.hasTarget(st) {
			out = append(out, st)
		}
	}
	return out
}

// Decisions of a rule about one offered package (reprepro's
// upgrade_decision).
const (
	pullYes = iota
	pullNo
	pullLoudNo
	pullHold
)

// pullTry considers the offer e of rule for target t, as reprepro's
// upgradelist does.
func pullTry(t Target, rule *PullRule, e *Entry, cands map[string]*pullCand, warn func(string)) error {
	c := cands[e.Package]
	v := looseVersion(e.Version)
	if c == nil {
		dec, err := rule.decide(t, e, false)
		if err != nil || !pullDecided(t, e, dec, warn) {
			return err
		}
		cands[e.Package] = &pullCand{chosen: e, rule: rule, best: e.Version}
		return nil
	}
	cmp := v.Compare(looseVersion(c.version()))
	if cmp <= 0 && !c.deleted {
		// Nothing newer than what is chosen: only remember the best offer.
		if c.best == "" || v.Compare(looseVersion(c.best)) > 0 {
			if c.chosen == nil || cmp > 0 {
				c.best = e.Version
			}
		}
		return nil
	}
	dec, err := rule.decide(t, e, c.inUse != nil)
	if err != nil {
		return err
	}
	if !pullDecided(t, e, dec, warn) {
		if dec == pullHold {
			c.deleted = false
		}
		return nil
	}
	if cmp == 0 {
		// The version chosen already: keep it.
		if c.deleted && c.chosen == nil {
			c.best = e.Version
		}
		c.deleted = false
		return nil
	}
	if c.chosen != nil && c.inUse != nil && v.Compare(looseVersion(c.inUse.Version)) == 0 {
		// Back to the version in use.
		if c.deleted {
			c.best = e.Version
		}
		c.chosen, c.rule, c.deleted = nil, nil, false
		return nil
	}
	c.chosen, c.rule, c.best, c.deleted = e, rule, e.Version, false
	return nil
}

// pullDecided reports whether dec installs e, warning about a loud no.
func pullDecided(t Target, e *Entry, dec int, warn func(string)) bool {
	if dec == pullLoudNo {
		warn(fmt.Sprintf("Loudly rejecting '%s' '%s' to enter '%s'!", e.Package, e.Version, t))
	}
	return dec == pullYes
}

// decide applies the rule's FilterList (or FilterSrcList) and then its
// FilterFormula to the offer e for t; present says whether t has the
// package already.
func (rule *PullRule) decide(t Target, e *Entry, present bool) (int, error) {
	fl, name, version := rule.FilterList, e.Package, e.Version
	switch {
	case t.IsSource():
		if rule.FilterSrcList != nil {
			fl = rule.FilterSrcList
		}
	case fl == nil && rule.FilterSrcList != nil:
		fl = rule.FilterSrcList
		name, version = entrySource(*e)
	}
	dec := pullYes
	if fl != nil {
		switch fl.action(name, version) {
		case "deinstall", "purge":
			return pullNo, nil
		case "warning":
			return pullLoudNo, nil
		case "hold":
			dec = pullHold
		case "error":
			return 0, fmt.Errorf("%w: pull rule %s (%s:%d) offers %s %s, which its filter list marks error", ErrConfig, rule.Name, rule.File, rule.Line, e.Package, e.Version)
		case "upgradeonly":
			if !present {
				return pullNo, nil
			}
		}
	}
	if rule.Filter != nil {
		m := *e
		m.Target = t
		if !rule.Filter.Match(&m) {
			return pullNo, nil
		}
	}
	return dec, nil
}

// pullApply makes the changes plans decided, recording them in res, and
// returns the pool files left without a reference.
func (r *Repo) pullApply(tx *bolt.Tx, plans []PullTarget, res *Result) ([]string, error) {
	var unref []string
	for _, p := range plans {
		d, err := r.Conf.Distribution(p.Target.Codename)
		if err != nil {
			return nil, err
		}
		for _, it := range p.Items {
			switch it.Action {
			case PullDelete:
				if unref, err = removeAndNote(tx, *it.inUse, res, unref); err != nil {
					return nil, err
				}
			case PullAdd, PullUpgrade:
				if it.inUse != nil && looseVersion(it.Version).Compare(looseVersion(it.OldVersion)) < 0 {
					// A downgrade after "-": the newer versions go first.
					r.opts.Warn(fmt.Sprintf("downgrading '%s' from '%s' to '%s' in '%s'!", it.Package, it.OldVersion, it.Version, p.Target))
					newer, err := listTarget(tx, p.Target, []string{it.Package}, func(e *Entry) bool {
						return looseVersion(e.Version).Compare(looseVersion(it.Version)) > 0
					})
					if err != nil {
						return nil, err
					}
					for _, e := range newer {
						if unref, err = removeAndNote(tx, e, res, unref); err != nil {
							return nil, err
						}
					}
				}
				gone, err := r.putEntry(tx, d, p.Target, it.src, res)
				if err != nil {
					return nil, fmt.Errorf("pull %s from %s into %s: %w", it.src, it.From, p.Target, err)
				}
				unref = append(unref, gone...)
			}
		}
	}
	return unref, nil
}
