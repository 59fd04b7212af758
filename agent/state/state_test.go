package state

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	in := State{Seq: 7, Time: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Device: "b827eb74663e",
		Agent: "0.3.0", Arch: "armhf", Packages: map[string]string{"hi": "0.2"}, Result: ResultUpdated,
		Target: map[string]string{"hi": "0.2"}}
	b, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"packages":{"hi":"0.2"}`) || strings.Contains(string(b), "last_check") {
		t.Errorf("encoded: %s", b)
	}
	out, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Seq != 7 || out.Device != in.Device || out.Packages["hi"] != "0.2" || !out.Time.Equal(in.Time) || out.Target["hi"] != "0.2" {
		t.Errorf("decoded %+v", out)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, in := range []string{
		``, `{`, `[]`, `{"seq":1,"time":"2026-11-22T10:00:00Z","device":"a"} x`,
		`{"seq":0,"time":"2026-11-22T10:00:00Z","device":"a","packages":{}}`,
		`{"seq":1,"device":"a","packages":{}}`,
		`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"a/b","packages":{}}`,
		`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"+","packages":{}}`,
		`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"a","result":"maybe"}`,
		`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"a","packages":{"hi":""}}`,
		`{"seq":-1,"time":"2026-11-22T10:00:00Z","device":"a"}`,
		`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"a","x":"` + strings.Repeat("y", MaxSize) + `"}`,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%.60q) = %v, want ErrInvalid", in, err)
		}
	}
	if _, err := Decode([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"a","future":1}`)); err != nil {
		t.Errorf("unknown field refused: %v", err)
	}
}

func TestTopics(t *testing.T) {
	if got := StateTopic(DefaultPrefix, "lamp1"); got != "devices/lamp1/state" {
		t.Error(got)
	}
	id, kind, ok := ParseTopic("devices", "devices/lamp1/status")
	if !ok || id != "lamp1" || kind != KindStatus {
		t.Error(id, kind, ok)
	}
	for _, topic := range []string{"devices/lamp1", "devices/lamp1/state/x", "other/lamp1/state", "devices//state", "devices/+/state", "devices/lamp1/foo"} {
		if _, _, ok := ParseTopic("devices", topic); ok {
			t.Errorf("ParseTopic(%q) accepted", topic)
		}
	}
	for _, id := range []string{"a", "b827eb74663e", "lamp-01.kitchen", "x_y"} {
		if err := ValidDeviceID(id); err != nil {
			t.Error(err)
		}
	}
	for _, id := range []string{"", "-a", ".a", "a b", "a#", strings.Repeat("a", 65), "é"} {
		if ValidDeviceID(id) == nil {
			t.Errorf("%q accepted", id)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T10:00:00Z","device":"a","packages":{"hi":"0.1"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(s)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func TestRolloutFields(t *testing.T) {
	base := State{Seq: 1, Time: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), Device: "pi1", Packages: map[string]string{"hi": "0.1"}}
	ok := base
	ok.Candidates = map[string]Candidate{"hi": {Version: "0.2", Phased: 30, Eligible: true, Checks: 3}}
	ok.Attempts = map[string]Attempt{"hi": {Version: "0.2", Result: ResultRolledBack, Health: HealthFailed, Time: base.Time}}
	b, err := Encode(ok)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil || back.Candidates["hi"] != ok.Candidates["hi"] || back.Attempts["hi"] != ok.Attempts["hi"] {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for name, bad := range map[string]func(*State){
		"phased above 100":  func(s *State) { s.Candidates = map[string]Candidate{"hi": {Version: "0.2", Phased: 101}} },
		"candidate version": func(s *State) { s.Candidates = map[string]Candidate{"hi": {Phased: 10}} },
		"negative checks":   func(s *State) { s.Candidates = map[string]Candidate{"hi": {Version: "0.2", Checks: -1}} },
		"attempt result":    func(s *State) { s.Attempts = map[string]Attempt{"hi": {Version: "0.2", Result: ResultDeferred}} },
		"attempt health": func(s *State) {
			s.Attempts = map[string]Attempt{"hi": {Version: "0.2", Result: ResultUpdated, Health: "so-so"}}
		},
	} {
		s := base
		bad(&s)
		if _, err := Encode(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// TestGroups: agent.conf's groups list splits on commas and spaces; names
// that could break a Packages stanza, a plan or a list are refused, in a
// list and in a report.
func TestGroups(t *testing.T) {
	g, err := ParseGroups(" canary, building-3 lab.2 ")
	if err != nil || strings.Join(g, "|") != "canary|building-3|lab.2" {
		t.Fatalf("ParseGroups: %q, %v", g, err)
	}
	if g, err := ParseGroups(""); err != nil || g != nil {
		t.Errorf("empty: %q, %v", g, err)
	}
	for _, bad := range []string{"Canary", "-x", "a:b", "a\nPackage: evil", "a%", strings.Repeat("a", 33), strings.Repeat("g ", MaxGroups+1)} {
		if _, err := ParseGroups(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseGroups(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if !InGroups([]string{"lab", "canary"}, []string{"canary"}) || InGroups([]string{"lab"}, []string{"canary"}) || InGroups(nil, []string{"canary"}) {
		t.Error("InGroups")
	}
	s := State{Seq: 1, Time: time.Unix(1, 0), Device: "a", Groups: []string{"ok", "Not-OK"}}
	if _, err := Encode(s); !errors.Is(err, ErrInvalid) {
		t.Errorf("a report with a bad group: %v", err)
	}
	s.Groups, s.BootID = []string{"ok"}, strings.Repeat("b", 65)
	if _, err := Encode(s); !errors.Is(err, ErrInvalid) {
		t.Errorf("a report with a 65-character boot id: %v", err)
	}
}
