package updateserver

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lampi-pkg/lampi-pkg/rollout"
)

// controller is the rollout controller over this server's repository and
// fleet database; nil without Config.Fleet (it decides on the fleet's
// reports).
func (s *Server) controller(r rollout.Publisher) *rollout.Controller {
	if s.fleet == nil {
		return nil
	}
	host, _ := os.Hostname()
	c := &rollout.Controller{
		Store:     s.rolloutStore(),
		Fleet:     s.fleet.store,
		Publisher: r,
		Holder:    fmt.Sprintf("%s/%d", host, os.Getpid()),
		LeaseTTL:  3 * s.cfg.RolloutInterval,
		Now:       s.cfg.Now,
	}
	if s.rollouts != nil {
		c.OnDecision = s.rollouts.onDecision
	}
	return c
}

// walkRollouts runs the rollout controller every Config.RolloutInterval
// until ctx ends: each tick opens the repository as uploads do, and the
// controller advances, completes, halts or reverts the running rollouts
// (only while it holds the lease in db/rollouts.db, so that one of
// several servers on one store acts). Decisions go to Config.Notef, and
// failures too; a failure is retried at the next tick.
func (s *Server) walkRollouts(ctx context.Context) {
	t := time.NewTicker(s.cfg.RolloutInterval)
	defer t.Stop()
	for {
		s.rolloutTick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rolloutTick is one tick of walkRollouts.
func (s *Server) rolloutTick(ctx context.Context) {
	r, err := s.openRepo()
	if err != nil {
		s.cfg.Notef("warning: rollouts: %v (retrying in %v)", err, s.cfg.RolloutInterval)
		return
	}
	c := s.controller(rollout.RepoPublisher{Repo: r})
	ds, _, err := c.Tick(ctx)
	for _, d := range ds {
		s.cfg.Notef("rollout %s: %s %d%% → %d%%: %s", d.Rollout, d.Action, d.From, d.To, d.Reason)
	}
	if err != nil && ctx.Err() == nil {
		s.cfg.Notef("warning: rollouts: %v (retrying in %v)", err, s.cfg.RolloutInterval)
	}
}
