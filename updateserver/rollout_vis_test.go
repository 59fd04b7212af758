package updateserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/rollout"
)

// TestServerRolloutVisibility: the server's controller halts a rollout
// of hi 0.2 when three devices report it rolled back over MQTT. The halt
// reaches a webhook receiver on 127.0.0.1 (whose URL holds a secret the
// operator's lines never show), /metrics carries the rollout's gauges and
// the dashboard's rollout panel its stage, counts and decisions.
func TestServerRolloutVisibility(t *testing.T) {
	testutil.Heavy(t, "runs the whole server with its broker and publishes signed repositories")
	got := make(chan rollout.WebhookEvent, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev rollout.WebhookEvent
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/hooks/s3cr3t-path" || json.Unmarshal(b, &ev) != nil {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		got <- ev
	}))
	defer recv.Close()
	base, _ := testRepo(t)
	ctx := context.Background()
	var told notes
	if _, err := New(Config{Dir: base, Now: time.Now, RolloutWebhook: recv.URL + "/x"}); err == nil {
		t.Fatal("a webhook without the controller was accepted")
	}
	if _, err := New(Config{Dir: base, Now: time.Now, RolloutInterval: time.Minute, RolloutWebhook: "ftp://u:s3cr3t-pw@h/x", Fleet: &FleetConfig{MQTTListen: "127.0.0.1:0"}}); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("a bad webhook URL: %v", err)
	}
	s, err := New(Config{Dir: base, Now: time.Now, Notef: told.notef, Passphrase: passphrase, RolloutInterval: 50 * time.Millisecond,
		RolloutWebhook: recv.URL + "/hooks/s3cr3t-path?key=s3cr3t-key",
		Fleet:          &FleetConfig{MQTTListen: "127.0.0.1:0", AllowAnonymous: true, Dashboard: true}})
	if err != nil {
		t.Fatal(err)
	}
	r0 := includeHi(t, ctx, s, "0.1", "0.2")
	run := start(t, s)
	plan, err := rollout.ParsePlan("@canary:1h/3,50%:1h/3,100%")
	if err != nil {
		t.Fatal(err)
	}
	c := s.controller(rollout.RepoPublisher{Repo: r0})
	if _, err := c.Start(ctx, rollout.Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", Previous: "0.1", Plan: plan}); err != nil {
		t.Fatal(err)
	}
	// Before any report: the panel shows the group stage.
	if code, body := run.get(t, "/"); code != http.StatusOK || !strings.Contains(string(body), `id="rollouts"`) ||
		!strings.Contains(string(body), "Stage <strong>group canary</strong>") {
		t.Fatalf("dashboard %d:\n%s", code, body)
	}
	now := time.Now()
	for _, id := range []string{"pi1", "pi2", "pi3"} {
		publishFull(t, s.BrokerAddr().String(), state.State{Seq: 1, Time: now, Device: id, Packages: map[string]string{"hi": "0.1"}, Groups: []string{"canary"},
			Attempts: map[string]state.Attempt{"hi": {Version: "0.2", Result: state.ResultRolledBack, Health: state.HealthFailed, Time: now}}})
	}
	var ev rollout.WebhookEvent
	select {
	case ev = <-got:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no webhook call in 2 minutes; told:\n%s", told.String())
	}
	if ev.Event != rollout.Halt || ev.Rollout != "bookworm/hi/0.2" || ev.Stats.Failed != 3 || ev.State != rollout.Halted {
		t.Errorf("webhook event %+v", ev)
	}
	code, body := run.get(t, "/metrics")
	for _, want := range []string{`lampi_rollouts{state="halted"} 1`, `lampi_rollout_halted{rollout="bookworm/hi/0.2"} 1`,
		`lampi_rollout_devices{rollout="bookworm/hi/0.2",kind="failed"} 3`, "lampi_http_requests_total"} {
		if code != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("/metrics (%d) lacks %s:\n%s", code, want, body)
		}
	}
	_, body = run.get(t, "/")
	for _, want := range []string{"bookworm/hi/0.2</code> <span class=\"badge bad\">halted", "min-failures=3", "<td>halt</td>", `<td>0</td><td>0</td><td>3</td><td class="err">3</td><td class="err">3</td><td>0</td>`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(told.String(), "s3cr3t") {
		t.Errorf("the operator's lines show the webhook's secret:\n%s", told.String())
	}
}
