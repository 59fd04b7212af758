package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func stateMsg(t *testing.T, topicID string, s state.State, at time.Time) Message {
	return Message{Topic: state.StateTopic(state.DefaultPrefix, topicID), Payload: mustEncode(t, s), Received: at}
}

func TestApplyKeepsNewestSeq(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	a := func(seq uint64, hi string) state.State {
		return state.State{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Device: "lamp1", Packages: map[string]string{"hi": hi}}
	}
	out, err := s.Apply(state.DefaultPrefix, []Message{
		stateMsg(t, "lamp1", a(1, "0.1"), t0),
		stateMsg(t, "lamp1", a(3, "0.3"), t0.Add(time.Second)),
		stateMsg(t, "lamp1", a(2, "0.2"), t0.Add(2*time.Second)), // late: ignored
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Outcome{OutcomeStored, OutcomeStored, OutcomeStale}; !reflect.DeepEqual(out, want) {
		t.Errorf("outcomes %v, want %v", out, want)
	}
	// In a later batch too.
	out, err = s.Apply(state.DefaultPrefix, []Message{stateMsg(t, "lamp1", a(3, "0.9"), t0.Add(3*time.Second))})
	if err != nil || out[0] != OutcomeStale {
		t.Fatalf("%v %v", out, err)
	}
	d, err := s.Device(t.Context(), "lamp1")
	if err != nil {
		t.Fatal(err)
	}
	if d.State.Seq != 3 || d.State.Packages["hi"] != "0.3" || !d.LastSeen.Equal(t0.Add(time.Second)) {
		t.Errorf("device %+v", d)
	}
	h, err := s.History(t.Context(), "lamp1")
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Time: t0.Add(time.Second), Seq: 1, Package: "hi", To: "0.1"},
		{Time: t0.Add(3 * time.Second), Seq: 3, Package: "hi", From: "0.1", To: "0.3"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("history\n got %+v\nwant %+v", h, want)
	}
	if st := s.Stats(); st != (Stats{Received: 4, Stored: 2, Stale: 2, Devices: 1}) {
		t.Errorf("stats %+v", st)
	}
}

func TestApplyRefusesSpoofedAndInvalid(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	spoof := state.State{Seq: 1, Time: t0, Device: "lampA", Packages: map[string]string{"hi": "6.6.6"}}
	out, err := s.Apply(state.DefaultPrefix, []Message{
		stateMsg(t, "lampB", spoof, t0),
		{Topic: "devices/lampB/state", Payload: []byte(`{"seq":1,`), Received: t0},
		{Topic: "devices/lampB/status", Payload: []byte(`maybe`), Received: t0},
		{Topic: "devices/lampB/other", Payload: []byte(`x`), Received: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Outcome{OutcomeSpoofed, OutcomeInvalid, OutcomeInvalid, OutcomeInvalid}; !reflect.DeepEqual(out, want) {
		t.Errorf("outcomes %v, want %v", out, want)
	}
	if _, err := s.Device(t.Context(), "lampB"); !errors.Is(err, ErrNotFound) {
		t.Errorf("spoofed device stored: %v", err)
	}
	if st := s.Stats(); st.Spoofed != 1 || st.Invalid != 3 || st.Stored != 0 || st.Devices != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestStatusAndRetainedRedelivery(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	st := func(p string, retained bool, at time.Time) Message {
		return Message{Topic: "devices/lamp1/status", Payload: []byte(p), Retained: retained, Received: at}
	}
	if _, err := s.Apply("devices", []Message{st("online", false, t0)}); err != nil {
		t.Fatal(err)
	}
	// The broker re-sends the retained "online" on a new subscription:
	// the device was not seen again.
	if _, err := s.Apply("devices", []Message{st("online", true, t0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	d, _ := s.Device(t.Context(), "lamp1")
	if !d.Online || !d.StatusTime.Equal(t0) {
		t.Errorf("after retained re-delivery: %+v", d)
	}
	if _, err := s.Apply("devices", []Message{st("offline", false, t0.Add(2*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	d, _ = s.Device(t.Context(), "lamp1")
	if d.Online || !d.LastSeen.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("after will: %+v", d)
	}
}

func TestHistoryResultsAndLimit(t *testing.T) {
	s := openTestStore(t, StoreOptions{HistoryLimit: 5})
	var msgs []Message
	for seq := uint64(1); seq <= 10; seq++ {
		st := state.State{Seq: seq, Time: t0, Device: "lamp1", Packages: map[string]string{"hi": fmt.Sprintf("0.%d", seq)}}
		if seq == 10 {
			st.Packages["hi"] = "0.9"
			st.Result, st.Error, st.Target = state.ResultRolledBack, "health check failed", map[string]string{"hi": "0.10"}
		}
		msgs = append(msgs, stateMsg(t, "lamp1", st, t0))
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

func TestReport(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	var msgs []Message
	for i := range 8 {
		id := fmt.Sprintf("lamp%d", i)
		msgs = append(msgs, stateMsg(t, id, testState(id, i, 1), t0))
		status := "online"
		if i >= 6 {
			status = "offline"
		}
		msgs = append(msgs, Message{Topic: state.StatusTopic("devices", id), Payload: []byte(status), Received: t0.Add(time.Duration(i) * time.Hour)})
	}
	if _, err := s.Apply("devices", msgs); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Report(t.Context(), ReportOptions{Newest: map[string]string{"hi": "0.2"}, Now: func() time.Time { return t0.Add(10 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Devices != 8 || rep.Online != 6 || rep.Offline != 2 {
		t.Errorf("counts %+v", rep)
	}
	hi := rep.Packages[0]
	if hi.Name != "hi" || hi.Installed != 8 || hi.UpToDate != 6 || !reflect.DeepEqual(hi.Behind, []string{"lamp0", "lamp4"}) ||
		!reflect.DeepEqual(hi.Versions, []VersionShare{{"0.2", 6, 0.75}, {"0.1", 2, 0.25}}) {
		t.Errorf("hi %+v", hi)
	}
	if len(rep.OfflineDevices) != 2 || rep.OfflineDevices[0].ID != "lamp6" || rep.OfflineDevices[0].Age != 4*time.Hour {
		t.Errorf("offline %+v", rep.OfflineDevices)
	}
	if len(rep.FailedDevices) != 1 || rep.FailedDevices[0].ID != "lamp7" || rep.FailedDevices[0].Error != "postinst exited 1" {
		t.Errorf("failed %+v", rep.FailedDevices)
	}
	// --stale 3h30m: lamp7 (seen 3 h before) drops out of the offline list.
	rep, _ = s.Report(t.Context(), ReportOptions{Package: "hi", Stale: 210 * time.Minute, Now: func() time.Time { return t0.Add(10 * time.Hour) }})
	if len(rep.OfflineDevices) != 1 || rep.OfflineDevices[0].ID != "lamp6" || len(rep.Packages) != 1 {
		t.Errorf("stale report %+v", rep)
	}
	// The stored bytes survive a reopen, counters too.
	path := s.Path()
	s.Close()
	s2, err := Open(path, StoreOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if st := s2.Stats(); st.Devices != 8 || st.Stored != 8 || st.Status != 8 {
		t.Errorf("stats after reopen %+v", st)
	}
	b, _ := json.Marshal(rep)
	if len(b) == 0 {
		t.Fatal("empty report")
	}
}

func TestOpenLockedAndForeign(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	if _, err := Open(s.Path(), StoreOptions{Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("second writer: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.db"), StoreOptions{ReadOnly: true}); err == nil {
		t.Error("read-only open of a missing file succeeded")
	}
}

func TestCredentials(t *testing.T) {
	s := openTestStore(t, StoreOptions{Now: func() time.Time { return t0 }})
	iss, err := s.IssueCredentials(t.Context(), RoleDevice, "lamp1", "lamp2")
	if err != nil {
		t.Fatal(err)
	}
	if len(iss) != 2 || len(iss[0].Secret) < 40 || iss[0].Secret == iss[1].Secret {
		t.Fatalf("issued %+v", iss)
	}
	if role, ok := s.Authenticate("lamp1", iss[0].Secret); !ok || role != RoleDevice {
		t.Error("valid secret refused")
	}
	if _, ok := s.Authenticate("lamp1", iss[1].Secret); ok {
		t.Error("other device's secret accepted")
	}
	if _, ok := s.Authenticate("nobody", ""); ok {
		t.Error("unknown user accepted")
	}
	if _, err := s.IssueCredentials(t.Context(), RoleDevice, "lamp3", "lamp1"); !errors.Is(err, ErrExists) {
		t.Errorf("re-issue: %v", err)
	}
	if _, ok := s.Authenticate("lamp3", ""); ok {
		t.Error("half-issued batch stored")
	}
	if _, err := s.IssueCredentials(t.Context(), RoleDevice, "../x"); err == nil {
		t.Error("bad id accepted")
	}
	list, _ := s.Credentials(t.Context())
	if len(list) != 2 || list[0].ID != "lamp1" || list[0].Hash != nil || !list[0].Created.Equal(t0) {
		t.Errorf("list %+v", list)
	}
	if err := s.RemoveCredential(t.Context(), "lamp1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate("lamp1", iss[0].Secret); ok {
		t.Error("removed credential accepted")
	}
	if err := s.RemoveCredential(t.Context(), "lamp1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
}
