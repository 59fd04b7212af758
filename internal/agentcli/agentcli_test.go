package agentcli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
	at "github.com/lampi-pkg/lampi-pkg/internal/agentcli/agenttest"
)

func run(t *testing.T, clock *at.Clock, args ...string) (int, string, string) {
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
