package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
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

// readRecord returns a target's upload record and whether it is behind.
func readRecord(tx *bolt.Tx, t *storage.PublishTarget) (map[string]uploadRecord, bool) {
	have := map[string]uploadRecord{}
	if tx == nil {
		return have, false
	}
	b := tx.Bucket(targetBucketName(t.ID()))
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
// hold, recording each step: plan, mark behind, upload stage by stage,
// delete, clear the mark.
func (r *Repo) syncTarget(ctx context.Context, db *bolt.DB, t *storage.PublishTarget) (SyncResult, error) {
	res := SyncResult{Target: t.Config.Name, URL: t.Config.URL}
	want, have, behind, err := r.targetPlan(ctx, db.View, t)
	if err != nil {
		return res, err
	}
	todo, n, gone := syncWork(want, have)
	if n == 0 && len(gone) == 0 {
		if behind {
			return res, r.setBehind(db, t, false)
		}
		return res, nil
	}
	if err := r.setBehind(db, t, true); err != nil {
		return res, err
	}
	rec := &recorder{db: db, bucket: targetBucketName(t.ID()), now: r.opts.Now}
	prog := r.newProgress(t, todo[:])
	for stage := range todo {
		if err := r.syncStage(ctx, t, todo[stage], have, rec, prog, &res); err != nil {
			return res, err
		}
	}
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

// syncWork sorts what want has and have lacks (or holds in another
// version) into the upload stages, counting them, and lists in name
// order what have holds and want no longer does.
func syncWork(want map[string]mirrorObject, have map[string]uploadRecord) (todo [numStages][]mirrorObject, n int, gone []string) {
	for name, o := range want {
		rec, ok := have[name]
		if !ok || rec.size < 0 || (o.sha256 != "" && (rec.sha256 != o.sha256 || rec.size != o.size)) {
			todo[o.stage] = append(todo[o.stage], o)
			n++
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	return todo, n, gone
}

// syncStage uploads the objects of one stage, in name order, adding to
// res.
func (r *Repo) syncStage(ctx context.Context, t *storage.PublishTarget, objs []mirrorObject, have map[string]uploadRecord, rec *recorder, prog *progress, res *SyncResult) error {
	sort.Slice(objs, func(i, j int) bool { return objs[i].name < objs[j].name })
	// Note new names as pending first: if the publisher dies after an
	// upload but before its record, the next sync still knows the
	// object (and deletes it if the repository no longer needs it).
	for _, o := range objs {
		if _, ok := have[o.name]; !ok {
			if err := rec.add(o.name, pendingRecord); err != nil {
				return err
			}
		}
	}
	if err := rec.flush(); err != nil {
		return err
	}
	up, copied, bytes, err := r.uploadStage(ctx, t, objs, rec, prog)
	res.Uploaded += up
	res.Copied += copied
	res.Bytes += bytes
	if ferr := rec.flush(); err == nil {
		err = ferr
	}
	return err
}

func (r *Repo) setBehind(db *bolt.DB, t *storage.PublishTarget, on bool) error {
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(targetBucketName(t.ID()))
		if err != nil {
			return err
		}
		if on {
			return b.Put(behindKey, encodeTime(r.opts.Now()))
		}
		return b.Delete(behindKey)
	})
}
