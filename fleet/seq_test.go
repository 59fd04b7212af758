package fleet

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// usAt is a seq as lampi-agent makes it: the clock in microseconds.
func usAt(t time.Time) uint64 { return uint64(t.UnixMicro()) }

// TestSeqFromTheFuture performs issue 14 §10: a report with seq 2⁶⁴−1
// made every later report of its device stale for ever. Reports beyond
// the collector's clock + MaxSeqAhead are now rejected (counted, not
// stored); small legacy counters and clock-based seqs stay valid.
func TestSeqFromTheFuture(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	rep := func(seq uint64, hi string) Message {
		return stateMsg(t, "lampA", state.State{Seq: seq, Time: t0, Device: "lampA", Packages: map[string]string{"hi": hi}}, t0)
	}
	for i, c := range []struct {
		msg  Message
		want Outcome
	}{
		{rep(5, "0.1"), OutcomeStored}, // an older agent's counter
		{rep(math.MaxUint64, "6.6.6"), OutcomeRejected},
		{rep(usAt(t0.AddDate(1, 0, 0)), "6.6.6"), OutcomeRejected},   // a year ahead
		{rep(usAt(t0.Add(MaxSeqAhead))+1, "6.6.6"), OutcomeRejected}, // just beyond
		{rep(6, "0.2"), OutcomeStored},                               // not pinned
		{rep(usAt(t0.Add(-time.Minute)), "0.3"), OutcomeStored},      // a new agent
		{rep(usAt(t0.Add(MaxSeqAhead)), "0.4"), OutcomeStored},       // a clock a day fast
		{rep(usAt(t0.Add(MaxSeqAhead))-1, "0.3"), OutcomeStale},
	} {
		out, err := s.Apply(state.DefaultPrefix, []Message{c.msg})
		if err != nil {
			t.Fatal(err)
		}
		if out[0] != c.want {
			t.Errorf("report %d: outcome %d, want %d", i, out[0], c.want)
		}
	}
	d, err := s.Device(t.Context(), "lampA")
	if err != nil || d.State.Packages["hi"] != "0.4" {
		t.Errorf("stored %+v %v, want hi 0.4", d.State, err)
	}
	h, _ := s.History(t.Context(), "lampA")
	for _, e := range h {
		if e.To == "6.6.6" {
			t.Errorf("a rejected report is in the history: %+v", e)
		}
	}
	if st := s.Stats(); st.Rejected != 3 || st.Stored != 4 || st.Stale != 1 || st.Received != 8 {
		t.Errorf("stats %+v, want 3 rejected, 4 stored, 1 stale", st)
	}
}

// TestSeqFromTheFutureOverMQTT: the same attack through the embedded
// broker and its direct collector, which logs it; the device's next
// normal report is stored.
func TestSeqFromTheFutureOverMQTT(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	var logs testutil.SyncBuffer
	url, _ := startDirectWith(t, s, CollectorOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, false)
	d, err := connectDevice(t.Context(), url, "lampA", deviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	now := time.Now()
	for _, seq := range []uint64{math.MaxUint64, usAt(now.AddDate(1, 0, 0)), usAt(now)} {
		// The direct collector has committed (or rejected) each report
		// when its PUBACK arrives.
		if err := d.publish(t.Context(), "lampA", mustEncode(t, state.State{Seq: seq, Time: now, Device: "lampA"})); err != nil {
			t.Fatal(err)
		}
	}
	if dev, err := s.Device(t.Context(), "lampA"); err != nil || dev.State.Seq != usAt(now) {
		t.Errorf("stored %+v %v, want the normal report", dev.State, err)
	}
	if st := s.Stats(); st.Rejected != 2 {
		t.Errorf("stats %+v, want 2 rejected", st)
	}
	if l := logs.String(); !strings.Contains(l, "device=lampA") || !strings.Contains(l, "seq=18446744073709551615") {
		t.Errorf("the rejection is not logged:\n%s", l)
	}
}

// pinBeforeTheFix stores a report with seq as the collector did before it
// rejected seqs from the future.
func pinBeforeTheFix(t *testing.T, s *Store, id string, seq uint64, hi string) {
	t.Helper()
	p := prepare(state.DefaultPrefix, stateMsg(t, id, state.State{Seq: seq, Time: t0, Device: id, Packages: map[string]string{"hi": hi}}, t0))
	p.outcome = OutcomeStored
	if _, err := s.applyPrepared([]prepared{p}); err != nil {
		t.Fatal(err)
	}
}

// TestResetSeq: a device pinned by seq 2⁶⁴−1 before the fix ignores every
// later report; ResetSeq forgets its seq, the next report is stored, and
// its history is kept in order (and trimmed oldest first).
func TestResetSeq(t *testing.T) {
	s := openTestStore(t, StoreOptions{HistoryLimit: 3})
	pinBeforeTheFix(t, s, "lampP", math.MaxUint64, "6.6.6")
	pinBeforeTheFix(t, s, "lampQ", math.MaxUint64, "6.6.6")
	rep := func(id string, seq uint64, hi string) Message {
		return stateMsg(t, id, state.State{Seq: seq, Time: t0, Device: id, Packages: map[string]string{"hi": hi}}, t0)
	}
	if out, _ := s.Apply(state.DefaultPrefix, []Message{rep("lampP", usAt(t0), "0.2")}); out[0] != OutcomeStale {
		t.Fatalf("outcome %d: the device is not pinned", out[0])
	}

	// All or nothing: an unknown id resets nothing.
	if err := s.ResetSeq(t.Context(), "lampP", "nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("reset with an unknown id: %v", err)
	}
	if out, _ := s.Apply(state.DefaultPrefix, []Message{rep("lampP", usAt(t0), "0.2")}); out[0] != OutcomeStale {
		t.Fatal("a failed reset changed the device")
	}

	if err := s.ResetSeq(t.Context(), "lampP"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Device(t.Context(), "lampP"); d.State.Packages["hi"] != "6.6.6" {
		t.Errorf("the last report is gone after the reset: %+v", d.State)
	}
	for i, hi := range []string{"0.2", "0.3", "0.4"} {
		if out, _ := s.Apply(state.DefaultPrefix, []Message{rep("lampP", usAt(t0)+uint64(i), hi)}); out[0] != OutcomeStored {
			t.Fatalf("report %s after the reset: outcome %d", hi, out[0])
		}
		if i == 0 {
			h, _ := s.History(t.Context(), "lampP")
			if len(h) != 2 || h[0].To != "6.6.6" || h[1].From != "6.6.6" || h[1].To != "0.2" {
				t.Errorf("history after the reset: %+v", h)
			}
		}
	}
	h, _ := s.History(t.Context(), "lampP")
	var got []string
	for _, e := range h {
		got = append(got, e.To)
	}
	if strings.Join(got, " ") != "0.2 0.3 0.4" {
		t.Errorf("history %v, want the 3 newest, oldest first", got)
	}
	// The other device is still pinned.
	if out, _ := s.Apply(state.DefaultPrefix, []Message{rep("lampQ", usAt(t0), "0.2")}); out[0] != OutcomeStale {
		t.Errorf("lampQ was reset too")
	}
}
