package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
)

// TestServeRenewsReleases: a repository published two hours ago with
// ValidFor: 1h has expired, and a real apt refuses it; serve re-signs it on
// its own, and apt updates and installs through serve. Then the injected
// clock moves 35 minutes on (less than half of ValidFor left, not expired
// yet): serve re-signs it again, with the new time.
func TestServeRenewsReleases(t *testing.T) {
	gpgv := testutil.RequireTool(t, "gpgv")
	keys, err := filepath.Abs("../../fixtures/keys")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := filepath.Join(dir, "repo")
	if err := os.MkdirAll(filepath.Join(base, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "Origin: Lampi\nSuite: stable\nCodename: bookworm\nArchitectures: amd64\nComponents: main\nValidFor: 1h\nSignWith: " +
		filepath.Join(keys, "lampi-test.sec.asc") + "\n"
	if err := os.WriteFile(filepath.Join(base, "conf", "distributions"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }

	// Published two hours ago: expired an hour ago.
	offset.Store(int64(-2 * time.Hour))
	var pkg bytes.Buffer
	res, err := deb.Build(context.Background(), fstest.MapFS{
		"DEBIAN/control":    {Data: []byte("Package: hi\nVersion: 0.1\nArchitecture: all\nMaintainer: T <t@example.org>\nSection: misc\nPriority: optional\nDescription: hi\n")},
		"usr/share/hi/data": {Data: []byte("hi 0.1\n")},
	}, &pkg, deb.BuildOptions{Mtime: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	debFile := filepath.Join(dir, res.Filename)
	if err := os.WriteFile(debFile, pkg.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(base, repo.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.IncludeDeb(context.Background(), "bookworm", []string{debFile}, repo.IncludeOptions{}); err != nil {
		t.Fatal(err)
	}
	offset.Store(0)

	aptFor := func(url string) *testutil.AptRoot {
		a := testutil.NewAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ bookworm main\n", filepath.Join(keys, "lampi-test.pub.gpg"), url))
		// As on a device: this machine's apt configuration may turn the
		// time checks off.
		a.Extra = append(a.Extra, "-o", "Acquire::Check-Date=true", "-o", "Acquire::Check-Valid-Until=true")
		return a
	}
	static := httptest.NewServer(http.FileServer(http.Dir(base)))
	if out, err := aptFor(static.URL).Run("update"); err == nil || !strings.Contains(out, "is expired") {
		t.Fatalf("apt-get update accepted an expired Release: %v\n%s", err, out)
	}
	static.Close()

	addrFile := filepath.Join(dir, "addr")
	stderr := &syncBuffer{}
	env := &Env{In: strings.NewReader(""), Out: io.Discard, Err: stderr, Getenv: func(string) string { return "" }, Now: clock}
	o := &serveOptions{env: env, repo: base, listen: "127.0.0.1:0", maxUpload: "1MB", lockTimeout: 10 * time.Second,
		accessLog: "off", logFormat: "json", addrFile: addrFile, renewInterval: 20 * time.Millisecond,
		fleet: serveFleetOptions{mqttListen: "127.0.0.1:0"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, o) }()
	// waitFor waits, with a generous deadline, until the published Release
	// is dated at or after t.
	dateRE := regexp.MustCompile(`(?m)^Date: (.*)$`)
	release := filepath.Join(base, "dists/bookworm/Release")
	waitFor := func(what string, t0 time.Time) string {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			select {
			case err := <-done:
				t.Fatalf("serve ended: %v\n%s", err, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			b, _ := os.ReadFile(release)
			if m := dateRE.FindSubmatch(b); m != nil {
				if d, err := time.Parse(time.RFC1123, string(m[1])); err == nil && !d.Before(t0.Truncate(time.Second)) {
					return string(b)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not renewed within 2 minutes; Release:\n%s\nserve:\n%s", what, b, stderr.String())
			}
		}
	}
	waitFor("the expired Release", time.Now())
	addr, err := os.ReadFile(addrFile)
	if err != nil {
		t.Fatal(err)
	}
	apt := aptFor("http://" + strings.TrimSpace(string(addr)))
	apt.Update()
	apt.MustRun("install", "hi")

	// 35 minutes on: 25 of 60 left.
	later := time.Now().Add(35 * time.Minute)
	offset.Store(int64(35 * time.Minute))
	rel := waitFor("the Release with 25 minutes left", later)
	d, _ := time.Parse(time.RFC1123, string(dateRE.FindStringSubmatch(rel)[1]))
	if want := "Valid-Until: " + d.Add(time.Hour).UTC().Format("Mon, 02 Jan 2006 15:04:05") + " UTC\n"; !strings.Contains(rel, want) {
		t.Errorf("renewed Release lacks %q:\n%s", want, rel)
	}
	if out, err := exec.Command(gpgv, "--keyring", filepath.Join(keys, "lampi-test.pub.gpg"), filepath.Join(base, "dists/bookworm/InRelease")).CombinedOutput(); err != nil {
		t.Fatalf("gpgv InRelease: %v\n%s", err, out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "re-signed dists/bookworm/Release: valid until"); n != 2 {
		t.Errorf("%d renewals logged, want 2:\n%s", n, stderr.String())
	}
}
