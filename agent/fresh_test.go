package agent_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// releaseDateOf reads the Date field of a published InRelease.
func releaseDateOf(t *testing.T, inRelease []byte) time.Time {
	t.Helper()
	for _, l := range strings.Split(string(inRelease), "\n") {
		if v, ok := strings.CutPrefix(l, "Date: "); ok {
			d, err := time.Parse(time.RFC1123, strings.TrimSpace(v))
			if err != nil {
				d, err = time.Parse(time.RFC1123Z, strings.TrimSpace(v))
			}
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatalf("no Date in %s", inRelease)
	return time.Time{}
}

// reportedReleaseDate is the release_date of the agent's next report, as
// the collector decodes it.
func reportedReleaseDate(t *testing.T, a *agent.Agent) time.Time {
	t.Helper()
	s, err := a.NewState("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := state.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := state.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return got.ReleaseDate
}

// TestReleaseDateReported: the report carries the Date of the newest
// Release whose signature verified; a replayed older one and a newer one
// signed by another key do not move it; it survives a restart.
func TestReleaseDateReported(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	first := w.r.File("dists/stable/InRelease")
	d1 := releaseDateOf(t, first)
	if got := reportedReleaseDate(t, w.a); !got.Equal(d1) {
		t.Fatalf("release_date %s, want the InRelease's Date %s", got, d1)
	}
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	if o := w.a.Once(context.Background()); o.Result != state.ResultUpdated {
		t.Fatalf("update: %s %v", o.Result, o.Err)
	}
	d2 := releaseDateOf(t, w.r.File("dists/stable/InRelease"))
	if !d2.After(d1) {
		t.Fatalf("setup: dates %s, %s", d1, d2)
	}
	if got := reportedReleaseDate(t, w.a); !got.Equal(d2) {
		t.Fatalf("release_date %s after the update, want %s", got, d2)
	}

	// A mirror (or attacker) serving the old InRelease: refused, the
	// reported date stays.
	w.r.SetHook(serveBytes(isInRelease, func(string) []byte { return first }))
	w.clock.Advance(time.Minute)
	if o := w.a.Once(context.Background()); !errors.Is(o.Err, agent.ErrReplay) {
		t.Fatalf("replay: %s %v", o.Result, o.Err)
	}
	// A newer InRelease signed by another key: refused, not reported.
	evil := at.NewRepo(t, w.clock, at.RepoOptions{Key: at.NewKey(t, "Mallory")})
	evil.Publish(at.BuildHi(t, w.debs, "0.3", at.HiOptions{}))
	forged := evil.File("dists/stable/InRelease")
	if d := releaseDateOf(t, forged); !d.After(d2) {
		t.Fatalf("setup: forged Date %s not newer than %s", d, d2)
	}
	w.r.SetHook(serveBytes(isInRelease, func(string) []byte { return forged }))
	if o := w.a.Once(context.Background()); !errors.Is(o.Err, agent.ErrSignature) {
		t.Fatalf("forged: %s %v", o.Result, o.Err)
	}
	if got := reportedReleaseDate(t, w.a); !got.Equal(d2) {
		t.Fatalf("release_date %s after refused Releases, want %s", got, d2)
	}

	// A restarted agent reports it from its state directory.
	a2 := newAgent(t, w.d, w.clock, agent.Options{})
	if got := reportedReleaseDate(t, a2); !got.Equal(d2) {
		t.Errorf("release_date after a restart %s, want %s", got, d2)
	}
	if st := a2.Status(); !st.ReleaseDate.Equal(d2) {
		t.Errorf("status release date %s, want %s", st.ReleaseDate, d2)
	}
}

// TestRolledBackHeldBack: a version whose update rolled back is not
// installed again on the next polls (no download, no dpkg run): the
// result is held-back with the held version as Target, across restarts;
// a newer version is tried; RetryFailed tries the held one again.
func TestRolledBackHeldBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{Postinst: "#!/bin/sh\necho 'postinst: the lamp is broken' >&2\nexit 1\n"}))
	if o := w.a.Once(context.Background()); o.Result != state.ResultRolledBack || w.d.Version("hi") != "0.1" {
		t.Fatalf("first attempt: %s %v", o.Result, o.Err)
	}
	stamp := dpkgStatus(t, w.d)
	w.r.Requests()
	for i, a := range []*agent.Agent{w.a, newAgent(t, w.d, w.clock, agent.Options{})} { // again, and after a restart
		w.clock.Advance(time.Hour)
		o := a.Once(context.Background())
		if o.Result != state.ResultHeldBack || o.ExitCode() != 12 || o.Target["hi"] != "0.2" || len(o.Target) != 1 ||
			!strings.Contains(o.Err.Error(), "the lamp is broken") || !strings.Contains(o.Err.Error(), "--retry-failed") {
			t.Fatalf("poll %d: %s (exit %d) target %v: %v", i, o.Result, o.ExitCode(), o.Target, o.Err)
		}
		for _, r := range w.r.Requests() {
			if strings.HasSuffix(r, ".deb") {
				t.Errorf("poll %d fetched %s", i, r)
			}
		}
		if !bytes.Equal(dpkgStatus(t, w.d), stamp) || w.d.Version("hi") != "0.1" {
			t.Errorf("poll %d touched dpkg (hi %s)", i, w.d.Version("hi"))
		}
		s, err := a.NewState("")
		if err != nil || s.Result != state.ResultHeldBack || s.Target["hi"] != "0.2" || s.Packages["hi"] != "0.1" || s.Error == "" {
			t.Errorf("report %+v %v", s, err)
		}
		if st := a.Status(); len(st.FailedUpdates) != 1 || !st.FailedUpdates[0].RolledBack || st.FailedUpdates[0].Version != "0.2" {
			t.Errorf("status %+v", st.FailedUpdates)
		}
	}
	a := newAgent(t, w.d, w.clock, agent.Options{})

	// The operator asks: 0.2 is tried (and rolled back) again.
	forgot, err := a.RetryFailed()
	if err != nil || len(forgot) != 1 || forgot[0].Package != "hi" || forgot[0].Version != "0.2" {
		t.Fatalf("RetryFailed %+v %v", forgot, err)
	}
	if o := a.Once(context.Background()); o.Result != state.ResultRolledBack {
		t.Fatalf("retry: %s %v", o.Result, o.Err)
	}
	if o := a.Once(context.Background()); o.Result != state.ResultHeldBack {
		t.Fatalf("after the retry: %s %v", o.Result, o.Err)
	}
	// A newer version is tried, and installs.
	w.r.Publish(at.BuildHi(t, w.debs, "0.3", at.HiOptions{}))
	if o := a.Once(context.Background()); o.Result != state.ResultUpdated || w.d.Version("hi") != "0.3" {
		t.Fatalf("0.3: %s %v", o.Result, o.Err)
	}
	if st := a.Status(); len(st.FailedUpdates) != 0 {
		t.Errorf("failures kept after 0.3 installed: %+v", st.FailedUpdates)
	}
}

// dpkgStatus reads the device's dpkg status file.
func dpkgStatus(t *testing.T, d *at.Device) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.Root, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFailedUpdateBacksOff: a .deb that fails verification on every
// download is not fetched again on every poll: the next attempt waits 5
// minutes (jittered over the upper half), then 10, …; the result is
// deferred meanwhile; once the server is fixed and the wait is over, the
// update installs.
func TestFailedUpdateBacksOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{Rand: func() float64 { return 1 }})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	w.r.SetHook(serveBytes(isDeb, func(p string) []byte { return tamper(w.r.File(strings.TrimPrefix(p, "/"))) }))
	debRequests := func() int {
		n := 0
		for _, r := range w.r.Requests() {
			if strings.HasSuffix(r, ".deb") {
				n++
			}
		}
		return n
	}
	w.r.Requests()
	for i, wait := range []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute} {
		o := w.a.Once(context.Background())
		if o.Result != state.ResultFailed || !errors.Is(o.Err, agent.ErrHashMismatch) || debRequests() != 1 {
			t.Fatalf("attempt %d: %s %v", i+1, o.Result, o.Err)
		}
		t0 := w.clock.Now()
		// polls within the wait: deferred, nothing downloaded, and the
		// next check no later than the end of the wait
		for _, after := range []time.Duration{time.Second, wait - time.Second} {
			w.clock.Advance(t0.Add(after).Sub(w.clock.Now()))
			o := w.a.Once(context.Background())
			if o.Result != state.ResultDeferred || o.Pending["hi"] != "0.2" || o.ExitCode() != 20 || !strings.Contains(o.Err.Error(), "hash sum mismatch") {
				t.Fatalf("attempt %d, poll %s later: %s %v", i+1, after, o.Result, o.Err)
			}
			if n := debRequests(); n != 0 {
				t.Errorf("attempt %d, poll %s later: %d downloads", i+1, after, n)
			}
			if d := w.a.NextDelay(o); d != wait-after {
				t.Errorf("attempt %d, poll %s later: next check in %s, want %s (the end of the wait)", i+1, after, d, wait-after)
			}
		}
		w.clock.Advance(t0.Add(wait + time.Second).Sub(w.clock.Now()))
	}
	w.r.SetHook(nil)
	if o := w.a.Once(context.Background()); o.Result != state.ResultUpdated || w.d.Version("hi") != "0.2" {
		t.Fatalf("after the server was fixed: %s %v, hi %s", o.Result, o.Err, w.d.Version("hi"))
	}
	if st := w.a.Status(); len(st.FailedUpdates) != 0 {
		t.Errorf("failures kept after 0.2 installed: %+v", st.FailedUpdates)
	}
}

// TestPlainHTTPRetryAfter: a 503 asking for a year is capped at 24 h; over
// plain HTTP, where anyone on the path can send it, three such deferrals
// in a row are honoured and the fourth is ignored (a failed check with the
// usual backoff); a successful check starts the count again. Over TLS
// every one is honoured.
func TestPlainHTTPRetryAfter(t *testing.T) {
	t.Parallel()
	const year = "31536000"
	busy := func(rw http.ResponseWriter, _ *http.Request) bool {
		rw.Header().Set("Retry-After", year)
		rw.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	for _, tls := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "https"}[tls]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := at.NewHi01(t, at.RepoOptions{TLS: tls}, "lamp-"+name, "")
			clock, r, d := w.Clock, w.Repo, w.Device
			a := newAgent(t, d, clock, agent.Options{HTTPClient: r.Server.Client(), Rand: func() float64 { return 0.5 }})
			if o := a.Once(context.Background()); o.Result != state.ResultUpToDate {
				t.Fatalf("first check: %s %v", o.Result, o.Err)
			}
			r.SetHook(busy)
			for round := 1; round <= 2; round++ {
				for i := 1; i <= 5; i++ {
					o := a.Once(context.Background())
					honoured := tls || i <= 3
					if !honoured {
						if o.RetryAfter != 0 || !a.NotBefore().IsZero() || !strings.Contains(o.Err.Error(), "Retry-After ignored") {
							t.Fatalf("round %d, deferral %d: retry after %s, not before %s: %v", round, i, o.RetryAfter, a.NotBefore(), o.Err)
						}
						if d := a.NextDelay(o); d >= time.Hour {
							t.Errorf("round %d, deferral %d: next check in %s, want the failure backoff", round, i, d)
						}
						clock.Advance(time.Hour)
						continue
					}
					if o.Result != state.ResultFailed || o.RetryAfter != 24*time.Hour || !a.NotBefore().Equal(clock.Now().Add(24*time.Hour)) {
						t.Fatalf("round %d, deferral %d: %s retry after %s: %v", round, i, o.Result, o.RetryAfter, o.Err)
					}
					if d := a.NextDelay(o); d != 24*time.Hour {
						t.Errorf("round %d, deferral %d: next check in %s, want 24h", round, i, d)
					}
					clock.Advance(24*time.Hour + time.Second)
				}
				// The server answers: the count starts again.
				r.SetHook(nil)
				if o := a.Once(context.Background()); o.Result != state.ResultUpToDate {
					t.Fatalf("round %d: check after the deferrals: %s %v", round, o.Result, o.Err)
				}
				r.SetHook(busy)
			}
		})
	}
}
