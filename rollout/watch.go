package rollout

import (
	"context"
	"sync"
	"time"
)

// View is what a dashboard or the metrics show of one rollout: where it
// stands and the numbers of its latest evaluation, with the tail of its
// audit log.
type View struct {
	Rollout Rollout `json:"rollout"`
	// Stage names the step ("10%", "group canary") or, once halted or
	// closed, the state.
	Stage   string   `json:"stage"`
	Percent int      `json:"percent"`
	Groups  []string `json:"groups,omitempty"`
	// Stats are the numbers of the latest evaluation (a hold included),
	// made at Evaluated; zero before the first.
	Stats     Stats     `json:"stats"`
	Evaluated time.Time `json:"evaluated,omitzero"`
	// Log is the newest decisions of the audit log, oldest first.
	Log []Decision `json:"log"`
}

// Watch keeps the latest evaluation of every rollout, fed by
// Controller.OnDecision: the audit log stores only the decisions that
// change something, the dashboard and the metrics want the numbers of
// every tick. It is safe for concurrent use; the zero value is ready.
type Watch struct {
	mu   sync.Mutex
	last map[string]Decision
}

// Observe records d as the latest evaluation of r (Controller.OnDecision).
// A manual change without numbers (pause, resume, abort) keeps the
// numbers of the evaluation before it.
func (w *Watch) Observe(r Rollout, d Decision) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = map[string]Decision{}
	}
	if prev, ok := w.last[r.Key()]; ok && d.Stats == (Stats{}) {
		d.Stats = prev.Stats
	}
	w.last[r.Key()] = d
}

// Views reads every rollout of the store with the last logN decisions of
// its audit log (0: none), and the numbers of its latest evaluation:
// the one observed, or else the newest decision of the log that carries
// numbers (after a restart).
func (w *Watch) Views(ctx context.Context, s Store, logN int) ([]View, error) {
	list, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(list))
	for i := range list {
		r := list[i]
		v := View{Rollout: r, Percent: r.Percent(), Groups: r.Groups(), Stage: string(r.State)}
		if r.State == Running || r.State == Paused {
			v.Stage = r.Plan.Steps[r.Step].Name()
		}
		log, err := s.Log(ctx, r.Key())
		if err != nil {
			return nil, err
		}
		for j := len(log) - 1; j >= 0; j-- {
			if log[j].Stats != (Stats{}) {
				v.Stats, v.Evaluated = log[j].Stats, log[j].Time
				break
			}
		}
		if w != nil {
			w.mu.Lock()
			if d, ok := w.last[r.Key()]; ok && !d.Time.Before(v.Evaluated) {
				v.Stats, v.Evaluated = d.Stats, d.Time
			}
			w.mu.Unlock()
		}
		if logN > 0 && len(log) > logN {
			log = log[len(log)-logN:]
		}
		if logN > 0 {
			v.Log = log
		}
		out = append(out, v)
	}
	return out, nil
}
