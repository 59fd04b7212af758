package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Symlinker is a Storage that can make symbolic links (DirStorage). Only
// CreateSymlinks needs it.
type Symlinker interface {
	// Symlink makes name a symbolic link to target, replacing an existing
	// link; Readlink returns a link's target (fs.ErrNotExist when absent,
	// an error when name is not a link).
	Symlink(ctx context.Context, target, name string) error
	Readlink(ctx context.Context, name string) (string, error)
}

// Symlink implements Symlinker: the link is made under a temporary name
// and renamed into place.
func (s *DirStorage) Symlink(ctx context.Context, target, name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("symlink %s: %w", name, err)
	}
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp-link")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("symlink %s: %w", name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("symlink %s: %w", name, err)
	}
	return nil
}

// Readlink implements Symlinker.
func (s *DirStorage) Readlink(ctx context.Context, name string) (string, error) {
	p, err := s.path(name)
	if err != nil {
		return "", err
	}
	st, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if st.Mode()&fs.ModeSymlink == 0 {
		return "", fmt.Errorf("%s exists and is not a symbolic link", name)
	}
	return os.Readlink(p)
}

// CreateSymlinks makes dists/<suite> a symbolic link to <codename> for the
// named distributions (all when none is named), as "reprepro
// createsymlinks": not when two distributions share the suite, and an
// existing link to elsewhere is only replaced with replace set (reprepro's
// --delete). It returns what it did and what it skipped.
func (r *Repo) CreateSymlinks(ctx context.Context, replace bool, codenames ...string) (made, skipped []string, err error) {
	sl, ok := r.storage.(Symlinker)
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
