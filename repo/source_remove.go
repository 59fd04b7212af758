package repo

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SourceSpec names a source package, and optionally one version of it.
type SourceSpec struct {
	Name    string
	Version string // "": every version
}

// RemoveSources removes from every target of a distribution the entries
// of the given source packages — each source entry and every binary built
// from it — as "reprepro removesrcs", in one change and one publish. A
// spec that finds nothing is reported through Options.Warn and is not an
// error.
func (r *Repo) RemoveSources(ctx context.Context, codename string, specs []SourceSpec) (*Result, error) {
	return r.removeSources(ctx, "removesrcs", codename, specs)
}

func (r *Repo) removeSources(ctx context.Context, verb, codename string, specs []SourceSpec) (*Result, error) {
	d, err := r.writable(verb, codename)
	if err != nil {
		return nil, err
	}
	return r.change(ctx, d, true, func(tx *bolt.Tx, res *Result) (unref []string, err error) {
		for _, spec := range specs {
			var versions []string
			if spec.Version != "" {
				versions = []string{spec.Version}
			}
			match := bySource(spec.Name, versions)
			before := len(res.Changes)
			for _, t := range d.Targets() {
				es, err := listTarget(tx, t, nil, match)
				if err != nil {
					return nil, err
				}
				for _, e := range es {
					gone, err := removeEntry(tx, e)
					if err != nil {
						return nil, err
					}
					unref = append(unref, gone...)
					res.Changes = append(res.Changes, Change{Action: "remove", Target: t, Package: e.Package, Version: e.Version, File: e.File})
				}
			}
			if len(res.Changes) == before {
				r.opts.Warn(fmt.Sprintf("%s %s: nothing of source package %s%s found", verb, codename, spec.Name, versionNote(versions)))
			}
		}
		return unref, nil
	})
}
