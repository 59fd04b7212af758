package fleet

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// The aggregates (database format 2): counters and indexes that every
// transaction changing a device keeps up to date, so that Report and
// VersionStats read them instead of walking every device. What a device
// contributes is a set of keys (deviceKeys); a change replaces the old
// set with the new one.
var (
	// bucketCounts: counter → number of devices (8 bytes, big-endian):
	//	"d"                      devices
	//	"o"                      online devices
	//	"v" lp(package) version    devices running that version
	//	"p" package                online devices with the package
	//	"s" lp(package) view       devices with that pkgView (VersionStats; pkgView.key)
	// where lp is a string after its length (uvarint): names and
	// versions may hold any byte, and a length prefix keeps one name
	// from being the prefix of another's keys.
	bucketCounts = []byte("agg-counts")
	// Indexes, values empty: the devices a report lists.
	bucketOffline  = []byte("idx-offline")  // id: last status not "online"
	bucketFailed   = []byte("idx-failed")   // id: last result failed, rolled back or held back
	bucketRelease  = []byte("idx-release")  // releaseKey(ReleaseDate) id
	bucketVersions = []byte("idx-versions") // lp(package) lp(version) id
)

// aggBuckets are the buckets of the aggregates.
var aggBuckets = [][]byte{bucketCounts, bucketOffline, bucketFailed, bucketRelease, bucketVersions}

// The first byte of a key from deviceKeys names where it goes.
const (
	tagCount   = 'c'
	tagOffline = 'o'
	tagFailed  = 'f'
	tagRelease = 'r'
	tagVersion = 'v'
)

func aggBucket(tx *bolt.Tx, tag byte) *bolt.Bucket {
	switch tag {
	case tagOffline:
		return tx.Bucket(bucketOffline)
	case tagFailed:
		return tx.Bucket(bucketFailed)
	case tagRelease:
		return tx.Bucket(bucketRelease)
	case tagVersion:
		return tx.Bucket(bucketVersions)
	}
	return nil
}

// releaseKey orders release dates by their second (sign bit flipped, so
// that dates before 1970 sort first).
func releaseKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.Unix())^1<<63)
}

// lp is s after its length.
func lp(s string) string {
	return string(binary.AppendUvarint(nil, uint64(len(s)))) + s
}

// cutLP splits k = lp(s) rest into s and rest.
func cutLP(k string) (s, rest string, ok bool) {
	n, w := binary.Uvarint([]byte(k[:min(len(k), binary.MaxVarintLen64)]))
	if w <= 0 || uint64(len(k)-w) < n {
		return "", "", false
	}
	return k[w : w+int(n)], k[w+int(n):], true
}

// aggDevice is what the aggregates know of a device: its online flag and
// its state (nil when it sent none, or the stored one does not decode).
type aggDevice struct {
	online bool
	st     *state.State
}

// deviceKeys calls fn with each key device id contributes to the
// aggregates. Everything it reads of the state is covered by the
// record's fingerprint, so a report with an unchanged fingerprint and
// online flag changes nothing.
func deviceKeys(id string, d aggDevice, fn func(string)) {
	fn(string(tagCount) + "d")
	onlineKeys(id, d, fn)
	st := d.st
	if st == nil {
		return
	}
	for name, v := range st.Packages {
		fn(string(tagCount) + "v" + lp(name) + v)
		fn(string(tagVersion) + lp(name) + lp(v) + id)
	}
	if failedResult(st.Result) {
		fn(string(tagFailed) + id)
	}
	if !st.ReleaseDate.IsZero() {
		fn(string(tagRelease) + string(releaseKey(st.ReleaseDate)) + id)
	}
	view := func(name string) {
		v, _ := viewOf(st, name)
		fn(string(tagCount) + "s" + lp(name) + v.key())
	}
	for name := range st.Packages {
		view(name)
	}
	for name := range st.Candidates {
		if _, ok := st.Packages[name]; !ok {
			view(name)
		}
	}
	for name := range st.Attempts {
		_, pkg := st.Packages[name]
		_, cand := st.Candidates[name]
		if !pkg && !cand {
			view(name)
		}
	}
}

// onlineKeys are the keys of deviceKeys that depend on the online flag.
func onlineKeys(id string, d aggDevice, fn func(string)) {
	if !d.online {
		fn(string(tagOffline) + id)
		return
	}
	fn(string(tagCount) + "o")
	if d.st != nil {
		for name := range d.st.Packages {
			fn(string(tagCount) + "p" + name)
		}
	}
}

// key encodes v for a counter key: its strings after their lengths, its
// flags in one byte, the checks as a uvarint.
func (v pkgView) key() string {
	var flags byte
	for i, f := range []bool{v.HasInstalled, v.HasCand, v.CandEligible, v.HasAtt} {
		if f {
			flags |= 1 << i
		}
	}
	b := []byte{flags}
	b = binary.AppendUvarint(b, uint64(v.CandChecks))
	return string(b) + lp(v.Installed) + lp(v.Cand) + lp(v.Att) + lp(v.AttResult) + lp(v.AttHealth)
}

// parseViewKey decodes pkgView.key.
func parseViewKey(k string) (v pkgView, ok bool) {
	if len(k) < 2 {
		return v, false
	}
	flags := k[0]
	v.HasInstalled, v.HasCand, v.CandEligible, v.HasAtt = flags&1 != 0, flags&2 != 0, flags&4 != 0, flags&8 != 0
	checks, w := binary.Uvarint([]byte(k[1:min(len(k), 1+binary.MaxVarintLen64)]))
	if w <= 0 {
		return v, false
	}
	v.CandChecks = int(checks)
	k = k[1+w:]
	for _, f := range []*string{&v.Installed, &v.Cand, &v.Att, &v.AttResult, &v.AttHealth} {
		if *f, k, ok = cutLP(k); !ok {
			return v, false
		}
	}
	return v, k == ""
}

// stateOf decodes a record's state (validated when it was stored); nil if
// it has none or it does not decode (the aggregates then count the device
// without packages).
func stateOf(r record) *state.State {
	if !r.hasState() {
		return nil
	}
	if st, ok := fastDecode(r.stateJSON()); ok {
		return &st
	}
	st := new(state.State)
	if json.Unmarshal(r.stateJSON(), st) != nil {
		return nil
	}
	return st
}

// aggTx changes the aggregates within one write transaction. Counter and
// index changes are summed in memory and written by flush, once per batch
// (a new device's "offline" entry that its "online" status removes in the
// same batch is never written).
type aggTx struct {
	tx     *bolt.Tx
	counts map[string]int64
	index  map[string]int // tag + index key → +1 put, -1 delete
	diff   map[string]int
}

func newAggTx(tx *bolt.Tx) *aggTx { return &aggTx{tx: tx} }

// change replaces the contribution of device id as before (nil: the
// device did not exist) with after's.
func (a *aggTx) change(id string, before, after *aggDevice) error {
	return a.replace(id, before, after, deviceKeys)
}

// replace replaces the keys keys gives for before (nil: none) with those
// it gives for after.
func (a *aggTx) replace(id string, before, after *aggDevice, keys func(string, aggDevice, func(string))) error {
	if a.counts == nil {
		a.counts, a.index, a.diff = map[string]int64{}, map[string]int{}, map[string]int{}
	}
	clear(a.diff)
	if before != nil {
		keys(id, *before, func(k string) { a.diff[k]-- })
	}
	if after != nil {
		keys(id, *after, func(k string) { a.diff[k]++ })
	}
	for k, n := range a.diff {
		if n == 0 {
			continue
		}
		if k[0] == tagCount {
			a.counts[k[1:]] += int64(n)
		} else {
			a.index[k] += n
		}
	}
	return nil
}

// status records that old (maybe not valid: a new device) became r
// through a status message.
func (a *aggTx) status(id string, old, r record) error {
	if !old.valid() {
		return a.change(id, nil, &aggDevice{online: r.online()})
	}
	if old.online() == r.online() {
		return nil
	}
	// Only the keys that depend on the online flag change.
	st := stateOf(old)
	return a.replace(id, &aggDevice{online: old.online(), st: st}, &aggDevice{online: r.online(), st: st}, onlineKeys)
}

// state records that device id, stored as old (maybe not valid) with
// state prev, now has state cur.
func (a *aggTx) state(id string, old record, prev, cur *state.State) error {
	var before *aggDevice
	if old.valid() {
		before = &aggDevice{online: old.online(), st: prev}
	}
	return a.change(id, before, &aggDevice{online: old.valid() && old.online(), st: cur})
}

// flush writes the summed changes, in key order; a counter that reaches 0
// is deleted.
func (a *aggTx) flush() error {
	for _, k := range slices.Sorted(maps.Keys(a.index)) {
		n := a.index[k]
		if n == 0 {
			continue
		}
		b, key := aggBucket(a.tx, k[0]), []byte(k[1:])
		var err error
		if n > 0 {
			err = b.Put(key, []byte{})
		} else {
			err = b.Delete(key)
		}
		if err != nil {
			return fmt.Errorf("aggregates: index entry %q: %w", k, err)
		}
	}
	clear(a.index)
	b := a.tx.Bucket(bucketCounts)
	for k, n := range a.counts {
		if n == 0 {
			continue
		}
		v := int64(countOf(b.Get([]byte(k)))) + n
		var err error
		switch {
		case v < 0:
			err = fmt.Errorf("aggregate counter %q went below 0: %w: the aggregates no longer match the devices (a bug: report it, with the database)", k, ErrDatabase)
		case v == 0:
			err = b.Delete([]byte(k))
		default:
			err = b.Put([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(v)))
		}
		if err != nil {
			return err
		}
	}
	clear(a.counts)
	return nil
}

func countOf(v []byte) int {
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

// buildAggregates computes the aggregates from the devices, replacing
// whatever aggregates the file had.
func buildAggregates(tx *bolt.Tx) error {
	for _, name := range aggBuckets {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	a := newAggTx(tx)
	err := tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
		r := record(v)
		if !r.valid() {
			return fmt.Errorf("device %s: %w: short record", k, ErrDatabase)
		}
		if err := a.change(string(k), nil, &aggDevice{online: r.online(), st: stateOf(r)}); err != nil {
			return err
		}
		if len(a.counts)+len(a.index) > 1<<16 { // bound the memory of a large fleet
			return a.flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("build aggregates: %w", err)
	}
	return a.flush()
}

// reportFromAggregates fills b (a Report) from the aggregates: the counts
// from the counters, behind from the version index, and the listed
// devices from the offline, failed and release-date indexes, each of
// them decoded and judged as a scan judges it.
func reportFromAggregates(tx *bolt.Tx, b *reportBuilder) error {
	if err := countFromCounters(tx, b); err != nil {
		return err
	}
	behindFromIndex(tx, b)
	ids, err := indexedDeviceIDs(tx, b)
	if err != nil {
		return err
	}
	return listIndexed(tx, b, ids)
}

// countFromCounters fills the version counts and the device, online and
// offline totals of b from the aggregate counters (of b's package when
// the report names one).
func countFromCounters(tx *bolt.Tx, b *reportBuilder) error {
	counts := tx.Bucket(bucketCounts)
	rep, pkg := b.rep, b.opts.Package
	prefix := "v"
	if pkg != "" {
		prefix += lp(pkg)
	}
	c := counts.Cursor()
	for k, v := c.Seek([]byte(prefix)); k != nil && hasPrefix(k, []byte(prefix)); k, v = c.Next() {
		name, ver, ok := cutLP(string(k[1:]))
		if !ok {
			return fmt.Errorf("%w: aggregate counter %q", ErrDatabase, k)
		}
		if b.counts[name] == nil {
			b.counts[name] = map[string]int{}
		}
		n := countOf(v)
		b.counts[name][ver] = n
		if pkg != "" {
			rep.Devices += n
		}
	}
	if pkg == "" {
		rep.Devices = countOf(counts.Get([]byte("d")))
		rep.Online = countOf(counts.Get([]byte("o")))
	} else {
		rep.Online = countOf(counts.Get([]byte("p" + pkg)))
	}
	rep.Offline = rep.Devices - rep.Online
	return nil
}

// behindFromIndex fills b.behind, for each counted package with a newest
// version, with the sorted devices running an older version, read from
// the version index.
func behindFromIndex(tx *bolt.Tx, b *reportBuilder) {
	for name, versions := range b.counts {
		if b.opts.Newest[name] == "" {
			continue
		}
		var runs [][]string
		for ver := range versions {
			if b.olderThanNewest(name, ver) {
				runs = append(runs, idsWithVersion(tx, name, ver))
			}
		}
		b.behind[name] = mergeSorted(runs)
	}
}

// indexedDeviceIDs returns the devices the report may list, unsorted and
// possibly repeated: those offline long enough, failed, with a release
// date at least StaleView old, and duplicated.
func indexedDeviceIDs(tx *bolt.Tx, b *reportBuilder) ([]string, error) {
	devs := tx.Bucket(bucketDevices)
	var ids []string
	err := tx.Bucket(bucketOffline).ForEach(func(k, _ []byte) error {
		r := record(devs.Get(k))
		if !r.valid() {
			return fmt.Errorf("device %s: %w: offline index names a device without a record", k, ErrDatabase)
		}
		if b.offlineListed(r.lastSeen()) {
			ids = append(ids, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketFailed).ForEach(func(k, _ []byte) error {
		ids = append(ids, string(k))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b.rep.StaleView > 0 {
		// Every date at least StaleView old has a key up to the cutoff's;
		// list judges each exactly.
		cutoff := releaseKey(b.now.Add(-b.rep.StaleView))
		c := tx.Bucket(bucketRelease).Cursor()
		for k, _ := c.First(); k != nil && len(k) > 8 && bytes.Compare(k[:8], cutoff) <= 0; k, _ = c.Next() {
			ids = append(ids, string(k[8:]))
		}
	}
	return append(ids, duplicatedIDs(tx, b.now)...), nil
}

// listIndexed decodes each device of ids once, in order, and lists it in
// b if the report's filters include it.
func listIndexed(tx *bolt.Tx, b *reportBuilder, ids []string) error {
	devs := tx.Bucket(bucketDevices)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		r := record(devs.Get([]byte(id)))
		if !r.valid() {
			return fmt.Errorf("device %s: %w: an index names a device without a record", id, ErrDatabase)
		}
		d, err := r.device(id)
		if err != nil {
			return err
		}
		d.Duplicate = duplicateOf(tx, []byte(id))
		if b.includes(&d) {
			b.list(&d)
		}
	}
	return nil
}

// idsWithVersion returns the devices running version ver of package
// name, sorted.
func idsWithVersion(tx *bolt.Tx, name, ver string) []string {
	prefix := []byte(lp(name) + lp(ver))
	var ids []string
	c := tx.Bucket(bucketVersions).Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

// mergeSorted merges sorted lists into one sorted list.
func mergeSorted(runs [][]string) []string {
	for len(runs) > 1 {
		var next [][]string
		for i := 0; i < len(runs); i += 2 {
			if i+1 == len(runs) {
				next = append(next, runs[i])
				continue
			}
			a, b := runs[i], runs[i+1]
			m := make([]string, 0, len(a)+len(b))
			for len(a) > 0 && len(b) > 0 {
				if a[0] <= b[0] {
					m, a = append(m, a[0]), a[1:]
				} else {
					m, b = append(m, b[0]), b[1:]
				}
			}
			next = append(next, append(append(m, a...), b...))
		}
		runs = next
	}
	if len(runs) == 0 {
		return nil
	}
	return runs[0]
}

// versionStatsFromAggregates counts q's version from the view counters of
// q.Package.
func versionStatsFromAggregates(tx *bolt.Tx, q VersionQuery) (VersionStats, error) {
	var vs VersionStats
	prefix := []byte("s" + lp(q.Package))
	c := tx.Bucket(bucketCounts).Cursor()
	for k, n := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, n = c.Next() {
		v, ok := parseViewKey(string(k[len(prefix):]))
		if !ok {
			return vs, fmt.Errorf("version stats of %s: %w: counter %q", q.Package, ErrDatabase, k)
		}
		vs.addView(q, v, countOf(n))
	}
	return vs, nil
}
