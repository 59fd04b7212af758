package agentcli_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
)

// run runs lampi-agent with args and returns its exit code and output.
func run(t testing.TB, clock *at.Clock, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := agentcli.StdIO()
	env.Out, env.Err = &out, &errb
	if clock != nil {
		env.Now = clock.Now
	}
	return agentcli.Main(args, env), out.String(), errb.String()
}

func TestBadConfigExit2(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "agent.conf")
	os.WriteFile(conf, []byte("# x\npoll_interval = sometimes\n"), 0o644)
	code, _, errs := run(t, nil, "once", "--config", conf)
	if code != agentcli.ExitUsage || !strings.Contains(errs, conf+":2: poll_interval") || !strings.Contains(errs, "Try:") {
		t.Errorf("exit %d: %s", code, errs)
	}
	code, _, errs = run(t, nil, "status", "--config", filepath.Join(t.TempDir(), "missing.conf"))
	if code != agentcli.ExitUsage || !strings.Contains(errs, "missing.conf") {
		t.Errorf("exit %d: %s", code, errs)
	}
	if code, _, _ := run(t, nil, "frobnicate"); code != agentcli.ExitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
}

// TestOnceFailedAndStatus: the repository is unreachable: once exits 1 and
// says why; status shows the error.
func TestOnceFailedAndStatus(t *testing.T) {
	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	d := at.NewDevice(t, r, "lamp-cli", "")
	r.Server.Close()
	code, out, errs := run(t, clock, "once", "--config", d.Conf)
	if code != agentcli.ExitFailed || !strings.Contains(errs, "connection refused") || !strings.Contains(errs, "/dists/stable/InRelease") {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = run(t, clock, "status", "--config", d.Conf)
	for _, want := range []string{"device:       lamp-cli (amd64)", "result:       failed", "connection refused", "source:       " + r.URL} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("status exit %d", code)
	}
}

// TestOnceHonoursRetryAfter: a 503 with Retry-After makes once fail and
// keeps the time in the state directory; the next once before that time
// makes no request and exits 20 (deferred), unless --force; once the time
// has passed, once checks (and here updates) again.
func TestOnceHonoursRetryAfter(t *testing.T) {
	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	debs := t.TempDir()
	hi01 := at.BuildHi(t, debs, "0.1", at.HiOptions{})
	r.Publish(hi01)
	d := at.NewDevice(t, r, "lamp-busy", "")
	d.InstallDeb(hi01)
	r.Publish(at.BuildHi(t, debs, "0.2", at.HiOptions{}))
	busy := func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Retry-After", "600")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return true
	}
	r.SetHook(busy)
	code, out, errs := run(t, clock, "once", "--config", d.Conf)
	if code != agentcli.ExitFailed || !strings.Contains(errs, "503") || !strings.Contains(errs, "retry after 10m0s") {
		t.Fatalf("busy server: exit %d\n%s%s", code, out, errs)
	}
	r.Requests()

	// Five minutes later, the server is fine again, but it asked for ten.
	r.SetHook(nil)
	clock.Advance(5 * time.Minute)
	code, out, errs = run(t, clock, "once", "--config", d.Conf)
	if code != agentcli.ExitDeferred || !strings.Contains(out, "deferred: not checking") ||
		!strings.Contains(out, "not to be contacted before 2026-") || !strings.Contains(out, "5m0s from now") ||
		!strings.Contains(out, "--force") || errs != "" {
		t.Errorf("within Retry-After: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = run(t, clock, "once", "--json", "--config", d.Conf)
	var j struct {
		Result    string    `json:"result"`
		ExitCode  int       `json:"exit_code"`
		Skipped   bool      `json:"skipped"`
		NotBefore time.Time `json:"not_before"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != agentcli.ExitDeferred || j.Result != "deferred" ||
		j.ExitCode != agentcli.ExitDeferred || !j.Skipped || !j.NotBefore.Equal(at.Start.Add(2*time.Minute+10*time.Minute)) {
		t.Errorf("--json within Retry-After: exit %d %v\n%s", code, err, out)
	}
	if reqs := r.Requests(); len(reqs) != 0 {
		t.Errorf("deferred once made requests: %q", reqs)
	}
	if code, out, _ := run(t, clock, "status", "--config", d.Conf); code != 0 || !strings.Contains(out, "not before:") {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	// --force checks anyway (and the still busy server renews its wish).
	r.SetHook(busy)
	if code, out, errs := run(t, clock, "once", "--force", "--config", d.Conf); code != agentcli.ExitFailed || !strings.Contains(errs, "503") {
		t.Errorf("--force: exit %d\n%s%s", code, out, errs)
	}
	if reqs := r.Requests(); len(reqs) == 0 {
		t.Error("--force made no request")
	}
	r.SetHook(nil)
	clock.Advance(9 * time.Minute)
	if code, out, _ := run(t, clock, "once", "--config", d.Conf); code != agentcli.ExitDeferred {
		t.Errorf("within the renewed Retry-After: exit %d\n%s", code, out)
	}
	// After the time has passed, the next once checks and updates.
	clock.Advance(time.Minute + time.Second)
	if code, out, errs := run(t, clock, "once", "--config", d.Conf); code != agentcli.ExitUpdated {
		t.Fatalf("after Retry-After: exit %d\n%s%s", code, out, errs)
	}
	if got := d.Hi(); got != "Hello Deb! Version 0.2" {
		t.Errorf("hi says %q", got)
	}
	if code, out, _ := run(t, clock, "status", "--config", d.Conf); code != 0 || strings.Contains(out, "not before:") {
		t.Errorf("status after the update: exit %d\n%s", code, out)
	}
}
