package fleet

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// sampleRollouts is a running canary rollout and a halted one whose
// reason carries markup (escaped, never run).
func sampleRollouts(context.Context) ([]RolloutPanel, error) {
	return []RolloutPanel{
		{Key: "bookworm/hi/0.3", State: "running", Stage: "group canary", Percent: 0, Groups: []string{"canary"},
			Eligible: 4, Updated: 3, Attempted: 3, Evaluated: dashNow.Add(-time.Minute),
			Log: []RolloutLogEntry{{Time: dashNow.Add(-time.Hour), Action: "hold", From: 0, To: 0, Reason: "started at group canary with plan @canary:1h/3,50%,100%"}}},
		{Key: "bookworm/lamp/2.0", State: "halted", Stage: "halted", Percent: 0, Reason: `<script>alert("x")</script> 3 devices failed`,
			Eligible: 10, Updated: 2, Attempted: 5, Failed: 3, HealthFailed: 1, Stuck: 2, Evaluated: dashNow,
			Log: []RolloutLogEntry{
				{Time: dashNow.Add(-2 * time.Hour), Action: "hold", From: 0, To: 10, Reason: "started at 10%"},
				{Time: dashNow, Action: "halt", From: 10, To: 0, Reason: "3 devices failed the version before 5 attempted it (min-failures=3)"}}},
	}, nil
}

// TestRolloutPanel: the overview shows each rollout's stage, percentage,
// groups, counts and newest decisions first; a failing source leaves the
// rest of the page; without DashboardOptions.Rollouts there is no panel.
func TestRolloutPanel(t *testing.T) {
	h := newTestDashboard(t, sampleFleet(), DashboardOptions{Rollouts: sampleRollouts})
	code, _, body := get(t, h, "/")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{`id="rollouts"`, "bookworm/hi/0.3</code> <span class=\"badge ok\">running",
		"Stage <strong>group canary</strong>: published at <strong>0%</strong>, and to the groups <strong>canary</strong>",
		`<span class="badge bad">halted`, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; 3 devices failed",
		`<td>10</td><td>2</td><td>5</td><td class="err">3</td><td class="err">1</td><td>2</td>`,
		"<td>halt</td><td>10% → 0%</td>"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if i, j := strings.Index(body, "<td>halt</td>"), strings.Index(body, "started at 10%"); i < 0 || j < i {
		t.Error("decisions are not newest first")
	}
	failing := func(context.Context) ([]RolloutPanel, error) { return nil, errors.New("rollouts.db: locked") }
	_, _, body = get(t, newTestDashboard(t, sampleFleet(), DashboardOptions{Rollouts: failing}), "/")
	if !strings.Contains(body, "The rollouts are not available: rollouts.db: locked") || !strings.Contains(body, "Last update failed or held back") {
		t.Error("a failing rollout source: no message, or the page is gone")
	}
	if _, _, body = get(t, newTestDashboard(t, sampleFleet(), DashboardOptions{}), "/"); strings.Contains(body, `id="rollouts"`) {
		t.Error("a panel without DashboardOptions.Rollouts")
	}
}

// TestRolloutPanelInChromium renders the panel in a real browser: the DOM
// has the numbers, the hostile reason stays text, and a screenshot is
// kept.
func TestRolloutPanelInChromium(t *testing.T) {
	testutil.Heavy(t, "loads the dashboard in a real Chromium")
	t.Parallel() // Chromium mostly waits on its own processes
	srv := httptest.NewServer(newTestDashboard(t, sampleFleet(), DashboardOptions{Title: "LAMPi fleet", Rollouts: sampleRollouts}))
	defer srv.Close()
	dom := string(chromium(t, srv.URL+"/", "--dump-dom"))
	for _, want := range []string{"Rollouts", "bookworm/lamp/2.0", "group canary", "min-failures=3", "10% → 0%",
		`&lt;script&gt;alert("x")&lt;/script&gt; 3 devices failed`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("the DOM has a script element")
	}
	shot := filepath.Join(artifactDir(t), "dashboard-rollouts.png")
	chromium(t, srv.URL+"/", "--screenshot="+shot, "--window-size=1280,900")
	checkScreenshot(t, shot, true)
}
