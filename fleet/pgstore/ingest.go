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

// Apply decodes msgs and commits them (Commit); a message without a
// receive time gets the store's clock.
func (s *Store) Apply(prefix string, msgs []fleet.Message) ([]fleet.Outcome, error) {
	return s.Commit(context.Background(), fleet.PrepareBatch(prefix, msgs, s.opts.Now))
}

// Commit stores a batch in one transaction (fleet.Sink): the rows of its
// devices are created if new, then locked in id order, so that a batch
// of another collector touching the same devices waits, and the highest
// seq wins whichever commits first. A transaction that deadlocks with
// another is run again.
func (s *Store) Commit(ctx context.Context, b *fleet.Batch) ([]fleet.Outcome, error) {
	items := make([]fleet.Item, b.Len())
	for i := range items {
		items[i] = b.Item(i)
		if items[i].Outcome == fleet.OutcomeStored {
			if err := s.ensureMonth(ctx, items[i].Received); err != nil {
				return nil, err
			}
		}
	}
	for attempt := 1; ; attempt++ {
		out, err := s.commitOnce(ctx, items)
		if err == nil || attempt >= 10 || !retryable(err) {
			return out, err
		}
	}
}

// devRow is one device's row while a batch is applied.
type devRow struct {
	exists    bool // before the batch, or given a state or status by it
	hasState  bool
	seq       uint64
	fp        uint64
	online    bool
	status    *time.Time
	received  *time.Time
	payload   []byte // the newest state JSON: read only when needed
	st        *state.State
	initial   []byte // the state JSON before the batch, read only when needed
	initialFP uint64
	initialOn bool
	// initialHadState: the row held a state before the batch.
	initialHadState bool
	// stateDirty: a new state is stored; statusDirty: a new status.
	stateDirty, statusDirty bool
}

// prevState decodes the stored state (nil if none or unreadable). The
// stored JSON is read (commitOnce) whenever a report of the batch changes
// the fingerprint, the only time the audit log needs it.
func (r *devRow) prevState() *state.State {
	if r.st != nil {
		return r.st
	}
	if r.payload == nil {
		return nil
	}
	st := new(state.State)
	if json.Unmarshal(r.payload, st) != nil {
		return nil
	}
	r.st = st
	return st
}

// fetchKeys are a batch's device ids, sorted, and per id the fingerprint
// its state reports share (nil: no report, or several fingerprints): the
// stored state JSON is read only where it differs.
func fetchKeys(items []fleet.Item) ([]string, []*int64) {
	type fps struct {
		fp        int64
		set, many bool
	}
	seen := map[string]*fps{}
	var ids []string
	for i := range items {
		it := &items[i]
		if it.Outcome != fleet.OutcomeStored && it.Outcome != fleet.OutcomeStatus {
			continue
		}
		f := seen[it.Device]
		if f == nil {
			f = &fps{}
			seen[it.Device] = f
			ids = append(ids, it.Device)
		}
		if it.Outcome == fleet.OutcomeStored {
			v := int64(it.Fingerprint)
			if f.set && f.fp != v {
				f.many = true
			}
			f.fp, f.set = v, true
		}
	}
	slices.Sort(ids)
	out := make([]*int64, len(ids))
	for i, id := range ids {
		if f := seen[id]; f.set && !f.many {
			out[i] = &f.fp
		}
	}
	return ids, out
}

// commitOnce is one attempt of Commit: it locks the batch's devices,
// applies the items to their rows, then writes the rows, the audit log
// and the aggregates in one round trip and commits.
func (s *Store) commitOnce(ctx context.Context, items []fleet.Item) ([]fleet.Outcome, error) {
	out := make([]fleet.Outcome, len(items))
	ids, fps := fetchKeys(items)

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	rows, added, err := lockDevices(ctx, tx, ids, fps)
	if err != nil {
		return nil, err
	}
	hist, err := applyItems(items, rows, out)
	if err != nil {
		return nil, err
	}

	batch := &pgx.Batch{}
	var agg aggregates
	if err := s.queueDevices(batch, rows, &agg); err != nil {
		return nil, err
	}
	hist.queue(batch)
	agg.devices = added
	agg.queue(batch, s.writer, out)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("write batch: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return out, nil
}

// lockDevices creates the rows of the devices ids that are new, then
// locks and reads every row of ids in id order (with the state JSON
// where fps says a report changes the fingerprint). It returns the rows
// by id and how many devices it created.
func lockDevices(ctx context.Context, tx pgx.Tx, ids []string, fps []*int64) (map[string]*devRow, int, error) {
	rows := map[string]*devRow{}
	if len(ids) == 0 {
		return rows, 0, nil
	}
	// New devices get an empty row first, so that every row of the
	// batch can be locked; in id order, as the locks below.
	tag, err := tx.Exec(ctx, `INSERT INTO devices (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, ids)
	if err != nil {
		return nil, 0, fmt.Errorf("insert new devices: %w", err)
	}
	added := int(tag.RowsAffected())
	// The state JSON only where a report changes the fingerprint:
	// in a fleet's steady state, none.
	rs, err := tx.Query(ctx, `SELECT d.id, d.seq, d.fingerprint, d.online, d.status_time, d.received, d.state IS NOT NULL,
			CASE WHEN u.fp IS NULL OR u.fp <> d.fingerprint THEN d.state::text END
		FROM devices d JOIN unnest($1::text[], $2::bigint[]) AS u(id, fp) ON d.id = u.id
		ORDER BY d.id FOR UPDATE OF d`, ids, fps)
	if err != nil {
		return nil, 0, fmt.Errorf("lock devices: %w", err)
	}
	for rs.Next() {
		var (
			id      string
			seq, fp int64
			r       devRow
			js      *string
		)
		if err := rs.Scan(&id, &seq, &fp, &r.online, &r.status, &r.received, &r.hasState, &js); err != nil {
			rs.Close()
			return nil, 0, fmt.Errorf("read devices: %w", err)
		}
		r.seq, r.fp, r.initialFP, r.initialOn = uint64(seq), uint64(fp), uint64(fp), r.online
		if js != nil {
			r.payload = []byte(*js)
			r.initial = r.payload
		}
		r.exists, r.initialHadState = r.hasState || r.status != nil, r.hasState
		rows[id] = &r
	}
	if err := rs.Err(); err != nil {
		return nil, 0, fmt.Errorf("read devices: %w", err)
	}
	return rows, added, nil
}

// applyItems applies items in order to their devices' rows, sets out[i]
// to the outcome of items[i] (a state no newer than the row's is
// OutcomeStale) and returns the audit-log events of the states that
// change a fingerprint. A re-delivered retained status that changes
// nothing is skipped.
func applyItems(items []fleet.Item, rows map[string]*devRow, out []fleet.Outcome) (historyRows, error) {
	var hist historyRows
	for i := range items {
		it := &items[i]
		out[i] = it.Outcome
		r := rows[it.Device]
		switch it.Outcome {
		case fleet.OutcomeStatus:
			if r.status != nil && it.Retained && r.online == it.Online {
				continue // re-delivered retained status: nothing new
			}
			t := it.Received
			r.status, r.online, r.exists, r.statusDirty = &t, it.Online, true, true
		case fleet.OutcomeStored:
			if r.exists && r.seq >= it.State.Seq {
				out[i] = fleet.OutcomeStale
				continue
			}
			if !r.hasState || r.fp != it.Fingerprint {
				for _, e := range fleet.HistoryEvents(r.prevState(), it.State) {
					if err := hist.add(it.Device, it.Received, e); err != nil {
						return hist, err
					}
				}
			}
			t := it.Received
			r.seq, r.fp, r.received, r.payload, r.st = it.State.Seq, it.Fingerprint, &t, it.Payload, it.State
			r.exists, r.hasState, r.stateDirty = true, true, true
		}
	}
	return hist, nil
}

// queueDevices queues the update of every changed row, the installed
// versions of devices whose packages changed, and counts the changes of
// the aggregates.
func (s *Store) queueDevices(batch *pgx.Batch, rows map[string]*devRow, agg *aggregates) error {
	var w deviceWrites
	for _, id := range slices.Sorted(maps.Keys(rows)) {
		r := rows[id]
		if r.online != r.initialOn {
			if r.online {
				agg.online++
			} else {
				agg.online--
			}
		}
		if !r.stateDirty {
			if r.statusDirty {
				w.addStatus(id, r)
			}
			continue
		}
		w.addState(id, r)
		// Installed versions: only when the fingerprint (which covers
		// the packages) changed; then the old state was read.
		if r.initial == nil && r.initialHadState && r.fp == r.initialFP {
			continue
		}
		w.diffInstalled(id, r, agg)
	}
	w.queue(batch)
	return nil
}

// deviceWrites are a batch's writes to the devices and installed tables,
// column by column.
type deviceWrites struct {
	ids                      []string // rows with a new state
	seqs, fps                []int64
	statuses, receiveds, rds []*time.Time
	onlines                  []bool
	agents, archs, results   []string
	errs                     []string
	states                   []*string
	stIDs                    []string // status changes only
	stTimes                  []*time.Time
	stOnlines                []bool
	delDev, delPkg           []string
	insDev, insPkg, insVer   []string
}

// addStatus adds the update of the status of row r, which has no new
// state.
func (w *deviceWrites) addStatus(id string, r *devRow) {
	w.stIDs, w.stTimes, w.stOnlines = append(w.stIDs, id), append(w.stTimes, r.status), append(w.stOnlines, r.online)
}

// addState adds the update of row r with the report it stored last.
func (w *deviceWrites) addState(id string, r *devRow) {
	st := r.st // the report stored last
	j := string(r.payload)
	w.ids = append(w.ids, id)
	w.seqs, w.fps = append(w.seqs, int64(r.seq)), append(w.fps, int64(r.fp))
	w.statuses, w.receiveds, w.onlines = append(w.statuses, r.status), append(w.receiveds, r.received), append(w.onlines, r.online)
	var rd *time.Time
	if !st.ReleaseDate.IsZero() {
		t := st.ReleaseDate
		rd = &t
	}
	w.agents, w.archs, w.results, w.errs, w.rds, w.states = append(w.agents, st.Agent), append(w.archs, st.Arch),
		append(w.results, st.Result), append(w.errs, st.Error), append(w.rds, rd), append(w.states, &j)
}

// diffInstalled adds the installed versions that the new state of row r
// removes, adds or changes against the state before the batch, and
// counts them in agg.
func (w *deviceWrites) diffInstalled(id string, r *devRow, agg *aggregates) {
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

// queue queues the statements of w that have rows: state updates, status
// updates, installed deletions, installed upserts, in that order.
func (w *deviceWrites) queue(batch *pgx.Batch) {
	if len(w.ids) > 0 {
		batch.Queue(`UPDATE devices d SET seq = u.seq, fingerprint = u.fp, status_time = u.status_time, received = u.received,
		online = u.online, agent = u.agent, arch = u.arch, result = u.result, error = u.error, release_date = u.release_date,
		state = u.state::json
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::boolean[],
			$7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[])
			AS u(id, seq, fp, status_time, received, online, agent, arch, result, error, release_date, state)
		WHERE d.id = u.id`, w.ids, w.seqs, w.fps, w.statuses, w.receiveds, w.onlines, w.agents, w.archs, w.results, w.errs, w.rds, w.states)
	}
	if len(w.stIDs) > 0 {
		batch.Queue(`UPDATE devices d SET status_time = u.status_time, online = u.online
		FROM unnest($1::text[], $2::timestamptz[], $3::boolean[]) AS u(id, status_time, online) WHERE d.id = u.id`,
			w.stIDs, w.stTimes, w.stOnlines)
	}
	if len(w.delDev) > 0 {
		batch.Queue(`DELETE FROM installed i USING unnest($1::text[], $2::text[]) AS u(device, package)
			WHERE i.device = u.device AND i.package = u.package`, w.delDev, w.delPkg)
	}
	if len(w.insDev) > 0 {
		batch.Queue(`INSERT INTO installed (device, package, version) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
			ON CONFLICT (device, package) DO UPDATE SET version = excluded.version`, w.insDev, w.insPkg, w.insVer)
	}
}

// historyRows are the audit-log events of a batch, in order.
type historyRows struct {
	devs   []string
	times  []time.Time
	events []string
}

func (h *historyRows) add(id string, recv time.Time, e fleet.Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	h.devs, h.times, h.events = append(h.devs, id), append(h.times, recv), append(h.events, string(b))
	return nil
}

func (h *historyRows) queue(batch *pgx.Batch) {
	if len(h.devs) == 0 {
		return
	}
	batch.Queue(`INSERT INTO history (device, received, event)
		SELECT d, r, e::json FROM unnest($1::text[], $2::timestamptz[], $3::text[]) WITH ORDINALITY AS u(d, r, e, n) ORDER BY n`,
		h.devs, h.times, h.events)
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
