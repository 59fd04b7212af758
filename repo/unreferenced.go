package repo

import (
	"context"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// finish ends a modifying command: it publishes the changed
// distributions (unless Options.Export is ExportNever), then deletes the
// pool files that lost their last reference (unless
// Options.KeepUnreferenced) — after the new indices are live, so that no
// published index ever names a deleted file.
func (r *Repo) finish(ctx context.Context, w *writer, dists []*Distribution, unref []string, res *Result) error {
	if r.opts.Export != ExportNever {
		for _, d := range dists {
			did, err := r.exportDist(ctx, w.db, d, false)
			if err != nil {
				return err
			}
			if did {
				res.Exported = append(res.Exported, d.Codename)
			}
		}
	}
	if r.opts.KeepUnreferenced || r.opts.Export == ExportNever || len(unref) == 0 {
		return nil
	}
	deleted, err := r.deleteFiles(ctx, w.db, unref)
	res.Deleted = append(res.Deleted, deleted...)
	return err
}

// deleteFiles removes pool files that are (still) unreferenced, then
// forgets them.
func (r *Repo) deleteFiles(ctx context.Context, db *bolt.DB, names []string) ([]string, error) {
	var gone []string
	err := db.View(func(tx *bolt.Tx) error {
		u := bucket(tx, bUnreferenced)
		for _, n := range names {
			if u.Get([]byte(n)) != nil {
				gone = append(gone, n)
			}
		}
		return nil
	})
	if err != nil || len(gone) == 0 {
		return nil, err
	}
	sort.Strings(gone)
	for _, n := range gone {
		if err := r.storage.Remove(ctx, n); err != nil {
			return nil, fmt.Errorf("delete unreferenced %s: %w", n, err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, n := range gone {
			if err := bucket(tx, bUnreferenced).Delete([]byte(n)); err != nil {
				return err
			}
			if err := bucket(tx, bFiles).Delete([]byte(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("forget deleted pool files: %w", err)
	}
	return gone, nil
}

// logLines turns changes into reprepro's log format:
// "add CODENAME deb COMPONENT ARCH NAME VERSION",
// "replace … NAME NEW OLD", "remove … NAME VERSION".
func logLines(d *Distribution, changes []Change) []string {
	var out []string
	for _, c := range changes {
		head := fmt.Sprintf("%s %s deb %s %s %s", c.Action, d.Codename, c.Target.Component, c.Target.Arch, c.Package)
		switch c.Action {
		case "add", "remove":
			out = append(out, head+" "+c.Version)
		case "replace":
			out = append(out, head+" "+c.Version+" "+c.OldVersion)
		}
	}
	return out
}
