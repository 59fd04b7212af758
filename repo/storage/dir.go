package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/lampi-pkg/lampi-pkg/internal/localfs"
)

// DirStorage is a Storage in a local directory. Files are written to a
// temporary name in the target's directory and renamed into place; empty
// directories left by Remove are removed up to the top directory.
type DirStorage struct {
	// Root is the directory holding pool/ and dists/.
	Root string
	// PlainIO makes every file operation through the os package instead
	// of the raw system calls of internal/localfs, which suit local file
	// systems only: set it when Root is on NFS, SMB or FUSE.
	PlainIO bool

	dirs dirCache // directories known to exist (some of them)

	// What Sync must make durable: files written and directories
	// changed since the last Sync.
	pendMu              sync.Mutex
	pendFiles, pendDirs map[string]struct{}
	syncAll             bool // too many to list: Sync flushes everything
}

// syncAllAbove is the number of pending files from which Sync flushes
// the whole file system (one syncfs) rather than each file.
const syncAllAbove = 256

// touched records that the file p was written (its directory changed).
func (s *DirStorage) touched(p string) { s.pending(p, true) }

// dirChanged records a change of the directory holding p only (a removal).
func (s *DirStorage) dirChanged(p string) { s.pending(p, false) }

func (s *DirStorage) pending(p string, file bool) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if s.syncAll {
		return
	}
	if s.pendFiles == nil {
		s.pendFiles, s.pendDirs = map[string]struct{}{}, map[string]struct{}{}
	}
	s.pendDirs[filepath.Dir(p)] = struct{}{}
	if file {
		s.pendFiles[p] = struct{}{}
	}
	if len(s.pendFiles) > syncAllAbove {
		s.syncAll, s.pendFiles, s.pendDirs = true, nil, nil
	}
}

// dirCache remembers up to dirCacheSize directories known to exist.
// Bounded: a big import creates one pool directory per source package,
// and remembering each of them for the whole command would hold as much
// memory as the batch's own records, for no gain (each is made once).
type dirCache struct {
	mu sync.Mutex
	m  map[string]struct{}
}

const dirCacheSize = 256

func (c *dirCache) known(dir string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[dir]
	return ok
}

func (c *dirCache) add(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= dirCacheSize {
		c.m = make(map[string]struct{}, 16)
	}
	c.m[strings.Clone(dir)] = struct{}{} // not the file name it was cut from
}

func (c *dirCache) forget(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, dir)
}

// mkdir makes sure the directory of p exists, remembering it.
func (s *DirStorage) mkdir(p string) error {
	dir := filepath.Dir(p)
	if s.dirs.known(dir) {
		return nil
	}
	err := s.files().Mkdir(dir) // usually the parent exists: one call
	if errors.Is(err, fs.ErrNotExist) {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	s.dirs.add(dir)
	return nil
}

var _ Storage = (*DirStorage)(nil)

// files makes the small-file operations, raw or plain.
func (s *DirStorage) files() localfs.Files { return localfs.Files{Plain: s.PlainIO} }

// Path returns the local file of name, or an error wrapping
// ErrInvalidName.
func (s *DirStorage) Path(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	return filepath.Join(s.Root, filepath.FromSlash(name)), nil
}

// tempFor creates a temporary file next to p. The storage's writes do
// not go through internal/atomicfile on purpose: that fsyncs every file
// as it is renamed, where a publish writes thousands of pool files and
// indices and makes them durable together, once, in Sync (the files and
// directories it touched, 16 at a time), before InRelease is renamed.
func (s *DirStorage) tempFor(p string) (*os.File, error) {
	if err := s.mkdir(p); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if errors.Is(err, fs.ErrNotExist) { // a cached directory went away
		s.dirs.forget(filepath.Dir(p))
		if err = s.mkdir(p); err == nil {
			f, err = os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
		}
	}
	return f, err
}

// WriteFile implements Storage.
func (s *DirStorage) WriteFile(ctx context.Context, name string, data []byte) error {
	p, err := s.Path(name)
	if err != nil {
		return err
	}
	f, err := s.tempFor(p)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && RevalidatedByDate(name) {
		err = DateAfter(ctx, f.Name(), p)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	s.touched(p)
	return nil
}

// CreateNew writes name only if it does not exist yet, directly (no
// temporary name): for pool files nothing references yet. It reports
// whether it created the file; an interrupted write leaves a partial file
// that no index names, which PutFile later replaces.
func (s *DirStorage) CreateNew(ctx context.Context, name string, data []byte) (bool, error) {
	p, err := s.Path(name)
	if err != nil {
		return false, err
	}
	if err := s.mkdir(p); err != nil {
		return false, fmt.Errorf("create %s: %w", name, err)
	}
	err = s.files().WriteNew(p, data)
	if errors.Is(err, fs.ErrNotExist) { // a cached directory went away
		s.dirs.forget(filepath.Dir(p))
		if err = s.mkdir(p); err == nil {
			err = s.files().WriteNew(p, data)
		}
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return false, nil
	case err != nil:
		os.Remove(p)
		return false, fmt.Errorf("create %s: %w", name, err)
	}
	s.touched(p)
	return true, nil
}

// PutFile implements Storage: it renames src into place (keeping its
// mode: create it 0644), or copies it when src is on another file system.
func (s *DirStorage) PutFile(ctx context.Context, name, src string) error {
	p, err := s.Path(name)
	if err != nil {
		return err
	}
	if err := s.mkdir(p); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if RevalidatedByDate(name) {
		if err := DateAfter(ctx, src, p); err != nil {
			return fmt.Errorf("put %s: %w", name, err)
		}
	}
	// syscall.Rename: os.Rename first stats the target (one more system
	// call per pool file).
	err = rename(src, p)
	if errors.Is(err, fs.ErrNotExist) { // a cached directory went away
		s.dirs.forget(filepath.Dir(p))
		if err = s.mkdir(p); err == nil {
			err = rename(src, p)
		}
	}
	if errors.Is(err, syscall.EXDEV) {
		return s.copyFile(ctx, src, p, name)
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	s.touched(p)
	return nil
}

// copyFile copies the local file src to dst (the file of name), by way of
// a temporary file renamed into place.
func (s *DirStorage) copyFile(ctx context.Context, src, dst, name string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := s.tempFor(dst)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	_, err = io.Copy(f, in)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && RevalidatedByDate(name) {
		err = DateAfter(ctx, f.Name(), dst)
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("put %s: %w", name, err)
	}
	s.touched(dst)
	return nil
}

// CopyIn writes the local file src as name: a copy renamed into place,
// never a hard link (src stays, and a mirror must not share files with
// the tree it mirrors, or an edit of one would change the other).
func (s *DirStorage) CopyIn(ctx context.Context, name, src string) error {
	p, err := s.Path(name)
	if err != nil {
		return err
	}
	if err := s.mkdir(p); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	return s.copyFile(ctx, src, p, name)
}

// Copy implements Storage with a hard link renamed into place (a copy
// where links are not possible). A link shares the source's modification
// time; under a name revalidated by date that may be older than the file
// it replaces (an index whose content an earlier generation had), so it
// is dated as a new file would be (which changes the source's time too).
func (s *DirStorage) Copy(ctx context.Context, src, dst string) error {
	sp, err := s.Path(src)
	if err != nil {
		return err
	}
	dp, err := s.Path(dst)
	if err != nil {
		return err
	}
	f, err := s.tempFor(dp)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	f.Close()
	os.Remove(f.Name())
	if err := os.Link(sp, f.Name()); err != nil {
		return s.copyFile(ctx, sp, dp, dst)
	}
	if RevalidatedByDate(dst) {
		if err := DateAfter(ctx, f.Name(), dp); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
	}
	if err := os.Rename(f.Name(), dp); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	s.touched(dp)
	return nil
}

// Open implements Storage.
func (s *DirStorage) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := s.Path(name)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// Exists implements Storage.
func (s *DirStorage) Exists(ctx context.Context, name string) (bool, error) {
	p, err := s.Path(name)
	if err != nil {
		return false, err
	}
	_, err = os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Remove implements Storage; it also removes the directories it leaves
// empty, up to the top-level one (pool/, dists/).
func (s *DirStorage) Remove(ctx context.Context, name string) error {
	p, err := s.Path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	s.dirChanged(p)
	for dir := path.Dir(name); strings.Contains(dir, "/"); dir = path.Dir(dir) {
		full := filepath.Join(s.Root, filepath.FromSlash(dir))
		if os.Remove(full) != nil {
			break
		}
		s.dirs.forget(full)
	}
	return nil
}

// List implements Storage. Temporary files of interrupted writes are
// not listed.
func (s *DirStorage) List(ctx context.Context, dir string) ([]string, error) {
	p, err := s.Path(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && fp == p {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() || isTempName(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(s.Root, fp)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out, err
}

// isTempName tells DirStorage's temporary files.
func isTempName(base string) bool {
	return strings.HasPrefix(base, ".") && strings.Contains(base, ".tmp-")
}

// RemoveTemp deletes temporary files that interrupted writes left under
// dir. Only call it while holding the repository lock.
func (s *DirStorage) RemoveTemp(dir string) error {
	p, err := s.Path(dir)
	if err != nil {
		return err
	}
	return filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && isTempName(d.Name()) {
			os.Remove(fp)
		}
		return nil
	})
}

// Sync implements Storage: it flushes each file written and directory
// changed since the last Sync, concurrently (the file system commits them
// together), or, after many writes, the whole file system holding Root in
// one call. Flushing only its own files keeps a command from waiting for
// everything else the machine has written meanwhile.
func (s *DirStorage) Sync(ctx context.Context) error {
	s.pendMu.Lock()
	files, dirs, all := s.pendFiles, s.pendDirs, s.syncAll
	s.pendFiles, s.pendDirs, s.syncAll = nil, nil, false
	s.pendMu.Unlock()
	if all {
		return localfs.SyncFS(s.Root)
	}
	// A directory removed since (an emptied pool directory) needs no
	// flush: its parent is in the list.
	var names []string
	for p := range files {
		names = append(names, p)
	}
	for d := range dirs {
		names = append(names, d)
	}
	// Every failure is reported, not only the first: each is kept and
	// joined, and the group only bounds how many run at once.
	errs := make([]error, len(names))
	var g errgroup.Group
	g.SetLimit(16)
	for i, p := range names {
		g.Go(func() error {
			errs[i] = fsyncPath(p)
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}

// fsyncPath flushes one file or directory; one that is gone (replaced or
// removed since) needs nothing.
func fsyncPath(p string) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}

func rename(from, to string) error {
	if err := syscall.Rename(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
