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
	dd, err := r.writable("copysrc", dest)
	if err != nil {
		return nil, err
	}
	sd, err := r.Conf.Distribution(src)
	if err != nil {
		return nil, err
	}
	targets, err := sel.targets(sd)
	if err != nil {
		return nil, err
	}
	match := bySource(source, versions)
	return r.change(ctx, dd, true, func(tx *bolt.Tx, res *Result) (unref []string, err error) {
		found := false
		for _, t := range targets {
			if !dd.hasTarget(t.Component, t.Arch) {
				continue
			}
			es, err := listTarget(tx, t, nil, match)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				found = true
				gone, err := r.putEntry(tx, dd, Target{dd.Codename, t.Component, t.Arch}, e, res)
				if err != nil {
					return nil, fmt.Errorf("copysrc %s to %s: %w", e, dest, err)
				}
				unref = append(unref, gone...)
			}
		}
		if !found {
			r.opts.Warn(fmt.Sprintf("copysrc %s %s: nothing of source package %s%s found in %s", dest, src, source, versionNote(versions), src))
		}
		return unref, nil
	})
}
