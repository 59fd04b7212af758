package pgstore

import (
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

// Commit stores a batch in one transaction (fleet.Sink). The rows of
// its devices are read without a lock and the batch applied to them; each
// changed row is then written only if it still holds what was read (a
// compare-and-swap on seq, fingerprint, status and receive times), so
// that a device another writer got to first is read again, under a lock,
// and its items applied again: the highest seq wins whichever commits
// first. A transaction that deadlocks with another is run again.
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
	// initialSeq, initialStatus: what the row held before the batch,
	// compared when it is written.
	initialSeq    uint64
	initialStatus *time.Time
	// firstSeq is the seq of the batch's first report stored.
	firstSeq uint64
	// initialHadState: the row held a state before the batch.
	initialHadState bool
	// stateDirty: a new state is stored; statusDirty: a new status.
	stateDirty, statusDirty bool
	// events are the audit-log events of the batch's reports, in order.
	events []historyEvent
	// isNew: the device had no row when read; it is inserted.
	isNew bool
}

// prevState decodes the stored state (nil if none or unreadable). The
// stored JSON is read (readDevices) whenever a report of the batch
// changes the fingerprint, the only time the audit log needs it.
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

// unchanged returns the devices of items that have state reports only,
// none with seq 0, all of one fingerprint, with that fingerprint.
func unchanged(items []fleet.Item) map[string]uint64 {
	fps := map[string]uint64{}
	other := map[string]bool{}
	for i := range items {
		it := &items[i]
		switch {
		case it.Outcome == fleet.OutcomeStatus || it.Outcome == fleet.OutcomeStored && it.State.Seq == 0:
			other[it.Device] = true
		case it.Outcome == fleet.OutcomeStored:
			if fp, ok := fps[it.Device]; ok && fp != it.Fingerprint {
				other[it.Device] = true
			}
			fps[it.Device] = it.Fingerprint
		}
	}
	for id := range other {
		delete(fps, id)
	}
	return fps
}

// commitOnce is one attempt of Commit: it reads the batch's devices,
// applies the items, inserts the new devices and writes the changed rows
// with a compare-and-swap, reads and applies again the devices another
// writer created or changed meanwhile, then writes the audit log,
// installed versions and aggregates and commits.
func (s *Store) commitOnce(ctx context.Context, items []fleet.Item) ([]fleet.Outcome, error) {
	out := make([]fleet.Outcome, len(items))
	ids, fps := fetchKeys(items)

	// Devices whose reports all keep the stored fingerprint (a fleet's
	// steady state) are not read: their rows are written if the stored
	// seq is below the batch's first report and the fingerprint is the
	// one they report, and read only if not.
	fast := unchanged(items)
	var readIDs []string
	var readFPs []*int64
	for i, id := range ids {
		if _, ok := fast[id]; !ok {
			readIDs, readFPs = append(readIDs, id), append(readFPs, fps[i])
		}
	}

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	rows, err := readDevices(ctx, tx, readIDs, readFPs, false)
	if err != nil {
		return nil, err
	}
	for id, fp := range fast {
		rows[id] = &devRow{exists: true, hasState: true, fp: fp, initialFP: fp, initialHadState: true}
	}
	newRows(readIDs, rows)
	if err := applyItems(items, rows, out, nil); err != nil {
		return nil, err
	}
	if s.beforeWrite != nil {
		s.beforeWrite()
	}
	added, lost, err := writeDevices(ctx, tx, rows, ids)
	if err != nil {
		return nil, err
	}
	n, err := rewriteLost(ctx, tx, items, rows, out, lost)
	if err != nil {
		return nil, err
	}
	added += n

	batch := &pgx.Batch{}
	var agg aggregates
	queueHistory(batch, rows)
	s.queueInstalled(batch, rows, &agg)
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

// rewriteLost reads again the devices lost names (another writer got to
// them first, or they were not read), applies their items again and
// writes them, until every row is written; it returns how many devices
// it created. The transaction holds writeLock by now, so no other
// collector writes them before it commits; from the second round on they
// are read locked, against any other change.
func rewriteLost(ctx context.Context, tx pgx.Tx, items []fleet.Item, rows map[string]*devRow, out []fleet.Outcome, lost []string) (int, error) {
	added := 0
	again := map[string]bool{}
	for _, id := range lost {
		again[id] = true
	}
	for round := 0; len(again) > 0; round++ {
		if round == 4 {
			return 0, fmt.Errorf("write devices: %d rows changed under a lock", len(again))
		}
		ids, fps := fetchKeys(slices.DeleteFunc(slices.Clone(items), func(it fleet.Item) bool { return !again[it.Device] }))
		fresh, err := readDevices(ctx, tx, ids, fps, round > 0)
		if err != nil {
			return 0, err
		}
		newRows(ids, fresh)
		maps.Copy(rows, fresh)
		if err := applyItems(items, rows, out, again); err != nil {
			return 0, err
		}
		n, lost, err := writeDevices(ctx, tx, rows, ids)
		if err != nil {
			return 0, err
		}
		added += n
		clear(again)
		for _, id := range lost {
			again[id] = true
		}
	}
	return added, nil
}

// readDevices reads the rows of the devices ids (sorted) that exist,
// with the state JSON where fps says a report changes the fingerprint;
// lock: locked for update, in id order.
func readDevices(ctx context.Context, tx pgx.Tx, ids []string, fps []*int64, lock bool) (map[string]*devRow, error) {
	rows := make(map[string]*devRow, len(ids))
	if len(ids) == 0 {
		return rows, nil
	}
	// The state JSON only where a report changes the fingerprint:
	// in a fleet's steady state, none.
	q := `SELECT d.id, d.seq, d.fingerprint, d.online, d.status_time, d.received, d.state IS NOT NULL,
			CASE WHEN u.fp IS NULL OR u.fp <> d.fingerprint THEN d.state::text END
		FROM devices d JOIN unnest($1::text[], $2::bigint[]) AS u(id, fp) ON d.id = u.id`
	if lock {
		q += ` ORDER BY d.id FOR UPDATE OF d`
	}
	rs, err := tx.Query(ctx, q, ids, fps)
	if err != nil {
		return nil, fmt.Errorf("read devices: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			id      string
			seq, fp int64
			r       devRow
			js      *string
		)
		if err := rs.Scan(&id, &seq, &fp, &r.online, &r.status, &r.received, &r.hasState, &js); err != nil {
			return nil, fmt.Errorf("read devices: %w", err)
		}
		r.seq, r.fp = uint64(seq), uint64(fp)
		r.initialSeq, r.initialFP, r.initialOn, r.initialStatus = r.seq, r.fp, r.online, r.status
		if js != nil {
			r.payload = []byte(*js)
			r.initial = r.payload
		}
		r.exists, r.initialHadState = r.hasState || r.status != nil, r.hasState
		rows[id] = &r
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read devices: %w", err)
	}
	return rows, nil
}

// newRows gives each device of ids without a row in rows a new one,
// to be inserted (writeDevices).
func newRows(ids []string, rows map[string]*devRow) {
	for _, id := range ids {
		if rows[id] == nil {
			rows[id] = &devRow{isNew: true}
		}
	}
}

// applyItems applies items in order to their devices' rows (only the
// devices in only, if not nil), sets out[i] to the outcome of items[i]
// (a state no newer than the row's is OutcomeStale) and adds to each row
// the audit-log events of the states that change its fingerprint. A
// re-delivered retained status that changes nothing is skipped.
func applyItems(items []fleet.Item, rows map[string]*devRow, out []fleet.Outcome, only map[string]bool) error {
	for i := range items {
		it := &items[i]
		if only != nil && !only[it.Device] {
			continue
		}
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
					b, err := json.Marshal(e)
					if err != nil {
						return err
					}
					r.events = append(r.events, historyEvent{it.Received, string(b)})
				}
			}
			if !r.stateDirty {
				r.firstSeq = it.State.Seq
			}
			t := it.Received
			r.seq, r.fp, r.received, r.payload, r.st = it.State.Seq, it.Fingerprint, &t, it.Payload, it.State
			r.exists, r.hasState, r.stateDirty = true, true, true
		}
	}
	return nil
}
