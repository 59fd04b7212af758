package agentcli_test

import (
	"strings"
	"testing"
	"time"

	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
)

type result struct {
	code     int
	out, err string
}

// runWithin runs lampi-agent and fails the test if it does not exit
// within d.
func runWithin(t *testing.T, d time.Duration, clock *at.Clock, args ...string) result {
	t.Helper()
	ch := make(chan result, 1)
	go func() {
		code, out, errs := run(t, clock, args...)
		ch <- result{code, out, errs}
	}()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("lampi-agent %s did not exit within %s", strings.Join(args, " "), d)
		return result{}
	}
}

// TestOnceStalledServer: the server sends InRelease's headers and then
// nothing; "once" fails after fetch_idle_timeout (exit 1, saying what
// stalled) instead of waiting for ever.
func TestOnceStalledServer(t *testing.T) {
	w := at.NewHi01(t, at.RepoOptions{}, "lamp-stalled", "fetch_idle_timeout = 5s\n")
	clock, r, d := w.Clock, w.Repo, w.Device
	r.Stall(func(p string) bool { return strings.HasSuffix(p, "/InRelease") }, 0)
	res := runWithin(t, 2*time.Minute, clock, "once", "--config", d.Conf)
	if res.code != agentcli.ExitFailed || !strings.Contains(res.err, "/dists/stable/InRelease: transfer stalled: nothing received for 5s (fetch_idle_timeout)") {
		t.Fatalf("exit %d\n%s%s", res.code, res.out, res.err)
	}
	if code, out, _ := run(t, clock, "status", "--config", d.Conf); code != 0 || !strings.Contains(out, "result:       failed") || !strings.Contains(out, "stalled") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// TestRunHeartbeatStalledServer: "lampi-agent run" whose check hangs on a
// stalled InRelease keeps reporting over MQTT (a real Mosquitto) every
// heartbeat.
func TestRunHeartbeatStalledServer(t *testing.T) {
	mq := at.NewMosquitto(t)
	mq.Start()
	w := at.NewHi01(t, at.RepoOptions{}, "lamp-stuck", "broker = "+mq.URL+"\nheartbeat = 1s\nfetch_idle_timeout = 10m\n")
	r, d := w.Repo, w.Device
	stalled := r.Stall(func(p string) bool { return strings.HasSuffix(p, "/InRelease") }, 0)
	sub := at.Subscribe(t, mq.URL)
	startDaemon(t, d.Conf)
	select {
	case <-stalled:
	case <-time.After(time.Minute):
		t.Fatal("the daemon never asked for InRelease")
	}
	var seqs []uint64
	sub.WaitState(t, d.ID, func(s state.State) bool {
		if len(seqs) == 0 || s.Seq > seqs[len(seqs)-1] {
			seqs = append(seqs, s.Seq)
		}
		return len(seqs) >= 3
	})
	if len(r.Requests()) != 1 {
		t.Errorf("more than the stalled request")
	}
}

// TestOnceHeldBackRetryFailed: with the real apt-get, a version whose
// postinst fails is rolled back (exit 11); the next once holds it back
// (exit 12) without installing it again, and status says so; --retry-failed
// tries it again (exit 11 once more).
func TestOnceHeldBackRetryFailed(t *testing.T) {
	w := at.NewHi01(t, at.RepoOptions{}, "lamp-held", "")
	clock, r, d, debs := w.Clock, w.Repo, w.Device, w.Debs
	if code, out, errs := run(t, clock, "once", "--config", d.Conf); code != agentcli.ExitUpToDate {
		t.Fatalf("first once: exit %d\n%s%s", code, out, errs) // caches hi 0.1 for the rollback
	}
	r.Publish(at.BuildHi(t, debs, "0.2", at.HiOptions{Postinst: "#!/bin/sh\nexit 1\n"}))
	if code, out, errs := run(t, clock, "once", "--config", d.Conf); code != agentcli.ExitRolledBack {
		t.Fatalf("once: exit %d\n%s%s", code, out, errs)
	}
	clock.Advance(time.Hour)
	code, out, errs := run(t, clock, "once", "--config", d.Conf)
	if code != agentcli.ExitHeldBack || !strings.Contains(out, "held back: hi 0.2") || !strings.Contains(out, "--retry-failed") || d.Version("hi") != "0.1" {
		t.Fatalf("held: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = run(t, clock, "status", "--config", d.Conf)
	for _, want := range []string{"result:       held-back", "held back:    hi 0.2 (rolled back", "release date: 2026-"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q: exit %d\n%s", want, code, out)
		}
	}
	code, out, errs = run(t, clock, "once", "--retry-failed", "--config", d.Conf)
	if code != agentcli.ExitRolledBack || !strings.Contains(errs, "retrying hi 0.2") {
		t.Fatalf("--retry-failed: exit %d\n%s%s", code, out, errs)
	}
}
