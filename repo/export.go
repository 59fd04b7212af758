package repo

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/ulikunitz/xz"
	bolt "go.etcd.io/bbolt"

	"github.com/lampi-pkg/lampi-pkg/internal/hugemem"
)

// indexFile is one file of a target's index directory.
type indexFile struct {
	rel  string // relative to dists/<codename>/: "main/binary-amd64/Packages.gz"
	data []byte
	// path: the content is in this local file instead of data (a big
	// Packages index, spooled; publishing moves the file).
	path string
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
	ix := d.indices(t)
	dir := t.IndexDir() + "/"
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

// readPackages reads the content of a target's Packages index into s:
// every stanza in key order (package name, then version), each followed
// by a blank line, handed on as it grows so that compressing and hashing
// run while it is read. sizeHint (the size last published) sizes the
// buffer; without one, a first pass over the bucket does — either way
// without copying growth and off the Go heap. free releases the buffer
// once the index is published. The database pages read are dropped from
// the process's memory as the copy proceeds (dropMapped): the index is
// held once, not twice. s is finished whatever happens.
//
// An index without a size hint (a first publish, after a big import) is
// not held at all when spool returns a file for its size: it is written
// to that file, and its readers read it back from there (the page cache),
// so that the command's peak memory does not grow with it.
func readPackages(tx *bolt.Tx, t Target, sizeHint int64, free *freeList, spool func(size int) (*os.File, error), s *pkgStream) (err error) {
	var out []byte
	defer func() { s.finish(out, err) }()
	b, err := targetBucket(tx, t, false)
	if err != nil || b == nil {
		return err
	}
	size := int(sizeHint + sizeHint/16 + 4096)
	if sizeHint <= 0 {
		size = 0
		counted := 0
		b.ForEach(func(k, v []byte) error {
			size += len(pkgStanza(v)) + 1
			if size-counted > dropEvery {
				dropMapped(tx)
				counted = size
			}
			return nil
		})
		dropMapped(tx)
		if spool != nil {
			f, err := spool(size)
			if err != nil {
				return err
			}
			if f != nil {
				free.add(func() { f.Close() })
				s.spoolTo(f)
				s.expect(size)
				return spoolPackages(tx, b, s)
			}
		}
	}
	out, release := hugemem.Buffer(size)
	free.add(release)
	s.expect(size)
	dropped, handed := 0, 0
	err = b.ForEach(func(k, v []byte) error {
		s.mark(len(out), k)
		out = append(out, pkgStanza(v)...)
		out = append(out, '\n')
		if len(out)-handed >= streamChunk {
			s.publish(out)
			handed = len(out)
		}
		if len(out)-dropped > dropEvery {
			dropMapped(tx)
			dropped = len(out)
		}
		return nil
	})
	if dropped > 0 {
		dropMapped(tx)
	}
	return err
}

// spoolMin is the default of Repo.spoolMin: smaller indices are held in
// memory.
const spoolMin = 1 << 20

// spoolPackages writes the stanzas of b to s's spool file, handing each
// chunk on once written.
func spoolPackages(tx *bolt.Tx, b *bolt.Bucket, s *pkgStream) error {
	chunk := make([]byte, 0, streamChunk)
	written, dropped := 0, 0
	flush := func() error {
		if _, err := s.file.WriteAt(chunk, int64(written)); err != nil {
			return err
		}
		written += len(chunk)
		chunk = chunk[:0]
		s.publishFile(written)
		if written-dropped > dropEvery {
			dropMapped(tx)
			dropped = written
		}
		return nil
	}
	err := b.ForEach(func(k, v []byte) error {
		s.mark(written+len(chunk), k)
		chunk = append(chunk, pkgStanza(v)...)
		chunk = append(chunk, '\n')
		if len(chunk) >= streamChunk {
			return flush()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = flush()
	}
	dropMapped(tx)
	return err
}

// dropEvery is how much of an index readPackages copies before it drops
// the database pages read from the process's memory.
const dropEvery = 512 << 10

// streamChunk is how much of an index readPackages reads before handing
// it on.
const streamChunk = 256 << 10

// pkgStream is a Packages index being read out of the database while
// other goroutines compress and hash it: a buffer that only grows, and
// whose bytes never change once handed on.
type pkgStream struct {
	mu   sync.Mutex
	cond sync.Cond
	buf  []byte
	size int // the expected size, 0 until known
	done bool
	err  error
	// file: the content is spooled to this file instead of buf (set
	// before the expected size is known); n bytes of it are written.
	file *os.File
	n    int
	// marks are the offsets where chunks start (index_chunks.go), keys
	// their first stanzas' keys; each is recorded before its bytes are
	// handed on.
	marks []int
	keys  [][]byte
	every int // see chunkStart
}

// mark notes that the stanza of key starts at off, recording a chunk
// start when it starts one.
func (s *pkgStream) mark(off int, key []byte) {
	if off != 0 && !chunkStart(key, s.every) {
		return
	}
	s.mu.Lock()
	s.marks = append(s.marks, off)
	s.keys = append(s.keys, bytes.Clone(key))
	s.mu.Unlock()
}

// markAt returns the i-th chunk start, if it is known yet.
func (s *pkgStream) markAt(i int) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < len(s.marks) {
		return s.marks[i], true
	}
	return 0, false
}

// spoolTo makes f hold the content instead of memory; called before
// expect.
func (s *pkgStream) spoolTo(f *os.File) {
	s.mu.Lock()
	s.file = f
	s.mu.Unlock()
}

// publishFile hands on the first n bytes of the spool file.
func (s *pkgStream) publishFile(n int) {
	s.mu.Lock()
	s.n = n
	s.mu.Unlock()
	s.cond.Broadcast()
}

// spooled returns the spool file (nil: the content is in memory) once
// the expected size is known.
func (s *pkgStream) spooled() *os.File {
	s.expected()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file
}

// length waits for the end and returns the content's size.
func (s *pkgStream) length() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.done {
		s.cond.Wait()
	}
	if s.file != nil {
		return s.n, s.err
	}
	return len(s.buf), s.err
}

// spoolRead is the buffer each reader of a spooled index reads it with.
const spoolRead = 64 << 10

// copyFileTo writes the spooled content to w as it is written.
func (s *pkgStream) copyFileTo(w io.Writer) error {
	buf := make([]byte, spoolRead)
	for off := 0; ; {
		s.mu.Lock()
		for s.n <= off && !s.done {
			s.cond.Wait()
		}
		n, err := s.n, s.err
		s.mu.Unlock()
		if err != nil || n <= off {
			return err
		}
		for off < n {
			k, err := s.file.ReadAt(buf[:min(len(buf), n-off)], int64(off))
			if k > 0 {
				if _, err := w.Write(buf[:k]); err != nil {
					return err
				}
				off += k
			}
			if err != nil && !(err == io.EOF && k > 0) {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
	}
}

// expect records the expected size of the content, before anything is
// handed on: consumers size their output buffers by it.
func (s *pkgStream) expect(n int) {
	s.mu.Lock()
	s.size = n
	s.mu.Unlock()
	s.cond.Broadcast()
}

// expected waits until the expected size is known, or reading ended.
func (s *pkgStream) expected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.size == 0 && !s.done {
		s.cond.Wait()
	}
	return s.size
}

func newPkgStream() *pkgStream {
	s := &pkgStream{}
	s.cond.L = &s.mu
	return s
}

// publish hands on buf (which extends what was handed on before).
func (s *pkgStream) publish(buf []byte) {
	s.mu.Lock()
	s.buf = buf
	s.mu.Unlock()
	s.cond.Broadcast()
}

// finish hands on the whole content, or the error that ended reading.
func (s *pkgStream) finish(buf []byte, err error) {
	s.mu.Lock()
	s.buf, s.done, s.err = buf, true, err
	s.mu.Unlock()
	s.cond.Broadcast()
}

// from waits for the bytes after off; it returns none at the end.
func (s *pkgStream) from(off int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) <= off && !s.done {
		s.cond.Wait()
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.buf[off:len(s.buf):len(s.buf)], nil
}

// copyTo writes the content to w as it is read.
func (s *pkgStream) copyTo(w io.Writer) error {
	if s.spooled() != nil {
		return s.copyFileTo(w)
	}
	for off := 0; ; {
		b, err := s.from(off)
		if err != nil || len(b) == 0 {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		off += len(b)
	}
}

// all waits for the whole content.
func (s *pkgStream) all() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.done {
		s.cond.Wait()
	}
	return s.buf, s.err
}

// sums hashes the content as it is read, the four digests concurrently.
func (s *pkgStream) sums() (Checksums, error) {
	c, err := sumParallel(0, func(h hash.Hash) error { return s.copyTo(h) })
	if err != nil {
		return c, err
	}
	n, err := s.length()
	c.Size = int64(n)
	return c, err
}

// buildIndex makes a target's index files from its Packages content,
// compressing and hashing the forms concurrently, and while the content
// is still being read. For a target whose indices can be patched
// (patchable) it returns their chunk table too.
func buildIndex(d *Distribution, t Target, packages *pkgStream, free *freeList) ([]indexFile, *chunkTable, error) {
	names := indexNames(d, t)
	out := make([]indexFile, len(names))
	errs := make([]error, len(names))
	chunked := patchable(d, t)
	var pkgStates, gzStates [][8][]byte
	var zoffs []int64
	var crcs []uint32
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := indexFile{rel: n.rel, written: n.written}
			var err error
			switch {
			case strings.HasSuffix(n.rel, "/"+d.indices(t).Name) && chunked:
				f.byHash = true
				f.sums, pkgStates, err = sumsChunked(packages, &f)
			case strings.HasSuffix(n.rel, "/"+d.indices(t).Name):
				f.byHash = n.written
				if f.sums, err = packages.sums(); err == nil {
					if sf := packages.spooled(); sf != nil {
						f.path = sf.Name()
					} else {
						f.data, err = packages.all()
					}
				}
			case strings.HasSuffix(n.rel, ".gz"):
				f.data, zoffs, crcs, err = gzipStream(packages, free)
				f.byHash = true
				if chunked && err == nil {
					gzStates = make([][8][]byte, len(zoffs))
					f.sums, err = sumsFrom(indexContent{data: f.data}, int64(len(f.data)), 0, nil, zoffs, gzStates, 4)
				}
			case strings.HasSuffix(n.rel, ".xz"):
				f.data, err = xzStream(packages)
				f.byHash = true
			default: // the per-architecture Release
				f.data = archRelease(d, t)
			}
			if f.sums == (Checksums{}) && err == nil {
				f.sums = sumBytes(f.data)
			}
			out[i], errs[i] = f, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil || !chunked {
		return out, nil, err
	}
	tbl := &chunkTable{packages: out[0].sums, gz: out[1].sums, chunks: make([]chunkInfo, len(packages.marks))}
	if len(gzStates) != len(tbl.chunks) || len(pkgStates) != len(tbl.chunks) {
		return nil, nil, fmt.Errorf("index %s: %d chunks, %d compressed", t, len(tbl.chunks), len(gzStates))
	}
	for i := range tbl.chunks {
		c := &tbl.chunks[i]
		c.key, c.off, c.zoff, c.crc = packages.keys[i], int64(packages.marks[i]), zoffs[i], crcs[i]
		copy(c.states[:4], pkgStates[i][:4])
		copy(c.states[4:], gzStates[i][4:])
	}
	return out, tbl, nil
}

// patchable tells whether a target's indices are published in the forms
// an export can patch (index_patch.go): the uncompressed index and gzip.
func patchable(d *Distribution, t Target) bool {
	ix := d.indices(t)
	return ix.Uncompressed && ix.Gzip
}

// sumsChunked waits for the whole content of packages, notes in f where
// it is (data, or the spool file) and hashes it, recording the digests'
// states at its chunk starts.
func sumsChunked(packages *pkgStream, f *indexFile) (Checksums, [][8][]byte, error) {
	n, err := packages.length()
	if err != nil {
		return Checksums{}, nil, err
	}
	var src indexContent
	if sf := packages.spooled(); sf != nil {
		f.path, src.file = sf.Name(), sf
	} else {
		if f.data, err = packages.all(); err != nil {
			return Checksums{}, nil, err
		}
		src.data = f.data
	}
	packages.mu.Lock()
	offs := make([]int64, len(packages.marks))
	for i, m := range packages.marks {
		offs[i] = int64(m)
	}
	packages.mu.Unlock()
	states := make([][8][]byte, len(offs))
	sums, err := sumsFrom(src, int64(n), 0, nil, offs, states, 0)
	return sums, states, err
}

// gzipStream compresses an index as it is read, chunk by chunk
// (index_chunks.go); it returns the offsets of the compressed chunks too.
func gzipStream(s *pkgStream, free *freeList) ([]byte, []int64, []uint32, error) {
	buf, release := hugemem.Buffer(s.expected()/3 + 64)
	free.add(release)
	b := bytes.NewBuffer(buf)
	b.Write(gzHeader)
	dfl, err := newChunkDeflater()
	if err != nil {
		return nil, nil, nil, err
	}
	g := &chunkGzip{out: b, dfl: dfl, marks: s.markAt}
	if err := s.copyTo(g); err != nil {
		return nil, nil, nil, err
	}
	if err := g.close(); err != nil {
		return nil, nil, nil, err
	}
	return b.Bytes(), g.zoffs, g.crcs, nil
}

func xzStream(s *pkgStream) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(s.expected()/4 + 64)
	zw, err := xz.WriterConfig{DictCap: 1 << 20}.NewWriter(&b)
	if err != nil {
		return nil, err
	}
	if err := s.copyTo(zw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// freeList collects the release functions of hugemem buffers.
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
