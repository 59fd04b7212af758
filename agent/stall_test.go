package agent_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// reconfigure appends lines to the device's agent.conf and starts a new
// agent with it (the first check of newWorld ran with the defaults).
func (w *world) reconfigure(t *testing.T, extra string, opts agent.Options) {
	t.Helper()
	f, err := os.OpenFile(w.d.Conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w.a = newAgent(t, w.d, w.clock, opts)
}

// onceWithin runs one cycle and fails the test if it does not return
// within d (generous: the bounds under test are seconds).
func onceWithin(t *testing.T, a *agent.Agent, d time.Duration) *agent.Outcome {
	t.Helper()
	ch := make(chan *agent.Outcome, 1)
	go func() { ch <- a.Once(context.Background()) }()
	select {
	case o := <-ch:
		return o
	case <-time.After(d):
		t.Fatalf("Once did not return within %s: the agent hangs on a stalled request", d)
		return nil
	}
}

func isInRelease(p string) bool { return strings.HasSuffix(p, "/InRelease") }
func isPackages(p string) bool  { return strings.Contains(p, "/binary-amd64/") }
func isDeb(p string) bool       { return strings.HasSuffix(p, ".deb") }

// stallTargets are the files a stall is tried on.
var stallTargets = []struct {
	name  string
	match func(string) bool
}{{"InRelease", isInRelease}, {"Packages", isPackages}, {"deb", isDeb}}

// TestStalledBody: the server (or anything on the path) sends headers and
// then nothing, for InRelease, Packages or the .deb. The request fails
// after fetch_idle_timeout as a failed check naming the file, and the next
// cycle goes on (here: installs hi 0.2 once the server behaves).
func TestStalledBody(t *testing.T) {
	t.Parallel()
	for _, c := range stallTargets {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
			w.reconfigure(t, "fetch_idle_timeout = 5s\n", agent.Options{})
			w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
			stalled := w.r.Stall(c.match, 0)
			o := onceWithin(t, w.a, 2*time.Minute)
			if o.Result != state.ResultFailed || !errors.Is(o.Err, agent.ErrStalled) || !strings.Contains(o.Err.Error(), "fetch_idle_timeout") {
				t.Fatalf("outcome %s %v, want failed with %v", o.Result, o.Err, agent.ErrStalled)
			}
			var p string
			select {
			case p = <-stalled:
			default:
				t.Fatal("no request was stalled")
			}
			if !strings.Contains(o.Err.Error(), p) {
				t.Errorf("error %q does not name the stalled %s", o.Err, p)
			}
			if st := w.a.Status(); st.Result != state.ResultFailed || !strings.Contains(st.Error, "stalled") || w.d.Version("hi") != "0.1" {
				t.Errorf("status %+v, hi %s", st, w.d.Version("hi"))
			}
			w.r.SetHook(nil)
			w.clock.Advance(5 * time.Minute) // past a failed download's backoff
			if o := onceWithin(t, w.a, 2*time.Minute); o.Result != state.ResultUpdated || w.d.Version("hi") != "0.2" {
				t.Fatalf("next cycle: %s %v", o.Result, o.Err)
			}
		})
	}
}

// TestTrickledBody: the server sends one byte of the genuine file every
// 200 ms, which an idle deadline alone never ends. fetch_timeout bounds
// the cycle's requests together; the .deb's partial download is resumed
// by the next cycle with a Range request.
func TestTrickledBody(t *testing.T) {
	t.Parallel()
	for _, c := range stallTargets {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
			w.reconfigure(t, "fetch_timeout = 8s\n", agent.Options{}) // idle: the default minute
			w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
			stalled := w.r.Stall(c.match, 200*time.Millisecond)
			o := onceWithin(t, w.a, 2*time.Minute)
			if o.Result != state.ResultFailed || !errors.Is(o.Err, agent.ErrStalled) || !strings.Contains(o.Err.Error(), "fetch_timeout") {
				t.Fatalf("outcome %s %v, want failed with %v (fetch_timeout)", o.Result, o.Err, agent.ErrStalled)
			}
			p := <-stalled
			if !strings.Contains(o.Err.Error(), p) {
				t.Errorf("error %q does not name the trickled %s", o.Err, p)
			}
			var mu sync.Mutex
			var ranges []string
			w.r.SetHook(func(_ http.ResponseWriter, req *http.Request) bool {
				if isDeb(req.URL.Path) {
					mu.Lock()
					ranges = append(ranges, req.Header.Get("Range"))
					mu.Unlock()
				}
				return false
			})
			w.clock.Advance(5 * time.Minute) // past a failed download's backoff
			if o := onceWithin(t, w.a, 2*time.Minute); o.Result != state.ResultUpdated || w.d.Version("hi") != "0.2" {
				t.Fatalf("next cycle: %s %v", o.Result, o.Err)
			}
			mu.Lock()
			defer mu.Unlock()
			if c.name == "deb" && (len(ranges) != 1 || !strings.HasPrefix(ranges[0], "bytes=") || ranges[0] == "bytes=0-") {
				t.Errorf("the next cycle did not resume the trickled .deb: Range %q", ranges)
			}
		})
	}
}

// chanReporter is a Reporter that hands each state to a channel.
type chanReporter struct{ ch chan state.State }

func (r *chanReporter) Report(s state.State) { r.ch <- s }

// TestRunHeartbeatWhileStalled: a check hangs on a stalled InRelease (the
// idle bound is far away); Run keeps sending its heartbeat, and Status
// answers, while it hangs.
func TestRunHeartbeatWhileStalled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	w.reconfigure(t, "heartbeat = 1s\nfetch_idle_timeout = 10m\n", agent.Options{})
	stalled := w.r.Stall(isInRelease, 0)
	rep := &chanReporter{ch: make(chan state.State, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.a.Run(ctx, rep) }()
	select {
	case <-stalled:
	case <-time.After(time.Minute):
		t.Fatal("Run never asked for InRelease")
	}
	var seqs []uint64
	for len(seqs) < 3 {
		select {
		case s := <-rep.ch:
			seqs = append(seqs, s.Seq)
		case <-time.After(time.Minute):
			t.Fatalf("no heartbeat while the check is stalled (got %v)", seqs)
		}
	}
	status := make(chan agent.Status, 1)
	go func() { status <- w.a.Status() }()
	select {
	case st := <-status:
		// the stalled cycle has not ended: the last committed result
		if st.Result != state.ResultUpToDate || st.Seq < seqs[2] {
			t.Errorf("status while stalled %+v", st)
		}
	case <-time.After(time.Minute):
		t.Fatal("Status waits for the stalled cycle")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestRunStalledCheckFails: Run reports a stalled check as failed and goes
// on with its schedule (the failure backoff), and the next cycle updates.
func TestRunStalledCheckFails(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	var waits []time.Duration
	w.reconfigure(t, "fetch_idle_timeout = 5s\n", agent.Options{
		Rand: func() float64 { return 0.5 },
		Sleep: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			w.r.SetHook(nil) // the server behaves from now on
			if len(waits) == 2 {
				cancel()
				return ctx.Err()
			}
			return nil
		},
	})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	w.r.Stall(isInRelease, 0)
	rep := &chanReporter{ch: make(chan state.State, 100)}
	done := make(chan error, 1)
	go func() { done <- w.a.Run(ctx, rep) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Run hangs on the stalled InRelease")
	}
	close(rep.ch)
	var got []state.State
	for s := range rep.ch {
		got = append(got, s)
	}
	if len(got) != 2 || got[0].Result != state.ResultFailed || !strings.Contains(got[0].Error, "stalled") ||
		got[1].Result != state.ResultUpdated || got[1].Packages["hi"] != "0.2" {
		t.Fatalf("reports %+v", got)
	}
	if len(waits) != 2 || waits[0] != 22500*time.Millisecond {
		t.Errorf("waits %v, want the failure backoff (22.5s) first", waits)
	}
}
