package rollout

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store keeps rollouts, their audit logs and the controller's lease. The
// bbolt BoltStore is the default on one machine; a shared database
// implements the same for several servers.
type Store interface {
	// Get returns the rollout with key (Rollout.Key); an error wrapping
	// ErrNotFound if there is none.
	Get(ctx context.Context, key string) (*Rollout, error)
	// List returns every rollout, sorted by key.
	List(ctx context.Context) ([]Rollout, error)
	// Create stores a new rollout and the decision that started it; an
	// error wrapping ErrExists if its key is taken by a rollout that is
	// not closed (completed or reverted).
	Create(ctx context.Context, r *Rollout, d Decision) error
	// Save stores r and appends d to its audit log, both or neither, if
	// the stored rollout is still the one r was read as (the same Rev);
	// otherwise it returns an error wrapping ErrConflict and changes
	// nothing. It advances r.Rev.
	Save(ctx context.Context, r *Rollout, d Decision) error
	// Log returns a rollout's decisions, oldest first.
	Log(ctx context.Context, key string) ([]Decision, error)
	// Lease makes holder the one controller that acts until now+ttl, if
	// nobody else holds an unexpired lease; it reports whether holder
	// holds it now. A holder renews by calling Lease again.
	Lease(ctx context.Context, holder string, now time.Time, ttl time.Duration) (bool, error)
}

// BoltStore is a Store in a bbolt file. It opens the file for each call
// and closes it after, so the command line (pause, abort) and a running
// server share it; Timeout bounds the wait for the file's lock.
type BoltStore struct {
	Path    string
	Timeout time.Duration
}

var (
	bRollouts = []byte("rollouts")
	bLog      = []byte("log")
	bLease    = []byte("lease")
	kLease    = []byte("controller")
)

type leaseRecord struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

func (s *BoltStore) open(readOnly bool) (*bolt.DB, error) {
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	if readOnly {
		// A missing file is an empty store; so is an empty one: its first
		// writer created it and has not written its first pages yet (it
		// takes the file's lock only after creating it), and bbolt would
		// try to write them through this read-only descriptor. Once the
		// file has a size, its writer holds the lock or is done, and the
		// read waits for it.
		if fi, err := os.Stat(s.Path); errors.Is(err, os.ErrNotExist) || err == nil && fi.Size() == 0 {
			return nil, nil
		}
	} else if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return nil, fmt.Errorf("rollout store: %w", err)
	}
	db, err := bolt.Open(s.Path, 0o644, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open rollout store %s: %w", s.Path, err)
	}
	return db, nil
}

func (s *BoltStore) view(fn func(tx *bolt.Tx) error) error {
	db, err := s.open(true)
	if err != nil || db == nil {
		return err
	}
	defer db.Close()
	return db.View(fn)
}

func (s *BoltStore) update(fn func(tx *bolt.Tx) error) error {
	db, err := s.open(false)
	if err != nil {
		return err
	}
	if err := db.Update(fn); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

// Get implements Store.
func (s *BoltStore) Get(_ context.Context, key string) (*Rollout, error) {
	var r *Rollout
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = getRollout(tx, key)
		return err
	})
	if err == nil && r == nil {
		err = fmt.Errorf("%w: no rollout %s (see 'lampi-pkg rollout status')", ErrNotFound, key)
	}
	return r, err
}

func getRollout(tx *bolt.Tx, key string) (*Rollout, error) {
	b := tx.Bucket(bRollouts)
	if b == nil {
		return nil, nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	var r Rollout
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("rollout %s: stored record: %w", key, err)
	}
	return &r, nil
}

// List implements Store.
func (s *BoltStore) List(_ context.Context) ([]Rollout, error) {
	var out []Rollout
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bRollouts)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r Rollout
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("rollout %s: stored record: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, err
}

// Create implements Store.
func (s *BoltStore) Create(_ context.Context, r *Rollout, d Decision) error {
	return s.advance(r, func(tx *bolt.Tx) error {
		old, err := getRollout(tx, r.Key())
		if err != nil {
			return err
		}
		if old != nil && !old.Closed() {
			return fmt.Errorf("%w: rollout %s is %s; abort it first", ErrExists, r.Key(), old.State)
		}
		r.Rev = 0
		if old != nil {
			r.Rev = old.Rev
			// A closed rollout of the same version started again: its
			// old log goes, the new one starts empty.
			if lb := tx.Bucket(bLog); lb != nil {
				if err := lb.DeleteBucket([]byte(r.Key())); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
					return err
				}
			}
		}
		return saveTx(tx, r, d)
	})
}

// Save implements Store.
func (s *BoltStore) Save(_ context.Context, r *Rollout, d Decision) error {
	return s.advance(r, func(tx *bolt.Tx) error {
		old, err := getRollout(tx, r.Key())
		if err != nil {
			return err
		}
		if old == nil {
			return fmt.Errorf("%w: no rollout %s", ErrNotFound, r.Key())
		}
		if old.Rev != r.Rev {
			return fmt.Errorf("%w: rollout %s is %s at %d%% now (revision %d, not %d): not saving %s",
				ErrConflict, r.Key(), old.State, old.Percent(), old.Rev, r.Rev, d.Action)
		}
		return saveTx(tx, r, d)
	})
}

// advance runs fn, which saves r with saveTx, and advances r.Rev as
// stored once the transaction has committed.
func (s *BoltStore) advance(r *Rollout, fn func(tx *bolt.Tx) error) error {
	if err := s.update(fn); err != nil {
		return err
	}
	r.Rev++
	return nil
}

// saveTx stores r with the next revision and appends d to its log.
func saveTx(tx *bolt.Tx, r *Rollout, d Decision) error {
	b, err := tx.CreateBucketIfNotExists(bRollouts)
	if err != nil {
		return err
	}
	next := *r
	next.Rev++
	v, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(r.Key()), v); err != nil {
		return err
	}
	lb, err := tx.CreateBucketIfNotExists(bLog)
	if err != nil {
		return err
	}
	rb, err := lb.CreateBucketIfNotExists([]byte(r.Key()))
	if err != nil {
		return err
	}
	seq, err := rb.NextSequence()
	if err != nil {
		return err
	}
	dv, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return rb.Put(binary.BigEndian.AppendUint64(nil, seq), dv)
}

// Log implements Store.
func (s *BoltStore) Log(_ context.Context, key string) ([]Decision, error) {
	var out []Decision
	err := s.view(func(tx *bolt.Tx) error {
		lb := tx.Bucket(bLog)
		if lb == nil {
			return nil
		}
		rb := lb.Bucket([]byte(key))
		if rb == nil {
			return nil
		}
		return rb.ForEach(func(_, v []byte) error {
			var d Decision
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("rollout %s: stored decision: %w", key, err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Lease implements Store.
func (s *BoltStore) Lease(_ context.Context, holder string, now time.Time, ttl time.Duration) (bool, error) {
	held := false
	err := s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bLease)
		if err != nil {
			return err
		}
		var cur leaseRecord
		if v := b.Get(kLease); v != nil {
			if err := json.Unmarshal(v, &cur); err != nil {
				return fmt.Errorf("rollout lease: stored record: %w", err)
			}
		}
		if cur.Holder != "" && cur.Holder != holder && now.Before(cur.Expires) {
			return nil
		}
		v, err := json.Marshal(leaseRecord{Holder: holder, Expires: now.Add(ttl)})
		if err != nil {
			return err
		}
		held = true
		return b.Put(kLease, v)
	})
	return held && err == nil, err
}
