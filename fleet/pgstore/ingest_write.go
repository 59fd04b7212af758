package pgstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// writeLock is the advisory lock under which writers update devices
// ("lampiwri" in ASCII).
const writeLock = 0x6c616d7069777269

// insertDevicesSQL inserts new devices with their first report or
// status, unless another writer created them meanwhile; it returns the
// ids it inserted.
const insertDevicesSQL = `INSERT INTO devices (id, seq, fingerprint, received, agent, arch, result, error, release_date, state, status_time, online)
			SELECT id, seq, fp, received, agent, arch, result, error, release_date, state::json, status_time, online
			FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::boolean[],
				$7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[])
				AS u(id, seq, fp, status_time, received, online, agent, arch, result, error, release_date, state)
			ON CONFLICT (id) DO NOTHING RETURNING id`

// updateDevicesSQL writes changed device rows with a compare-and-swap:
// a report only where the row still has the fingerprint, state presence
// and a seq in [old_seq, first_seq) the batch assumed, a status only
// where the row still has the status read; it returns the ids written.
const updateDevicesSQL = `UPDATE devices d SET
		seq = CASE WHEN u.is_report THEN u.seq ELSE d.seq END,
		fingerprint = CASE WHEN u.is_report THEN u.fp ELSE d.fingerprint END,
		received = CASE WHEN u.is_report THEN u.received ELSE d.received END,
		agent = CASE WHEN u.is_report THEN u.agent ELSE d.agent END,
		arch = CASE WHEN u.is_report THEN u.arch ELSE d.arch END,
		result = CASE WHEN u.is_report THEN u.result ELSE d.result END,
		error = CASE WHEN u.is_report THEN u.error ELSE d.error END,
		release_date = CASE WHEN u.is_report THEN u.release_date ELSE d.release_date END,
		state = CASE WHEN u.is_report THEN u.state::json ELSE d.state END,
		status_time = CASE WHEN u.is_status THEN u.status_time ELSE d.status_time END,
		online = CASE WHEN u.is_status THEN u.online ELSE d.online END
		FROM unnest($1::text[], $2::boolean[], $3::boolean[], $4::bigint[], $5::bigint[], $6::timestamptz[], $7::timestamptz[], $8::boolean[],
			$9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::text[],
			$15::bigint[], $16::bigint[], $17::bigint[], $18::boolean[], $19::boolean[], $20::timestamptz[])
			AS u(id, is_report, is_status, seq, fp, status_time, received, online, agent, arch, result, error, release_date, state,
				old_seq, first_seq, old_fp, old_has_state, old_online, old_status_time)
		WHERE d.id = u.id
			AND (NOT u.is_report OR (d.fingerprint = u.old_fp AND (d.state IS NOT NULL) = u.old_has_state
				AND d.seq >= u.old_seq AND d.seq < u.first_seq))
			AND (NOT u.is_status OR (d.online = u.old_online AND d.status_time IS NOT DISTINCT FROM u.old_status_time))
		RETURNING d.id`

// writeDevices writes the changed rows among ids (sorted) in one
// statement — inserting the new devices, unless another writer created
// them meanwhile — and returns how many devices it created and the ids of
// the rows it did not write because they exist now or no longer hold
// what the batch assumed: for a new report, a stored seq
// at least the one read and below the batch's first report of the device,
// the fingerprint and whether a state is stored; for a new status, the
// status read. It first takes writeLock, held until the transaction ends:
// writers take turns from here to their commit, and the statement's
// snapshot already holds what the previous writer committed (no row waits
// for another writer's commit, nor is re-checked after it). Rows are
// updated in id order (no hash or merge join) against other processes
// that lock them.
func writeDevices(ctx context.Context, tx pgx.Tx, rows map[string]*devRow, ids []string) (added int, lost []string, err error) {
	var ins, upd deviceWrites
	for _, id := range ids {
		switch r := rows[id]; {
		case r.isNew:
			ins.add(id, r)
		case r.stateDirty || r.statusDirty:
			upd.add(id, r)
		}
	}
	if len(ins.ids)+len(upd.ids) == 0 {
		return 0, nil, nil
	}
	batch := &pgx.Batch{}
	batch.Queue(`SELECT pg_advisory_xact_lock($1), set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`, int64(writeLock))
	if len(ins.ids) > 0 {
		// New devices, unless another writer created them meanwhile.
		batch.Queue(insertDevicesSQL,
			ins.ids, ins.seqs, ins.fps, ins.statuses, ins.receiveds, ins.onlines, ins.agents, ins.archs, ins.results, ins.errs, ins.rds, ins.states)
	}
	if len(upd.ids) > 0 {
		batch.Queue(updateDevicesSQL,
			upd.ids, upd.isReport, upd.isStatus, upd.seqs, upd.fps, upd.statuses, upd.receiveds, upd.onlines, upd.agents, upd.archs, upd.results, upd.errs, upd.rds, upd.states,
			upd.oldSeqs, upd.firstSeqs, upd.oldFPs, upd.oldHasState, upd.oldOnlines, upd.oldStatuses)
	}
	br := tx.SendBatch(ctx, batch)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return 0, nil, fmt.Errorf("write devices: %w", err)
	}
	written := map[string]bool{}
	for _, w := range []*deviceWrites{&ins, &upd} {
		if len(w.ids) == 0 {
			continue
		}
		rs, err := br.Query()
		if err != nil {
			return 0, nil, fmt.Errorf("write devices: %w", err)
		}
		got, err := pgx.CollectRows(rs, pgx.RowTo[string])
		if err != nil {
			return 0, nil, fmt.Errorf("write devices: %w", err)
		}
		if w == &ins {
			added = len(got)
		}
		for _, id := range got {
			written[id] = true
		}
	}
	if err := br.Close(); err != nil {
		return 0, nil, fmt.Errorf("write devices: %w", err)
	}
	for _, w := range []*deviceWrites{&ins, &upd} {
		for _, id := range w.ids {
			if !written[id] {
				lost = append(lost, id)
			}
		}
	}
	return added, lost, nil
}

// queueInstalled queues the installed versions of devices whose packages
// changed, and counts the changes of the aggregates.
func (s *Store) queueInstalled(batch *pgx.Batch, rows map[string]*devRow, agg *aggregates) {
	var w installedWrites
	for _, id := range slices.Sorted(maps.Keys(rows)) {
		r := rows[id]
		if r.online != r.initialOn {
			if r.online {
				agg.online++
			} else {
				agg.online--
			}
		}
		// Installed versions: only when the fingerprint (which covers
		// the packages) changed; then the old state was read.
		if !r.stateDirty || r.initial == nil && r.initialHadState && r.fp == r.initialFP {
			continue
		}
		w.diff(id, r, agg)
	}
	w.queue(batch)
}

// deviceWrites are a batch's writes to the devices table, column by
// column, with what each row held when read.
type deviceWrites struct {
	ids                      []string
	isReport, isStatus       []bool // a new state; a new status
	seqs, fps                []int64
	statuses, receiveds, rds []*time.Time
	onlines                  []bool
	agents, archs, results   []string
	errs                     []string
	states                   []*string
	oldSeqs, firstSeqs       []int64
	oldFPs                   []int64
	oldHasState, oldOnlines  []bool
	oldStatuses              []*time.Time
}

// add adds the update of row r: its status if it has a new one, and the
// report it stored last if it stored one.
func (w *deviceWrites) add(id string, r *devRow) {
	w.ids, w.isReport, w.isStatus = append(w.ids, id), append(w.isReport, r.stateDirty), append(w.isStatus, r.statusDirty)
	w.statuses, w.onlines = append(w.statuses, r.status), append(w.onlines, r.online)
	w.oldSeqs, w.firstSeqs, w.oldFPs = append(w.oldSeqs, int64(r.initialSeq)), append(w.firstSeqs, int64(r.firstSeq)), append(w.oldFPs, int64(r.initialFP))
	w.oldHasState, w.oldOnlines, w.oldStatuses = append(w.oldHasState, r.initialHadState), append(w.oldOnlines, r.initialOn), append(w.oldStatuses, r.initialStatus)
	if !r.stateDirty {
		w.seqs, w.fps, w.receiveds = append(w.seqs, 0), append(w.fps, 0), append(w.receiveds, nil)
		w.agents, w.archs, w.results, w.errs, w.rds, w.states = append(w.agents, ""), append(w.archs, ""),
			append(w.results, ""), append(w.errs, ""), append(w.rds, nil), append(w.states, nil)
		return
	}
	st := r.st // the report stored last
	j := string(r.payload)
	w.seqs, w.fps, w.receiveds = append(w.seqs, int64(r.seq)), append(w.fps, int64(r.fp)), append(w.receiveds, r.received)
	var rd *time.Time
	if !st.ReleaseDate.IsZero() {
		t := st.ReleaseDate
		rd = &t
	}
	w.agents, w.archs, w.results, w.errs, w.rds, w.states = append(w.agents, st.Agent), append(w.archs, st.Arch),
		append(w.results, st.Result), append(w.errs, st.Error), append(w.rds, rd), append(w.states, &j)
}

// installedWrites are a batch's writes to the installed table.
type installedWrites struct {
	delDev, delPkg         []string
	insDev, insPkg, insVer []string
}

// diff adds the installed versions that the new state of row r removes,
// adds or changes against the state before the batch, and counts them in
// agg.
func (w *installedWrites) diff(id string, r *devRow, agg *aggregates) {
	st := r.st
	var old map[string]string
	if r.initial != nil {
		var prev state.State
		if json.Unmarshal(r.initial, &prev) == nil {
			old = prev.Packages
		}
	}
	// Only what changed: a report usually moves one package.
	for _, p := range slices.Sorted(maps.Keys(old)) {
		if _, ok := st.Packages[p]; !ok {
			agg.add(p, old[p], -1)
			w.delDev, w.delPkg = append(w.delDev, id), append(w.delPkg, p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(st.Packages)) {
		v := st.Packages[p]
		was, had := old[p]
		if had && was == v {
			continue
		}
		if had {
			agg.add(p, was, -1)
		}
		agg.add(p, v, 1)
		w.insDev, w.insPkg, w.insVer = append(w.insDev, id), append(w.insPkg, p), append(w.insVer, v)
	}
}

// queue queues the statements of w that have rows: deletions, then
// upserts.
func (w *installedWrites) queue(batch *pgx.Batch) {
	if len(w.delDev) > 0 {
		batch.Queue(`DELETE FROM installed i USING unnest($1::text[], $2::text[]) AS u(device, package)
			WHERE i.device = u.device AND i.package = u.package`, w.delDev, w.delPkg)
	}
	if len(w.insDev) > 0 {
		batch.Queue(`INSERT INTO installed (device, package, version) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
			ON CONFLICT (device, package) DO UPDATE SET version = excluded.version`, w.insDev, w.insPkg, w.insVer)
	}
}

// historyEvent is one audit-log event of a device.
type historyEvent struct {
	received time.Time
	event    string // JSON
}

// queueHistory queues the audit-log events of rows, device by device in
// id order, each device's in the order of its reports.
func queueHistory(batch *pgx.Batch, rows map[string]*devRow) {
	var devs, events []string
	var times []time.Time
	for _, id := range slices.Sorted(maps.Keys(rows)) {
		for _, e := range rows[id].events {
			devs, times, events = append(devs, id), append(times, e.received), append(events, e.event)
		}
	}
	if len(devs) == 0 {
		return
	}
	batch.Queue(`INSERT INTO history (device, received, event)
		SELECT d, r, e::json FROM unnest($1::text[], $2::timestamptz[], $3::text[]) WITH ORDINALITY AS u(d, r, e, n) ORDER BY n`,
		devs, times, events)
}

// aggregates are a batch's changes to this writer's counters.
type aggregates struct {
	devices, online int
	versions        map[[2]string]int
}

func (a *aggregates) add(pkg, version string, n int) {
	if a.versions == nil {
		a.versions = map[[2]string]int{}
	}
	a.versions[[2]string{pkg, version}] += n
}

func (a *aggregates) queue(batch *pgx.Batch, writer string, out []fleet.Outcome) {
	var pkgs, vers []string
	var ns []int64
	for _, k := range slices.SortedFunc(maps.Keys(a.versions), func(x, y [2]string) int {
		if x[0] != y[0] {
			return cmp.Compare(x[0], y[0])
		}
		return cmp.Compare(x[1], y[1])
	}) {
		if n := a.versions[k]; n != 0 {
			pkgs, vers, ns = append(pkgs, k[0]), append(vers, k[1]), append(ns, int64(n))
		}
	}
	if len(pkgs) > 0 {
		batch.Queue(`INSERT INTO version_counts (writer, package, version, devices)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[])
			ON CONFLICT (writer, package, version) DO UPDATE SET devices = version_counts.devices + excluded.devices`,
			writer, pkgs, vers, ns)
	}
	if a.devices != 0 || a.online != 0 {
		batch.Queue(`INSERT INTO device_counts (writer, devices, online) VALUES ($1, $2, $3)
			ON CONFLICT (writer) DO UPDATE SET devices = device_counts.devices + excluded.devices, online = device_counts.online + excluded.online`,
			writer, a.devices, a.online)
	}
	var c [7]int64 // received stored stale invalid spoofed rejected status
	for _, o := range out {
		switch o {
		case fleet.OutcomeStatus:
			c[6]++
			continue
		case fleet.OutcomeStored:
			c[1]++
		case fleet.OutcomeStale:
			c[2]++
		case fleet.OutcomeInvalid:
			c[3]++
		case fleet.OutcomeSpoofed:
			c[4]++
		case fleet.OutcomeRejected:
			c[5]++
		}
		c[0]++
	}
	batch.Queue(`INSERT INTO collector_stats (writer, received, stored, stale, invalid, spoofed, rejected, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (writer) DO UPDATE SET received = collector_stats.received + excluded.received,
			stored = collector_stats.stored + excluded.stored, stale = collector_stats.stale + excluded.stale,
			invalid = collector_stats.invalid + excluded.invalid, spoofed = collector_stats.spoofed + excluded.spoofed,
			rejected = collector_stats.rejected + excluded.rejected, status = collector_stats.status + excluded.status`,
		writer, c[0], c[1], c[2], c[3], c[4], c[5], c[6])
}
