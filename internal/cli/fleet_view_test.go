package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// TestFleetReportStaleView: fleet report lists the devices whose newest
// accepted Release is at least --stale-view old (14 days by default; 0:
// no list), in text and JSON; fleet device and fleet devices --csv show
// the release date.
func TestFleetReportStaleView(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	db := filepath.Join(t.TempDir(), "fleet.db")
	s, err := fleet.Open(db, fleet.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []fleet.Message
	for id, age := range map[string]time.Duration{"fresh": 24 * time.Hour, "frozen": 20 * 24 * time.Hour} {
		b, err := state.Encode(state.State{Seq: uint64(now.UnixMicro()), Time: now, Device: id, Packages: map[string]string{"hi": "0.2"},
			LastCheck: now.Add(-time.Hour), ReleaseDate: now.Add(-age)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, fleet.Message{Topic: state.StateTopic("devices", id), Payload: b, Received: now})
	}
	if _, err := s.Apply("devices", msgs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		env := &Env{Out: &out, Err: &errb, In: strings.NewReader(""), Getenv: func(string) string { return "" },
			Now: func() time.Time { return now }, IsTerminal: func(any) bool { return false }}
		if code := Main(args, env); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errb.String())
		}
		return out.String()
	}

	out := run("fleet", "report", "--db", db)
	_, stale, _ := strings.Cut(out, "stale view of the repository (1, newest accepted Release at least 14d old):\n")
	if !strings.HasPrefix(stale, "  frozen  Release of 2026-11-02T12:00:00Z  last check 1h ago") || strings.Contains(stale, "fresh") {
		t.Errorf("report:\n%s", out)
	}
	var rep fleet.Report
	if err := json.Unmarshal([]byte(run("fleet", "report", "--db", db, "--stale-view", "12h", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.StaleView != 12*time.Hour || len(rep.StaleViewDevices) != 2 {
		t.Errorf("--stale-view 12h --json: %+v", rep)
	}
	if out := run("fleet", "report", "--db", db, "--stale-view", "0"); strings.Contains(out, "stale view") {
		t.Errorf("--stale-view 0 still lists:\n%s", out)
	}
	if out := run("fleet", "device", "frozen", "--db", db); !strings.Contains(out, "release date:  2026-11-02T12:00:00Z") {
		t.Errorf("device:\n%s", out)
	}
	if out := run("fleet", "devices", "--db", db, "--csv"); !strings.Contains(out, ",hi=0.2,2026-11-02T12:00:00Z\n") {
		t.Errorf("devices --csv:\n%s", out)
	}
}
