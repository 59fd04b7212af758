package repo

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// aptRoot is an isolated apt + dpkg installation (DESIGN.md, "Testing
// against real apt and dpkg without touching the machine").
type aptRoot struct {
	t    testing.TB
	root string
}

func newAptRoot(t testing.TB, sources string) *aptRoot {
	t.Helper()
	testutil.RequireTool(t, "apt-get")
	testutil.RequireTool(t, "dpkg")
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/apt/lists/partial",
		"var/cache/apt/archives/partial", "var/log/apt", "etc/apt/preferences.d", "etc/apt/apt.conf.d"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), status, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte(sources), 0o644); err != nil {
		t.Fatal(err)
	}
	return &aptRoot{t: t, root: root}
}

// run runs apt-get in the isolated root and returns its combined output.
func (a *aptRoot) run(args ...string) (string, error) {
	r := a.root
	base := []string{"-o", "Dir=" + r, "-o", "Dir::State::status=" + r + "/var/lib/dpkg/status",
		"-o", "Dir::Etc::SourceParts=/dev/null", "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1",
		"-o", "Dir::Bin::dpkg=/usr/bin/dpkg", "-o", "Dpkg::Options::=--instdir=" + r,
		"-o", "Dpkg::Options::=--admindir=" + r + "/var/lib/dpkg",
		"-o", "Dpkg::Options::=--force-script-chrootless", "-o", "Dpkg::Options::=--force-not-root",
		"-o", "Dpkg::Options::=--log=/dev/null", "-o", "APT::Architecture=amd64",
		"-o", "Acquire::Languages=none", "-o", "Acquire::Retries=0", "-q", "-y"}
	cmd := exec.Command("apt-get", append(base, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (a *aptRoot) mustRun(args ...string) string {
	a.t.Helper()
	out, err := a.run(args...)
	if err != nil {
		a.t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// update runs apt-get update and fails on any warning or error line.
func (a *aptRoot) update() {
	a.t.Helper()
	out := a.mustRun("update")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "Err:") {
			a.t.Fatalf("apt-get update warned:\n%s", out)
		}
	}
}

// signedRepo makes a signed repository with a stable → bookworm link and
// returns it with the public keyring's path. now dates its Release files
// (nil: the fixed test time).
func signedRepo(t testing.TB, now func() time.Time) (*Repo, string) {
	t.Helper()
	keys := t.TempDir()
	k, pub := testKey(t, keys)
	var sec bytes.Buffer
	if err := k.WriteSecret(&sec, true); err != nil {
		t.Fatal(err)
	}
	secPath := filepath.Join(keys, "signing.asc")
	if err := os.WriteFile(secPath, sec.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("Origin: Lampi\nLabel: Lampi\nSuite: stable\nCodename: bookworm\nArchitectures: amd64 armhf\nComponents: main\nDescription: apt test\nSignWith: %s\nDebIndices: Packages Release . .gz .xz\n", secPath)
	r := newTestRepo(t, conf, Options{Now: now})
	if _, err := r.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.CreateSymlinks(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	return r, pub
}

// TestAptInstallAndUpgrade serves the repository on 127.0.0.1 to a real
// apt-get: update without warnings, install, then upgrade after a newer
// version was included; once as apt chooses and once with by-hash forced.
func TestAptInstallAndUpgrade(t *testing.T) {
	t.Parallel()
	for _, byHash := range []string{"", " by-hash=force"} {
		t.Run("byhash="+strings.TrimSpace(byHash), func(t *testing.T) {
			t.Parallel()
			r, pub := signedRepo(t, nil)
			var mu sync.Mutex
			var paths []string
			files := http.FileServer(http.Dir(r.Base))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				mu.Lock()
				paths = append(paths, req.URL.Path)
				mu.Unlock()
				files.ServeHTTP(w, req)
			}))
			defer srv.Close()
			debs := t.TempDir()
			mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))

			apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s%s] %s/ stable main\n", pub, byHash, srv.URL))
			apt.update()
			apt.mustRun("install", "hi")
			if got := readFile(t, filepath.Join(apt.root, "usr/share/hi/data")); got != "hi 0.1\n" {
				t.Fatalf("installed data %q", got)
			}

			mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"}))
			apt.update()
			out := apt.mustRun("install", "--only-upgrade", "hi")
			if !strings.Contains(out, "hi") {
				t.Errorf("upgrade output:\n%s", out)
			}
			if got := readFile(t, filepath.Join(apt.root, "usr/share/hi/data")); got != "hi 0.2\n" {
				t.Fatalf("after upgrade data %q\n%s", got, out)
			}
			mu.Lock()
			defer mu.Unlock()
			fetched := strings.Join(paths, "\n")
			if !strings.Contains(fetched, "/by-hash/SHA512/") {
				t.Errorf("apt never fetched by hash:\n%s", fetched)
			}
			if byHash != "" && strings.Contains(fetched, "/binary-amd64/Packages") {
				t.Errorf("by-hash=force, yet apt fetched an index by name:\n%s", fetched)
			}
		})
	}
}
