package repo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Importing a large batch into empty package lists (taking a repository
// over, or populating a new distribution) in one bbolt transaction would
// hold every stanza twice until the commit: once as the values handed to
// Put, once in the pages bbolt writes them to. Instead, includeBulk
// builds each new package list as a bucket under bPending, in
// transactions of Repo.bulkChunk packages (with the pool file records and
// references of those packages), dropping the stanzas from memory once
// committed; one last, small transaction then moves the finished buckets
// into bPackages (bbolt moves a bucket by its root page, without copying
// it). That last transaction is the one that changes what any reader
// sees: until it commits, List, Check, Export and the indices show the old
// state, and a command killed before it leaves only bPending and records
// of pool files that no package list names, which the next writer removes
// (dropPending).
//
// Nothing is written before every check has passed, as on the ordinary
// path: a bad batch leaves db/ untouched. The pool files are written and
// synced before the first transaction.

// bPending holds the package lists a bulk import is building, by target
// ("codename|component|arch"). Their values name the pool files it has
// recorded in bFiles and bRefs so far (each chunk writes both). Earlier
// versions also listed those files under pendingFiles, which dropPending
// still reads: one more bucket the last transaction had to delete page
// by page, reading all of them.
const (
	bPending     = "pending"
	pendingFiles = "files"
)

// Defaults of Repo.bulkMin and Repo.bulkChunk (tests lower them).
const (
	// bulkMin is the smallest batch imported in bulk.
	bulkMin = 1000
	// bulkChunk is how many packages one bulk transaction writes.
	bulkChunk = 250
)

// bulkEligible tells whether debs (sorted by name and version) can be
// imported with includeBulk: at least r.bulkMin of them, each name once, every target
// they go to empty, and none of their pool files known to the database
// (so the version rules have nothing to compare with, and no pool file
// can clash).
func (r *Repo) bulkEligible(db *bolt.DB, debs []*incoming) (bool, error) {
	if len(debs) < r.bulkMin {
		return false, nil
	}
	ok := true
	err := db.View(func(tx *bolt.Tx) error {
		files := bucket(tx, bFiles)
		empty := map[Target]bool{}
		for i, in := range debs {
			if i > 0 && debs[i-1].name == in.name {
				ok = false
				return nil
			}
			for _, t := range in.targets {
				e, seen := empty[t]
				if !seen {
					b, err := targetBucket(tx, t, false)
					if err != nil {
						return err
					}
					e = b == nil
					if b != nil {
						k, _ := b.Cursor().First()
						e = k == nil
					}
					empty[t] = e
				}
				if !e {
					ok = false
					return nil
				}
			}
			if files.Get([]byte(in.filekey)) != nil {
				ok = false
				return nil
			}
		}
		return nil
	})
	return ok && err == nil, err
}

// includeBulk adds debs to empty targets (see bulkEligible): the new
// package lists, the pool file records and references are written in
// chunks, the lists under bPending; one last transaction moves the lists
// into place. The pool files must be on disk and synced before.
func (r *Repo) includeBulk(db *bolt.DB, debs []*incoming, st *stager, res *Result) error {
	r.bulkRuns++
	for start := 0; start < len(debs); start += r.bulkChunk {
		chunk := debs[start:min(start+r.bulkChunk, len(debs))]
		if err := db.Update(func(tx *bolt.Tx) error { return putPendingChunk(tx, chunk, st) }); err != nil {
			return fmt.Errorf("bulk import: %w", err)
		}
		for _, in := range chunk {
			in.value = nil // committed: only the database holds it now
		}
	}
	if err := db.Update(func(tx *bolt.Tx) error { return movePendingLists(tx, debs) }); err != nil {
		return err
	}
	n := 0
	for _, in := range debs {
		n += len(in.targets)
	}
	res.Changes = slices.Grow(res.Changes, n)
	for _, in := range debs {
		for _, t := range in.targets {
			res.Changes = append(res.Changes, Change{Action: "add", Target: t, Package: in.name, Version: in.vers, File: in.filekey})
		}
	}
	return nil
}

// putPendingChunk writes one chunk of a bulk import in tx: its entries
// into the package lists being built under bPending, its pool files'
// references and records.
func putPendingChunk(tx *bolt.Tx, chunk []*incoming, st *stager) error {
	pending, err := tx.CreateBucketIfNotExists([]byte(bPending))
	if err != nil {
		return err
	}
	files, refs := bucket(tx, bFiles), bucket(tx, bRefs)
	lists := map[Target]*bolt.Bucket{}
	// The pages read to append are mapped with their freshly written
	// neighbours (the kernel's fault-around): drop them each chunk, or
	// the whole new list would count as resident.
	defer dropMapped(tx)
	return st.values(chunk, func(in *incoming, value, sums []byte) error {
		for _, t := range in.targets {
			b := lists[t]
			if b == nil {
				if b, err = pending.CreateBucketIfNotExists([]byte(t.String())); err != nil {
					return err
				}
				b.FillPercent = 1 // keys come in order
				lists[t] = b
			}
			if err := b.Put(pkgKey(in.name, in.vers), value); err != nil {
				return err
			}
			if err := refs.Put(refKey(in.filekey, t), nil); err != nil {
				return err
			}
		}
		return files.Put([]byte(in.filekey), sums)
	})
}

// movePendingLists moves the package lists a bulk import built under
// bPending into place (replacing the empty ones bulkEligible saw), marks
// their targets for export and drops bPending.
func movePendingLists(tx *bolt.Tx, debs []*incoming) error {
	defer dropMapped(tx) // deleting bPending reads all its pages
	pending := tx.Bucket([]byte(bPending))
	pk := bucket(tx, bPackages)
	moved := map[Target]bool{}
	for _, in := range debs {
		for _, t := range in.targets {
			if moved[t] {
				continue
			}
			key := []byte(t.String())
			if pk.Bucket(key) != nil { // empty, as bulkEligible saw
				if err := pk.DeleteBucket(key); err != nil {
					return err
				}
			}
			if err := pending.MoveBucket(key, pk); err != nil {
				return fmt.Errorf("bulk import: move %s into place: %w", t, err)
			}
			if err := markDirty(tx, t); err != nil {
				return err
			}
			moved[t] = true
		}
	}
	return tx.DeleteBucket([]byte(bPending))
}

// dropPending undoes what a killed bulk import left: the package lists it
// was building and the pool file records and references it wrote for them
// (the files those lists name, and those listed under
// bPending/pendingFiles by earlier versions; none of these files was
// known before the import began). Only called while holding the writers'
// lock, so no import is under way. The pool files themselves stay, like
// those of any interrupted inclusion: no index names them, and the next
// inclusion of their package replaces them.
func dropPending(db *bolt.DB) error {
	var found bool
	db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket([]byte(bPending)) != nil
		return nil
	})
	if !found {
		return nil
	}
	return db.Update(func(tx *bolt.Tx) error {
		defer dropMapped(tx) // deleting bPending reads all its pages
		pending := tx.Bucket([]byte(bPending))
		files, refs, unref := bucket(tx, bFiles), bucket(tx, bRefs), bucket(tx, bUnreferenced)
		forget := func(k []byte) error {
			if err := files.Delete(k); err != nil {
				return err
			}
			if err := unref.Delete(k); err != nil {
				return err
			}
			prefix := append(append([]byte(nil), k...), 0)
			c := refs.Cursor()
			for rk, _ := c.Seek(prefix); rk != nil && bytes.HasPrefix(rk, prefix); rk, _ = c.Seek(prefix) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
			return nil
		}
		err := pending.ForEachBucket(func(name []byte) error {
			sub := pending.Bucket(name)
			if string(name) == pendingFiles {
				return sub.ForEach(func(k, _ []byte) error { return forget(k) })
			}
			return sub.ForEach(func(_, v []byte) error {
				fk, _ := splitPkgValue(v)
				if fk == "" {
					return nil
				}
				return forget([]byte(fk))
			})
		})
		if err != nil {
			return err
		}
		return tx.DeleteBucket([]byte(bPending))
	})
}

// includeBatch writes the pool files that are still missing, makes them
// durable and adds debs in bulk. It returns the pool files it wrote.
func (r *Repo) includeBatch(ctx context.Context, db *bolt.DB, debs []*incoming, st *stager, res *Result) ([]string, error) {
	var toWrite []*incoming
	for _, in := range debs {
		if !in.prewritten {
			toWrite = append(toWrite, in)
		}
	}
	written, err := r.writePool(ctx, toWrite, st)
	if err == nil {
		err = r.storage.Sync(ctx)
	}
	if err == nil {
		if err = r.includeBulk(db, debs, st, res); err != nil {
			// The caller removes the new pool files: first forget them.
			dropPending(db)
		}
	}
	return written, err
}

// releaseBatch drops a finished bulk batch and hands the memory it held
// back to the system, before publishing reads the new package lists and
// builds the indices: the command's peak is then one of the two, not both.
func releaseBatch(debs []*incoming) {
	clear(debs)
	// bbolt keeps the commit's page buffers in a sync.Pool, which one
	// collection only moves to its victim cache.
	runtime.GC()
	debug.FreeOSMemory()
}

// A large batch keeps its stanzas and checksum records in a spill file in
// the staging directory instead of memory, from when a package is read
// until its chunk is written: memory then holds the batch's names and
// paths, not its Packages index.

// spilled says where a staged package's stanza and checksum record
// (Checksums.encode) are in the spill file.
type spilled struct {
	at                int64
	valueLen, sumsLen int
}

func (s spilled) end() int64 { return s.at + int64(s.valueLen+s.sumsLen) }

// spilled says where in's stanza and checksums are (stored in in as
// narrow fields, padding included: a big batch holds thousands).
func (in *incoming) spilled() spilled {
	return spilled{in.spillAt, int(in.spillLen), int(in.sumsLen)}
}

// isSpilled tells whether the stanza and checksums are in the spill file.
func (in *incoming) isSpilled() bool { return in.spillLen > 0 }

// spillFile is the stager's spill file.
type spillFile struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	off int64
}

// keep moves in's stanza and checksums to the spill file.
func (s *stager) keep(in *incoming) error {
	rec := in.sums.encode()
	sp := &s.spill
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.f == nil {
		name, err := s.name()
		if err != nil {
			return err
		}
		if sp.f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
		sp.w = bufio.NewWriterSize(sp.f, 64<<10)
	}
	if len(in.value) == 0 || len(in.value) > math.MaxInt32 || len(rec) > math.MaxUint16 {
		return fmt.Errorf("stage %s: %w: stanza of %d bytes", in.src, ErrBadPackage, len(in.value))
	}
	if _, err := sp.w.Write(in.value); err != nil {
		return fmt.Errorf("stage %s: %w", in.src, err)
	}
	if _, err := sp.w.Write(rec); err != nil {
		return fmt.Errorf("stage %s: %w", in.src, err)
	}
	in.spillAt, in.spillLen, in.sumsLen = sp.off, int32(len(in.value)), uint16(len(rec))
	sp.off += int64(len(in.value) + len(rec))
	in.value, in.sums = nil, nil
	return nil
}

// readSpilled reads the spilled records of list (all spilled) and calls
// fn with each one's stanza and checksum record, which stay valid until
// the buffer is dropped. Records are read in one go when they lie close
// together in the file (as a batch staged in order does).
func (s *stager) readSpilled(list []*incoming, fn func(in *incoming, value, sums []byte) error) error {
	if len(list) == 0 {
		return nil
	}
	sp := &s.spill
	sp.mu.Lock()
	err := sp.w.Flush()
	sp.mu.Unlock()
	if err != nil {
		return err
	}
	lo, hi, need := list[0].spillAt, list[0].spilled().end(), int64(0)
	for _, in := range list {
		p := in.spilled()
		lo, hi = min(lo, p.at), max(hi, p.end())
		need += p.end() - p.at
	}
	var buf []byte
	if hi-lo <= 2*need {
		buf = make([]byte, hi-lo)
		if _, err := sp.f.ReadAt(buf, lo); err != nil {
			return fmt.Errorf("read back staged stanzas: %w", err)
		}
	}
	for _, in := range list {
		p := in.spilled()
		var rec []byte
		if buf != nil {
			rec = buf[p.at-lo : p.end()-lo]
		} else {
			rec = make([]byte, p.end()-p.at)
			if _, err := sp.f.ReadAt(rec, p.at); err != nil {
				return fmt.Errorf("read back staged stanzas: %w", err)
			}
		}
		if err := fn(in, rec[:p.valueLen:p.valueLen], rec[p.valueLen:]); err != nil {
			return err
		}
	}
	return nil
}

// unspill brings spilled stanzas and checksums back into memory, for the
// ordinary path.
func (s *stager) unspill(debs []*incoming) error {
	var list []*incoming
	for _, in := range debs {
		if in.isSpilled() {
			list = append(list, in)
		}
	}
	return s.readSpilled(list, func(in *incoming, value, sums []byte) error {
		c, err := decodeChecksums(sums)
		if err != nil {
			return err
		}
		in.value, in.sums, in.spillLen = append([]byte(nil), value...), &c, 0
		return nil
	})
}

// closeSpill closes the spill file (remove deletes it).
func (s *stager) closeSpill() {
	if s.spill.f != nil {
		s.spill.f.Close()
	}
}

// values calls fn with each package's stanza and checksum record, from
// memory or from the spill file.
func (s *stager) values(list []*incoming, fn func(in *incoming, value, sums []byte) error) error {
	var spilled []*incoming
	for _, in := range list {
		if in.isSpilled() {
			spilled = append(spilled, in)
			continue
		}
		if err := fn(in, in.value, in.sums.encode()); err != nil {
			return err
		}
	}
	return s.readSpilled(spilled, fn)
}
