package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
	bolt "go.etcd.io/bbolt"
)

// indexFile is one file of a target's index directory.
type indexFile struct {
	rel  string // relative to dists/<codename>/: "main/binary-amd64/Packages.gz"
	data []byte
	sums Checksums
	// written is false for a file listed in Release only (the
	// uncompressed index when DebIndices lacks ".").
	written bool
	byHash  bool // published under by-hash/ as well
}

// indexNames lists a target's files in Release order, relative to
// dists/<codename>/, with whether each one is written. The uncompressed
// index is always listed (reprepro does, and apt uses its checksum to
// verify the decompressed data), even when only compressed forms exist.
func indexNames(d *Distribution, t Target) []indexName {
	ix := d.DebIndices
	dir := t.Component + "/binary-" + t.Arch + "/"
	out := []indexName{{dir + ix.Name, ix.Uncompressed}}
	if ix.Gzip {
		out = append(out, indexName{dir + ix.Name + ".gz", true})
	}
	if ix.XZ {
		out = append(out, indexName{dir + ix.Name + ".xz", true})
	}
	if ix.Release != "" {
		out = append(out, indexName{dir + ix.Release, true})
	}
	return out
}

// indexName is a file of an index directory and whether it is written.
type indexName struct {
	rel     string
	written bool
}

// readPackages returns the content of a target's Packages index: every
// stanza in key order (package name, then version), each followed by a
// blank line. sizeHint (the size last published) sizes the buffer; without
// one, a first pass over the bucket does — either way without copying
// growth and off the Go heap. free releases the buffer once the index is
// published. The database pages read are dropped from the process's
// memory as the copy proceeds (dropMapped): the index is held once, not
// twice.
func readPackages(tx *bolt.Tx, t Target, sizeHint int64, free *freeList) ([]byte, error) {
	b, err := targetBucket(tx, t, false)
	if err != nil || b == nil {
		return nil, err
	}
	size := int(sizeHint + sizeHint/16 + 4096)
	if sizeHint <= 0 {
		size = 0
		b.ForEach(func(k, v []byte) error {
			_, stanza := splitPkgValue(v)
			size += len(stanza) + 1
			return nil
		})
		dropMapped(tx)
	}
	out, release := hugeBuffer(size)
	free.add(release)
	dropped := 0
	err = b.ForEach(func(k, v []byte) error {
		_, stanza := splitPkgValue(v)
		out = append(out, stanza...)
		out = append(out, '\n')
		if len(out)-dropped > 2<<20 {
			dropMapped(tx)
			dropped = len(out)
		}
		return nil
	})
	if dropped > 0 {
		dropMapped(tx)
	}
	return out, err
}

// buildIndex makes a target's index files from its Packages content,
// compressing and hashing the forms concurrently.
func buildIndex(d *Distribution, t Target, packages []byte, free *freeList) ([]indexFile, error) {
	names := indexNames(d, t)
	out := make([]indexFile, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := indexFile{rel: n.rel, written: n.written}
			switch {
			case strings.HasSuffix(n.rel, "/"+d.DebIndices.Name):
				f.data, f.byHash = packages, n.written
			case strings.HasSuffix(n.rel, ".gz"):
				f.data, errs[i] = gzipBytes(packages, free)
				f.byHash = true
			case strings.HasSuffix(n.rel, ".xz"):
				f.data, errs[i] = xzBytes(packages)
				f.byHash = true
			default: // the per-architecture Release
				f.data = archRelease(d, t)
			}
			f.sums = sumBytes(f.data)
			out[i] = f
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// gzipBytes compresses an index. klauspost's fastest level compresses
// Packages files about as well as zlib's default, several times faster.
func gzipBytes(data []byte, free *freeList) ([]byte, error) {
	buf, release := hugeBuffer(len(data)/3 + 64)
	free.add(release)
	b := bytes.NewBuffer(buf)
	zw, err := kgzip.NewWriterLevel(b, kgzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func xzBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(data)/4 + 64)
	zw, err := xz.WriterConfig{DictCap: 1 << 20}.NewWriter(&b)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// freeList collects the release functions of hugeBuffers.
type freeList struct {
	mu  sync.Mutex
	fns []func()
}

func (f *freeList) add(fn func()) {
	f.mu.Lock()
	f.fns = append(f.fns, fn)
	f.mu.Unlock()
}

// free releases every buffer; nothing may use them afterwards.
func (f *freeList) free() {
	for _, fn := range f.fns {
		fn()
	}
	f.fns = nil
}

// buildIndexes runs buildIndex for several targets on all cores.
func buildIndexes(ctx context.Context, d *Distribution, targets []Target, contents map[Target][]byte, free *freeList) (map[Target][]indexFile, error) {
	out := make(map[Target][]indexFile, len(targets))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, runtime.GOMAXPROCS(0))
	)
	for _, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			files, err := buildIndex(d, t, contents[t], free)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("export %s: %w", t, err)
			}
			out[t] = files
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return out, firstErr
}
