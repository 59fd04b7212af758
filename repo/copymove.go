package repo

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The verbs that pick packages by name, glob or formula and remove them,
// or copy or move them to another distribution: remove, removefilter,
// copy, move, copymatched, movematched, copyfilter, movefilter.

// pkgArg is a package named on the command line: NAME (its newest
// version in each package list) or NAME=VERSION.
type pkgArg struct {
	text, name, version string
}

// parsePkgArgs reads NAME and NAME=VERSION arguments.
func parsePkgArgs(verb string, args []string) ([]pkgArg, error) {
	out := make([]pkgArg, 0, len(args))
	for _, a := range args {
		name, version, hasVersion := strings.Cut(a, "=")
		if name == "" || (hasVersion && (version == "" || strings.Contains(version, "="))) {
			return nil, fmt.Errorf("%s: %w: %q; write NAME or NAME=VERSION", verb, ErrArgument, a)
		}
		out = append(out, pkgArg{text: a, name: name, version: version})
	}
	return out, nil
}

// find returns the entry a names in target t (nil when there is none).
func (a pkgArg) find(tx *bolt.Tx, t Target) (*Entry, error) {
	es, err := listTarget(tx, t, []string{a.name}, nil)
	if err != nil {
		return nil, err
	}
	for i := range es {
		if a.version == "" || es[i].Version == a.version {
			return &es[i], nil // es is newest first
		}
	}
	return nil, nil
}

// notFoundArgs returns, in the order given, the arguments that found
// lacks, as they were written.
func notFoundArgs(args []pkgArg, found map[int]bool) []string {
	var missing []string
	for i, a := range args {
		if !found[i] {
			missing = append(missing, a.text)
		}
	}
	return missing
}

// missing handles the names a command did not find: an error (wrapping
// ErrNotFound) by default, Result.NotFound with Options.RepreproRules.
func (r *Repo) missing(res *Result, names []string, err func(list string) error) error {
	if len(names) == 0 {
		return nil
	}
	if !r.opts.RepreproRules {
		return err(strings.Join(names, ", "))
	}
	res.NotFound = append(res.NotFound, names...)
	return nil
}

// Remove deletes packages from the selected targets of a distribution,
// as "reprepro remove": NAME removes the newest version of NAME from each
// package list, NAME=VERSION that version. A name found nowhere fails the
// command before anything changes (wrapping ErrNotFound); with
// Options.RepreproRules it is listed in Result.NotFound instead and the
// others are removed.
func (r *Repo) Remove(ctx context.Context, codename string, sel Selection, names []string) (*Result, error) {
	args, err := parsePkgArgs("remove", names)
	if err != nil {
		return nil, err
	}
	d, err := r.writable("remove", codename)
	if err != nil {
		return nil, err
	}
	targets, err := sel.Targets(d)
	if err != nil {
		return nil, err
	}
	return r.change(ctx, d, true, func(tx *bolt.Tx, res *Result) (unref []string, err error) {
		found := map[int]bool{}
		for _, t := range targets {
			for i, a := range args {
				e, err := a.find(tx, t)
				if err != nil {
					return nil, err
				}
				if e == nil {
					continue
				}
				if unref, err = removeAndNote(tx, *e, res, unref); err != nil {
					return nil, err
				}
				found[i] = true
			}
		}
		return unref, r.missing(res, notFoundArgs(args, found), func(list string) error {
			return fmt.Errorf("remove %s: %w: %s (nothing was removed; see lampi-pkg repo list %s)", codename, ErrNotFound, list, codename)
		})
	})
}

// RemoveFilter deletes every package (every version) of the selected
// targets of a distribution that match accepts, as "reprepro
// removefilter". Nothing matching is not an error.
func (r *Repo) RemoveFilter(ctx context.Context, codename string, sel Selection, match func(*Entry) bool) (*Result, error) {
	d, err := r.writable("removefilter", codename)
	if err != nil {
		return nil, err
	}
	targets, err := sel.Targets(d)
	if err != nil {
		return nil, err
	}
	return r.change(ctx, d, true, func(tx *bolt.Tx, res *Result) (unref []string, err error) {
		for _, t := range targets {
			es, err := listTarget(tx, t, nil, match)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				if unref, err = removeAndNote(tx, e, res, unref); err != nil {
					return nil, err
				}
			}
		}
		return unref, nil
	})
}

// removeAndNote removes e, records the change and adds its pool file to
// unref when that lost its last reference.
func removeAndNote(tx *bolt.Tx, e Entry, res *Result, unref []string) ([]string, error) {
	// Moving a version out of an archive distribution can have the
	// archive's own Limit push that very version out already (when it
	// takes the version the move displaced): then there is nothing left
	// to remove, and nothing to report.
	b, err := targetBucket(tx, e.Target, false)
	if err != nil {
		return nil, err
	}
	if b == nil || b.Get(pkgKey(e.Package, e.Version)) == nil {
		return unref, nil
	}
	gone, err := removeEntry(tx, e)
	if err != nil {
		return nil, err
	}
	unref = append(unref, gone...)
	res.Changes = append(res.Changes, Change{Action: "remove", Target: e.Target, Package: e.Package, Version: e.Version, File: e.File})
	return unref, nil
}

// Copy copies packages from distribution src to dest, as "reprepro
// copy" (promotion: testing → stable): NAME copies the newest version in
// each package list, NAME=VERSION that version; verbatim stanzas, the
// same pool files, only into the package lists (component and
// architecture) both distributions have. dest's version rules apply: an
// older version is refused by default (ErrOlderVersion) and replaces a
// newer one with Options.RepreproRules, as reprepro does. A name given
// twice counts once (with a warning); a name found nowhere is handled as
// in Remove.
func (r *Repo) Copy(ctx context.Context, dest, src string, sel Selection, names []string) (*Result, error) {
	return r.copyNamed(ctx, "copy", dest, src, sel, names)
}

// Move is Copy, then the copied versions are removed from src ("reprepro
// move").
func (r *Repo) Move(ctx context.Context, dest, src string, sel Selection, names []string) (*Result, error) {
	return r.copyNamed(ctx, "move", dest, src, sel, names)
}

// CopyMatching copies every package (every version) of src that match
// accepts to dest, as "reprepro copyfilter" (and, with match from
// GlobMatch, copymatched); with move set it then removes them from src
// (movefilter, movematched). Nothing matching is not an error.
func (r *Repo) CopyMatching(ctx context.Context, dest, src string, sel Selection, match func(*Entry) bool, move bool) (*Result, error) {
	verb := "copy"
	if move {
		verb = "move"
	}
	return r.copyPicked(ctx, verb, dest, src, sel, func(tx *bolt.Tx, t Target) ([]Entry, error) {
		return listTarget(tx, t, nil, match)
	}, nil)
}

// GlobMatch accepts the packages whose name matches a shell glob (*, ?
// and [...]), for copymatched and movematched. The glob must be valid
// (path.Match's syntax).
func GlobMatch(glob string) (func(*Entry) bool, error) {
	if _, err := path.Match(glob, ""); err != nil {
		return nil, fmt.Errorf("%w: glob %q: %w", ErrArgument, glob, err)
	}
	return func(e *Entry) bool {
		ok, _ := path.Match(glob, e.Package)
		return ok
	}, nil
}

func (r *Repo) copyNamed(ctx context.Context, verb, dest, src string, sel Selection, names []string) (*Result, error) {
	args, err := parsePkgArgs(verb, names)
	if err != nil {
		return nil, err
	}
	var uniq []pkgArg
	seen := map[string]bool{}
	for _, a := range args {
		if seen[a.text] {
			r.opts.Warn(fmt.Sprintf("%s: %q was listed more than once; it counts once", verb, a.text))
			continue
		}
		seen[a.text] = true
		uniq = append(uniq, a)
	}
	found := map[int]bool{}
	pick := func(tx *bolt.Tx, t Target) ([]Entry, error) {
		var out []Entry
		for i, a := range uniq {
			e, err := a.find(tx, t)
			if err != nil {
				return nil, err
			}
			if e != nil {
				found[i] = true
				out = append(out, *e)
			}
		}
		return out, nil
	}
	return r.copyPicked(ctx, verb, dest, src, sel, pick, func(res *Result) error {
		return r.missing(res, notFoundArgs(uniq, found), func(list string) error {
			return fmt.Errorf("%s %s to %s: %w in %s (or not in a component and architecture %s has): %s",
				verb, src, dest, ErrNotFound, src, dest, list)
		})
	})
}

// copyPicked copies (verb "copy…") or moves ("move…") to dest what pick
// selects in each selected target of src that dest has too; then done,
// if set, judges what was not found.
func (r *Repo) copyPicked(ctx context.Context, verb, dest, src string, sel Selection, pick func(*bolt.Tx, Target) ([]Entry, error), done func(*Result) error) (*Result, error) {
	move := strings.HasPrefix(verb, "move")
	dd, err := r.writable(verb, dest)
	if err != nil {
		return nil, err
	}
	sd, err := r.Conf.Distribution(src)
	if err != nil {
		return nil, err
	}
	if move {
		if sd, err = r.writable(verb, src); err != nil {
			return nil, err
		}
	}
	targets, err := sel.Targets(sd)
	if err != nil {
		return nil, err
	}
	dists := []*Distribution{dd}
	if move && sd != dd {
		dists = append(dists, sd)
	}
	return r.changeAll(ctx, dists, true, func(tx *bolt.Tx, res *Result) (unref []string, err error) {
		for _, t := range targets {
			if !dd.hasTarget(t) {
				continue
			}
			es, err := pick(tx, t)
			if err != nil {
				return nil, err
			}
			es = uniqueEntries(es)
			// reprepro's order: names, then version strings, descending
			// byte order.
			sort.SliceStable(es, func(i, j int) bool {
				if es[i].Package != es[j].Package {
					return es[i].Package > es[j].Package
				}
				return es[i].Version > es[j].Version
			})
			dt := Target{dd.Codename, t.Component, t.Arch, t.Type}
			for _, e := range es {
				gone, err := r.putEntry(tx, dd, dt, e, res)
				if err != nil {
					return nil, fmt.Errorf("%s %s to %s: %w", verb, e, dest, err)
				}
				unref = append(unref, gone...)
				if move && dt != t {
					if unref, err = removeAndNote(tx, e, res, unref); err != nil {
						return nil, err
					}
				}
			}
		}
		if done != nil {
			return unref, done(res)
		}
		return unref, nil
	})
}

// uniqueEntries drops repeated versions (NAME and NAME=VERSION naming
// the same one).
func uniqueEntries(es []Entry) []Entry {
	out := es[:0]
	seen := map[string]bool{}
	for _, e := range es {
		k := e.Package + "\x00" + e.Version
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}
