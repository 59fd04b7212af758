package fleet

import (
	"reflect"
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
		case OutcomeRejected:
			if p.st.Seq <= seqLimit(time.Unix(1, 0)) {
				t.Fatalf("seq %d rejected, within the limit", p.st.Seq)
			}
		case OutcomeInvalid, OutcomeSpoofed:
		default:
			t.Fatalf("outcome %d", p.outcome)
		}
	})
}

// FuzzDecodeState: the collector's report decoder agrees with
// state.Decode on every input — the same report, or an error from both —
// and its fast path accepts the reports agents write.
func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{"hi":"0.1"}}`))
	f.Add([]byte(` { "seq" : 18446744073709551615 , "time":"2026-11-22T10:00:00.123456789+02:00", "device":"lamp-1","agent":"0.3","arch":"armhf",` +
		`"packages":{"hi":"0.1","lampi-service":"1.2.0"},"last_check":"2026-11-22T09:00:00Z","result":"failed","error":"postinst exited 1","target":{"hi":"0.2"}}` + "\n"))
	f.Add([]byte(`{"seq":18446744073709551616,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{}}`))
	f.Add([]byte(`{"seq":1.0,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{}}`))
	f.Add([]byte(`{"seq":01,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{}}`))
	f.Add([]byte(`{"Seq":1,"seq":2,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{}}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{"a":"1"},"packages":{"b":"2"}}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp\u0031","packages":{"hi":"\u00e9"}}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{"hi":"\xff"}}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":null}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{}}}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{}} x`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T25:00:00Z","device":"lamp1","packages":{}}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"","packages":{}}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{},"extra":[1,{"a":null}]}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{},"result":"held-back","release_date":"2026-11-20T08:00:00Z"}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{},"release_date":"2026-11-20T08:00:00Z","release_date":"2026-11-21T08:00:00Z"}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{},"release_date":null}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{},"boot_id":"3f0c2c2e-8a55-4d4e-9d1e-0d1b5b7f3a11"}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{},"boot_id":"a","boot_id":"b"}`))
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"lamp1","packages":{},"boot_id":null,"groups":["canary"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := decodeState(b)
		want, wantErr := state.Decode(b)
		if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeState(%q) = %+v, %v; state.Decode: %+v, %v", b, got, gotErr, want, wantErr)
		}
	})
}

// TestDecodeStateFastPath: the reports agents and the load generator
// write take the fast path (no fallback to encoding/json).
func TestDecodeStateFastPath(t *testing.T) {
	withView := testState("lamp-9", 9, 3)
	withView.Result, withView.Target = state.ResultHeldBack, map[string]string{"hi": "0.3"}
	withView.ReleaseDate = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	withView.BootID = "3f0c2c2e-8a55-4d4e-9d1e-0d1b5b7f3a11"
	for i, st := range []state.State{testState("lamp-1", 0, 1), testState("lamp-7", 7, 99), {Seq: 1, Device: "x", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600))}, withView} {
		b := mustEncode(t, st)
		got, ok := fastDecode(b)
		if !ok {
			t.Fatalf("%d: %s takes the slow path", i, b)
		}
		want, err := state.Decode(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%d: fast %+v, state.Decode %+v (%v)", i, got, want, err)
		}
	}
}

// BenchmarkDecodeState: a report as lampi-agent writes it now, with
// release_date, through the collector's decoder and through state.Decode
// (which decodeState fell back to for every such report before the fast
// path knew release_date).
func BenchmarkDecodeState(b *testing.B) {
	st := testState("lamp-0042", 42, 3)
	st.Seq = 1795348800000000
	st.LastCheck = st.Time.Add(-time.Minute)
	st.ReleaseDate = st.Time.Add(-36 * time.Hour)
	payload := mustEncode(b, st)
	for name, decode := range map[string]func([]byte) (state.State, error){"decodeState": decodeState, "state.Decode": state.Decode} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if _, err := decode(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
