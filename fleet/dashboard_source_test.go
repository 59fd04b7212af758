package fleet

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// dashStore is a real Store holding three lamps: two on hi 0.2 (one of
// them failed to update, with a hostile error), one on 0.1 and offline.
func dashStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "fleet.db"), StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var msgs []Message
	add := func(st state.State) {
		b, err := state.Encode(st)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, Message{Topic: state.StateTopic("devices", st.Device), Payload: b, Received: dashNow.Add(-time.Minute)})
	}
	add(state.State{Seq: 5, Time: dashNow.Add(-time.Hour), Device: "lamp-a", Packages: map[string]string{"hi": "0.2"}, Result: state.ResultUpToDate})
	add(state.State{Seq: 9, Time: dashNow.Add(-time.Hour), Device: "lamp-b", Packages: map[string]string{"hi": "0.2"},
		Result: state.ResultFailed, Error: evilError, Target: map[string]string{"hi": "0.3"}})
	add(state.State{Seq: 2, Time: dashNow.Add(-3 * time.Hour), Device: "lamp-c", Packages: map[string]string{"hi": "0.1"}, Result: state.ResultUpToDate})
	for _, id := range []string{"lamp-a", "lamp-b"} {
		msgs = append(msgs, Message{Topic: state.StatusTopic("devices", id), Payload: []byte(state.Online), Received: dashNow.Add(-time.Minute)})
	}
	msgs = append(msgs, Message{Topic: state.StatusTopic("devices", "lamp-c"), Payload: []byte(state.Offline), Received: dashNow.Add(-2 * time.Hour)})
	if _, err := s.Apply("devices", msgs); err != nil {
		t.Fatal(err)
	}
	return s
}

func checkDashboardSource(t *testing.T, src DashboardSource) {
	t.Helper()
	h := newTestDashboard(t, src, DashboardOptions{})
	code, _, body := get(t, h, "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", code, body)
	}
	mustContain(t, body, `<b>3</b><span>devices</span>`, `Rollout of <strong>0.3</strong>: <strong>0</strong> of 3 devices up to date (0%), 3 behind`,
		`2 · 67%`, `1 · 33%`, `Last update failed or held back (1)`, `<a href="devices/lamp-b">lamp-b</a>`, `&lt;script&gt;`, `Offline (1)`,
		`<a href="devices/lamp-c">lamp-c</a>`)
	if strings.Contains(body, "<script") {
		t.Error("unescaped script")
	}
	_, _, body = get(t, h, "/?q=lamp-")
	mustContain(t, body, `devices/lamp-a"`, `devices/lamp-b"`, `devices/lamp-c"`)
	code, _, body = get(t, h, "/devices/lamp-b")
	if code != http.StatusOK {
		t.Fatalf("device page %d\n%s", code, body)
	}
	mustContain(t, body, `seq 9`, `<dt>Target</dt><dd>hi 0.3</dd>`)
	if code, _, _ := get(t, h, "/devices/lamp-z"); code != http.StatusNotFound {
		t.Errorf("unknown device: %d", code)
	}
}

func TestStoreDashboardSource(t *testing.T) {
	s := dashStore(t)
	newest := func() map[string]string { return map[string]string{"hi": "0.3"} }
	checkDashboardSource(t, StoreDashboardSource(s, newest, ReportOptions{Now: func() time.Time { return dashNow }}))
}

func TestAPIDashboardSource(t *testing.T) {
	s := dashStore(t)
	newest := func() map[string]string { return map[string]string{"hi": "0.3"} }
	srv := httptest.NewServer(APIHandler(s, newest, APIOptions{Now: func() time.Time { return dashNow }}))
	defer srv.Close()
	checkDashboardSource(t, APIDashboardSource(&APIClient{Base: srv.URL}))
}
