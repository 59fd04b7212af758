package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// finish ends a modifying command: it publishes the changed
// distributions (unless Options.Export is ExportNever), then deletes the
// pool files that lost their last reference (unless
// Options.KeepUnreferenced) — after the new indices are live, so that no
// published index ever names a deleted file.
func (r *Repo) finish(ctx context.Context, w *writer, dists []*Distribution, unref []string, res *Result) (err error) {
	defer func() { err = r.mirrorAfter(ctx, w.db, err) }() // publish targets (target_sync.go)
	// Archive distributions that received packages (archive.go).
	for _, a := range r.archivesChanged(dists, res) {
		r.log(a, logLines(a, res.Changes))
		dists = append(dists[:len(dists):len(dists)], a)
	}
	if r.opts.Export != ExportNever {
		for _, d := range dists {
			did, err := r.exportDist(ctx, w.db, d, false, false)
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
// forgets them. Names stay in the unreferenced list until the files are
// gone, and a journal (db/deleting) names them meanwhile: a process
// killed in between leaves known files that are missing, which the next
// writer forgets (finishDeletes) and checkpool does not count as damage.
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
	journal := r.deleteJournal()
	if err := os.WriteFile(journal, []byte(strings.Join(gone, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("delete unreferenced files: %w", err)
	}
	for _, n := range gone {
		if err := r.storage.Remove(ctx, n); err != nil {
			return nil, fmt.Errorf("delete unreferenced %s: %w", n, err)
		}
	}
	if err := forgetFiles(db, gone); err != nil {
		return nil, fmt.Errorf("forget deleted pool files: %w", err)
	}
	if err := os.Remove(journal); err != nil {
		return nil, fmt.Errorf("delete unreferenced files: %w", err)
	}
	return gone, nil
}

// deleteJournal names the pool files a deletion is removing.
func (r *Repo) deleteJournal() string { return filepath.Join(r.lockDir, "deleting") }

// forgetFiles drops pool files from the unreferenced list and the known
// files.
func forgetFiles(db *bolt.DB, names []string) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, n := range names {
			if err := bucket(tx, bUnreferenced).Delete([]byte(n)); err != nil {
				return err
			}
			if err := bucket(tx, bFiles).Delete([]byte(n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// interruptedDeletes reads the journal a killed deletion left: the pool
// files it may have removed already. None when there is no journal.
func (r *Repo) interruptedDeletes() (map[string]bool, error) {
	b, err := os.ReadFile(r.deleteJournal())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range strings.Split(string(b), "\n") {
		if n != "" {
			out[n] = true
		}
	}
	return out, nil
}

// finishDeletes completes a deletion that a killed process left half
// done: the journal's files that are still unreferenced and already gone
// are forgotten. A file that is still there stays known (a writer may
// just have written it again under the same name), and is deleted with
// the next unreferenced files. Only called while holding the lock.
func (r *Repo) finishDeletes(ctx context.Context, db *bolt.DB) error {
	pending, err := r.interruptedDeletes()
	if err != nil || pending == nil {
		return err
	}
	var missing []string
	err = db.View(func(tx *bolt.Tx) error {
		u := bucket(tx, bUnreferenced)
		for n := range pending {
			if u.Get([]byte(n)) == nil {
				continue
			}
			ok, err := r.storage.Exists(ctx, n)
			if err != nil {
				return err
			}
			if !ok {
				missing = append(missing, n)
			}
		}
		return nil
	})
	if err == nil && len(missing) > 0 {
		err = forgetFiles(db, missing)
	}
	if err == nil {
		err = os.Remove(r.deleteJournal())
	}
	if err != nil {
		return fmt.Errorf("finish an interrupted deletion of pool files: %w", err)
	}
	return nil
}

// logLines turns the changes of d into reprepro's log format:
// "add CODENAME deb COMPONENT ARCH NAME VERSION",
// "replace … NAME NEW OLD", "remove … NAME VERSION".
func logLines(d *Distribution, changes []Change) []string {
	var out []string
	for _, c := range changes {
		if c.Target.Codename != d.Codename {
			continue
		}
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
