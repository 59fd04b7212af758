package repo

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// LsByComponent is Ls grouped by component as "reprepro lsbycomponent":
// in each distribution (configuration order), one line per version and
// component, with the component named (LsLine.Component).
func (r *Repo) LsByComponent(ctx context.Context, sel Selection, name string) ([]LsLine, error) {
	var out []LsLine
	err := r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		for _, d := range r.Conf.Distributions {
			first, comp := len(out), ""
			for _, t := range d.Targets() {
				if !sel.matches(t) {
					continue
				}
				if t.Component != comp {
					first, comp = len(out), t.Component
				}
				es, err := listTarget(tx, t, []string{name}, nil)
				if err != nil {
					return err
				}
				for _, e := range es {
					out = addLsArch(out, first, d.Codename, e.Version, t.Arch)
				}
				for i := first; i < len(out); i++ {
					out[i].Component = comp
				}
			}
		}
		return nil
	})
	return out, err
}
