package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// mirrorRepo is a signed repository (see signedRepo) whose publishes are
// mirrored into target, recording every sync's result.
func mirrorRepo(t testing.TB, target storage.Storage, cfg storage.TargetConfig) (*Repo, string, *[]SyncResult) {
	t.Helper()
	r, pub := signedRepo(t, nil)
	var results []SyncResult
	pt := storage.NewTarget(cfg, target)
	r.opts.Mirror = &MirrorOptions{Targets: []*storage.PublishTarget{pt}, Done: func(s SyncResult) { results = append(results, s) }}
	return r, pub, &results
}

// fileList lists the files under pool/ and dists/ of a directory; a
// suite's symbolic link (dists/stable → bookworm) counts as a copy of its
// codename's files, as the mirror holds them.
func fileList(t testing.TB, root string) []string {
	t.Helper()
	ds := &storage.DirStorage{Root: root}
	var out []string
	for _, d := range []string{"pool", "dists"} {
		names, err := ds.List(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			st, err := os.Lstat(filepath.Join(root, n))
			switch {
			case err == nil && st.Mode().IsRegular():
				out = append(out, n)
			case err == nil && st.Mode()&os.ModeSymlink != 0:
				dest, _ := os.Readlink(filepath.Join(root, n))
				sub, err := ds.List(context.Background(), "dists/"+dest)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range sub {
					out = append(out, n+strings.TrimPrefix(f, "dists/"+dest))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// sameTree fails unless the mirror holds exactly the local published tree.
func sameTree(t testing.TB, local, mirror string) {
	t.Helper()
	a, b := fileList(t, local), fileList(t, mirror)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("mirror differs from the local tree:\nlocal:\n%s\nmirror:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	for _, n := range a {
		if readFile(t, filepath.Join(local, n)) != readFile(t, filepath.Join(mirror, n)) {
			t.Fatalf("%s differs", n)
		}
	}
}

// TestMirrorToDirectory: a directory target gets the same tree as the
// local publish, and later syncs upload only what changed — one pool file,
// the changed indices and the Release files — and delete what the local
// repository deleted.
func TestMirrorToDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, _, results := mirrorRepo(t, &storage.DirStorage{Root: dir}, storage.TargetConfig{Name: "copy", URL: "file://" + dir})
	debs := t.TempDir()
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}),
		buildDeb(t, debs, pkgSpec{name: "other", version: "1.0", arch: "amd64"}))
	sameTree(t, r.Base, dir)

	*results = nil
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"}))
	sameTree(t, r.Base, dir)
	if len(*results) != 1 {
		t.Fatalf("results %+v", *results)
	}
	// hi is Architecture: all: both binary-* directories change: per
	// architecture Packages.gz, Packages.xz and Packages by name and
	// under by-hash SHA256 and SHA512 (3 + 6 each), and Release,
	// Release.gpg, InRelease; the same again under the suite's name
	// (dists/stable); and one pool file. Only the pool file, the SHA256
	// by-hash files and the Release files are sent; the rest are copies
	// in place. The old hi_0.1 is deleted.
	res := (*results)[0]
	if want := 1 + 2*(2*(3+6)+3); res.Uploaded+res.Copied != want || res.Uploaded != 1+2*3+3 {
		t.Errorf("uploaded %d + copied %d objects, want %d in all, 10 uploaded: %+v", res.Uploaded, res.Copied, want, res)
	}
	if res.Deleted != 1 {
		t.Errorf("deleted %d, want 1 (hi 0.1)", res.Deleted)
	}

	// Nothing changed: nothing is uploaded.
	*results = nil
	if _, err := r.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(*results) != 1 || (*results)[0].Uploaded+(*results)[0].Copied > 3 {
		// export rewrites the same indices; at most the Release files change
		t.Errorf("export uploaded: %+v", *results)
	}
	sameTree(t, r.Base, dir)
}

// TestMirrorResumesAndCheck: objects missing or damaged on the target are
// found by CheckTarget and put back by its repair; a target marked behind
// is completed by the next command.
func TestMirrorResumesAndCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, _, _ := mirrorRepo(t, &storage.DirStorage{Root: dir}, storage.TargetConfig{Name: "copy", URL: "file://" + dir})
	ctx := context.Background()
	debs := t.TempDir()
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))
	pt := r.Targets()[0]
	rep, err := r.CheckTarget(ctx, pt, false)
	if err != nil || !rep.Clean() {
		t.Fatalf("fresh mirror: %+v %v", rep, err)
	}
	pool := fileList(t, filepath.Join(dir))[len(fileList(t, dir))-1]
	for _, n := range fileList(t, dir) {
		if strings.HasPrefix(n, "pool/") {
			pool = n
		}
	}
	if err := os.Remove(filepath.Join(dir, pool)); err != nil {
		t.Fatal(err)
	}
	// (replaced, not overwritten in place: dists/stable/InRelease is a
	// hard link to it in a directory target)
	if err := (&storage.DirStorage{Root: dir}).WriteFile(ctx, "dists/bookworm/InRelease", []byte("garbage\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dists/bookworm/stray"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = r.CheckTarget(ctx, pt, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Missing, ",") != pool || strings.Join(rep.Different, ",") != "dists/bookworm/InRelease" ||
		strings.Join(rep.Extra, ",") != "dists/bookworm/stray" {
		t.Fatalf("check: %+v", rep)
	}
	rep, err = r.CheckTarget(ctx, pt, true)
	if err != nil || rep.Repaired != 2 {
		t.Fatalf("repair: %+v %v", rep, err)
	}
	os.Remove(filepath.Join(dir, "dists/bookworm/stray"))
	sameTree(t, r.Base, dir)

	// A sync that fails half way leaves the target behind; the next
	// command completes it.
	flaky := &flakyStorage{Storage: &storage.DirStorage{Root: dir}}
	flaky.failAfter.Store(2)
	pt.Storage = flaky
	_, err = r.IncludeDeb(ctx, "bookworm", []string{buildDeb(t, debs, pkgSpec{name: "new", version: "1"})}, IncludeOptions{})
	if !errors.Is(err, ErrTargetBehind) || !strings.Contains(err.Error(), "export") || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("include with a failing target: %v", err)
	}
	if rep, _ := r.CheckTarget(ctx, pt, false); !rep.Behind || rep.Clean() {
		t.Fatalf("not marked behind: %+v", rep)
	}
	flaky.failAfter.Store(-1)
	if _, err := r.Export(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err = r.CheckTarget(ctx, pt, false)
	if err != nil || !rep.Clean() {
		t.Fatalf("after export: %+v %v", rep, err)
	}
	sameTree(t, r.Base, dir)
}

// flakyStorage fails every write once failAfter writes succeeded (never
// when failAfter is negative).
type flakyStorage struct {
	storage.Storage
	failAfter, writes atomic.Int64
}

func (f *flakyStorage) WriteFile(ctx context.Context, name string, data []byte) error {
	if limit := f.failAfter.Load(); limit >= 0 && f.writes.Add(1) > limit {
		return errors.New("injected failure")
	}
	return f.Storage.WriteFile(ctx, name, data)
}

// TestLoadTargets reads conf/targets and reports mistakes with file:line.
func TestLoadTargets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if ts, err := LoadTargets(dir); err != nil || ts != nil {
		t.Fatalf("no conf/targets: %v %v", ts, err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "targets"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Name: cdn\nURL: s3://apt/lampi/\nEndpoint: 127.0.0.1:9000\nPathStyle: yes\nInsecure: yes\nCodenames: stable testing\n\nURL: file:///srv/mirror\n")
	ts, err := LoadTargets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Name != "cdn" || !ts[0].PathStyle || !ts[0].Insecure || len(ts[0].Codenames) != 2 ||
		ts[1].Name != "file:///srv/mirror" || ts[1].Line != 8 {
		t.Fatalf("targets %+v %+v", ts[0], ts[1])
	}
	pt, err := storage.OpenTarget(*ts[0], storage.S3Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := pt.Storage.(*storage.S3Storage); !ok || s.Prefix() != "lampi" || s.Bucket() != "apt" || !pt.Covers("stable") || pt.Covers("other") {
		t.Fatalf("opened %+v", pt)
	}
	for _, c := range []struct{ conf, want string }{
		{"Name: x\nURL: http://example.org/\n", "targets:2: "},
		{"Name: x\nURL: s3://b\nPathStyle: maybe\n", "targets:3: "},
		{"Name: x\n", "targets:1: "},
		{"URL: s3://b\nSecretAccessKey: hunter2\n", "targets:2: "},
		{"URL: s3://b\nColour: red\n", "targets:2: "},
		{"URL: file:///a\nEndpoint: x\n", "targets:1: "},
		{"Name: a\nURL: s3://b\n\nName: a\nURL: s3://c\n", "targets:4: "},
		{"URL: s3://b/../x\n", "targets:1: "},
	} {
		write(c.conf)
		_, err := LoadTargets(dir)
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.conf, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	if _, err := storage.OpenTarget(storage.TargetConfig{URL: "s3://user:pw@bucket/x"}, storage.S3Credentials{}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("credentials in the URL: %v", err)
	}
	if s := (storage.S3Credentials{AccessKeyID: "AK", SecretAccessKey: "SECRET"}); strings.Contains(s.String(), "SECRET") {
		t.Error("String shows the secret")
	}
}
