package repo

import (
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// bySource selects the entries of a target that belong to source package
// source, and (when versions are given) to one of those source versions,
// compared as dpkg compares them.
func bySource(source string, versions []string) func(*Entry) bool {
	return func(e *Entry) bool {
		name, version := entrySource(*e)
		if name != source {
			return false
		}
		if len(versions) == 0 {
			return true
		}
		for _, v := range versions {
			if looseVersion(v).Compare(looseVersion(version)) == 0 {
				return true
			}
		}
		return false
	}
}

// RemoveSource removes from every target of a distribution the entries
// of a source package — the source entry and every binary built from it
// — as "reprepro removesrc"; with version, only those of that source
// version. Nothing found is not an error: it is reported through
// Options.Warn and nothing changes.
func (r *Repo) RemoveSource(ctx context.Context, codename, source, version string) (*Result, error) {
	return r.removeSources(ctx, "removesrc", codename, []SourceSpec{{Name: source, Version: version}})
}

func versionNote(versions []string) string {
	if len(versions) == 0 {
		return ""
	}
	return " version " + strings.Join(versions, ", ")
}

// CopySource copies the entries of a source package — the source entry
// and every binary built from it, every version, or only the given
// source versions — from src to dest, as "reprepro copysrc": into the
// targets (component, architecture or source) both distributions have,
// sharing the pool files, under dest's version rules. Nothing found is
// reported through Options.Warn and is not an error.
func (r *Repo) CopySource(ctx context.Context, dest, src string, sel Selection, source string, versions []string) (*Result, error) {
	return r.copyBySource(ctx, "copysrc", dest, src, sel, source, versions)
}

// MoveSource is CopySource, then the copied entries are removed from src
// ("reprepro movesrc").
func (r *Repo) MoveSource(ctx context.Context, dest, src string, sel Selection, source string, versions []string) (*Result, error) {
	return r.copyBySource(ctx, "movesrc", dest, src, sel, source, versions)
}

// copyBySource is copysrc and movesrc: copyPicked with the entries of
// one source package.
func (r *Repo) copyBySource(ctx context.Context, verb, dest, src string, sel Selection, source string, versions []string) (*Result, error) {
	match := bySource(source, versions)
	found := false
	pick := func(tx *bolt.Tx, t Target) ([]Entry, error) {
		es, err := listTarget(tx, t, nil, match)
		found = found || len(es) > 0
		return es, err
	}
	return r.copyPicked(ctx, verb, dest, src, sel, pick, func(*Result) error {
		if !found {
			r.opts.Warn(fmt.Sprintf("%s %s %s: nothing of source package %s%s found in %s", verb, dest, src, source, versionNote(versions), src))
		}
		return nil
	})
}
