package agent

import (
	"errors"
	"testing"
)

// TestBestIgnoresOrderOfInvalidVersions: a stanza whose version is not a
// Debian version never wins over a valid one, whichever comes first in
// the index (before, listed first it blocked every valid version after
// it, and the package was refused).
func TestBestIgnoresOrderOfInvalidVersions(t *testing.T) {
	a := &Agent{cfg: Config{Architecture: "armhf"}}
	bad := Candidate{Package: "hi", Version: "not a version", Architecture: "all", Err: errors.New("bad version")}
	good := Candidate{Package: "hi", Version: "0.2", Architecture: "all"}
	older := Candidate{Package: "hi", Version: "0.1", Architecture: "all"}
	for _, order := range [][]Candidate{{bad, older, good}, {good, bad, older}, {older, good, bad}} {
		if got := a.best(order)["hi"]; got.Version != "0.2" || got.Err != nil {
			t.Errorf("best of %v: %s (%v), want 0.2", []string{order[0].Version, order[1].Version, order[2].Version}, got.Version, got.Err)
		}
	}
}
