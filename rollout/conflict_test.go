package rollout

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// interleaved is the repository's publisher with a hook that runs once,
// before the first Phase: another process changing the rollout while this
// controller evaluates it.
type interleaved struct {
	Publisher
	before func()
}

func (p *interleaved) Phase(ctx context.Context, distribution, pkg, version string, percent int, groups []string) error {
	if f := p.before; f != nil {
		p.before = nil
		f()
	}
	return p.Publisher.Phase(ctx, distribution, pkg, version, percent, groups)
}

// TestPauseDuringTickWins: "rollout pause" on the command line lands
// while the server's controller is advancing the same rollout (between
// its read and its save). The pause must stand: the tick's save is
// refused as a conflict, and the stored state's percentage is published
// again, so that the repository and the store agree. Before the store
// compared revisions, the tick overwrote the pause and the rollout went
// on at the next step.
func TestPauseDuringTickWins(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t, "publishes a real repository several times, each a whole second after the last")
	w := newWorld(t)
	ctx := context.Background()
	plan, err := ParsePlan("20%:1h/1,60%:1h/1,100%")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Start(ctx, Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", Previous: "0.1", Plan: plan}); err != nil {
		t.Fatal(err)
	}
	w.report("adev", "0.2", nil, &state.Attempt{Version: "0.2", Result: state.ResultUpdated, Health: state.HealthPassed, Time: w.now})
	w.now = w.now.Add(61 * time.Minute)
	cli := &Controller{Store: w.c.Store, Publisher: w.c.Publisher, Now: w.c.Now}
	w.c.Publisher = &interleaved{Publisher: w.c.Publisher, before: func() {
		if _, err := cli.Pause(ctx, "bookworm/hi/0.2", "night shift"); err != nil {
			t.Errorf("pause: %v", err)
		}
	}}
	_, held, err := w.c.Tick(ctx)
	if !held || !errors.Is(err, ErrConflict) {
		t.Errorf("tick: held %v, %v; want a conflict", held, err)
	}
	r, err := w.c.Store.Get(ctx, "bookworm/hi/0.2")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != Paused || r.Step != 0 {
		t.Fatalf("after the tick the rollout is %s at step %d: the pause was lost", r.State, r.Step+1)
	}
	if got := w.phase(); got != "20" {
		t.Errorf("published %s%%, the stored (paused) rollout is at 20%%", got)
	}
	log, err := w.c.Store.Log(ctx, "bookworm/hi/0.2")
	if err != nil || len(log) != 2 || log[1].Reason != "paused: night shift" {
		t.Errorf("audit log %+v %v", log, err)
	}
	// The next tick leaves the paused rollout alone.
	if ds := w.tick(); len(ds) != 0 || w.phase() != "20" {
		t.Errorf("next tick: %+v, published %s", ds, w.phase())
	}
}
