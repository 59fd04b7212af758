package fleet

import (
	"slices"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// TestReportVersionsDpkgEqual: a device on "0:1.0" runs the newest
// version "1.0" (dpkg holds them equal), so it is not behind; the two
// spellings stay apart in the distribution, in a fixed order; a version
// that does not parse is behind and listed last.
func TestReportVersionsDpkgEqual(t *testing.T) {
	dev := func(id, v string) Device {
		return Device{ID: id, Online: true, State: state.State{Device: id, Packages: map[string]string{"hi": v}}}
	}
	devs := []Device{dev("a", "1.0"), dev("b", "0:1.0"), dev("c", "0.9"), dev("d", "custom build")}
	for range 20 { // map order varies from run to run
		r := BuildReport(devs, ReportOptions{Newest: map[string]string{"hi": "1.0"}}, time.Unix(0, 0))
		p := r.Packages[0]
		if !slices.Equal(p.Behind, []string{"c", "d"}) || p.UpToDate != 2 {
			t.Fatalf("behind %v, up to date %d; want c, d and 2", p.Behind, p.UpToDate)
		}
		var vs []string
		for _, v := range p.Versions {
			vs = append(vs, v.Version)
		}
		if want := []string{"1.0", "0:1.0", "0.9", "custom build"}; !slices.Equal(vs, want) {
			t.Fatalf("versions %q, want %q", vs, want)
		}
	}
}
