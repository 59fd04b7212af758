package rollout

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
)

// world is a real repository with hi 0.1 and 0.2 published, a real fleet
// store, and a controller over both on a clock the test moves.
type world struct {
	t     *testing.T
	base  string
	repo  *repo.Repo
	fleet *fleet.Store
	now   time.Time
	c     *Controller
	seq   uint64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, base: t.TempDir(), now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	conf := filepath.Join(w.base, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "distributions"), []byte("Codename: bookworm\nSuite: stable\nArchitectures: amd64\nComponents: main\nLimit: -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return w.now }
	r, err := repo.Open(w.base, repo.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	w.repo = r
	for _, v := range []string{"0.1", "0.2"} {
		p := filepath.Join(t.TempDir(), "hi_"+v+"_all.deb")
		var b bytes.Buffer
		if _, err := deb.Build(context.Background(), fstest.MapFS{
			"DEBIAN/control":       {Data: []byte("Package: hi\nVersion: " + v + "\nArchitecture: all\nMaintainer: T <t@example.org>\nSection: misc\nPriority: optional\nDescription: test\n")},
			"usr/share/hi/version": {Data: []byte(v + "\n")},
		}, &b, deb.BuildOptions{Mtime: time.Unix(1700000000, 0), Compression: deb.CompressGzip}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := r.IncludeDeb(context.Background(), "bookworm", []string{p}, repo.IncludeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := fleet.Open(filepath.Join(w.base, "db", "fleet.db"), fleet.StoreOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	w.fleet = fs
	w.c = &Controller{Store: &BoltStore{Path: repo.Layout{Base: w.base}.Rollouts()}, Fleet: fs,
		Publisher: RepoPublisher{Repo: r}, Holder: "test", Now: clock}
	return w
}

// phase is hi 0.2's Phased-Update-Percentage in the published Packages
// file (100 when the field is absent).
func (w *world) phase() string {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.base, "dists", "bookworm", "main", "binary-amd64", "Packages"))
	if err != nil {
		w.t.Fatal(err)
	}
	for _, stanza := range strings.Split(string(b), "\n\n") {
		if !strings.Contains(stanza, "\nVersion: 0.2\n") {
			continue
		}
		for _, l := range strings.Split(stanza, "\n") {
			if v, ok := strings.CutPrefix(l, "Phased-Update-Percentage: "); ok {
				return v
			}
		}
		return "100"
	}
	w.t.Fatal("hi 0.2 is not published")
	return ""
}

// report stores one device's report of hi.
func (w *world) report(id, installed string, cand *state.Candidate, att *state.Attempt) {
	w.t.Helper()
	w.seq++
	s := state.State{Seq: w.seq, Time: w.now, Device: id, Packages: map[string]string{"hi": installed}}
	if cand != nil {
		s.Candidates = map[string]state.Candidate{"hi": *cand}
	}
	if att != nil {
		s.Attempts = map[string]state.Attempt{"hi": *att}
	}
	b, err := state.Encode(s)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.fleet.Apply(state.DefaultPrefix, []fleet.Message{{Topic: state.StateTopic(state.DefaultPrefix, id), Payload: b, Received: w.now}}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) tick() []Decision {
	w.t.Helper()
	ds, held, err := w.c.Tick(context.Background())
	if err != nil || !held {
		w.t.Fatalf("tick: held %v, %v", held, err)
	}
	return ds
}

// TestControllerWalksAndHalts: through the real repository, a healthy
// release walks 20 % → 50 % → 100 %; the next release halts at its first
// step when a fifth of the devices fail its health check, and phase 0 is
// published. Every decision is in the audit log; the state survives a new
// controller on the same store.
func TestControllerWalksAndHalts(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t, "publishes a real repository a dozen times, each a whole second after the last")
	w := newWorld(t)
	ctx := context.Background()
	plan, err := ParsePlan("20%:1h/2,50%:1h/4,100% min-attempts=5")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		w.report(string(rune('a'+i))+"dev", "0.1", nil, nil)
	}
	r, err := w.c.Start(ctx, Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", Previous: "0.1", Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	if w.phase() != "20" || r.Percent() != 20 {
		t.Fatalf("after Start: published %s, rollout at %d%%", w.phase(), r.Percent())
	}
	if _, err := w.c.Start(ctx, Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", Plan: plan}); err == nil {
		t.Fatal("a second Start of a running rollout succeeded")
	}
	// Two devices take 0.2 and pass; the soak is not over yet.
	ok := &state.Attempt{Version: "0.2", Result: state.ResultUpdated, Health: state.HealthPassed, Time: w.now}
	w.report("adev", "0.2", nil, ok)
	w.report("bdev", "0.2", nil, ok)
	w.now = w.now.Add(30 * time.Minute)
	if ds := w.tick(); len(ds) != 0 || w.phase() != "20" {
		t.Fatalf("during the soak: %+v, published %s", ds, w.phase())
	}
	w.now = w.now.Add(31 * time.Minute)
	if ds := w.tick(); len(ds) != 1 || ds[0].Action != Advance || w.phase() != "50" {
		t.Fatalf("after the soak: %+v, published %s", ds, w.phase())
	}
	// A new controller (a restart) carries on from the stored step.
	w.c = &Controller{Store: w.c.Store, Fleet: w.fleet, Publisher: w.c.Publisher, Holder: "restarted", Now: w.c.Now}
	for _, id := range []string{"cdev", "ddev", "edev"} {
		w.report(id, "0.2", nil, ok)
	}
	w.now = w.now.Add(61 * time.Minute) // the first controller's lease has run out
	if ds := w.tick(); len(ds) != 1 || ds[0].Action != Advance || w.phase() != "100" {
		t.Fatalf("second step: %+v, published %s", ds, w.phase())
	}
	w.now = w.now.Add(time.Minute)
	if ds := w.tick(); len(ds) != 1 || ds[0].Action != Complete {
		t.Fatalf("last step: %+v", ds)
	}
	log, err := w.c.Store.Log(ctx, "bookworm/hi/0.2")
	if err != nil || len(log) != 4 || log[0].To != 20 || log[3].Action != Complete {
		t.Fatalf("audit log %+v, %v", log, err)
	}

	// Now 0.3, whose health check fails on a fifth of the devices.
	p := filepath.Join(t.TempDir(), "hi_0.3_all.deb")
	var b bytes.Buffer
	if _, err := deb.Build(ctx, fstest.MapFS{
		"DEBIAN/control": {Data: []byte("Package: hi\nVersion: 0.3\nArchitecture: all\nMaintainer: T <t@example.org>\nSection: misc\nPriority: optional\nDescription: test\n")},
	}, &b, deb.BuildOptions{Mtime: time.Unix(1700000000, 0), Compression: deb.CompressGzip}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.repo.IncludeDeb(ctx, "bookworm", []string{p}, repo.IncludeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Start(ctx, Rollout{Distribution: "bookworm", Package: "hi", Version: "0.3", Previous: "0.2", Plan: plan}); err != nil {
		t.Fatal(err)
	}
	good := &state.Attempt{Version: "0.3", Result: state.ResultUpdated, Health: state.HealthPassed, Time: w.now}
	bad := &state.Attempt{Version: "0.3", Result: state.ResultRolledBack, Health: state.HealthFailed, Time: w.now}
	for i, id := range []string{"adev", "bdev", "cdev", "ddev", "edev"} {
		if i == 0 {
			w.report(id, "0.2", &state.Candidate{Version: "0.3", Phased: 20, Eligible: true, Checks: 1}, bad)
		} else {
			w.report(id, "0.3", nil, good)
		}
	}
	w.now = w.now.Add(time.Minute) // well inside the soak
	ds := w.tick()
	if len(ds) != 1 || ds[0].Action != Halt || ds[0].Rollout != "bookworm/hi/0.3" || !strings.Contains(ds[0].Reason, "1 of 5 attempts failed") {
		t.Fatalf("a fifth failing: %+v", ds)
	}
	if r, err := w.c.Store.Get(ctx, "bookworm/hi/0.3"); err != nil || r.State != Halted || r.Percent() != 0 {
		t.Fatalf("halted rollout %+v, %v", r, err)
	}
	// Phase 0 is published for 0.3 (the file holds both versions).
	pk, err := os.ReadFile(filepath.Join(w.base, "dists", "bookworm", "main", "binary-amd64", "Packages"))
	if err != nil || !strings.Contains(string(pk), "Version: 0.3\n") || !strings.Contains(string(pk), "Phased-Update-Percentage: 0\n") {
		t.Fatalf("Packages after the halt:\n%s", pk)
	}
	// An operator resumes it: its step's percentage is published again.
	if r, err := w.c.Resume(ctx, "bookworm/hi/0.3", "fixed the health check"); err != nil || r.State != Running || r.Percent() != 20 {
		t.Fatalf("resume: %+v, %v", r, err)
	}
}

// TestOneControllerActs: with two controllers on one store, only the
// lease holder evaluates; the other takes over once the lease expires.
func TestOneControllerActs(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	other := &Controller{Store: w.c.Store, Fleet: w.fleet, Publisher: w.c.Publisher, Holder: "other", Now: w.c.Now, LeaseTTL: time.Minute}
	if _, held, err := w.c.Tick(context.Background()); err != nil || !held {
		t.Fatalf("first controller: held %v, %v", held, err)
	}
	if _, held, err := other.Tick(context.Background()); err != nil || held {
		t.Fatalf("second controller acted while the first holds the lease: held %v, %v", held, err)
	}
	w.now = w.now.Add(2 * time.Minute)
	if _, held, err := other.Tick(context.Background()); err != nil || !held {
		t.Fatalf("second controller after the lease expired: held %v, %v", held, err)
	}
}

// TestRevert: a halted rollout of 0.2 reverts forward: 0.1's package is
// published again as 0.2+revert1 — the data member byte for byte 0.1's —
// at 100 %, 0.2 stays at phase 0, the rollout is closed and 0.1 is no
// longer pinned. With auto-revert in the plan the halt does it by itself.
func TestRevert(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t, "publishes a real repository several times and reads the packages with dpkg-deb")
	for _, auto := range []bool{false, true} {
		t.Run(map[bool]string{false: "by hand", true: "automatic"}[auto], func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			text := "50%:1h/1,100% min-attempts=1"
			if auto {
				text += " auto-revert"
			}
			plan, err := ParsePlan(text)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.c.Start(ctx, Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", Previous: "0.1", Plan: plan}); err != nil {
				t.Fatal(err)
			}
			if pins, err := w.repo.Pins(ctx); err != nil || len(pins) != 1 || pins[0].Version != "0.1" {
				t.Fatalf("pins while the rollout runs: %+v, %v", pins, err)
			}
			w.report("adev", "0.1", &state.Candidate{Version: "0.2", Phased: 50, Eligible: true, Checks: 1},
				&state.Attempt{Version: "0.2", Result: state.ResultRolledBack, Health: state.HealthFailed, Time: w.now})
			w.now = w.now.Add(time.Minute)
			ds := w.tick()
			if len(ds) != 1 || ds[0].Action != Halt {
				t.Fatalf("decisions %+v", ds)
			}
			if !auto {
				if _, err := w.c.Revert(ctx, "bookworm/hi/0.2", "operator"); err != nil {
					t.Fatal(err)
				}
			}
			r, err := w.c.Store.Get(ctx, "bookworm/hi/0.2")
			if err != nil || r.State != Reverted || r.RevertedAs != "0.2+revert1" {
				t.Fatalf("rollout %+v, %v", r, err)
			}
			es, err := w.repo.List(ctx, "bookworm", repo.Selection{}, []string{"hi"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			files := map[string]string{}
			for _, e := range es {
				files[e.Version] = e.File
				phased := strings.Contains(string(e.Stanza), "Phased-Update-Percentage")
				if e.Version == "0.2+revert1" && phased || e.Version == "0.2" && !strings.Contains(string(e.Stanza), "Phased-Update-Percentage: 0\n") {
					t.Errorf("%s: stanza\n%s", e.Version, e.Stanza)
				}
			}
			if files["0.2+revert1"] == "" {
				t.Fatalf("no revert published: %v", files)
			}
			fsys := func(v string) []byte {
				out, err := exec.Command("dpkg-deb", "--fsys-tarfile", filepath.Join(w.base, files[v])).Output()
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			if !bytes.Equal(fsys("0.1"), fsys("0.2+revert1")) || bytes.Equal(fsys("0.1"), fsys("0.2")) {
				t.Error("the revert does not carry 0.1's files")
			}
			if pins, err := w.repo.Pins(ctx); err != nil || len(pins) != 0 {
				t.Fatalf("pins after the revert: %+v, %v", pins, err)
			}
			log, _ := w.c.Store.Log(ctx, "bookworm/hi/0.2")
			if last := log[len(log)-1]; last.Action != Revert || !strings.Contains(last.Reason, "published as 0.2+revert1") {
				t.Errorf("last decision %+v", last)
			}
			if RevertVersion("0.2", []string{"0.2+revert1"}) != "0.2+revert2" {
				t.Error("a second revert does not get the next number")
			}
		})
	}
}
