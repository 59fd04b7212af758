package fleet

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// The aggregates are judged against the scan they replace: on randomized
// fleets, after every batch, every report and version count read from the
// aggregates must equal the one from walking the devices, and the
// aggregates kept up to date must equal the ones rebuilt from scratch.

// Package names include one that is another's prefix and ones with bytes
// a separator-based key would trip on.
var (
	aggPackages = []string{"hi", "hi2", "lampi-service", "a\x00b", "a"}
	aggVersions = []string{"0.1", "0.2", "0.10", "1:0.1", "0.2~rc1", "1.0", "1.0-1", "0.2\x00x"}
	aggResults  = []string{"", state.ResultUpToDate, state.ResultUpdated, state.ResultDeferred, state.ResultFailed, state.ResultRolledBack, state.ResultHeldBack}
)

type aggFleet struct {
	t     *testing.T
	rng   *rand.Rand
	s     *Store
	now   time.Time
	ids   []string
	seq   map[string]uint64
	last  map[string]state.State
	creds []string
}

func newAggFleet(t *testing.T, seed uint64, s *Store, clock *time.Time, devices int) *aggFleet {
	f := &aggFleet{t: t, rng: rand.New(rand.NewPCG(seed, 1)), s: s, now: *clock,
		seq: map[string]uint64{}, last: map[string]state.State{}}
	for i := range devices {
		f.ids = append(f.ids, fmt.Sprintf("lamp%03d", i))
	}
	return f
}

func (f *aggFleet) pick(xs []string) string { return xs[f.rng.IntN(len(xs))] }

func (f *aggFleet) randomTime() time.Time {
	switch f.rng.IntN(5) {
	case 0:
		return time.Time{}
	case 1:
		return time.Date(1960, 3, 1, 0, 0, 0, 0, time.UTC) // before 1970
	default:
		return f.now.Add(-time.Duration(f.rng.IntN(40*24)) * time.Hour).Add(time.Duration(f.rng.IntN(1e9)))
	}
}

func (f *aggFleet) randomState(id string) state.State {
	r := f.rng
	st := state.State{Device: id, Time: f.now, Agent: "0.3.0", Arch: "armhf", Packages: map[string]string{},
		Result: f.pick(aggResults), LastCheck: f.randomTime(), ReleaseDate: f.randomTime()}
	for _, p := range aggPackages {
		if r.IntN(3) > 0 {
			st.Packages[p] = f.pick(aggVersions)
		}
		if r.IntN(3) == 0 {
			if st.Candidates == nil {
				st.Candidates = map[string]state.Candidate{}
			}
			st.Candidates[p] = state.Candidate{Version: f.pick(aggVersions), Phased: r.IntN(101), Eligible: r.IntN(2) == 0, Checks: r.IntN(5)}
		}
		if r.IntN(3) == 0 {
			if st.Attempts == nil {
				st.Attempts = map[string]state.Attempt{}
			}
			st.Attempts[p] = state.Attempt{Version: f.pick(aggVersions), Result: f.pick([]string{state.ResultUpdated, state.ResultFailed, state.ResultRolledBack}),
				Health: f.pick([]string{"", state.HealthPassed, state.HealthFailed}), Time: f.now}
		}
	}
	if failedResult(st.Result) {
		st.Error = f.pick([]string{"postinst exited 1", "health check failed"})
		st.Target = map[string]string{"hi": f.pick(aggVersions)}
	}
	return st
}

// tweak changes one part of a device's last state that only the
// aggregates read (a candidate, an attempt, the release date).
func (f *aggFleet) tweak(st state.State) state.State {
	st.Candidates, st.Attempts = maps.Clone(st.Candidates), maps.Clone(st.Attempts)
	switch f.rng.IntN(3) {
	case 0:
		if st.Candidates == nil {
			st.Candidates = map[string]state.Candidate{}
		}
		c := st.Candidates["hi"]
		c.Version, c.Eligible, c.Checks = f.pick(aggVersions), !c.Eligible, c.Checks+1
		st.Candidates["hi"] = c
	case 1:
		if st.Attempts == nil {
			st.Attempts = map[string]state.Attempt{}
		}
		st.Attempts["hi"] = state.Attempt{Version: f.pick(aggVersions), Result: state.ResultFailed, Health: state.HealthFailed, Time: f.now}
	default:
		st.ReleaseDate = f.randomTime()
	}
	return st
}

// message returns one random message of a random device.
func (f *aggFleet) message() Message {
	id := f.pick(f.ids)
	at := f.now
	switch op := f.rng.IntN(10); {
	case op < 3:
		retained := f.rng.IntN(3) == 0
		body := f.pick([]string{state.Online, state.Offline})
		return Message{Topic: state.StatusTopic(state.DefaultPrefix, id), Payload: []byte(body), Retained: retained, Received: at}
	case op == 3:
		return Message{Topic: state.StateTopic(state.DefaultPrefix, id), Payload: []byte(`{"seq":`), Received: at}
	default:
		var st state.State
		last, ok := f.last[id]
		switch {
		case ok && op < 6: // periodic: only seq and time change
			st = last
		case ok && op < 8:
			st = f.tweak(last)
		default:
			st = f.randomState(id)
		}
		f.seq[id]++
		st.Seq = f.seq[id]
		if ok && f.rng.IntN(8) == 0 && st.Seq > 2 {
			st.Seq -= 2 // late: stale
		} else {
			f.last[id] = st
		}
		st.Time = at
		return Message{Topic: state.StateTopic(state.DefaultPrefix, id), Payload: mustEncode(f.t, st), Received: at}
	}
}

// step applies one batch and, now and then, resets a device's seq or
// removes a credential.
func (f *aggFleet) step() {
	t := f.t
	f.now = f.now.Add(time.Duration(f.rng.IntN(7200)) * time.Second)
	msgs := make([]Message, 1+f.rng.IntN(12))
	for i := range msgs {
		msgs[i] = f.message()
	}
	if _, err := f.s.Apply(state.DefaultPrefix, msgs); err != nil {
		t.Fatal(err)
	}
	switch f.rng.IntN(10) {
	case 0:
		id := f.pick(f.ids)
		if _, ok := f.last[id]; ok {
			if err := f.s.ResetSeq(t.Context(), id); err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			f.seq[id] = 0
		}
	case 1:
		id := f.pick(f.ids)
		if _, err := f.s.IssueCredentials(t.Context(), RoleDevice, id); err == nil {
			f.creds = append(f.creds, id)
		}
	case 2:
		if len(f.creds) > 0 {
			if err := f.s.RemoveCredential(t.Context(), f.creds[0]); err != nil {
				t.Fatal(err)
			}
			f.creds = f.creds[1:]
		}
	}
}

// compareWithScan checks every report and version count the aggregates
// give against the scan's.
func compareWithScan(t *testing.T, s *Store, now time.Time, rng *rand.Rand) {
	t.Helper()
	ctx := t.Context()
	newest := func() map[string]string {
		m := map[string]string{}
		for _, p := range aggPackages {
			if rng.IntN(3) > 0 {
				m[p] = aggVersions[rng.IntN(len(aggVersions))]
			}
		}
		return m
	}
	var opts []ReportOptions
	for _, at := range []time.Time{now, now.Add(30 * 24 * time.Hour)} {
		clock := func() time.Time { return at }
		opts = append(opts,
			ReportOptions{Now: clock},
			ReportOptions{Now: clock, Newest: newest()},
			ReportOptions{Now: clock, Stale: time.Hour, StaleView: time.Hour},
			ReportOptions{Now: clock, Stale: 48 * time.Hour, StaleView: -1, Newest: newest()},
			ReportOptions{Now: clock, StaleView: 20 * 24 * time.Hour},
		)
		for _, p := range append(aggPackages, "absent") {
			opts = append(opts, ReportOptions{Now: clock, Package: p, Newest: newest(), Stale: time.Duration(rng.IntN(3)) * 24 * time.Hour})
		}
	}
	// The scan: every device once (reportScan and versionStatsScan walk
	// them the same way, once per question).
	devs, err := s.Devices(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		got, err := s.Report(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		want := BuildReport(devs, o, o.Now())
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("report %+v at %v from the aggregates differs from the scan:\n got %+v\nwant %+v", o, o.Now(), got, want)
		}
	}
	for _, p := range append(aggPackages, "absent") {
		for _, v := range aggVersions {
			for _, stuck := range []int{0, 1, 3} {
				q := VersionQuery{Package: p, Version: v, StuckChecks: stuck}
				got, err := s.VersionStats(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if want := CountVersion(devs, q); got != want {
					t.Fatalf("version stats %+v: aggregates %+v, scan %+v", q, got, want)
				}
			}
		}
	}
}

// dumpAggregates returns every key and value of the aggregate buckets.
func dumpAggregates(tx *bolt.Tx) map[string]string {
	out := map[string]string{}
	for _, name := range aggBuckets {
		tx.Bucket(name).ForEach(func(k, v []byte) error {
			out[string(name)+"/"+string(k)] = string(v)
			return nil
		})
	}
	return out
}

// checkRebuild compares the aggregates with the ones built from scratch.
func checkRebuild(t *testing.T, s *Store) {
	t.Helper()
	errRollback := errors.New("rollback")
	err := s.db.Update(func(tx *bolt.Tx) error {
		kept := dumpAggregates(tx)
		if err := buildAggregates(tx); err != nil {
			return err
		}
		if built := dumpAggregates(tx); !maps.Equal(kept, built) {
			for k, v := range built {
				if kept[k] != v {
					t.Errorf("aggregate %q: kept %x, rebuilt %x", k, kept[k], v)
				}
			}
			for k, v := range kept {
				if _, ok := built[k]; !ok {
					t.Errorf("aggregate %q: kept %x, not in the rebuilt ones", k, v)
				}
			}
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
}

// formatOneFingerprint is the fingerprint of format 1 files: packages,
// target, result and error only.
func formatOneFingerprint(s *state.State) uint64 {
	h := fnv.New64a()
	put := func(m map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			h.Write([]byte(k + "\x00" + m[k] + "\x00"))
		}
		h.Write([]byte{1})
	}
	put(s.Packages)
	put(s.Target)
	h.Write([]byte(s.Result + "\x00" + s.Error))
	return h.Sum64()
}
