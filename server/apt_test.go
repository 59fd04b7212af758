package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// newAptRoot is an isolated apt + dpkg installation whose apt-get runs
// get the extra arguments too.
func newAptRoot(t testing.TB, sources string, extra ...string) *testutil.AptRoot {
	t.Helper()
	a := testutil.NewAptRoot(t, sources)
	a.Extra = extra
	return a
}

// seen is one request as the test wrapper saw it.
type seen struct {
	path, rng string
	status    int
}

// recorder wraps the server: it records requests and can cut the first
// response for a path suffix after half of its body, as a dropped
// connection would.
type recorder struct {
	next    http.Handler
	mu      sync.Mutex
	reqs    []seen
	cut     string
	didCut  bool
	cutSize int64
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	cut := rc.cut != "" && !rc.didCut && strings.HasSuffix(r.URL.Path, rc.cut) && r.Method == http.MethodGet
	if cut {
		rc.didCut = true
	}
	rc.mu.Unlock()
	sw := &statusWriter{ResponseWriter: w}
	if cut {
		sw.limit = -1 // set from Content-Length at WriteHeader
	}
	rc.next.ServeHTTP(sw, r)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, seen{r.URL.Path, r.Header.Get("Range"), sw.status})
	if cut {
		rc.cutSize = sw.written
	}
	rc.mu.Unlock()
	if cut {
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
}

func (rc *recorder) requests() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seen(nil), rc.reqs...)
}

type statusWriter struct {
	http.ResponseWriter
	status  int
	limit   int64 // -1: half of Content-Length, 0: no limit
	written int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	if w.limit == -1 {
		var n int64
		fmt.Sscan(w.Header().Get("Content-Length"), &n)
		w.limit = n / 2
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	if w.limit > 0 && w.written+int64(len(p)) > w.limit {
		n, _ := w.ResponseWriter.Write(p[:w.limit-w.written])
		w.written += int64(n)
		return n, fmt.Errorf("connection cut by the test")
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// TestAptThroughServer: apt-get update and install through the server
// behave as with a static server; a second update is answered with 304s
// (asserted on the server's metrics); a download cut mid-file is resumed
// with a Range request answered 206.
func TestAptThroughServer(t *testing.T) {
	// The package's end to end under -short: a real apt-get.
	testutil.KeepInShort(t)
	t.Parallel()
	tr := newTestRepo(t)
	payload := string(randomBytes(t, 96<<10))
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.1", payload), "hi_0.1_all.deb")
	s, err := New(Options{Dir: tr.dir, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := &recorder{next: s, cut: ".deb"}
	hs := httptest.NewServer(rec)
	defer hs.Close()
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", tr.pub, hs.URL))

	apt.Update()
	n304 := s.Metrics().NotModified()
	first := len(rec.requests())
	out := apt.Update()
	if s.Metrics().NotModified() <= n304 || s.Metrics().Requests(304) == 0 {
		t.Fatalf("second apt-get update got no 304 (metrics %d → %d):\n%s", n304, s.Metrics().NotModified(), out)
	}
	for _, r := range rec.requests()[first:] {
		if strings.HasSuffix(r.path, "InRelease") && r.status != http.StatusNotModified {
			t.Errorf("second update: %s answered %d, want 304", r.path, r.status)
		}
	}

	// The first download of the package is cut half-way: apt fails…
	if out, err := apt.Run("install", "hi"); err == nil {
		t.Fatalf("install with a cut download succeeded:\n%s", out)
	}
	partial := filepath.Join(apt.Root, "var/cache/apt/archives/partial/hi_0.1_all.deb")
	if fi, err := os.Stat(partial); err != nil || fi.Size() == 0 {
		t.Fatalf("apt kept no partial download: %v", err)
	}
	// … and resumes it with a Range request the next time.
	apt.MustRun("install", "hi")
	if got, err := os.ReadFile(filepath.Join(apt.Root, "usr/share/hi/data")); err != nil || string(got) != payload {
		t.Fatalf("installed data wrong (%d bytes, %v)", len(got), err)
	}
	resumed := false
	for _, r := range rec.requests() {
		if strings.HasSuffix(r.path, ".deb") && strings.HasPrefix(r.rng, "bytes=") && !strings.HasPrefix(r.rng, "bytes=0-") {
			resumed = r.status == http.StatusPartialContent
		}
	}
	if !resumed {
		t.Fatalf("no Range request answered 206 for the package: %+v", rec.requests())
	}
}

// TestAptThroughFront: apt through the Front, as lampi-pkg serve runs
// for plain HTTP: update and install work, and apt's requests (with its
// Cache-Control, Accept and If-Modified-Since headers) are the ones the
// fast path answers — the second update's 304s come from it.
func TestAptThroughFront(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.1", ""), "hi_0.1_all.deb")
	var log strings.Builder
	var mu sync.Mutex
	s, front := startServer(t, Options{Dir: tr.dir, AccessLog: writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return log.Write(p)
	})})
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", tr.pub, front.URL))
	apt.Update()
	fast, n304 := s.Metrics().FastPath(), s.Metrics().NotModified()
	out := apt.Update()
	if s.Metrics().NotModified() <= n304 {
		t.Fatalf("second apt-get update got no 304:\n%s", out)
	}
	if got, want := s.Metrics().FastPath()-fast, s.Metrics().NotModified()-n304; got < want {
		mu.Lock()
		t.Fatalf("second update: %d answers by the fast path, %d 304s; access log:\n%s", got, want, log.String())
	}
	apt.MustRun("install", "hi")
	if _, err := os.Stat(filepath.Join(apt.Root, "usr/share/hi/data")); err != nil {
		t.Fatalf("hi not installed: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
