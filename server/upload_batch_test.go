package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
)

func memFile(name string, data []byte) upload.File {
	return upload.File{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// TestUploadBatch: several packages in one multipart request are
// published together (one export); a dry run gives each package's
// verdict and writes nothing.
func TestUploadBatch(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	ts := newTokens(t, tr.dir)
	tok := mustToken(t, ts, "ci", "upload:stable")
	s, hs := startServer(t, Options{Dir: tr.dir, Tokens: ts, TempDir: t.TempDir()})
	c := &upload.Client{BaseURL: hs.URL + "/", Token: tok}
	ctx := context.Background()

	hi, svc := buildDeb(t, "hi", "0.2", ""), buildDeb(t, "lampi-service", "1.0", "")
	res, err := c.UploadFiles(ctx, "stable", []upload.File{memFile("hi_0.2_all.deb", hi), memFile("svc.deb", svc)}, upload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Published || len(res.Packages) != 2 || strings.Join(res.Exported, " ") != "bookworm" || res.Package != "" {
		t.Fatalf("result %+v", res)
	}
	if p := res.Packages[1]; p.File != "svc.deb" || p.Package != "lampi-service" || p.Action != upload.ActionAdd ||
		p.Filename != "pool/main/l/lampi-service/lampi-service_1.0_all.deb" || p.Size != int64(len(svc)) {
		t.Errorf("second package %+v", p)
	}
	if n := s.Metrics().Uploads(OutcomePublished); n != 1 {
		t.Errorf("%d uploads published", n)
	}

	before := testutil.TreeSum(t, tr.dir, "db", "pool", "dists")
	older, clash, fresh := buildDeb(t, "hi", "0.1", ""), buildDeb(t, "hi", "0.2", "other content\n"), buildDeb(t, "lampi-service", "1.1", "")
	var got []string
	var results []upload.PackageResult
	for _, batch := range [][]upload.File{{memFile("a.deb", hi), memFile("d.deb", fresh)}, {memFile("b.deb", older)}, {memFile("c.deb", clash)}} {
		res, err = c.UploadFiles(ctx, "bookworm", batch, upload.Options{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if !res.DryRun || res.Published {
			t.Errorf("dry run result %+v", res)
		}
		results = append(results, res.Packages...)
	}
	for _, p := range results {
		got = append(got, p.Action+":"+p.Filename+":"+p.Existing)
	}
	want := "unchanged:pool/main/h/hi/hi_0.2_all.deb:0.2 add:: older:pool/main/h/hi/hi_0.2_all.deb:0.2 clash:pool/main/h/hi/hi_0.2_all.deb:0.2"
	if strings.Join(got, " ") != want {
		t.Errorf("dry run verdicts\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	if results[3].ExistingSHA256 != results[0].SHA256 {
		t.Errorf("clash: existing sha256 %s, want %s", results[3].ExistingSHA256, results[0].SHA256)
	}
	// The probe: token and distribution only.
	if res, err := c.UploadFiles(ctx, "stable", nil, upload.Options{DryRun: true}); err != nil || res.Codename != "bookworm" || len(res.Packages) != 0 {
		t.Errorf("probe: %+v %v", res, err)
	}
	if ds, err := c.Distributions(ctx); err != nil || len(ds) != 1 || ds[0].Codename != "bookworm" {
		t.Errorf("distributions: %+v %v", ds, err)
	}
	if after := testutil.TreeSum(t, tr.dir, "db", "pool", "dists"); after != before {
		t.Errorf("a dry run changed the repository")
	}
}

// TestUploadBatchAllOrNothing: one bad package in a batch refuses the
// whole batch, names the file, and writes nothing.
func TestUploadBatchAllOrNothing(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	ts := newTokens(t, tr.dir)
	tok := mustToken(t, ts, "ci", "upload:stable")
	_, hs := startServer(t, Options{Dir: tr.dir, Tokens: ts, TempDir: t.TempDir()})
	c := &upload.Client{BaseURL: hs.URL + "/", Token: tok}
	ctx := context.Background()
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.2", ""), "hi_0.2_all.deb")

	good := buildDeb(t, "lampi-service", "1.0", "")
	cases := []struct {
		name   string
		bad    []byte
		status int
		target error
		want   string
	}{
		{"not a deb", []byte("#!/bin/sh\necho not a package\n"), http.StatusUnprocessableEntity, upload.ErrRejected, "bad.deb is not a usable .deb"},
		{"version clash", buildDeb(t, "hi", "0.2", "other\n"), http.StatusConflict, upload.ErrConflict, "bad.deb"},
		{"older version", buildDeb(t, "hi", "0.1", ""), http.StatusConflict, upload.ErrConflict, "already has hi 0.2"},
		{"the same package twice", good, http.StatusUnprocessableEntity, upload.ErrRejected, "good.deb and bad.deb are both lampi-service 1.0"},
	}
	for _, cs := range cases {
		before := testutil.TreeSum(t, tr.dir, "db", "pool", "dists", "logs")
		_, err := c.UploadFiles(ctx, "stable", []upload.File{memFile("good.deb", good), memFile("bad.deb", cs.bad)}, upload.Options{})
		if !upload.IsStatus(err, cs.status) || !errors.Is(err, cs.target) || !strings.Contains(err.Error(), cs.want) || !strings.Contains(err.Error(), "nothing was published") {
			t.Errorf("%s: %v; want %d %q", cs.name, err, cs.status, cs.want)
		}
		if after := testutil.TreeSum(t, tr.dir, "db", "pool", "dists", "logs"); after != before {
			t.Errorf("%s: the repository changed", cs.name)
		}
	}
}

// TestClientRetriesBusy: 503 with Retry-After is sent again, a few
// times, and not beyond the context.
func TestClientRetriesBusy(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	ts := newTokens(t, tr.dir)
	tok := mustToken(t, ts, "ci", "upload:stable")
	s, err := New(Options{Dir: tr.dir, Tokens: ts, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var busy, calls atomic.Int32
	_, hs := startServerHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if busy.Add(-1) >= 0 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"status":503,"code":"busy","error":"repository is locked"}`)
			return
		}
		s.ServeHTTP(w, r)
	}))
	c := &upload.Client{BaseURL: hs.URL + "/", Token: tok, Retries: 2}
	d := buildDeb(t, "hi", "0.1", "")
	busy.Store(2)
	res, err := c.UploadFiles(context.Background(), "stable", []upload.File{memFile("hi.deb", d)}, upload.Options{})
	if err != nil || res.Action != upload.ActionAdd || calls.Load() != 3 {
		t.Fatalf("after two 503s: %+v %v (%d calls)", res, err, calls.Load())
	}
	busy.Store(5)
	calls.Store(0)
	_, err = c.UploadFiles(context.Background(), "stable", []upload.File{memFile("hi.deb", d)}, upload.Options{})
	if !errors.Is(err, upload.ErrBusy) || calls.Load() != 3 {
		t.Errorf("always busy: %v (%d calls)", err, calls.Load())
	}
	// Retry-After of 5 s, a context that ends first: no wait to the end.
	busy.Store(5)
	c.MaxRetryWait = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = (&upload.Client{BaseURL: hs.URL + "/", Token: tok}).UploadFiles(ctx, "stable", []upload.File{memFile("hi.deb", d)}, upload.Options{})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// Plain HTTP beyond loopback is refused before anything is sent.
	_, err = (&upload.Client{BaseURL: "http://repo.example.org/", Token: tok}).UploadFiles(context.Background(), "stable", nil, upload.Options{DryRun: true})
	if err == nil || !strings.Contains(err.Error(), "refusing plain http://") || strings.Contains(err.Error(), tok) {
		t.Errorf("plain HTTP: %v", err)
	}
}

func startServerHandler(t testing.TB, h http.Handler) (http.Handler, *httptest.Server) {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return h, hs
}
