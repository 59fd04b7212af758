package updateserver

import (
	"context"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// renewReleases keeps the repository's Release files from expiring while
// the server runs: at once and then every Config.RenewInterval it runs
// repo.Renew on the repository as uploads open it (the same lock, signer
// and publish targets), which re-signs the distributions with less than
// half of ValidFor left. Unlike an upload, a renewal does not wait for
// the publish targets to answer: the local tree is renewed even when a
// target is down, which the next sync catches up with. Renewals and
// failures go to Config.Notef; a failure is retried at the next tick. It
// returns when ctx ends.
func (s *Server) renewReleases(ctx context.Context) {
	interval := s.cfg.RenewInterval
	if r, err := s.openRepo(); err == nil {
		for _, d := range r.Conf.Distributions {
			switch {
			case d.ValidFor == 0:
				s.cfg.Notef("note: %s has no ValidFor in %s: its Release never expires, so a mirror or cache that keeps serving an old InRelease holds devices on old packages unnoticed; add \"ValidFor: %s\" there and serve renews it",
					d.Codename, d.File, repo.DefaultValidFor)
			case d.ValidFor/2 <= interval:
				s.cfg.Notef("warning: %s has ValidFor %v in %s, renewed when half of it is left: checking every %v (--renew-interval) may be too late",
					d.Codename, d.ValidFor, d.File, interval)
			}
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.renewOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// renewOnce is one tick of renewReleases.
func (s *Server) renewOnce(ctx context.Context) {
	var rs []repo.Renewal
	r, err := s.openRepo()
	if err == nil {
		rs, err = r.Renew(ctx, repo.RenewOptions{})
	}
	for _, n := range rs {
		if n.Renewed {
			s.cfg.Notef("re-signed dists/%s/Release: valid until %s, next renewal from %s",
				n.Codename, n.ValidUntil.UTC().Format(time.RFC1123), n.Due.UTC().Format(time.RFC1123))
		}
	}
	if err != nil && ctx.Err() == nil {
		s.cfg.Notef("warning: renewing the Release files failed: %v (retrying in %v)", err, s.cfg.RenewInterval)
	}
}
