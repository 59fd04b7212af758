package agentcli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
)

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

	code, out, errs := run(t, clock, "once", "--config", d.Conf)
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
	code, out, errs = run(t, clock, "once", "--config", d.Conf, "--json")
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
	code, out, _ = run(t, clock, "status", "--config", d.Conf, "--json")
	var status agent.Status
	if code != 0 || json.Unmarshal([]byte(out), &status) != nil || status.Installed["hi"] != "0.2" || status.Result != state.ResultUpdated || status.Seq != st.Seq {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	// An idle check: one conditional request, answered 304.
	r.Requests()
	code, _, errs = run(t, clock, "once", "--config", d.Conf)
	if code != 0 {
		t.Fatalf("idle once: exit %d %s", code, errs)
	}
	if reqs := r.Requests(); len(reqs) != 1 || !strings.HasSuffix(reqs[0], "/dists/stable/InRelease") {
		t.Errorf("idle check made requests %v", reqs)
	}
}
