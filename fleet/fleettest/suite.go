// Package fleettest holds the behaviour tests every fleet database
// passes — the bbolt fleet.Store and the PostgreSQL store of
// fleet/pgstore run the same suite.
package fleettest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// Store is a fleet database under test.
type Store interface {
	fleet.DB
	Apply(prefix string, msgs []fleet.Message) ([]fleet.Outcome, error)
}

// Options are what the suite sets when it opens a store.
type Options struct {
	Now          func() time.Time
	HistoryLimit int
}

// Opener opens an empty store for one test. another, when the database
// can be written by several processes, opens a second handle on the same
// database (as a second collector would); otherwise it returns s.
type Opener func(t *testing.T, o Options) (s Store, another func() Store)

// T0 is the suite's reference time.
var T0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Run runs every behaviour test against the stores open makes.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"KeepsNewestSeq", keepsNewestSeq},
		{"RefusesSpoofedAndInvalid", refusesSpoofedAndInvalid},
		{"StatusAndRetainedRedelivery", statusAndRetainedRedelivery},
		{"HistoryResultsAndLimit", historyResultsAndLimit},
		{"Report", report},
		{"Credentials", credentials},
		{"ResetSeq", resetSeq},
		{"NewestSeqWinsAcrossWriters", newestSeqWinsAcrossWriters},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func encode(t testing.TB, s state.State) []byte {
	b, err := state.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// StateMsg is a state report of topicID received at at.
func StateMsg(t testing.TB, topicID string, s state.State, at time.Time) fleet.Message {
	return fleet.Message{Topic: state.StateTopic(state.DefaultPrefix, topicID), Payload: encode(t, s), Received: at}
}

// TestState is the report device n sends with sequence seq: hi 0.1 on
// every fourth device, 0.2 on the others; device 7 (mod 100) failed.
func TestState(id string, n int, seq uint64) state.State {
	s := state.State{Seq: seq, Time: time.Date(2026, 11, 22, 10, 0, int(seq%60), 0, time.UTC), Device: id,
		Agent: "0.3.0", Arch: "armhf", Result: state.ResultUpToDate,
		Packages: map[string]string{"hi": "0.2", "lampi-service": fmt.Sprintf("1.%d", seq)}}
	if n%4 == 0 {
		s.Packages["hi"] = "0.1"
	}
	if n%100 == 7 {
		s.Result, s.Error = state.ResultFailed, "postinst exited 1"
		s.Target = map[string]string{"hi": "0.3"}
	}
	return s
}

func keepsNewestSeq(t *testing.T, open Opener) {
	s, _ := open(t, Options{})
	a := func(seq uint64, hi string) state.State {
		return state.State{Seq: seq, Time: T0.Add(time.Duration(seq) * time.Second), Device: "lamp1", Packages: map[string]string{"hi": hi}}
	}
	out, err := s.Apply(state.DefaultPrefix, []fleet.Message{
		StateMsg(t, "lamp1", a(1, "0.1"), T0),
		StateMsg(t, "lamp1", a(3, "0.3"), T0.Add(time.Second)),
		StateMsg(t, "lamp1", a(2, "0.2"), T0.Add(2*time.Second)), // late: ignored
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []fleet.Outcome{fleet.OutcomeStored, fleet.OutcomeStored, fleet.OutcomeStale}; !reflect.DeepEqual(out, want) {
		t.Errorf("outcomes %v, want %v", out, want)
	}
	out, err = s.Apply(state.DefaultPrefix, []fleet.Message{StateMsg(t, "lamp1", a(3, "0.9"), T0.Add(3*time.Second))})
	if err != nil || out[0] != fleet.OutcomeStale {
		t.Fatalf("%v %v", out, err)
	}
	d, err := s.Device(t.Context(), "lamp1")
	if err != nil {
		t.Fatal(err)
	}
	if d.State.Seq != 3 || d.State.Packages["hi"] != "0.3" || !d.LastSeen.Equal(T0.Add(time.Second)) {
		t.Errorf("device %+v", d)
	}
	h, err := s.History(t.Context(), "lamp1")
	if err != nil {
		t.Fatal(err)
	}
	want := []fleet.Event{
		{Time: T0.Add(time.Second), Seq: 1, Package: "hi", To: "0.1"},
		{Time: T0.Add(3 * time.Second), Seq: 3, Package: "hi", From: "0.1", To: "0.3"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("history\n got %+v\nwant %+v", h, want)
	}
	if st := s.Stats(); st != (fleet.Stats{Received: 4, Stored: 2, Stale: 2, Devices: 1}) {
		t.Errorf("stats %+v", st)
	}
	rep, err := s.Report(t.Context(), fleet.ReportOptions{Now: func() time.Time { return T0 }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Packages) != 1 || !reflect.DeepEqual(rep.Packages[0].Versions, []fleet.VersionShare{{Version: "0.3", Count: 1, Share: 1}}) {
		t.Errorf("report packages %+v", rep.Packages)
	}
}

func refusesSpoofedAndInvalid(t *testing.T, open Opener) {
	s, _ := open(t, Options{})
	spoof := state.State{Seq: 1, Time: T0, Device: "lampA", Packages: map[string]string{"hi": "6.6.6"}}
	out, err := s.Apply(state.DefaultPrefix, []fleet.Message{
		StateMsg(t, "lampB", spoof, T0),
		{Topic: "devices/lampB/state", Payload: []byte(`{"seq":1,`), Received: T0},
		{Topic: "devices/lampB/status", Payload: []byte(`maybe`), Received: T0},
		{Topic: "devices/lampB/other", Payload: []byte(`x`), Received: T0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []fleet.Outcome{fleet.OutcomeSpoofed, fleet.OutcomeInvalid, fleet.OutcomeInvalid, fleet.OutcomeInvalid}; !reflect.DeepEqual(out, want) {
		t.Errorf("outcomes %v, want %v", out, want)
	}
	if _, err := s.Device(t.Context(), "lampB"); !errors.Is(err, fleet.ErrNotFound) {
		t.Errorf("spoofed device stored: %v", err)
	}
	if _, err := s.History(t.Context(), "lampB"); !errors.Is(err, fleet.ErrNotFound) {
		t.Errorf("history of a device that never reported: %v", err)
	}
	if st := s.Stats(); st.Spoofed != 1 || st.Invalid != 3 || st.Stored != 0 || st.Devices != 0 {
		t.Errorf("stats %+v", st)
	}
}

func statusAndRetainedRedelivery(t *testing.T, open Opener) {
	s, _ := open(t, Options{})
	st := func(p string, retained bool, at time.Time) fleet.Message {
		return fleet.Message{Topic: "devices/lamp1/status", Payload: []byte(p), Retained: retained, Received: at}
	}
	if _, err := s.Apply("devices", []fleet.Message{st("online", false, T0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply("devices", []fleet.Message{st("online", true, T0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	d, _ := s.Device(t.Context(), "lamp1")
	if !d.Online || !d.StatusTime.Equal(T0) {
		t.Errorf("after retained re-delivery: %+v", d)
	}
	if _, err := s.Apply("devices", []fleet.Message{st("offline", false, T0.Add(2*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	d, _ = s.Device(t.Context(), "lamp1")
	if d.Online || !d.LastSeen.Equal(T0.Add(2*time.Hour)) {
		t.Errorf("after will: %+v", d)
	}
	rep, _ := s.Report(t.Context(), fleet.ReportOptions{Now: func() time.Time { return T0.Add(3 * time.Hour) }})
	if rep.Devices != 1 || rep.Offline != 1 || len(rep.OfflineDevices) != 1 || rep.OfflineDevices[0].Age != time.Hour {
		t.Errorf("report %+v", rep)
	}
}

func historyResultsAndLimit(t *testing.T, open Opener) {
	s, _ := open(t, Options{HistoryLimit: 5})
	var msgs []fleet.Message
	for seq := uint64(1); seq <= 10; seq++ {
		st := state.State{Seq: seq, Time: T0, Device: "lamp1", Packages: map[string]string{"hi": fmt.Sprintf("0.%d", seq)}}
		if seq == 10 {
			st.Packages["hi"] = "0.9"
			st.Result, st.Error, st.Target = state.ResultRolledBack, "health check failed", map[string]string{"hi": "0.10"}
		}
		msgs = append(msgs, StateMsg(t, "lamp1", st, T0))
	}
	if _, err := s.Apply("devices", msgs); err != nil {
		t.Fatal(err)
	}
	h, err := s.History(t.Context(), "lamp1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 5 {
		t.Fatalf("history has %d events, want 5: %+v", len(h), h)
	}
	last := h[4]
	if last.Result != state.ResultRolledBack || last.Error != "health check failed" || last.Target["hi"] != "0.10" || h[3].To != "0.9" {
		t.Errorf("history %+v", h)
	}
}

func report(t *testing.T, open Opener) {
	s, _ := open(t, Options{})
	var msgs []fleet.Message
	for i := range 8 {
		id := fmt.Sprintf("lamp%d", i)
		msgs = append(msgs, StateMsg(t, id, TestState(id, i, 1), T0))
		status := "online"
		if i >= 6 {
			status = "offline"
		}
		msgs = append(msgs, fleet.Message{Topic: state.StatusTopic("devices", id), Payload: []byte(status), Received: T0.Add(time.Duration(i) * time.Hour)})
	}
	// A device with another package only, and a stale view.
	other := state.State{Seq: 1, Time: T0, Device: "lampX", Packages: map[string]string{"other": "1"}, ReleaseDate: T0.Add(-30 * 24 * time.Hour)}
	msgs = append(msgs, StateMsg(t, "lampX", other, T0))
	if _, err := s.Apply("devices", msgs); err != nil {
		t.Fatal(err)
	}
	at := func() time.Time { return T0.Add(10 * time.Hour) }
	rep, err := s.Report(t.Context(), fleet.ReportOptions{Newest: map[string]string{"hi": "0.2"}, Now: at})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Devices != 9 || rep.Online != 6 || rep.Offline != 3 {
		t.Errorf("counts %+v", rep)
	}
	if len(rep.Packages) != 3 {
		t.Fatalf("packages %+v", rep.Packages)
	}
	hi := rep.Packages[0]
	if hi.Name != "hi" || hi.Installed != 8 || hi.UpToDate != 6 || !reflect.DeepEqual(hi.Behind, []string{"lamp0", "lamp4"}) ||
		!reflect.DeepEqual(hi.Versions, []fleet.VersionShare{{Version: "0.2", Count: 6, Share: 0.75}, {Version: "0.1", Count: 2, Share: 0.25}}) {
		t.Errorf("hi %+v", hi)
	}
	if len(rep.OfflineDevices) != 3 || rep.OfflineDevices[0].ID != "lamp6" || rep.OfflineDevices[0].Age != 4*time.Hour {
		t.Errorf("offline %+v", rep.OfflineDevices)
	}
	if len(rep.FailedDevices) != 1 || rep.FailedDevices[0].ID != "lamp7" || rep.FailedDevices[0].Error != "postinst exited 1" {
		t.Errorf("failed %+v", rep.FailedDevices)
	}
	if len(rep.StaleViewDevices) != 1 || rep.StaleViewDevices[0].ID != "lampX" || rep.StaleViewDevices[0].ViewAge != 30*24*time.Hour+10*time.Hour {
		t.Errorf("stale view %+v", rep.StaleViewDevices)
	}
	// One package, --stale 3h30m: lamp7 (seen 3 h before) drops out of
	// the offline list, lampX (no hi) out of every count.
	rep, _ = s.Report(t.Context(), fleet.ReportOptions{Package: "hi", Stale: 210 * time.Minute, Now: at})
	if rep.Devices != 8 || rep.Offline != 2 || len(rep.OfflineDevices) != 1 || rep.OfflineDevices[0].ID != "lamp6" ||
		len(rep.Packages) != 1 || len(rep.StaleViewDevices) != 0 {
		t.Errorf("stale report %+v", rep)
	}
	// Devices agree with the report; a new version moves the counts.
	devs, err := s.Devices(t.Context(), 0)
	if err != nil || len(devs) != 9 || devs[0].ID != "lamp0" {
		t.Fatalf("devices %d %v", len(devs), err)
	}
	upd := TestState("lamp0", 0, 2)
	upd.Packages["hi"] = "0.2"
	if _, err := s.Apply("devices", []fleet.Message{StateMsg(t, "lamp0", upd, T0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	rep, _ = s.Report(t.Context(), fleet.ReportOptions{Newest: map[string]string{"hi": "0.2"}, Now: at})
	if hi := rep.Packages[0]; !reflect.DeepEqual(hi.Behind, []string{"lamp4"}) || hi.Versions[0].Count != 7 || hi.Installed != 8 {
		t.Errorf("after an update: %+v", hi)
	}
	all, err := s.Devices(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := fleet.BuildReport(all, fleet.ReportOptions{Newest: map[string]string{"hi": "0.2"}, Now: at}, at()); !reflect.DeepEqual(got, rep) {
		t.Errorf("report differs from BuildReport over Devices:\n got %+v\nwant %+v", rep, got)
	}
	vs, err := s.VersionStats(t.Context(), fleet.VersionQuery{Package: "hi", Version: "0.2"})
	if err != nil || vs.Devices != 8 || vs.Updated != 7 {
		t.Errorf("version stats %+v %v", vs, err)
	}
}

func credentials(t *testing.T, open Opener) {
	s, _ := open(t, Options{Now: func() time.Time { return T0 }})
	iss, err := s.IssueCredentials(t.Context(), fleet.RoleDevice, "lamp1", "lamp2")
	if err != nil {
		t.Fatal(err)
	}
	if len(iss) != 2 || len(iss[0].Secret) < 40 || iss[0].Secret == iss[1].Secret {
		t.Fatalf("issued %+v", iss)
	}
	if role, ok := s.Authenticate("lamp1", iss[0].Secret); !ok || role != fleet.RoleDevice {
		t.Error("valid secret refused")
	}
	if _, ok := s.Authenticate("lamp1", iss[1].Secret); ok {
		t.Error("other device's secret accepted")
	}
	if _, ok := s.Authenticate("nobody", ""); ok {
		t.Error("unknown user accepted")
	}
	if _, err := s.IssueCredentials(t.Context(), fleet.RoleDevice, "lamp3", "lamp1"); !errors.Is(err, fleet.ErrExists) {
		t.Errorf("re-issue: %v", err)
	}
	if _, ok := s.Authenticate("lamp3", ""); ok {
		t.Error("half-issued batch stored")
	}
	if _, err := s.IssueCredentials(t.Context(), fleet.RoleDevice, "../x"); err == nil {
		t.Error("bad id accepted")
	}
	list, _ := s.Credentials(t.Context())
	if len(list) != 2 || list[0].ID != "lamp1" || list[0].Hash != nil || !list[0].Created.Equal(T0) {
		t.Errorf("list %+v", list)
	}
	if err := s.RemoveCredential(t.Context(), "lamp1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate("lamp1", iss[0].Secret); ok {
		t.Error("removed credential accepted")
	}
	if err := s.RemoveCredential(t.Context(), "lamp1"); !errors.Is(err, fleet.ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
}

func resetSeq(t *testing.T, open Opener) {
	s, _ := open(t, Options{HistoryLimit: 3})
	rep := func(seq uint64, hi string) fleet.Message {
		return StateMsg(t, "lampP", state.State{Seq: seq, Time: T0, Device: "lampP", Packages: map[string]string{"hi": hi}}, T0)
	}
	if _, err := s.Apply(state.DefaultPrefix, []fleet.Message{rep(1000, "6.6.6")}); err != nil {
		t.Fatal(err)
	}
	if out, _ := s.Apply(state.DefaultPrefix, []fleet.Message{rep(5, "0.2")}); out[0] != fleet.OutcomeStale {
		t.Fatalf("outcome %d: a lower seq was stored", out[0])
	}
	if err := s.ResetSeq(t.Context(), "lampP", "nope"); !errors.Is(err, fleet.ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("reset with an unknown id: %v", err)
	}
	if out, _ := s.Apply(state.DefaultPrefix, []fleet.Message{rep(5, "0.2")}); out[0] != fleet.OutcomeStale {
		t.Fatal("a failed reset changed the device")
	}
	if err := s.ResetSeq(t.Context(), "lampP"); err != nil {
		t.Fatal(err)
	}
	for i, hi := range []string{"0.2", "0.3", "0.4"} {
		if out, _ := s.Apply(state.DefaultPrefix, []fleet.Message{rep(uint64(5+i), hi)}); out[0] != fleet.OutcomeStored {
			t.Fatalf("report %s after the reset: outcome %d", hi, out[0])
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
}

// newestSeqWinsAcrossWriters: two writers (collectors of one $share
// group) commit batches that carry the same devices' reports in
// opposite orders, at once; every device ends with its highest seq, the
// counts match, nothing is counted twice.
func newestSeqWinsAcrossWriters(t *testing.T, open Opener) {
	s, another := open(t, Options{})
	s2 := another()
	const devices, seqs = 200, 6
	// Writer 1 gets the even seqs, writer 2 the odd ones; batch by
	// batch, both touch every device, writer 2 in reverse id order.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w, st := range []Store{s, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1 + w); seq <= seqs; seq += 2 {
				var msgs []fleet.Message
				for i := range devices {
					n := i
					if w == 1 {
						n = devices - 1 - i
					}
					id := fmt.Sprintf("dev%04d", n)
					s := state.State{Seq: seq, Time: T0, Device: id, Packages: map[string]string{"hi": fmt.Sprintf("0.%d", seq)}}
					msgs = append(msgs, StateMsg(t, id, s, T0.Add(time.Duration(seq)*time.Second)))
				}
				if _, err := st.Apply(state.DefaultPrefix, msgs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	devs, err := s.Devices(t.Context(), 0)
	if err != nil || len(devs) != devices {
		t.Fatalf("%d devices, %v", len(devs), err)
	}
	for _, d := range devs {
		if d.State.Seq != seqs || d.State.Packages["hi"] != fmt.Sprintf("0.%d", seqs) {
			t.Fatalf("device %s kept seq %d (%s), want %d", d.ID, d.State.Seq, d.State.Packages["hi"], seqs)
		}
	}
	rep, err := s2.Report(t.Context(), fleet.ReportOptions{Now: func() time.Time { return T0 }})
	if err != nil {
		t.Fatal(err)
	}
	want := []fleet.VersionShare{{Version: fmt.Sprintf("0.%d", seqs), Count: devices, Share: 1}}
	if rep.Devices != devices || len(rep.Packages) != 1 || !reflect.DeepEqual(rep.Packages[0].Versions, want) {
		t.Errorf("report: %d devices, packages %+v; want %d devices, versions %+v", rep.Devices, rep.Packages, devices, want)
	}
	st := s.Stats()
	if st.Received != devices*seqs || st.Stored+st.Stale != st.Received || st.Devices != devices {
		t.Errorf("stats %+v", st)
	}
}
