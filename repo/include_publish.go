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

// This file is the repository side of "lampi-pkg release": an include and
// publish that either happens completely or leaves db/, pool/, dists/ and
// the Log: file as they were.

// Release steps reported to IncludePublish's step callback.
const (
	StepLock    = "lock"
	StepInclude = "include"
	StepPublish = "publish"
)

// PublishSigner checks that a distribution can take new packages and be
// published, without changing anything: it exists, is not ReadOnly, and
// its SignWith key (if any) can be loaded and unlocked. It returns the
// signer of the distribution, nil when it is published unsigned. Errors
// wrap ErrUnknownCodename, ErrReadOnly or ErrSigning.
func (r *Repo) PublishSigner(ctx context.Context, codename string) (Signer, error) {
	d, err := r.writable("publish", codename)
	if err != nil {
		return nil, err
	}
	if d.SignWith == "" {
		return nil, nil
	}
	s, err := r.opts.Signer(ctx, d)
	if err != nil {
		if !errors.Is(err, ErrSigning) {
			err = fmt.Errorf("distribution %s: %w: %w", codename, ErrSigning, err)
		}
		return nil, err
	}
	return s, nil
}

// PublishOptions refine IncludePublish.
type PublishOptions struct {
	// Include refines the inclusion as for IncludeDeb.
	Include IncludeOptions
	// Signer signs the distribution's Release file; nil resolves its
	// SignWith as Export does. PublishSigner returns one to reuse, so
	// that a passphrase is asked once.
	Signer Signer
	// Step, if set, is called with StepLock, StepInclude and StepPublish
	// as each step begins.
	Step func(step string)
}

// IncludePublish is IncludeDeb followed by the export of the distribution,
// as one all-or-nothing step: if anything fails — the lock, a package, a
// pool or index write, signing the Release file — the state database, the
// pool, dists/<codename> and the distribution's Log: file are put back as
// they were, byte for byte (o.Step tells which step failed).
//
// It works like this: with the repository lock held for the whole
// command, the state database is copied and dists/<codename> is
// snapshotted (hard links for a storage.DirStorage, copies otherwise) into a
// private directory under DBDIR/tmp; the packages are then included and
// the distribution published; on failure the published files are put
// back (indices first, Release and InRelease last), files that did not
// exist are removed, the database copy is renamed over the database, and
// pool files the restored database does not know are deleted. Pool files
// that lose their last reference are deleted only once the publish has
// succeeded (unless Options.KeepUnreferenced), and a failure there is a
// warning, not an error: the release is out.
//
// Options.Export is ignored: the distribution is always published. A
// process killed half way leaves the repository as an interrupted
// IncludeDeb would (consistent; the next writer cleans up), not rolled
// back.
func (r *Repo) IncludePublish(ctx context.Context, codename string, files []string, o PublishOptions) (*Result, error) {
	step := o.Step
	if step == nil {
		step = func(string) {}
	}
	d, err := r.writable("includedeb", codename)
	if err != nil {
		return nil, err
	}
	step(StepLock)
	signer := o.Signer
	if signer == nil {
		if signer, err = r.PublishSigner(ctx, codename); err != nil {
			return nil, err
		}
	}
	w, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	snap, err := r.snapshot(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("snapshot before release: %w", err)
	}
	defer snap.discard()
	before, err := r.knownUnreferenced()
	if err != nil {
		return nil, err
	}
	inner, err := r.innerRepo(snap.dir, codename, signer)
	if err != nil {
		return nil, err
	}

	step(StepInclude)
	res, err := inner.IncludeDeb(ctx, codename, files, o.Include)
	if err != nil {
		return nil, r.rollback(ctx, snap, res, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, r.rollback(ctx, snap, res, err)
	}

	step(StepPublish)
	published, err := inner.exportLocked(ctx, d)
	if err != nil {
		return nil, r.rollback(ctx, snap, res, err)
	}
	if published {
		res.Exported = append(res.Exported, codename)
	}
	// The release is out; what follows only tidies up.
	if !r.opts.KeepUnreferenced {
		after, err := inner.knownUnreferenced()
		if err == nil {
			old := make(map[string]bool, len(before))
			for _, n := range before {
				old[n] = true
			}
			var unref []string
			for _, n := range after {
				if !old[n] {
					unref = append(unref, n)
				}
			}
			res.Deleted, err = inner.deleteUnref(ctx, unref)
		}
		if err != nil {
			r.opts.Warn(fmt.Sprintf("release %s: published, but removing pool files nothing needs any more failed: %v (lampi-pkg repo deleteunreferenced retries)", codename, err))
		}
	}
	return res, r.syncTargets(ctx, nil) // publish targets (target_sync.go)
}

// innerRepo is r with a private lock: it runs the ordinary commands while
// r holds the real lock, without exporting and without deleting pool
// files; it signs codename with signer.
func (r *Repo) innerRepo(snapDir, codename string, signer Signer) (*Repo, error) {
	opts := r.opts
	if signer != nil {
		outer := r.opts.Signer
		opts.Signer = func(ctx context.Context, d *Distribution) (Signer, error) {
			if d.Codename == codename {
				return signer, nil
			}
			return outer(ctx, d)
		}
	}
	opts.Export = ExportNever
	opts.KeepUnreferenced = true
	opts.Storage = r.storage
	opts.Warn = func(string) {} // r reported the configuration's warnings already
	inner, err := OpenConfig(r.Base, r.Conf, opts)
	if err != nil {
		return nil, err
	}
	inner.opts.Warn = r.opts.Warn
	inner.lockDir = filepath.Join(snapDir, "lock")
	return inner, nil
}

// exportLocked publishes the changed indices of d.
func (r *Repo) exportLocked(ctx context.Context, d *Distribution) (bool, error) {
	w, err := r.lockWrite(ctx)
	if err != nil {
		return false, err
	}
	did, err := r.exportDist(ctx, w.db, d, false, false)
	if cerr := w.close(); err == nil && cerr != nil {
		err = cerr
	}
	return did, err
}

// deleteUnref removes the pool files in names that are unreferenced.
func (r *Repo) deleteUnref(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	w, err := r.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	return r.deleteFiles(ctx, w.db, names)
}

// snapshot is what IncludePublish restores on failure.
type snapshot struct {
	dir        string // private directory under DBDIR/tmp
	createdTmp bool   // DBDIR/tmp did not exist before
	tmpRoot    string

	dbExists bool
	dbMode   fs.FileMode
	dbMtime  time.Time

	dists    string   // "dists/<codename>"
	names    []string // files under dists/<codename>, storage names
	logPath  string   // the Log: file, "" when none
	logSize  int64    // its size before, -1 when it did not exist
	logMtime time.Time
	topDirs  []string // storage.DirStorage: pool/ and dists/ if they did not exist
	dirStore *storage.DirStorage
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
	}
	ok = true
	return s, nil
}

// rollback puts back what the snapshot recorded and returns cause, with
// what could not be restored, if anything.
func (r *Repo) rollback(ctx context.Context, s *snapshot, res *Result, cause error) error {
	// Restoring must not stop half way because the command was cancelled.
	ctx = context.WithoutCancel(ctx)
	var errs []error
	// 1. dists/<codename>: indices and by-hash files first, then Release,
	// Release.gpg and InRelease.
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
	// 2. The database.
	if s.dbExists {
		snap := filepath.Join(s.dir, "lampi.db")
		if err := os.Rename(snap, r.dbPath); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", r.dbPath, err))
		} else {
			os.Chtimes(r.dbPath, s.dbMtime, s.dbMtime)
		}
	} else if err := os.Remove(r.dbPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	// 3. Pool files the restored database does not know.
	if res != nil {
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
			errs = append(errs, err)
		} else {
			for _, f := range added {
				if !known[f] {
					if err := r.storage.Remove(ctx, f); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	// 4. The Log: file.
	if s.logPath != "" {
		st, err := os.Stat(s.logPath)
		switch {
		case err != nil:
		case s.logSize < 0:
			err = os.Remove(s.logPath)
		case st.Size() != s.logSize:
			if err = os.Truncate(s.logPath, s.logSize); err == nil {
				err = os.Chtimes(s.logPath, s.logMtime, s.logMtime)
			}
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
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
