package repo

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A target sync uploads, in this order, only what the target's upload
// record says it lacks or holds in another version:
//
//  1. pool files (nothing references new ones yet),
//  2. by-hash index files (content-addressed: nothing references them yet),
//  3. the index files under their names,
//  4. Release and Release.gpg,
//  5. InRelease,
//
// and then deletes what the local repository deleted (pool files nothing
// needs, by-hash generations past their grace period, which the local
// publish prunes only after Options.ByHashRetention). A client holding
// the previous InRelease therefore finds every index it names under
// by-hash, and every pool file those indices name. Every object is
// recorded in the state database after its upload succeeded: a publisher
// killed half way resumes where it stopped; the target's "behind" mark
// stays until a sync completes.

const (
	stagePool = iota
	stageByHash
	stageByHashCopy // by-hash twins of files uploaded in stageByHash
	stageIndex
	stageRelease
	stageInRelease
	numStages
)

// targetBucketName is the state bucket holding a target's upload record:
// storage name → "size sha256 md5" of the uploaded object.
func targetBucketName(id string) []byte { return []byte("target " + id) }

// behindKey marks a target whose last sync did not complete (it sorts
// before every storage name).
var behindKey = []byte("\x00behind")

// mirrorObject is a file of the published tree as a target should hold it.
type mirrorObject struct {
	name   string
	size   int64
	sha256 string // "" for by-hash files: their name fixes their content
	md5    string // "" when unknown
	stage  int
	data   []byte // the content, for the small Release files
	// copyFrom names an object of an earlier stage with the same content:
	// a server-side copy spares uploading it again.
	copyFrom string
	// suite: a copy of a codename's file under its suite's name (the
	// local tree has the symbolic link dists/SUITE → CODENAME); written
	// after the codename's files of the same stage.
	suite bool
}

// pendingRecord marks an object about to be uploaded.
var pendingRecord = []byte("-1 pending")

type uploadRecord struct {
	size        int64
	sha256, md5 string
	copied      bool // written by a server-side copy (not recorded)
}

func (u uploadRecord) encode() []byte {
	return []byte(fmt.Sprintf("%d %s %s", u.size, u.sha256, u.md5))
}

func decodeUploadRecord(b []byte) uploadRecord {
	f := strings.Fields(string(b))
	var u uploadRecord
	if len(f) > 0 {
		u.size, _ = strconv.ParseInt(f[0], 10, 64)
	}
	if len(f) > 1 {
		u.sha256 = f[1]
	}
	if len(f) > 2 {
		u.md5 = f[2]
	}
	return u
}

// SyncResult summarises the sync of one target.
type SyncResult struct {
	Target string `json:"target"`
	URL    string `json:"url"`
	// Uploaded counts the objects sent, Bytes their size; Copied counts
	// objects written by a server-side copy of one already there.
	Uploaded int   `json:"uploaded"`
	Bytes    int64 `json:"bytes"`
	Copied   int   `json:"copied"`
	Deleted  int   `json:"deleted"`
}

// localPath returns the file of name in a local DirStorage, "" when the
// repository publishes elsewhere.
func (r *Repo) localPath(name string) string {
	ds, ok := r.storage.(*DirStorage)
	if !ok {
		return ""
	}
	p, err := ds.path(name)
	if err != nil {
		return ""
	}
	return p
}

// readLocal returns the content of a published file; a missing file
// gives an error matching fs.ErrNotExist.
func (r *Repo) readLocal(ctx context.Context, name string) ([]byte, error) {
	if p := r.localPath(name); p != "" {
		return os.ReadFile(p)
	}
	rc, err := r.storage.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// localSize returns the size of a published file, -1 when it is missing.
func (r *Repo) localSize(ctx context.Context, name string) (int64, error) {
	if p := r.localPath(name); p != "" {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return -1, nil
		}
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	data, err := r.readLocal(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	return int64(len(data)), err
}

// desiredObjects lists what target t should hold, from the state
// database (tx) and the local Release files.
func (r *Repo) desiredObjects(ctx context.Context, tx *bolt.Tx, t *PublishTarget) (map[string]mirrorObject, error) {
	out := map[string]mirrorObject{}
	if tx == nil {
		return out, nil
	}
	var dists []*Distribution
	covered := map[string]bool{}
	for _, d := range r.Conf.Distributions {
		if t.covers(d.Codename) {
			dists = append(dists, d)
			covered[d.Codename] = true
		}
	}
	// 1. pool files, with the checksums recorded at inclusion.
	refs := bucket(tx, bRefs)
	err := bucket(tx, bFiles).ForEach(func(k, v []byte) error {
		if len(t.Config.Codenames) > 0 {
			used := false
			prefix := append(append([]byte{}, k...), 0)
			c := refs.Cursor()
			for rk, _ := c.Seek(prefix); rk != nil && bytes.HasPrefix(rk, prefix); rk, _ = c.Next() {
				codename, _, _ := strings.Cut(string(rk[len(prefix):]), "|")
				if covered[codename] {
					used = true
					break
				}
			}
			if !used {
				return nil
			}
		}
		c, err := decodeChecksums(v)
		if err != nil {
			return fmt.Errorf("pool file %s: %w", k, err)
		}
		out[string(k)] = mirrorObject{name: string(k), size: c.Size, sha256: c.SHA256, md5: c.MD5, stage: stagePool}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// 2. index files as last published.
	exp := bucket(tx, bExported)
	type twin struct {
		sha512 string
		c      Checksums
	}
	twins := map[string]twin{} // by-hash SHA256 name → its index's checksums
	for _, d := range dists {
		for _, tg := range d.Targets() {
			for _, n := range indexNames(d, tg) {
				if !n.written {
					continue
				}
				v := exp.Get([]byte(d.Codename + "/" + n.rel))
				if v == nil {
					continue
				}
				c, err := decodeChecksums(v)
				if err != nil {
					return nil, err
				}
				name := "dists/" + d.Codename + "/" + n.rel
				o := mirrorObject{name: name, size: c.Size, sha256: c.SHA256, md5: c.MD5, stage: stageIndex}
				if f := (indexFile{rel: n.rel, sums: c}); !strings.HasSuffix(n.rel, "/Release") {
					sha256Name, sha512Name := byHashNames(d.Codename, f)
					if bucket(tx, bByHash).Get([]byte(sha256Name)) != nil {
						o.copyFrom = sha256Name
						twins[sha256Name] = twin{sha512Name, c}
					}
				}
				out[name] = o
			}
		}
	}
	// 3. by-hash files, current and within their grace period (an
	// interrupted export may have recorded some it never wrote).
	var byHash []string
	err = bucket(tx, bByHash).ForEach(func(k, v []byte) error {
		parts := strings.SplitN(string(k), "/", 3)
		if len(parts) == 3 && covered[parts[1]] {
			byHash = append(byHash, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, name := range byHash {
		size, err := r.localSize(ctx, name)
		if err != nil {
			return nil, err
		}
		if size >= 0 {
			out[name] = mirrorObject{name: name, size: size, stage: stageByHash}
		}
	}
	for src, tw := range twins {
		if _, ok := out[src]; !ok {
			for name, o := range out { // the source is gone: upload instead
				if o.copyFrom == src {
					o.copyFrom = ""
					out[name] = o
				}
			}
			continue
		}
		if o, ok := out[tw.sha512]; ok {
			o.copyFrom, o.stage = src, stageByHashCopy
			o.sha256, o.md5 = tw.c.SHA256, tw.c.MD5
			out[tw.sha512] = o
		}
	}
	return out, nil
}

// addReleaseFiles adds the Release files of the distributions t covers,
// read from the local tree.
func (r *Repo) addReleaseFiles(ctx context.Context, t *PublishTarget, want map[string]mirrorObject) error {
	for _, d := range r.Conf.Distributions {
		if !t.covers(d.Codename) {
			continue
		}
		for _, n := range []string{"Release", "Release.gpg", "InRelease"} {
			name := "dists/" + d.Codename + "/" + n
			data, err := r.readLocal(ctx, name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			sha, m := sumsOf(data)
			stage := stageRelease
			if n == "InRelease" {
				stage = stageInRelease
			}
			want[name] = mirrorObject{name: name, size: int64(len(data)), sha256: sha, md5: m, stage: stage, data: data}
		}
	}
	return nil
}

// addSuiteCopies adds, for every distribution whose suite is a symbolic
// link to its codename in the local tree (createsymlinks), the files of
// dists/CODENAME/ again under dists/SUITE/: object storage has no links,
// and devices keep their "stable" sources lines.
func (r *Repo) addSuiteCopies(t *PublishTarget, want map[string]mirrorObject) {
	for _, d := range r.Conf.Distributions {
		if !t.covers(d.Codename) || d.Suite == "" || d.Suite == d.Codename || strings.Contains(d.Suite, "/") {
			continue
		}
		link := r.localPath("dists/" + d.Suite)
		if link == "" {
			continue
		}
		if dest, err := os.Readlink(link); err != nil || strings.TrimSuffix(dest, "/") != d.Codename {
			continue
		}
		prefix := "dists/" + d.Codename + "/"
		var twins []mirrorObject
		for name, o := range want {
			if strings.HasPrefix(name, prefix) && !o.suite {
				o.name = "dists/" + d.Suite + "/" + name[len(prefix):]
				o.copyFrom, o.suite = name, true
				twins = append(twins, o)
			}
		}
		for _, o := range twins {
			want[o.name] = o
		}
	}
}

func sumsOf(data []byte) (sha, m string) {
	s := sha256.Sum256(data)
	h := md5.Sum(data)
	return hex.EncodeToString(s[:]), hex.EncodeToString(h[:])
}

// readRecord returns a target's upload record and whether it is behind.
func readRecord(tx *bolt.Tx, t *PublishTarget) (map[string]uploadRecord, bool) {
	have := map[string]uploadRecord{}
	if tx == nil {
		return have, false
	}
	b := tx.Bucket(targetBucketName(t.id))
	if b == nil {
		return have, false
	}
	behind := false
	b.ForEach(func(k, v []byte) error {
		if bytes.Equal(k, behindKey) {
			behind = true
			return nil
		}
		have[string(k)] = decodeUploadRecord(v)
		return nil
	})
	return have, behind
}

// syncTargets brings every target of Options.Mirror up to date with the
// local tree. db is the open state database, nil to open it (the caller
// holds the repository lock either way).
func (r *Repo) syncTargets(ctx context.Context, db *bolt.DB) error {
	m := r.opts.Mirror
	if m == nil || len(m.Targets) == 0 {
		return nil
	}
	if db == nil {
		var err error
		if db, err = openDB(r.dbPath, false, r.opts.LockTimeout+time.Second); err != nil {
			return err
		}
		defer db.Close()
	}
	var errs []error
	for _, t := range m.Targets {
		res, err := r.syncTarget(ctx, db, t)
		if err != nil {
			where := t.Config.Where()
			if t.Config.Name != t.Config.URL {
				where += " (" + t.Config.URL + ")"
			}
			errs = append(errs, fmt.Errorf("%s: %w: %w; the local repository is published; 'lampi-pkg repo -b %s export' (or the next command) completes the upload",
				where, ErrTargetBehind, err, r.Base))
			continue
		}
		if m.Done != nil {
			m.Done(res)
		}
	}
	return errors.Join(errs...)
}

// mirrorAfter runs the target sync at the end of a modifying command
// whose local part succeeded (err == nil) and published.
func (r *Repo) mirrorAfter(ctx context.Context, db *bolt.DB, err error) error {
	if err != nil || r.opts.Export == ExportNever {
		return err
	}
	return r.syncTargets(ctx, db)
}

// syncTarget uploads what t lacks and deletes what it should no longer
// hold, recording each step.
func (r *Repo) syncTarget(ctx context.Context, db *bolt.DB, t *PublishTarget) (SyncResult, error) {
	res := SyncResult{Target: t.Config.Name, URL: t.Config.URL}
	var (
		want   map[string]mirrorObject
		have   map[string]uploadRecord
		behind bool
	)
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		want, err = r.desiredObjects(ctx, tx, t)
		have, behind = readRecord(tx, t)
		return err
	})
	if err != nil {
		return res, err
	}
	if err := r.addReleaseFiles(ctx, t, want); err != nil {
		return res, err
	}
	r.addSuiteCopies(t, want)
	var todo [numStages][]mirrorObject
	n := 0
	for name, o := range want {
		rec, ok := have[name]
		if !ok || rec.size < 0 || (o.sha256 != "" && (rec.sha256 != o.sha256 || rec.size != o.size)) {
			todo[o.stage] = append(todo[o.stage], o)
			n++
		}
	}
	var gone []string
	for name := range have {
		if _, ok := want[name]; !ok {
			gone = append(gone, name)
		}
	}
	if n == 0 && len(gone) == 0 {
		if behind {
			return res, r.setBehind(db, t, false)
		}
		return res, nil
	}
	if err := r.setBehind(db, t, true); err != nil {
		return res, err
	}
	rec := &recorder{db: db, bucket: targetBucketName(t.id), now: r.opts.Now}
	prog := r.newProgress(t, todo[:])
	for stage := range todo {
		objs := todo[stage]
		sort.Slice(objs, func(i, j int) bool { return objs[i].name < objs[j].name })
		// Note new names as pending first: if the publisher dies after an
		// upload but before its record, the next sync still knows the
		// object (and deletes it if the repository no longer needs it).
		for _, o := range objs {
			if _, ok := have[o.name]; !ok {
				if err := rec.add(o.name, pendingRecord); err != nil {
					return res, err
				}
			}
		}
		if err := rec.flush(); err != nil {
			return res, err
		}
		up, copied, bytes, err := r.uploadStage(ctx, t, objs, rec, prog)
		res.Uploaded += up
		res.Copied += copied
		res.Bytes += bytes
		if ferr := rec.flush(); err == nil {
			err = ferr
		}
		if err != nil {
			return res, err
		}
	}
	sort.Strings(gone)
	deleted, err := r.deleteAll(ctx, t, gone, rec)
	res.Deleted = deleted
	if ferr := rec.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return res, err
	}
	return res, r.setBehind(db, t, false)
}

func (r *Repo) setBehind(db *bolt.DB, t *PublishTarget, on bool) error {
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(targetBucketName(t.id))
		if err != nil {
			return err
		}
		if on {
			return b.Put(behindKey, encodeTime(r.opts.Now()))
		}
		return b.Delete(behindKey)
	})
}

// progress adds up the bytes uploaded to a target.
type progress struct {
	mu          sync.Mutex
	done, total int64
	fn          func(done, total int64)
}

func (r *Repo) newProgress(t *PublishTarget, todo [][]mirrorObject) *progress {
	p := &progress{}
	for _, objs := range todo {
		for _, o := range objs {
			p.total += o.size
		}
	}
	if m := r.opts.Mirror; m != nil && m.Progress != nil {
		name := t.Config.Name
		p.fn = func(done, total int64) { m.Progress(name, done, total) }
	}
	return p
}

func (p *progress) add(n int64) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.fn(p.done, p.total)
}

// recorder commits upload records in batches: a killed publisher loses
// at most the last batch, which the next sync uploads again.
type recorder struct {
	db      *bolt.DB
	bucket  []byte
	now     func() time.Time
	mu      sync.Mutex
	puts    map[string][]byte // nil value: delete
	lastRun time.Time
}

func (rc *recorder) add(name string, v []byte) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.puts == nil {
		rc.puts = map[string][]byte{}
		rc.lastRun = rc.now()
	}
	rc.puts[name] = v
	if len(rc.puts) >= 256 || rc.now().Sub(rc.lastRun) > time.Second {
		return rc.commitLocked()
	}
	return nil
}

func (rc *recorder) flush() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.commitLocked()
}

func (rc *recorder) commitLocked() error {
	if len(rc.puts) == 0 {
		return nil
	}
	err := rc.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(rc.bucket)
		if err != nil {
			return err
		}
		b.FillPercent = fillPercent
		names := make([]string, 0, len(rc.puts))
		for n := range rc.puts {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v := rc.puts[n]
			if v == nil {
				err = b.Delete([]byte(n))
			} else {
				err = b.Put([]byte(n), v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record uploads: %w", err)
	}
	rc.puts = nil
	rc.lastRun = rc.now()
	return nil
}

func (r *Repo) workers() int {
	if m := r.opts.Mirror; m != nil && m.Workers > 0 {
		return m.Workers
	}
	return 8
}

// parallel runs fn on every item with bounded workers; the first error
// stops the rest.
func parallel[T any](ctx context.Context, n int, items []T, fn func(ctx context.Context, it T) error) error {
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  atomic.Int64
	)
	if n > len(items) {
		n = len(items)
	}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, items[i]); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// uploadStage uploads the objects of one stage: the codenames' files,
// then their suite copies.
func (r *Repo) uploadStage(ctx context.Context, t *PublishTarget, objs []mirrorObject, rec *recorder, prog *progress) (int, int, int64, error) {
	var first, second []mirrorObject
	for _, o := range objs {
		if o.suite {
			second = append(second, o)
		} else {
			first = append(first, o)
		}
	}
	n1, c1, b1, err := r.uploadAll(ctx, t, first, rec, prog)
	if err != nil {
		return n1, c1, b1, err
	}
	n2, c2, b2, err := r.uploadAll(ctx, t, second, rec, prog)
	return n1 + n2, c1 + c2, b1 + b2, err
}

// uploadAll uploads objs to t in parallel, recording each.
func (r *Repo) uploadAll(ctx context.Context, t *PublishTarget, objs []mirrorObject, rec *recorder, prog *progress) (int, int, int64, error) {
	var count, copies, size atomic.Int64
	err := parallel(ctx, r.workers(), objs, func(ctx context.Context, o mirrorObject) error {
		u, ok, err := r.uploadRetrying(ctx, t, o)
		if err != nil {
			return err
		}
		if !ok { // gone locally meanwhile (an interrupted export's by-hash record)
			return nil
		}
		if u.copied {
			copies.Add(1)
		} else {
			count.Add(1)
			size.Add(u.size)
		}
		prog.add(o.size)
		if rec != nil {
			return rec.add(o.name, u.encode())
		}
		return nil
	})
	return int(count.Load()), int(copies.Load()), size.Load(), err
}

// uploadRetrying tries an upload three times, backing off, on top of the
// client's own retries of single requests.
func (r *Repo) uploadRetrying(ctx context.Context, t *PublishTarget, o mirrorObject) (uploadRecord, bool, error) {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		u, ok, err := r.uploadObject(ctx, t, o)
		if err == nil || attempt == 3 || ctx.Err() != nil || errors.Is(err, fs.ErrNotExist) {
			return u, ok, err
		}
		select {
		case <-ctx.Done():
			return u, ok, err
		case <-time.After(delay):
		}
		delay *= 4
	}
}

// uploadObject copies one local file to the target. It reports false
// when the local file does not exist.
func (r *Repo) uploadObject(ctx context.Context, t *PublishTarget, o mirrorObject) (uploadRecord, bool, error) {
	if o.copyFrom != "" {
		if err := t.Storage.Copy(ctx, o.copyFrom, o.name); err == nil {
			return uploadRecord{size: o.size, sha256: o.sha256, md5: o.md5, copied: true}, true, nil
		}
		// the source is not there after all: upload
	}
	data := o.data
	path := ""
	if data == nil {
		path = r.localPath(o.name)
		if path == "" || o.sha256 == "" { // by-hash files are small: hash them as they go
			var err error
			if data, err = r.readLocal(ctx, o.name); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return uploadRecord{}, false, nil
				}
				return uploadRecord{}, false, err
			}
		}
	}
	u := uploadRecord{size: o.size, sha256: o.sha256, md5: o.md5}
	if data != nil {
		u.size = int64(len(data))
		u.sha256, u.md5 = sumsOf(data)
		if o.sha256 != "" && o.sha256 != u.sha256 {
			return u, false, fmt.Errorf("local %s does not match its recorded SHA256 (changed meanwhile?); run lampi-pkg repo check", o.name)
		}
	} else if st, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return u, false, nil
		}
		return u, false, err
	} else if st.Size() != o.size {
		return u, false, fmt.Errorf("local %s is %d bytes, %d recorded; run lampi-pkg repo check", o.name, st.Size(), o.size)
	}
	meta := map[string]string{"Sha256": u.sha256}
	var err error
	switch st := t.Storage.(type) {
	case *S3Storage:
		if data != nil {
			err = st.put(ctx, o.name, data, meta)
		} else {
			err = st.upload(ctx, o.name, path, meta)
		}
	case *DirStorage:
		if data != nil {
			err = st.WriteFile(ctx, o.name, data)
		} else {
			err = linkInto(ctx, st, o.name, path)
		}
	default:
		if data == nil {
			if data, err = os.ReadFile(path); err != nil {
				return u, false, err
			}
		}
		err = st.WriteFile(ctx, o.name, data)
	}
	if err != nil {
		return u, false, err
	}
	return u, true, nil
}

// linkInto publishes the local file src as name in a directory target:
// a copy renamed into place. Not a hard link: the mirror must not share
// files with the repository, or an edit of one would change the other.
func linkInto(ctx context.Context, st *DirStorage, name, src string) error {
	p, err := st.path(name)
	if err != nil {
		return err
	}
	if err := st.mkdir(p); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	return st.copyFile(ctx, src, p, name)
}

// deleteAll removes names from the target, forgetting each.
func (r *Repo) deleteAll(ctx context.Context, t *PublishTarget, names []string, rec *recorder) (int, error) {
	var count atomic.Int64
	err := parallel(ctx, r.workers(), names, func(ctx context.Context, name string) error {
		if err := t.Storage.Remove(ctx, name); err != nil {
			return err
		}
		count.Add(1)
		return rec.add(name, nil)
	})
	return int(count.Load()), err
}

// TargetReport is what CheckTarget found.
type TargetReport struct {
	Target string `json:"target"`
	URL    string `json:"url"`
	// Missing and Different list objects the target lacks or holds in
	// another version; Extra lists objects under pool/ and dists/ the
	// repository does not publish.
	Missing   []string `json:"missing"`
	Different []string `json:"different"`
	Extra     []string `json:"extra"`
	// Behind: the last sync did not complete.
	Behind bool `json:"behind"`
	// Repaired counts the objects uploaded by a repair.
	Repaired int `json:"repaired"`
	// Checked counts the objects the repository publishes there.
	Checked int `json:"checked"`
}

// Clean tells whether the target holds exactly what it should.
func (t *TargetReport) Clean() bool {
	return len(t.Missing) == 0 && len(t.Different) == 0 && len(t.Extra) == 0 && !t.Behind
}

// remoteObject is an object as the target lists it.
type remoteObject struct {
	size int64
	etag string // MD5 for objects uploaded in one piece
}

// listRemote lists pool/ and dists/ on the target.
func listRemote(ctx context.Context, st Storage) (map[string]remoteObject, error) {
	out := map[string]remoteObject{}
	for _, dir := range []string{"pool", "dists"} {
		switch s := st.(type) {
		case *S3Storage:
			objs, err := s.listInfo(ctx, dir)
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				out[o.name] = remoteObject{o.size, o.etag}
			}
		default:
			names, err := st.List(ctx, dir)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				rc, err := st.Open(ctx, n)
				if err != nil {
					return nil, err
				}
				h := md5.New()
				size, err := io.Copy(h, rc)
				rc.Close()
				if err != nil {
					return nil, err
				}
				out[n] = remoteObject{size, hex.EncodeToString(h.Sum(nil))}
			}
		}
	}
	return out, nil
}

func isPlainMD5(etag string) bool {
	if len(etag) != 32 {
		return false
	}
	_, err := hex.DecodeString(etag)
	return err == nil
}

// CheckTarget compares what target t holds (by listing it) with what the
// repository publishes: objects missing, different (size, MD5 ETag, or
// the SHA256 recorded in the object's metadata for multipart uploads) or
// extra. With repair it uploads the missing and different objects, in
// the safe order, and records them.
func (r *Repo) CheckTarget(ctx context.Context, t *PublishTarget, repair bool) (*TargetReport, error) {
	rep := &TargetReport{Target: t.Config.Name, URL: t.Config.URL, Missing: []string{}, Different: []string{}, Extra: []string{}}
	var want map[string]mirrorObject
	err := r.view(func(tx *bolt.Tx) error {
		var err error
		want, err = r.desiredObjects(ctx, tx, t)
		_, rep.Behind = readRecord(tx, t)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := r.addReleaseFiles(ctx, t, want); err != nil {
		return nil, err
	}
	r.addSuiteCopies(t, want)
	remote, err := listRemote(ctx, t.Storage)
	if err != nil {
		return nil, fmt.Errorf("%s: list: %w", t.Config.Where(), err)
	}
	rep.Checked = len(want)
	var fix []mirrorObject
	for name, o := range want {
		ro, ok := remote[name]
		if !ok {
			rep.Missing = append(rep.Missing, name)
			fix = append(fix, o)
			continue
		}
		if o.sha256 == "" { // by-hash: hash the local file
			data, err := r.readLocal(ctx, name)
			if err != nil {
				return nil, err
			}
			o.sha256, o.md5 = sumsOf(data)
		}
		diff := ro.size != o.size
		if !diff && o.md5 != "" && isPlainMD5(ro.etag) {
			diff = !strings.EqualFold(ro.etag, o.md5)
		} else if !diff && !isPlainMD5(ro.etag) {
			if s3, ok := t.Storage.(*S3Storage); ok {
				info, err := s3.stat(ctx, name)
				if err != nil {
					return nil, err
				}
				if sha := info.UserMetadata["Sha256"]; sha != "" {
					diff = sha != o.sha256
				}
			}
		}
		if diff {
			rep.Different = append(rep.Different, name)
			fix = append(fix, o)
		}
	}
	for name := range remote {
		if _, ok := want[name]; !ok {
			rep.Extra = append(rep.Extra, name)
		}
	}
	sort.Strings(rep.Missing)
	sort.Strings(rep.Different)
	sort.Strings(rep.Extra)
	if !repair || len(fix) == 0 {
		return rep, nil
	}
	w, err := r.lockWrite(ctx)
	if err != nil {
		return rep, err
	}
	defer w.close()
	rec := &recorder{db: w.db, bucket: targetBucketName(t.id), now: r.opts.Now}
	var stages [numStages][]mirrorObject
	for _, o := range fix {
		stages[o.stage] = append(stages[o.stage], o)
	}
	prog := r.newProgress(t, stages[:])
	for _, objs := range stages {
		sort.Slice(objs, func(i, j int) bool { return objs[i].name < objs[j].name })
		n, copied, _, err := r.uploadStage(ctx, t, objs, rec, prog)
		rep.Repaired += n + copied
		if ferr := rec.flush(); err == nil {
			err = ferr
		}
		if err != nil {
			return rep, fmt.Errorf("%s: repair: %w", t.Config.Where(), err)
		}
	}
	return rep, nil
}

// Targets returns the publish targets of Options.Mirror.
func (r *Repo) Targets() []*PublishTarget {
	if r.opts.Mirror == nil {
		return nil
	}
	return r.opts.Mirror.Targets
}
