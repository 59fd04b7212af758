//go:build !race

// The aggregate model tests: a random fleet reports step by step and the
// store's aggregates are compared with a full scan after every step. Pure
// CPU in one goroutine, so the race detector adds nothing and slows them
// tenfold (46 s and 21 s): "make test" runs them in its second pass,
// without -race (HEAVY_TESTS); "go test -short" runs one seed of the first.

package fleet

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

func TestAggregatesMatchScan(t *testing.T) {
	t.Parallel()
	seeds := uint64(3)
	if testing.Short() {
		seeds = 1 // the fast edit loop: one fleet, the same 60 steps
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			clock := t0
			s := openTestStore(t, StoreOptions{NoSync: true, Now: func() time.Time { return clock }})
			f := newAggFleet(t, seed, s, &clock, 40+int(seed)*30)
			for i := range 60 {
				f.step()
				clock = f.now
				compareWithScan(t, s, f.now, f.rng)
				if i%20 == 19 {
					checkRebuild(t, s)
				}
			}
			checkRebuild(t, s)
		})
	}
}

// TestAggregatesMigration: a format 1 file (no aggregates, the old
// fingerprints) is read by walking it when opened read-only, and gets its
// aggregates on the first writable open; reports that change only what
// the old fingerprint did not cover (candidates, attempts, release date)
// then still change the aggregates.
func TestAggregatesMigration(t *testing.T) {
	t.Parallel()
	clock := t0
	path := filepath.Join(t.TempDir(), "fleet.db")
	s, err := Open(path, StoreOptions{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	f := newAggFleet(t, 7, s, &clock, 60)
	for range 80 {
		f.step()
	}
	clock = f.now
	want, err := s.Report(t.Context(), ReportOptions{Newest: map[string]string{"hi": "0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	// Make it a format 1 file.
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range aggBuckets {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		devs := tx.Bucket(bucketDevices)
		c := devs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r := record(slices.Clone(v))
			if st := stateOf(r); st != nil {
				binary.BigEndian.PutUint64(r[25:33], formatOneFingerprint(st))
			}
			if err := devs.Put(k, r); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put([]byte("format"), []byte(formatNoAggregates))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro, err := Open(path, StoreOptions{ReadOnly: true, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if ro.agg {
		t.Fatal("a format 1 file opened read-only claims aggregates")
	}
	got, err := ro.Report(t.Context(), ReportOptions{Newest: map[string]string{"hi": "0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read-only format 1 report:\n got %+v\nwant %+v", got, want)
	}
	ro.Close()

	s, err = Open(path, StoreOptions{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.agg {
		t.Fatal("no aggregates after a writable open of a format 1 file")
	}
	checkRebuild(t, s)
	compareWithScan(t, s, clock, f.rng)
	// Only what format 1 did not fingerprint changes now.
	f.s = s
	var msgs []Message
	for id, st := range f.last {
		st = f.tweak(st)
		f.seq[id]++
		st.Seq = f.seq[id]
		f.last[id] = st
		msgs = append(msgs, Message{Topic: state.StateTopic(state.DefaultPrefix, id), Payload: mustEncode(t, st), Received: clock})
	}
	if _, err := s.Apply(state.DefaultPrefix, msgs); err != nil {
		t.Fatal(err)
	}
	compareWithScan(t, s, clock, f.rng)
	checkRebuild(t, s)
	for range 40 {
		f.step()
		clock = f.now
		compareWithScan(t, s, clock, f.rng)
	}
	checkRebuild(t, s)
}
