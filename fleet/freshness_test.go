package fleet

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// freshnessStore holds four lamps reporting at t0: "fresh" accepted a
// Release a day old, "frozen" one 20 days old (a mirror serving an old
// InRelease, a freeze attack), "legacy" reports no release date (an
// agent before it), "held" holds back hi 0.3, which rolled back before.
func freshnessStore(t *testing.T) *Store {
	t.Helper()
	s := openTestStore(t, StoreOptions{})
	rep := func(id string, release time.Time, result string) Message {
		st := state.State{Seq: usAt(t0), Time: t0, Device: id, Packages: map[string]string{"hi": "0.2"},
			LastCheck: t0.Add(-time.Hour), ReleaseDate: release, Result: result}
		if result == state.ResultHeldBack {
			st.Target = map[string]string{"hi": "0.3"}
		}
		return stateMsg(t, id, st, t0)
	}
	out, err := s.Apply(state.DefaultPrefix, []Message{
		rep("fresh", t0.Add(-24*time.Hour), state.ResultUpToDate),
		rep("frozen", t0.Add(-20*24*time.Hour), state.ResultUpToDate),
		rep("legacy", time.Time{}, state.ResultUpToDate),
		rep("held", t0.Add(-2*24*time.Hour), state.ResultHeldBack),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o != OutcomeStored {
			t.Fatalf("report %d: outcome %d", i, o)
		}
	}
	return s
}

func summaryIDs(ds []DeviceSummary) []string {
	ids := []string{}
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

// TestReportStaleView: the fleet report lists the devices whose view of
// the repository (the newest Release they accepted) is at least StaleView
// old, 14 days by default; a held-back device waits for the operator with
// the failed ones, and its result is in its history.
func TestReportStaleView(t *testing.T) {
	s := freshnessStore(t)
	now := func() time.Time { return t0 }
	rep, err := s.Report(t.Context(), ReportOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if rep.StaleView != DefaultStaleView || !slices.Equal(summaryIDs(rep.StaleViewDevices), []string{"frozen"}) {
		t.Fatalf("stale view %v: %v, want frozen after %v", rep.StaleView, summaryIDs(rep.StaleViewDevices), DefaultStaleView)
	}
	if d := rep.StaleViewDevices[0]; d.ViewAge != 20*24*time.Hour || !d.ReleaseDate.Equal(t0.Add(-20*24*time.Hour)) || !d.LastCheck.Equal(t0.Add(-time.Hour)) {
		t.Errorf("frozen: %+v", d)
	}
	if ids := summaryIDs(rep.FailedDevices); !slices.Equal(ids, []string{"held"}) || rep.FailedDevices[0].Result != state.ResultHeldBack {
		t.Errorf("failed %v, want held (held-back)", ids)
	}
	if h, _ := s.History(t.Context(), "held"); len(h) != 2 || h[1].Result != state.ResultHeldBack || h[1].Target["hi"] != "0.3" {
		t.Errorf("history of held: %+v", h)
	}
	if rep, _ := s.Report(t.Context(), ReportOptions{Now: now, StaleView: 36 * time.Hour}); !slices.Equal(summaryIDs(rep.StaleViewDevices), []string{"frozen", "held"}) {
		t.Errorf("stale view 36h: %v", summaryIDs(rep.StaleViewDevices))
	}
	if rep, _ := s.Report(t.Context(), ReportOptions{Now: now, StaleView: -1}); len(rep.StaleViewDevices) != 0 || rep.StaleView != 0 {
		t.Errorf("no stale view asked: %v after %v", summaryIDs(rep.StaleViewDevices), rep.StaleView)
	}
	if d, _ := s.Device(t.Context(), "frozen"); !d.State.ReleaseDate.Equal(t0.Add(-20 * 24 * time.Hour)) {
		t.Errorf("stored release date %v", d.State.ReleaseDate)
	}
}

// TestAPIStaleView: GET /api/v1/fleet/report takes stale_view (0: no
// list), defaulting to the server's APIOptions.StaleView.
func TestAPIStaleView(t *testing.T) {
	s := freshnessStore(t)
	srv := httptest.NewServer(APIHandler(s, nil, APIOptions{Now: func() time.Time { return t0 }, StaleView: 36 * time.Hour}))
	t.Cleanup(srv.Close)
	c := &APIClient{Base: srv.URL, HTTP: srv.Client()}
	ctx := context.Background()
	for _, tc := range []struct {
		q    ReportOptions
		want []string
	}{
		{ReportOptions{}, []string{"frozen", "held"}},
		{ReportOptions{StaleView: DefaultStaleView}, []string{"frozen"}},
		{ReportOptions{StaleView: -1}, []string{}},
		{ReportOptions{StaleView: 12 * time.Hour, Package: "hi"}, []string{"fresh", "frozen", "held"}},
	} {
		rep, err := c.Report(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := summaryIDs(rep.StaleViewDevices); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.q, got, tc.want)
		}
	}
	resp, err := srv.Client().Get(srv.URL + "/api/v1/fleet/report?stale_view=fortnight")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("stale_view=fortnight: %d", resp.StatusCode)
	}
}

// TestDashboardStaleView: the dashboard counts and lists the devices with
// a stale view, and a device's page shows its release date.
func TestDashboardStaleView(t *testing.T) {
	s := freshnessStore(t)
	now := func() time.Time { return t0 }
	h := newTestDashboard(t, StoreDashboardSource(s, nil, ReportOptions{Now: now}), DashboardOptions{Now: now})
	code, _, body := get(t, h, "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", code, body)
	}
	mustContain(t, body, `<b>1</b><span>repository view 14 days old</span>`, `Repository view 14 days old or older (1)`,
		`<td class="mono"><a href="devices/frozen">frozen</a></td><td>2026-11-02 12:00 UTC</td><td>20d 0h</td>`,
		`Last update failed or held back (1)`, `<td>held-back</td>`)
	if strings.Contains(body, `<a href="devices/fresh">fresh</a></td><td>2026-11-21`) || strings.Contains(body, `devices/legacy">legacy</a></td><td></td>`) {
		t.Error("a device with a fresh view, or none reported, is listed as stale")
	}
	_, _, body = get(t, h, "/devices/frozen")
	mustContain(t, body, `<dt>Release date</dt><dd>2026-11-02 12:00:00 UTC (20d 0h old)</dd>`)
}
