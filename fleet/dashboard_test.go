package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

var dashNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// fakeDashSource serves a fixed report and device list, and records what
// the dashboard asked for.
type fakeDashSource struct {
	reports  int // calls of Report
	report   *Report
	devices  []Device
	events   map[string][]Event
	err      error
	searched []string
	limits   []int
}

func (f *fakeDashSource) Report(context.Context) (*Report, error) {
	f.reports++
	if f.err != nil {
		return nil, f.err
	}
	return f.report, nil
}

func (f *fakeDashSource) FindDevices(_ context.Context, prefix string, limit int) ([]Device, error) {
	f.searched = append(f.searched, prefix)
	f.limits = append(f.limits, limit)
	if f.err != nil {
		return nil, f.err
	}
	var out []Device
	for _, d := range f.devices {
		if strings.HasPrefix(d.ID, prefix) && len(out) < limit {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeDashSource) Device(_ context.Context, id string) (*Device, error) {
	if f.err != nil {
		return nil, f.err
	}
	for i := range f.devices {
		if f.devices[i].ID == id {
			return &f.devices[i], nil
		}
	}
	return nil, nil
}

func (f *fakeDashSource) History(_ context.Context, id string, limit int) ([]Event, error) {
	ev := f.events[id]
	if len(ev) > limit {
		ev = ev[len(ev)-limit:]
	}
	return ev, nil
}

const evilError = `<script>alert("pwned")</script> health check failed`

// sampleFleet is a fleet of 40 lamps mid-rollout: hi 0.3 reaches 28 of
// them, lampi-service 1.2.0 35; four are offline and three failed.
func sampleFleet() *fakeDashSource {
	f := &fakeDashSource{events: map[string][]Event{}}
	rep := &Report{Generated: dashNow, Devices: 40, Online: 36, Offline: 4}
	rep.Packages = []PackageReport{
		{Name: "hi", Newest: "0.3", Installed: 40, UpToDate: 28,
			Versions: []VersionShare{{"0.3", 28, 0.7}, {"0.2", 9, 0.225}, {"0.1", 3, 0.075}}},
		{Name: "lampi-service", Newest: "1.2.0", Installed: 40, UpToDate: 35,
			Versions: []VersionShare{{"1.2.0", 35, 0.875}, {"1.1.0~rc1", 5, 0.125}}},
	}
	for i := 0; i < 12; i++ {
		rep.Packages[0].Behind = append(rep.Packages[0].Behind, fmt.Sprintf("lamp-%02d", 28+i))
	}
	for i := 0; i < 5; i++ {
		rep.Packages[1].Behind = append(rep.Packages[1].Behind, fmt.Sprintf("lamp-%02d", 35+i))
	}
	for i := 0; i < 4; i++ {
		rep.OfflineDevices = append(rep.OfflineDevices, DeviceSummary{ID: fmt.Sprintf("lamp-%02d", 36+i),
			LastSeen: dashNow.Add(-time.Duration(i+1) * 7 * time.Hour), Packages: map[string]string{"hi": "0.2"}})
	}
	rep.FailedDevices = []DeviceSummary{
		{ID: "lamp-29", LastSeen: dashNow.Add(-5 * time.Minute), Result: state.ResultRolledBack, Error: evilError, Packages: map[string]string{"hi": "0.2"}},
		{ID: "lamp-30", LastSeen: dashNow.Add(-2 * time.Hour), Result: state.ResultFailed, Error: "download http://127.0.0.1/pool/main/h/hi/hi_0.3_all.deb: connection refused"},
		{ID: "lamp-31", LastSeen: dashNow.Add(-26 * time.Hour), Result: state.ResultFailed, Error: "dpkg: error processing package hi (--configure): installed hi package post-installation script subprocess returned error exit status 1"},
	}
	f.report = rep
	for i := 0; i < 40; i++ {
		hi := "0.3"
		if i >= 28 {
			hi = "0.2"
		}
		d := Device{ID: fmt.Sprintf("lamp-%02d", i), Online: i < 36, LastSeen: dashNow.Add(-time.Duration(i) * time.Minute),
			State: state.State{Seq: uint64(100 + i), Time: dashNow.Add(-time.Hour), Device: fmt.Sprintf("lamp-%02d", i),
				Agent: "0.3.0", Arch: "armhf", Packages: map[string]string{"hi": hi, "lampi-service": "1.2.0"}, Result: state.ResultUpToDate}}
		if i == 29 {
			d.State.Result, d.State.Error = state.ResultRolledBack, evilError
		}
		f.devices = append(f.devices, d)
	}
	f.events["lamp-29"] = []Event{
		{Time: dashNow.Add(-48 * time.Hour), Seq: 3, Package: "hi", From: "0.1", To: "0.2", Result: state.ResultUpdated},
		{Time: dashNow.Add(-5 * time.Minute), Seq: 128, Result: state.ResultRolledBack, Error: evilError, Target: map[string]string{"hi": "0.3"}},
	}
	return f
}

func newTestDashboard(t *testing.T, src DashboardSource, opts DashboardOptions) http.Handler {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return dashNow }
	}
	h, err := DashboardHandler(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, h http.Handler, target string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Result().Header, string(body)
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func TestDashboardOverview(t *testing.T) {
	h := newTestDashboard(t, sampleFleet(), DashboardOptions{Title: "Lamps", Refresh: 15 * time.Second})
	code, hdr, body := get(t, h, "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	csp := hdr.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'sha256-") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	// The inline stylesheet is the one the policy allows, byte for byte.
	i, j := strings.Index(body, "<style>"), strings.Index(body, "</style>")
	if i < 0 || j < i {
		t.Fatal("no inline stylesheet")
	}
	sum := sha256.Sum256([]byte(body[i+len("<style>") : j]))
	if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
		t.Errorf("CSP %q does not allow the page's stylesheet (%s)", csp, want)
	}
	mustContain(t, body,
		`<meta http-equiv="refresh" content="15">`,
		`<title>Lamps</title>`,
		`<b>40</b><span>devices</span>`,
		`<b>36</b><span>online</span>`,
		`Rollout of <strong>0.3</strong>: <strong>28</strong> of 40 devices up to date (70%), 12 behind`,
		`Rollout of <strong>1.2.0</strong>: <strong>35</strong> of 40 devices up to date (88%), 5 behind`,
		`aria-label="Versions of hi across the fleet"`,
		`28 · 70% · newest`, `9 · 22%`, `3 · 8%`, `1.1.0~rc1`,
		`<a href="devices/lamp-36">lamp-36</a>`, `7h 0m`, `1d 4h`,
		`Last update failed or held back (3)`, `rolled-back`, `connection refused`,
		`Generated 2026-11-22 12:00:00 UTC`,
	)
	// The biggest bar spans the whole bar area; the others are to scale.
	for _, want := range []string{
		`width="400.0" height="18" rx="3" fill="#2e8540"`, // hi 0.3, 28 devices
		`width="128.6" height="18" rx="3" fill="#d9822b"`, // hi 0.2, 9 of 28
		`width="434.0" height="18" rx="4" fill="#2e8540"`, // rollout 70% of 620
	} {
		mustContain(t, body, want)
	}
	// Device-supplied text is escaped, never markup.
	if strings.Contains(body, "<script") {
		t.Error("a device's error reached the page as a <script> element")
	}
	mustContain(t, body, `&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; health check failed`)
	if strings.Contains(body, "search") && strings.Contains(body, `id="search"`) {
		t.Error("search results without a query")
	}
}

func TestDashboardEscapesHostileReport(t *testing.T) {
	evil := `"><img src=x onerror=alert(1)>`
	src := &fakeDashSource{report: &Report{Devices: 1, Online: 1,
		Packages: []PackageReport{{Name: "p" + evil, Newest: "1" + evil, Installed: 1, UpToDate: 1,
			Versions: []VersionShare{{"1" + evil, 1, 1}}, Behind: []string{"x" + evil}}},
		FailedDevices: []DeviceSummary{{ID: "id" + evil, Result: "failed", Error: "\xff\xfe" + evil}}}}
	_, _, body := get(t, newTestDashboard(t, src, DashboardOptions{}), "/")
	for _, bad := range []string{"<img", "onerror=alert(1)>", "\xff"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	mustContain(t, body, `&lt;img src=x onerror=alert(1)&gt;`, "\uFFFD")
	// A hostile id in a link stays inside the path.
	if regexp.MustCompile(`href="devices/x"`).MatchString(body) {
		t.Error("an id broke out of its link")
	}
}

func TestDashboardEmptyFleet(t *testing.T) {
	src := &fakeDashSource{report: &Report{Generated: dashNow}}
	code, _, body := get(t, newTestDashboard(t, src, DashboardOptions{Refresh: -1}), "/")
	if code != http.StatusOK {
		t.Fatal(code)
	}
	mustContain(t, body, `No device has reported yet.`, `lampi-pkg loadtest --devices 20`, `<b>0</b><span>devices</span>`)
	if strings.Contains(body, `Every device is online.`) {
		t.Error("an empty fleet claims every device is online")
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("Refresh < 0 still reloads")
	}
}

func TestDashboardManyVersions(t *testing.T) {
	p := PackageReport{Name: "hi", Newest: "1.0", Installed: 0}
	// 14 versions, newest first; the newest has the fewest devices.
	for i := 14; i >= 1; i-- {
		n := 15 - i
		if i == 14 {
			n = 1
		}
		p.Versions = append(p.Versions, VersionShare{Version: fmt.Sprintf("0.%d", i), Count: n})
		p.Installed += n
	}
	p.Versions[0].Version = "1.0"
	src := &fakeDashSource{report: &Report{Devices: p.Installed, Online: p.Installed, Packages: []PackageReport{p}}}
	_, _, body := get(t, newTestDashboard(t, src, DashboardOptions{}), "/")
	if n := strings.Count(body, `<rect x="150"`); n != dashMaxBars {
		t.Errorf("%d bars, want %d", n, dashMaxBars)
	}
	mustContain(t, body, `1 · &lt;1% · newest`, `5 other versions`)
	v := buildPackageView(&p, 50)
	if last := v.Bars[len(v.Bars)-1]; last.OtherGroups != 5 || last.Count != 2+3+4+5+6 {
		t.Errorf("other bar %+v", last)
	}
	if v.Bars[0].Version != "1.0" || v.Bars[1].Version != "0.8" {
		t.Errorf("order %q %q", v.Bars[0].Version, v.Bars[1].Version)
	}
}

func TestDashboardLimits(t *testing.T) {
	healthy := sampleFleet()
	healthy.report.FailedDevices, healthy.report.OfflineDevices = nil, nil
	_, _, body := get(t, newTestDashboard(t, healthy, DashboardOptions{}), "/")
	mustContain(t, body, `No device reports a failed or held-back update.`, `Every device is online.`)

	f := sampleFleet()
	_, _, body = get(t, newTestDashboard(t, f, DashboardOptions{MaxRows: 2}), "/")
	mustContain(t, body, `2 more devices not shown.`, `1 more devices not shown.`, ` and 10 more`)
	if strings.Contains(body, `devices/lamp-38`) {
		t.Error("more offline devices than MaxRows listed")
	}
}

func TestDashboardSearch(t *testing.T) {
	f := sampleFleet()
	h := newTestDashboard(t, f, DashboardOptions{MaxRows: 5})
	code, _, body := get(t, h, "/?q=lamp-2")
	if code != http.StatusOK {
		t.Fatal(code)
	}
	if len(f.searched) != 1 || f.searched[0] != "lamp-2" || f.limits[0] != 6 {
		t.Fatalf("searched %q limits %v", f.searched, f.limits)
	}
	mustContain(t, body, `Devices whose id starts with “lamp-2”`, `value="lamp-2"`, `<a href="devices/lamp-20">lamp-20</a>`,
		`hi 0.3, lampi-service 1.2.0`, `More devices match`)
	if strings.Contains(body, `devices/lamp-25">`) && strings.Count(body, `<tr><td class="mono"><a href="devices/lamp-2`) > 5+2 {
		t.Error("more results than MaxRows")
	}

	_, _, body = get(t, h, "/?q=nomatch")
	mustContain(t, body, `No device id starts with “nomatch”.`)

	// Something that cannot be an id is explained, and not looked up.
	_, _, body = get(t, h, "/?q="+"%3Cscript%3Ex")
	mustContain(t, body, `Device ids are at most 64 letters`, `value="&lt;script&gt;x"`)
	if len(f.searched) != 2 {
		t.Errorf("an invalid query reached the source: %q", f.searched)
	}
}

func TestDashboardDevice(t *testing.T) {
	h := newTestDashboard(t, sampleFleet(), DashboardOptions{})
	code, _, body := get(t, h, "/devices/lamp-29")
	if code != http.StatusOK {
		t.Fatalf("%d\n%s", code, body)
	}
	mustContain(t, body, `Device <code>lamp-29</code>`, `<span class="badge on">online</span>`, `seq 129`,
		`<td>hi</td><td class="mono">0.2</td>`, `hi 0.1 → 0.2`, `<td>update to hi 0.3</td><td>rolled-back</td>`, `href="../"`, `action="../"`,
		`&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;`)
	if strings.Contains(body, "<script") {
		t.Error("unescaped script")
	}
	if i, j := strings.Index(body, "rolled-back</td>"), strings.Index(body, "hi 0.1 → 0.2"); i < 0 || j < i {
		t.Error("history is not newest first")
	}
	for _, path := range []string{"/devices/nope", "/devices/a%20b", "/devices/-a", "/nothing", "/devices/"} {
		if code, _, body := get(t, h, path); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404\n%.300s", path, code, body)
		}
	}
}

func TestDashboardSourceError(t *testing.T) {
	f := sampleFleet()
	f.err = errors.New("bolt: <database> is locked")
	h := newTestDashboard(t, f, DashboardOptions{Logf: func(string, ...any) {}})
	code, _, body := get(t, h, "/")
	if code != http.StatusServiceUnavailable {
		t.Errorf("code %d", code)
	}
	mustContain(t, body, `The fleet report is not available: bolt: &lt;database&gt; is locked`)
	if code, _, _ := get(t, h, "/devices/lamp-01"); code != http.StatusServiceUnavailable {
		t.Errorf("device page with a failing source: %d", code)
	}
}

func TestDashboardMethodsAndMount(t *testing.T) {
	h := newTestDashboard(t, sampleFleet(), DashboardOptions{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x")))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	mux := http.NewServeMux()
	mux.Handle("/fleet/", http.StripPrefix("/fleet", h))
	code, _, body := get(t, mux, "/fleet/devices/lamp-01")
	if code != http.StatusOK {
		t.Fatal(code)
	}
	mustContain(t, body, `href="../"`)
	if _, err := DashboardHandler(sampleFleet(), DashboardOptions{}); err == nil {
		t.Error("no Now accepted")
	}
}

func TestDashAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 42 * time.Second: "42s", 5*time.Minute + 10*time.Second: "5m",
		3*time.Hour + 12*time.Minute: "3h 12m", 52 * time.Hour: "2d 4h",
	} {
		if got := dashAge(d); got != want {
			t.Errorf("dashAge(%v) = %q, want %q", d, got, want)
		}
	}
	for f, want := range map[float64]string{0: "0%", 0.004: "<1%", 0.5: "50%", 0.996: ">99%", 1: "100%"} {
		if got := dashPercent(f); got != want {
			t.Errorf("dashPercent(%v) = %q, want %q", f, got, want)
		}
	}
	if got := dashShort("0123456789", 5); got != "0123…" {
		t.Error(got)
	}
}

func TestDashboardCachesReport(t *testing.T) {
	f := sampleFleet()
	now := dashNow
	h := newTestDashboard(t, f, DashboardOptions{Now: func() time.Time { return now }, CacheFor: 5 * time.Second})
	get(t, h, "/")
	now = now.Add(4 * time.Second)
	_, _, body := get(t, h, "/?q=lamp-1")
	if f.reports != 1 {
		t.Errorf("%d reports within the cache time, want 1", f.reports)
	}
	mustContain(t, body, `<b>40</b><span>devices</span>`, `devices/lamp-10"`)
	now = now.Add(2 * time.Second)
	get(t, h, "/")
	if f.reports != 2 {
		t.Errorf("%d reports after the cache time, want 2", f.reports)
	}
	// Errors are not cached.
	f.err = errors.New("store closed")
	now = now.Add(10 * time.Second)
	if code, _, _ := get(t, h, "/"); code != http.StatusServiceUnavailable {
		t.Errorf("code %d", code)
	}
	f.err = nil
	if code, _, _ := get(t, h, "/"); code != http.StatusOK || f.reports != 4 {
		t.Errorf("code %d after the error, %d reports", code, f.reports)
	}
	uncached := sampleFleet()
	h = newTestDashboard(t, uncached, DashboardOptions{CacheFor: -1})
	get(t, h, "/")
	get(t, h, "/")
	if uncached.reports != 2 {
		t.Errorf("CacheFor < 0: %d reports for 2 pages", uncached.reports)
	}
}
