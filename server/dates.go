package server

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Last-Modified of the files clients revalidate by date.
//
// apt revalidates InRelease (and the indices it fetches by name) with
// If-Modified-Since alone, and Last-Modified has whole seconds. Answering
// 304 because the file is "not newer, to the second" would keep a device
// on the old release when the file was replaced within the second the
// device holds — by a publisher that did not wait (lampi-pkg's does),
// rsync, a restored backup dated before it, a tree moved into place. So
// for these files (under dists/, outside by-hash/: storage.RevalidatedByDate)
// the server dates each version itself, per path:
//
//   - a version (its ETag: the content's hash for files up to 1 MiB) keeps
//     the date it was first given;
//   - a new version gets its modification time, to the second — unless
//     the path had that date or a later one before, then the second
//     after the latest: a path's date never goes back and never names
//     two versions;
//   - If-Modified-Since is answered 304 only when it is exactly the
//     current version's date (any other date is one the server gave
//     another version, or never gave).
//
// The dates given are kept in DIR/db/serve-dates.db (bbolt, opened for
// each new version and closed again), so a restart, or a second server on
// the same directory, never gives a date to two versions either. When that
// file cannot be used (a read-only directory), the dates are kept for the
// life of the process only, and a warning is logged (once).

var bDates = []byte("dates")

// dateBook gives the versions of the files revalidated by date their
// Last-Modified.
type dateBook struct {
	path string                      // the bbolt file
	warn func(msg string, err error) // told once when the file cannot be used

	mu sync.RWMutex // m
	m  map[string]dated
	// dating serialises new versions (the file is opened for each), so
	// that versions already dated are answered meanwhile.
	dating sync.Mutex
	warned bool // the file failed once (and that was logged)
}

// dated is what the book knows of a path: the current version's tag and
// date, and the latest date this process gave the path.
type dated struct {
	tag      string
	sec, max int64
}

// date returns the date (Unix seconds) of the version tag of name, whose
// file is modified at mtime.
func (b *dateBook) date(name, tag string, mtime int64) int64 {
	b.mu.RLock()
	d, seen := b.m[name]
	b.mu.RUnlock()
	if seen && d.tag == tag {
		return d.sec
	}
	b.dating.Lock()
	defer b.dating.Unlock()
	b.mu.RLock()
	d, seen = b.m[name]
	b.mu.RUnlock()
	if seen && d.tag == tag { // dated meanwhile
		return d.sec
	}
	floor := int64(-1 << 62)
	if seen {
		floor = d.max
	}
	sec, err := b.record(name, tag, mtime, floor)
	if err != nil {
		// This version's date is kept in memory only; the next new
		// version tries the file again.
		if !b.warned && b.warn != nil {
			b.warn("serve: cannot keep the Last-Modified dates of served files in "+b.path+"; keeping them in memory meanwhile (a restart may then date a file replaced within a second as its predecessor)", err)
		}
		b.warned = true
		sec = max(mtime, floor+1)
	}
	b.mu.Lock()
	if b.m == nil || len(b.m) >= maxCachedTags {
		b.m = make(map[string]dated)
	}
	b.m[name] = dated{tag: tag, sec: sec, max: max(floor, sec)}
	b.mu.Unlock()
	return sec
}

var errNoBook = errors.New("no dates file")

// record looks the version up in the file, dating it there if it is new:
// after the path's recorded date and after floor.
func (b *dateBook) record(name, tag string, mtime, floor int64) (int64, error) {
	if b.path == "" {
		return 0, errNoBook
	}
	opts := &bolt.Options{Timeout: 2 * time.Second}
	db, err := bolt.Open(b.path, 0o644, opts)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(b.path), 0o755); err == nil {
			db, err = bolt.Open(b.path, 0o644, opts)
		}
	}
	if err != nil {
		return 0, err
	}
	defer db.Close()
	key := []byte(name)
	known := func(v []byte) (int64, bool) {
		sec, t, ok := decodeDate(v)
		return sec, ok && t == tag && sec > floor
	}
	var sec int64
	var found bool
	err = db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bDates); bk != nil {
			sec, found = known(bk.Get(key))
		}
		return nil
	})
	if err != nil || found {
		return sec, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bDates)
		if err != nil {
			return err
		}
		v := bk.Get(key)
		if sec, found = known(v); found { // another server dated it meanwhile
			return nil
		}
		sec = max(mtime, floor+1)
		if last, _, ok := decodeDate(v); ok && last >= sec {
			sec = last + 1
		}
		return bk.Put(key, []byte(strconv.FormatInt(sec, 10)+" "+tag))
	})
	return sec, err
}

func decodeDate(v []byte) (int64, string, bool) {
	s, tag, ok := strings.Cut(string(v), " ")
	if !ok {
		return 0, "", false
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	return sec, tag, err == nil
}

// validators are what a conditional request is checked against.
type validators struct {
	tag     string
	mod     time.Time // Last-Modified, whole seconds
	lastMod string    // mod as the header shows it
}

func newValidators(tag string, sec int64) validators {
	mod := time.Unix(sec, 0)
	return validators{tag: tag, mod: mod, lastMod: mod.UTC().Format(http.TimeFormat)}
}

// modifiedSince reports whether an If-Modified-Since value calls for the
// whole file: unless it names exactly the current version's date (see
// above), it does. A 200 is always a correct answer; a 304 only when the
// client holds these bytes.
func (v *validators) modifiedSince(ims string) bool {
	if ims == v.lastMod {
		return false
	}
	t, err := http.ParseTime(ims)
	return err != nil || t.Unix() != v.mod.Unix()
}
