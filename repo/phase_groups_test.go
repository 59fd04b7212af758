package repo

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestPhaseVersionGroups: the percentage and the groups of one version
// change in one publish, a later Phase keeps the groups, no groups
// removes the field, and a group name that would write another field
// into the stanza is refused before anything changes.
func TestPhaseVersionGroups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRepo(t, testDistributions, Options{})
	debs := t.TempDir()
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"}))
	packages := func() string { return readFile(t, filepath.Join(r.Base, "dists/bookworm/main/binary-amd64/Packages")) }
	if _, err := r.PhaseVersionGroups(ctx, "bookworm", "hi", "0.2", 0, []string{"canary", "building-3"}); err != nil {
		t.Fatal(err)
	}
	pk := packages()
	if !strings.Contains(pk, "Version: 0.2\n") || !strings.Contains(pk, "\nPhased-Update-Percentage: 0\n") ||
		!strings.Contains(pk, "\nLampi-Phased-Groups: canary, building-3\n") || strings.Count(pk, "Lampi-Phased-Groups") != 1 {
		t.Fatalf("groups at 0%%:\n%s", pk)
	}
	if _, err := r.PhaseVersion(ctx, "bookworm", "hi", "0.2", 10); err != nil {
		t.Fatal(err)
	}
	if pk := packages(); !strings.Contains(pk, "\nPhased-Update-Percentage: 10\n") || !strings.Contains(pk, "\nLampi-Phased-Groups: canary, building-3\n") {
		t.Errorf("PhaseVersion dropped the groups:\n%s", pk)
	}
	for _, bad := range []string{"canary\nPhased-Update-Percentage: 100", "Canary", "a,b", ""} {
		if _, err := r.PhaseVersionGroups(ctx, "bookworm", "hi", "0.2", 100, []string{bad}); err == nil {
			t.Errorf("group %q accepted", bad)
		}
	}
	if pk := packages(); !strings.Contains(pk, "\nPhased-Update-Percentage: 10\n") {
		t.Errorf("a refused change changed the index:\n%s", pk)
	}
	if _, err := r.PhaseVersionGroups(ctx, "bookworm", "hi", "0.2", 100, nil); err != nil {
		t.Fatal(err)
	}
	if pk := packages(); strings.Contains(pk, "Phased") {
		t.Errorf("100%% without groups kept a field:\n%s", pk)
	}
}
