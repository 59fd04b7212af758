package pgstore

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/fleet/fleettest"
)

// testWriterGotThereFirst: another writer commits a report or a status
// of a device after a batch read the device's row and before it writes
// it. Whichever seq is higher survives, the audit log is the one of the
// reports in seq order, and the aggregates stay those of a scan: the
// row's compare-and-swap fails and the device is read and applied again.
// Each case runs with the stored fingerprint kept (the path that does
// not read the row) and changed.
func testWriterGotThereFirst(t *testing.T) {
	dsn := newDB(t)
	s := openTest(t, dsn, Options{})
	other := openTest(t, dsn, Options{})
	at := fleettest.T0
	report := func(id string, seq uint64, hi string) fleet.Message {
		st := state.State{Seq: seq, Time: at, Device: id, Packages: map[string]string{"hi": hi}}
		at = at.Add(time.Second)
		return fleettest.StateMsg(t, id, st, at)
	}
	status := func(id, s string) fleet.Message {
		at = at.Add(time.Second)
		return fleet.Message{Topic: state.StatusTopic(state.DefaultPrefix, id), Payload: []byte(s), Received: at}
	}
	apply := func(st *Store, msgs ...fleet.Message) []fleet.Outcome {
		t.Helper()
		out, err := st.Apply(state.DefaultPrefix, msgs)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// meanwhile makes the next Apply of s run msgs through the other
	// writer between its read and its write.
	meanwhile := func(msgs ...fleet.Message) {
		s.beforeWrite = func() {
			s.beforeWrite = nil
			apply(other, msgs...)
		}
	}
	for _, tc := range []struct {
		name              string
		seed, first, ours []string // hi of seq 1; the other's report; ours
		firstSeq, oursSeq uint64
		want              fleet.Outcome
		wantSeq           uint64
		wantHi            string
		wantHistory       []string
	}{
		{"newer first, same versions", []string{"0.1"}, []string{"0.1"}, []string{"0.1"}, 3, 2, fleet.OutcomeStale, 3, "0.1",
			[]string{"hi=0.1"}},
		{"newer first, versions change", []string{"0.1"}, []string{"0.3"}, []string{"0.2"}, 3, 2, fleet.OutcomeStale, 3, "0.3",
			[]string{"hi=0.1", "hi 0.1→0.3"}},
		{"older first, same versions", []string{"0.1"}, []string{"0.1"}, []string{"0.1"}, 2, 3, fleet.OutcomeStored, 3, "0.1",
			[]string{"hi=0.1"}},
		{"older first, versions change", []string{"0.1"}, []string{"0.2"}, []string{"0.3"}, 2, 3, fleet.OutcomeStored, 3, "0.3",
			[]string{"hi=0.1", "hi 0.1→0.2", "hi 0.2→0.3"}},
		{"older first changes versions, ours keeps them", []string{"0.1"}, []string{"0.2"}, []string{"0.1"}, 2, 3, fleet.OutcomeStored, 3, "0.1",
			[]string{"hi=0.1", "hi 0.1→0.2", "hi 0.2→0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("race%d", at.Unix())
			apply(s, report(id, 1, tc.seed[0]), status(id, state.Online))
			meanwhile(report(id, tc.firstSeq, tc.first[0]))
			if out := apply(s, report(id, tc.oursSeq, tc.ours[0])); !reflect.DeepEqual(out, []fleet.Outcome{tc.want}) {
				t.Errorf("outcome %v, want %v", out, tc.want)
			}
			d, err := s.Device(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if d.State.Seq != tc.wantSeq || d.State.Packages["hi"] != tc.wantHi {
				t.Errorf("stored seq %d hi %s, want seq %d hi %s", d.State.Seq, d.State.Packages["hi"], tc.wantSeq, tc.wantHi)
			}
			if got := historyText(t, s, id); !reflect.DeepEqual(got, tc.wantHistory) {
				t.Errorf("history %q, want %q", got, tc.wantHistory)
			}
			checkAggregates(t, s)
		})
	}
	// Statuses: both writers see the device go offline; it is counted
	// offline once.
	t.Run("status", func(t *testing.T) {
		id := "race-status"
		apply(s, report(id, 1, "0.1"), status(id, state.Online))
		meanwhile(status(id, state.Offline))
		apply(s, status(id, state.Offline))
		checkAggregates(t, s)
		meanwhile(status(id, state.Online))
		apply(s, status(id, state.Offline), report(id, 2, "0.1"))
		checkAggregates(t, s)
		d, err := s.Device(t.Context(), id)
		if err != nil || d.Online || d.State.Seq != 2 {
			t.Errorf("device online %v seq %d (%v), want offline, seq 2", d.Online, d.State.Seq, err)
		}
	})
	// A device another writer creates meanwhile.
	t.Run("created meanwhile", func(t *testing.T) {
		id := "race-new"
		s.beforeWrite = func() {
			s.beforeWrite = nil
			apply(other, report(id, 5, "0.5"))
		}
		if out := apply(s, report("race-other", 1, "0.1"), report(id, 4, "0.4")); !reflect.DeepEqual(out, []fleet.Outcome{fleet.OutcomeStored, fleet.OutcomeStale}) {
			t.Errorf("outcomes %v", out)
		}
		checkAggregates(t, s)
	})
}

// historyText is a device's audit log, one line per event: the first
// report's versions (pkg=v) or a change (pkg old→new).
func historyText(t *testing.T, s *Store, id string) []string {
	t.Helper()
	evs, err := s.History(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		switch {
		case e.From == "" && e.Package != "":
			out = append(out, e.Package+"="+e.To)
		case e.Package != "":
			out = append(out, e.Package+" "+e.From+"→"+e.To)
		default:
			out = append(out, e.Result)
		}
	}
	return out
}

// checkAggregates compares the report's counts, kept as reports arrive,
// with a scan of every device.
func checkAggregates(t *testing.T, s *Store) {
	t.Helper()
	devs, err := s.Devices(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Report(t.Context(), fleet.ReportOptions{Now: func() time.Time { return fleettest.T0 }})
	if err != nil {
		t.Fatal(err)
	}
	online := 0
	scan := map[string]map[string]int{}
	for _, d := range devs {
		if d.Online {
			online++
		}
		for p, v := range d.State.Packages {
			if scan[p] == nil {
				scan[p] = map[string]int{}
			}
			scan[p][v]++
		}
	}
	kept := map[string]map[string]int{}
	for _, p := range rep.Packages {
		kept[p.Name] = map[string]int{}
		for _, v := range p.Versions {
			kept[p.Name][v.Version] = v.Count
		}
	}
	if rep.Devices != len(devs) || rep.Online != online || !reflect.DeepEqual(kept, scan) {
		t.Errorf("report: %d devices, %d online, versions %v; scan: %d devices, %d online, versions %v",
			rep.Devices, rep.Online, kept, len(devs), online, scan)
	}
}
