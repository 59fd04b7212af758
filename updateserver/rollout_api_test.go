package updateserver

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/rollout"
	"github.com/lampi-pkg/lampi-pkg/server"
)

// TestRolloutAPI: the rollout API of a running server starts, shows,
// pauses, resumes, aborts and reverts a rollout with a token of scope
// "rollouts", each change published signed (gpgv); an upload token, a
// device token, a revoked token and no token are refused and change
// nothing.
func TestRolloutAPI(t *testing.T) {
	testutil.Heavy(t, "runs the whole server with its broker and publishes signed repositories checked by gpgv")
	base, keyring := testRepo(t)
	ctx := context.Background()
	limit2(t, base)
	s, err := New(Config{Dir: base, Now: time.Now, Passphrase: passphrase,
		Fleet: &FleetConfig{MQTTListen: "127.0.0.1:0", AllowAnonymous: true}})
	if err != nil {
		t.Fatal(err)
	}
	includeHi(t, ctx, s, "0.1", "0.2")
	run := start(t, s)
	tokens := s.tokens()
	token := func(name string, scopes ...string) string {
		secret, _, err := tokens.Create(name, scopes)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	ops, up, dev, gone := token("ops", server.ScopeRollouts), token("ci", "upload:*"), token("fleet", server.ScopeDevices), token("old", server.ScopeRollouts)
	if _, err := tokens.Revoke("old"); err != nil {
		t.Fatal(err)
	}
	packages := func() string {
		code, body := run.get(t, "/dists/bookworm/main/binary-amd64/Packages")
		if code != http.StatusOK {
			t.Fatalf("GET Packages: %d", code)
		}
		return string(body)
	}
	client := func(tok string) *rollout.Client {
		return &rollout.Client{Base: run.url, Token: tok, HTTP: &http.Client{Timeout: 2 * time.Minute}}
	}
	req := rollout.StartRequest{Distribution: "bookworm", Package: "hi", Version: "0.2", Plan: "50%:1h/1,100%"}

	// Refused: nothing changes.
	for _, c := range []struct {
		name, token string
		status      int
		code        string
	}{{"upload token", up, 403, "forbidden"}, {"device token", dev, 403, "forbidden"}, {"revoked token", gone, 403, "revoked"}, {"no token", "", 401, "unauthorized"}} {
		for what, call := range map[string]func() error{
			"start":  func() error { _, err := client(c.token).Start(ctx, req); return err },
			"list":   func() error { _, err := client(c.token).List(ctx); return err },
			"status": func() error { _, err := client(c.token).Status(ctx, "bookworm/hi/0.2"); return err },
			"abort":  func() error { _, err := client(c.token).Change(ctx, "abort", "bookworm/hi/0.2", "x"); return err },
		} {
			var ae *rollout.APIError
			if err := call(); !errors.As(err, &ae) || ae.Status != c.status || ae.Code != c.code {
				t.Errorf("%s with a %s: %v, want %d %s", what, c.name, err, c.status, c.code)
			}
		}
	}
	if p := packages(); strings.Contains(p, "Phased-Update-Percentage") {
		t.Fatalf("a refused request phased:\n%s", p)
	}
	if list, err := (&rollout.BoltStore{Path: s.layout.Rollouts()}).List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("a refused request stored a rollout: %+v %v", list, err)
	}

	// The token of scope rollouts.
	c := client(ops)
	if _, err := c.Start(ctx, rollout.StartRequest{Distribution: "bookworm", Package: "hi", Version: "0.2", Plan: "50%,10%"}); !errors.Is(err, rollout.ErrPlan) {
		t.Errorf("a bad plan: %v", err)
	}
	ro, err := c.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ro.Key() != "bookworm/hi/0.2" || ro.Previous != "0.1" || ro.State != rollout.Running || ro.Percent() != 50 {
		t.Fatalf("started %+v", ro)
	}
	if !strings.Contains(packages(), "Phased-Update-Percentage: 50\n") {
		t.Fatalf("after start:\n%s", packages())
	}
	if _, err := c.Start(ctx, req); !errors.Is(err, rollout.ErrExists) {
		t.Errorf("started twice: %v", err)
	}
	for _, step := range []struct {
		action string
		state  rollout.State
		pct    int
	}{{"pause", rollout.Paused, 50}, {"resume", rollout.Running, 50}, {"abort", rollout.Halted, 0}, {"revert", rollout.Reverted, 0}} {
		ro, err := c.Change(ctx, step.action, "bookworm/hi/0.2", "test "+step.action)
		if err != nil {
			t.Fatalf("%s: %v", step.action, err)
		}
		if ro.State != step.state || ro.Percent() != step.pct {
			t.Fatalf("after %s: %s at %d%%", step.action, ro.State, ro.Percent())
		}
	}
	if !strings.Contains(packages(), "Version: 0.2+revert1\n") {
		t.Fatalf("after revert:\n%s", packages())
	}
	_, inRelease := run.get(t, "/dists/bookworm/InRelease")
	gpgv(t, keyring, inRelease)
	st, err := c.Status(ctx, "bookworm/hi/0.2")
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	for _, d := range st.Decisions {
		log = append(log, string(d.Action)+" "+d.Reason)
	}
	want := "hold started at 50% with plan 50%:1h/1,100% " // the plan's rules follow
	if len(log) != 5 || !strings.HasPrefix(log[0], want) || log[1] != "hold paused: test pause" || log[3] != "halt aborted: test abort" || !strings.HasPrefix(log[4], "revert reverted to 0.1, published as 0.2+revert1") {
		t.Errorf("audit log:\n%s", strings.Join(log, "\n"))
	}
	if _, err := c.Change(ctx, "pause", "bookworm/hi/0.2", ""); !errors.Is(err, rollout.ErrState) {
		t.Errorf("pause a reverted rollout: %v", err)
	}
	if _, err := c.Status(ctx, "bookworm/hi/9"); !errors.Is(err, rollout.ErrNotFound) {
		t.Errorf("an unknown rollout: %v", err)
	}
	if _, err := c.Change(ctx, "explode", "bookworm/hi/0.2", ""); !errors.Is(err, rollout.ErrNotFound) {
		t.Errorf("an unknown action: %v", err)
	}
	if list, err := c.List(ctx); err != nil || len(list) != 1 || list[0].State != rollout.Reverted {
		t.Errorf("list: %+v %v", list, err)
	}
}

// limit2 gives the test repository's distribution Limit: 2, so that the
// version before the one rolled out stays published.
func limit2(t *testing.T, base string) {
	t.Helper()
	f := filepath.Join(repo.Layout{Base: base}.Conf(), "distributions")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, append(b, "Limit: 2\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
}
