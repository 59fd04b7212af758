package repo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Pool files of interrupted commands ("orphans").
//
// An inclusion writes its new pool files before the database transaction
// that records them commits (the files must be there, and durable, before
// anything names them). A command killed in between leaves files in pool/
// that the state database does not know and no index names. Two things
// find them:
//
//   - The write journal, DBDIR/pool-writing: a command appends the name of
//     each pool file it is about to write, before writing it, and removes
//     the journal when it ends (after its commit, or after removing what it
//     wrote when it failed). The next writer, holding the lock, finds a
//     journal only if that command died: it deletes the files the journal
//     names that the database does not know (recoverWrites). Nothing is
//     synced for it: after a power loss the scan finds what it missed.
//   - A scan (orphans): the pool as the storage lists it, minus the files
//     the database knows, minus those a running writer is writing (its
//     journal while the lock is held). It also finds orphans of lampi-pkg
//     versions that kept no journal. dumpunreferenced lists them,
//     deleteunreferenced deletes them, check and checkpool warn about them.
//
// Neither ever deletes a file that a Packages or Sources index published
// under dists/ names (publishedPoolFiles), for any distribution found there, configured
// or not: a pool shared with distributions this database does not know
// keeps their files.

// writeJournalName is the write journal's file in DBDIR.
const writeJournalName = "pool-writing"

// writeJournalPath is the write journal of the repository. It is in
// DBDIR, not in the lock directory: IncludePublish's inner repository
// (with a lock of its own) writes the same journal.
func (r *Repo) writeJournalPath() string { return filepath.Join(r.opts.DBDir, writeJournalName) }

// writeJournal names the pool files one command writes. Safe for
// concurrent use.
type writeJournal struct {
	path string
	mu   sync.Mutex
	f    *os.File
	// keep leaves the journal for the next writer: removing what the
	// command wrote failed, so files it names may still be there.
	keep bool
}

// add records names before they are written.
func (j *writeJournal) add(names ...string) error {
	if len(names) == 0 {
		return nil
	}
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('\n')
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("journal of pool writes: %w", err)
		}
		j.f = f
	}
	if _, err := j.f.WriteString(b.String()); err != nil {
		return fmt.Errorf("journal of pool writes %s: %w", j.path, err)
	}
	return nil
}

// failedUndo records that a file the command wrote could not be removed.
func (j *writeJournal) failedUndo() {
	j.mu.Lock()
	j.keep = true
	j.mu.Unlock()
}

// close ends the journal: every file it names is recorded in the database
// or removed again (unless failedUndo said otherwise), so it goes.
func (j *writeJournal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return
	}
	j.f.Close()
	j.f = nil
	if !j.keep {
		os.Remove(j.path)
	}
}

// readWriteJournal returns the pool files a journal names; nil when there
// is no journal (an empty, non-nil list for an empty one). An unfinished
// last line is left out: its file was not begun.
func readWriteJournal(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the journal of pool writes: %w", err)
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	out := []string{}
	seen := map[string]bool{}
	for _, n := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(n, "pool/") && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// recoverWrites deletes what a command killed while writing pool files
// left: the files its journal names that the database does not know (and
// no published index names). Only called while holding the lock, before
// the command writes a journal of its own. A failure to delete is a
// warning: the journal stays for the next writer, and deleteunreferenced
// finds the files too.
func (w *writer) recoverWrites(ctx context.Context) error {
	r := w.r
	journal := r.writeJournalPath()
	names, err := readWriteJournal(journal)
	if err != nil || names == nil {
		return err
	}
	// Opening the database drops what an interrupted bulk import
	// recorded (dropPending) and adopts published distributions: the
	// files those name are known afterwards.
	if err := w.openDB(); err != nil {
		return err
	}
	defer func() {
		w.db.Close()
		w.db = nil
	}()
	var unknown []string
	err = w.db.View(func(tx *bolt.Tx) error {
		files := bucket(tx, bFiles)
		for _, n := range names {
			if files.Get([]byte(n)) == nil {
				unknown = append(unknown, n)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	gone, err := r.removeOrphans(ctx, unknown, r.publishedOnce())
	if len(gone) > 0 {
		r.opts.Warn(fmt.Sprintf("removed %d pool file(s) that an interrupted command had written but not recorded: %s", len(gone), briefList(gone)))
	}
	if err != nil {
		r.opts.Warn(fmt.Sprintf("removing the pool files of an interrupted command: %v (the next writer retries; lampi-pkg repo deleteunreferenced removes them too)", err))
		return nil
	}
	if err := os.Remove(journal); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the journal of pool writes: %w", err)
	}
	return nil
}

// removeOrphans deletes the named pool files, which the database does
// not know, except those a published index names. It returns the files
// it deleted.
func (r *Repo) removeOrphans(ctx context.Context, names []string, published func(context.Context) (map[string]bool, error)) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	named, err := published(ctx)
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, n := range names {
		if named[n] {
			continue
		}
		if err := r.storage.Remove(ctx, n); err != nil {
			return gone, err
		}
		gone = append(gone, n)
	}
	return gone, nil
}

// orphans lists the pool files the state database does not know and no
// published index names, sorted. db is the open database of a writer
// holding the lock; nil for a reader, which also leaves out the files a
// running writer is writing. published is publishedOnce's.
func (r *Repo) orphans(ctx context.Context, db *bolt.DB, published func(context.Context) (map[string]bool, error)) ([]string, error) {
	// The order matters for a reader: listing the pool first, then the
	// journal, then the database, a file being written is either in the
	// journal (the writer still holds the lock) or already recorded.
	listed, err := r.storage.List(ctx, "pool")
	if err != nil {
		return nil, fmt.Errorf("list pool/: %w", err)
	}
	if len(listed) == 0 {
		return nil, nil
	}
	var busy map[string]bool
	if db == nil {
		if busy, err = r.writesInFlight(ctx); err != nil {
			return nil, err
		}
	}
	var unknown []string
	scan := func(tx *bolt.Tx) error {
		for _, n := range listed {
			if busy[n] || tx != nil && bucket(tx, bFiles).Get([]byte(n)) != nil {
				continue
			}
			unknown = append(unknown, n)
		}
		return nil
	}
	if db != nil {
		err = db.View(scan)
	} else {
		err = r.view(scan)
	}
	if err != nil || len(unknown) == 0 {
		return nil, err
	}
	named, err := published(ctx)
	if err != nil {
		return nil, err
	}
	out := unknown[:0]
	for _, n := range unknown {
		if !named[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// writesInFlight returns the pool files a running writer is writing: what
// the journal names while another process holds the lock. A journal
// without a lock holder is a killed writer's, and names orphans.
func (r *Repo) writesInFlight(ctx context.Context) (map[string]bool, error) {
	names, err := readWriteJournal(r.writeJournalPath())
	if err != nil || len(names) == 0 {
		return nil, err
	}
	l, err := acquireLock(ctx, filepath.Join(r.lockDir, "lampi.lock"), 0)
	if err == nil {
		return nil, l.release()
	}
	if !errors.Is(err, ErrLocked) {
		return nil, err
	}
	busy := make(map[string]bool, len(names))
	for _, n := range names {
		busy[n] = true
	}
	return busy, nil
}

// publishedOnce returns a function that reads publishedPoolFiles on its
// first call and returns the same answer afterwards.
func (r *Repo) publishedOnce() func(context.Context) (map[string]bool, error) {
	var (
		named map[string]bool
		err   error
		done  bool
	)
	return func(ctx context.Context) (map[string]bool, error) {
		if !done {
			named, err = r.publishedPoolFiles(ctx)
			done = true
		}
		return named, err
	}
}

// publishedPoolFiles returns the pool files that the Packages and Sources
// indices now published under dists/ name — of every distribution there, configured
// or not — reading one form of each index (uncompressed, else .gz, else
// .xz). Superseded by-hash generations are not read.
func (r *Repo) publishedPoolFiles(ctx context.Context) (map[string]bool, error) {
	listed, err := r.storage.List(ctx, "dists")
	if err != nil {
		return nil, fmt.Errorf("list dists/: %w", err)
	}
	indexNames := map[string]bool{"Packages": true, "Sources": true}
	for _, d := range r.Conf.Distributions {
		indexNames[d.DebIndices.Name] = true
		indexNames[d.DscIndices.Name] = true
	}
	rank := map[string]int{"": 0, ".gz": 1, ".xz": 2}
	type index struct{ dir, name string }
	best := map[index]string{}
	for _, n := range listed {
		if isByHashPath(n) || !strings.Contains(n, "/binary-") && !strings.Contains(n, "/source/") {
			continue
		}
		dir, base := path.Split(n)
		ext := path.Ext(base)
		if ext != ".gz" && ext != ".xz" {
			ext = ""
		}
		ix := index{dir, strings.TrimSuffix(base, ext)}
		if !indexNames[ix.name] {
			continue
		}
		if cur, ok := best[ix]; !ok || rank[ext] < rank[strings.TrimPrefix(cur, ix.dir+ix.name)] {
			best[ix] = n
		}
	}
	out := map[string]bool{}
	for _, n := range best {
		if err := r.scanFilenames(ctx, n, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanFilenames adds the pool files a published index names to out: the
// Filename fields of a Packages index, and Directory joined with each
// Files line of a Sources index.
func (r *Repo) scanFilenames(ctx context.Context, name string, out map[string]bool) error {
	in, err := r.openIndex(ctx, name)
	if errors.Is(err, fs.ErrNotExist) { // replaced since the listing
		return nil
	}
	if err != nil {
		return fmt.Errorf("read published index: %w", err)
	}
	defer in.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	// A Sources stanza gives Directory before or after Files.
	var dir string
	var listed []string
	inFiles := false
	flush := func() {
		for _, f := range listed {
			out[dir+"/"+f] = true
		}
		dir, listed = "", nil
	}
	for sc.Scan() {
		line := sc.Bytes()
		if f, ok := bytes.CutPrefix(line, []byte("Filename: ")); ok {
			out[string(bytes.TrimSpace(f))] = true
		}
		switch {
		case len(bytes.TrimSpace(line)) == 0:
			flush()
			inFiles = false
		case inFiles && (line[0] == ' ' || line[0] == '\t'):
			if f := bytes.Fields(line); len(f) == 3 {
				listed = append(listed, string(f[2]))
			}
		default:
			inFiles = bytes.HasPrefix(line, []byte("Files:"))
			if d, ok := bytes.CutPrefix(line, []byte("Directory: ")); ok {
				dir = string(bytes.TrimSpace(d))
			}
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read published index %s: %w", name, err)
	}
	return nil
}

// warnOrphans reports the pool files of interrupted commands through
// Options.Warn (check and checkpool: they are not damage).
func (r *Repo) warnOrphans(ctx context.Context) {
	orphans, err := r.orphans(ctx, nil, r.publishedOnce())
	switch {
	case err != nil:
		r.opts.Warn(fmt.Sprintf("looking for pool files of interrupted commands: %v", err))
	case len(orphans) > 0:
		r.opts.Warn(fmt.Sprintf("%d pool file(s) that the database does not know and no published index names (left by interrupted commands; lampi-pkg repo deleteunreferenced deletes them): %s",
			len(orphans), briefList(orphans)))
	}
}

// briefList joins the first names of a list for a message.
func briefList(names []string) string {
	const most = 10
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … and %d more", strings.Join(names[:most], ", "), len(names)-most)
}
