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

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
	bolt "go.etcd.io/bbolt"
)

// putIndex writes an index file to name: its data, or the file it was
// spooled to (moved, so at most once).
func putIndex(ctx context.Context, st storage.Storage, name string, f indexFile) error {
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
// The steps: plan (which targets need new indices), build (read their
// package lists and compress the indices, concurrently), sign (the
// Release file, InRelease and Release.gpg), publish (see publishFiles)
// and record (what was published, in the state database).
//
// The order makes a half-done publish invisible to apt: content-addressed
// by-hash files first, then the index files under their names (renamed
// into place), then Release, Release.gpg and InRelease last. A client
// holding the previous InRelease still finds every index it lists under
// by-hash, because superseded by-hash files are kept for
// Options.ByHashRetention.
func (r *Repo) exportDist(ctx context.Context, db *bolt.DB, d *Distribution, force, resign bool) (bool, error) {
	e := &distExport{r: r, d: d, stored: map[string]Checksums{}, built: map[Target][]indexFile{},
		patches: map[Target]*patchPlan{}, tables: map[Target]*chunkTable{}, spool: indexSpool{r: r}}
	defer e.cleanup()
	err := db.View(func(tx *bolt.Tx) error {
		if err := e.plan(tx, force); err != nil {
			return err
		}
		return e.build(ctx, tx)
	})
	e.wg.Wait()
	if err != nil {
		return false, fmt.Errorf("export %s: %w", d.Codename, err)
	}
	if len(e.regen) == 0 && !resign {
		return false, nil
	}
	if e.buildErr == nil {
		e.buildErr = ctx.Err()
	}
	if e.buildErr != nil {
		return false, e.buildErr
	}
	now := r.opts.Now()
	if err := r.signExport(ctx, e, now); err != nil {
		return false, err
	}
	if err := r.publishExport(ctx, db, e, now); err != nil {
		return false, err
	}
	if err := recordExport(db, e); err != nil {
		return false, fmt.Errorf("export %s: record: %w", d.Codename, err)
	}
	for _, t := range e.regen {
		r.saveChunkTable(t, e.tables[t])
	}
	return true, nil
}

// distExport is one export of a distribution, step by step.
type distExport struct {
	r *Repo
	d *Distribution
	// regen lists the targets whose indices are rebuilt, hints the size
	// of each one's Packages as last published (0: never published).
	regen []Target
	hints []int64
	// patches has the targets of regen whose indices can be patched
	// (index_patch.go), tables the chunk tables of the new indices.
	patches map[Target]*patchPlan
	tables  map[Target]*chunkTable
	// stored has the published index files of the other targets.
	stored map[string]Checksums
	// built has the new index files of each target of regen, buildErr
	// the first error building them.
	mu       sync.Mutex
	wg       sync.WaitGroup
	built    map[Target][]indexFile
	buildErr error
	buffers  freeList
	spool    indexSpool
	// release, inRelease and releaseGPG are the new Release files.
	release, inRelease, releaseGPG []byte
	// prune lists the by-hash files deleted after the publish.
	prune []string
}

// cleanup frees the index buffers and removes the spooled files left.
func (e *distExport) cleanup() {
	e.buffers.free()
	e.spool.remove()
}

// plan decides which targets need new indices: all with force, else
// those whose package lists changed or whose index files were never
// published.
func (e *distExport) plan(tx *bolt.Tx, force bool) error {
	d := e.d
	dirty, exp := bucket(tx, bDirty), bucket(tx, bExported)
	for _, t := range d.Targets() {
		mark := dirty.Get([]byte(t.String()))
		need := force || mark != nil
		if !force && mark != nil {
			if p := e.r.planPatch(tx, d, t, mark); p != nil {
				e.patches[t] = p
			}
		}
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
			e.stored[n.rel] = c
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
		e.regen, e.hints = append(e.regen, t), append(e.hints, hint)
	}
	return nil
}

// build reads the package list of every target of the plan and builds
// its index files in a goroutine each (wait for them with e.wg).
func (e *distExport) build(ctx context.Context, tx *bolt.Tx) error {
	for i, t := range e.regen {
		if p := e.patches[t]; p != nil {
			files, tbl, err := e.r.patchIndex(ctx, tx, e.d, t, p, &e.spool)
			if err != nil {
				return fmt.Errorf("export %s: %w", t, err)
			}
			if files != nil {
				// Builds of other targets started above write these
				// maps from their goroutines.
				e.mu.Lock()
				e.built[t], e.tables[t] = files, tbl
				e.mu.Unlock()
				e.r.patchRuns++
				continue
			}
		}
		hint := e.hints[i]
		s := newPkgStream()
		s.every = e.r.chunkEvery
		build := func() {
			defer e.wg.Done()
			files, tbl, err := buildIndex(e.d, t, s, &e.buffers)
			e.mu.Lock()
			defer e.mu.Unlock()
			if err != nil && e.buildErr == nil {
				e.buildErr = fmt.Errorf("export %s: %w", t, err)
			}
			e.built[t], e.tables[t] = files, tbl
		}
		e.wg.Add(1)
		// An index published before is built while it is read (an add
		// or remove: latency). A first one is read whole first (a big
		// import: the database pages read are dropped before the
		// compressor's memory is taken, for a lower peak).
		if hint > 0 {
			go build()
		}
		err := readPackages(tx, t, hint, &e.buffers, e.spool.create, s)
		if hint <= 0 {
			go build()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// signExport makes the Release file dated now, listing the new index
// files and the stored ones, and signs it when the distribution has
// SignWith.
func (r *Repo) signExport(ctx context.Context, e *distExport, now time.Time) error {
	d := e.d
	var entries []releaseEntry
	for _, t := range d.Targets() {
		if files, ok := e.built[t]; ok {
			for _, f := range files {
				entries = append(entries, releaseEntry{f.rel, f.sums})
			}
			continue
		}
		for _, n := range indexNames(d, t) {
			entries = append(entries, releaseEntry{n.rel, e.stored[n.rel]})
		}
	}
	e.release = topRelease(d, now, entries)
	if d.SignWith == "" {
		return nil
	}
	s, err := r.opts.Signer(ctx, d)
	if err != nil {
		return err
	}
	if e.inRelease, err = s.Clearsign(ctx, bytes.NewReader(e.release)); err != nil {
		return fmt.Errorf("export %s: sign InRelease: %w: %w", d.Codename, ErrSigning, err)
	}
	if e.releaseGPG, err = s.SignDetachedArmored(ctx, bytes.NewReader(e.release)); err != nil {
		return fmt.Errorf("export %s: sign Release.gpg: %w: %w", d.Codename, ErrSigning, err)
	}
	return nil
}

// publishExport notes the new by-hash files, writes everything in the
// safe order and then deletes the by-hash files past their retention
// (recordExport forgets them).
func (r *Repo) publishExport(ctx context.Context, db *bolt.DB, e *distExport, now time.Time) error {
	d := e.d
	prune, err := r.noteByHash(db, d, e.regen, e.built, now)
	if err != nil {
		return err
	}
	if err := r.publishFiles(ctx, d, e.regen, e.built, e.release, e.inRelease, e.releaseGPG); err != nil {
		return err
	}
	for _, name := range prune {
		if err := r.storage.Remove(ctx, name); err != nil {
			r.opts.Warn(fmt.Sprintf("export %s: remove old %s: %v", d.Codename, name, err))
		}
	}
	e.prune = prune
	return nil
}

// recordExport records the published index files, clears the rebuilt
// targets' changed marks and forgets the deleted by-hash files, in one
// transaction.
func recordExport(db *bolt.DB, e *distExport) error {
	return db.Update(func(tx *bolt.Tx) error {
		dirty, exp, bh := bucket(tx, bDirty), bucket(tx, bExported), bucket(tx, bByHash)
		for _, t := range e.regen {
			if err := dirty.Delete([]byte(t.String())); err != nil {
				return err
			}
			// A new generation of the package list's indices: chunk
			// tables of earlier ones no longer apply (index_patch.go).
			b, err := targetBucket(tx, t, false)
			if err != nil {
				return err
			}
			if b != nil {
				gen := b.Sequence() + 1
				if err := b.SetSequence(gen); err != nil {
					return err
				}
				if tbl := e.tables[t]; tbl != nil {
					tbl.gen = gen
				}
			}
			for _, f := range e.built[t] {
				if err := exp.Put([]byte(e.d.Codename+"/"+f.rel), f.sums.encode()); err != nil {
					return err
				}
			}
		}
		for _, name := range e.prune {
			if err := bh.Delete([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
}

// indexSpool makes the files a big first index is spooled to (see
// readPackages), in a staging directory of its own made on first use;
// publishing moves them into place.
type indexSpool struct {
	r        *Repo
	dir      string
	madeRoot bool // DBDIR/tmp did not exist before
}

// create returns a new spool file for an index of size bytes, or nil
// when it is small enough to stay in memory.
func (s *indexSpool) create(size int) (*os.File, error) {
	if size < s.r.spoolMin {
		return nil, nil
	}
	return s.file()
}

// file returns a new spool file.
func (s *indexSpool) file() (*os.File, error) {
	if s.dir == "" {
		_, err := os.Stat(s.r.tmpRoot)
		made := os.IsNotExist(err)
		dir, err := s.r.stagingDir()
		if err != nil {
			return nil, err
		}
		s.dir, s.madeRoot = dir, made
	}
	f, err := os.CreateTemp(s.dir, "Packages-*")
	if err == nil {
		err = f.Chmod(0o644) // published as it is (moved into place)
	}
	return f, err
}

// remove deletes the staging directory and what is left in it.
func (s *indexSpool) remove() {
	if s.dir == "" {
		return
	}
	os.RemoveAll(s.dir)
	if s.madeRoot {
		os.Remove(s.r.tmpRoot) // only if empty: others may be staging
	}
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
