package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// TestReportCSVBehindAgreesWithReport: a device reporting a version that
// is not a Debian version is behind in the report (fleet's rule: invalid
// versions sort below every valid one), so the CSV's "behind" column must
// say true for it too, not false.
func TestReportCSVBehindAgreesWithReport(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dev := func(id, v string) fleet.Device {
		return fleet.Device{ID: id, Online: true, State: state.State{Device: id, Packages: map[string]string{"hi": v}}}
	}
	r := fleet.BuildReport([]fleet.Device{dev("a", "0.2"), dev("b", "0.1"), dev("c", "custom build")},
		fleet.ReportOptions{Newest: map[string]string{"hi": "0.2"}}, now)
	if got := r.Packages[0].Behind; len(got) != 2 {
		t.Fatalf("report: behind %v, want b and c", got)
	}
	var buf bytes.Buffer
	if err := reportCSV(&buf, r); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"hi,0.2,1,0.3333,0.2,false\n", "hi,0.1,1,0.3333,0.2,true\n", "hi,custom build,1,0.3333,0.2,true\n"} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("CSV lacks %q:\n%s", line, buf.String())
		}
	}
}
