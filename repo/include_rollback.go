package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
	bolt "go.etcd.io/bbolt"
)

// What IncludePublish restores when a step after the local change fails:
// the snapshot taken under the lock, and the rollback.

// snapshot is what IncludePublish restores on failure.
type snapshot struct {
	dir        string // private directory under DBDIR/tmp
	createdTmp bool   // DBDIR/tmp did not exist before
	tmpRoot    string

	dbExists bool
	dbMode   fs.FileMode
	dbMtime  time.Time

	dists     string   // "dists/<codename>"
	names     []string // files under dists/<codename>, storage names
	logPath   string   // the Log: file, "" when none
	logSize   int64    // its size before, -1 when it did not exist
	logNewDir bool     // its directory did not exist either
	logMtime  time.Time
	topDirs   []string // storage.DirStorage: pool/ and dists/ if they did not exist
	dirStore  *storage.DirStorage
}

func (s *snapshot) discard() {
	os.RemoveAll(s.dir)
	if s.createdTmp {
		os.Remove(s.tmpRoot) // only if empty
	}
}

// snapshot records the state IncludePublish may have to restore. Only
// call it while holding the lock.
func (r *Repo) snapshot(ctx context.Context, d *Distribution) (*snapshot, error) {
	s := &snapshot{tmpRoot: r.tmpRoot, dists: "dists/" + d.Codename, logSize: -1}
	if _, err := os.Stat(r.tmpRoot); errors.Is(err, fs.ErrNotExist) {
		s.createdTmp = true
	}
	if err := os.MkdirAll(r.tmpRoot, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(r.tmpRoot, strconv.Itoa(os.Getpid())+"-release-*")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	ok := false
	defer func() {
		if !ok {
			s.discard()
		}
	}()
	// The database: a plain copy (bbolt rewrites pages in place, so a hard
	// link would not do). No one else writes while the lock is held.
	if st, err := os.Stat(r.dbPath); err == nil {
		s.dbExists, s.dbMode, s.dbMtime = true, st.Mode().Perm(), st.ModTime()
		if err := copyLocal(r.dbPath, filepath.Join(dir, "lampi.db"), s.dbMode); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// The published files of the distribution.
	if ds, isDir := r.storage.(*storage.DirStorage); isDir {
		s.dirStore = ds
		for _, top := range []string{"pool", "dists"} {
			if _, err := os.Stat(filepath.Join(ds.Root, top)); errors.Is(err, fs.ErrNotExist) {
				s.topDirs = append(s.topDirs, top)
			}
		}
	}
	names, err := r.storage.List(ctx, s.dists)
	if err != nil {
		return nil, err
	}
	s.names = names
	for _, n := range names {
		dst := filepath.Join(dir, "dists", filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if s.dirStore != nil {
			src, err := s.dirStore.Path(n)
			if err != nil {
				return nil, err
			}
			if err := os.Link(src, dst); err == nil {
				continue
			}
			if err := copyLocal(src, dst, 0o644); err != nil {
				return nil, err
			}
			continue
		}
		if err := copyFromStorage(ctx, r.storage, n, dst); err != nil {
			return nil, err
		}
	}
	// The Log: file, which IncludeDeb appends to.
	if d.Log != "" {
		s.logPath = d.Log
		if !filepath.IsAbs(s.logPath) {
			s.logPath = filepath.Join(r.opts.LogDir, s.logPath)
		}
		if st, err := os.Stat(s.logPath); err == nil {
			s.logSize, s.logMtime = st.Size(), st.ModTime()
		}
		_, err := os.Stat(filepath.Dir(s.logPath))
		s.logNewDir = errors.Is(err, fs.ErrNotExist)
	}
	ok = true
	return s, nil
}

// rollback puts back what the snapshot recorded — dists/<codename>, the
// database, the pool files the restored database does not know, the
// Log: file — and returns cause, with what could not be restored, if
// anything.
func (r *Repo) rollback(ctx context.Context, s *snapshot, res *Result, cause error) error {
	// Restoring must not stop half way because the command was cancelled.
	ctx = context.WithoutCancel(ctx)
	errs := r.restoreDists(ctx, s)
	errs = append(errs, s.restoreDB(r.dbPath)...)
	if res != nil {
		errs = append(errs, r.removeAdded(ctx, res)...)
	}
	if err := s.restoreLog(); err != nil {
		errs = append(errs, err)
	}
	if s.dirStore != nil {
		for _, top := range s.topDirs {
			os.Remove(filepath.Join(s.dirStore.Root, top)) // only if empty
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w; restoring the repository failed too: %w", cause, errors.Join(errs...))
	}
	return cause
}

// restoreDists puts back dists/<codename>: indices and by-hash files
// first, then Release, Release.gpg and InRelease; then removes what the
// failed command added there.
func (r *Repo) restoreDists(ctx context.Context, s *snapshot) []error {
	var errs []error
	isTop := func(n string) bool {
		switch strings.TrimPrefix(n, s.dists+"/") {
		case "Release", "Release.gpg", "InRelease":
			return true
		}
		return false
	}
	for _, last := range []bool{false, true} {
		for _, n := range s.names {
			if isTop(n) != last {
				continue
			}
			if err := s.restoreFile(ctx, r.storage, n); err != nil {
				errs = append(errs, fmt.Errorf("restore %s: %w", n, err))
			}
		}
	}
	now, err := r.storage.List(ctx, s.dists)
	if err != nil {
		errs = append(errs, err)
	}
	had := make(map[string]bool, len(s.names))
	for _, n := range s.names {
		had[n] = true
	}
	for _, n := range now {
		if !had[n] {
			if err := r.storage.Remove(ctx, n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// restoreDB puts back the state database (or removes it when there was
// none).
func (s *snapshot) restoreDB(dbPath string) []error {
	if !s.dbExists {
		if err := os.Remove(dbPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return []error{err}
		}
		return nil
	}
	if err := os.Rename(filepath.Join(s.dir, "lampi.db"), dbPath); err != nil {
		return []error{fmt.Errorf("restore %s: %w", dbPath, err)}
	}
	os.Chtimes(dbPath, s.dbMtime, s.dbMtime)
	return nil
}

// removeAdded deletes the pool files res added that the restored
// database does not know.
func (r *Repo) removeAdded(ctx context.Context, res *Result) []error {
	var added []string
	for _, c := range res.Changes {
		if (c.Action == "add" || c.Action == "replace") && c.File != "" && !slices.Contains(added, c.File) {
			added = append(added, c.File)
		}
	}
	known := map[string]bool{}
	err := r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		for _, f := range added {
			known[f] = bucket(tx, bFiles).Get([]byte(f)) != nil
		}
		return nil
	})
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, f := range added {
		if !known[f] {
			if err := r.storage.Remove(ctx, f); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// restoreLog truncates the Log: file to its size before (or removes it
// when it did not exist).
func (s *snapshot) restoreLog() error {
	if s.logPath == "" {
		return nil
	}
	st, err := os.Stat(s.logPath)
	switch {
	case err != nil:
	case s.logSize < 0:
		if err = os.Remove(s.logPath); err == nil && s.logNewDir {
			os.Remove(filepath.Dir(s.logPath)) // only if empty
		}
	case st.Size() != s.logSize:
		if err = os.Truncate(s.logPath, s.logSize); err == nil {
			err = os.Chtimes(s.logPath, s.logMtime, s.logMtime)
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// restoreFile puts back a snapshotted file of dists/.
func (s *snapshot) restoreFile(ctx context.Context, st storage.Storage, name string) error {
	src := filepath.Join(s.dir, "dists", filepath.FromSlash(name))
	if s.dirStore == nil {
		return st.PutFile(ctx, name, src)
	}
	dst, err := s.dirStore.Path(name)
	if err != nil {
		return err
	}
	if same, err := sameFile(src, dst); err == nil && same {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	// The content goes back byte for byte, but not its time: a client
	// may have fetched the failed release's file meanwhile, and only a
	// later Last-Modified tells it the file changed again.
	if storage.RevalidatedByDate(name) {
		if err := storage.DateAfter(ctx, src, dst); err != nil {
			return err
		}
	}
	return os.Rename(src, dst)
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Lstat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Lstat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// copyLocal copies a local file, keeping its modification time.
func copyLocal(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(dst, st.ModTime(), st.ModTime())
	}
	return err
}

func copyFromStorage(ctx context.Context, st storage.Storage, name, dst string) error {
	in, err := st.Open(ctx, name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
