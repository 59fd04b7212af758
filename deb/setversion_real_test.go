package deb_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestSetVersionRealPackages: Debian's own packages (xz members, epochs,
// conffiles, maintainer scripts, triggers, templates) repacked under a
// revert version: dpkg-deb sees the same files, the same control members
// byte for byte but the Version line, and the new version.
func TestSetVersionRealPackages(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "dpkg-deb")
	debs := testutil.RealDebs(t)
	for name, path := range debs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			oldVersion := strings.TrimSpace(mustRun(t, "dpkg-deb", "-f", path, "Version"))
			newVersion := oldVersion + "+revert1"
			repacked, _ := setVersion(t, path, newVersion)
			if v := strings.TrimSpace(mustRun(t, "dpkg-deb", "-f", repacked, "Version")); v != newVersion {
				t.Fatalf("version %q, want %q", v, newVersion)
			}
			fsys := func(p string) []byte {
				out, err := exec.Command("dpkg-deb", "--fsys-tarfile", p).Output()
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			if !bytes.Equal(fsys(path), fsys(repacked)) {
				t.Error("the data differs")
			}
			a, b := t.TempDir(), t.TempDir()
			mustRun(t, "dpkg-deb", "-e", path, a)
			mustRun(t, "dpkg-deb", "-e", repacked, b)
			entries, _ := os.ReadDir(a)
			if len(entries) == 0 {
				t.Fatal("no control members")
			}
			for _, e := range entries {
				x, _ := os.ReadFile(filepath.Join(a, e.Name()))
				y, err := os.ReadFile(filepath.Join(b, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if e.Name() == "control" {
					x = bytes.Replace(x, []byte("Version: "+oldVersion+"\n"), []byte("Version: "+newVersion+"\n"), 1)
				}
				if !bytes.Equal(x, y) {
					t.Errorf("%s differs", e.Name())
				}
			}
		})
	}
}
