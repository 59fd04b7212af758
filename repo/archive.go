package repo

import (
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Archive distributions (reprepro 5.4's "Archive: CODENAME" in
// conf/distributions). A version that Limit pushes out of a package list
// of a distribution with an Archive field — an include of a newer
// version, a copy, move or update that adds one, a downgrade by copy or
// move — is first added to the package list of the archive distribution
// with the same component and architecture (or source), then removed.
// Into the archive it is added as includedeb adds: the same version
// there already is left alone, a version older than the archive's
// Limit-th newest is skipped, and the archive's own Limit pushes out its
// oldest versions, into its own Archive when it has one. Plain remove,
// removefilter, removesrc and the removal half of move do not archive.
// The archive distribution is exported (and logged to) with the command.

// checkArchives resolves the Archive fields of conf/distributions: each
// names another distribution by its codename, and following them never
// comes back to where it started. reprepro also wants the archive
// distribution written before the one naming it; the order does not
// matter here. It returns warnings for an archive that shares no package
// list with the distribution (nothing could be archived).
func checkArchives(dists []*Distribution) (warns []string, err error) {
	byCodename := map[string]*Distribution{}
	for _, d := range dists {
		byCodename[d.Codename] = d
	}
	for _, d := range dists {
		if d.Archive == "" {
			continue
		}
		a := byCodename[d.Archive]
		switch {
		case d.Archive == d.Codename:
			return nil, fmt.Errorf("%s: %w: Archive: %q is this distribution itself; name another distribution to keep the versions Limit pushes out of %s, or remove the field",
				d.ArchiveAt, ErrConfig, d.Archive, d.Codename)
		case a == nil:
			return nil, fmt.Errorf("%s: %w: Archive: %s", d.ArchiveAt, ErrConfig, unknownArchive(dists, d.Archive))
		}
		if !sharesTarget(d, a) {
			warns = append(warns, fmt.Sprintf("%s: Archive: %s has none of the package lists of %s (components %s, architectures %s); nothing can be archived there",
				d.ArchiveAt, a.Codename, d.Codename, strings.Join(d.Components, " "), strings.Join(targetArchs(d), " ")))
		}
	}
	for _, d := range dists {
		chain := []string{d.Codename}
		seen := map[string]bool{d.Codename: true}
		for a := byCodename[d.Archive]; a != nil; a = byCodename[a.Archive] {
			chain = append(chain, a.Codename)
			if a == d {
				return nil, fmt.Errorf("%s: %w: Archive: the archive distributions form a cycle (%s); a version pushed out would be archived back into the distribution it left: end the chain with a distribution without Archive",
					d.ArchiveAt, ErrConfig, strings.Join(chain, " → "))
			}
			if seen[a.Codename] {
				break // a cycle further on, reported from one of its members
			}
			seen[a.Codename] = true
		}
	}
	return warns, nil
}

// unknownArchive explains an Archive field that names no codename.
func unknownArchive(dists []*Distribution, name string) string {
	var names []string
	for _, d := range dists {
		if d.Suite == name {
			return fmt.Sprintf("%q is the Suite of %q; Archive takes the Codename", name, d.Codename)
		}
		names = append(names, d.Codename)
	}
	return fmt.Sprintf("no distribution has %q as Codename (known: %s); add a paragraph for the archive distribution or fix the name",
		name, strings.Join(names, ", "))
}

// sharesTarget reports whether a has at least one package list of d.
func sharesTarget(d, a *Distribution) bool {
	for _, t := range d.Targets() {
		if a.hasTarget(t) {
			return true
		}
	}
	return false
}

// targetArchs lists d's architectures, with "source" when it has source
// package lists.
func targetArchs(d *Distribution) []string {
	if d.HasSource {
		return append(append([]string(nil), d.Architectures...), SourceArch)
	}
	return d.Architectures
}

// archiveOut archives the versions over of package name (oldest first, as
// overLimit returns them), which Limit is about to push out of target t
// of d, newest first (reprepro's order: an archive with a Limit of its
// own keeps the newest of them). It changes nothing when d has no
// Archive; it does not remove them from t. It returns the pool files
// that lost their last reference (versions the archive's Limit pushed
// out in turn).
func (r *Repo) archiveOut(tx *bolt.Tx, d *Distribution, t Target, name string, over []existing, res *Result) ([]string, error) {
	if d.Archive == "" {
		return nil, nil
	}
	a, err := r.Conf.Distribution(d.Archive)
	if err != nil {
		return nil, fmt.Errorf("%s: Archive: %w", d.ArchiveAt, err)
	}
	if !a.hasTarget(t) {
		for i := len(over) - 1; i >= 0; i-- {
			_, version := splitPkgKey(over[i].key)
			r.opts.Warn(fmt.Sprintf("cannot archive '%s=%s' from '%s' to '%s' since '%s' has no matching component/architecture/packagetype; it is removed",
				name, version, d.Codename, a.Codename, a.Codename))
		}
		return nil, nil
	}
	if a.ReadOnly {
		return nil, fmt.Errorf("archive %s from %s: %w: %s (ReadOnly in %s:%d) is the Archive of %s (%s); make it writable or remove the Archive field",
			name, t, ErrReadOnly, a.Codename, a.File, a.Line, d.Codename, d.ArchiveAt)
	}
	at := Target{a.Codename, t.Component, t.Arch, t.Type}
	var gone []string
	for i := len(over) - 1; i >= 0; i-- {
		g, err := r.archiveOne(tx, a, at, t, name, over[i], res)
		if err != nil {
			return nil, err
		}
		gone = append(gone, g...)
	}
	return gone, nil
}

// archiveOne adds version x of package name, from target from, to
// target at of the archive distribution a, as includedeb would add it:
// a version there already stays (Change "unchanged"), one older than the
// Limit-th newest is skipped (Change "skip"), and a's Limit pushes out
// its oldest versions, into a's own Archive first.
func (r *Repo) archiveOne(tx *bolt.Tx, a *Distribution, at, from Target, name string, x existing, res *Result) ([]string, error) {
	b, err := targetBucket(tx, at, true)
	if err != nil {
		return nil, err
	}
	have, err := versionsOf(b, name)
	if err != nil {
		return nil, err
	}
	_, version := splitPkgKey(x.key)
	ch := Change{Action: "unchanged", Target: at, Package: name, Version: version, File: x.filekey, ArchivedFrom: from.String()}
	for _, h := range have {
		if h.version.Compare(x.version) == 0 {
			res.Changes = append(res.Changes, ch)
			return nil, nil
		}
	}
	if kept := tooOld(tx, a, name, have, x.version); kept != "" {
		ch.Action, ch.OldVersion = "skip", kept
		res.Changes = append(res.Changes, ch)
		return nil, nil
	}
	if err := b.Put(pkgKey(name, version), x.value); err != nil {
		return nil, err
	}
	for _, f := range x.files {
		if err := addRef(tx, f, at); err != nil {
			return nil, err
		}
	}
	if err := trackAdd(tx, a, at, name, version, x.value); err != nil {
		return nil, err
	}
	if err := markDirty(tx, at); err != nil {
		return nil, err
	}
	ch.Action = "add"
	var gone []string
	if over := overLimit(tx, a, name, have); len(over) > 0 {
		if gone, err = r.archiveOut(tx, a, at, name, over, res); err != nil {
			return nil, err
		}
		dropped, err := dropVersions(tx, b, at, name, over)
		if err != nil {
			return nil, err
		}
		gone = append(gone, dropped...)
		ch.Action, ch.OldVersion = "replace", over[len(over)-1].version.String()
	}
	res.Changes = append(res.Changes, ch)
	return gone, nil
}

// archivesChanged returns the distributions, other than dists, that the
// changes in res added packages to by archiving them: a command
// publishes and logs them with its own.
func (r *Repo) archivesChanged(dists []*Distribution, res *Result) []*Distribution {
	done := map[string]bool{}
	for _, d := range dists {
		done[d.Codename] = true
	}
	var out []*Distribution
	for _, c := range res.Changes {
		if c.ArchivedFrom == "" || done[c.Target.Codename] {
			continue
		}
		done[c.Target.Codename] = true
		if a := r.Conf.Lookup(c.Target.Codename); a != nil && a.Codename == c.Target.Codename {
			out = append(out, a)
		}
	}
	return out
}
