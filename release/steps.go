package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/bump"
	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/atomicfile"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// bump prepares every tree's bump, then (unless a dry run) applies them.
func (r *run) bump(ctx context.Context) error {
	o := r.o
	for _, t := range r.trees {
		r.beginStep(StepBump, t.dir)
		plan, err := bump.Prepare(ctx, bump.Options{
			Dir: t.abs, Part: o.Part, AllowDirty: o.AllowDirty, Commit: o.Commit, Tag: o.Tag,
			Now: o.Now, LookupEnv: o.LookupEnv, Git: o.Git, GitEnv: o.GitEnv,
		})
		if err != nil {
			return &StepError{Step: StepBump, Dir: t.dir, Err: err}
		}
		t.plan = plan
		if plan.ConfigFile == "" {
			t.warnings = staleVersionFiles(t.abs, plan.Old)
		}
	}
	if o.DryRun {
		return nil
	}
	for _, t := range r.trees {
		r.beginStep(StepBump, t.dir)
		t.mtimes = map[string]time.Time{}
		for _, f := range t.plan.Files {
			p := t.path(f.Path)
			if st, err := os.Stat(p); err == nil {
				t.mtimes[p] = st.ModTime()
			}
		}
		applied, err := t.plan.Apply(ctx)
		if err != nil {
			return &StepError{Step: StepBump, Dir: t.dir, Err: err}
		}
		t.applied = applied
	}
	return nil
}

// staleVersionFiles finds the small files of a tree that hold nothing but
// the old version (opt/hi/__VERSION__): without a configuration listing
// them, a bump leaves them behind, and the device would report the old
// version. Only files up to 256 bytes are read.
func staleVersionFiles(dir, old string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && (rel == "DEBIAN" || rel == ".git") {
			return fs.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > 256 {
			return nil
		}
		data, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(data)) == old {
			rel = filepath.ToSlash(rel)
			out = append(out, fmt.Sprintf("%s holds the old version %s and was not bumped: list it in a .bumpversion.cfg ([bumpversion:file:%s]) so that it follows", rel, old, rel))
		}
		return nil
	})
	return out
}

// path turns a path of a bump plan into a file name.
func (t *tree) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(t.abs, filepath.FromSlash(p))
}

// build builds a tree into the work directory; a dry run builds the tree
// as the bump would leave it.
func (r *run) build(ctx context.Context, t *tree) error {
	root, err := os.OpenRoot(t.abs)
	if err != nil {
		return err
	}
	defer root.Close()
	fsys := root.FS()
	if r.o.DryRun && t.plan != nil {
		fsys = newOverlay(fsys, t.plan, r.clock())
	}
	tmp, err := atomicfile.Create(r.work, ".lampi-release-*.deb.tmp")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", r.work, err)
	}
	defer tmp.Abort()
	opts := r.o.Build
	opts.TempDir = r.work
	h := sha256.New()
	res, err := deb.Build(ctx, fsys, io.MultiWriter(tmp, h), opts)
	if err != nil {
		return err
	}
	final := filepath.Join(r.work, res.Filename)
	_, statErr := os.Lstat(final)
	if err := tmp.Commit(final, 0o644); err != nil {
		return err
	}
	t.built, t.created = final, errors.Is(statErr, fs.ErrNotExist)
	c := res.Control
	p := &Package{
		Dir: t.dir, Package: c.Get("Package"), Architecture: c.Get("Architecture"),
		Version: c.Get("Version"), OldVersion: c.Get("Version"), BumpedFiles: []string{}, Changes: []FileChange{},
		File: final, Size: res.Size, SHA256: hex.EncodeToString(h.Sum(nil)), Warnings: []string{},
	}
	if t.plan != nil {
		p.OldVersion = t.plan.Old
		for _, f := range t.plan.Files {
			p.BumpedFiles = append(p.BumpedFiles, f.Path)
			p.Changes = append(p.Changes, FileChange{Path: f.Path, Hunks: f.Hunks})
		}
	}
	p.Warnings = append(p.Warnings, t.warnings...)
	for _, w := range res.Warnings {
		p.Warnings = append(p.Warnings, w.String())
	}
	t.pkg = p
	t.digest, err = fileDigest(final)
	return err
}

// compare looks the tree's package up in the repository: StatusNew,
// StatusUnchanged (the same version with the same content is there), or
// an error for the same version with other content or a newer version.
func (r *run) compare(ctx context.Context, t *tree) (string, error) {
	p := t.pkg
	entries, err := r.o.Repo.List(ctx, r.rep.Codename, repo.Selection{}, []string{p.Package}, nil)
	if err != nil {
		return "", err
	}
	digests := map[string]string{}
	status := StatusNew
	for _, e := range entries {
		if e.Architecture != p.Architecture {
			continue
		}
		cmp, err := deb.CompareVersions(e.Version, p.Version)
		if err != nil {
			return "", err
		}
		switch {
		case cmp > 0:
			return "", fmt.Errorf("%s already has %s %s, newer than %s: bump the version past it (--bump), or remove %s %s from the repository first",
				e.Target, p.Package, e.Version, p.Version, p.Package, e.Version)
		case cmp < 0:
			continue
		}
		d, ok := digests[e.File]
		if !ok {
			if d, err = poolDigest(ctx, r.target.open, e.File); err != nil {
				return "", fmt.Errorf("read %s from the repository: %w", e.File, err)
			}
			digests[e.File] = d
		}
		if d != t.digest {
			same, err := r.sameFiles(ctx, t, e.File)
			if err != nil {
				return "", err
			}
			if !same {
				return "", fmt.Errorf("%w: %s has %s %s as %s, and this build of %s differs from it: apt never reinstalls a version it has, so give the tree a new version (--bump patch, or --bump revision)",
					ErrVersionClash, e.Target, p.Package, p.Version, e.File, t.dir)
			}
		}
		status, p.Pool = StatusUnchanged, e.File
	}
	return status, nil
}

// poolDigest is the content digest of a package in the repository.
func poolDigest(ctx context.Context, open func(context.Context, string) (io.ReadCloser, error), name string) (string, error) {
	f, err := open(ctx, name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return contentDigest(f)
}

// contentDigest is a digest of a .deb's content without its origin
// signature: the name, size and bytes of every ar member except those
// whose name starts with '_' (debsigs' _gpgorigin and its kind). The same
// build, signed or not, has the same digest; ar header times are left
// out, but they are the clamp time the tar members carry anyway.
func contentDigest(r io.Reader) (string, error) {
	h := sha256.New()
	mr, err := deb.NewMemberReader(r)
	if err != nil {
		return "", err
	}
	for {
		m, err := mr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(m.Name, "_") {
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\n", m.Name, m.Size)
		if _, err := io.Copy(h, mr); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sameFiles tells whether the built package holds the same files as the
// pool file: same control files, same payload (names, types, modes,
// owners, link targets, bytes), timestamps and compression aside. A fresh
// checkout gives every file a new time, hence other package bytes, but it
// is not a new release.
func (r *run) sameFiles(ctx context.Context, t *tree, pool string) (bool, error) {
	f, err := r.target.open(ctx, pool)
	if err != nil {
		return false, fmt.Errorf("read %s from the repository: %w", pool, err)
	}
	defer f.Close()
	published, err := filesDigest(f)
	if err != nil {
		return false, fmt.Errorf("read %s from the repository: %w", pool, err)
	}
	b, err := os.Open(t.built)
	if err != nil {
		return false, err
	}
	defer b.Close()
	built, err := filesDigest(b)
	return built == published, err
}

// filesDigest is a digest of what a package installs and runs: every
// control file and payload entry with its metadata and content, but not
// the times.
func filesDigest(r io.Reader) (string, error) {
	dr, err := deb.NewReader(r)
	if err != nil {
		return "", err
	}
	ci, err := dr.Control()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range ci.Files {
		fmt.Fprintf(h, "control %q %s %o %d %d %q\n", f.Path, f.Type, f.Mode, f.UID, f.GID, f.Linkname)
		fmt.Fprintf(h, "%d\n", len(f.Data))
		h.Write(f.Data)
	}
	for {
		e, err := dr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "data %q %s %o %d %d %q %d\n", e.Name, e.Type, e.Mode, e.UID, e.GID, e.Linkname, e.Size)
		if _, err := io.Copy(h, dr); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fileDigest(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return contentDigest(f)
}

// sign adds the origin signature to a new package.
func (r *run) sign(ctx context.Context, t *tree) error {
	sd, err := signing.SignDebFile(ctx, r.o.DebSigner, t.built)
	if err != nil {
		return err
	}
	f, err := os.Open(t.built)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	t.pkg.Size, t.pkg.SHA256, t.pkg.Signed = sd.Size, hex.EncodeToString(h.Sum(nil)), sd.Fingerprint
	return nil
}

// undo puts back what the release changed: built files in OutDir, the
// bumps (commit and tag first, then the files, with their modification
// times). It says what it put back.
func (r *run) undo(ctx context.Context) ([]string, error) {
	ctx = context.WithoutCancel(ctx)
	var restored []string
	var errs []error
	for i := len(r.trees) - 1; i >= 0; i-- {
		t := r.trees[i]
		if t.created && !r.tempDir {
			os.Remove(t.built)
		}
		if t.applied == nil {
			continue
		}
		files := t.applied.Files()
		if err := t.applied.Rollback(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.dir, err))
			continue
		}
		var names []string
		for _, f := range files {
			p := t.path(f.Path)
			if mt, ok := t.mtimes[p]; ok {
				os.Chtimes(p, mt, mt)
			}
			names = append(names, f.Path)
		}
		what := t.dir + ": " + strings.Join(names, ", ")
		if t.pkg != nil && (t.pkg.Commit != "" || t.pkg.Tag != "") {
			what += " (bump commit and tag removed)"
		}
		restored = append(restored, what)
		t.applied = nil
	}
	return restored, errors.Join(errs...)
}
