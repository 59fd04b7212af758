package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
