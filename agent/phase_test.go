package agent

import (
	"fmt"
	"testing"
)

// TestPhaseDrawMatchesApt compares PhaseDraw with the values apt's own
// code (std::seed_seq → std::minstd_rand → uniform_int_distribution(0,100),
// libstdc++ on amd64) computes for the same seeds. The expected numbers were
// produced by compiling those four lines of apt-pkg/upgrade.cc with g++ 12.
func TestPhaseDrawMatchesApt(t *testing.T) {
	for _, c := range []struct {
		src, ver, id string
		want         uint32
	}{
		{"hi", "0.2", fmt.Sprintf("%032x", 0), 51},
		{"hi", "0.2", fmt.Sprintf("%032x", 1), 14},
		{"hi", "0.2", fmt.Sprintf("%032x", 2), 99},
		{"hi", "0.2", fmt.Sprintf("%032x", 3), 38},
		{"hi", "0.2", fmt.Sprintf("%032x", 7), 28},
		{"hi", "0.2", fmt.Sprintf("%032x", 42), 3},
		{"hi", "0.2", fmt.Sprintf("%032x", 99), 4},
		{"hi", "0.2", fmt.Sprintf("%032x", 500), 48},
		{"hi", "0.2", fmt.Sprintf("%032x", 999), 82},
		{"hi", "0.2", "0123456789abcdef0123456789abcdef", 57},
		{"hi", "0.2", "deadbeefdeadbeefdeadbeefdeadbeef", 46},
		{"lampi-agent", "1:2.0~rc1-3", "b827eb74663e", 89},
		{"a", "b", "c", 93},
		{"hi", "0.2", "é-machine", 7}, // bytes ≥ 0x80: signed char on amd64
	} {
		if got := PhaseDraw(c.src, c.ver, c.id); got != c.want {
			t.Errorf("PhaseDraw(%q, %q, %q) = %d, apt draws %d", c.src, c.ver, c.id, got, c.want)
		}
	}
}

// TestPhasingCohort: with Phased-Update-Percentage 30, about 30 % of 1,000
// device ids take the update, and the same ids every time.
func TestPhasingCohort(t *testing.T) {
	c := Candidate{Package: "hi", Version: "0.2", Source: "hi", SourceVersion: "0.2", Phased: 30}
	cohort := func() map[string]bool {
		in := map[string]bool{}
		for i := 0; i < 1000; i++ {
			id := fmt.Sprintf("%032x", i*7919)
			if !PhasedOut(c, id) {
				in[id] = true
			}
		}
		return in
	}
	first := cohort()
	if n := len(first); n < 260 || n > 350 {
		t.Errorf("%d of 1000 devices take a 30%% update", n)
	}
	again := cohort()
	if len(again) != len(first) {
		t.Fatalf("cohort changed: %d then %d", len(first), len(again))
	}
	for id := range first {
		if !again[id] {
			t.Fatalf("%s left the cohort", id)
		}
	}
	// A new version draws again; 100 % and no field include everyone;
	// no machine id means no phasing (as apt).
	c2 := c
	c2.Version, c2.SourceVersion = "0.3", "0.3"
	moved := 0
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("%032x", i*7919)
		if PhasedOut(c2, id) != PhasedOut(c, id) {
			moved++
		}
	}
	if moved == 0 {
		t.Error("the cohort does not depend on the version")
	}
	for _, p := range []int{100, -1} {
		c3 := c
		c3.Phased = p
		if PhasedOut(c3, "x") {
			t.Errorf("phased %d held back", p)
		}
	}
	if PhasedOut(c, "") {
		t.Error("phasing without a machine id")
	}
}
