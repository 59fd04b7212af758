package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestBuildSameBytesForAnyUser builds the fixture trees with the real
// binary twice: once as the current user and once as another one (nobody
// through setpriv when we are root, fakeroot's pretend root otherwise),
// and requires byte-identical packages.
func TestBuildSameBytesForAnyUser(t *testing.T) {
	testutil.Heavy(t, "compiles lampi-pkg with go build and builds packages as other users under fakeroot and setpriv")
	exe := buildBinary(t)
	var other []string
	if os.Geteuid() == 0 {
		other = []string{testutil.RequireTool(t, "setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"}
	} else {
		other = []string{testutil.RequireTool(t, "fakeroot")}
	}
	for _, fixture := range []string{"hi", "lampi-service"} {
		t.Run(fixture, func(t *testing.T) {
			work := worldDir(t)
			src := filepath.Join(work, fixture)
			if out, err := exec.Command("cp", "-a", filepath.Join("..", "..", "fixtures", fixture), src).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			a, b := filepath.Join(work, "a.deb"), filepath.Join(work, "b.deb")
			runAs(t, nil, exe, "build", src, "-o", a)
			runAs(t, other, exe, "build", src, "-o", b)
			da, _ := os.ReadFile(a)
			db, err := os.ReadFile(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(da) == 0 || !bytes.Equal(da, db) {
				t.Fatalf("packages differ: %d and %d bytes", len(da), len(db))
			}
			st, _ := os.Stat(b)
			if os.Geteuid() == 0 && st.Sys() != nil {
				if uid := fileUID(st); uid != 65534 {
					t.Fatalf("b.deb owned by uid %d: the second build did not run as nobody", uid)
				}
			}
		})
	}
}

// worldDir is a temp dir that another user can read and write.
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lampi-users-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runAs(t *testing.T, prefix []string, exe string, args ...string) {
	t.Helper()
	argv := append(append(append([]string{}, prefix...), exe), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
}

// buildBinary compiles lampi-pkg into a directory every user can read.
func buildBinary(t *testing.T) string {
	t.Helper()
	dir := worldDir(t)
	exe := filepath.Join(dir, "lampi-pkg")
	cmd := exec.Command("go", "build", "-o", exe, "../../cmd/lampi-pkg")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

func fileUID(st os.FileInfo) uint32 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Uid
	}
	return 0
}
