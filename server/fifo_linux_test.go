package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFIFONeverBlocks: FIFOs planted in pool/, dists/ and at the top of
// the repository (as a key file) are refused with 404 at once, on the
// fast path and through net/http, however many requests ask for them at
// the same time. Opening a FIFO for reading without O_NONBLOCK waits for
// a writer, pinning one OS thread per request, and a key file that is a
// FIFO made New itself wait for ever.
func TestFIFONeverBlocks(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.1", ""), "hi_0.1_all.deb")
	fifos := []string{"pool/main/h/hi/fifo_1_all.deb", "dists/bookworm/main/fifo", "dists/bookworm/Trap"}
	for _, f := range fifos {
		if err := unix.Mkfifo(filepath.Join(tr.dir, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, hs := startServer(t, Options{Dir: tr.dir})

	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	const rounds = 40
	var wg sync.WaitGroup
	errs := make(chan error, rounds*len(fifos)*2)
	for i := range rounds {
		for _, f := range fifos {
			for _, hdr := range [][]string{nil, {"Range", "bytes=0-"}} { // fast path, net/http
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodGet, hs.URL+"/"+f, nil)
					if hdr != nil {
						req.Header.Set(hdr[0], hdr[1])
					}
					resp, err := client.Do(req)
					if err != nil {
						errs <- fmt.Errorf("round %d GET /%s %v: %v (the server is stuck opening the FIFO)", i, f, hdr, err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusNotFound {
						errs <- fmt.Errorf("GET /%s %v: %s, want 404", f, hdr, resp.Status)
					}
				}()
			}
		}
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	// The repository is still served.
	if r, _ := get(t, nil, hs.URL+"/pool/main/h/hi/hi_0.1_all.deb"); r.StatusCode != 200 {
		t.Errorf("a package next to the FIFO: %s", r.Status)
	}

	// A key file at the top that is a FIFO is not served, and New does
	// not wait for a writer to find that out.
	if err := unix.Mkfifo(filepath.Join(tr.dir, "trap.gpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	started := make(chan *Server, 1)
	go func() {
		s, err := New(Options{Dir: tr.dir, Now: time.Now})
		if err != nil {
			t.Error(err)
		}
		started <- s
	}()
	select {
	case s2 := <-started:
		if s2 != nil {
			defer s2.Close()
			rec := httptest.NewRecorder()
			s2.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/trap.gpg", nil))
			if rec.Code != http.StatusNotFound {
				t.Errorf("GET /trap.gpg, a FIFO: %d, want 404", rec.Code)
			}
		}
	case <-time.After(time.Minute):
		t.Fatal("New did not return within a minute: it opened the FIFO trap.gpg and waits for a writer")
	}
}

// TestTreeOpenFIFOFallback: the os.Root path (no openat2) does not wait
// on a FIFO either.
func TestTreeOpenFIFOFallback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, fast := range []bool{true, false} {
		tree, err := openTree(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !fast {
			tree.fast.close()
			tree.fast = fastDir{fd: -1}
		}
		done := make(chan error, 1)
		go func() {
			f, err := tree.open("fifo")
			if err == nil {
				fi, serr := f.Stat()
				if serr == nil && fi.Mode().IsRegular() {
					err = fmt.Errorf("a FIFO passed as a regular file")
				}
				f.Close()
			}
			done <- err
		}()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("fast=%v: open of a FIFO still waits for a writer after a minute", fast)
		}
		tree.release()
	}
	_ = os.Remove(filepath.Join(dir, "fifo"))
}
