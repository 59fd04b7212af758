package repo

import (
	"context"
	"fmt"
	"sort"

	"github.com/lampi-pkg/lampi-pkg/deb"
	bolt "go.etcd.io/bbolt"
)

// writable returns the distribution if it may be changed.
func (r *Repo) writable(verb, codename string) (*Distribution, error) {
	d, err := r.Conf.Distribution(codename)
	if err != nil {
		return nil, err
	}
	if d.ReadOnly {
		return nil, fmt.Errorf("%s %s: %w (ReadOnly in %s:%d)", verb, codename, ErrReadOnly, d.File, d.Line)
	}
	return d, nil
}

// change runs one command that changes distribution d: under the write
// lock, fn makes its changes in one transaction, records them in res and
// returns the pool files it left without a reference; then the changes
// are logged (when log is set, as reprepro logs adds and removes) and d
// is published.
func (r *Repo) change(ctx context.Context, d *Distribution, log bool, fn func(tx *bolt.Tx, res *Result) ([]string, error)) (*Result, error) {
	return r.changeAll(ctx, []*Distribution{d}, log, fn)
}

// changeAll is change for a command that changes several distributions
// (move): each gets the log lines of its own changes and is published.
func (r *Repo) changeAll(ctx context.Context, dists []*Distribution, log bool, fn func(tx *bolt.Tx, res *Result) ([]string, error)) (*Result, error) {
	w, err := r.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	res := &Result{}
	var unref []string
	err = w.db.Update(func(tx *bolt.Tx) error {
		var err error
		unref, err = fn(tx, res)
		return err
	})
	if err != nil {
		return nil, err
	}
	if log {
		for _, d := range dists {
			r.log(d, logLines(d, res.Changes))
		}
	}
	return res, r.finish(ctx, w, dists, unref, res)
}

// removeEntry deletes one package version from its target and returns
// its pool files that lost their last reference.
func removeEntry(tx *bolt.Tx, e Entry) ([]string, error) {
	b, err := targetBucket(tx, e.Target, false)
	if err != nil || b == nil {
		return nil, err
	}
	if err := deletePkg(tx, b, e.Target, pkgKey(e.Package, e.Version)); err != nil {
		return nil, err
	}
	gone, err := dropEntryRefs(tx, e.Target, e.Package, e.Files())
	if err != nil {
		return nil, err
	}
	untracked, err := trackRemove(tx, e.Target, e.Package, e.Version, pkgValue(e.File, e.Stanza))
	return append(gone, untracked...), err
}

// newestOnly keeps the highest version of each package name.
func newestOnly(es []Entry) []Entry {
	best := map[string]int{}
	var order []string
	for i, e := range es {
		j, ok := best[e.Package]
		if !ok {
			best[e.Package] = i
			order = append(order, e.Package)
			continue
		}
		if looseVersion(e.Version).Compare(looseVersion(es[j].Version)) > 0 {
			best[e.Package] = i
		}
	}
	sort.Strings(order)
	out := make([]Entry, 0, len(order))
	for _, n := range order {
		out = append(out, es[best[n]])
	}
	return out
}

// putEntry adds an existing stanza to a target under the version rules.
// With Options.RepreproRules it may replace newer versions (reprepro's
// copy and move downgrade), as Limit says.
func (r *Repo) putEntry(tx *bolt.Tx, d *Distribution, t Target, e Entry, res *Result) ([]string, error) {
	b, err := targetBucket(tx, t, true)
	if err != nil {
		return nil, err
	}
	have, err := versionsOf(b, e.Package)
	if err != nil {
		return nil, err
	}
	v, err := deb.ParseVersion(e.Version)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, e, err)
	}
	ch := Change{Action: "unchanged", Target: t, Package: e.Package, Version: e.Version, File: e.File}
	for _, x := range have {
		switch cmp := x.version.Compare(v); {
		case cmp == 0 && x.filekey == e.File:
			res.Changes = append(res.Changes, ch)
			return nil, nil
		case cmp == 0:
			return nil, fmt.Errorf("%w: %s already has %s %s as %s", ErrVersionClash, t, e.Package, x.version, x.filekey)
		case cmp > 0 && !r.opts.RepreproRules:
			return nil, fmt.Errorf("%w: %s already has %s %s, newer than %s", ErrOlderVersion, t, e.Package, x.version, v)
		}
	}
	if err := putPkg(tx, b, t, pkgKey(e.Package, e.Version), pkgValue(e.File, e.Stanza)); err != nil {
		return nil, err
	}
	for _, f := range e.Files() {
		if err := addRef(tx, f, t); err != nil {
			return nil, err
		}
	}
	if err := trackAdd(tx, d, t, e.Package, e.Version, pkgValue(e.File, e.Stanza)); err != nil {
		return nil, err
	}
	ch.Action = "add"
	var gone []string
	if over := overLimit(tx, d, e.Package, have); len(over) > 0 {
		archived, err := r.archiveOut(tx, d, t, e.Package, over, res)
		if err != nil {
			return nil, err
		}
		dropped, err := dropVersions(tx, b, t, e.Package, over)
		if err != nil {
			return nil, err
		}
		gone = append(append(gone, archived...), dropped...)
		ch.Action, ch.OldVersion = "replace", over[len(over)-1].version.String()
	}
	res.Changes = append(res.Changes, ch)
	return gone, nil
}

// Export publishes the named distributions (all when none is named),
// regenerating every index, as "reprepro export". Run it after changing
// conf/distributions. It re-signs every distribution; Renew re-signs only
// those whose Valid-Until is near.
func (r *Repo) Export(ctx context.Context, codenames ...string) (*Result, error) {
	dists, err := r.pick(codenames)
	if err != nil {
		return nil, err
	}
	w, err := r.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	res := &Result{}
	for _, d := range dists {
		if _, err := r.exportDist(ctx, w.db, d, true, false); err != nil {
			return res, err
		}
		res.Exported = append(res.Exported, d.Codename)
	}
	return res, r.syncTargets(ctx, w.db)
}

// pick returns the named distributions, or all of them.
func (r *Repo) pick(codenames []string) ([]*Distribution, error) {
	if len(codenames) == 0 {
		return r.Conf.Distributions, nil
	}
	var out []*Distribution
	for _, c := range codenames {
		d, err := r.Conf.Distribution(c)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Phase sets apt's Phased-Update-Percentage on the newest version of a
// package in every selected target of a distribution: apt on the devices
// then installs that version on about percent % of them (100 removes the
// field: everyone gets it).
func (r *Repo) Phase(ctx context.Context, codename string, sel Selection, name string, percent int) (*Result, error) {
	return r.setPhase(ctx, codename, sel, name, percent, nil, newestOnly)
}

// looseVersion parses a version stored by this package (always valid);
// a damaged one sorts first.
func looseVersion(s string) deb.Version {
	v, err := deb.ParseVersion(s)
	if err != nil {
		return deb.Version{}
	}
	return v
}
