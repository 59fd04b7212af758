package updateserver

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/rollout"
)

// rolloutPanelAge keeps a closed rollout on the dashboard's panel for a
// day after its last decision.
const rolloutPanelAge = 24 * time.Hour

// rolloutVis is what the server shows and tells of its rollouts: the
// latest evaluation of each (for the dashboard and /metrics) and the
// optional webhook.
type rolloutVis struct {
	watch rollout.Watch
	hook  *rollout.Webhook // nil without Config.RolloutWebhook
}

// newRolloutVis checks the webhook's URL; its errors never quote it.
func newRolloutVis(s *Server) (*rolloutVis, error) {
	v := &rolloutVis{}
	if s.cfg.RolloutWebhook != "" {
		h, err := rollout.NewWebhook(rollout.WebhookOptions{URL: s.cfg.RolloutWebhook, Logf: s.cfg.Notef})
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		v.hook = h
	}
	return v, nil
}

// onDecision is the controller's OnDecision: it never blocks.
func (v *rolloutVis) onDecision(r rollout.Rollout, d rollout.Decision) {
	v.watch.Observe(r, d)
	if v.hook != nil {
		v.hook.Notify(r, d)
	}
}

// rolloutStore is the rollout store the controller uses.
func (s *Server) rolloutStore() rollout.Store {
	return &rollout.BoltStore{Path: s.layout.Rollouts()}
}

// writeRolloutMetrics appends the rollouts' gauges to /metrics.
func (s *Server) writeRolloutMetrics(w io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	views, err := s.rollouts.watch.Views(ctx, s.rolloutStore(), 0)
	if err != nil {
		return err
	}
	return rollout.WriteMetrics(w, views)
}

// rolloutPanels fills the dashboard's rollout panel: the open rollouts,
// then those closed within rolloutPanelAge, each with its newest
// decisions.
func (s *Server) rolloutPanels(ctx context.Context) ([]fleet.RolloutPanel, error) {
	views, err := s.rollouts.watch.Views(ctx, s.rolloutStore(), 8)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var open, closed []fleet.RolloutPanel
	for _, v := range views {
		r := v.Rollout
		p := fleet.RolloutPanel{Key: r.Key(), State: string(r.State), Reason: r.Reason, Stage: v.Stage, Percent: v.Percent,
			Groups: v.Groups, Eligible: v.Stats.Eligible, Updated: v.Stats.Updated, Attempted: v.Stats.Attempted,
			Failed: v.Stats.Failed, HealthFailed: v.Stats.HealthFailed, Stuck: v.Stats.Stuck, Evaluated: v.Evaluated}
		last := r.Started
		for _, d := range v.Log {
			p.Log = append(p.Log, fleet.RolloutLogEntry{Time: d.Time, Action: string(d.Action), From: d.From, To: d.To, Reason: d.Reason})
			last = d.Time
		}
		switch {
		case !r.Closed():
			open = append(open, p)
		case now.Sub(last) < rolloutPanelAge:
			closed = append(closed, p)
		}
	}
	return append(open, closed...), nil
}

// extraMetrics is server.Options.ExtraMetrics: the rollouts' gauges while
// the controller runs, nothing otherwise.
func (s *Server) extraMetrics() func(io.Writer) error {
	if s.rollouts == nil {
		return nil
	}
	return s.writeRolloutMetrics
}
