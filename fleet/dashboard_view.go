package fleet

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// The view models of the dashboard templates: every number the page shows
// and every coordinate of its SVG charts is computed here, so the
// templates only place and escape.

type dashPage struct {
	Title     string
	Base      string // relative link to the overview
	Generated string
	Refresh   int // seconds, 0 = never
	Overview  bool
	Message   string // an error or not-found page when set
	Search    *dashSearch
	Fleet     *dashFleet
	Device    *dashDevice
}

type dashSearch struct {
	Query   string
	Problem string
	Devices []dashDeviceRow
	More    bool
}

type dashDeviceRow struct {
	ID       string
	Online   bool
	Packages string
	LastSeen string
	Seq      uint64
	Result   string
	Error    string
}

type dashFleet struct {
	Devices, Online, Offline, Failed int
	Packages                         []dashPackage
	PackagesMore                     int
	OfflineList                      []dashSummary
	OfflineMore                      int
	FailedList                       []dashSummary
	FailedMore                       int
	// Devices whose view of the repository is StaleAfter old or older
	// ("" when the report did not check).
	StaleAfter    string
	StaleView     int
	StaleViewList []dashSummary
	StaleViewMore int
	// Device ids under which more than one machine reports (clones).
	Duplicates    int
	DuplicateList []dashSummary
	DuplicateMore int
	// The rollout panel (DashboardOptions.Rollouts).
	RolloutsOn      bool
	RolloutsProblem string
	Rollouts        []dashRollout
	RolloutsMore    int
}

// Chart geometry, in SVG user units (the charts scale to the page width).
const (
	dashChartW    = 720
	dashLabelX    = 140 // version labels end here
	dashBarX      = 150
	dashBarMaxW   = 400 // leaves room for "count · share · newest"
	dashRowH      = 26
	dashBarH      = 18
	dashMaxBars   = 10 // versions charted; the rest become "other"
	dashVersionCh = 24 // characters of a version label
	dashProgressW = 620
)

// Bar colours: the newest version green, older ones from a palette that
// stays apart from it, the rest grey.
const (
	dashNewestColor = "#2e8540"
	dashOtherColor  = "#a7b6c2"
)

var dashPalette = [...]string{"#d9822b", "#2b95d6", "#c23030", "#7157d9", "#a67908", "#8f398f", "#0f9960", "#5c7080", "#db3737"}

type dashPackage struct {
	Name        string
	Newest      string
	Installed   int
	UpToDate    int
	BehindCount int
	Percent     string // of Installed on Newest
	ProgressW   string // width of the progress fill
	ChartH      int
	Bars        []dashBar
	Behind      []string
	BehindMore  int
}

type dashBar struct {
	LabelX, X   int
	Y, TextY    int
	W           string
	TextX       string
	Color       string
	Version     string // as reported, for the tooltip
	Label       string // shortened for the axis
	Count       int
	Share       string
	Newest      bool
	OtherGroups int // > 0 for the "other versions" bar
}

type dashSummary struct {
	ID       string
	LastSeen string
	Age      string
	Result   string
	Error    string
	Packages string
	// For the stale view list: the Release date the device last accepted,
	// its age, and when the device last checked.
	ReleaseDate string
	ViewAge     string
	LastCheck   string
	// For the duplicate list: the boot ids whose reports interleave and
	// when that was last seen.
	Boots   string
	DupLast string
}

type dashDevice struct {
	dashDeviceRow
	Agent       string
	Arch        string
	Time        string
	StateTime   string
	LastCheck   string
	ReleaseDate string // with its age
	Target      string
	Groups      string
	BootID      string
	Duplicate   string // the evidence of clones, when recent
	Installed   []dashKV
	Events      []dashEvent
}

type dashKV struct{ Key, Value string }

type dashEvent struct {
	Time   string
	Seq    uint64
	What   string
	Result string
	Error  string
}

func buildFleetView(rep *Report, now time.Time, maxRows int) *dashFleet {
	f := &dashFleet{Devices: rep.Devices, Online: rep.Online, Offline: rep.Offline, Failed: len(rep.FailedDevices)}
	pkgs := rep.Packages
	if len(pkgs) > maxRows {
		f.PackagesMore = len(pkgs) - maxRows
		pkgs = pkgs[:maxRows]
	}
	for i := range pkgs {
		f.Packages = append(f.Packages, buildPackageView(&pkgs[i], maxRows))
	}
	f.OfflineList, f.OfflineMore = buildSummaries(rep.OfflineDevices, now, maxRows)
	f.FailedList, f.FailedMore = buildSummaries(rep.FailedDevices, now, maxRows)
	if rep.StaleView > 0 {
		f.StaleAfter = dashAge(rep.StaleView)
		if rep.StaleView%(24*time.Hour) == 0 {
			f.StaleAfter = fmt.Sprintf("%d days", rep.StaleView/(24*time.Hour))
		}
		f.StaleView = len(rep.StaleViewDevices)
		f.StaleViewList, f.StaleViewMore = buildSummaries(rep.StaleViewDevices, now, maxRows)
	}
	f.Duplicates = len(rep.DuplicateDevices)
	f.DuplicateList, f.DuplicateMore = buildSummaries(rep.DuplicateDevices, now, maxRows)
	return f
}

func buildPackageView(p *PackageReport, maxRows int) dashPackage {
	v := dashPackage{Name: p.Name, Newest: p.Newest, Installed: p.Installed, UpToDate: p.UpToDate, BehindCount: len(p.Behind)}
	frac := 0.0
	if p.Installed > 0 {
		frac = float64(p.UpToDate) / float64(p.Installed)
	}
	v.Percent = dashPercent(frac)
	v.ProgressW = fmt.Sprintf("%.1f", frac*dashProgressW)
	v.Behind = p.Behind
	if len(v.Behind) > maxRows {
		v.BehindMore = len(v.Behind) - maxRows
		v.Behind = v.Behind[:maxRows]
	}
	v.Bars = versionBars(p)
	v.ChartH = max(len(v.Bars), 1) * dashRowH
	return v
}

// chartedVersions splits p's versions into those charted as bars of their
// own — the dashMaxBars-1 most common, in their (newest first) order,
// always with the newest — and the rest, folded into one bar.
func chartedVersions(p *PackageReport) (shown, other []VersionShare) {
	if len(p.Versions) <= dashMaxBars {
		return p.Versions, nil
	}
	idx := make([]int, len(p.Versions))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		va, vb := p.Versions[idx[a]], p.Versions[idx[b]]
		if (va.Version == p.Newest) != (vb.Version == p.Newest) {
			return va.Version == p.Newest
		}
		return va.Count > vb.Count
	})
	keep := make([]bool, len(p.Versions))
	for _, i := range idx[:dashMaxBars-1] {
		keep[i] = true
	}
	for i, vs := range p.Versions {
		if keep[i] {
			shown = append(shown, vs)
		} else {
			other = append(other, vs)
		}
	}
	return shown, other
}

// versionBars lays out the bar chart of p's versions: one row per charted
// version, widths relative to the largest bar.
func versionBars(p *PackageReport) []dashBar {
	shown, other := chartedVersions(p)
	maxCount, otherCount := 1, 0
	for _, vs := range p.Versions {
		maxCount = max(maxCount, vs.Count)
	}
	for _, vs := range other {
		otherCount += vs.Count
	}
	maxCount = max(maxCount, otherCount)
	var bars []dashBar
	color := 0
	for _, vs := range shown {
		b := dashBar{Version: vs.Version, Label: dashShort(vs.Version, dashVersionCh), Count: vs.Count}
		if p.Newest != "" && vs.Version == p.Newest {
			b.Newest, b.Color = true, dashNewestColor
		} else {
			b.Color = dashPalette[color%len(dashPalette)]
			color++
		}
		bars = append(bars, placeBar(b, len(bars), maxCount, p.Installed))
	}
	if len(other) > 0 {
		b := dashBar{Label: fmt.Sprintf("%d other versions", len(other)), Count: otherCount, Color: dashOtherColor, OtherGroups: len(other)}
		bars = append(bars, placeBar(b, len(bars), maxCount, p.Installed))
	}
	return bars
}

// placeBar sets the geometry of bar b in chart row row.
func placeBar(b dashBar, row, maxCount, installed int) dashBar {
	b.LabelX, b.X = dashLabelX, dashBarX
	b.Y = row*dashRowH + (dashRowH-dashBarH)/2
	b.TextY = row*dashRowH + dashRowH/2 + 5
	w := float64(b.Count) / float64(maxCount) * dashBarMaxW
	if b.Count > 0 {
		w = max(w, 2) // one device stays visible
	}
	b.W = fmt.Sprintf("%.1f", w)
	b.TextX = fmt.Sprintf("%.1f", dashBarX+w+6)
	if installed > 0 {
		b.Share = dashPercent(float64(b.Count) / float64(installed))
	}
	return b
}

func buildSummaries(in []DeviceSummary, now time.Time, maxRows int) ([]dashSummary, int) {
	more := 0
	if len(in) > maxRows {
		more = len(in) - maxRows
		in = in[:maxRows]
	}
	out := make([]dashSummary, 0, len(in))
	for _, d := range in {
		s := dashSummary{ID: d.ID, Result: d.Result, Error: dashShort(d.Error, 200), Packages: dashPackages(d.Packages, 4)}
		age := d.Age
		if !d.LastSeen.IsZero() {
			s.LastSeen = d.LastSeen.UTC().Format("2006-01-02 15:04 UTC")
			age = now.Sub(d.LastSeen)
		}
		if !d.LastSeen.IsZero() || d.Age > 0 {
			s.Age = dashAge(age)
		}
		if !d.ReleaseDate.IsZero() {
			s.ReleaseDate = d.ReleaseDate.UTC().Format("2006-01-02 15:04 UTC")
			s.ViewAge = dashAge(now.Sub(d.ReleaseDate))
		}
		s.LastCheck = dashTime(d.LastCheck)
		if d.Duplicate != nil {
			s.Boots = strings.Join(d.Duplicate.Boots, ", ")
			s.DupLast = dashTime(d.Duplicate.Last)
		}
		out = append(out, s)
	}
	return out, more
}

func buildDeviceRow(d *Device, now time.Time) dashDeviceRow {
	r := dashDeviceRow{ID: d.ID, Online: d.Online, Packages: dashPackages(d.State.Packages, 4), Seq: d.State.Seq,
		Result: d.State.Result, Error: dashShort(d.State.Error, 200)}
	if !d.LastSeen.IsZero() {
		r.LastSeen = dashAge(now.Sub(d.LastSeen)) + " ago"
	}
	return r
}

func buildDeviceView(d *Device, events []Event, now time.Time) *dashDevice {
	v := &dashDevice{dashDeviceRow: buildDeviceRow(d, now), Agent: d.State.Agent, Arch: d.State.Arch,
		Target: dashPackages(d.State.Target, 0)}
	v.Error = d.State.Error // the whole message here
	v.Time = dashTime(d.LastSeen)
	v.StateTime = dashTime(d.State.Time)
	v.LastCheck = dashTime(d.State.LastCheck)
	if rd := d.State.ReleaseDate; !rd.IsZero() {
		v.ReleaseDate = dashTime(rd) + " (" + dashAge(now.Sub(rd)) + " old)"
	}
	v.Groups, v.BootID = strings.Join(d.State.Groups, ", "), d.State.BootID
	if d.Duplicate.Active(now) {
		v.Duplicate = fmt.Sprintf("%d machines report under this id (boot ids %s), last seen %s: cloned SD cards?",
			len(d.Duplicate.Boots), strings.Join(d.Duplicate.Boots, ", "), dashTime(d.Duplicate.Last))
	}
	for _, name := range dashSortedKeys(d.State.Packages) {
		v.Installed = append(v.Installed, dashKV{name, d.State.Packages[name]})
	}
	for i := len(events) - 1; i >= 0; i-- { // newest first
		e := events[i]
		ev := dashEvent{Time: dashTime(e.Time), Seq: e.Seq, Result: e.Result, Error: e.Error}
		switch {
		case e.Package != "" && e.From == "":
			ev.What = e.Package + " " + e.To + " installed"
		case e.Package != "" && e.To == "":
			ev.What = e.Package + " " + e.From + " removed"
		case e.Package != "":
			ev.What = e.Package + " " + e.From + " → " + e.To
		case len(e.Target) > 0:
			ev.What = "update to " + dashPackages(e.Target, 0)
		}
		v.Events = append(v.Events, ev)
	}
	return v
}

func dashTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// dashPackages lists "name version" pairs by name, at most limit of them
// (all when limit is 0).
func dashPackages(m map[string]string, limit int) string {
	keys := dashSortedKeys(m)
	var b strings.Builder
	for i, k := range keys {
		if limit > 0 && i == limit {
			fmt.Fprintf(&b, ", +%d more", len(keys)-limit)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(dashShort(k, 40) + " " + dashShort(m[k], dashVersionCh))
	}
	return b.String()
}

func dashSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dashShort cuts s to n characters with an ellipsis; invalid UTF-8 is
// replaced so the page stays well-formed.
func dashShort(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func dashPercent(f float64) string {
	p := f * 100
	switch {
	case p > 0 && p < 1:
		return "<1%"
	case p > 99 && p < 100:
		return ">99%"
	}
	return fmt.Sprintf("%.0f%%", p)
}

// dashAge is a coarse human age: "42s", "5m", "3h 12m", "2d 4h".
func dashAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd %dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}
