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
		LeaseTTL:  max(3*s.cfg.RolloutInterval, MinRolloutLease),
		Now:       s.cfg.Now,
	}
	if s.rollouts != nil {
		c.OnDecision = s.rollouts.onDecision
	}
	return c
}

// MinRolloutLease is the shortest lease of the rollout controller: the
// lease is renewed at each tick, and a tick (opening the repository,
// counting the fleet, publishing) can take seconds on a loaded machine;
// a lease shorter than a tick would let a second server on the same
// repository take over while the first one still acts. A server killed
// mid-rollout is followed by the next one after at most this long.
const MinRolloutLease = 30 * time.Second

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

// apiController is the controller of one request of the rollout API:
// the repository is opened as for an upload (its publish targets
// checked), and the request holds the server's rollout lock, so that it
// and the ticks of walkRollouts do not change a rollout at the same
// time.
func (s *Server) apiController(ctx context.Context) (*rollout.Controller, func(), error) {
	r, err := s.openForUpload()
	if err != nil {
		return nil, nil, err
	}
	s.rolloutMu.Lock()
	return s.controller(rollout.RepoPublisher{Repo: r}), s.rolloutMu.Unlock, nil
}

// rolloutTick is one tick of walkRollouts.
func (s *Server) rolloutTick(ctx context.Context) {
	s.rolloutMu.Lock()
	defer s.rolloutMu.Unlock()
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
