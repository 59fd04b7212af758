package updateserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// passphrase unlocks fixtures/keys/protected.sec.asc.
func passphrase(string) ([]byte, error) { return []byte("lampi-test-passphrase"), nil }

// testRepo makes a repository whose bookworm (suite stable) is signed
// with the passphrase-protected fixture key, publishes it empty and
// returns its base directory and a keyring file for gpgv.
func testRepo(t *testing.T) (base, keyring string) {
	t.Helper()
	keyFile, err := filepath.Abs("../fixtures/keys/protected.sec.asc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base = filepath.Join(dir, "repo")
	layout := repo.Layout{Base: base}
	if err := os.MkdirAll(layout.Conf(), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "Origin: Lampi\nSuite: stable\nCodename: bookworm\nArchitectures: amd64\nComponents: main\nSignWith: " + keyFile + "\n"
	if err := os.WriteFile(filepath.Join(layout.Conf(), "distributions"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(base, repo.Options{Now: time.Now, Signer: repo.KeyDirSigners(layout.KeyDir(), time.Now, passphrase)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	kf, err := os.Open(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	key, err := signing.ReadKey(kf)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := key.WritePublic(&pub, false); err != nil {
		t.Fatal(err)
	}
	keyring = filepath.Join(dir, "protected.pub.gpg")
	if err := os.WriteFile(keyring, pub.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return base, keyring
}

// buildDeb returns the bytes of package name at version.
func buildDeb(t *testing.T, name, version string) []byte {
	t.Helper()
	var b bytes.Buffer
	_, err := deb.Build(context.Background(), fstest.MapFS{
		"DEBIAN/control": {Data: []byte("Package: " + name + "\nVersion: " + version +
			"\nArchitecture: all\nMaintainer: T <t@example.org>\nSection: misc\nPriority: optional\nDescription: test\n")},
		"usr/share/" + name + "/data": {Data: []byte(name + " " + version + "\n")},
	}, &b, deb.BuildOptions{Mtime: time.Unix(1700000000, 0), Compression: deb.CompressGzip})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// notes collects what a Server tells the operator (Config.Notef).
type notes struct {
	mu    sync.Mutex
	lines []string
}

func (n *notes) notef(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, fmt.Sprintf(format, args...))
}

func (n *notes) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.lines, "\n")
}

// running is a Server run on 127.0.0.1:0 by start.
type running struct {
	s    *Server
	url  string
	stop context.CancelFunc
	done chan error
}

// start runs s on a free loopback port until the test ends (or
// shutdown).
func start(t *testing.T, s *Server) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, url: "http://" + ln.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx, ln) }()
	t.Cleanup(func() { cancel(); s.Close() })
	return r
}

// shutdown cancels Run's context and returns what Run returned, failing
// the test when it does not return within a generous deadline.
func (r *running) shutdown(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return within 2 minutes of its context's end")
		return nil
	}
}

// get fetches path and returns status and body.
func (r *running) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(r.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// gpgv checks an InRelease with the real gpgv.
func gpgv(t *testing.T, keyring string, inRelease []byte) {
	t.Helper()
	tool := testutil.RequireTool(t, "gpgv")
	f := filepath.Join(t.TempDir(), "InRelease")
	if err := os.WriteFile(f, inRelease, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "--keyring", keyring, f).CombinedOutput(); err != nil {
		t.Fatalf("gpgv InRelease: %v\n%s", err, out)
	}
}

// publishState connects to the MQTT broker at addr anonymously as device
// id and publishes its state (retained, QoS 1).
func publishState(t *testing.T, addr, id string, packages map[string]string) {
	t.Helper()
	publishFull(t, addr, state.State{Seq: 1, Time: time.Now(), Device: id, Packages: packages})
}

// newestInReport waits (generous deadline) until the fleet report lists
// pkg with devices, and returns its newest version and who is behind.
func (r *running) newestInReport(t *testing.T, pkg string) (newest string, behind []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body := r.get(t, "/api/v1/fleet/report?package="+pkg)
		if code != http.StatusOK {
			t.Fatalf("fleet report: %d %s", code, body)
		}
		var rep struct {
			Packages []struct {
				Name   string   `json:"name"`
				Newest string   `json:"newest"`
				Behind []string `json:"behind"`
			} `json:"packages"`
		}
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatalf("fleet report: %v\n%s", err, body)
		}
		for _, p := range rep.Packages {
			if p.Name == pkg {
				return p.Newest, p.Behind
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no device reported %s within 2 minutes: %s", pkg, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// includeHi opens the server's repository and includes the hi package at
// each version into bookworm, in order; it returns the repository.
func includeHi(t *testing.T, ctx context.Context, s *Server, versions ...string) *repo.Repo {
	t.Helper()
	r, err := s.openRepo()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		p := filepath.Join(t.TempDir(), "hi_"+v+"_all.deb")
		if err := os.WriteFile(p, buildDeb(t, "hi", v), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := r.IncludeDeb(ctx, "bookworm", []string{p}, repo.IncludeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}
