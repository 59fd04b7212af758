package repo

import (
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ClearVanished forgets the package lists of distributions, components
// and architectures that conf/distributions no longer has, as "reprepro
// clearvanished": their pool files lose those references (and go when
// nothing else needs them). A list that still holds packages is kept
// with a warning unless del is set (reprepro's --delete). dists/ is left
// as it is, and the state database keeps the record of what was
// published there: a distribution configured again later starts empty
// instead of being adopted from its stale indices. Result.Vanished names
// the lists forgotten.
func (r *Repo) ClearVanished(ctx context.Context, del bool) (*Result, error) {
	configured, codenames := map[string]bool{}, map[string]bool{}
	for _, d := range r.Conf.Distributions {
		codenames[d.Codename] = true
		for _, t := range d.Targets() {
			configured[t.String()] = true
		}
	}
	w, err := r.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	res := &Result{}
	var unref []string
	err = w.db.Update(func(tx *bolt.Tx) error {
		var err error
		unref, err = r.clearVanishedLists(tx, configured, del, res)
		if err != nil {
			return err
		}
		released, err := clearVanishedTracking(tx, codenames)
		unref = append(unref, released...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("clearvanished: %w", err)
	}
	return res, r.finish(ctx, w, nil, unref, res)
}

// clearVanishedLists forgets the package lists of targets no longer
// configured (those still holding packages only with del), noting them in
// res; it returns the pool files nothing holds any more.
func (r *Repo) clearVanishedLists(tx *bolt.Tx, configured map[string]bool, del bool, res *Result) (unref []string, err error) {
	pk := bucket(tx, bPackages)
	var vanished []string
	err = pk.ForEachBucket(func(name []byte) error {
		if !configured[string(name)] {
			vanished = append(vanished, string(name))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, name := range vanished {
		b := pk.Bucket([]byte(name))
		if k, _ := b.Cursor().First(); k != nil && !del {
			r.opts.Warn(fmt.Sprintf("package list %s is in no distribution of conf/distributions but still holds packages; kept (give --delete to forget them)", name))
			continue
		}
		err := b.ForEach(func(k, v []byte) error {
			for _, fk := range entryFiles(v) {
				last, err := dropRefOf(tx, fk, name)
				if err != nil {
					return err
				}
				if last {
					unref = append(unref, fk)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := pk.DeleteBucket([]byte(name)); err != nil {
			return nil, err
		}
		if err := bucket(tx, bDirty).Delete([]byte(name)); err != nil {
			return nil, err
		}
		res.Vanished = append(res.Vanished, name)
	}
	return unref, nil
}

// clearVanishedTracking drops the tracking records of codenames no longer
// configured; it returns the pool files nothing holds any more.
func clearVanishedTracking(tx *bolt.Tx, codenames map[string]bool) (unref []string, err error) {
	var gone []string
	if tb := bucket(tx, bTracking); tb != nil {
		err := tb.ForEach(func(k, _ []byte) error {
			c, _, _ := strings.Cut(string(k), "\x00")
			if !codenames[c] && (len(gone) == 0 || gone[len(gone)-1] != c) {
				gone = append(gone, c)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, c := range gone {
		released, err := dropTracking(tx, c)
		if err != nil {
			return nil, err
		}
		unref = append(unref, released...)
	}
	return unref, nil
}
