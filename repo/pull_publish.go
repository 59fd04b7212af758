package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// pullPublish makes the change fn describes to dists in one transaction
// and publishes every distribution it changed, all or nothing: with the
// lock held for the whole command, each distribution (and its Archive)
// is snapshotted as IncludePublish snapshots one, the change is made
// without publishing, and then each is exported; if anything fails,
// every snapshot is rolled back — the database, dists/ of each and their
// Log: files are as they were. With --export=never nothing is published
// and the transaction alone is the all-or-nothing step.
func (r *Repo) pullPublish(ctx context.Context, dists []*Distribution, fn func(tx *bolt.Tx, res *Result) ([]string, error)) (*Result, error) {
	if r.opts.Export == ExportNever {
		return r.changeAll(ctx, dists, true, fn)
	}
	w, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	var snaps []*snapshot
	tables := chunkTables{}
	defer func() {
		for i := len(snaps) - 1; i >= 0; i-- { // the first may remove DBDIR/tmp
			snaps[i].discard()
		}
	}()
	seen := map[string]bool{}
	var codenames []string
	for _, d := range dists {
		for _, x := range []*Distribution{d, r.Conf.Lookup(d.Archive)} {
			if x == nil || seen[x.Codename] {
				continue
			}
			seen[x.Codename] = true
			s, err := r.snapshot(ctx, x)
			if err != nil {
				return nil, err
			}
			snaps = append(snaps, s)
			if err := tables.save(r, x); err != nil {
				return nil, err
			}
		}
		codenames = append(codenames, d.Codename)
	}
	before, err := r.knownUnreferenced()
	if err != nil {
		return nil, err
	}
	inner, err := r.innerRepo(snaps[0].dir, "", nil)
	if err != nil {
		return nil, err
	}
	res, err := inner.changeAll(ctx, dists, true, fn)
	if err != nil {
		return nil, r.rollbackAll(ctx, snaps, tables, res, err)
	}
	for _, d := range append(dists[:len(dists):len(dists)], r.archivesChanged(dists, res)...) {
		did, err := inner.exportLocked(ctx, d)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return nil, r.rollbackAll(ctx, snaps, tables, res, err)
		}
		if did {
			res.Exported = append(res.Exported, d.Codename)
		}
	}
	// The change is out; what follows only tidies up.
	if !r.opts.KeepUnreferenced {
		r.deleteNewlyUnreferenced(ctx, inner, strings.Join(codenames, " "), before, res)
	}
	return res, r.syncTargets(ctx, nil)
}

// rollbackAll rolls every snapshot back (see rollback), and the chunk
// tables of their indices, and returns cause with what could not be
// restored.
func (r *Repo) rollbackAll(ctx context.Context, snaps []*snapshot, tables chunkTables, res *Result, cause error) error {
	err := cause
	for _, s := range snaps {
		err = r.rollback(ctx, s, res, err)
	}
	if terr := tables.restore(); terr != nil {
		err = fmt.Errorf("%w; restoring the repository failed too: %w", err, terr)
	}
	return err
}

// chunkTables holds the chunk tables (db/indices, index_patch.go) of
// distributions before a change, by path; nil content: there was none.
// A table that no longer matches what is published only makes the next
// export rebuild, but a rolled-back command leaves db/ as it was.
type chunkTables map[string][]byte

// save records the chunk tables of d's targets.
func (c chunkTables) save(r *Repo, d *Distribution) error {
	for _, t := range d.Targets() {
		p := r.chunkTablePath(t)
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		c[p] = b
	}
	return nil
}

// restore puts the recorded chunk tables back.
func (c chunkTables) restore() error {
	var errs []error
	for p, b := range c {
		var err error
		if b == nil {
			err = os.Remove(p)
			if errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
		} else {
			err = os.WriteFile(p, b, 0o600)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
