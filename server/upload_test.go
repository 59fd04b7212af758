package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

func newTokens(t testing.TB, dir string) *TokenStore {
	return &TokenStore{Path: filepath.Join(dir, "db", "tokens.db"), Now: fixedNow}
}

func mustToken(t testing.TB, ts *TokenStore, name string, scopes ...string) string {
	t.Helper()
	secret, _, err := ts.Create(name, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestUploadPublishes: a raw and a multipart upload are included and
// published; apt's view (Packages) lists them; the same file again is
// "unchanged"; the suite name works as well as the codename.
func TestUploadPublishes(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	ts := newTokens(t, tr.dir)
	tok := mustToken(t, ts, "ci", "upload:stable")
	s, hs := startServer(t, Options{Dir: tr.dir, Tokens: ts})
	c := &upload.Client{BaseURL: hs.URL + "/", Token: tok}
	ctx := context.Background()

	d1 := buildDeb(t, "hi", "0.1", "")
	res, err := c.Upload(ctx, "stable", "hi_0.1_all.deb", bytes.NewReader(d1))
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "add" || res.Package != "hi" || res.Version != "0.1" || res.Codename != "bookworm" ||
		res.Filename != "pool/main/h/hi/hi_0.1_all.deb" || res.Size != int64(len(d1)) || len(res.Exported) != 1 {
		t.Fatalf("result %+v", res)
	}
	res, err = c.Upload(ctx, "bookworm", "hi_0.1_all.deb", bytes.NewReader(d1))
	if err != nil || res.Action != "unchanged" {
		t.Fatalf("same file again: %+v %v", res, err)
	}

	// multipart/form-data, as curl -F sends it.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("comment", "ignored")
	fw, _ := mw.CreateFormFile("package", "hi_0.2_all.deb")
	fw.Write(buildDeb(t, "hi", "0.2", ""))
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/v1/repos/stable/packages", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(b), `"action":"replace"`) {
		t.Fatalf("multipart: %s %s", resp.Status, b)
	}
	_, pk := get(t, nil, hs.URL+"/dists/stable/main/binary-armhf/Packages")
	if !strings.Contains(string(pk), "Version: 0.2") || strings.Contains(string(pk), "Version: 0.1") {
		t.Fatalf("Packages after uploads:\n%s", pk)
	}
	if s.Metrics().Uploads(OutcomePublished) != 2 || s.Metrics().Uploads(OutcomeUnchanged) != 1 {
		t.Errorf("upload metrics: published %d unchanged %d", s.Metrics().Uploads(OutcomePublished), s.Metrics().Uploads(OutcomeUnchanged))
	}
	if _, m := get(t, nil, hs.URL+"/metrics"); !strings.Contains(string(m), "lampi_publish_duration_seconds_count 3") {
		t.Errorf("publish durations not counted:\n%s", m)
	}
	if entries, _ := os.ReadDir(filepath.Join(tr.dir, "db", "uploads")); len(entries) != 0 {
		t.Errorf("staging files left: %v", entries)
	}
}

// TestUploadRefused: every refusal has its status, its code, and leaves
// dists/, pool/ and the state database exactly as they were.
func TestUploadRefused(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	tr.include(t, "bookworm", buildDeb(t, "hi", "0.2", ""), "hi_0.2_all.deb")
	ts := newTokens(t, tr.dir)
	good := mustToken(t, ts, "ci", "upload:stable")
	other := mustToken(t, ts, "other", "upload:trixie")
	revoked := mustToken(t, ts, "old", "upload:*")
	if _, err := ts.Revoke("old"); err != nil {
		t.Fatal(err)
	}
	// trixie requires an origin signature by tr.key.
	kr := signing.NewKeyring(tr.key)
	wrongKey, err := signing.GenerateKey(signing.GenerateOptions{Name: "Intruder", Now: testNow.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	signer := mustToken(t, ts, "signer", "upload:testing")
	_, hs := startServer(t, Options{Dir: tr.dir, Tokens: ts, MaxUpload: 64 << 10,
		RequireSignature: map[string]*signing.Keyring{"trixie": kr}})

	okDeb := buildDeb(t, "hi", "0.3", "")
	big := buildDeb(t, "big", "1.0", strings.Repeat("x", 1<<10)+string(randomBytes(t, 128<<10)))
	before := testutil.TreeSum(t, tr.dir, "dists", "pool", "db/lampi.db")
	for _, tc := range []struct {
		name, token, codename string
		body                  []byte
		ctype                 string
		status                int
		code                  string
	}{
		{"no token", "", "stable", okDeb, "", 401, "unauthorized"},
		{"wrong token", "lampi_000000000000_AAAA", "stable", okDeb, "", 401, "unauthorized"},
		{"garbage token", "hunter2", "stable", okDeb, "", 401, "unauthorized"},
		{"tampered secret", good[:len(good)-2] + "xx", "stable", okDeb, "", 401, "unauthorized"},
		{"revoked", revoked, "stable", okDeb, "", 403, "revoked"},
		{"out of scope", other, "stable", okDeb, "", 403, "forbidden"},
		{"unknown distribution", good, "sid", okDeb, "", 404, "unknown_distribution"},
		{"too large", good, "stable", big, "", 413, "too_large"},
		{"not a deb", good, "stable", []byte("#!/bin/sh\necho hi\n"), "", 422, "not_a_deb"},
		{"truncated deb", good, "stable", okDeb[:len(okDeb)/2], "", 422, "not_a_deb"},
		{"wrong media type", good, "stable", okDeb, "text/plain", 415, "unsupported_media_type"},
		{"older version", good, "stable", buildDeb(t, "hi", "0.1", ""), "", 409, "older_version"},
		{"same version other bytes", good, "stable", buildDeb(t, "hi", "0.2", "other bytes\n"), "", 409, "version_clash"},
		{"unsigned where required", signer, "testing", okDeb, "", 422, "bad_signature"},
		{"signed by another key", signer, "testing", signDeb(t, wrongKey, okDeb), "", 422, "bad_signature"},
		{"tampered after signing", signer, "testing", tamper(signDeb(t, tr.key, okDeb)), "", 422, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/v1/repos/"+tc.codename+"/packages", bytes.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || tc.code != "" && !strings.Contains(string(b), `"code":"`+tc.code+`"`) {
				t.Errorf("%s: %s %s (want %d %s)", tc.name, resp.Status, b, tc.status, tc.code)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if strings.Contains(string(b), filepath.Join(tr.dir, "db")) {
				t.Errorf("answer leaks the staging path: %s", b)
			}
		})
	}
	if after := testutil.TreeSum(t, tr.dir, "dists", "pool", "db/lampi.db"); after != before {
		t.Errorf("refused uploads changed the repository:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The client reports refusals as *upload.APIError with the status.
	_, err = (&upload.Client{BaseURL: hs.URL, Token: other}).Upload(context.Background(), "stable", "hi.deb", bytes.NewReader(okDeb))
	var apiErr *upload.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Code != "forbidden" || !upload.IsStatus(err, 403) {
		t.Fatalf("client error %v", err)
	}
	// A correctly signed package is accepted where a signature is required.
	res, err := (&upload.Client{BaseURL: hs.URL, Token: signer}).Upload(context.Background(), "testing", "hi_0.3_all.deb", bytes.NewReader(signDeb(t, tr.key, okDeb)))
	if err != nil || res.Signature == nil || res.Signature.PrimaryFingerprint != tr.key.Fingerprint() {
		t.Fatalf("signed upload: %+v %v", res, err)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	var x uint32 = 2463534242
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// tamper flips a byte near the end (in the data member) of a .deb.
func tamper(d []byte) []byte {
	out := append([]byte(nil), d...)
	i := bytes.LastIndex(out, []byte("data.tar"))
	out[i+200] ^= 0x55
	return out
}

// TestTokenStore: create shows the secret once and stores only a hash;
// names are unique among live tokens; revoke keeps the record.
func TestTokenStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := &TokenStore{Path: filepath.Join(dir, "tokens.db"), Now: fixedNow}
	if l, err := ts.List(); err != nil || len(l) != 0 {
		t.Fatalf("empty store: %v %v", l, err)
	}
	if _, err := ts.Authenticate("lampi_000000000000_x"); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("auth on missing store: %v", err)
	}
	secret, tok, err := ts.Create("ci", []string{"upload:stable"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(ts.Path)
	if bytes.Contains(raw, []byte(strings.SplitN(secret, "_", 3)[2])) {
		t.Fatalf("the secret is stored in clear")
	}
	if _, _, err := ts.Create("ci", []string{"upload:stable"}); !errors.Is(err, ErrTokenExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	for _, bad := range [][]string{nil, {"stable"}, {"upload:"}, {"download:stable"}, {"upload:a b"}} {
		if _, _, err := ts.Create("x", bad); err == nil {
			t.Errorf("scopes %q accepted", bad)
		}
	}
	got, err := ts.Authenticate(secret)
	if err != nil || got.ID != tok.ID || !got.Allows("bookworm", "stable") || got.Allows("trixie", "testing") {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	if _, err := ts.Revoke(tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Authenticate(secret); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := ts.Revoke("nope"); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	// The name is free again once revoked.
	if _, _, err := ts.Create("ci", []string{"upload:*"}); err != nil {
		t.Fatal(err)
	}
	l, _ := ts.List()
	if len(l) != 2 || l[0].Revoked == nil || l[1].Revoked != nil {
		t.Fatalf("list %+v", l)
	}
	if fmt.Sprint(l[1].Scopes) != "[upload:*]" || !l[1].Allows("any", "") {
		t.Fatalf("wildcard scope %+v", l[1])
	}
}

// TestUploadLockBusyAndConcurrent: while another writer holds the
// repository lock past the timeout, an upload is answered 503 busy with
// Retry-After and changes nothing; uploads sent at the same time are
// published one after the other, none lost.
func TestUploadLockBusyAndConcurrent(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	ts := newTokens(t, tr.dir)
	tok := mustToken(t, ts, "ci", "upload:*")
	s, hs := startServer(t, Options{Dir: tr.dir, Tokens: ts, LockTimeout: 300 * time.Millisecond})
	c := &upload.Client{BaseURL: hs.URL, Token: tok}

	lock, err := os.OpenFile(filepath.Join(tr.dir, "db", "lampi.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	before := testutil.TreeSum(t, tr.dir, "dists", "pool", "db/lampi.db")
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/v1/repos/bookworm/packages", bytes.NewReader(buildDeb(t, "hi", "1.0", "")))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"code":"busy"`) {
		t.Fatalf("upload under a held lock: %s %s", resp.Status, b)
	}
	if after := testutil.TreeSum(t, tr.dir, "dists", "pool", "db/lampi.db"); after != before {
		t.Fatalf("a busy upload changed the repository")
	}
	lock.Close() // releases the flock

	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("pkg%d", i)
			_, err := c.Upload(context.Background(), "testing", name+".deb", bytes.NewReader(buildDeb(t, name, "1.0", "")))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent upload: %v", err)
		}
	}
	_, pk := get(t, nil, hs.URL+"/dists/testing/main/binary-amd64/Packages")
	for i := 0; i < 6; i++ {
		if !strings.Contains(string(pk), fmt.Sprintf("Package: pkg%d\n", i)) {
			t.Errorf("pkg%d missing from Packages:\n%s", i, pk)
		}
	}
	if s.Metrics().Uploads(OutcomeBusy) != 1 || s.Metrics().Uploads(OutcomePublished) != 6 {
		t.Errorf("metrics: busy %d published %d", s.Metrics().Uploads(OutcomeBusy), s.Metrics().Uploads(OutcomePublished))
	}
}
