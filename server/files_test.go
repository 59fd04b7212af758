package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeConditionalAndRange checks the headers apt relies on:
// Content-Type, strong ETag, Last-Modified, 304 for If-None-Match and
// If-Modified-Since, 206 for Range (and If-Range), no Content-Encoding on
// compressed indices; then that a publish changes InRelease's ETag.
func TestServeConditionalAndRange(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.1", ""), "hi_0.1_all.deb")
	s, hs := startServer(t, Options{Dir: tr.dir})
	u := hs.URL + "/dists/stable/InRelease"

	resp, body := get(t, nil, u)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "-----BEGIN PGP SIGNED MESSAGE-----") {
		t.Fatalf("GET InRelease: %s\n%s", resp.Status, body)
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") || lm == "" {
		t.Fatalf("ETag %q Last-Modified %q: want a strong ETag and a date", etag, lm)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("InRelease Content-Type %q", ct)
	}
	if resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("no Accept-Ranges: bytes")
	}
	// The same bytes through the codename (dists/stable is a symlink).
	if r2, b2 := get(t, nil, hs.URL+"/dists/bookworm/InRelease"); r2.StatusCode != 200 || string(b2) != string(body) || r2.Header.Get("ETag") != etag {
		t.Fatalf("dists/bookworm/InRelease differs: %s %q", r2.Status, r2.Header.Get("ETag"))
	}

	before := s.Metrics().NotModified()
	if r, b := get(t, nil, u, "If-None-Match", etag); r.StatusCode != 304 || len(b) != 0 {
		t.Fatalf("If-None-Match: %s, %d bytes", r.Status, len(b))
	}
	if r, _ := get(t, nil, u, "If-Modified-Since", lm); r.StatusCode != 304 {
		t.Fatalf("If-Modified-Since: %s", r.Status)
	}
	if r, _ := get(t, nil, u, "If-None-Match", `"other"`); r.StatusCode != 200 {
		t.Fatalf("If-None-Match with another tag: %s", r.Status)
	}
	if got := s.Metrics().NotModified() - before; got != 2 {
		t.Errorf("metrics count %d 304s, want 2", got)
	}

	// Range, and If-Range with the current and with a stale tag.
	if r, b := get(t, nil, u, "Range", "bytes=10-19"); r.StatusCode != 206 || string(b) != string(body[10:20]) {
		t.Fatalf("Range: %s %q", r.Status, b)
	}
	if r, b := get(t, nil, u, "Range", "bytes=10-", "If-Range", etag); r.StatusCode != 206 || string(b) != string(body[10:]) {
		t.Fatalf("If-Range current: %s", r.Status)
	}
	if r, b := get(t, nil, u, "Range", "bytes=10-", "If-Range", `"stale"`); r.StatusCode != 200 || len(b) != len(body) {
		t.Fatalf("If-Range stale: %s", r.Status)
	}

	// Compressed indices and packages go out as stored.
	r, _ := get(t, nil, hs.URL+"/dists/bookworm/main/binary-amd64/Packages.gz", "Accept-Encoding", "gzip")
	if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "" || r.Header.Get("Content-Type") != "application/gzip" {
		t.Fatalf("Packages.gz: %s, Content-Encoding %q, Content-Type %q", r.Status, r.Header.Get("Content-Encoding"), r.Header.Get("Content-Type"))
	}
	r, b := get(t, nil, hs.URL+"/pool/main/h/hi/hi_0.1_all.deb")
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/vnd.debian.binary-package" || !strings.HasPrefix(string(b), "!<arch>\n") {
		t.Fatalf("pool deb: %s %q", r.Status, r.Header.Get("Content-Type"))
	}
	if r, _ := get(t, nil, hs.URL+"/repo-key.gpg"); r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/pgp-keys" {
		t.Fatalf("public key: %s %q", r.Status, r.Header.Get("Content-Type"))
	}

	// A publish replaces InRelease: the old tag no longer matches.
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.2", ""), "hi_0.2_all.deb")
	r, b = get(t, nil, u, "If-None-Match", etag)
	if r.StatusCode != 200 || r.Header.Get("ETag") == etag || !strings.Contains(string(b), "SHA256") {
		t.Fatalf("after publish: %s, ETag %q (old %q)", r.Status, r.Header.Get("ETag"), etag)
	}
}

// rawGet sends a request line exactly as given (no client-side cleaning)
// and returns the status code and body.
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTraversalRefused: nothing outside dists/ and pool/ (and the public
// keyring) is served, however the path is spelled, and symbolic links
// inside the repository that point out are not followed.
func TestTraversalRefused(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	outside := t.TempDir()
	const secret = "TOP-SECRET-OUTSIDE"
	mustWrite(t, filepath.Join(outside, "secret"), []byte(secret))
	mustWrite(t, filepath.Join(tr.dir, "db", "tokens.db"), []byte(secret))
	mustWrite(t, filepath.Join(tr.dir, "secret.asc"), []byte(secret))
	// A secret key at the top is not a public keyring.
	sec, _ := os.ReadFile(filepath.Join(tr.dir, "conf", "keys", "signing.asc"))
	mustWrite(t, filepath.Join(tr.dir, "leaked.asc"), sec)
	mustWrite(t, filepath.Join(tr.dir, "dists", ".InRelease.tmp-1"), []byte(secret))
	for link, target := range map[string]string{
		"dists/evil":      outside,
		"dists/conf":      "../conf",
		"dists/rel":       "../../" + filepath.Base(outside),
		"pool/passwd":     "/etc/passwd",
		"pool/db":         "../db",
		"dists/keys.gpg":  "../conf/keys/signing.asc",
		"pool/main/x.deb": outside + "/secret",
	} {
		p := filepath.Join(tr.dir, link)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	_, hs := startServer(t, Options{Dir: tr.dir})
	addr := strings.TrimPrefix(hs.URL, "http://")
	conf, _ := os.ReadFile(filepath.Join(tr.dir, "conf", "distributions"))
	for _, target := range []string{
		"/conf/distributions",
		"/db/lampi.db",
		"/db/tokens.db",
		"/conf/keys/signing.asc",
		"/secret.asc",
		"/leaked.asc",
		"/dists/../conf/distributions",
		"/dists/bookworm/../../conf/distributions",
		"/dists/%2e%2e/conf/distributions",
		"/dists/%2E%2E/%2E%2E/conf/distributions",
		"/dists/%252e%252e/conf/distributions",
		"/pool/..%2f..%2fconf/distributions",
		"/pool/..%252f..%252fconf/distributions",
		"/dists/..\\conf\\distributions",
		"/dists/%00/InRelease",
		"//conf/distributions",
		"/dists//../conf/distributions",
		"/dists/evil/secret",
		"/dists/conf/distributions",
		"/dists/rel/secret",
		"/pool/passwd",
		"/pool/db/tokens.db",
		"/pool/main/x.deb",
		"/dists/keys.gpg",
		"/dists/.InRelease.tmp-1",
		"/dists/",
		"/dists/bookworm/",
		"/pool/",
		"/",
		"/" + filepath.Base(tr.dir) + "/conf/distributions",
		"http://evil.example/../conf/distributions",
	} {
		code, body := rawGet(t, addr, target)
		if code == 200 || code == 206 || strings.Contains(body, secret) || strings.Contains(body, "Codename:") ||
			strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, "root:") || (len(conf) > 0 && strings.Contains(body, string(conf[:20]))) {
			t.Errorf("GET %s: %d, body %.80q", target, code, body)
		}
	}
	// What must work still works.
	for _, target := range []string{"/dists/stable/InRelease", "/dists/bookworm/Release", "/repo-key.gpg"} {
		if code, _ := rawGet(t, addr, target); code != 200 {
			t.Errorf("GET %s: %d", target, code)
		}
	}
}

// TestMethodsAndHealth: only GET/HEAD on files; /healthz; /metrics in the
// text exposition format.
func TestMethodsAndHealth(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	s, hs := startServer(t, Options{Dir: tr.dir})
	req, _ := http.NewRequest(http.MethodHead, hs.URL+"/dists/stable/Release", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength <= 0 {
		t.Fatalf("HEAD: %v %v", err, resp)
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPost} {
		req, _ := http.NewRequest(m, hs.URL+"/dists/stable/Release", strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %s", m, resp.Status)
		}
	}
	if r, b := get(t, nil, hs.URL+"/healthz"); r.StatusCode != 200 || string(b) != "ok\n" {
		t.Fatalf("healthz: %s %q", r.Status, b)
	}
	get(t, nil, hs.URL+"/dists/stable/nothing")
	r, b := get(t, nil, hs.URL+"/metrics")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %s %q", r.Status, r.Header.Get("Content-Type"))
	}
	for _, want := range []string{`lampi_http_requests_total{code="200"}`, `lampi_http_requests_total{code="404"} 1`,
		`lampi_http_requests_total{code="405"} 3`, "lampi_http_response_bytes_total ", "lampi_repo_not_modified_total 0",
		"lampi_repo_not_modified_ratio 0", `lampi_publish_duration_seconds_bucket{le="+Inf"} 0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
	if s.Metrics().Requests(405) != 3 {
		t.Errorf("Requests(405) = %d", s.Metrics().Requests(405))
	}
}

// TestExtraHandlers: the mount hook for the fleet handlers, and a
// conflicting pattern is an error, not a panic.
func TestExtraHandlers(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	dash := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "dashboard "+r.URL.Path) })
	_, hs := startServer(t, Options{Dir: tr.dir, Extra: map[string]http.Handler{"/": dash, "/api/v1/fleet/": dash}})
	if _, b := get(t, nil, hs.URL+"/"); string(b) != "dashboard /" {
		t.Errorf("/ → %q", b)
	}
	if _, b := get(t, nil, hs.URL+"/api/v1/fleet/devices"); string(b) != "dashboard /api/v1/fleet/devices" {
		t.Errorf("fleet → %q", b)
	}
	if r, _ := get(t, nil, hs.URL+"/dists/stable/InRelease"); r.StatusCode != 200 {
		t.Errorf("InRelease with extra handlers: %s", r.Status)
	}
	if r, _ := get(t, nil, hs.URL+"/repo-key.gpg"); r.StatusCode != 200 {
		t.Errorf("key with extra handlers: %s", r.Status)
	}
	if _, err := New(Options{Dir: tr.dir, Now: fixedNow, Extra: map[string]http.Handler{"GET /healthz": dash}}); err == nil {
		t.Errorf("a conflicting Extra pattern was accepted")
	}
}

// TestNotModifiedFollowsChanges: the 304 answers come from a cache, yet
// a request made after InRelease was replaced by rename, after the suite
// symlink was pointed elsewhere, or after a file was rewritten in place
// gets the new file at once.
func TestNotModifiedFollowsChanges(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	_, hs := startServer(t, Options{Dir: tr.dir})
	u := hs.URL + "/dists/stable/InRelease"
	dists := filepath.Join(tr.dir, "dists")
	expect := func(step, etag string, code int, body string) string {
		t.Helper()
		for i := 0; i < 3; i++ { // the second and third answers come from the cache
			r, b := get(t, nil, u, "If-None-Match", etag)
			if r.StatusCode != code || code == 200 && string(b) != body {
				t.Fatalf("%s (try %d): %s %.40q, want %d %.40q", step, i, r.Status, b, code, body)
			}
			if code == 200 {
				return r.Header.Get("ETag")
			}
		}
		return etag
	}
	r, orig := get(t, nil, u)
	tag := r.Header.Get("ETag")
	expect("unchanged", tag, 304, "")

	for i := 0; i < 5; i++ {
		content := fmt.Sprintf("replaced by rename %d\n", i)
		tmp := filepath.Join(dists, "bookworm", ".InRelease.tmp-x")
		mustWrite(t, tmp, []byte(content))
		if err := os.Rename(tmp, filepath.Join(dists, "bookworm", "InRelease")); err != nil {
			t.Fatal(err)
		}
		tag = expect("after rename", tag, 200, content)
		expect("after rename, again", tag, 304, "")
	}

	mustWrite(t, filepath.Join(dists, "other", "InRelease"), []byte("other distribution\n"))
	if err := os.Symlink("other", filepath.Join(dists, ".stable.new")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dists, ".stable.new"), filepath.Join(dists, "stable")); err != nil {
		t.Fatal(err)
	}
	tag = expect("after relinking the suite", tag, 200, "other distribution\n")
	expect("relinked, again", tag, 304, "")

	// Rewritten in place, same size.
	if err := os.WriteFile(filepath.Join(dists, "other", "InRelease"), []byte("OTHER DISTRIBUTION\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag = expect("after an in-place write", tag, 200, "OTHER DISTRIBUTION\n")
	_ = orig
}
