package repo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
)

// This file is the repository side of "lampi-pkg release": an include and
// publish that either happens completely or leaves db/, pool/, dists/ and
// the Log: file as they were.

// Release steps reported to IncludePublish's step callback.
const (
	StepLock    = "lock"
	StepInclude = "include"
	StepPublish = "publish"
)

// PublishSigner checks that a distribution can take new packages and be
// published, without changing anything: it exists, is not ReadOnly, and
// its SignWith key (if any) can be loaded and unlocked. It returns the
// signer of the distribution, nil when it is published unsigned. Errors
// wrap ErrUnknownCodename, ErrReadOnly or ErrSigning.
func (r *Repo) PublishSigner(ctx context.Context, codename string) (Signer, error) {
	d, err := r.writable("publish", codename)
	if err != nil {
		return nil, err
	}
	if d.SignWith == "" {
		return nil, nil
	}
	s, err := r.opts.Signer(ctx, d)
	if err != nil {
		if !errors.Is(err, ErrSigning) {
			err = fmt.Errorf("distribution %s: %w: %w", codename, ErrSigning, err)
		}
		return nil, err
	}
	return s, nil
}

// PublishOptions refine IncludePublish.
type PublishOptions struct {
	// Include refines the inclusion as for IncludeDeb.
	Include IncludeOptions
	// Signer signs the distribution's Release file; nil resolves its
	// SignWith as Export does. PublishSigner returns one to reuse, so
	// that a passphrase is asked once.
	Signer Signer
	// Step, if set, is called with StepLock, StepInclude and StepPublish
	// as each step begins.
	Step func(step string)
	// Pins (their Codename is the distribution's) are kept (Repo.Pin)
	// before the packages are included, in the same all-or-nothing step: a rollout's last good version, which the
	// include must not push out beyond Limit.
	Pins []Pin
	// Phase, when set, is the Phased-Update-Percentage the included
	// packages are published with (a rollout's first step): they are
	// never published unphased in between.
	Phase *int
}

// IncludePublish is IncludeDeb followed by the export of the distribution,
// as one all-or-nothing step: if anything fails — the lock, a package, a
// pool or index write, signing the Release file — the state database, the
// pool, dists/<codename> and the distribution's Log: file are put back as
// they were, byte for byte (o.Step tells which step failed).
//
// It works like this: with the repository lock held for the whole
// command, the state database is copied and dists/<codename> is
// snapshotted (hard links for a storage.DirStorage, copies otherwise) into a
// private directory under DBDIR/tmp; the packages are then included and
// the distribution published; on failure the published files are put
// back (indices first, Release and InRelease last), files that did not
// exist are removed, the database copy is renamed over the database, and
// pool files the restored database does not know are deleted. Pool files
// that lose their last reference are deleted only once the publish has
// succeeded (unless Options.KeepUnreferenced), and a failure there is a
// warning, not an error: the release is out.
//
// Options.Export is ignored: the distribution is always published. A
// process killed half way leaves the repository as an interrupted
// IncludeDeb would (consistent; the next writer cleans up), not rolled
// back.
func (r *Repo) IncludePublish(ctx context.Context, codename string, files []string, o PublishOptions) (*Result, error) {
	step := o.Step
	if step == nil {
		step = func(string) {}
	}
	d, err := r.writable("includedeb", codename)
	if err != nil {
		return nil, err
	}
	step(StepLock)
	signer := o.Signer
	if signer == nil {
		if signer, err = r.PublishSigner(ctx, codename); err != nil {
			return nil, err
		}
	}
	g, err := r.guard(ctx, d, signer, "release")
	if err != nil {
		return nil, err
	}
	defer g.close()

	step(StepInclude)
	res, err := r.includeInto(ctx, g.inner, g.snap, codename, files, o)
	if err != nil {
		return nil, err
	}

	step(StepPublish)
	return r.publishGuarded(ctx, g, d, res)
}

// guarded is an all-or-nothing change of one distribution under way:
// the lock, the snapshot a failure rolls back to, the pool files that
// were unreferenced before, and the inner repository that makes the
// change (see IncludePublish).
type guarded struct {
	w      *writer
	snap   *snapshot
	before []string
	inner  *Repo
}

// guard takes the lock and snapshots d for an all-or-nothing change
// named what; the caller closes it.
func (r *Repo) guard(ctx context.Context, d *Distribution, signer Signer, what string) (*guarded, error) {
	w, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	g := &guarded{w: w}
	if g.snap, err = r.snapshot(ctx, d); err != nil {
		w.close()
		return nil, fmt.Errorf("snapshot before %s: %w", what, err)
	}
	if g.before, err = r.knownUnreferenced(); err == nil {
		g.inner, err = r.innerRepo(g.snap.dir, d.Codename, signer)
	}
	if err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

func (g *guarded) close() {
	g.snap.discard()
	g.w.close()
}

// publishGuarded publishes d after the change g made (res), rolling
// everything back if that fails; then deletes the pool files the change
// left unreferenced and brings the publish targets up to date.
func (r *Repo) publishGuarded(ctx context.Context, g *guarded, d *Distribution, res *Result) (*Result, error) {
	published, err := g.inner.exportLocked(ctx, d)
	if err != nil {
		return nil, r.rollback(ctx, g.snap, res, err)
	}
	if published {
		res.Exported = append(res.Exported, d.Codename)
	}
	// The change is out; what follows only tidies up.
	if !r.opts.KeepUnreferenced {
		r.deleteNewlyUnreferenced(ctx, g.inner, d.Codename, g.before, res)
	}
	return res, r.syncTargets(ctx, nil) // publish targets (target_sync.go)
}

// includeInto applies the pins of o and includes files into the inner
// repository (then its phase, when o sets one); on failure, or when ctx
// is done by then, it rolls the repository back to snap and returns the
// rollback's error.
func (r *Repo) includeInto(ctx context.Context, inner *Repo, snap *snapshot, codename string, files []string, o PublishOptions) (*Result, error) {
	for _, p := range o.Pins {
		p.Codename = codename
		if err := inner.Pin(ctx, p); err != nil {
			return nil, r.rollback(ctx, snap, nil, fmt.Errorf("pin %s %s: %w", p.Package, p.Version, err))
		}
	}
	res, err := inner.IncludeDeb(ctx, codename, files, o.Include)
	if err != nil {
		return nil, r.rollback(ctx, snap, res, err)
	}
	if o.Phase != nil {
		if err := inner.phaseIncluded(ctx, codename, res, *o.Phase); err != nil {
			return nil, r.rollback(ctx, snap, res, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, r.rollback(ctx, snap, res, err)
	}
	return res, nil
}

// deleteNewlyUnreferenced deletes, after a release is out, the pool files
// of inner that lost their last reference in it (those not in before),
// recording them in res.Deleted; a failure is only a warning.
func (r *Repo) deleteNewlyUnreferenced(ctx context.Context, inner *Repo, codename string, before []string, res *Result) {
	after, err := inner.knownUnreferenced()
	if err == nil {
		old := make(map[string]bool, len(before))
		for _, n := range before {
			old[n] = true
		}
		var unref []string
		for _, n := range after {
			if !old[n] {
				unref = append(unref, n)
			}
		}
		res.Deleted, err = inner.deleteUnref(ctx, unref)
	}
	if err != nil {
		r.opts.Warn(fmt.Sprintf("release %s: published, but removing pool files nothing needs any more failed: %v (lampi-pkg repo deleteunreferenced retries)", codename, err))
	}
}

// phaseIncluded sets the Phased-Update-Percentage of the versions res
// added (without publishing: r is an innerRepo).
func (r *Repo) phaseIncluded(ctx context.Context, codename string, res *Result, percent int) error {
	done := map[string]bool{}
	for _, c := range res.Changes {
		if c.Action != "add" && c.Action != "replace" || done[c.Package+" "+c.Version] {
			continue
		}
		done[c.Package+" "+c.Version] = true
		if _, err := r.PhaseVersion(ctx, codename, c.Package, c.Version, percent); err != nil {
			return fmt.Errorf("phase %s %s at %d%%: %w", c.Package, c.Version, percent, err)
		}
	}
	return nil
}

// innerRepo is r with a private lock: it runs the ordinary commands while
// r holds the real lock, without exporting and without deleting pool
// files; it signs codename with signer.
func (r *Repo) innerRepo(snapDir, codename string, signer Signer) (*Repo, error) {
	opts := r.opts
	if signer != nil {
		outer := r.opts.Signer
		opts.Signer = func(ctx context.Context, d *Distribution) (Signer, error) {
			if d.Codename == codename {
				return signer, nil
			}
			return outer(ctx, d)
		}
	}
	opts.Export = ExportNever
	opts.KeepUnreferenced = true
	opts.Storage = r.storage
	opts.Warn = func(string) {} // r reported the configuration's warnings already
	inner, err := OpenConfig(r.Base, r.Conf, opts)
	if err != nil {
		return nil, err
	}
	inner.opts.Warn = r.opts.Warn
	inner.lockDir = filepath.Join(snapDir, "lock")
	inner.chunkEvery = r.chunkEvery
	return inner, nil
}

// exportLocked publishes the changed indices of d.
func (r *Repo) exportLocked(ctx context.Context, d *Distribution) (bool, error) {
	w, err := r.lockWrite(ctx)
	if err != nil {
		return false, err
	}
	did, err := r.exportDist(ctx, w.db, d, false, false)
	if cerr := w.close(); err == nil && cerr != nil {
		err = cerr
	}
	return did, err
}

// deleteUnref removes the pool files in names that are unreferenced.
func (r *Repo) deleteUnref(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	w, err := r.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	return r.deleteFiles(ctx, w.db, names)
}
