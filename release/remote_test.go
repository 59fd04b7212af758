package release_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/release"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// remote is a real update server (server.Handler over a real
// repository) on 127.0.0.1, with its token store and staging directory
// outside the repository, so that the repository's state can be
// compared byte for byte.
type remote struct {
	base   string
	srv    *server.Server
	hs     *httptest.Server
	tokens *server.TokenStore
	token  string // upload:stable
}

func startRemote(t *testing.T, base string, o server.Options, wrap func(http.Handler) http.Handler) *remote {
	t.Helper()
	side := t.TempDir()
	if _, err := os.Stat(filepath.Join(base, "dists")); err != nil {
		_, err := openRepo(t, base, repo.Options{}).Export(context.Background())
		must(t, err)
	}
	o.Dir, o.Now = base, now
	o.Tokens = &server.TokenStore{Path: filepath.Join(side, "tokens.db"), Now: now}
	o.TempDir = filepath.Join(side, "uploads")
	s, err := server.New(o)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	var h http.Handler = s
	if wrap != nil {
		h = wrap(s)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	secret, _, err := o.Tokens.Create("ci", []string{"upload:stable"})
	must(t, err)
	return &remote{base: base, srv: s, hs: hs, tokens: o.Tokens, token: secret}
}

func (m *remote) client(token string) *upload.Client {
	return &upload.Client{BaseURL: m.hs.URL + "/", Token: token, Retries: 2, MaxRetryWait: time.Millisecond}
}

func remoteOptions(c *upload.Client, dirs ...string) release.Options {
	return release.Options{Dirs: dirs, Server: c, Now: now, GitEnv: gitEnv}
}

// TestRemoteReleaseBumpAndPublish: 0.1 then --bump minor through the
// server's upload API: the repository holds 0.2, the report has the
// server's pool path and checksum; again without a bump (even with new
// file times) nothing is uploaded.
func TestRemoteReleaseBumpAndPublish(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	r := newRepo(t, dir, repo.Options{})
	m := startRemote(t, r.Base, server.Options{}, nil)

	first := run(t, remoteOptions(m.client(m.token), hi))
	if !first.Published || first.Codename != "stable" || first.Server != m.hs.URL+"/" || first.Packages[0].Status != release.StatusPublished {
		t.Fatalf("first release: %+v", first)
	}
	o := remoteOptions(m.client(m.token), hi)
	o.Part = "minor"
	rep := run(t, o)
	p := rep.Packages[0]
	if p.OldVersion != "0.1" || p.Version != "0.2" || p.Status != release.StatusPublished || p.Pool != "pool/main/h/hi/hi_0.2_all.deb" {
		t.Errorf("report: %+v", p)
	}
	data, err := os.ReadFile(filepath.Join(r.Base, p.Pool))
	must(t, err)
	sum := sha256.Sum256(data)
	if int64(len(data)) != p.Size || hex.EncodeToString(sum[:]) != p.SHA256 {
		t.Errorf("report says %d bytes %s; the pool file has %d bytes %x", p.Size, p.SHA256, len(data), sum)
	}
	if got := strings.Join(versions(t, openRepo(t, r.Base, repo.Options{}), "hi"), " "); got != "amd64:0.2 armhf:0.2" {
		t.Errorf("repository holds %s", got)
	}
	var steps []string
	for _, s := range rep.Steps {
		steps = append(steps, s.Step)
	}
	if got := strings.Join(steps, " "); got != "bump build check upload" {
		t.Errorf("steps %q", got)
	}
	if strings.Join(rep.Exported, " ") != "stable" {
		t.Errorf("exported %v", rep.Exported)
	}

	uploads := m.srv.Metrics().Uploads(server.OutcomePublished)
	before := state(t, hi, r.Base)
	again := run(t, remoteOptions(m.client(m.token), hi))
	if again.Published || again.Packages[0].Status != release.StatusUnchanged || again.Packages[0].Pool != p.Pool {
		t.Errorf("second release: %+v", again)
	}
	// A fresh checkout: other bytes, same files: the server says clash,
	// the client downloads the published file and finds it the same.
	later := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(hi, "opt/hi/hi"), later, later))
	before = state(t, hi, r.Base)
	again = run(t, remoteOptions(m.client(m.token), hi))
	if again.Published || again.Packages[0].Status != release.StatusUnchanged {
		t.Errorf("after touching a file: %+v", again.Packages[0])
	}
	sameState(t, before, state(t, hi, r.Base))
	if n := m.srv.Metrics().Uploads(server.OutcomePublished); n != uploads {
		t.Errorf("%d more uploads published, want none", n-uploads)
	}
}

// TestRemoteReleaseSeveralTrees: two trees go out in one upload and one
// publish; with --sign-deb (and a key) both carry an origin signature.
func TestRemoteReleaseSeveralTrees(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	svc := newTree(t, dir, "lampi-service", "1.0")
	r := newRepo(t, dir, repo.Options{})
	kr := keyring(t)
	m := startRemote(t, r.Base, server.Options{RequireSignature: map[string]*signing.Keyring{"stable": kr}}, nil)
	o := remoteOptions(m.client(m.token), hi, svc)
	o.SignDeb, o.DebSigner, o.Codename = true, signer(t), "stable"
	rep := run(t, o)
	if !rep.Published || len(rep.Packages) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	for _, p := range rep.Packages {
		if p.Status != release.StatusPublished || p.Signed == "" || p.Pool == "" {
			t.Errorf("package %+v", p)
		}
	}
	if n := m.srv.Metrics().Uploads(server.OutcomePublished); n != 1 {
		t.Errorf("%d uploads published; want the two packages in one", n)
	}
	data, err := os.ReadFile(filepath.Join(r.Base, "logs", "stable.log"))
	must(t, err)
	if n := strings.Count(string(data), "add "); n < 2 {
		t.Errorf("log:\n%s", data)
	}
	// Without a key, --sign-deb cannot work remotely: refused before
	// anything changes.
	o = remoteOptions(m.client(m.token), hi)
	o.SignDeb, o.Part = true, "minor"
	before := state(t, hi, r.Base)
	if _, err := release.Run(context.Background(), o); !errors.Is(err, release.ErrOptions) || !strings.Contains(err.Error(), "needs a key") {
		t.Errorf("sign without a key: %v", err)
	}
	sameState(t, before, state(t, hi, r.Base))
}

func keyring(t *testing.T) *signing.Keyring {
	t.Helper()
	f, err := os.Open(keyFile)
	must(t, err)
	defer f.Close()
	k, err := signing.ReadKey(f)
	must(t, err)
	return signing.NewKeyring(k)
}

func signer(t *testing.T) *signing.Signer {
	t.Helper()
	f, err := os.Open(keyFile)
	must(t, err)
	defer f.Close()
	k, err := signing.ReadKey(f)
	must(t, err)
	s, err := signing.NewSigner(k, signing.SignOptions{Now: now})
	must(t, err)
	return s
}

// TestRemoteReleaseFailuresChangeNothing: whatever the server refuses,
// before or after the git commit, the tree, git and the repository are
// as before, and the error names the step.
func TestRemoteReleaseFailuresChangeNothing(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t, "releases through a server with git once per injected failure")
	var failUploads atomic.Bool
	busy := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failUploads.Load() && r.Method == http.MethodPost && r.URL.Query().Get("dry_run") == "" {
				w.Header().Set("Retry-After", "0")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"status":503,"code":"busy","error":"repository is locked by another process"}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	cases := []struct {
		name string
		// inject breaks something; it returns the client to release with.
		inject func(t *testing.T, m *remote, base string) *upload.Client
		opts   server.Options
		step   string
		want   string
		target error
	}{
		{"bad token", func(t *testing.T, m *remote, base string) *upload.Client {
			return m.client("lampi_bogus_token")
		}, server.Options{}, release.StepCheck, "unknown or malformed token", upload.ErrUnauthorized},
		{"revoked token", func(t *testing.T, m *remote, base string) *upload.Client {
			_, err := m.tokens.Revoke("ci")
			must(t, err)
			return m.client(m.token)
		}, server.Options{}, release.StepCheck, "was revoked", upload.ErrForbidden},
		{"token out of scope", func(t *testing.T, m *remote, base string) *upload.Client {
			secret, _, err := m.tokens.Create("other", []string{"upload:testing"})
			must(t, err)
			return m.client(secret)
		}, server.Options{}, release.StepCheck, "may upload to no distribution", release.ErrOptions},
		{"version clash", func(t *testing.T, m *remote, base string) *upload.Client {
			// 0.2 is published already, built from other content.
			other := newTree(t, t.TempDir(), "hi", "0.2")
			must(t, os.WriteFile(filepath.Join(other, "opt/hi/hi"), []byte("#!/bin/sh\necho other\n"), 0o755))
			run(t, options(openRepo(t, base, repo.Options{}), other))
			return m.client(m.token)
		}, server.Options{}, release.StepCheck, "this build of", release.ErrVersionClash},
		{"package refused by the server", func(t *testing.T, m *remote, base string) *upload.Client {
			return m.client(m.token)
		}, server.Options{RequireSignature: map[string]*signing.Keyring{"stable": nil}}, release.StepCheck, "requires a good origin signature", upload.ErrRejected},
		{"server busy at upload", func(t *testing.T, m *remote, base string) *upload.Client {
			failUploads.Store(true)
			return m.client(m.token)
		}, server.Options{}, release.StepUpload, "locked by another process", upload.ErrBusy},
		{"server down", func(t *testing.T, m *remote, base string) *upload.Client {
			m.hs.Close()
			return m.client(m.token)
		}, server.Options{}, release.StepCheck, "connection refused", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			failUploads.Store(false)
			dir := t.TempDir()
			hi := newTree(t, dir, "hi", "0.1")
			gitInit(t, hi)
			r := newRepo(t, dir, repo.Options{})
			run(t, options(r, hi))
			so := c.opts
			if kr, ok := so.RequireSignature["stable"]; ok && kr == nil {
				so.RequireSignature = map[string]*signing.Keyring{"stable": keyring(t)}
			}
			m := startRemote(t, r.Base, so, busy)
			cl := c.inject(t, m, r.Base)

			before, gitBefore := state(t, hi, r.Base), gitState(t, hi)
			o := remoteOptions(cl, hi)
			o.Part, o.AllowDirty = "minor", true
			yes := true
			o.Commit, o.Tag = &yes, &yes
			_, err := release.Run(context.Background(), o)
			var se *release.StepError
			if !errors.As(err, &se) {
				t.Fatalf("release: %v; want a StepError", err)
			}
			if se.Step != c.step || !strings.HasPrefix(err.Error(), c.step) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q; want step %s and %q", err, c.step, c.want)
			}
			if c.target != nil && !errors.Is(err, c.target) {
				t.Errorf("error %v does not match %v", err, c.target)
			}
			if strings.Contains(err.Error(), m.token) {
				t.Errorf("the error shows the token: %v", err)
			}
			if se.RestoreErr != nil {
				t.Errorf("restoring failed: %v", se.RestoreErr)
			}
			sameState(t, before, state(t, hi, r.Base))
			if g := gitState(t, hi); g != gitBefore {
				t.Errorf("git changed:\n%s\nwas\n%s", g, gitBefore)
			}
			if c.step == release.StepUpload && !strings.Contains(err.Error(), "(bump commit and tag removed)") {
				t.Errorf("the message does not say the commit was removed: %v", err)
			}
		})
	}
}

// TestRemoteReleaseRefusesPlainHTTP: the token never crosses the network
// in clear.
func TestRemoteReleaseRefusesPlainHTTP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	before := state(t, hi)
	_, err := release.Run(context.Background(), remoteOptions(&upload.Client{BaseURL: "http://repo.example.org/", Token: "x"}, hi))
	if err == nil || !strings.Contains(err.Error(), "refusing plain http://") {
		t.Errorf("release over plain HTTP: %v", err)
	}
	sameState(t, before, state(t, hi))
}

// TestRemoteReleaseLostAnswer: the server publishes, but the connection
// drops before its answer arrives; the release asks again, finds every
// package published, and keeps the bump and the commit.
func TestRemoteReleaseLostAnswer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	gitInit(t, hi)
	r := newRepo(t, dir, repo.Options{})
	run(t, options(r, hi))
	var dropped atomic.Int32
	var dropAll atomic.Bool
	m := startRemote(t, r.Base, server.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if dropAll.Load() && dropped.Load() > 0 && req.Method == http.MethodPost {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
			if req.Method == http.MethodPost && req.URL.Query().Get("dry_run") == "" {
				h.ServeHTTP(httptest.NewRecorder(), req) // published, answer lost
				dropped.Add(1)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			h.ServeHTTP(w, req)
		})
	})
	o := remoteOptions(m.client(m.token), hi)
	o.Part, o.AllowDirty = "minor", true
	yes := true
	o.Commit, o.Tag = &yes, &yes
	rep := run(t, o)
	if dropped.Load() != 1 {
		t.Fatalf("%d uploads dropped", dropped.Load())
	}
	if p := rep.Packages[0]; p.Status != release.StatusPublished || p.Pool != "pool/main/h/hi/hi_0.2_all.deb" || p.Commit == "" {
		t.Errorf("report %+v", p)
	}
	if got := strings.Join(versions(t, openRepo(t, r.Base, repo.Options{}), "hi"), " "); got != "amd64:0.2 armhf:0.2" {
		t.Errorf("repository holds %s", got)
	}
	if !strings.Contains(git(t, hi, "log", "--oneline", "-1"), "0.2") {
		t.Errorf("the bump commit is gone: %s", git(t, hi, "log", "--oneline", "-3"))
	}

	// The server cannot be asked again either: the release is undone
	// locally, and the error says the server may have published.
	dropAll.Store(true)
	dropped.Store(0)
	o.Part = "minor"
	_, err := release.Run(context.Background(), o)
	var se *release.StepError
	if !errors.As(err, &se) || se.Step != release.StepUpload || se.Unsure == "" ||
		!strings.Contains(err.Error(), "it may have published") || strings.Contains(err.Error(), "the repository is unchanged") {
		t.Errorf("answer lost twice: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(hi, "opt/hi/__VERSION__")); string(got) != "0.2\n" {
		t.Errorf("the bump to 0.3 was not undone: %q", got)
	}
}

// TestRemoteReleaseDryRun: the server's verdicts, nothing changed
// anywhere.
func TestRemoteReleaseDryRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	r := newRepo(t, dir, repo.Options{})
	run(t, options(r, hi))
	m := startRemote(t, r.Base, server.Options{}, nil)
	before := state(t, hi, r.Base)
	o := remoteOptions(m.client(m.token), hi)
	o.Part, o.DryRun = "minor", true
	rep := run(t, o)
	if p := rep.Packages[0]; p.Status != release.StatusNew || p.Version != "0.2" || rep.Published {
		t.Errorf("dry run report %+v", rep)
	}
	o.Part = ""
	rep = run(t, o)
	if p := rep.Packages[0]; p.Status != release.StatusUnchanged || p.Pool != "pool/main/h/hi/hi_0.1_all.deb" {
		t.Errorf("dry run without a bump %+v", p)
	}
	sameState(t, before, state(t, hi, r.Base))
	if n := m.srv.Metrics().Uploads(server.OutcomePublished) + m.srv.Metrics().Uploads(server.OutcomeUnchanged); n != 0 {
		t.Errorf("%d uploads in a dry run", n)
	}
}
