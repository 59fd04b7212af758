package fleet

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names of the fleet database.
var (
	bucketDevices     = []byte("devices")     // id → record (see record)
	bucketHistory     = []byte("history")     // id 0x00 seq(8) n(2) → Event JSON
	bucketCredentials = []byte("credentials") // username → Credential JSON
	bucketMeta        = []byte("meta")        // "stats" → Stats JSON, "format" → version
)

// formatVersion is the database format this code writes: 2 adds the
// aggregates (aggregate.go). A format 1 file is migrated on its first
// writable open; opened read-only, its reports walk the devices.
const (
	formatVersion      = "2"
	formatNoAggregates = "1"
)

// DefaultHistoryLimit bounds each device's audit log.
const DefaultHistoryLimit = 100

// StoreOptions configures Open.
type StoreOptions struct {
	// ReadOnly opens the database for queries only; several readers may
	// share the file, but not with a writer.
	ReadOnly bool
	// Timeout is how long Open waits for another process to release the
	// file (default 1 s), after which it fails with ErrLocked.
	Timeout time.Duration
	// HistoryLimit bounds each device's audit log (default
	// DefaultHistoryLimit); older events are dropped.
	HistoryLimit int
	// NoSync skips fsync on commit: only for tests and throwaway
	// benchmarks, a crash may then lose acknowledged reports.
	NoSync bool
	// Now is the clock for credential creation times, for report ages
	// when ReportOptions.Now is nil and for the stale filter of Devices
	// (default time.Now).
	Now func() time.Time
}

// Store is the collector's bbolt database: the newest state of every
// device, their audit logs, the collector's counters and the broker
// credentials. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	opts StoreOptions
	mu   sync.Mutex // guards stats
	// applyMu serialises Apply from reading the counters to publishing
	// the new ones after the commit.
	applyMu sync.Mutex
	stats   Stats
	// agg: the file keeps aggregates (format 2); reports read them.
	agg bool
}

// Open opens or creates the fleet database at path.
func Open(path string, opts StoreOptions) (*Store, error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = DefaultHistoryLimit
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly,
		NoSync: opts.NoSync, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w (waited %v): query it through the running server with --server URL, or stop that process", path, ErrLocked, opts.Timeout)
		}
		return nil, fmt.Errorf("open %s: %w: %w", path, ErrDatabase, err)
	}
	s := &Store{db: db, path: path, opts: opts}
	if !opts.ReadOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range append([][]byte{bucketDevices, bucketHistory, bucketCredentials, bucketMeta, bucketDuplicates, bucketDuplicated}, aggBuckets...) {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			meta := tx.Bucket(bucketMeta)
			switch v := meta.Get([]byte("format")); string(v) {
			case formatVersion:
				return nil
			case "":
				if tx.Bucket(bucketDevices).Stats().KeyN == 0 {
					return meta.Put([]byte("format"), []byte(formatVersion))
				}
				fallthrough // devices without a format: the oldest files
			case formatNoAggregates:
				if err := buildAggregates(tx); err != nil {
					return fmt.Errorf("migrate to format %s: %w", formatVersion, err)
				}
				return meta.Put([]byte("format"), []byte(formatVersion))
			default:
				return fmt.Errorf("format %q, this lampi-pkg reads %q and %q: use a newer lampi-pkg", v, formatNoAggregates, formatVersion)
			}
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w: %w", path, ErrDatabase, err)
		}
	}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketDevices) == nil {
			return errors.New("not a fleet database (no devices bucket)")
		}
		if v := meta.Get([]byte("stats")); v != nil {
			if err := json.Unmarshal(v, &s.stats); err != nil {
				return fmt.Errorf("stats: %w", err)
			}
		}
		s.stats.Devices = tx.Bucket(bucketDevices).Stats().KeyN
		s.agg = string(meta.Get([]byte("format"))) == formatVersion
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w: %w", path, ErrDatabase, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Stats returns the collector's counters, kept across restarts.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// record is the stored form of one device: a fixed header that the ingest
// path reads without decoding JSON, then the state report exactly as the
// device sent it.
//
//	[0:8]   seq of the stored state (0 = none yet, or reset: ResetSeq)
//	[8:16]  unix ns the state was received
//	[16:24] unix ns of the last status message (0 = none)
//	[24]    1 if the last status was "online"
//	[25:33] fingerprint of packages, result, error and target
//	[33:]   state JSON
type record []byte

const recordHeader = 33

func (r record) seq() uint64         { return binary.BigEndian.Uint64(r[0:8]) }
func (r record) stateTime() int64    { return int64(binary.BigEndian.Uint64(r[8:16])) }
func (r record) statusTime() int64   { return int64(binary.BigEndian.Uint64(r[16:24])) }
func (r record) online() bool        { return r[24] == 1 }
func (r record) fingerprint() uint64 { return binary.BigEndian.Uint64(r[25:33]) }
func (r record) stateJSON() []byte   { return r[recordHeader:] }
func (r record) valid() bool         { return len(r) >= recordHeader }
func (r record) hasState() bool      { return r.valid() && len(r) > recordHeader }
func (r record) setStatus(t int64, online bool) {
	binary.BigEndian.PutUint64(r[16:24], uint64(t))
	r[24] = 0
	if online {
		r[24] = 1
	}
}

func newRecord(seq uint64, recv int64, fp uint64, js []byte, old record) record {
	r := make(record, recordHeader+len(js))
	binary.BigEndian.PutUint64(r[0:8], seq)
	binary.BigEndian.PutUint64(r[8:16], uint64(recv))
	if old.valid() {
		copy(r[16:25], old[16:25])
	}
	binary.BigEndian.PutUint64(r[25:33], fp)
	copy(r[recordHeader:], js)
	return r
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// device decodes a record into the API type.
func (r record) device(id string) (Device, error) {
	d := Device{ID: id, Online: r.online(), StatusTime: unixNano(r.statusTime())}
	if r.hasState() {
		if err := json.Unmarshal(r.stateJSON(), &d.State); err != nil {
			return d, fmt.Errorf("device %s: %w: stored state: %w", id, ErrDatabase, err)
		}
	}
	if d.State.Packages == nil {
		d.State.Packages = map[string]string{}
	}
	d.LastSeen = r.lastSeen()
	return d, nil
}

// lastSeen is the newest of the status and state receive times.
func (r record) lastSeen() time.Time {
	t := unixNano(r.statusTime())
	if st := unixNano(r.stateTime()); st.After(t) {
		t = st
	}
	return t
}

// devicePrefix is the history key prefix of one device.
func historyPrefix(id string) []byte {
	return append([]byte(id), 0)
}
