package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The state database (DBDIR/lampi.db) holds these buckets:
//
//	meta          "schema" → schemaVersion
//	packages      one nested bucket per target ("bookworm|main|amd64"):
//	              name "\x00" version → pool file key "\x00" Packages stanza
//	files         pool file key ("pool/main/h/hi/hi_0.1_all.deb") → Checksums
//	references    pool file key "\x00" target → "" (who needs the file)
//	unreferenced  pool file key → "" (known files nothing needs any more)
//	dirty         target → "" (package list changed since its last
//	              export), or "k" and the changed package keys (each
//	              length-prefixed) when only those changed (index_patch.go)
//	exported      path under dists/ ("bookworm/main/binary-amd64/Packages.gz")
//	              → Checksums of the file as last published
//	byhash        by-hash path → time it stopped being current (0: current)
//	pins          codename "\x00" package "\x00" version → reason (kept
//	              whatever Limit says; see Pin)
//	tracking      codename "\x00" source "\x00" version → tracking record
//	              (tracking.go)
const (
	bMeta         = "meta"
	bPackages     = "packages"
	bFiles        = "files"
	bRefs         = "references"
	bUnreferenced = "unreferenced"
	bDirty        = "dirty"
	bExported     = "exported"
	bByHash       = "byhash"
	bPins         = "pins"
	// bTracking: see tracking.go.
)

// bucket returns a top-level bucket (they all exist once openDB succeeded).
// Keys are mostly added in order (sorted batches, pool paths by name), so
// pages are filled densely.
func bucket(tx *bolt.Tx, name string) *bolt.Bucket {
	b := tx.Bucket([]byte(name))
	if b != nil {
		b.FillPercent = fillPercent
	}
	return b
}

const fillPercent = 0.9

const schemaVersion = "1"

func allBuckets() []string {
	return []string{bMeta, bPackages, bFiles, bRefs, bUnreferenced, bDirty, bExported, bByHash, bPins, bTracking}
}

// openDB opens the state database, waiting up to timeout for bbolt's own
// file lock (held only while another process has the database open). A
// read-only open of a missing database returns (nil, nil).
func openDB(path string, readOnly bool, timeout time.Duration) (*bolt.DB, error) {
	if readOnly {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return nil, nil
		}
	}
	if timeout <= 0 {
		timeout = 50 * time.Millisecond
	}
	// A large initial map (address space only) spares remapping, and the
	// copying of every dirty node it implies, while a big batch grows
	// the file.
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: timeout, ReadOnly: readOnly,
		FreelistType: bolt.FreelistMapType, InitialMmapSize: 256 << 20})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w (waited %v)", path, ErrLocked, timeout)
		}
		return nil, fmt.Errorf("open %s: %w: %w", path, ErrState, err)
	}
	complete := false
	err = db.View(func(tx *bolt.Tx) error {
		complete = true
		for _, b := range allBuckets() {
			complete = complete && tx.Bucket([]byte(b)) != nil
		}
		if complete || readOnly {
			return checkSchema(tx)
		}
		return nil
	})
	if err == nil && !complete && !readOnly {
		// Only a new database is written to here: opening an existing
		// one must not change its bytes.
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range allBuckets() {
				if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
					return err
				}
			}
			meta := bucket(tx, bMeta)
			if meta.Get([]byte("schema")) == nil {
				return meta.Put([]byte("schema"), []byte(schemaVersion))
			}
			return checkSchema(tx)
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return db, nil
}

func checkSchema(tx *bolt.Tx) error {
	meta := bucket(tx, bMeta)
	if meta == nil {
		return fmt.Errorf("%w: no meta bucket; is this a lampi-pkg state database?", ErrState)
	}
	if v := string(meta.Get([]byte("schema"))); v != schemaVersion {
		return fmt.Errorf("%w: schema %q, this lampi-pkg understands %q; use the lampi-pkg that wrote it", ErrState, v, schemaVersion)
	}
	return nil
}

// pkgKey is the key of a package in a target bucket.
func pkgKey(name, version string) []byte { return []byte(name + "\x00" + version) }

func splitPkgKey(k []byte) (name, version string) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return string(k), ""
	}
	return string(k[:i]), string(k[i+1:])
}

// pkgValue joins a pool file key and a Packages stanza.
func pkgValue(filekey string, stanza []byte) []byte {
	v := make([]byte, 0, len(filekey)+1+len(stanza))
	v = append(v, filekey...)
	v = append(v, 0)
	return append(v, stanza...)
}

// pkgStanza is the stanza of a package value, without copying.
func pkgStanza(v []byte) []byte {
	if i := bytes.IndexByte(v, 0); i >= 0 {
		return v[i+1:]
	}
	return v
}

func splitPkgValue(v []byte) (filekey string, stanza []byte) {
	i := bytes.IndexByte(v, 0)
	if i < 0 {
		return "", v
	}
	return string(v[:i]), v[i+1:]
}

// targetBucket returns the package bucket of t, creating it when create
// is set (only in a writable transaction). It returns nil when absent.
func targetBucket(tx *bolt.Tx, t Target, create bool) (*bolt.Bucket, error) {
	pk := bucket(tx, bPackages)
	b := pk.Bucket([]byte(t.String()))
	if b == nil && create {
		var err error
		if b, err = pk.CreateBucket([]byte(t.String())); err != nil {
			return nil, err
		}
	}
	if b != nil {
		b.FillPercent = fillPercent
	}
	return b, nil
}

func refKey(filekey string, t Target) []byte { return []byte(filekey + "\x00" + t.String()) }

// addRef records that t needs filekey.
func addRef(tx *bolt.Tx, filekey string, t Target) error {
	return addHolderRef(tx, filekey, t.String())
}

// addHolderRef records that holder (a target, or a tracking record:
// trackHolder) needs filekey.
func addHolderRef(tx *bolt.Tx, filekey, holder string) error {
	if err := bucket(tx, bUnreferenced).Delete([]byte(filekey)); err != nil {
		return err
	}
	return bucket(tx, bRefs).Put([]byte(filekey+"\x00"+holder), nil)
}

// dropRef removes t's reference to filekey; when it was the last one the
// file becomes unreferenced, and dropRef reports it.
func dropRef(tx *bolt.Tx, filekey string, t Target) (bool, error) {
	return dropRefOf(tx, filekey, t.String())
}

// dropRefOf is dropRef for the package list named target ("bookworm|main|amd64").
func dropRefOf(tx *bolt.Tx, filekey, target string) (bool, error) {
	refs := bucket(tx, bRefs)
	if err := refs.Delete([]byte(filekey + "\x00" + target)); err != nil {
		return false, err
	}
	prefix := []byte(filekey + "\x00")
	if k, _ := refs.Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
		return false, nil
	}
	return true, bucket(tx, bUnreferenced).Put([]byte(filekey), nil)
}

// dropEntryRefs drops t's references to the files of a package entry
// called name that was just deleted from t, and returns the files that
// lost their last reference. In a source target, versions of a source
// package share files (the original tarball): those another entry of
// name still lists stay referenced.
func dropEntryRefs(tx *bolt.Tx, t Target, name string, files []string) ([]string, error) {
	var inUse map[string]bool
	if t.IsSource() {
		b, err := targetBucket(tx, t, false)
		if err != nil {
			return nil, err
		}
		if b != nil {
			inUse = map[string]bool{}
			prefix := []byte(name + "\x00")
			c := b.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				for _, f := range entryFiles(v) {
					inUse[f] = true
				}
			}
		}
	}
	var gone []string
	for _, f := range files {
		if inUse[f] {
			continue
		}
		last, err := dropRef(tx, f, t)
		if err != nil {
			return nil, err
		}
		if last {
			gone = append(gone, f)
		}
	}
	return gone, nil
}

// markDirty marks a target's whole package list as changed: its next
// export rebuilds its indices from the database.
func markDirty(tx *bolt.Tx, t Target) error {
	return bucket(tx, bDirty).Put([]byte(t.String()), nil)
}

// putPkg stores a package entry of target t under key and marks the key
// changed (markChanged).
func putPkg(tx *bolt.Tx, b *bolt.Bucket, t Target, key, value []byte) error {
	if err := b.Put(key, value); err != nil {
		return err
	}
	return markChanged(tx, t, key)
}

// deletePkg deletes the package entry key of target t and marks the key
// changed (markChanged).
func deletePkg(tx *bolt.Tx, b *bolt.Bucket, t Target, key []byte) error {
	if err := b.Delete(key); err != nil {
		return err
	}
	return markChanged(tx, t, key)
}

// maxChangedKeys is how many changed keys a target's dirty mark lists;
// past it the whole list counts as changed (markDirty).
const maxChangedKeys = 256

// markChanged records that the package entry key of target t was
// added, replaced or deleted, so that the next export can patch the
// target's indices (index_patch.go) instead of rebuilding them. A target
// already marked wholly changed stays so.
func markChanged(tx *bolt.Tx, t Target, key []byte) error {
	dirty := bucket(tx, bDirty)
	name := []byte(t.String())
	old := dirty.Get(name)
	if old != nil && len(old) == 0 {
		return nil // wholly changed already
	}
	keys := decodeChangedKeys(old)
	if len(keys) >= maxChangedKeys {
		return markDirty(tx, t)
	}
	v := make([]byte, 0, len(old)+len(key)+binary.MaxVarintLen32+1)
	if old == nil {
		v = append(v, 'k')
	} else {
		v = append(v, old...)
	}
	v = binary.AppendUvarint(v, uint64(len(key)))
	return dirty.Put(name, append(v, key...))
}

// decodeChangedKeys reads the changed keys of a dirty mark; nil: none
// listed (the whole list changed, or a malformed mark, which counts the
// same).
func decodeChangedKeys(v []byte) [][]byte {
	if len(v) == 0 || v[0] != 'k' {
		return nil
	}
	var keys [][]byte
	for rest := v[1:]; len(rest) > 0; {
		n, w := binary.Uvarint(rest)
		if w <= 0 || uint64(len(rest)-w) < n {
			return nil
		}
		keys = append(keys, rest[w:w+int(n)])
		rest = rest[w+int(n):]
	}
	return keys
}

func fileSums(tx *bolt.Tx, filekey string) (Checksums, bool, error) {
	v := bucket(tx, bFiles).Get([]byte(filekey))
	if v == nil {
		return Checksums{}, false, nil
	}
	c, err := decodeChecksums(v)
	return c, err == nil, err
}

func encodeTime(t time.Time) []byte {
	if t.IsZero() {
		return []byte("0")
	}
	return []byte(strconv.FormatInt(t.UnixNano(), 10))
}

func decodeTime(b []byte) time.Time {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
