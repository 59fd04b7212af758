package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/deb"
)

// Devices returns every known device sorted by id; with stale > 0 only
// those not seen for at least stale by the store's clock
// (StoreOptions.Now).
func (s *Store) Devices(ctx context.Context, stale time.Duration) ([]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Device
	err := s.eachDevice(func(d *Device) {
		out = append(out, *d)
	})
	if out == nil {
		out = []Device{}
	}
	return FilterStale(out, stale, s.opts.Now()), err
}

// eachDevice calls fn for every device record, in id order, in one read
// transaction.
func (s *Store) eachDevice(fn func(*Device)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			r := record(v)
			if !r.valid() {
				return fmt.Errorf("device %s: %w: short record", k, ErrDatabase)
			}
			d, err := r.device(string(k))
			if err != nil {
				return err
			}
			d.Duplicate = duplicateOf(tx, k)
			fn(&d)
			return nil
		})
	})
}

// Device returns one device; ErrNotFound if it never reported.
func (s *Store) Device(ctx context.Context, id string) (Device, error) {
	var d Device
	if err := ctx.Err(); err != nil {
		return d, err
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		r := record(tx.Bucket(bucketDevices).Get([]byte(id)))
		if !r.valid() {
			return fmt.Errorf("device %q: %w: it never reported to this collector (list devices with 'lampi-pkg fleet devices')", id, ErrNotFound)
		}
		var err error
		d, err = r.device(id)
		d.Duplicate = duplicateOf(tx, []byte(id))
		return err
	})
	return d, err
}

// History returns a device's audit log, oldest first; ErrNotFound if the
// device never reported.
func (s *Store) History(ctx context.Context, id string) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []Event{}
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketDevices).Get([]byte(id)) == nil {
			return fmt.Errorf("device %q: %w: it never reported to this collector", id, ErrNotFound)
		}
		prefix := historyPrefix(id)
		c := tx.Bucket(bucketHistory).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("device %s history: %w: %w", id, ErrDatabase, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// DefaultStaleView is ReportOptions.StaleView's default, 14 days. A
// repository re-signed at least once a week (ValidFor 7d renewed by a
// daily cron, the usual setup against freeze attacks) never gives a device
// that checks a Release older than 7 days; a view twice that old means the
// device missed at least one renewal: it cannot reach the repository, or a
// mirror, a cache or an attacker keeps serving it an old Release. (A
// repository without ValidFor that publishes less often than that makes
// every device look stale: give a longer --stale-view.)
const DefaultStaleView = 14 * 24 * time.Hour

// ReportOptions selects and qualifies a Report.
type ReportOptions struct {
	// Package limits the report to one package; the offline and failed
	// lists then hold only devices that have it. Empty: all packages.
	Package string
	// Stale, when positive, keeps in OfflineDevices only the devices
	// offline and not seen for at least that long (the counts are not
	// filtered).
	Stale time.Duration
	// Newest maps package names to the newest published version; devices
	// on an older one are listed as behind.
	Newest map[string]string
	// StaleView lists in StaleViewDevices the devices whose view of the
	// repository — the Date of the newest Release they accepted,
	// state.State.ReleaseDate — is at least that old (default
	// DefaultStaleView; negative: no list). Devices that report no
	// release date (agents before it) are not judged.
	StaleView time.Duration
	// Now is the report time, for ages (default: the store's clock,
	// StoreOptions.Now).
	Now func() time.Time
}

// Report summarises the fleet: per package the version distribution,
// devices behind the newest version, offline and failed devices. It reads
// the aggregates the store keeps as reports arrive and decodes only the
// devices it lists; a format 1 file opened read-only is walked once
// instead.
func (s *Store) Report(ctx context.Context, opts ReportOptions) (*Report, error) {
	if !s.agg {
		return s.reportScan(ctx, opts)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rb := newReportBuilder(opts, s.reportTime(opts))
	if err := s.db.View(func(tx *bolt.Tx) error { return reportFromAggregates(tx, rb) }); err != nil {
		return nil, err
	}
	return rb.finish(), nil
}

func (s *Store) reportTime(opts ReportOptions) time.Time {
	if opts.Now != nil {
		return opts.Now()
	}
	return s.opts.Now()
}

// reportScan is Report by walking every device once, keeping only counts
// and the listed devices in memory.
func (s *Store) reportScan(ctx context.Context, opts ReportOptions) (*Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rb := newReportBuilder(opts, s.reportTime(opts))
	err := s.eachDevice(rb.add)
	if err != nil {
		return nil, err
	}
	return rb.finish(), nil
}

// BuildReport computes a Report from devices (as Devices returns them,
// sorted by id) at time now.
func BuildReport(devs []Device, opts ReportOptions, now time.Time) *Report {
	rb := newReportBuilder(opts, now)
	for i := range devs {
		rb.add(&devs[i])
	}
	return rb.finish()
}

type reportBuilder struct {
	opts   ReportOptions
	now    time.Time
	rep    *Report
	counts map[string]map[string]int // package → version → devices
	behind map[string][]string       // package → ids
	older  map[[2]string]bool        // (package, version) → older than newest
}

func newReportBuilder(opts ReportOptions, now time.Time) *reportBuilder {
	if opts.StaleView == 0 {
		opts.StaleView = DefaultStaleView
	}
	rep := &Report{Generated: now.UTC(), Packages: []PackageReport{},
		OfflineDevices: []DeviceSummary{}, FailedDevices: []DeviceSummary{}, StaleViewDevices: []DeviceSummary{},
		DuplicateDevices: []DeviceSummary{}}
	if opts.StaleView > 0 {
		rep.StaleView = opts.StaleView
	}
	return &reportBuilder{opts: opts, now: now, rep: rep,
		counts: map[string]map[string]int{}, behind: map[string][]string{}, older: map[[2]string]bool{}}
}

// add counts and lists one device; devices must come sorted by id.
func (b *reportBuilder) add(d *Device) {
	if !b.includes(d) {
		return
	}
	b.count(d)
	b.list(d)
}

// includes reports whether d belongs in the report (ReportOptions.Package).
func (b *reportBuilder) includes(d *Device) bool {
	if b.opts.Package == "" {
		return true
	}
	_, ok := d.State.Packages[b.opts.Package]
	return ok
}

// count adds d to the device counts and the version distribution.
func (b *reportBuilder) count(d *Device) {
	opts, rep := b.opts, b.rep
	rep.Devices++
	if d.Online {
		rep.Online++
	} else {
		rep.Offline++
	}
	for name, v := range d.State.Packages {
		if opts.Package != "" && name != opts.Package {
			continue
		}
		if b.counts[name] == nil {
			b.counts[name] = map[string]int{}
		}
		b.counts[name][v]++
		newest := opts.Newest[name]
		if newest == "" {
			continue
		}
		if b.olderThanNewest(name, v) {
			b.behind[name] = append(b.behind[name], d.ID)
		}
	}
}

// olderThanNewest reports whether version v of package name is older than
// the newest published one (ReportOptions.Newest, which must be set).
func (b *reportBuilder) olderThanNewest(name, v string) bool {
	key := [2]string{name, v}
	older, ok := b.older[key]
	if !ok {
		older = deb.CompareLoose(v, b.opts.Newest[name]) < 0
		b.older[key] = older
	}
	return older
}

// offlineListed reports whether an offline device last seen at lastSeen
// goes in OfflineDevices (ReportOptions.Stale).
func (b *reportBuilder) offlineListed(lastSeen time.Time) bool {
	return b.opts.Stale <= 0 || b.age(lastSeen) >= b.opts.Stale
}

func (b *reportBuilder) age(lastSeen time.Time) time.Duration {
	if lastSeen.IsZero() {
		return 0
	}
	return b.now.Sub(lastSeen)
}

// list adds d to the offline, failed and stale-view lists it belongs in.
func (b *reportBuilder) list(d *Device) {
	rep := b.rep
	age := b.age(d.LastSeen)
	sum := func() DeviceSummary {
		return DeviceSummary{ID: d.ID, LastSeen: d.LastSeen, Age: age, Result: d.State.Result,
			Error: d.State.Error, Packages: d.State.Packages, LastCheck: d.State.LastCheck, ReleaseDate: d.State.ReleaseDate}
	}
	if !d.Online && b.offlineListed(d.LastSeen) {
		rep.OfflineDevices = append(rep.OfflineDevices, sum())
	}
	if failedResult(d.State.Result) {
		rep.FailedDevices = append(rep.FailedDevices, sum())
	}
	if d.Duplicate.Active(b.now) {
		s := sum()
		s.Duplicate = d.Duplicate
		rep.DuplicateDevices = append(rep.DuplicateDevices, s)
	}
	if rd := d.State.ReleaseDate; rep.StaleView > 0 && !rd.IsZero() && b.now.Sub(rd) >= rep.StaleView {
		s := sum()
		s.ViewAge = b.now.Sub(rd)
		rep.StaleViewDevices = append(rep.StaleViewDevices, s)
	}
}

// failedResult reports whether a device's last result puts it in
// Report.FailedDevices.
func failedResult(result string) bool {
	switch result {
	case state.ResultFailed, state.ResultRolledBack, state.ResultHeldBack:
		return true
	}
	return false
}

func (b *reportBuilder) finish() *Report {
	for _, name := range slices.Sorted(maps.Keys(b.counts)) {
		pr := PackageReport{Name: name, Newest: b.opts.Newest[name], Versions: []VersionShare{}, Behind: b.behind[name]}
		if pr.Behind == nil {
			pr.Behind = []string{}
		}
		versions := slices.Collect(maps.Keys(b.counts[name]))
		sort.Slice(versions, func(i, j int) bool {
			if c := deb.CompareLoose(versions[i], versions[j]); c != 0 {
				return c > 0
			}
			return versions[i] > versions[j] // equal for dpkg, as "1.0" and "0:1.0": a fixed order
		})
		for _, v := range versions {
			pr.Installed += b.counts[name][v]
		}
		for _, v := range versions {
			n := b.counts[name][v]
			pr.Versions = append(pr.Versions, VersionShare{Version: v, Count: n, Share: float64(n) / float64(pr.Installed)})
		}
		if pr.Newest != "" {
			pr.UpToDate = pr.Installed - len(pr.Behind)
		}
		b.rep.Packages = append(b.rep.Packages, pr)
	}
	return b.rep
}
