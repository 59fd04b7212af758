package server

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// copyTree copies the directory src to dst (which must not exist) as
// cp -a does: modes, modification times and symbolic links kept.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case fi.IsDir():
			return os.Mkdir(out, fi.Mode().Perm())
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, in); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Chtimes(out, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

func mustRename(t testing.TB, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// status GETs path from every base URL and returns the status all of
// them answered (the test fails if they differ).
func status(t *testing.T, bases []string, path string) int {
	t.Helper()
	code := 0
	for i, b := range bases {
		r, _ := get(t, nil, b+path)
		if i > 0 && r.StatusCode != code {
			t.Fatalf("GET %s: %s answers %d, %s %d", path, b, r.StatusCode, bases[0], code)
		}
		code = r.StatusCode
	}
	return code
}

// TestServeFollowsReplacedTree: while the server runs, dists/ is replaced
// by a backup, pool/ too, dists/ is removed and put back, the whole
// repository directory is replaced, and a symbolic link naming the
// repository is switched: every request made afterwards — full or
// conditional, through the fast path or net/http — is answered from what
// is at the path now, and the cache answers 304 again afterwards. Once
// with the inotify watches, once without (as where the paths cannot be
// watched: every request looks).
func TestServeFollowsReplacedTree(t *testing.T) {
	t.Parallel()
	for _, watched := range []bool{true, false} {
		t.Run(fmt.Sprintf("watched=%v", watched), func(t *testing.T) {
			t.Parallel()
			followsReplacedTree(t, watched)
		})
	}
}

func followsReplacedTree(t *testing.T, watched bool) {
	tr := newTestRepo(t)
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.1", ""), "hi_0.1_all.deb")
	saved := filepath.Join(t.TempDir(), "v1")
	copyTree(t, tr.dir, saved)
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.2", ""), "hi_0.2_all.deb")
	v1 := readTestFile(t, filepath.Join(saved, "dists", "bookworm", "InRelease"))
	v2 := readTestFile(t, filepath.Join(tr.dir, "dists", "bookworm", "InRelease"))
	if v1 == v2 {
		t.Fatal("the two publishes have the same InRelease")
	}

	s, front := startServer(t, Options{Dir: tr.dir})
	s.files.unwatched.Store(!watched)
	plain := httptest.NewServer(s)
	defer plain.Close()
	bases := []string{front.URL, plain.URL}
	const u = "/dists/stable/InRelease"
	const deb1, deb2 = "/pool/main/h/hi/hi_0.1_all.deb", "/pool/main/h/hi/hi_0.2_all.deb"
	h := fetchAll(t, bases, u)
	revalidate(t, "start", bases, u, h, v2)
	// now: what the server must serve; h is what a client holds.
	now := func(step, want string) {
		t.Helper()
		revalidate(t, step, bases, u, h, want)
		h = fetchAll(t, bases, u)
		if h.body != want {
			t.Fatalf("%s: InRelease %.60q, want %.60q", step, h.body, want)
		}
		revalidate(t, step+", again", bases, u, h, want)
	}

	dists := filepath.Join(tr.dir, "dists")
	mustRename(t, dists, dists+".v2")
	copyTree(t, filepath.Join(saved, "dists"), dists)
	now("dists/ replaced by a backup", v1)

	pool := filepath.Join(tr.dir, "pool")
	if status(t, bases, deb2) != 200 || status(t, bases, deb1) != 404 {
		t.Fatal("pool/ before: want hi 0.2 only")
	}
	mustRename(t, pool, pool+".v2")
	copyTree(t, filepath.Join(saved, "pool"), pool)
	if c1, c2 := status(t, bases, deb1), status(t, bases, deb2); c1 != 200 || c2 != 404 {
		t.Fatalf("pool/ replaced by a backup: hi 0.1 %d, hi 0.2 %d; want 200, 404", c1, c2)
	}

	if err := os.RemoveAll(dists); err != nil {
		t.Fatal(err)
	}
	if c := status(t, bases, u); c != 404 {
		t.Fatalf("dists/ removed: InRelease %d", c)
	}
	mustRename(t, dists+".v2", dists)
	if c := status(t, bases, u); c != 200 {
		t.Fatalf("dists/ put back: InRelease %d", c)
	}
	now("dists/ put back", v2)

	// The whole repository directory replaced.
	mustRename(t, tr.dir, tr.dir+".old")
	copyTree(t, saved, tr.dir)
	now("repository replaced", v1)
	if c := status(t, bases, "/repo-key.gpg"); c != 200 {
		t.Fatalf("repository replaced: key %d", c)
	}

	// A server started on a symbolic link, switched to another tree.
	link := filepath.Join(t.TempDir(), "current")
	if err := os.Symlink(tr.dir+".old", link); err != nil {
		t.Fatal(err)
	}
	s2, front2 := startServer(t, Options{Dir: link})
	s2.files.unwatched.Store(!watched)
	plain2 := httptest.NewServer(s2)
	defer plain2.Close()
	bases = []string{front2.URL, plain2.URL}
	h = fetchAll(t, bases, u)
	revalidate(t, "through the link", bases, u, h, v2)
	next := link + ".new"
	if err := os.Symlink(tr.dir, next); err != nil {
		t.Fatal(err)
	}
	mustRename(t, next, link)
	now("link switched", v1)
}

// TestAptThroughServeFollowsReplacedTree: a device's apt, through serve,
// installs hi 0.1; a tree published elsewhere (hi 0.2) is moved into
// place as dists/ and pool/ while serve runs, and apt upgrades; the old
// tree is then moved back (dated before the one apt holds), and apt sees
// hi 0.1 again.
func TestAptThroughServeFollowsReplacedTree(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.1", ""), "hi_0.1_all.deb")
	_, front := startServer(t, Options{Dir: tr.dir})
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", tr.pub, front.URL))
	apt.Update()
	apt.MustRun("install", "hi")

	staging := filepath.Join(t.TempDir(), "staging")
	copyTree(t, tr.dir, staging)
	p := filepath.Join(tr.debDir, "hi_0.2_all.deb")
	mustWrite(t, p, buildDeb(t, "hi", "0.2", ""))
	if _, err := openRepo(t, staging).IncludeDeb(context.Background(), "bookworm", []string{p}, repo.IncludeOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"dists", "pool"} {
		mustRename(t, filepath.Join(tr.dir, d), filepath.Join(tr.dir, d+".old"))
		mustRename(t, filepath.Join(staging, d), filepath.Join(tr.dir, d))
	}
	apt.Update()
	apt.MustRun("install", "--only-upgrade", "hi")
	if got := readTestFile(t, filepath.Join(apt.Root, "usr/share/hi/data")); got != "hi 0.2\n" {
		t.Fatalf("after the new tree: hi data %q, want 0.2", got)
	}

	for _, d := range []string{"dists", "pool"} {
		mustRename(t, filepath.Join(tr.dir, d), filepath.Join(tr.dir, d+".new"))
		mustRename(t, filepath.Join(tr.dir, d+".old"), filepath.Join(tr.dir, d))
	}
	out := apt.Update()
	sim, err := apt.Run("-s", "--allow-downgrades", "install", "hi=0.1")
	if err != nil || !strings.Contains(sim, "Inst hi [0.2] (0.1 ") {
		t.Fatalf("after moving the old tree back apt does not offer hi 0.1: %v\nupdate:\n%s\nsimulated install:\n%s", err, out, sim)
	}
}

func readTestFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
