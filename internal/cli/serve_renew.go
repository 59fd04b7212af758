package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// renewReleases keeps the repository's Release files from expiring while
// serve runs: at once and then every interval it runs repo.Renew through
// open (the repository as uploads open it: the same lock, signer and
// publish targets), which re-signs the distributions with less than half
// of ValidFor left. Unlike an upload, a renewal does not wait for the
// publish targets to answer: the local tree is renewed even when a target
// is down, which the next sync catches up with. Renewals and failures are
// logged to env.Err; a failure is retried at the next tick. It returns
// when ctx ends.
func renewReleases(ctx context.Context, env *Env, open func() (*repo.Repo, error), interval time.Duration) {
	if r, err := open(); err == nil {
		for _, d := range r.Conf.Distributions {
			switch {
			case d.ValidFor == 0:
				fmt.Fprintf(env.Err, "lampi-pkg: note: %s has no ValidFor in %s: its Release never expires, so a mirror or cache that keeps serving an old InRelease holds devices on old packages unnoticed; add \"ValidFor: %s\" there and serve renews it\n",
					d.Codename, d.File, repo.DefaultValidFor)
			case d.ValidFor/2 <= interval:
				fmt.Fprintf(env.Err, "lampi-pkg: warning: %s has ValidFor %v in %s, renewed when half of it is left: checking every %v (--renew-interval) may be too late\n",
					d.Codename, d.ValidFor, d.File, interval)
			}
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		renewOnce(ctx, env, open, interval)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// renewOnce is one tick of renewReleases.
func renewOnce(ctx context.Context, env *Env, open func() (*repo.Repo, error), interval time.Duration) {
	var rs []repo.Renewal
	r, err := open()
	if err == nil {
		rs, err = r.Renew(ctx, repo.RenewOptions{})
	}
	for _, n := range rs {
		if n.Renewed {
			fmt.Fprintf(env.Err, "lampi-pkg: re-signed dists/%s/Release: valid until %s, next renewal from %s\n",
				n.Codename, n.ValidUntil.UTC().Format(time.RFC1123), n.Due.UTC().Format(time.RFC1123))
		}
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(env.Err, "lampi-pkg: warning: renewing the Release files failed: %v (retrying in %v)\n", err, interval)
	}
}
