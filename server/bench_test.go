package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkConditionalInRelease measures the "has anything changed?"
// request in process: If-None-Match on InRelease answered 304.
func BenchmarkConditionalInRelease(b *testing.B) {
	tr := newTestRepo(b)
	s, err := New(Options{Dir: tr.dir, Now: time.Now, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	req := httptest.NewRequest(http.MethodGet, "/dists/stable/InRelease", nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	req.Header.Set("If-None-Match", w.Header().Get("ETag"))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusNotModified {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkLoopback compares, over a real loopback TCP connection, the
// Front (lampi-pkg serve's plain-HTTP path) with net/http alone serving
// the same Server, for the two requests of scripts/bench-serve.sh that
// need no big repository: the conditional GET of InRelease answered 304
// and the full GET of a 1 MiB package (sendfile). Eight keep-alive
// connections, each one request at a time; the access log is encoded
// (JSON, to io.Discard) as in production. cpu-ns/op counts the client
// too (the same for both).
func BenchmarkLoopback(b *testing.B) {
	tr := newTestRepo(b)
	tr.include(b, "bookworm", buildDeb(b, "big", "1.0", string(randomBytes(b, 1<<20))), "big_1.0_all.deb")
	s, err := New(Options{Dir: tr.dir, Now: time.Now, AccessLog: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	front := startFront(b, s)
	plain := httptest.NewServer(s)
	defer plain.Close()
	resp, _ := get(b, nil, plain.URL+"/dists/stable/InRelease")
	tag := resp.Header.Get("ETag")
	for _, c := range []struct{ name, req string }{
		{"304", "GET /dists/stable/InRelease HTTP/1.1\r\nHost: b\r\nIf-None-Match: " + tag + "\r\n\r\n"},
		{"deb", "GET /pool/main/b/big/big_1.0_all.deb HTTP/1.1\r\nHost: b\r\n\r\n"},
	} {
		for _, srv := range []struct{ name, url string }{{"front", front.URL}, {"nethttp", plain.URL}} {
			b.Run(c.name+"/"+srv.name, func(b *testing.B) {
				addr := strings.TrimPrefix(srv.url, "http://")
				var total atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(4) // 8 connections on 2 CPUs, like wrk's 50 on 2
				cpu0 := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					conn, err := net.Dial("tcp", addr)
					if err != nil {
						b.Error(err)
						return
					}
					defer conn.Close()
					br := bufio.NewReaderSize(conn, 64<<10)
					req := []byte(c.req)
					for pb.Next() {
						if _, err := conn.Write(req); err != nil {
							b.Error(err)
							return
						}
						resp, err := http.ReadResponse(br, nil)
						if err != nil {
							b.Error(err)
							return
						}
						m, _ := io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						total.Add(m)
						if resp.StatusCode != http.StatusNotModified && resp.StatusCode != http.StatusOK {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				})
				// CPU time of the whole process (client and server) per
				// request: less sensitive to a busy machine than ns/op.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
				b.SetBytes(total.Load() / int64(b.N))
			})
		}
	}
}

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkAccessLog: one access log record, by the encoder and by slog.
func BenchmarkAccessLog(b *testing.B) {
	now := time.Now()
	b.Run("encoder", func(b *testing.B) {
		a := newAccessLog(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			a.record(now, "GET", "/dists/stable/InRelease", 304, 0, time.Millisecond, "127.0.0.1:40000", "Debian APT-HTTP/1.3 (2.6.1)")
		}
	})
	b.Run("slog", func(b *testing.B) {
		l := slog.New(slog.NewJSONHandler(io.Discard, nil))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			l.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("method", "GET"), slog.String("path", "/dists/stable/InRelease"),
				slog.Int("status", 304), slog.Int64("bytes", 0), slog.Duration("duration", time.Millisecond),
				slog.String("remote", "127.0.0.1:40000"), slog.String("ua", "Debian APT-HTTP/1.3 (2.6.1)"))
		}
	})
}

// BenchmarkNewVersionServed measures the first request for a file just
// replaced under dists/ (what every device's poll after a publish is):
// the file is renamed into place with new content, then asked for with
// the previous Last-Modified (answered 200) — including, for a new
// version, recording its date in db/serve-dates.db.
func BenchmarkNewVersionServed(b *testing.B) {
	tr := newTestRepo(b)
	s, err := New(Options{Dir: tr.dir, Now: time.Now, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := filepath.Join(tr.dir, "dists", "bookworm", "InRelease")
	tmp := p + ".bench"
	lm := ""
	i := 0
	for b.Loop() {
		i++
		if err := os.WriteFile(tmp, []byte("version "+strconv.Itoa(i)+"\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			b.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/dists/stable/InRelease", nil)
		if lm != "" {
			req.Header.Set("If-Modified-Since", lm)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("version %d: status %d", i, w.Code)
		}
		lm = w.Header().Get("Last-Modified")
	}
}
