package release_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/release"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// TestReleaseChecksTargetsFirst: a publish target that cannot be written
// (its directory would be below a regular file) refuses the release
// before the bump: the tree, the repository and the target are as they
// were. Before the check, the bump, build, include and local publish ran
// and only the target's sync failed.
func TestReleaseChecksTargetsFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	r := newRepo(t, dir, repo.Options{})
	run(t, options(r, hi))
	blocker := filepath.Join(dir, "not-a-dir")
	must(t, os.WriteFile(blocker, []byte("x"), 0o644))
	mt, err := storage.OpenTarget(storage.TargetConfig{Name: "mirror", URL: "file://" + filepath.Join(blocker, "mirror")}, storage.S3Credentials{})
	must(t, err)
	r = openRepo(t, r.Base, repo.Options{Mirror: &repo.MirrorOptions{Targets: []*storage.PublishTarget{mt}}})
	before := state(t, hi, r.Base)
	o := options(r, hi)
	o.Part = "minor"
	_, err = release.Run(context.Background(), o)
	var se *release.StepError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "checked before anything changed") || !errors.Is(err, repo.ErrTarget) {
		t.Fatalf("release with a broken target: %v", err)
	}
	if len(se.Restored) != 0 {
		t.Errorf("something had to be restored: %v", se.Restored)
	}
	sameState(t, before, state(t, hi, r.Base))
}

// TestReleasePhasedWithPin: a release for a rollout publishes the new
// version at the given percentage in the same publish (the Packages
// stanza carries it), and pins the previous version first, so that a
// Limit of 1 — which would delete it in that include — keeps it.
func TestReleasePhasedWithPin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hi := newTree(t, dir, "hi", "0.1")
	base := filepath.Join(dir, "srv")
	must(t, os.MkdirAll(filepath.Join(base, "conf"), 0o755))
	conf := "Origin: LAMPi\nLabel: LAMPi\nSuite: stable\nCodename: stable\nArchitectures: amd64 armhf\nComponents: main\nDescription: test\nSignWith: " + keyFile + "\nLimit: 1\n"
	must(t, os.WriteFile(filepath.Join(base, "conf/distributions"), []byte(conf), 0o644))
	r := openRepo(t, base, repo.Options{})
	run(t, options(r, hi))
	o := options(r, hi)
	o.Part = "minor"
	pct := 10
	o.Phase = &pct
	o.PinPrevious = func(codename, pkg, version string) string { return "rollout " + codename + "/" + pkg + "/" + version }
	rep := run(t, o)
	if p := rep.Packages[0]; p.Version != "0.2" || p.Previous != "0.1" {
		t.Fatalf("report: %+v", p)
	}
	if got := strings.Join(versions(t, r, "hi"), " "); got != "amd64:0.2 amd64:0.1 armhf:0.2 armhf:0.1" { // newest first, as reprepro lists
		t.Errorf("repository holds %s (Limit 1 took the pinned 0.1?)", got)
	}
	pins, err := r.Pins(context.Background())
	must(t, err)
	if len(pins) != 1 || pins[0].Version != "0.1" || pins[0].Reason != "rollout stable/hi/0.2" {
		t.Errorf("pins %+v", pins)
	}
	pk, err := os.ReadFile(filepath.Join(base, "dists/stable/main/binary-amd64/Packages"))
	must(t, err)
	stanzas := strings.Split(string(pk), "\n\n")
	found := false
	for _, s := range stanzas {
		if strings.Contains(s, "Version: 0.2\n") {
			found = true
			if !strings.Contains(s+"\n", "Phased-Update-Percentage: 10\n") {
				t.Errorf("0.2 published without its phase:\n%s", s)
			}
		} else if strings.Contains(s, "Phased-Update-Percentage") {
			t.Errorf("another version phased:\n%s", s)
		}
	}
	if !found {
		t.Fatalf("0.2 not published:\n%s", pk)
	}
}
