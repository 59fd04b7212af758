package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
)

// runCLI runs lampi-agent with args and returns its exit code and output.
func runCLI(t *testing.T, clock *at.Clock, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := agentcli.StdIO()
	env.Out, env.Err = &out, &errb
	if clock != nil {
		env.Now = clock.Now
	}
	code := agentcli.Main(args, env)
	return code, out.String(), errb.String()
}

// newAgent builds the library agent for a device on the test clock.
func newAgent(t testing.TB, d *at.Device, clock *at.Clock, opts agent.Options) *agent.Agent {
	t.Helper()
	cfg, err := agent.LoadConfig(d.Conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = clock.Now
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestEndToEnd: a device with hi 0.1; 0.2 is published; "lampi-agent once"
// installs it through apt-get in the isolated root, /opt/hi/hi prints
// 0.2, and the state report reaches a real Mosquitto subscriber.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	debs := t.TempDir()
	r.Publish(at.BuildHi(t, debs, "0.1", at.HiOptions{}))

	mq := at.NewMosquitto(t)
	mq.Start()
	sub := at.Subscribe(t, mq.URL)
	d := at.NewDevice(t, r, "lamp-e2e", "broker = "+mq.URL+"\n")
	d.InstallDeb(at.BuildHi(t, debs, "0.1", at.HiOptions{}))
	if got := d.Hi(); got != "Hello Deb! Version 0.1" {
		t.Fatalf("before: %q", got)
	}

	code, out, errs := runCLI(t, clock, "once", "--config", d.Conf)
	if code != agentcli.ExitUpToDate || !strings.Contains(out, "up to date: hi 0.1") {
		t.Fatalf("first once: exit %d\n%s%s", code, out, errs)
	}
	sub.WaitStatus(t, d.ID, state.Online)
	first := sub.WaitState(t, d.ID, func(s state.State) bool { return s.Result == state.ResultUpToDate })
	if first.Packages["hi"] != "0.1" || first.Seq < uint64(at.Start.UnixMicro()) {
		t.Errorf("first report %+v", first)
	}
	// online goes out before the state
	var order []string
	for _, m := range sub.Messages() {
		order = append(order, strings.TrimPrefix(m.Topic, "devices/lamp-e2e/")+"="+m.Payload[:min(len(m.Payload), 7)])
	}
	if len(order) < 2 || order[0] != "status=online" || !strings.HasPrefix(order[1], "state=") {
		t.Errorf("message order %v", order)
	}

	r.Publish(at.BuildHi(t, debs, "0.2", at.HiOptions{}))
	code, out, errs = runCLI(t, clock, "once", "--config", d.Conf, "--json")
	if code != agentcli.ExitUpdated {
		t.Fatalf("once: exit %d\n%s%s", code, out, errs)
	}
	var res struct {
		Result    string            `json:"result"`
		ExitCode  int               `json:"exit_code"`
		Installed map[string]string `json:"installed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Result != state.ResultUpdated || res.Installed["hi"] != "0.2" || res.ExitCode != 10 {
		t.Fatalf("once --json: %v\n%s", err, out)
	}
	if got := d.Hi(); got != "Hello Deb! Version 0.2" {
		t.Fatalf("after update /opt/hi/hi says %q", got)
	}
	st := sub.WaitState(t, d.ID, func(s state.State) bool { return s.Result == state.ResultUpdated })
	if st.Packages["hi"] != "0.2" || st.Target["hi"] != "0.2" || st.Seq <= first.Seq || st.Device != d.ID {
		t.Errorf("report %+v", st)
	}
	sub.WaitStatus(t, d.ID, state.Offline)

	// status reads the persisted state without contacting anything.
	code, out, _ = runCLI(t, clock, "status", "--config", d.Conf, "--json")
	var status agent.Status
	if code != 0 || json.Unmarshal([]byte(out), &status) != nil || status.Installed["hi"] != "0.2" || status.Result != state.ResultUpdated || status.Seq != st.Seq {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	// An idle check: one conditional request, answered 304.
	r.Requests()
	code, _, errs = runCLI(t, clock, "once", "--config", d.Conf)
	if code != 0 {
		t.Fatalf("idle once: exit %d %s", code, errs)
	}
	if reqs := r.Requests(); len(reqs) != 1 || !strings.HasSuffix(reqs[0], "/dists/stable/InRelease") {
		t.Errorf("idle check made requests %v", reqs)
	}
	_ = context.Background
}

// TestDeb822InlineKey: the device's source is a deb822 .sources file with
// the repository key inline in Signed-By; install with dpkg.
func TestDeb822InlineKey(t *testing.T) {
	t.Parallel()
	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	debs := t.TempDir()
	hi01 := at.BuildHi(t, debs, "0.1", at.HiOptions{})
	r.Publish(hi01)
	d := at.NewDevice(t, r, "lamp-deb822", "install_method = dpkg\n")
	d.InstallDeb(hi01)
	var key strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(r.KeyArmor), "\n") {
		if l == "" {
			l = "."
		}
		key.WriteString(" " + l + "\n")
	}
	src := strings.TrimSuffix(d.Sources, ".list") + ".sources"
	body := "# lampi updates\nTypes: deb\nURIs: " + r.URL + "\nSuites: stable\nComponents: main\nSigned-By:\n" + key.String()
	if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(d.Conf)
	if err := os.WriteFile(d.Conf, []byte(strings.Replace(string(conf), d.Sources, src, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Publish(at.BuildHi(t, debs, "0.2", at.HiOptions{}))
	a := newAgent(t, d, clock, agent.Options{})
	if o := a.Once(context.Background()); o.Result != state.ResultUpdated {
		t.Fatalf("%s %v", o.Result, o.Err)
	}
	if got := d.Hi(); got != "Hello Deb! Version 0.2" {
		t.Fatalf("hi says %q", got)
	}
}
