package repo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// putIndex writes an index file to name: its data, or the file it was
// spooled to (moved, so at most once).
func putIndex(ctx context.Context, st Storage, name string, f indexFile) error {
	if f.path != "" {
		return st.PutFile(ctx, name, f.path)
	}
	return st.WriteFile(ctx, name, f.data)
}

// byHashNames are the by-hash paths of an index file, relative to the
// storage root: SHA256 and SHA512 (apt fetches the strongest hash the
// Release file lists).
func byHashNames(codename string, f indexFile) (sha256, sha512 string) {
	dir := "dists/" + codename + "/" + path.Dir(f.rel) + "/by-hash/"
	return dir + "SHA256/" + f.sums.SHA256, dir + "SHA512/" + f.sums.SHA512
}

// exportDist publishes a distribution: the indices of targets whose
// package lists changed (all of them when force is set, or when their
// files were never published), then the Release files — also when no
// index changed if resign is set (Renew: a new Date and Valid-Until,
// nothing else). It reports whether it published anything.
//
// The order makes a half-done publish invisible to apt: content-addressed
// by-hash files first, then the index files under their names (renamed
// into place), then Release, Release.gpg and InRelease last. A client
// holding the previous InRelease still finds every index it lists under
// by-hash, because superseded by-hash files are kept for
// Options.ByHashRetention.
func (r *Repo) exportDist(ctx context.Context, db *bolt.DB, d *Distribution, force, resign bool) (bool, error) {
	var (
		regen   []Target
		stored  = map[string]Checksums{}
		buffers freeList
		// Each target's index files are built while its Packages
		// content is read.
		mu       sync.Mutex
		wg       sync.WaitGroup
		built    = map[Target][]indexFile{}
		buildErr error
	)
	defer buffers.free()
	// A big first index is spooled to a file in a staging directory of
	// its own (see readPackages); publishing moves it into place.
	var spoolDir string
	var madeRoot bool
	defer func() {
		if spoolDir != "" {
			os.RemoveAll(spoolDir)
			if madeRoot {
				os.Remove(r.tmpRoot) // only if empty: others may be staging
			}
		}
	}()
	spool := func(size int) (*os.File, error) {
		if size < r.spoolMin {
			return nil, nil
		}
		if spoolDir == "" {
			_, err := os.Stat(r.tmpRoot)
			made := os.IsNotExist(err)
			dir, err := r.stagingDir()
			if err != nil {
				return nil, err
			}
			spoolDir, madeRoot = dir, made
		}
		f, err := os.CreateTemp(spoolDir, "Packages-*")
		if err == nil {
			err = f.Chmod(0o644) // published as it is (moved into place)
		}
		return f, err
	}
	err := db.View(func(tx *bolt.Tx) error {
		dirty, exp := bucket(tx, bDirty), bucket(tx, bExported)
		for _, t := range d.Targets() {
			need := force || dirty.Get([]byte(t.String())) != nil
			for _, n := range indexNames(d, t) {
				if need {
					break
				}
				v := exp.Get([]byte(d.Codename + "/" + n.rel))
				if v == nil {
					need = true
					break
				}
				c, err := decodeChecksums(v)
				if err != nil {
					return err
				}
				stored[n.rel] = c
			}
			if !need {
				continue
			}
			var hint int64
			if v := exp.Get([]byte(d.Codename + "/" + indexNames(d, t)[0].rel)); v != nil {
				if c, err := decodeChecksums(v); err == nil {
					hint = c.Size
				}
			}
			regen = append(regen, t)
			s := newPkgStream()
			build := func() {
				defer wg.Done()
				files, err := buildIndex(d, t, s, &buffers)
				mu.Lock()
				defer mu.Unlock()
				if err != nil && buildErr == nil {
					buildErr = fmt.Errorf("export %s: %w", t, err)
				}
				built[t] = files
			}
			wg.Add(1)
			// An index published before is built while it is read (an
			// add or remove: latency). A first one is read whole first
			// (a big import: the database pages read are dropped before
			// the compressor's memory is taken, for a lower peak).
			if hint > 0 {
				go build()
			}
			err := readPackages(tx, t, hint, &buffers, spool, s)
			if hint <= 0 {
				go build()
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	wg.Wait()
	if err != nil {
		return false, fmt.Errorf("export %s: %w", d.Codename, err)
	}
	if len(regen) == 0 && !resign {
		return false, nil
	}
	if buildErr == nil {
		buildErr = ctx.Err()
	}
	if buildErr != nil {
		return false, buildErr
	}
	now := r.opts.Now()
	var entries []releaseEntry
	for _, t := range d.Targets() {
		if files, ok := built[t]; ok {
			for _, f := range files {
				entries = append(entries, releaseEntry{f.rel, f.sums})
			}
			continue
		}
		for _, n := range indexNames(d, t) {
			entries = append(entries, releaseEntry{n.rel, stored[n.rel]})
		}
	}
	release := topRelease(d, now, entries)
	var inRelease, releaseGPG []byte
	if d.SignWith != "" {
		s, err := r.opts.Signer(ctx, d)
		if err != nil {
			return false, err
		}
		if inRelease, err = s.Clearsign(ctx, bytes.NewReader(release)); err != nil {
			return false, fmt.Errorf("export %s: sign InRelease: %w: %w", d.Codename, ErrSigning, err)
		}
		if releaseGPG, err = s.SignDetachedArmored(ctx, bytes.NewReader(release)); err != nil {
			return false, fmt.Errorf("export %s: sign Release.gpg: %w: %w", d.Codename, ErrSigning, err)
		}
	}
	prune, err := r.noteByHash(db, d, regen, built, now)
	if err != nil {
		return false, err
	}
	if err := r.publishFiles(ctx, d, regen, built, release, inRelease, releaseGPG); err != nil {
		return false, err
	}
	for _, name := range prune {
		if err := r.storage.Remove(ctx, name); err != nil {
			r.opts.Warn(fmt.Sprintf("export %s: remove old %s: %v", d.Codename, name, err))
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		dirty, exp, bh := bucket(tx, bDirty), bucket(tx, bExported), bucket(tx, bByHash)
		for _, t := range regen {
			if err := dirty.Delete([]byte(t.String())); err != nil {
				return err
			}
			for _, f := range built[t] {
				if err := exp.Put([]byte(d.Codename+"/"+f.rel), f.sums.encode()); err != nil {
					return err
				}
			}
		}
		for _, name := range prune {
			if err := bh.Delete([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("export %s: record: %w", d.Codename, err)
	}
	return true, nil
}

// noteByHash records the by-hash files about to be published as current,
// marks the ones they supersede with the time, and returns the superseded
// files older than the retention (to delete once the new ones are live).
// Recording before publishing means an interrupted export leaks nothing:
// the next one supersedes what this one wrote.
func (r *Repo) noteByHash(db *bolt.DB, d *Distribution, regen []Target, built map[Target][]indexFile, t0 time.Time) ([]string, error) {
	var prune []string
	cutoff := t0.Add(-r.opts.ByHashRetention)
	err := db.Update(func(tx *bolt.Tx) error {
		bh := bucket(tx, bByHash)
		for _, t := range regen {
			current := map[string]bool{}
			for _, f := range built[t] {
				if !f.byHash {
					continue
				}
				a, b := byHashNames(d.Codename, f)
				current[a], current[b] = true, true
			}
			prefix := []byte(t.Dir() + "/by-hash/")
			c := bh.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				name := string(k)
				if current[name] {
					continue
				}
				when := decodeTime(v)
				switch {
				case when.IsZero():
					if err := bh.Put(k, encodeTime(t0)); err != nil {
						return err
					}
				case when.Before(cutoff):
					prune = append(prune, name)
				}
			}
			for name := range current {
				if err := bh.Put([]byte(name), encodeTime(time.Time{})); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export %s: by-hash bookkeeping: %w", d.Codename, err)
	}
	return prune, nil
}

// publishFiles writes the new files of a distribution in the safe order.
func (r *Repo) publishFiles(ctx context.Context, d *Distribution, regen []Target, built map[Target][]indexFile, release, inRelease, releaseGPG []byte) error {
	st := r.storage
	fail := func(name string, err error) error {
		return fmt.Errorf("export %s: publish %s: %w", d.Codename, name, err)
	}
	// 1. content-addressed copies, which nothing references yet.
	for _, t := range regen {
		for _, f := range built[t] {
			if !f.byHash {
				continue
			}
			a, b := byHashNames(d.Codename, f)
			if ok, err := st.Exists(ctx, a); err != nil || !ok {
				if err := putIndex(ctx, st, a, f); err != nil {
					return fail(a, err)
				}
			}
			if ok, err := st.Exists(ctx, b); err != nil || !ok {
				if err := st.Copy(ctx, a, b); err != nil {
					return fail(b, err)
				}
			}
		}
	}
	// 2. the index files under their names.
	for _, t := range regen {
		for _, f := range built[t] {
			if !f.written {
				continue
			}
			name := "dists/" + d.Codename + "/" + f.rel
			var err error
			if f.byHash {
				a, _ := byHashNames(d.Codename, f)
				err = st.Copy(ctx, a, name)
			} else {
				err = putIndex(ctx, st, name, f)
			}
			if err != nil {
				return fail(name, err)
			}
		}
	}
	if err := st.Sync(ctx); err != nil {
		return fail("indices", err)
	}
	// 3. Release, its signatures, InRelease last.
	base := "dists/" + d.Codename + "/"
	if inRelease == nil {
		for _, n := range []string{"InRelease", "Release.gpg"} {
			if err := st.Remove(ctx, base+n); err != nil {
				return fail(base+n, err)
			}
		}
	}
	if err := st.WriteFile(ctx, base+"Release", release); err != nil {
		return fail(base+"Release", err)
	}
	if inRelease != nil {
		if err := st.WriteFile(ctx, base+"Release.gpg", releaseGPG); err != nil {
			return fail(base+"Release.gpg", err)
		}
		if err := st.WriteFile(ctx, base+"InRelease", inRelease); err != nil {
			return fail(base+"InRelease", err)
		}
	}
	return st.Sync(ctx)
}

// isByHashPath tells by-hash files in a storage listing.
func isByHashPath(name string) bool { return strings.Contains(name, "/by-hash/") }
