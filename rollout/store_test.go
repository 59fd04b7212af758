package rollout

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestBoltStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &BoltStore{Path: filepath.Join(t.TempDir(), "db", "rollouts.db")}
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("empty store: %v, %v", list, err)
	}
	r := running(t, "10%:1h/2,100%")
	start := Decision{Time: t0, Rollout: r.Key(), Action: Hold, To: 10, Reason: "started"}
	if err := s.Create(ctx, r, start); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, r, start); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create of a running rollout: %v, want ErrExists", err)
	}
	d := Evaluate(r, Stats{Eligible: 3, Updated: 3, Attempted: 3}, t0.Add(2*time.Hour))
	Apply(r, d)
	if err := s.Save(ctx, r, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "stable/lamp/1.4.1")
	if err != nil || got.Step != 1 || got.Percent() != 100 || !got.StepStarted.Equal(t0.Add(2*time.Hour)) || got.Plan.String() != r.Plan.String() {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	log, err := s.Log(ctx, r.Key())
	if err != nil || len(log) != 2 || log[0].Reason != "started" || log[1].Action != Advance || log[1].Stats.Updated != 3 {
		t.Fatalf("Log = %+v, %v", log, err)
	}
	if _, err := s.Get(ctx, "stable/lamp/9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing rollout: %v", err)
	}
	other := &Rollout{Distribution: "stable", Package: "lamp", Version: "9"}
	if err := s.Save(ctx, other, d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Save of a missing rollout: %v", err)
	}
	// Once closed, the same version may be rolled out again, with a
	// fresh log.
	r.State = Completed
	if err := s.Save(ctx, r, Decision{Action: Complete}); err != nil {
		t.Fatal(err)
	}
	again := running(t, "100%")
	if err := s.Create(ctx, again, start); err != nil {
		t.Fatal(err)
	}
	if log, _ := s.Log(ctx, again.Key()); len(log) != 1 {
		t.Fatalf("log of the restarted rollout: %+v", log)
	}
	if list, _ := s.List(ctx); len(list) != 1 || list[0].Plan.Steps[0].Percent != 100 {
		t.Fatalf("List = %+v", list)
	}
}

// TestLease: one holder at a time; the lease passes on when it expires and
// is renewed by its holder; under contention from several controllers
// at once, never two hold it at the same instant.
func TestLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rollouts.db")
	a, b := &BoltStore{Path: path}, &BoltStore{Path: path}
	must := func(ok bool, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !must(a.Lease(ctx, "a", t0, time.Minute)) {
		t.Fatal("a cannot take a free lease")
	}
	if must(b.Lease(ctx, "b", t0.Add(30*time.Second), time.Minute)) {
		t.Fatal("b took a's unexpired lease")
	}
	if !must(a.Lease(ctx, "a", t0.Add(50*time.Second), time.Minute)) {
		t.Fatal("a cannot renew its lease")
	}
	if must(b.Lease(ctx, "b", t0.Add(100*time.Second), time.Minute)) {
		t.Fatal("b took the renewed lease before it expired")
	}
	if !must(b.Lease(ctx, "b", t0.Add(111*time.Second), time.Minute)) {
		t.Fatal("b cannot take the expired lease")
	}

	// Contention: at each instant, exactly one of four contenders wins.
	var wg sync.WaitGroup
	for round := 0; round < 20; round++ {
		now := t0.Add(time.Duration(round+10) * time.Hour)
		wins := make(chan string, 4)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				s := &BoltStore{Path: path, Timeout: time.Minute}
				ok, err := s.Lease(ctx, id, now, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins <- id
				}
			}(fmt.Sprint("c", i))
		}
		wg.Wait()
		close(wins)
		var won []string
		for w := range wins {
			won = append(won, w)
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %v hold the lease", round, won)
		}
	}
}

// TestBoltStoreReadWhileCreated: a reader (the dashboard, /metrics, a
// Start's Get) that opens the file while the first writer (the
// controller's lease) has created it but not yet written its first pages
// sees an empty store, not "bad file descriptor" from bbolt trying to
// initialise a file it opened read-only.
func TestBoltStoreReadWhileCreated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for i := range 200 {
		s := &BoltStore{Path: filepath.Join(dir, fmt.Sprint(i), "rollouts.db")}
		var wg sync.WaitGroup
		var werr error
		wg.Go(func() { _, werr = s.Lease(ctx, "a", t0, time.Minute) })
		for range 20 {
			if _, err := s.List(ctx); err != nil {
				t.Fatalf("round %d: a read while the store is created: %v", i, err)
			}
		}
		wg.Wait()
		if werr != nil {
			t.Fatal(werr)
		}
	}
}
