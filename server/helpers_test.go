package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// testNow dates keys, packages and Release files.
var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// testRepo is a signed repository (bookworm, suite stable, amd64 armhf)
// with its public keyring exported at the top as repo-key.gpg.
type testRepo struct {
	dir    string
	pub    string // public keyring path
	key    *signing.Key
	debDir string
}

func newTestRepo(t testing.TB) *testRepo {
	t.Helper()
	dir := t.TempDir()
	k, err := signing.GenerateKey(signing.GenerateOptions{Name: "Serve Test", Email: "serve@example.org", Now: testNow.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var sec, pub bytes.Buffer
	if err := k.WriteSecret(&sec, true); err != nil {
		t.Fatal(err)
	}
	if err := k.WritePublic(&pub, false); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "conf", "keys", "signing.asc"), sec.Bytes())
	mustWrite(t, filepath.Join(dir, "repo-key.gpg"), pub.Bytes())
	conf := "Origin: Lampi\nLabel: Lampi\nSuite: stable\nCodename: bookworm\nArchitectures: amd64 armhf\nComponents: main\n" +
		"Description: serve test\nSignWith: yes\nDebIndices: Packages Release . .gz .xz\n\n" +
		"Origin: Lampi\nLabel: Lampi\nSuite: testing\nCodename: trixie\nArchitectures: amd64 armhf\nComponents: main\n" +
		"Description: serve test testing\nSignWith: yes\n"
	mustWrite(t, filepath.Join(dir, "conf", "distributions"), []byte(conf))
	r := openRepo(t, dir)
	ctx := context.Background()
	if _, err := r.Export(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.CreateSymlinks(ctx, false); err != nil {
		t.Fatal(err)
	}
	return &testRepo{dir: dir, pub: filepath.Join(dir, "repo-key.gpg"), key: k, debDir: t.TempDir()}
}

func openRepo(t testing.TB, dir string) *repo.Repo {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{Now: fixedNow, LockTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustWrite(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildDeb returns the bytes of a package; payload is the content of
// /usr/share/NAME/data (default "NAME VERSION\n").
func buildDeb(t testing.TB, name, version, payload string) []byte {
	t.Helper()
	if payload == "" {
		payload = name + " " + version + "\n"
	}
	ctl := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: Test <test@example.org>\nSection: misc\nPriority: optional\nDescription: test package %s\n This is %s.\n",
		name, version, name, name)
	fsys := fstest.MapFS{
		"DEBIAN/control":              {Data: []byte(ctl), Mode: 0o644, ModTime: testNow},
		"usr/share/" + name + "/data": {Data: []byte(payload), Mode: 0o644, ModTime: testNow},
	}
	var buf bytes.Buffer
	if _, err := deb.Build(context.Background(), fsys, &buf, deb.BuildOptions{Mtime: testNow}); err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return buf.Bytes()
}

// signDeb adds an origin signature by k.
func signDeb(t testing.TB, k *signing.Key, data []byte) []byte {
	t.Helper()
	s, err := signing.NewSigner(k, signing.SignOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := signing.SignDeb(context.Background(), s, &out, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// include puts a package into the repository through the repo package.
func (tr *testRepo) include(t testing.TB, codename string, data []byte, name string) {
	t.Helper()
	p := filepath.Join(tr.debDir, name)
	mustWrite(t, p, data)
	if _, err := openRepo(t, tr.dir).IncludeDeb(context.Background(), codename, []string{p}, repo.IncludeOptions{}); err != nil {
		t.Fatal(err)
	}
}

// startServer serves the repository on 127.0.0.1 (plain HTTP).
func startServer(t testing.TB, o Options) (*Server, *httptest.Server) {
	t.Helper()
	if o.Now == nil {
		o.Now = time.Now
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, startFront(t, s)
}

// startFront serves h (the server s, possibly wrapped) on 127.0.0.1
// through s's Front, as lampi-pkg serve does for plain HTTP. The
// httptest.Server is only a holder of URL and Listener: it is not
// started, and Close stops the front.
func startFront(t testing.TB, s *Server, h ...http.Handler) *httptest.Server {
	t.Helper()
	handler := http.Handler(s)
	if len(h) > 0 {
		handler = h[0]
	}
	hs := httptest.NewUnstartedServer(handler)
	hs.URL = "http://" + hs.Listener.Addr().String()
	front := s.Front(hs.Config)
	done := make(chan error, 1)
	go func() { done <- front.Serve(hs.Listener) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := front.Shutdown(ctx); err != nil {
				t.Errorf("front shutdown: %v", err)
			}
			if err := <-done; err != http.ErrServerClosed {
				t.Errorf("front serve: %v", err)
			}
			http.DefaultClient.CloseIdleConnections()
		})
	}
	t.Cleanup(stop)
	return hs
}

func get(t testing.TB, c *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
