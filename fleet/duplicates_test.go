package fleet

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// TestDuplicateDevices: two real lampi-agents made from one SD image share
// the device id "lamp-clone" (and its broker client id) but not their
// kernel boot ids; they report in turns through a real Mosquitto to the
// collector. The store flags the id as shared by two machines, and the
// report, the device list and the dashboard show it. A device that
// rebooted — a new boot id — whose reports of the old boot arrive late
// (a reordering queue) is not flagged.
func TestDuplicateDevices(t *testing.T) {
	t.Run("mosquitto", func(t *testing.T) {
		broker := startMosquitto(t, "allow_anonymous true")
		clock := at.NewClock(time.Now().UTC().Truncate(time.Second))
		s := openTestStore(t, StoreOptions{Now: clock.Now})
		runCollector(t, s, CollectorOptions{Broker: broker})
		testDuplicates(t, s, clock, func(string) string { return "broker = " + broker + "\n" })
	})
	// The embedded broker: the clones log in with the one credential of
	// their id. (Each report here has a connection of its own: with both
	// clones connected at once, they take the one client id's session
	// over from each other and, on either broker, a report may wait
	// minutes for its acknowledgement.)
	t.Run("embedded", func(t *testing.T) {
		clock := at.NewClock(time.Now().UTC().Truncate(time.Second))
		s := openTestStore(t, StoreOptions{Now: clock.Now})
		creds, err := s.IssueCredentials(t.Context(), RoleDevice, "lamp-clone", "lamp-reboot")
		if err != nil {
			t.Fatal(err)
		}
		coll, err := s.IssueCredentials(t.Context(), RoleCollector, "collector")
		if err != nil {
			t.Fatal(err)
		}
		b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", Auth: s})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		runCollector(t, s, CollectorOptions{Broker: b.URL(), Username: "collector", Password: []byte(coll[0].Secret)})
		dir := t.TempDir()
		testDuplicates(t, s, clock, func(id string) string {
			pass := filepath.Join(dir, id+".secret")
			for _, c := range creds {
				if c.ID == id {
					os.WriteFile(pass, []byte(c.Secret+"\n"), 0o600)
				}
			}
			return "broker = " + b.URL() + "\nbroker_username = " + id + "\nbroker_password_file = " + pass + "\n"
		})
	})
}

// testDuplicates runs TestDuplicateDevices on a store fed by a collector
// of the broker that brokerConf (agent.conf lines for a device id) names.
func testDuplicates(t *testing.T, s *Store, clock *at.Clock, brokerConf func(id string) string) {
	r := at.NewRepo(t, clock, at.RepoOptions{})
	bootFile := func(id string) string {
		p := filepath.Join(t.TempDir(), "boot_id")
		if err := os.WriteFile(p, []byte(id+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// agentOf starts the library agent of a device (reading its
	// agent.conf, so its boot id file, anew).
	agentOf := func(d *at.Device) *agent.Agent {
		cfg, err := agent.LoadConfig(d.Conf)
		if err != nil {
			t.Fatal(err)
		}
		a, err := agent.New(cfg, agent.Options{Now: clock.Now, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	newClone := func(boot string) *agent.Agent {
		return agentOf(at.NewDevice(t, r, "lamp-clone", brokerConf("lamp-clone")+"reconnect_backoff = 1s\nboot_id_file = "+bootFile(boot)+"\n"))
	}
	// report sends one state of a through its own MQTT connection and
	// waits until the broker has it; it returns the state.
	report := func(a *agent.Agent) state.State {
		t.Helper()
		clock.Advance(time.Second)
		ropts, ok, err := a.ReporterOptions()
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		rep, err := agent.NewMQTTReporter(context.Background(), ropts)
		if err != nil {
			t.Fatal(err)
		}
		st, err := a.NewState("")
		if err != nil {
			t.Fatal(err)
		}
		rep.Report(st)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := rep.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		rep.Close(ctx)
		return st
	}
	received := func(n uint64) {
		t.Helper()
		waitFor(t, "reports collected", func() bool { return s.Stats().Received >= n })
	}

	one, two := newClone("11111111-aaaa-4aaa-8aaa-111111111111"), newClone("22222222-bbbb-4bbb-8bbb-222222222222")
	report(one)
	report(two)
	received(2)
	if d, err := s.Device(t.Context(), "lamp-clone"); err != nil || d.Duplicate != nil {
		t.Fatalf("flagged after one report of each (a reboot looks the same): %+v %v", d.Duplicate, err)
	}
	report(one) // the first machine's seq stream goes on past the second's
	received(3)
	d, err := s.Device(t.Context(), "lamp-clone")
	if err != nil {
		t.Fatal(err)
	}
	if d.Duplicate == nil || len(d.Duplicate.Boots) != 2 || !d.Duplicate.Active(clock.Now()) {
		t.Fatalf("two machines under one id not detected: %+v", d.Duplicate)
	}
	t.Logf("evidence: %+v", d.Duplicate)

	// A rebooted device: boot A reports, boot B reports, then a queued
	// report of boot A arrives late (lower seq): not a duplicate.
	rb := at.NewDevice(t, r, "lamp-reboot", brokerConf("lamp-reboot")+"boot_id_file = "+bootFile("aaaaaaaa-0000-4000-8000-000000000001")+"\n")
	a1 := agentOf(rb)
	report(a1)
	clock.Advance(time.Second)
	late, err := a1.NewState("") // queued, never sent before the reboot
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimSpace(bootPath(t, rb.Conf)), []byte("bbbbbbbb-0000-4000-8000-000000000002\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	report(agentOf(rb))
	received(5)
	if _, err := s.Apply(state.DefaultPrefix, []Message{{Topic: state.StateTopic(state.DefaultPrefix, "lamp-reboot"), Payload: mustEncode(t, late)}}); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Device(t.Context(), "lamp-reboot"); err != nil || d.Duplicate != nil || d.State.BootID != "bbbbbbbb-0000-4000-8000-000000000002" {
		t.Fatalf("a rebooted device: duplicate %+v, boot %q, %v", d.Duplicate, d.State.BootID, err)
	}

	rep, err := s.Report(t.Context(), ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.DuplicateDevices) != 1 || rep.DuplicateDevices[0].ID != "lamp-clone" || rep.DuplicateDevices[0].Duplicate == nil {
		t.Errorf("report's duplicates: %+v", rep.DuplicateDevices)
	}
	// The dashboard lists it, and the device page says it.
	page := dashboardGet(t, s, clock.Now, "/")
	if !strings.Contains(page, `id="duplicates"`) || !strings.Contains(page, "lamp-clone") || !strings.Contains(page, "11111111-aaaa-4aaa-8aaa-111111111111") {
		t.Errorf("dashboard overview lacks the duplicate:\n%s", page)
	}
	if page := dashboardGet(t, s, clock.Now, "/devices/lamp-clone"); !strings.Contains(page, `id="duplicate"`) || !strings.Contains(page, "2 machines report under this id") {
		t.Errorf("device page lacks the duplicate:\n%s", page)
	}
	// Once the clones have their own ids, the old id drops off the lists.
	clock.Advance(DuplicateWindow)
	if rep, err := s.Report(t.Context(), ReportOptions{}); err != nil || len(rep.DuplicateDevices) != 0 {
		t.Errorf("after %s without evidence: %+v %v", DuplicateWindow, rep.DuplicateDevices, err)
	}
}

// bootPath reads boot_id_file from an agent.conf.
func bootPath(t *testing.T, conf string) string {
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "boot_id_file = "); ok {
			return v
		}
	}
	t.Fatal("no boot_id_file in " + conf)
	return ""
}

// dashboardGet serves the dashboard over the store on 127.0.0.1 and
// returns the page at path.
func dashboardGet(t *testing.T, s *Store, now func() time.Time, path string) string {
	t.Helper()
	h, err := DashboardHandler(StoreDashboardSource(s, nil, ReportOptions{Now: now}), DashboardOptions{Now: now, CacheFor: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, b)
	}
	return string(b)
}
