package fleet

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// Message is one MQTT message as the collector received it.
type Message struct {
	Topic   string
	Payload []byte
	// Retained is set when the broker delivered a stored retained message
	// (on subscribe) rather than a live one.
	Retained bool
	Received time.Time
}

// Outcome is what Apply did with one message.
type Outcome uint8

// Outcomes of Apply.
const (
	OutcomeStored  Outcome = iota + 1 // newest state of its device, committed
	OutcomeStale                      // seq not newer than the stored one: ignored
	OutcomeInvalid                    // bad topic, JSON or status payload: ignored
	OutcomeSpoofed                    // topic id and payload id differ: ignored
	OutcomeStatus                     // status message, committed
	// OutcomeRejected: a seq more than MaxSeqAhead beyond the receive
	// time in microseconds; ignored, or one report "from the future"
	// would make every later one of its device stale.
	OutcomeRejected
)

// MaxSeqAhead is how far a report's seq may be ahead of the collector's
// clock, in microseconds since 1970 (lampi-agent's seq is at most its
// clock in microseconds, or one more than its last): clocks that are off
// by less are accepted.
const MaxSeqAhead = 24 * time.Hour

// seqLimit is the highest seq accepted at receive time t.
func seqLimit(t time.Time) uint64 {
	return uint64(max(0, t.UnixMicro())) + uint64(MaxSeqAhead/time.Microsecond)
}

// prepared is a message decoded outside the write transaction.
type prepared struct {
	outcome Outcome
	id      string
	kind    string
	st      state.State
	fp      uint64
	recv    int64
	online  bool
	retain  bool
	payload []byte
}

func prepare(prefix string, m Message) prepared {
	p := prepared{recv: m.Received.UnixNano(), retain: m.Retained, payload: m.Payload}
	id, kind, ok := state.ParseTopic(prefix, m.Topic)
	if !ok {
		p.outcome = OutcomeInvalid
		return p
	}
	p.id, p.kind = id, kind
	if kind == state.KindStatus {
		switch string(m.Payload) {
		case state.Online:
			p.online = true
		case state.Offline:
		default:
			p.outcome = OutcomeInvalid
			return p
		}
		p.outcome = OutcomeStatus
		return p
	}
	st, err := decodeState(m.Payload)
	if err != nil {
		p.outcome = OutcomeInvalid
		return p
	}
	if st.Device != id {
		p.outcome = OutcomeSpoofed
		return p
	}
	p.st = st
	if st.Seq > seqLimit(m.Received) {
		p.outcome = OutcomeRejected
		return p
	}
	p.fp = fingerprint(&st)
	p.outcome = OutcomeStored // provisional: Apply decides stale or stored
	return p
}

// fingerprint hashes what the audit log and the aggregates track, so the
// ingest path decodes the previous report only when one of those changed.
func fingerprint(s *state.State) uint64 {
	h := fnv.New64a()
	put := func(m map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			h.Write([]byte(k))
			h.Write([]byte{0})
			h.Write([]byte(m[k]))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	put(s.Packages)
	put(s.Target)
	h.Write([]byte(s.Result))
	h.Write([]byte{0})
	h.Write([]byte(s.Error))
	// Since format 2: the parts the aggregates read (always some bytes,
	// so no report matches a fingerprint of format 1).
	h.Write([]byte{0, 2})
	for _, k := range slices.Sorted(maps.Keys(s.Candidates)) {
		c := s.Candidates[k]
		fmt.Fprintf(h, "%s\x00%s\x00%t\x00%d\x00", k, c.Version, c.Eligible, c.Checks)
	}
	h.Write([]byte{1})
	for _, k := range slices.Sorted(maps.Keys(s.Attempts)) {
		a := s.Attempts[k]
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", k, a.Version, a.Result, a.Health)
	}
	h.Write([]byte{1})
	h.Write(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, uint64(s.ReleaseDate.Unix())), uint32(s.ReleaseDate.Nanosecond())))
	return h.Sum64()
}

// Apply stores a batch of messages in one transaction and returns what it
// did with each. For state reports it keeps the highest seq per device and
// appends version changes and update results to the device's audit log; a
// seq more than MaxSeqAhead beyond the message's receive time (default:
// StoreOptions.Now) is rejected.
// Status messages set online/offline; a retained status equal to the stored
// one (a re-delivery on subscribe) keeps its original time.
//
// The error is only for a failed commit: then nothing of the batch is
// stored and the caller must not acknowledge it.
func (s *Store) Apply(prefix string, msgs []Message) ([]Outcome, error) {
	ps := make([]prepared, len(msgs))
	for i, m := range msgs {
		if m.Received.IsZero() {
			m.Received = s.opts.Now()
		}
		ps[i] = prepare(prefix, m)
	}
	return s.applyPrepared(ps)
}

func (s *Store) applyPrepared(ps []prepared) ([]Outcome, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	out := make([]Outcome, len(ps))
	var after Stats
	err := s.db.Update(func(tx *bolt.Tx) error {
		added, err := s.applyBatch(tx, ps, out)
		if err != nil {
			return err
		}
		after = s.statsAfter(out, added)
		return putStats(tx, after)
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.stats = after
	s.mu.Unlock()
	return out, nil
}

// applyBatch writes the messages of ps in order in tx, sets out[i] to the
// outcome of ps[i], flushes the aggregates and returns how many devices
// it added.
func (s *Store) applyBatch(tx *bolt.Tx, ps []prepared, out []Outcome) (int, error) {
	added := 0
	agg := newAggTx(tx)
	// Several messages of one device may share a batch: the newest
	// record written in this transaction is read back from bbolt.
	for i := range ps {
		p := &ps[i]
		out[i] = p.outcome
		var isNew bool
		var err error
		switch p.outcome {
		case OutcomeStatus:
			isNew, err = applyStatus(tx, agg, p)
		case OutcomeStored:
			out[i], isNew, err = s.applyState(tx, agg, p)
		}
		if err != nil {
			return 0, err
		}
		if isNew {
			added++
		}
	}
	if err := agg.flush(); err != nil {
		return 0, err
	}
	return added, nil
}

// applyStatus writes the online status message p to its device's record
// and the aggregates, and reports whether the device is new. A
// re-delivered retained status that changes nothing is skipped.
func applyStatus(tx *bolt.Tx, agg *aggTx, p *prepared) (bool, error) {
	devs := tx.Bucket(bucketDevices)
	key := []byte(p.id)
	old := record(devs.Get(key))
	var r record
	isNew := false
	if old.valid() {
		if p.retain && old.statusTime() != 0 && old.online() == p.online {
			return false, nil // re-delivered retained status: nothing new
		}
		r = make(record, len(old))
		copy(r, old)
	} else {
		r = newRecord(0, 0, 0, nil, nil)
		isNew = true
	}
	r.setStatus(p.recv, p.online)
	if err := agg.status(p.id, old, r); err != nil {
		return isNew, err
	}
	return isNew, devs.Put(key, r)
}

// applyState writes the state message p: it notes the device's boot,
// drops a state no newer than the stored one (OutcomeStale), and
// otherwise stores it, with a history entry and aggregate change when
// its fingerprint differs. It returns p's outcome and whether the device
// is new.
func (s *Store) applyState(tx *bolt.Tx, agg *aggTx, p *prepared) (Outcome, bool, error) {
	devs := tx.Bucket(bucketDevices)
	key := []byte(p.id)
	old := record(devs.Get(key))
	isNew := !old.valid()
	var stored uint64
	if old.hasState() {
		stored = old.seq()
	}
	if err := noteBoot(tx, p.id, p.st.BootID, p.st.Seq, stored, p.recv); err != nil {
		return p.outcome, isNew, err
	}
	if old.valid() && old.seq() >= p.st.Seq {
		return OutcomeStale, isNew, nil
	}
	// A record may hold a state with seq 0: one reset by the
	// operator (ResetSeq).
	// The fingerprint covers what the audit log and the
	// aggregates read.
	if !old.hasState() || old.fingerprint() != p.fp {
		prev := stateOf(old)
		if err := s.appendHistory(tx.Bucket(bucketHistory), p.id, prev, &p.st); err != nil {
			return p.outcome, isNew, err
		}
		if err := agg.state(p.id, old, prev, &p.st); err != nil {
			return p.outcome, isNew, err
		}
	}
	return p.outcome, isNew, devs.Put(key, newRecord(p.st.Seq, p.recv, p.fp, p.payload, old))
}

// putStats stores the counters st in the meta bucket of tx.
func putStats(tx *bolt.Tx, st Stats) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put([]byte("stats"), b)
}

// statsAfter returns the counters with the outcomes and new devices added.
// Only one write transaction runs at a time, so the base cannot change
// underneath.
func (s *Store) statsAfter(out []Outcome, added int) Stats {
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	for _, o := range out {
		switch o {
		case OutcomeStatus:
			st.Status++
			continue
		case OutcomeStored:
			st.Stored++
		case OutcomeStale:
			st.Stale++
		case OutcomeInvalid:
			st.Invalid++
		case OutcomeSpoofed:
			st.Spoofed++
		case OutcomeRejected:
			st.Rejected++
		}
		st.Received++
	}
	st.Devices += added
	return st
}

// appendHistory logs what changed from prev (nil for a first report) to
// cur and trims the device's log to the history limit.
func (s *Store) appendHistory(hist *bolt.Bucket, id string, prev, cur *state.State) error {
	events := historyEvents(prev, cur)
	if len(events) == 0 {
		return nil
	}
	prefix := historyPrefix(id)
	for n, e := range events {
		key := make([]byte, 0, len(prefix)+10)
		key = append(key, prefix...)
		key = binary.BigEndian.AppendUint64(key, cur.Seq)
		key = binary.BigEndian.AppendUint16(key, uint16(n))
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := hist.Put(key, b); err != nil {
			return err
		}
	}
	// Trim: count this device's events, delete the oldest beyond the limit.
	c := hist.Cursor()
	count := 0
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		count++
	}
	for k, _ := c.Seek(prefix); count > s.opts.HistoryLimit && k != nil && hasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
		count--
	}
	return nil
}

// historyEvents is what cur adds to the audit log after prev (nil for a
// first report).
func historyEvents(prev, cur *state.State) []Event {
	var events []Event
	var old map[string]string
	if prev != nil {
		old = prev.Packages
	}
	for _, name := range slices.Sorted(maps.Keys(cur.Packages)) {
		if v := cur.Packages[name]; old[name] != v {
			events = append(events, Event{Time: cur.Time, Seq: cur.Seq, Package: name, From: old[name], To: v})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if _, ok := cur.Packages[name]; !ok {
			events = append(events, Event{Time: cur.Time, Seq: cur.Seq, Package: name, From: old[name]})
		}
	}
	switch cur.Result {
	case state.ResultUpdated, state.ResultFailed, state.ResultRolledBack, state.ResultHeldBack:
		if prev == nil || prev.Result != cur.Result || prev.Error != cur.Error || !maps.Equal(prev.Target, cur.Target) {
			events = append(events, Event{Time: cur.Time, Seq: cur.Seq, Result: cur.Result, Error: cur.Error, Target: cur.Target})
		}
	}
	return events
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}
