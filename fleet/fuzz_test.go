package fleet

import (
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// FuzzPrepare: whatever arrives on whatever topic, the collector's decoding
// step neither panics nor accepts a report for another device.
func FuzzPrepare(f *testing.F) {
	f.Add("devices/lamp1/state", []byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{"hi":"0.1"}}`))
	f.Add("devices/lamp1/state", []byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp2","packages":{}}`))
	f.Add("devices/lamp1/status", []byte("offline"))
	f.Add("devices/+/state", []byte("{}"))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		p := prepare(state.DefaultPrefix, Message{Topic: topic, Payload: payload, Received: time.Unix(1, 0)})
		switch p.outcome {
		case OutcomeStored:
			id, kind, ok := state.ParseTopic(state.DefaultPrefix, topic)
			if !ok || kind != state.KindState || p.st.Device != id || p.id != id || p.st.Seq == 0 {
				t.Fatalf("accepted %q on %q as %+v", payload, topic, p)
			}
		case OutcomeStatus:
			if s := string(payload); s != state.Online && s != state.Offline {
				t.Fatalf("status %q accepted", s)
			}
		case OutcomeInvalid, OutcomeSpoofed:
		default:
			t.Fatalf("outcome %d", p.outcome)
		}
	})
}
