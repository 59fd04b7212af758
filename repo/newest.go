package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// Newest returns the newest version (by dpkg's order) of every package
// the repository holds, over all its distributions, components and
// architectures: what a device that follows the repository should end
// up with. A version that does not parse never wins over one that does.
//
// A distribution that cannot be listed is left out and its error, naming
// it, is joined into the error returned beside the versions of the
// others: the caller decides whether a partial answer is useful.
func (r *Repo) Newest(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, d := range r.Conf.Distributions {
		es, err := r.List(ctx, d.Codename, Selection{}, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("newest versions in %s: %w", d.Codename, err))
			continue
		}
		for _, e := range es {
			if old, ok := out[e.Package]; !ok || newerVersion(e.Version, old) {
				out[e.Package] = e.Version
			}
		}
	}
	return out, errors.Join(errs...)
}

// newerVersion reports whether a sorts after b by dpkg's rules, a version
// that does not parse sorting below every one that does (deb.CompareLoose).
func newerVersion(a, b string) bool {
	return deb.CompareLoose(a, b) > 0
}
