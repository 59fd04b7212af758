package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// CreateSymlinks makes dists/<suite> a symbolic link to <codename> for the
// named distributions (all when none is named), as "reprepro
// createsymlinks": not when two distributions share the suite, and an
// existing link to elsewhere is only replaced with replace set (reprepro's
// --delete). It returns what it did and what it skipped.
func (r *Repo) CreateSymlinks(ctx context.Context, replace bool, codenames ...string) (made, skipped []string, err error) {
	sl, ok := r.storage.(storage.Symlinker)
	if !ok {
		return nil, nil, errors.New("createsymlinks: the storage cannot hold symbolic links")
	}
	dists, err := r.pick(codenames)
	if err != nil {
		return nil, nil, err
	}
	suites := map[string]int{}
	for _, d := range r.Conf.Distributions {
		if d.Suite != "" {
			suites[d.Suite]++
		}
	}
	for _, d := range dists {
		name := "dists/" + d.Suite
		switch {
		case d.Suite == "" || d.Suite == d.Codename:
			continue
		case suites[d.Suite] > 1:
			skipped = append(skipped, fmt.Sprintf("%s: several distributions have Suite %s", name, d.Suite))
			continue
		}
		cur, err := sl.Readlink(ctx, name)
		switch {
		case err == nil && cur == d.Codename:
			continue
		case err == nil && !replace:
			skipped = append(skipped, fmt.Sprintf("%s: already links to %s (replace it with --delete)", name, cur))
			continue
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			skipped = append(skipped, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if err := sl.Symlink(ctx, d.Codename, name); err != nil {
			return made, skipped, err
		}
		made = append(made, name+" -> "+d.Codename)
	}
	return made, skipped, nil
}
