package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// rawExchange sends req (raw bytes) on a new connection to addr and
// reads n responses (to method, for HEAD's empty body).
func rawExchange(t *testing.T, addr, req string, methods ...string) []*rawResponse {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*rawResponse
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("%q: reading response %d: %v", req, len(out)+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%q: body: %v", req, err)
		}
		out = append(out, &rawResponse{resp, body})
	}
	return out
}

type rawResponse struct {
	*http.Response
	body []byte
}

// String is the response without its Date, headers sorted.
func (r *rawResponse) String() string {
	var keys []string
	for k := range r.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Proto, r.Status)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(r.Header[k], ", "))
	}
	if r.Header.Get("Date") == "" {
		b.WriteString("(no Date)\n")
	}
	fmt.Fprintf(&b, "close=%v body %d bytes %x\n", r.Close, len(r.body), sha(r.body))
	return b.String()
}

func sha(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:8]
}

// TestFrontMatchesNetHTTP sends the same raw requests to the server
// through its Front and through net/http alone: every answer must be the
// same (status, headers but Date, body), and the ones the fast path is
// meant to take must have been answered by it.
func TestFrontMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.1", strings.Repeat("payload ", 40000)), "hi_0.1_all.deb")
	s, front := startServer(t, Options{Dir: tr.dir})
	plain := httptest.NewServer(s)
	defer plain.Close()
	fa, pa := strings.TrimPrefix(front.URL, "http://"), strings.TrimPrefix(plain.URL, "http://")

	resp, _ := get(t, nil, plain.URL+"/dists/stable/InRelease")
	tag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	lmTime, err := http.ParseTime(lm)
	if err != nil {
		t.Fatal(err)
	}
	// A date the server never gave InRelease: answered with the file
	// (see dates.go), where http.ServeContent alone would say 304.
	later := lmTime.Add(time.Hour).Format(http.TimeFormat)
	deb := "/pool/main/h/hi/hi_0.1_all.deb"
	resp, _ = get(t, nil, plain.URL+deb)
	debTag := resp.Header.Get("ETag")
	var byHash string
	filepath.WalkDir(filepath.Join(tr.dir, "dists", "bookworm"), func(p string, e os.DirEntry, err error) error {
		if err == nil && byHash == "" && !e.IsDir() && strings.Contains(p, "/by-hash/SHA256/") {
			byHash = "/" + strings.TrimPrefix(p, tr.dir+"/")
		}
		return nil
	})
	if byHash == "" {
		t.Fatal("no by-hash file in the test repository")
	}

	req := func(method, path string, hdr ...string) string {
		return method + " " + path + " HTTP/1.1\r\nHost: example.org\r\nUser-Agent: t\r\n" + strings.Join(hdr, "") + "\r\n"
	}
	ir := "/dists/stable/InRelease"
	cases := []struct {
		name, req string
		fast      bool
		methods   []string
	}{
		{"full GET", req("GET", ir), true, nil},
		{"HEAD", req("HEAD", ir), true, []string{"HEAD"}},
		{"If-None-Match", req("GET", ir, "If-None-Match: "+tag+"\r\n"), true, nil},
		{"If-None-Match again (hot)", req("GET", ir, "If-None-Match: "+tag+"\r\n"), true, nil},
		{"If-None-Match HEAD", req("HEAD", ir, "If-None-Match: "+tag+"\r\n"), true, []string{"HEAD"}},
		{"If-None-Match other", req("GET", ir, "If-None-Match: \"other\"\r\n"), true, nil},
		{"If-None-Match weak", req("GET", ir, "If-None-Match: W/"+tag+"\r\n"), true, nil},
		{"If-None-Match list", req("GET", ir, "If-None-Match: \"x\", "+tag+"\r\n"), true, nil},
		{"If-None-Match star", req("GET", ir, "If-None-Match: *\r\n"), true, nil},
		{"If-Modified-Since same", req("GET", ir, "If-Modified-Since: "+lm+"\r\n"), true, nil},
		{"If-Modified-Since old", req("GET", ir, "If-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT\r\n"), true, nil},
		{"If-Modified-Since later", req("GET", ir, "If-Modified-Since: "+later+"\r\n"), true, nil},
		{"If-Modified-Since same, other form", req("GET", ir, "If-Modified-Since: "+lmTime.Format(time.RFC850)+"\r\n"), true, nil},
		{"If-Modified-Since bad", req("GET", ir, "If-Modified-Since: yesterday\r\n"), true, nil},
		{"both conditions", req("GET", ir, "If-None-Match: \"other\"\r\nIf-Modified-Since: "+lm+"\r\n"), true, nil},
		{"header case and spaces", "GET " + ir + " HTTP/1.1\r\nhOST:example.org \r\nif-none-match:   " + tag + "\t\r\naccept: */*\r\naccept-encoding: gzip\r\nconnection: Keep-Alive\r\n\r\n", true, nil},
		{"by-hash", req("GET", byHash), true, nil},
		{"by-hash conditional", req("GET", byHash, "If-None-Match: "+tagOf(t, plain.URL+byHash)+"\r\n"), true, nil},
		{"codename path", req("GET", "/dists/bookworm/InRelease"), true, nil},
		{"deb", req("GET", deb), true, nil},
		{"deb conditional", req("GET", deb, "If-None-Match: "+debTag+"\r\n"), true, nil},
		{"deb HEAD", req("HEAD", deb), true, []string{"HEAD"}},
		{"Packages.gz", req("GET", "/dists/stable/main/binary-amd64/Packages.gz"), true, nil},

		{"missing", req("GET", "/dists/stable/Nothing"), false, nil},
		{"directory", req("GET", "/dists/stable/main"), false, nil},
		{"directory slash", req("GET", "/dists/stable/"), false, nil},
		{"hidden", req("GET", "/dists/stable/.InRelease.tmp"), false, nil},
		{"dot-dot", req("GET", "/dists/../conf/distributions"), false, nil},
		{"encoded dot-dot", req("GET", "/dists/%2e%2e/conf/distributions"), false, nil},
		{"double encoded", req("GET", "/dists/%252e%252e/conf/distributions"), false, nil},
		{"double slash", req("GET", "/dists//stable/InRelease"), false, nil},
		{"query", req("GET", ir+"?x=1"), false, nil},
		{"Range", req("GET", ir, "Range: bytes=10-19\r\n"), false, nil},
		{"If-Range", req("GET", ir, "Range: bytes=10-19\r\nIf-Range: "+tag+"\r\n"), false, nil},
		{"If-Match", req("GET", ir, "If-Match: \"other\"\r\n"), false, nil},
		{"HTTP/1.0", "GET " + ir + " HTTP/1.0\r\n\r\n", false, nil},
		{"no Host", "GET " + ir + " HTTP/1.1\r\nUser-Agent: t\r\n\r\n", false, nil},
		{"two Hosts", req("GET", ir, "Host: other.org\r\n"), false, nil},
		{"two If-None-Match", req("GET", ir, "If-None-Match: \"x\"\r\nIf-None-Match: "+tag+"\r\n"), false, nil},
		{"Connection close", req("GET", ir, "Connection: close\r\n"), false, nil},
		{"obs-fold", req("GET", ir, "X-A: a\r\n b\r\n"), false, nil},
		{"bare LF", "GET " + ir + " HTTP/1.1\nHost: example.org\n\n", false, nil},
		{"POST", req("POST", ir, "Content-Length: 0\r\n"), false, nil},
		{"body on GET", req("GET", ir, "Content-Length: 3\r\n") + "abc", false, nil},
		{"healthz", req("GET", "/healthz"), false, nil},
		{"key", req("GET", "/repo-key.gpg"), false, nil},
		{"conf", req("GET", "/conf/distributions"), false, nil},
		{"db", req("GET", "/db/tokens.db"), false, nil},
		{"big head", req("GET", ir, "X-Big: "+strings.Repeat("b", 5000)+"\r\n"), false, nil},
	}
	for _, c := range cases {
		methods := c.methods
		if methods == nil {
			methods = []string{"GET"}
		}
		before := s.Metrics().FastPath()
		got := rawExchange(t, fa, c.req, methods...)[0].String()
		fast := s.Metrics().FastPath() != before
		want := rawExchange(t, pa, c.req, methods...)[0].String()
		if got != want {
			t.Errorf("%s: through the front:\n%s\nnet/http alone:\n%s", c.name, got, want)
		}
		if fast != c.fast {
			t.Errorf("%s: answered by the fast path: %v, want %v", c.name, fast, c.fast)
		}
	}
}

func tagOf(t *testing.T, url string) string {
	t.Helper()
	resp, _ := get(t, nil, url)
	return resp.Header.Get("ETag")
}

// TestFrontKeepAliveAndHandOff: on one connection, pipelined, fast
// requests, then one the fast path leaves to net/http (a Range), then
// more: all answered in order, correctly, and the connection stays open.
func TestFrontKeepAliveAndHandOff(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	s, front := startServer(t, Options{Dir: tr.dir})
	addr := strings.TrimPrefix(front.URL, "http://")
	want, err := os.ReadFile(filepath.Join(tr.dir, "dists", "bookworm", "InRelease"))
	if err != nil {
		t.Fatal(err)
	}
	r := "GET /dists/stable/InRelease HTTP/1.1\r\nHost: x\r\n\r\n"
	rng := "GET /dists/stable/InRelease HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\n\r\n"
	resps := rawExchange(t, addr, r+r+rng+r+"HEAD /dists/stable/InRelease HTTP/1.1\r\nHost: x\r\n\r\n"+r,
		"GET", "GET", "GET", "GET", "HEAD", "GET")
	for i, resp := range resps {
		switch {
		case i == 2:
			if resp.StatusCode != 206 || string(resp.body) != string(want[5:10]) {
				t.Errorf("response %d: %s %q, want 206 %q", i, resp.Status, resp.body, want[5:10])
			}
		case i == 4:
			if resp.StatusCode != 200 || len(resp.body) != 0 || resp.ContentLength != int64(len(want)) {
				t.Errorf("HEAD: %s, %d bytes, Content-Length %d", resp.Status, len(resp.body), resp.ContentLength)
			}
		default:
			if resp.StatusCode != 200 || !bytes.Equal(resp.body, want) || resp.Close {
				t.Errorf("response %d: %s, %d bytes, close=%v", i, resp.Status, len(resp.body), resp.Close)
			}
		}
	}
	if n := s.Metrics().FastPath(); n != 2 {
		t.Errorf("fast path answered %d requests, want the 2 before the hand-off", n)
	}
}

// TestFrontNotModifiedFollowsPublish: conditional requests answered by
// the fast path from its cache are never stale after a publish.
func TestFrontNotModifiedFollowsPublish(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	s, front := startServer(t, Options{Dir: tr.dir})
	addr := strings.TrimPrefix(front.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	ask := func(etag string) (int, string) {
		t.Helper()
		fmt.Fprintf(c, "GET /dists/stable/InRelease HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n", etag)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("ETag")
	}
	_, tag := ask(`"none"`)
	for i := range 5 {
		if code, _ := ask(tag); code != 304 {
			t.Fatalf("round %d: unchanged InRelease answered %d", i, code)
		}
		tr.include(t, "bookworm", buildDeb(t, fmt.Sprintf("p%d", i), "1.0", ""), fmt.Sprintf("p%d.deb", i))
		code, next := ask(tag)
		if code != 200 || next == tag {
			t.Fatalf("round %d: after a publish InRelease answered %d with ETag %s (old %s)", i, code, next, tag)
		}
		tag = next
	}
	if s.Metrics().FastPath() < 10 {
		t.Errorf("fast path answered %d requests, want all 11", s.Metrics().FastPath())
	}
}

// TestFrontShutdown: with timeouts set and a fixed Options.Now,
// requests are served; Shutdown closes idle connections (fronted and
// handed over) and makes Serve return http.ErrServerClosed.
func TestFrontShutdown(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	// A fixed clock: network deadlines must not follow it.
	s, err := New(Options{Dir: tr.dir, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s, IdleTimeout: time.Minute, ReadHeaderTimeout: 10 * time.Second}
	f := s.Front(hs)
	done := make(chan error, 1)
	go func() { done <- f.Serve(ln) }()
	addr := ln.Addr().String()
	idle := rawConn(t, addr)
	handed := rawConn(t, addr)
	r := "GET /dists/stable/InRelease HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, c := range []struct {
		net.Conn
		req string
	}{{idle, r}, {handed, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"}} {
		io.WriteString(c, c.req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("before shutdown: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; err != http.ErrServerClosed {
		t.Fatalf("Serve returned %v, want http.ErrServerClosed", err)
	}
	for _, c := range []net.Conn{idle, handed} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection still open after Shutdown (%d bytes read)", n)
		}
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("listener still accepts after Shutdown")
	}
}

func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAccessLogMatchesSlog: the access log encoder writes exactly what
// slog's JSON handler writes for the same record, including strings that
// need escaping (handed to slog).
func TestAccessLogMatchesSlog(t *testing.T) {
	when := time.Date(2026, 11, 22, 23, 58, 1, 120034000, time.UTC)
	for _, c := range []struct{ method, path, remote, ua string }{
		{"GET", "/dists/stable/InRelease", "127.0.0.1:40000", "Debian APT-HTTP/1.3 (2.6.1)"},
		{"HEAD", "/pool/main/h/hi/hi_0.1_all.deb", "[::1]:1", ""},
		{"GET", "/a\"b\\c", "x", "tab\there"},
		{"GET", "/ünï", "x", "ctl\x01\x7f"},
		{"GET", "/<&>", "x", "bad utf8 \xff"},
	} {
		var fast, ref bytes.Buffer
		newAccessLog(&fast).record(when, c.method, c.path, 304, 12, 1234567*time.Nanosecond, c.remote, c.ua)
		slog.New(slog.NewJSONHandler(&ref, nil)).Handler().Handle(context.Background(),
			accessRecord(when, c.method, c.path, 304, 12, 1234567*time.Nanosecond, c.remote, c.ua))
		if fast.String() != ref.String() {
			t.Errorf("access log line\n got %s want %s", fast.String(), ref.String())
		}
	}
	// And through a Server: the same line as the slog Logger path.
	tr := newTestRepo(t)
	var viaSlog, viaAccess bytes.Buffer
	clock := func() time.Time { return when }
	a, err := New(Options{Dir: tr.dir, Now: clock, Logger: slog.New(slog.NewJSONHandler(&viaSlog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Options{Dir: tr.dir, Now: clock, AccessLog: &viaAccess})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, s := range []*Server{a, b} {
		r := httptest.NewRequest("GET", "/dists/stable/InRelease", nil)
		r.RemoteAddr = "127.0.0.1:5"
		r.Header.Set("User-Agent", "apt")
		s.ServeHTTP(httptest.NewRecorder(), r)
	}
	// slog stamps its own time.Now: compare without the time.
	strip := func(s string) string { _, rest, _ := strings.Cut(s, `"level"`); return rest }
	if strip(viaAccess.String()) != strip(viaSlog.String()) || viaAccess.Len() == 0 {
		t.Errorf("Options.AccessLog line %q, Logger line %q", viaAccess.String(), viaSlog.String())
	}
}

// TestLogWriter: lines go out in order on Flush; when the buffer is full
// lines are dropped, counted and shown in /metrics, never blocking.
func TestLogWriter(t *testing.T) {
	block := make(chan struct{})
	out := &gatedWriter{gate: block}
	w := NewLogWriter(out, 64)
	line := []byte("0123456789abcdef\n") // 17 bytes
	for range 3 {
		w.Write(line) // 51 bytes: the goroutine is kicked and blocks in out
	}
	// The goroutine holds the first batch (or not yet): fill until drops.
	for range 10 {
		w.Write(line)
	}
	if w.Dropped() == 0 {
		t.Fatalf("no line dropped with a blocked output and a 64-byte buffer")
	}
	close(block)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := out.buf.Len() / len(line)
	if out.buf.Len()%len(line) != 0 || uint64(n)+w.Dropped() != 13 {
		t.Fatalf("%d bytes written (%d lines) + %d dropped, want 13 lines in all", out.buf.Len(), n, w.Dropped())
	}

	tr := newTestRepo(t)
	s, err := New(Options{Dir: tr.dir, Now: time.Now, AccessLog: w})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var m bytes.Buffer
	s.Metrics().WriteTo(&m)
	if !strings.Contains(m.String(), fmt.Sprintf("lampi_access_log_dropped_total %d\n", w.Dropped())) {
		t.Errorf("metrics do not show the dropped lines:\n%s", m.String())
	}
}

type gatedWriter struct {
	gate <-chan struct{}
	buf  bytes.Buffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.gate
	return g.buf.Write(p)
}

// TestFrontRespectsExtraPatterns: an Options.Extra pattern that could
// take /dists/ or /pool/ paths turns the fast path off, so that the mux
// decides as before.
func TestFrontRespectsExtraPatterns(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	for pattern, fast := range map[string]bool{
		"/": true, "GET /api/v1/fleet/": true, "/api/": true,
		"GET /pool/special": false, "/dists/x/": false, "example.org/": false, "GET example.org/dists/": false,
	} {
		if got := !shadowsFiles(pattern); got != fast {
			t.Errorf("pattern %q: fast path %v, want %v", pattern, got, fast)
		}
	}
	special := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "special\n") })
	s, front := startServer(t, Options{Dir: tr.dir, Extra: map[string]http.Handler{"GET /dists/stable/Special": special}})
	if _, body := get(t, nil, front.URL+"/dists/stable/Special"); string(body) != "special\n" {
		t.Errorf("Extra handler for a dists/ path answered %q", body)
	}
	if resp, _ := get(t, nil, front.URL+"/dists/stable/InRelease"); resp.StatusCode != 200 || s.Metrics().FastPath() != 0 {
		t.Errorf("InRelease: %s, fast path answered %d requests, want 0", resp.Status, s.Metrics().FastPath())
	}
}
