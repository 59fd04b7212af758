package repo

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// newAptRoot is an isolated apt + dpkg installation (DESIGN.md, "Testing
// against real apt and dpkg without touching the machine").
func newAptRoot(t testing.TB, sources string) *testutil.AptRoot {
	t.Helper()
	return testutil.NewAptRoot(t, sources)
}

// testKeyFile generates a signing key and writes its secret key file (for
// SignWith) and its public keyring; it returns both paths.
func testKeyFile(t testing.TB) (secret, public string) {
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
	return secPath, pub
}

// signedRepo makes a signed repository with a stable → bookworm link and
// returns it with the public keyring's path. now dates its Release files
// (nil: the fixed test time).
func signedRepo(t testing.TB, now func() time.Time) (*Repo, string) {
	t.Helper()
	secPath, pub := testKeyFile(t)
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
	// The package's end to end under -short: a real apt-get.
	testutil.KeepInShort(t)
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
			apt.Update()
			apt.MustRun("install", "hi")
			if got := readFile(t, filepath.Join(apt.Root, "usr/share/hi/data")); got != "hi 0.1\n" {
				t.Fatalf("installed data %q", got)
			}

			mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"}))
			apt.Update()
			out := apt.MustRun("install", "--only-upgrade", "hi")
			if !strings.Contains(out, "hi") {
				t.Errorf("upgrade output:\n%s", out)
			}
			if got := readFile(t, filepath.Join(apt.Root, "usr/share/hi/data")); got != "hi 0.2\n" {
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
