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

// The behaviour every fleet database shares (newest seq, spoofed and
// invalid reports, statuses, history, reports, credentials, reset) is
// tested in package fleettest, against this store and PostgreSQL; here
// what is the bbolt file's own.

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func stateMsg(t *testing.T, topicID string, s state.State, at time.Time) Message {
	return Message{Topic: state.StateTopic(state.DefaultPrefix, topicID), Payload: mustEncode(t, s), Received: at}
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
