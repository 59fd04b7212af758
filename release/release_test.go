package release_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/bump"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/release"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// TestReleaseBumpAndPublish: 0.1 published, then --bump minor: the tree
// says 0.2 everywhere, the repository holds 0.2 (and no longer 0.1), and
// the report tells old → new, the file's size and SHA256, the pool path
// and the steps.
func TestReleaseBumpAndPublish(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	r := newRepo(t, dir, repo.Options{})
	first := run(t, options(r, hi))
	if !first.Published || first.Packages[0].Status != release.StatusPublished || first.Packages[0].Version != "0.1" {
		t.Fatalf("first release: %+v", first)
	}

	o := options(r, hi)
	o.Part = "minor"
	rep := run(t, o)
	p := rep.Packages[0]
	if p.Package != "hi" || p.OldVersion != "0.1" || p.Version != "0.2" || p.Status != release.StatusPublished {
		t.Errorf("report: %+v", p)
	}
	if p.Pool != "pool/main/h/hi/hi_0.2_all.deb" {
		t.Errorf("pool path %q", p.Pool)
	}
	if p.File != "" {
		t.Errorf("File %q: the package was built in a temporary directory, gone now", p.File)
	}
	data, err := os.ReadFile(filepath.Join(r.Base, p.Pool))
	must(t, err)
	sum := sha256.Sum256(data)
	if int64(len(data)) != p.Size || hex.EncodeToString(sum[:]) != p.SHA256 {
		t.Errorf("report says %d bytes %s; the pool file has %d bytes %x", p.Size, p.SHA256, len(data), sum)
	}
	if got := strings.Join(versions(t, r, "hi"), " "); got != "amd64:0.2 armhf:0.2" {
		t.Errorf("repository holds %s", got)
	}
	if _, err := os.Stat(filepath.Join(r.Base, "pool/main/h/hi/hi_0.1_all.deb")); !os.IsNotExist(err) {
		t.Errorf("0.1 is still in the pool: %v", err)
	}
	for file, want := range map[string]string{"opt/hi/__VERSION__": "0.2\n", "DEBIAN/control": "Version: 0.2\n", ".bumpversion.cfg": "current_version = 0.2\n"} {
		got, _ := os.ReadFile(filepath.Join(hi, file))
		if !strings.Contains(string(got), want) {
			t.Errorf("%s:\n%s\nwant %q", file, got, want)
		}
	}
	var steps []string
	for _, s := range rep.Steps {
		steps = append(steps, s.Step)
	}
	if got := strings.Join(steps, " "); got != "bump build check include publish" {
		t.Errorf("steps %q", got)
	}
	// The published package does not carry the tree's tool configuration.
	if bytes.Contains(data, []byte("bumpversion")) {
		t.Errorf("the package contains .bumpversion.cfg")
	}
}

// TestReleaseAgainPublishesNothing: without a bump and without changes,
// a second release finds the package published and changes nothing;
// changed content under the same version is refused.
func TestReleaseAgainPublishesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	r := newRepo(t, dir, repo.Options{})
	o := options(r, hi)
	o.Part = "minor"
	run(t, o)

	before := state(t, hi, r.Base)
	rep := run(t, options(r, hi))
	if rep.Published || rep.Packages[0].Status != release.StatusUnchanged || rep.Packages[0].Pool != "pool/main/h/hi/hi_0.2_all.deb" {
		t.Errorf("second release: %+v", rep)
	}
	sameState(t, before, state(t, hi, r.Base))

	// Signed in the repository, the same build is still the same content.
	o = options(r, hi)
	o.SignDeb = true
	rep = run(t, o)
	if rep.Published || rep.Packages[0].Status != release.StatusUnchanged {
		t.Errorf("with --sign-deb: %+v", rep.Packages[0])
	}

	// A fresh checkout: new times everywhere, other package bytes, same
	// files: nothing to publish.
	later := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // newer than any file
	must(t, os.Chtimes(filepath.Join(hi, "opt/hi/hi"), later, later))
	before = state(t, hi, r.Base)
	rep = run(t, options(r, hi))
	if rep.Published || rep.Packages[0].Status != release.StatusUnchanged {
		t.Errorf("after touching a file: %+v", rep.Packages[0])
	}
	sameState(t, before, state(t, hi, r.Base))

	must(t, os.WriteFile(filepath.Join(hi, "opt/hi/hi"), []byte("#!/bin/sh\necho changed\n"), 0o755))
	before = state(t, hi, r.Base)
	_, err := release.Run(context.Background(), options(r, hi))
	var se *release.StepError
	if !errors.As(err, &se) || se.Step != release.StepCheck || !errors.Is(err, release.ErrVersionClash) {
		t.Fatalf("changed content, same version: %v", err)
	}
	if !strings.Contains(err.Error(), "give the tree a new version") {
		t.Errorf("the message does not say what to do: %v", err)
	}
	sameState(t, before, state(t, hi, r.Base))
}

// TestReleaseSignedIdempotent: with --sign-deb the pool file carries an
// origin signature; a second run recognises the same content.
func TestReleaseSignDeb(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	r := newRepo(t, dir, repo.Options{})
	o := options(r, hi)
	o.SignDeb = true
	rep := run(t, o)
	p := rep.Packages[0]
	key, err := os.Open(keyFile)
	must(t, err)
	defer key.Close()
	k, err := signing.ReadKey(key)
	must(t, err)
	if p.Signed != k.Fingerprint() {
		t.Errorf("signed by %q, want %s", p.Signed, k.Fingerprint())
	}
	f, err := os.Open(filepath.Join(r.Base, p.Pool))
	must(t, err)
	defer f.Close()
	st, _ := f.Stat()
	if _, err := signing.VerifyDeb(context.Background(), signing.NewKeyring(k), f, st.Size(), signing.VerifyOptions{Now: now}); err != nil {
		t.Errorf("the published package's origin signature: %v", err)
	}
	again := run(t, o)
	if again.Published {
		t.Errorf("signed again and published although nothing changed: %+v", again.Packages[0])
	}
}

// countingSigner counts the Release files signed.
type countingSigner struct {
	repo.Signer
	n *int
}

func (c countingSigner) Clearsign(ctx context.Context, r io.Reader) ([]byte, error) {
	*c.n++
	return c.Signer.Clearsign(ctx, r)
}

// TestReleaseSeveralTrees: two trees bumped, built and published in one
// signed publish.
func TestReleaseSeveralTrees(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	svc := newTree(t, dir, "lampi-hw", "1.4")
	signs := 0
	keys := repo.KeyDirSigners(filepath.Join(dir, "keys"), now, nil)
	r := newRepo(t, dir, repo.Options{Signer: func(ctx context.Context, d *repo.Distribution) (repo.Signer, error) {
		s, err := keys(ctx, d)
		return countingSigner{s, &signs}, err
	}})
	o := options(r, hi, svc)
	o.Part = "minor"
	o.OutDir = filepath.Join(dir, "out")
	rep := run(t, o)
	if signs != 1 {
		t.Errorf("the Release file was signed %d times; one publish signs it once", signs)
	}
	if len(rep.Packages) != 2 || rep.Packages[0].Version != "0.2" || rep.Packages[1].Version != "1.5" {
		t.Fatalf("packages: %+v", rep.Packages)
	}
	if got := strings.Join(append(versions(t, r, "hi"), versions(t, r, "lampi-hw")...), " "); got != "amd64:0.2 armhf:0.2 amd64:1.5 armhf:1.5" {
		t.Errorf("repository: %s", got)
	}
	for _, p := range rep.Packages {
		if p.File != filepath.Join(dir, "out", p.Package+"_"+p.Version+"_all.deb") {
			t.Errorf("file %q", p.File)
		}
		if _, err := os.Stat(p.File); err != nil {
			t.Errorf("--out keeps the package: %v", err)
		}
	}
	// The same tree twice, or an output directory inside a tree, is refused.
	if _, err := release.Run(context.Background(), options(r, hi, hi+"/.")); !errors.Is(err, release.ErrOptions) {
		t.Errorf("a tree given twice: %v", err)
	}
	o = options(r, hi)
	o.OutDir = filepath.Join(hi, "dist")
	if _, err := release.Run(context.Background(), o); !errors.Is(err, release.ErrOptions) || !strings.Contains(err.Error(), "pack itself") {
		t.Errorf("--out inside the tree: %v", err)
	}
}

// TestReleaseDryRun changes nothing, yet builds what would be published.
func TestReleaseDryRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	gitInit(t, hi)
	r := newRepo(t, dir, repo.Options{})
	run(t, options(r, hi))
	before, gitBefore := state(t, hi, r.Base), gitState(t, hi)
	o := options(r, hi)
	o.Part, o.DryRun, o.OutDir = "minor", true, filepath.Join(dir, "out")
	yes := true
	o.Commit, o.Tag = &yes, &yes
	rep := run(t, o)
	p := rep.Packages[0]
	if !rep.DryRun || rep.Published || p.Status != release.StatusNew || p.OldVersion != "0.1" || p.Version != "0.2" || p.Size == 0 {
		t.Errorf("dry run report: %+v", rep)
	}
	if len(p.BumpedFiles) != 3 {
		t.Errorf("bumped files %v", p.BumpedFiles)
	}
	sameState(t, before, state(t, hi, r.Base))
	if g := gitState(t, hi); g != gitBefore {
		t.Errorf("git changed:\n%s\nwas\n%s", g, gitBefore)
	}
	if _, err := os.Stat(o.OutDir); !os.IsNotExist(err) {
		t.Errorf("a dry run created %s", o.OutDir)
	}
	// A broken tree fails the dry run as it would fail the release.
	must(t, os.WriteFile(filepath.Join(hi, "DEBIAN/postinst"), []byte("echo hi\n"), 0o755))
	if _, err := release.Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "build ") {
		t.Errorf("dry run of a broken tree: %v", err)
	}
}

// failingSigner signs nothing: the signing service is down.
type failingSigner struct{ repo.Signer }

func (failingSigner) Clearsign(context.Context, io.Reader) ([]byte, error) {
	return nil, errors.New("signing service unreachable")
}

// TestReleaseFailuresChangeNothing injects a failure into each step; the
// tree (content and times), git (refs, tags, status) and the repository
// (every file of db/, pool/, dists/, logs/) must be as before, and the
// message must name the failing step.
func TestReleaseFailuresChangeNothing(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t, "releases with git and a signed repository once per injected failure")
	cases := []struct {
		name string
		// inject breaks something; it returns repository options to use.
		inject func(t *testing.T, hi, base string) repo.Options
		step   string
		want   string
		// contentOnly compares the repository's files without their
		// times (a Storage other than DirStorage restores copies).
		contentOnly bool
	}{
		{"broken maintainer script", func(t *testing.T, hi, base string) repo.Options {
			must(t, os.WriteFile(filepath.Join(hi, "DEBIAN/postinst"), []byte("set -e\necho no interpreter line\n"), 0o755))
			return repo.Options{}
		}, release.StepBuild, "DEBIAN/postinst: a maintainer script must start with an interpreter line", false},
		{"signing key missing", func(t *testing.T, hi, base string) repo.Options {
			conf := filepath.Join(base, "conf/distributions")
			data, err := os.ReadFile(conf)
			must(t, err)
			must(t, os.WriteFile(conf, bytes.Replace(data, []byte(keyFile), []byte("/nonexistent/release-key.asc"), 1), 0o644))
			return repo.Options{}
		}, release.StepPublish, "cannot sign the distribution", false},
		{"repository lock held", func(t *testing.T, hi, base string) repo.Options {
			f, err := os.OpenFile(filepath.Join(base, "db/lampi.lock"), os.O_RDWR, 0)
			must(t, err)
			t.Cleanup(func() { f.Close() })
			must(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
			return repo.Options{LockTimeout: 0}
		}, release.StepInclude, "repository is locked by another process", false},
		{"pool not writable", func(t *testing.T, hi, base string) repo.Options {
			pool := filepath.Join(base, "pool/main/h/hi")
			if os.Geteuid() != 0 {
				must(t, os.Chmod(pool, 0o555))
				t.Cleanup(func() { os.Chmod(pool, 0o755) })
			} else {
				// root writes in read-only directories: a directory where
				// the new package must go fails the write just as well.
				must(t, os.Mkdir(filepath.Join(pool, "hi_0.2_all.deb"), 0o755))
			}
			return repo.Options{}
		}, release.StepInclude, "pool/main/h/hi/hi_0.2_all.deb", false},
		{"signing fails while publishing", func(t *testing.T, hi, base string) repo.Options {
			keys := repo.KeyDirSigners(filepath.Join(base, "conf/keys"), now, nil)
			return repo.Options{Signer: func(ctx context.Context, d *repo.Distribution) (repo.Signer, error) {
				s, err := keys(ctx, d)
				return failingSigner{s}, err
			}}
		}, release.StepPublish, "signing service unreachable", false},
		{"disk write fails while publishing", func(t *testing.T, hi, base string) repo.Options {
			return repo.Options{Storage: failingStorage{&storage.DirStorage{Root: base}, "dists/stable/InRelease"}}
		}, release.StepPublish, "dists/stable/InRelease: no space left on device", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			hi := newTree(t, dir, "hi", "0.1")
			gitInit(t, hi)
			r := newRepo(t, dir, repo.Options{})
			run(t, options(r, hi))

			ro := c.inject(t, hi, r.Base)
			r = openRepo(t, r.Base, ro)
			before, gitBefore := state(t, hi, r.Base), gitState(t, hi)
			o := options(r, hi)
			o.Part, o.AllowDirty = "minor", true
			yes := true
			o.Commit, o.Tag = &yes, &yes
			_, err := release.Run(context.Background(), o)
			var se *release.StepError
			if !errors.As(err, &se) {
				t.Fatalf("release: %v; want a StepError", err)
			}
			if se.Step != c.step || !strings.HasPrefix(err.Error(), c.step) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q; want step %s and %q", err, c.step, c.want)
			}
			if se.RestoreErr != nil {
				t.Errorf("restoring failed: %v", se.RestoreErr)
			}
			after := state(t, hi, r.Base)
			if c.contentOnly {
				before, after = withoutTimes(before), withoutTimes(after)
			}
			sameState(t, before, after)
			if g := gitState(t, hi); g != gitBefore {
				t.Errorf("git changed:\n%s\nwas\n%s", g, gitBefore)
			}
			if c.step == release.StepBuild || c.step == release.StepInclude {
				if !strings.Contains(err.Error(), "put back as before: "+hi+": opt/hi/__VERSION__, .bumpversion.cfg, DEBIAN/control") {
					t.Errorf("the message does not say what was put back: %v", err)
				}
			}
		})
	}
}

// TestReleaseBumpRefusals: a dirty work tree stops the release before
// anything is written.
func TestReleaseDirtyTree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	gitInit(t, hi)
	r := newRepo(t, dir, repo.Options{})
	must(t, os.WriteFile(filepath.Join(hi, "opt/hi/hi"), []byte("#!/bin/sh\necho local\n"), 0o755))
	before := state(t, hi, r.Base)
	o := options(r, hi)
	o.Part = "minor"
	_, err := release.Run(context.Background(), o)
	if !errors.Is(err, bump.ErrDirty) || !strings.HasPrefix(err.Error(), "bump ") {
		t.Errorf("dirty tree: %v", err)
	}
	sameState(t, before, state(t, hi, r.Base))
}

// failingStorage fails to write one file, as a full disk would.
type failingStorage struct {
	*storage.DirStorage
	fail string
}

func (f failingStorage) WriteFile(ctx context.Context, name string, data []byte) error {
	if name == f.fail {
		return fmt.Errorf("write %s: %w", name, syscall.ENOSPC)
	}
	return f.DirStorage.WriteFile(ctx, name, data)
}

// withoutTimes drops the modification times of a state.
func withoutTimes(s map[string]string) map[string]string {
	out := map[string]string{}
	for p, v := range s {
		if f := strings.Fields(v); len(f) == 4 && f[0] == "file" {
			v = f[0] + " " + f[1] + " " + f[3]
		}
		out[p] = v
	}
	return out
}

// TestReleaseWarnsOfStaleVersionFile: without a configuration only
// DEBIAN/control is bumped; a file holding just the old version is named
// in a warning (the course's __VERSION__ would still say 0.1).
func TestReleaseWarnsOfStaleVersionFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	must(t, os.Remove(filepath.Join(hi, ".bumpversion.cfg")))
	r := newRepo(t, dir, repo.Options{})
	o := options(r, hi)
	o.Part = "minor"
	rep := run(t, o)
	p := rep.Packages[0]
	if p.Version != "0.2" || strings.Join(p.BumpedFiles, " ") != "DEBIAN/control" {
		t.Errorf("bumped %v to %s", p.BumpedFiles, p.Version)
	}
	want := "opt/hi/__VERSION__ holds the old version 0.1 and was not bumped"
	if len(p.Warnings) != 1 || !strings.HasPrefix(p.Warnings[0], want) {
		t.Errorf("warnings %q; want one starting %q", p.Warnings, want)
	}
}

// TestReleasePreReleases is issue 13 §4 through release: with a
// .bumpversion.cfg without parse, --bump pre publishes the release
// candidate as such (control, configuration, the version file inside the
// package), final then publishes the release, and dpkg orders them; a
// file that would show the candidate as the release stops the release
// before anything changes.
func TestReleasePreReleases(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t, "builds and releases pre-release versions judged by dpkg and dpkg-deb")
	dpkgDeb := testutil.RequireTool(t, "dpkg-deb")
	dpkg := testutil.RequireTool(t, "dpkg")
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "1.4.10")
	must(t, os.WriteFile(filepath.Join(hi, ".bumpversion.cfg"), []byte("[bumpversion]\ncurrent_version = 1.4.10\n\n[bumpversion:file:opt/hi/__VERSION__]\n"), 0o644))
	r := newRepo(t, dir, repo.Options{})

	// published checks the pool file of version v: its Version field and
	// the __VERSION__ it installs.
	published := func(p release.Package, v string) {
		t.Helper()
		if p.Version != v || p.Status != release.StatusPublished {
			t.Fatalf("report %+v, want %s published", p, v)
		}
		deb := filepath.Join(r.Base, p.Pool)
		out, err := exec.Command(dpkgDeb, "--field", deb, "Version").Output()
		if err != nil || strings.TrimSpace(string(out)) != v {
			t.Errorf("dpkg-deb --field Version: %q, %v; want %s", out, err, v)
		}
		root := t.TempDir()
		if out, err := exec.Command(dpkgDeb, "-x", deb, root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "opt/hi/__VERSION__")); string(got) != v+"\n" {
			t.Errorf("the package installs __VERSION__ %q, want %s", got, v)
		}
	}

	o := options(r, hi)
	o.Part = "pre"
	published(run(t, o).Packages[0], "1.4.11~rc1")
	o.Part = "pre"
	published(run(t, o).Packages[0], "1.4.11~rc2")
	o.Part = "patch" // releases the candidate: 1.4.11, not 1.4.12
	published(run(t, o).Packages[0], "1.4.11")
	if got := strings.Join(versions(t, r, "hi"), " "); got != "amd64:1.4.11 armhf:1.4.11" {
		t.Errorf("repository holds %s", got)
	}
	if err := exec.Command(dpkg, "--compare-versions", "1.4.11", "gt", "1.4.11~rc2").Run(); err != nil {
		t.Errorf("dpkg does not sort 1.4.11 after 1.4.11~rc2: %v", err)
	}

	// A Dockerfile whose serialize leaves out {pre} would say v1.4.12 for
	// 1.4.12~rc1: the bump step refuses, nothing changes.
	cfg := "[bumpversion]\ncurrent_version = 1.4.11\n\n[bumpversion:file:opt/hi/__VERSION__]\n\n[bumpversion:file:Dockerfile]\nserialize = v{major}.{minor}.{patch}\n"
	must(t, os.WriteFile(filepath.Join(hi, ".bumpversion.cfg"), []byte(cfg), 0o644))
	must(t, os.WriteFile(filepath.Join(hi, "Dockerfile"), []byte("LABEL version=v1.4.11\n"), 0o644))
	before, repoBefore := state(t, hi), testutil.TreeSum(t, r.Base, "db", "dists", "pool")
	o.Part = "pre"
	_, err := release.Run(context.Background(), o)
	var se *release.StepError
	if !errors.As(err, &se) || se.Step != release.StepBump || !errors.Is(err, bump.ErrSerialize) || !strings.Contains(err.Error(), "v{major}.{minor}.{patch}{pre}") {
		t.Fatalf("release = %v, want the bump step refusing with bump.ErrSerialize", err)
	}
	sameState(t, before, state(t, hi))
	if testutil.TreeSum(t, r.Base, "db", "dists", "pool") != repoBefore {
		t.Errorf("the repository changed")
	}
}
