package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/fleet"
)

var (
	_ fleet.DB     = (*Store)(nil)
	_ fleet.Reader = (*Store)(nil)
)

// deviceColumns are what scanDevice reads.
const deviceColumns = `id, online, status_time, last_seen, state::text`

func scanDevice(row pgx.Row) (fleet.Device, error) {
	var (
		d          fleet.Device
		status, ls *time.Time
		js         *string
	)
	if err := row.Scan(&d.ID, &d.Online, &status, &ls, &js); err != nil {
		return d, err
	}
	if status != nil {
		d.StatusTime = status.UTC()
	}
	if ls != nil {
		d.LastSeen = ls.UTC()
	}
	if js != nil {
		if err := json.Unmarshal([]byte(*js), &d.State); err != nil {
			return d, fmt.Errorf("device %s: %w: stored state: %w", d.ID, fleet.ErrDatabase, err)
		}
	}
	if d.State.Packages == nil {
		d.State.Packages = map[string]string{}
	}
	return d, nil
}

// queryDevices runs a query of deviceColumns and calls fn for each row.
func (s *Store) queryDevices(ctx context.Context, fn func(*fleet.Device), sql string, args ...any) error {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return err
		}
		fn(&d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	return nil
}

// Devices returns every known device sorted by id; with stale > 0 only
// those not seen for at least stale by the store's clock.
func (s *Store) Devices(ctx context.Context, stale time.Duration) ([]fleet.Device, error) {
	out := []fleet.Device{}
	err := s.queryDevices(ctx, func(d *fleet.Device) { out = append(out, *d) },
		`SELECT `+deviceColumns+` FROM devices ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return fleet.FilterStale(out, stale, s.opts.Now()), nil
}

// Device returns one device; an error wrapping fleet.ErrNotFound if it
// never reported.
func (s *Store) Device(ctx context.Context, id string) (fleet.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("device %q: %w: it never reported to this fleet database (list devices with 'lampi-pkg fleet devices')", id, fleet.ErrNotFound)
	}
	return d, err
}

// History returns a device's newest Options.HistoryLimit events, oldest
// first; an error wrapping fleet.ErrNotFound if the device never
// reported.
func (s *Store) History(ctx context.Context, id string) ([]fleet.Event, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM devices WHERE id = $1`, id).Scan(&n); err != nil {
		return nil, fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("device %q: %w: it never reported to this fleet database", id, fleet.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `SELECT event::text FROM (SELECT id, event FROM history WHERE device = $1 ORDER BY id DESC LIMIT $2) h ORDER BY id`,
		id, s.opts.HistoryLimit)
	if err != nil {
		return nil, fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	events, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("fleet database %s: history of %s: %w", s.name, id, err)
	}
	out := []fleet.Event{}
	for _, js := range events {
		var e fleet.Event
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			return nil, fmt.Errorf("device %s history: %w: %w", id, fleet.ErrDatabase, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Report summarises the fleet from the aggregates the writers keep (the
// counts and the version distribution), the installed versions indexed
// by (package, version) (the devices behind) and indexed lists of the
// offline, failed and stale-view devices: it reads no device that it
// does not list.
func (s *Store) Report(ctx context.Context, opts fleet.ReportOptions) (*fleet.Report, error) {
	now := s.opts.Now
	if opts.Now != nil {
		now = opts.Now
	}
	at := now()
	staleView := opts.StaleView
	if staleView == 0 {
		staleView = fleet.DefaultStaleView
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	defer tx.Rollback(context.Background())

	listed, err := s.listedDevices(ctx, tx, opts.Package, at, staleView)
	if err != nil {
		return nil, err
	}
	lo := opts
	lo.Newest = nil
	rep := fleet.BuildReport(listed, lo, at)

	devices, online, err := s.countDevices(ctx, tx, opts.Package)
	if err != nil {
		return nil, err
	}
	rep.Devices, rep.Online, rep.Offline = int(devices), int(online), int(devices-online)

	counts, err := s.versionCounts(ctx, tx, opts.Package)
	if err != nil {
		return nil, err
	}
	if rep.Packages, err = s.packageReports(ctx, tx, counts, opts.Newest); err != nil {
		return nil, err
	}
	return rep, nil
}

// listedDevices reads, in id order, the devices a report may list
// (offline, failed, rolled back, held back, or with a release date at
// least staleView before at), of package pkg when it is not empty:
// fleet.BuildReport makes the lists from them exactly as the bbolt store
// does.
func (s *Store) listedDevices(ctx context.Context, tx pgx.Tx, pkg string, at time.Time, staleView time.Duration) ([]fleet.Device, error) {
	var listed []fleet.Device
	seen := map[string]bool{}
	add := func(d *fleet.Device) {
		if !seen[d.ID] {
			seen[d.ID] = true
			listed = append(listed, *d)
		}
	}
	where := `(NOT online OR result IN ('failed', 'rolled-back', 'held-back')`
	args := []any{}
	if staleView > 0 {
		args = append(args, at.Add(-staleView))
		where += ` OR release_date <= $1`
	}
	where += `)`
	if pkg != "" {
		args = append(args, pkg)
		where += fmt.Sprintf(` AND EXISTS (SELECT 1 FROM installed i WHERE i.device = devices.id AND i.package = $%d)`, len(args))
	}
	rows, err := tx.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		add(&d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	return listed, nil
}

// countDevices returns how many devices there are and how many are
// online: all of them from the writers' counters, or those with package
// pkg installed when it is not empty.
func (s *Store) countDevices(ctx context.Context, tx pgx.Tx, pkg string) (devices, online int64, err error) {
	if pkg == "" {
		err = tx.QueryRow(ctx, `SELECT coalesce(sum(devices), 0)::bigint, coalesce(sum(online), 0)::bigint FROM device_counts`).Scan(&devices, &online)
	} else {
		err = tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE d.online) FROM installed i JOIN devices d ON d.id = i.device
			WHERE i.package = $1`, pkg).Scan(&devices, &online)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("fleet database %s: count devices: %w", s.name, err)
	}
	return devices, online, nil
}

// versionCounts returns, per package (only pkg when it is not empty) and
// version, how many devices run it, summed over the writers' counters.
func (s *Store) versionCounts(ctx context.Context, tx pgx.Tx, pkg string) (map[string]map[string]int, error) {
	vq := `SELECT package, version, sum(devices)::bigint FROM version_counts GROUP BY package, version HAVING sum(devices) > 0`
	var vargs []any
	if pkg != "" {
		vq = `SELECT package, version, sum(devices)::bigint FROM version_counts WHERE package = $1 GROUP BY package, version HAVING sum(devices) > 0`
		vargs = append(vargs, pkg)
	}
	vrows, err := tx.Query(ctx, vq, vargs...)
	if err != nil {
		return nil, fmt.Errorf("fleet database %s: versions: %w", s.name, err)
	}
	counts := map[string]map[string]int{}
	for vrows.Next() {
		var p, v string
		var n int64
		if err := vrows.Scan(&p, &v, &n); err != nil {
			vrows.Close()
			return nil, err
		}
		if counts[p] == nil {
			counts[p] = map[string]int{}
		}
		counts[p][v] = int(n)
	}
	if err := vrows.Err(); err != nil {
		return nil, fmt.Errorf("fleet database %s: versions: %w", s.name, err)
	}
	return counts, nil
}

// packageReports returns the report of each package of counts, by name,
// judged against its newest version in newest.
func (s *Store) packageReports(ctx context.Context, tx pgx.Tx, counts map[string]map[string]int, newest map[string]string) ([]fleet.PackageReport, error) {
	prs := []fleet.PackageReport{}
	names := make([]string, 0, len(counts))
	for p := range counts {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, name := range names {
		pr, err := s.packageReport(ctx, tx, name, counts[name], newest[name])
		if err != nil {
			return nil, err
		}
		prs = append(prs, pr)
	}
	return prs, nil
}

// packageReport is one package's distribution, newest version first
// (dpkg order), and the devices on a version older than newest.
func (s *Store) packageReport(ctx context.Context, tx pgx.Tx, name string, counts map[string]int, newest string) (fleet.PackageReport, error) {
	pr := fleet.PackageReport{Name: name, Newest: newest, Versions: []fleet.VersionShare{}, Behind: []string{}}
	versions := make([]string, 0, len(counts))
	for v, n := range counts {
		versions = append(versions, v)
		pr.Installed += n
	}
	sort.Slice(versions, func(i, j int) bool {
		if c := deb.CompareLoose(versions[i], versions[j]); c != 0 {
			return c > 0
		}
		return versions[i] > versions[j]
	})
	var older []string
	for _, v := range versions {
		n := counts[v]
		pr.Versions = append(pr.Versions, fleet.VersionShare{Version: v, Count: n, Share: float64(n) / float64(pr.Installed)})
		if newest != "" && deb.CompareLoose(v, newest) < 0 {
			older = append(older, v)
		}
	}
	if newest == "" {
		return pr, nil
	}
	if len(older) > 0 {
		// One array value rather than a row per device: a quarter of a
		// million ids come back in one piece.
		var ids []string
		err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(device ORDER BY device), '{}') FROM installed
			WHERE package = $1 AND version = ANY($2)`, name, older).Scan(&ids)
		if err != nil {
			return pr, fmt.Errorf("fleet database %s: devices behind on %s: %w", s.name, name, err)
		}
		pr.Behind = ids
	}
	pr.UpToDate = pr.Installed - len(pr.Behind)
	return pr, nil
}

// VersionStats counts q's version over the devices that have the package
// installed, or report a candidate or an attempt of it.
func (s *Store) VersionStats(ctx context.Context, q fleet.VersionQuery) (fleet.VersionStats, error) {
	var vs fleet.VersionStats
	var chunk []fleet.Device
	flush := func() {
		c := fleet.CountVersion(chunk, q)
		vs.Devices += c.Devices
		vs.Updated += c.Updated
		vs.Eligible += c.Eligible
		vs.Attempted += c.Attempted
		vs.Failed += c.Failed
		vs.HealthFailed += c.HealthFailed
		vs.Stuck += c.Stuck
		chunk = chunk[:0]
	}
	err := s.queryDevices(ctx, func(d *fleet.Device) {
		chunk = append(chunk, *d)
		if len(chunk) == 4096 {
			flush()
		}
	}, `SELECT `+deviceColumns+` FROM devices
		WHERE state IS NOT NULL AND (id IN (SELECT device FROM installed WHERE package = $1)
			OR state->'candidates'->$1 IS NOT NULL OR state->'attempts'->$1 IS NOT NULL)`, q.Package)
	flush()
	return vs, err
}

// ResetSeq forgets the stored seq of each device, in one transaction,
// so that its next report is stored whatever its seq; its report and
// audit log are kept (the log is ordered by arrival, so later events
// sort after it). An id that never reported fails with fleet.ErrNotFound
// and nothing is reset.
func (s *Store) ResetSeq(ctx context.Context, ids ...string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, id := range ids {
			tag, err := tx.Exec(ctx, `UPDATE devices SET seq = 0 WHERE id = $1`, id)
			if err != nil {
				return fmt.Errorf("fleet database %s: reset %s: %w", s.name, id, err)
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("device %q: %w: it never reported to this fleet database (list devices with 'lampi-pkg fleet devices')", id, fleet.ErrNotFound)
			}
		}
		return nil
	})
}
