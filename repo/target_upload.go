package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
	bolt "go.etcd.io/bbolt"
)

// The uploads of a target sync: objects in parallel within a stage,
// retried, each recorded once its upload succeeded; then the deletions.

// progress adds up the bytes uploaded to a target.
type progress struct {
	mu          sync.Mutex
	done, total int64
	fn          func(done, total int64)
}

func (r *Repo) newProgress(t *storage.PublishTarget, todo [][]mirrorObject) *progress {
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
func (r *Repo) uploadStage(ctx context.Context, t *storage.PublishTarget, objs []mirrorObject, rec *recorder, prog *progress) (int, int, int64, error) {
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
func (r *Repo) uploadAll(ctx context.Context, t *storage.PublishTarget, objs []mirrorObject, rec *recorder, prog *progress) (int, int, int64, error) {
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
func (r *Repo) uploadRetrying(ctx context.Context, t *storage.PublishTarget, o mirrorObject) (uploadRecord, bool, error) {
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
func (r *Repo) uploadObject(ctx context.Context, t *storage.PublishTarget, o mirrorObject) (uploadRecord, bool, error) {
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
	case *storage.S3Storage:
		if data != nil {
			err = st.Put(ctx, o.name, data, meta)
		} else {
			err = st.Upload(ctx, o.name, path, meta)
		}
	case *storage.DirStorage:
		if data != nil {
			err = st.WriteFile(ctx, o.name, data)
		} else {
			err = st.CopyIn(ctx, o.name, path)
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

// deleteAll removes names from the target, forgetting each.
func (r *Repo) deleteAll(ctx context.Context, t *storage.PublishTarget, names []string, rec *recorder) (int, error) {
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
