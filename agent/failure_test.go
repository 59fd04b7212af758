package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestPostinstFailsRollsBack: the new version's postinst fails; the agent
// reinstalls 0.1 from its cache and reports rolled-back, with apt-get and
// with dpkg.
func TestPostinstFailsRollsBack(t *testing.T) {
	t.Parallel()
	for _, method := range []string{agent.MethodApt, agent.MethodDpkg} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, at.RepoOptions{}, "install_method = "+method+"\n", agent.Options{})
			w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{Postinst: "#!/bin/sh\necho 'postinst: cannot start the lamp' >&2\nexit 1\n"}))
			o := w.a.Once(context.Background())
			if o.Result != state.ResultRolledBack || !errors.Is(o.Err, agent.ErrInstall) || o.ExitCode() != 11 {
				t.Fatalf("outcome %s (exit %d) %v", o.Result, o.ExitCode(), o.Err)
			}
			if !strings.Contains(o.Err.Error(), "cannot start the lamp") {
				t.Errorf("error lacks the postinst output: %v", o.Err)
			}
			if v := w.d.Version("hi"); v != "0.1" {
				t.Fatalf("hi is %q after the rollback", v)
			}
			if got := w.d.Hi(); got != "Hello Deb! Version 0.1" {
				t.Errorf("hi says %q", got)
			}
			s, _ := w.a.NewState("")
			if s.Result != state.ResultRolledBack || s.Packages["hi"] != "0.1" || s.Target["hi"] != "0.2" || s.Error == "" {
				t.Errorf("report %+v", s)
			}
		})
	}
}

// TestRollbackWithoutCachedPrevious: a device whose first check already
// finds an update has no .deb of its installed version cached (it was
// installed by other means). When the update's health check fails, the
// agent still rolls back: it fetches the installed version from the
// repository, which still lists it, before installing. It stayed on 0.2 before
// (no package to roll back to), as the rollout fleet test saw under load.
func TestRollbackWithoutCachedPrevious(t *testing.T) {
	t.Parallel()
	clock := at.NewClock(at.Start)
	debs := t.TempDir()
	// Limit 2 keeps 0.1 listed beside 0.2, as a rollout's pin does.
	r := at.NewRepo(t, clock, at.RepoOptions{Limit: 2})
	hi01 := at.BuildHi(t, debs, "0.1", at.HiOptions{})
	r.Publish(hi01)
	r.Publish(at.BuildHi(t, debs, "0.2", at.HiOptions{}))
	d := at.NewDevice(t, r, "lamp-nocache", "health_check = grep -qx 0.1 \"$LAMPI_ROOT/opt/hi/__VERSION__\"\n")
	d.InstallDeb(hi01)
	a := newAgent(t, d, clock, agent.Options{})
	o := a.Once(context.Background())
	if o.Result != state.ResultRolledBack || !errors.Is(o.Err, agent.ErrHealthCheck) {
		t.Fatalf("outcome %s %v", o.Result, o.Err)
	}
	if v := d.Version("hi"); v != "0.1" {
		t.Fatalf("hi is %q after the failed update", v)
	}
}

// TestHealthCheckFailsRollsBack: 0.2 installs, but the health check fails
// for it; the agent rolls back to 0.1, where the check passes.
func TestHealthCheckFailsRollsBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "health_check = grep -qx 0.1 \"$LAMPI_ROOT/opt/hi/__VERSION__\"\n", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	o := w.a.Once(context.Background())
	if o.Result != state.ResultRolledBack || !errors.Is(o.Err, agent.ErrHealthCheck) {
		t.Fatalf("outcome %s %v", o.Result, o.Err)
	}
	if v := w.d.Version("hi"); v != "0.1" {
		t.Fatalf("hi is %q", v)
	}
	// The status shows what rolled back; later polls hold it back
	// (TestRolledBackHeldBack).
	if st := w.a.Status(); st.Result != state.ResultRolledBack || st.Target["hi"] != "0.2" {
		t.Errorf("status %+v", st)
	}
	// What a rollout controller reads: the attempt of 0.2 rolled back
	// because of the health check, and the device, eligible for 0.2,
	// stays on 0.1 check after check.
	s, err := w.a.NewState("")
	if err != nil {
		t.Fatal(err)
	}
	if a := s.Attempts["hi"]; a.Version != "0.2" || a.Result != state.ResultRolledBack || a.Health != state.HealthFailed || a.Time.IsZero() {
		t.Errorf("attempt reported %+v", a)
	}
	if c := s.Candidates["hi"]; c != (state.Candidate{Version: "0.2", Phased: 100, Eligible: true, Checks: 1}) {
		t.Errorf("candidate reported %+v", c)
	}
	w.clock.Advance(time.Hour)
	if o := w.a.Once(context.Background()); o.Result != state.ResultHeldBack {
		t.Fatalf("second check: %s %v", o.Result, o.Err)
	}
	s, _ = w.a.NewState("")
	if c := s.Candidates["hi"]; c.Checks != 2 || !c.Eligible {
		t.Errorf("candidate after a second check %+v", c)
	}
	if _, err := state.Encode(s); err != nil {
		t.Errorf("the report does not validate: %v", err)
	}
}

// TestNoRollbackCandidate: without the previous .deb in the cache the
// failure is reported as failed, saying why no rollback happened.
func TestNoRollbackCandidate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	files, _ := filepath.Glob(filepath.Join(w.d.CacheDir, "hi_0.1_*.deb"))
	if len(files) != 1 {
		t.Fatalf("the first check did not cache hi 0.1 for rollbacks: %v", files)
	}
	os.Remove(files[0])
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{Postinst: "#!/bin/sh\nexit 1\n"}))
	o := w.a.Once(context.Background())
	if o.Result != state.ResultFailed || !errors.Is(o.Err, agent.ErrNoRollback) {
		t.Fatalf("outcome %s %v", o.Result, o.Err)
	}
}

// TestBrokerDownDuringUpdate: the broker is down while the update runs;
// the update happens, and the report arrives once the broker is back.
func TestBrokerDownDuringUpdate(t *testing.T) {
	t.Parallel()
	mq := at.NewMosquitto(t) // not started yet
	w := newWorld(t, at.RepoOptions{}, "broker = "+mq.URL+"\nreconnect_backoff = 1s\n", agent.Options{})
	ropts, ok, err := w.a.ReporterOptions()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	rep, err := agent.NewMQTTReporter(context.Background(), ropts)
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close(context.Background())
	s1, _ := w.a.NewState("")
	rep.Report(s1)

	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	if o := w.a.Once(context.Background()); o.Result != state.ResultUpdated {
		t.Fatalf("update with the broker down: %s %v", o.Result, o.Err)
	}
	s2, _ := w.a.NewState("")
	rep.Report(s2) // replaces s1: only the latest state is kept
	if st := w.a.Status(); !st.Unsent {
		t.Errorf("status does not say the report is unsent: %+v", st)
	}

	mq.Start()
	sub := at.Subscribe(t, mq.URL)
	got := sub.WaitState(t, w.d.ID, func(s state.State) bool { return s.Seq == s2.Seq })
	if got.Result != state.ResultUpdated || got.Packages["hi"] != "0.2" {
		t.Errorf("report %+v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range sub.Messages() {
		if strings.Contains(m.Payload, fmt.Sprintf(`"seq":%d,`, s1.Seq)) {
			t.Errorf("superseded state sent: %s", m.Payload)
		}
	}
	if st := w.a.Status(); st.Unsent {
		t.Errorf("status still says unsent after the broker acknowledged")
	}
}

// TestServerDownBackoff: with the server gone, Run backs off exponentially
// (no busy loop); a 503 with Retry-After is honoured.
func TestServerDownBackoff(t *testing.T) {
	t.Parallel()
	var waits []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorld(t, at.RepoOptions{}, "poll_interval = 1h\npoll_jitter = 10m\nmax_backoff = 2h\n", agent.Options{
		Rand: func() float64 { return 0.5 },
		Sleep: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			if len(waits) == 6 {
				cancel()
				return ctx.Err()
			}
			return nil
		},
	})
	w.r.Server.Close()
	if err := w.a.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{22500 * time.Millisecond, 45 * time.Second, 90 * time.Second, 3 * time.Minute, 6 * time.Minute, 12 * time.Minute}
	for i := range want {
		if i >= len(waits) || waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	if st := w.a.Status(); st.Failures != 6 || st.Result != state.ResultFailed || !strings.Contains(st.Error, "connection refused") {
		t.Errorf("status %+v", st)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{Rand: func() float64 { return 0 }})
	w.r.SetHook(func(rw http.ResponseWriter, _ *http.Request) bool {
		rw.Header().Set("Retry-After", "7200")
		rw.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	o := w.a.Once(context.Background())
	if o.Result != state.ResultFailed || o.RetryAfter != 2*time.Hour {
		t.Fatalf("outcome %s %v retry %s", o.Result, o.Err, o.RetryAfter)
	}
	if d := w.a.NextDelay(o); d != 2*time.Hour {
		t.Errorf("next delay %s, want the server's 2h", d)
	}
	// The wish outlives the process: a restarted agent knows it, and its
	// Run waits it out before the first request.
	want := at.Start.Add(time.Minute).Add(2 * time.Hour)
	if nb := w.a.NotBefore(); !nb.Equal(want) {
		t.Errorf("NotBefore %s, want %s", nb, want)
	}
	w.r.Requests()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	again := newAgent(t, w.d, w.clock, agent.Options{Sleep: func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		cancel()
		return ctx.Err()
	}})
	if st := again.Status(); !st.NotBefore.Equal(want) {
		t.Errorf("status after restart: not before %s, want %s", st.NotBefore, want)
	}
	if err := again.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 || waits[0] != min(2*time.Hour, again.Config().Heartbeat) {
		t.Errorf("run after restart waited %v first, want the rest of the server's 2h (in heartbeat steps)", waits)
	}
	if reqs := w.r.Requests(); len(reqs) != 0 {
		t.Errorf("run after restart asked the server within its Retry-After: %q", reqs)
	}
	w.clock.Advance(2*time.Hour + time.Second)
	if nb := again.NotBefore(); !nb.IsZero() {
		t.Errorf("NotBefore %s after the time has passed", nb)
	}
}

// TestInterruptedDpkgRepaired: dpkg was killed between unpack and
// configure; the next agent start finishes it with dpkg --configure -a.
func TestInterruptedDpkgRepaired(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	hi02 := at.BuildHi(t, w.debs, "0.2", at.HiOptions{})
	w.r.Publish(hi02)
	if out, err := w.d.Apt.Dpkg("--unpack", hi02); err != nil {
		t.Fatal(err, out)
	}
	if v := w.d.Version("hi"); !strings.Contains(v, "unpacked") {
		t.Fatalf("setup: hi is %q", v)
	}
	a := newAgent(t, w.d, w.clock, agent.Options{}) // a new start
	o := a.Once(context.Background())
	if !o.Repaired || o.Result != state.ResultUpToDate {
		t.Fatalf("outcome %+v", o)
	}
	if v := w.d.Version("hi"); v != "0.2" {
		t.Fatalf("hi is %q after the repair", v)
	}
}

// TestNeverDowngrades: the device runs a newer version than published.
func TestNeverDowngrades(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	w.d.InstallDeb(at.BuildHi(t, t.TempDir(), "0.3", at.HiOptions{}))
	o := w.a.Once(context.Background())
	if o.Result != state.ResultUpToDate || w.d.Version("hi") != "0.3" {
		t.Fatalf("outcome %s %v, hi %s", o.Result, o.Err, w.d.Version("hi"))
	}
}

// TestMaintenanceWindow: outside the window the update is deferred, inside
// it is installed.
func TestMaintenanceWindow(t *testing.T) {
	t.Parallel()
	// the clock starts at 12:00 UTC
	w := newWorld(t, at.RepoOptions{}, "maintenance_window = 13:00-14:00\n", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	o := w.a.Once(context.Background())
	if o.Result != state.ResultDeferred || o.Pending["hi"] != "0.2" || o.ExitCode() != 20 || w.d.Version("hi") != "0.1" {
		t.Fatalf("outside: %+v", o)
	}
	if d := w.a.NextDelay(o); d > time.Hour || d < 58*time.Minute {
		t.Errorf("next check in %s, want when the window opens", d)
	}
	w.clock.Advance(time.Hour)
	if o := w.a.Once(context.Background()); o.Result != state.ResultUpdated || w.d.Version("hi") != "0.2" {
		t.Fatalf("inside: %+v", o)
	}
}

// TestSelfUpdate: an update of the agent's own package goes through
// systemd-run (here a stand-in that runs the command directly, as the
// transient unit would), and the next run reports the result.
func TestSelfUpdate(t *testing.T) {
	t.Parallel()
	fake := filepath.Join(t.TempDir(), "systemd-run")
	log := fake + ".log"
	script := "#!/bin/sh\necho \"$@\" > " + log + "\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, at.RepoOptions{}, "self_package = hi\nsystemd_run = "+fake+"\n", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	o := w.a.Once(context.Background())
	if o.SelfUpdate == nil || o.Result != state.ResultDeferred || o.SelfUpdate.To != "0.2" {
		t.Fatalf("outcome %+v", o)
	}
	args, _ := os.ReadFile(log)
	for _, want := range []string{"--unit=hi-update-0.2", "--collect", "--no-block", "apt-get", "install", "hi_0.2_all.deb"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("systemd-run args lack %q: %s", want, args)
		}
	}
	// the "new agent" after the restart
	a := newAgent(t, w.d, w.clock, agent.Options{})
	if o := a.Once(context.Background()); o.Result != state.ResultUpdated || o.Target["hi"] != "0.2" {
		t.Fatalf("after self-update: %+v", o)
	}
	if st := a.Status(); st.SelfUpdate != nil {
		t.Errorf("self-update still pending: %+v", st.SelfUpdate)
	}
}

// TestPhasedUpdate: the repository phases hi 0.2 at 30 %; a device whose
// apt draw is 57 waits, one whose draw is 14 installs it.
func TestPhasedUpdate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	w.r.Phase("hi", 30)
	// NewDevice's machine id 0123…cdef draws 57 for hi 0.2.
	if d := agent.PhaseDraw("hi", "0.2", "0123456789abcdef0123456789abcdef"); d != 57 {
		t.Fatalf("draw %d", d)
	}
	o := w.a.Once(context.Background())
	if o.Result != state.ResultDeferred || o.Pending["hi"] != "0.2" || w.d.Version("hi") != "0.1" {
		t.Fatalf("out of the cohort: %+v", o)
	}
	if s, _ := w.a.NewState(""); s.Candidates["hi"] != (state.Candidate{Version: "0.2", Phased: 30}) || len(s.Attempts) != 0 {
		t.Errorf("a device out of the cohort reports %+v and %+v", s.Candidates, s.Attempts)
	}
	lucky := newAgent(t, w.d, w.clock, agent.Options{MachineID: "00000000000000000000000000000001"}) // draws 14
	if o := lucky.Once(context.Background()); o.Result != state.ResultUpdated || w.d.Version("hi") != "0.2" {
		t.Fatalf("in the cohort: %+v", o)
	}
	s, _ := lucky.NewState("")
	if a := s.Attempts["hi"]; len(s.Candidates) != 0 || a.Version != "0.2" || a.Result != state.ResultUpdated || a.Health != "" {
		t.Errorf("an updated device reports candidates %+v, attempts %+v", s.Candidates, s.Attempts)
	}
}

// TestDpkgLockTimeout: another process holds dpkg's lock for longer than
// lock_timeout: the update fails with ErrLocked and nothing is installed.
func TestDpkgLockTimeout(t *testing.T) {
	t.Parallel()
	py := testutil.RequireTool(t, "python3")
	var slept time.Duration
	w := newWorld(t, at.RepoOptions{}, "lock_timeout = 5s\n", agent.Options{Sleep: func(ctx context.Context, d time.Duration) error {
		slept += d
		return nil
	}})
	lock := filepath.Join(w.d.Root, "var/lib/dpkg/lock-frontend")
	holder := exec.Command(py, "-c", "import fcntl,sys\nf=open(sys.argv[1],'a')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\nsys.stdin.read()", lock)
	stdin, _ := holder.StdinPipe()
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); holder.Wait() }()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "locked" {
		t.Fatalf("lock holder: %q %v", buf, err)
	}
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	o := w.a.Once(context.Background())
	if o.Result != state.ResultFailed || !errors.Is(o.Err, agent.ErrLocked) || w.d.Version("hi") != "0.1" {
		t.Fatalf("outcome %s %v", o.Result, o.Err)
	}
	if slept != 5*time.Second {
		t.Errorf("waited %s for the lock, want the 5s lock_timeout", slept)
	}
	stdin.Close()
	holder.Wait()
	if o := w.a.Once(context.Background()); o.Result != state.ResultUpdated {
		t.Fatalf("after the lock was released: %s %v", o.Result, o.Err)
	}
}

// TestUndeliveredIsNoAttempt: a download of 0.2 that fails (the server
// resets the connection, as a server restarted mid-rollout does) is a
// failed check that backs off, but the report names no attempt of 0.2: a
// rollout controller must not count it as the version failing on the
// device. The next check, with the server back, installs 0.2 and reports
// that attempt. Found by the fleet test of rollouts (TestRolloutFleet),
// whose healthy release halted when its server was killed.
func TestUndeliveredIsNoAttempt(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	w.r.SetHook(func(rw http.ResponseWriter, req *http.Request) bool {
		if !strings.HasSuffix(req.URL.Path, "hi_0.2_all.deb") {
			return false
		}
		hj, ok := rw.(http.Hijacker)
		if !ok {
			t.Fatal("no hijacker")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	})
	o := w.a.Once(context.Background())
	if o.Result != state.ResultFailed || !strings.Contains(o.Err.Error(), "download hi 0.2") {
		t.Fatalf("outcome %s %v", o.Result, o.Err)
	}
	s, err := w.a.NewState("")
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := s.Attempts["hi"]; ok {
		t.Errorf("a download that failed is reported as an attempt of the version: %+v", a)
	}
	if c := s.Candidates["hi"]; c.Version != "0.2" || !c.Eligible {
		t.Errorf("candidate reported %+v", c)
	}
	w.r.SetHook(nil)
	w.clock.Advance(time.Hour)
	if o := w.a.Once(context.Background()); o.Result != state.ResultUpdated {
		t.Fatalf("with the server back: %s %v", o.Result, o.Err)
	}
	s, _ = w.a.NewState("")
	if a := s.Attempts["hi"]; a.Version != "0.2" || a.Result != state.ResultUpdated {
		t.Errorf("attempt after the update %+v", a)
	}
}
