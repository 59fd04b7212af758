package server

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
)

// replaceDated replaces p by rename with a file holding data, modified
// at mtime: what a publisher that does not wait for the next second,
// rsync -t, or a restored backup leaves.
func replaceDated(t testing.TB, p, data string, mtime time.Time) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(p), ".replace.tmp")
	mustWrite(t, tmp, []byte(data))
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// held is what a client holds of a file: its bytes and validators.
type held struct{ body, tag, lm string }

// fetchAll GETs path from every base URL; all must answer 200 with the
// same bytes and validators.
func fetchAll(t *testing.T, bases []string, path string) held {
	t.Helper()
	var h held
	for i, b := range bases {
		r, body := get(t, nil, b+path)
		got := held{string(body), r.Header.Get("ETag"), r.Header.Get("Last-Modified")}
		if r.StatusCode != 200 || got.lm == "" {
			t.Fatalf("GET %s%s: %s, Last-Modified %q", b, path, r.Status, got.lm)
		}
		if i > 0 && got != h {
			t.Fatalf("GET %s: %s answers %+v, %s %+v", path, b, got, bases[0], h)
		}
		h = got
	}
	return h
}

// revalidate asks every base URL whether what a client holds is current,
// with If-Modified-Since and with If-None-Match, three times each (later
// answers come from the cache): 304 when the client holds want, else 200
// with want.
func revalidate(t *testing.T, step string, bases []string, path string, h held, want string) {
	t.Helper()
	for _, b := range bases {
		for _, hdr := range [][]string{{"If-Modified-Since", h.lm}, {"If-None-Match", h.tag}} {
			for try := range 3 {
				r, body := get(t, nil, b+path, hdr...)
				switch {
				case h.body == want && r.StatusCode != http.StatusNotModified:
					t.Fatalf("%s: %s %s: %s (%s try %d), want 304: the client holds the current bytes", step, hdr[0], hdr[1], r.Status, b, try)
				case h.body != want && (r.StatusCode != 200 || string(body) != want):
					t.Fatalf("%s: %s %s: %s %.40q (%s try %d), want 200 %.40q: the client holds other bytes", step, hdr[0], hdr[1], r.Status, body, b, try, want)
				}
			}
		}
	}
}

func parseLM(t *testing.T, h held) time.Time {
	t.Helper()
	lm, err := http.ParseTime(h.lm)
	if err != nil {
		t.Fatal(err)
	}
	return lm
}

// TestNotModifiedOnlyForTheBytesHeld: InRelease replaced by another tool
// within the second a client holds (same modification time), then by a
// backup dated an hour before, then again within a second while a second
// server runs on the same directory, and after a restart: a client asking
// If-Modified-Since (apt) or If-None-Match gets 304 only when it holds the
// current bytes — through the fast path and through net/http alike — and
// the Last-Modified of the path never goes back or repeats.
func TestNotModifiedOnlyForTheBytesHeld(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	s, front := startServer(t, Options{Dir: tr.dir})
	plain := httptest.NewServer(s)
	defer plain.Close()
	bases := []string{front.URL, plain.URL}
	const u = "/dists/stable/InRelease"
	p := filepath.Join(tr.dir, "dists", "bookworm", "InRelease")

	a := fetchAll(t, bases, u)
	revalidate(t, "unchanged", bases, u, a, a.body)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	mt := fi.ModTime()

	replaceDated(t, p, "version B\n", mt)
	revalidate(t, "replaced within the second", bases, u, a, "version B\n")
	b := fetchAll(t, bases, u)
	revalidate(t, "B held", bases, u, b, b.body)
	if !parseLM(t, b).After(parseLM(t, a)) {
		t.Errorf("B dated %s, A %s: want later", b.lm, a.lm)
	}

	replaceDated(t, p, "version C, from a backup\n", mt.Add(-time.Hour))
	revalidate(t, "backup restored, A held", bases, u, a, "version C, from a backup\n")
	revalidate(t, "backup restored, B held", bases, u, b, "version C, from a backup\n")
	c := fetchAll(t, bases, u)
	if !parseLM(t, c).After(parseLM(t, b)) {
		t.Errorf("C dated %s, B %s: want later (a path's date never goes back)", c.lm, b.lm)
	}

	// D within C's second; a second server on the directory meanwhile.
	replaceDated(t, p, "version D\n", mt.Add(-time.Hour))
	d := fetchAll(t, bases, u)
	s2, front2 := startServer(t, Options{Dir: tr.dir})
	bases2 := []string{front2.URL}
	revalidate(t, "second server, C held", bases2, u, c, "version D\n")
	revalidate(t, "second server, D held", bases2, u, d, "version D\n")
	if got := fetchAll(t, bases2, u); got != d {
		t.Errorf("second server answers %+v, the first %+v", got, d)
	}
	s2.Close()

	// A restart: the dates given are remembered.
	s.Close()
	_, front3 := startServer(t, Options{Dir: tr.dir})
	bases3 := []string{front3.URL}
	for _, h := range []held{a, b, c} {
		revalidate(t, "after a restart", bases3, u, h, "version D\n")
	}
	revalidate(t, "after a restart, D held", bases3, u, d, "version D\n")

	// A date later than the current one was never given for it.
	later := parseLM(t, d).Add(time.Hour).UTC().Format(http.TimeFormat)
	revalidate(t, "a date never given", bases3, u, held{"?", `"?"`, later}, "version D\n")
}

// TestAptThroughServeSeesEveryPublish: six publishes made back to back,
// with a device's apt-get update (lists kept) between each two, are all
// seen through serve's front — even when every file of the second publish
// of a pair is dated back into the second of the first (as a publisher
// that does not wait, or rsync -t, would leave them).
func TestAptThroughServeSeesEveryPublish(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	_, front := startServer(t, Options{Dir: tr.dir})
	gate := testutil.NewGate(t, front.URL)
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", tr.pub, gate.URL))
	apt.Update()
	r := openRepo(t, tr.dir)
	dists := filepath.Join(tr.dir, "dists", "bookworm")
	var firstDate time.Time
	n := 0
	testutil.SeesEveryPublish(t, apt, gate, 3, "hi", func(second bool) string {
		n++
		v := fmt.Sprintf("0.%d", n)
		p := filepath.Join(tr.debDir, "hi_"+v+"_all.deb")
		mustWrite(t, p, buildDeb(t, "hi", v, ""))
		if _, err := r.IncludeDeb(context.Background(), "bookworm", []string{p}, repo.IncludeOptions{}); err != nil {
			t.Fatal(err)
		}
		if !second {
			fi, err := os.Stat(filepath.Join(dists, "InRelease"))
			if err != nil {
				t.Fatal(err)
			}
			firstDate = fi.ModTime()
			return v
		}
		err := filepath.WalkDir(dists, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || strings.Contains(p, "/by-hash/") {
				return err
			}
			return os.Chtimes(p, firstDate, firstDate)
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	})
}

// TestDatesKeptInMemoryWhenTheFileFails: with db/serve-dates.db unusable
// (here a directory in its place), the server still never answers 304 for
// a file replaced within the second a client holds, and warns once.
func TestDatesKeptInMemoryWhenTheFileFails(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	if err := os.MkdirAll(filepath.Join(tr.dir, "db", "serve-dates.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	_, front := startServer(t, Options{Dir: tr.dir, Logger: logger})
	bases := []string{front.URL}
	const u = "/dists/stable/InRelease"
	p := filepath.Join(tr.dir, "dists", "bookworm", "InRelease")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	h := fetchAll(t, bases, u)
	for i := range 3 {
		next := fmt.Sprintf("version %d\n", i)
		replaceDated(t, p, next, fi.ModTime())
		revalidate(t, fmt.Sprintf("replacement %d", i), bases, u, h, next)
		h = fetchAll(t, bases, u)
		revalidate(t, fmt.Sprintf("replacement %d held", i), bases, u, h, next)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logged.String(), "cannot keep the Last-Modified dates"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, logged.String())
	}
}
