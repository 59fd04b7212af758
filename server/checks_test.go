package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/server/upload"
)

// TestUploadChecksTakeTurns: with every check slot taken, an upload waits
// for one and is checked and published once it is free; one that waits
// longer than ValidationWait is answered 503 busy with Retry-After and a
// message naming the flag, not left hanging.
func TestUploadChecksTakeTurns(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	ts := newTokens(t, tr.dir)
	tok := mustToken(t, ts, "ci", "upload:stable")
	s, hs := startServer(t, Options{Dir: tr.dir, Tokens: ts, MaxValidations: 1, ValidationWait: time.Minute})
	c := &upload.Client{BaseURL: hs.URL + "/", Token: tok}
	ctx := context.Background()

	s.checks <- struct{}{} // every slot taken
	done := make(chan error, 1)
	go func() {
		_, err := c.Upload(ctx, "stable", "hi_0.1_all.deb", bytes.NewReader(buildDeb(t, "hi", "0.1", "")))
		done <- err
	}()
	// Staged: the upload now waits for its turn, and cannot end without it.
	waitFor(t, "the upload staged", func() bool {
		m, _ := filepath.Glob(filepath.Join(tr.dir, "db", "uploads", "upload-*", "0", "*.deb"))
		return len(m) > 0
	})
	select {
	case err := <-done:
		t.Fatalf("the upload ended without a check slot: %v", err)
	default:
	}
	<-s.checks
	if err := <-done; err != nil {
		t.Fatalf("the upload, once its turn came: %v", err)
	}

	// A short wait (another server on the repository), a slot held for
	// longer: 503.
	s2, hs2 := startServer(t, Options{Dir: tr.dir, Tokens: ts, MaxValidations: 1, ValidationWait: 100 * time.Millisecond})
	s2.checks <- struct{}{}
	req, _ := http.NewRequest(http.MethodPost, hs2.URL+"/api/v1/repos/stable/packages", bytes.NewReader(buildDeb(t, "hi", "0.2", "")))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/vnd.debian.binary-package")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), `"code":"busy"`) || !strings.Contains(string(body), "--max-validations") {
		t.Fatalf("an upload that waited too long: %s Retry-After %q %s", resp.Status, resp.Header.Get("Retry-After"), body)
	}
	if s2.Metrics().Uploads(OutcomeBusy) != 1 {
		t.Errorf("busy uploads counted: %d", s2.Metrics().Uploads(OutcomeBusy))
	}
	<-s2.checks
	c2 := &upload.Client{BaseURL: hs2.URL + "/", Token: tok}
	if _, err := c2.Upload(ctx, "stable", "hi_0.2_all.deb", bytes.NewReader(buildDeb(t, "hi", "0.2", ""))); err != nil {
		t.Fatalf("upload with a free slot: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(tr.dir, "db", "uploads")); len(entries) != 0 {
		t.Errorf("staging files left: %v", entries)
	}
}
