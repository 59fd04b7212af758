package bump

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// tree writes a txtar archive's files into a new directory.
func tree(t *testing.T, archive string) string {
	t.Helper()
	dir := t.TempDir()
	writeArchive(t, dir, txtar.Parse([]byte(archive)))
	return dir
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const hiTree = `
-- DEBIAN/control --
Package: hi
Version: 1:0.1-3
Architecture: all
Maintainer: LAMPi Course <lampi@example.org>
Description: the course's hello-world package
 Installs /opt/hi/hi.
-- opt/hi/__VERSION__ --
0.1
-- .bumpversion.cfg --
[bumpversion]
current_version = 0.1
parse = (?P<major>\d+)\.(?P<minor>\d+)
serialize = {major}.{minor}

[bumpversion:file:opt/hi/__VERSION__]

`

func TestConfiguredTreeUpdatesControl(t *testing.T) {
	dir := tree(t, hiTree)
	ctx := context.Background()
	p, err := Prepare(ctx, Options{Dir: dir, Part: "minor"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Old != "1:0.1-3" || p.New != "1:0.2-1" || p.ConfigOld != "0.1" || p.ConfigNew != "0.2" {
		t.Errorf("plan %s → %s, config %s → %s", p.Old, p.New, p.ConfigOld, p.ConfigNew)
	}
	var diff bytes.Buffer
	p.WriteDiff(&diff)
	want := "opt/hi/__VERSION__:1\n- 0.1\n+ 0.2\n.bumpversion.cfg:2\n- current_version = 0.1\n+ current_version = 0.2\n.bumpversion.cfg:7\n- \nDEBIAN/control:2\n- Version: 1:0.1-3\n+ Version: 1:0.2-1\n"
	if diff.String() != want {
		t.Errorf("diff:\n%s\nwant:\n%s", diff.String(), want)
	}
	if readFile(t, dir, "opt/hi/__VERSION__") != "0.1\n" {
		t.Errorf("Prepare wrote a file")
	}
	if _, err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, dir, "DEBIAN/control"); !strings.Contains(got, "\nVersion: 1:0.2-1\n") {
		t.Errorf("control after:\n%s", got)
	}

	// revision: only DEBIAN/control, the configuration stays.
	p, err = Prepare(ctx, Options{Dir: dir, Part: Revision})
	if err != nil {
		t.Fatal(err)
	}
	if p.New != "1:0.2-2" || len(p.Files) != 1 || p.Files[0].Path != ControlPath {
		t.Errorf("revision: %s, files %+v", p.New, p.Files)
	}
}

func TestRollbackRestoresEveryByte(t *testing.T) {
	dir := tree(t, hiTree)
	// an odd mode, a symbolic link to a listed file and CRLF endings
	os.Chmod(filepath.Join(dir, "opt/hi/__VERSION__"), 0o600)
	os.WriteFile(filepath.Join(dir, "real.txt"), []byte("v0.1\r\nend\r\n"), 0o644)
	os.Symlink("real.txt", filepath.Join(dir, "link.txt"))
	cfg := readFile(t, dir, ".bumpversion.cfg") + "[bumpversion:file:link.txt]\n"
	os.WriteFile(filepath.Join(dir, ".bumpversion.cfg"), []byte("# hand-written\n"+cfg), 0o644)
	before := snapshot(t, dir)

	ctx := context.Background()
	p, err := Prepare(ctx, Options{Dir: dir, Part: "major"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Apply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, dir, "real.txt"); got != "v1.0\r\nend\r\n" {
		t.Errorf("through the link: %q", got)
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "link.txt")); fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link.txt is no longer a symbolic link")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "opt/hi/__VERSION__")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if err := a.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, dir); !equalTrees(before, after) {
		t.Errorf("rollback did not restore the tree:\n%v\n%v", before, after)
	}
}

func TestApplyConflicts(t *testing.T) {
	dir := tree(t, hiTree)
	ctx := context.Background()
	p, err := Prepare(ctx, Options{Dir: dir, Part: "minor"})
	if err != nil {
		t.Fatal(err)
	}
	// Someone edits the control file between Prepare and Apply: the
	// files written before it are restored.
	os.WriteFile(filepath.Join(dir, ControlPath), []byte("Package: hi\nVersion: 9\n"), 0o644)
	before := snapshot(t, dir)
	if _, err := p.Apply(ctx); !errors.Is(err, ErrConflict) {
		t.Fatalf("Apply = %v, want ErrConflict", err)
	}
	if after := snapshot(t, dir); !equalTrees(before, after) {
		t.Errorf("a failed Apply left changes")
	}

	// A file changed after Apply is left alone by Rollback; the others
	// are restored.
	dir = tree(t, hiTree)
	p, _ = Prepare(ctx, Options{Dir: dir, Part: "minor"})
	a, err := p.Apply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "opt/hi/__VERSION__"), []byte("edited\n"), 0o644)
	if err := a.Rollback(ctx); !errors.Is(err, ErrConflict) {
		t.Errorf("Rollback = %v, want ErrConflict", err)
	}
	if readFile(t, dir, "opt/hi/__VERSION__") != "edited\n" || !strings.Contains(readFile(t, dir, ControlPath), "Version: 1:0.1-3\n") {
		t.Errorf("rollback with a conflict: wrong files")
	}
}

// TestDifferencesFromBumpversion pins what lampi-pkg refuses on purpose
// where bump2version goes ahead (see the package documentation).
func TestDifferencesFromBumpversion(t *testing.T) {
	ctx := context.Background()
	devBuild := "-- .bumpversion.cfg --\n[bumpversion]\ncurrent_version = 1.0.1-dev1\nparse = (?P<major>\\d+)\\.(?P<minor>\\d+)\\.(?P<patch>\\d+)(\\-(?P<release>[a-z]+)(?P<build>\\d+))?\nserialize =\n\t{major}.{minor}.{patch}-{release}{build}\n\t{major}.{minor}.{patch}\n[bumpversion:part:release]\noptional_value = prod\nfirst_value = dev\nvalues =\n\tdev\n\tprod\n[bumpversion:file:VERSION]\n-- VERSION --\n1.0.1-dev1\n"
	for _, tc := range []struct {
		name, archive string
		o             Options
		want          error
	}{
		// bump2version: 1.0.1-dev1 → 1.0.1; dpkg sorts that backwards.
		{"release sorts backwards", devBuild, Options{Part: "release"}, ErrOrder},
		// bump2version: a part not in serialize is a silent no-op.
		{"unknown part", devBuild, Options{Part: "pre"}, ErrPart},
		// bump2version accepts any string; dpkg does not.
		{"not a Debian version", devBuild, Options{NewVersion: "1.0.2_beta"}, ErrVersion},
		{"no version at all", "-- README --\nx\n", Options{Part: Patch}, ErrNoVersion},
		{"control disagrees", strings.Replace(hiTree, "Version: 1:0.1-3", "Version: 0.5", 1), Options{Part: Minor}, ErrMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, tc.archive)
			before := snapshot(t, dir)
			tc.o.Dir = dir
			_, err := Prepare(ctx, tc.o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Prepare = %v, want %v", err, tc.want)
			}
			t.Logf("%v", err)
			if after := snapshot(t, dir); !equalTrees(before, after) {
				t.Errorf("Prepare changed files")
			}
		})
	}
}
