package storage

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Symlinker is a Storage that can make symbolic links (DirStorage):
// for the repository's createsymlinks.
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
	p, err := s.Path(name)
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
	p, err := s.Path(name)
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
