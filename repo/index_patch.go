package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
	bolt "go.etcd.io/bbolt"
)

// An export of a target whose changes are listed by key (markChanged)
// patches its published Packages and Packages.gz instead of rebuilding
// them from the database: the chunks (index_chunks.go) holding changed
// keys are read anew from the database and recompressed, the others are
// taken from the published files, and the digests resume from their
// states at the first changed chunk. Adding one package to 10,000 reads
// and compresses some 128 stanzas instead of 10,000. The result is the
// bytes a full export writes (TestPatchedIndexEqualsRebuilt).
//
// A patch needs the target's chunk table (DBDIR/indices/…) to describe
// exactly what is published: the same checksums as the exported records
// and the generation of the package list (the target bucket's sequence,
// advanced by every export, so that a table written by an export the
// database no longer knows — a rolled-back release, a restored backup, a
// list deleted and made anew — never matches). Anything else, and any
// doubt on the published files read back, means a full rebuild.

// patchPlan is how a target's indices are patched: the table of what is
// published and the changed keys.
type patchPlan struct {
	table *chunkTable
	keys  [][]byte
}

// chunkTablePath is the file of target t's chunk table.
func (r *Repo) chunkTablePath(t Target) string {
	name := strings.NewReplacer("/", "%2F", "|", "_").Replace(t.String())
	return filepath.Join(r.opts.DBDir, "indices", name)
}

// planPatch returns how target t's indices can be patched, given its
// dirty mark; nil when they must be rebuilt.
func (r *Repo) planPatch(tx *bolt.Tx, d *Distribution, t Target, dirty []byte) *patchPlan {
	if !patchable(d, t) {
		return nil
	}
	keys := decodeChangedKeys(dirty)
	if keys == nil {
		return nil
	}
	b, err := targetBucket(tx, t, false)
	if err != nil || b == nil {
		return nil
	}
	data, err := os.ReadFile(r.chunkTablePath(t))
	if err != nil {
		return nil
	}
	tbl, err := decodeChunkTable(data)
	if err != nil || tbl.gen == 0 || tbl.gen != b.Sequence() {
		return nil
	}
	exp := bucket(tx, bExported)
	names := indexNames(d, t)
	for i, want := range []Checksums{tbl.packages, tbl.gz} {
		v := exp.Get([]byte(d.Codename + "/" + names[i].rel))
		if v == nil {
			return nil
		}
		if c, err := decodeChecksums(v); err != nil || c != want {
			return nil
		}
	}
	for i := range keys {
		keys[i] = bytes.Clone(keys[i])
	}
	return &patchPlan{table: tbl, keys: keys}
}

// saveChunkTable writes target t's chunk table (no fsync: see
// planPatch), or removes a stale one when tbl is nil or writing fails.
func (r *Repo) saveChunkTable(t Target, tbl *chunkTable) {
	p := r.chunkTablePath(t)
	if tbl == nil || tbl.gen == 0 {
		os.Remove(p)
		return
	}
	err := os.MkdirAll(filepath.Dir(p), 0o755)
	var f *os.File
	if err == nil {
		f, err = os.CreateTemp(filepath.Dir(p), ".table-*")
	}
	if err == nil {
		_, err = f.Write(tbl.encode())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), p)
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}
	if err != nil {
		os.Remove(p)
	}
}

// publishedFile is a published index file read back.
type publishedFile interface {
	io.ReaderAt
	io.ReadSeeker
}

// openPublished opens a published index file by its SHA256 by-hash name,
// checking its size: the local file for a storage.DirStorage, else the
// content read into memory. close releases it.
func openPublished(ctx context.Context, st storage.Storage, codename string, rel string, c Checksums) (r publishedFile, close func(), err error) {
	name, _ := byHashNames(codename, indexFile{rel: rel, sums: c})
	if ds, ok := st.(*storage.DirStorage); ok {
		p, err := ds.Path(name)
		if err != nil {
			return nil, nil, err
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, nil, err
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != c.Size {
			f.Close()
			return nil, nil, fmt.Errorf("%s: not %d bytes", name, c.Size)
		}
		return f, func() { f.Close() }, nil
	}
	rc, err := st.Open(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	data := make([]byte, c.Size+1)
	n, err := io.ReadFull(rc, data)
	if err != io.ErrUnexpectedEOF || int64(n) != c.Size {
		return nil, nil, fmt.Errorf("%s: %d bytes, want %d", name, n, c.Size)
	}
	return bytes.NewReader(data[:n]), func() {}, nil
}

// patchChunk is a chunk of a patched index: its first key and either
// its new content and compressed form (raw, z; z nil: to compress), or
// where it is in the published files (off, n in Packages; zoff, zn in
// Packages.gz).
type patchChunk struct {
	key, raw, z      []byte
	off, n, zoff, zn int64
}

// patchIndex builds target t's index files by patching the published
// ones as p says (see the top of this file). It returns nil files, and
// no error, when the published files do not match the table: the caller
// rebuilds.
//
// The new Packages and Packages.gz are written to files of the staging
// directory, which the publish moves into place: the part before the
// first changed chunk is the same bytes at the same offsets as in the
// published files and is copied file to file (copy_file_range: it never
// passes through the process); the rest is made in memory, where CRC-32
// and the digests resume from their states at the first changed chunk.
func (r *Repo) patchIndex(ctx context.Context, tx *bolt.Tx, d *Distribution, t Target, p *patchPlan, spool *indexSpool) ([]indexFile, *chunkTable, error) {
	tbl, st := p.table, r.storage
	names := indexNames(d, t)
	oldPkg, closePkg, err := openPublished(ctx, st, d.Codename, names[0].rel, tbl.packages)
	if err != nil {
		return nil, nil, nil
	}
	defer closePkg()
	oldGz, closeGz, err := openPublished(ctx, st, d.Codename, names[1].rel, tbl.gz)
	if err != nil {
		return nil, nil, nil
	}
	defer closeGz()
	if !tableFits(tbl, oldGz) {
		return nil, nil, nil
	}
	b, err := targetBucket(tx, t, false)
	if err != nil || b == nil {
		return nil, nil, err
	}
	chunks, first := patchChunks(b, tbl, p.keys, r.chunkEvery)
	if err := compressChunks(chunks[first:]); err != nil {
		return nil, nil, fmt.Errorf("index %s: %w", t, err)
	}

	ntbl := &chunkTable{chunks: make([]chunkInfo, len(chunks))}
	copy(ntbl.chunks, tbl.chunks[:first])
	pt, ok := assemblePatch(tbl, ntbl, chunks, first, oldPkg, oldGz)
	if !ok {
		return nil, nil, nil
	}
	start, zstart, size, zsize := pt.start, pt.zstart, pt.size, pt.zsize
	tail, ztail, offs, zoffs, resume := pt.tail, pt.ztail, pt.offs, pt.zoffs, pt.resume

	// Digests, resumed.
	states := make([][8][]byte, len(chunks)-first)
	var wg sync.WaitGroup
	var zerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ntbl.gz, zerr = sumsFrom(indexContent{data: ztail, base: zstart}, zsize, zstart, resume, zoffs, states, 4)
	}()
	ntbl.packages, err = sumsFrom(indexContent{data: tail, base: start}, size, start, resume, offs, states, 0)
	wg.Wait()
	if err == nil {
		err = zerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("index %s: %w", t, err)
	}
	for i, s := range states {
		ntbl.chunks[first+i].states = s
	}

	out, err := patchedFiles(d, t, names, spool, oldPkg, oldGz, pt, ntbl)
	if err != nil {
		return nil, nil, err
	}
	return out, ntbl, nil
}

// patchTail is the part of a patched index after its unchanged start: the
// uncompressed and gzip bytes, where they begin in their files, the files'
// sizes, the chunks' offsets, and the digest states to resume from (nil:
// from the start).
type patchTail struct {
	start, zstart, size, zsize int64
	tail, ztail                []byte
	offs, zoffs                []int64
	resume                     *[8][]byte
}

// assemblePatch builds the tail of a patched index in memory: chunks from
// first on, new ones copied and unchanged ones read from the published
// files (each run of them in one read); it fills in ntbl's chunk entries.
// ok is false when the published files do not read as the table says
// (the caller then rebuilds).
func assemblePatch(tbl, ntbl *chunkTable, chunks []patchChunk, first int, oldPkg, oldGz publishedFile) (pt *patchTail, ok bool) {
	// Where the unchanged part ends, and the states there.
	var start, zstart int64
	var crc uint32
	var resume *[8][]byte
	if first < len(tbl.chunks) {
		c := &tbl.chunks[first]
		start, zstart, crc, resume = c.off, c.zoff, c.crc, &c.states
	}
	size, zsize := start, zstart+gzTailLen
	if resume == nil {
		zsize += int64(len(gzHeader))
	}
	for _, c := range chunks[first:] {
		size += c.n + int64(len(c.raw))
		zsize += c.zn + int64(len(c.z))
	}

	// The rest, in memory: new chunks copied, unchanged ones read from
	// the published files (each run of them in one read).
	tail, ztail := make([]byte, size-start), make([]byte, zsize-zstart)
	offs, zoffs := make([]int64, len(chunks)-first), make([]int64, len(chunks)-first)
	at, zat := int64(0), int64(0)
	if resume == nil {
		zat = int64(copy(ztail, gzHeader))
	}
	var run, zrun span
	for i, c := range chunks[first:] {
		offs[i], zoffs[i] = start+at, zstart+zat
		ntbl.chunks[first+i] = chunkInfo{key: c.key, off: offs[i], zoff: zoffs[i], crc: crc}
		if c.raw != nil {
			crc = crc32.Update(crc, crc32.IEEETable, c.raw)
			at += int64(copy(tail[at:], c.raw))
			zat += int64(copy(ztail[zat:], c.z))
			continue
		}
		if run.add(oldPkg, tail, c.off, at, c.n) != nil || zrun.add(oldGz, ztail, c.zoff, zat, c.zn) != nil {
			return nil, false
		}
		if run.flush(oldPkg, tail) != nil {
			return nil, false
		}
		crc = crc32.Update(crc, crc32.IEEETable, tail[at:at+c.n])
		at, zat = at+c.n, zat+c.zn
	}
	if zrun.flush(oldGz, ztail) != nil {
		return nil, false
	}
	copy(ztail[zat:], gzTail(crc, size))

	return &patchTail{start: start, zstart: zstart, size: size, zsize: zsize, tail: tail, ztail: ztail, offs: offs, zoffs: zoffs, resume: resume}, true
}

// patchedFiles writes the patched Packages and Packages.gz to files of
// spool (the unchanged part copied, then the tail) and makes the target's
// other index files from them: Packages.xz anew, the per-architecture
// Release.
func patchedFiles(d *Distribution, t Target, names []indexName, spool *indexSpool, oldPkg, oldGz publishedFile, pt *patchTail, ntbl *chunkTable) ([]indexFile, error) {
	start, zstart, tail, ztail := pt.start, pt.zstart, pt.tail, pt.ztail
	// The files: the unchanged part copied, then the rest.
	pkgPath, err := writePatched(spool, oldPkg, start, tail)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", t, err)
	}
	gzPath, err := writePatched(spool, oldGz, zstart, ztail)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", t, err)
	}
	out := make([]indexFile, len(names))
	for i, n := range names {
		f := indexFile{rel: n.rel, written: n.written, byHash: true}
		switch {
		case i == 0:
			f.path, f.sums = pkgPath, ntbl.packages
		case i == 1:
			f.path, f.sums = gzPath, ntbl.gz
		case strings.HasSuffix(n.rel, ".xz"):
			pkg, err := os.ReadFile(pkgPath)
			if err != nil {
				return nil, fmt.Errorf("index %s: %w", t, err)
			}
			s := newPkgStream()
			s.expect(len(pkg))
			s.finish(pkg, nil)
			if f.data, err = xzStream(s); err != nil {
				return nil, fmt.Errorf("index %s: %w", t, err)
			}
			f.sums = sumBytes(f.data)
		default: // the per-architecture Release
			f.data, f.byHash = archRelease(d, t), false
			f.sums = sumBytes(f.data)
		}
		out[i] = f
	}
	return out, nil
}

// writePatched writes a patched index to a new file of spool: the first
// n bytes of old, then tail; it returns the file's name.
func writePatched(spool *indexSpool, old publishedFile, n int64, tail []byte) (string, error) {
	f, err := spool.file()
	if err != nil {
		return "", err
	}
	defer f.Close()
	if n > 0 {
		if _, err := old.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		// *os.File.ReadFrom copies file to file in the kernel.
		if k, err := f.ReadFrom(io.LimitReader(old, n)); err != nil || k != n {
			return "", fmt.Errorf("copy %d bytes of the published index: %d, %v", n, k, err)
		}
	}
	if _, err := f.Write(tail); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// span is a run of bytes to read from a published file into place.
type span struct{ src, dst, n int64 }

// add extends the run with n bytes from src to dst, reading the run so
// far first when they do not follow it.
func (s *span) add(r io.ReaderAt, buf []byte, src, dst, n int64) error {
	if s.n > 0 && s.src+s.n == src && s.dst+s.n == dst {
		s.n += n
		return nil
	}
	if err := s.flush(r, buf); err != nil {
		return err
	}
	*s = span{src, dst, n}
	return nil
}

// flush reads the run into place.
func (s *span) flush(r io.ReaderAt, buf []byte) error {
	if s.n == 0 {
		return nil
	}
	_, err := r.ReadAt(buf[s.dst:s.dst+s.n], s.src)
	*s = span{}
	return err
}

// tableFits checks that tbl fits the published Packages.gz: chunk
// offsets in order and in range, the gzip header and end ours and its
// size that of Packages.
func tableFits(tbl *chunkTable, gz io.ReaderAt) bool {
	size, zsize := tbl.packages.Size, tbl.gz.Size
	head, tail := make([]byte, len(gzHeader)), make([]byte, gzTailLen)
	if zsize < int64(len(head)+len(tail)) {
		return false
	}
	if _, err := gz.ReadAt(head, 0); err != nil || !bytes.Equal(head, gzHeader) {
		return false
	}
	if _, err := gz.ReadAt(tail, zsize-gzTailLen); err != nil || !bytes.Equal(tail[:2], deflateEnd) ||
		binary.LittleEndian.Uint32(tail[6:]) != uint32(size) {
		return false
	}
	off, zoff := int64(-1), int64(len(gzHeader)-1)
	for i, c := range tbl.chunks {
		if (i == 0 && (c.off != 0 || c.zoff != int64(len(gzHeader)))) || c.off <= off || c.zoff <= zoff {
			return false
		}
		for _, s := range c.states {
			if s == nil {
				return false
			}
		}
		off, zoff = c.off, c.zoff
	}
	if len(tbl.chunks) == 0 {
		return size == 0
	}
	return off < size && zoff < zsize-gzTailLen
}

// patchChunks lists the chunks of the patched index: the old ones that
// hold no changed key (where they are in the published files), and the
// stanzas of the others read anew from b and cut into chunks (to
// compress). first is the index of the first new chunk (len(chunks)
// when none is new: the changed ones all went).
func patchChunks(b *bolt.Bucket, tbl *chunkTable, keys [][]byte, every int) (chunks []patchChunk, first int) {
	n := len(tbl.chunks)
	// A changed key lies in the chunk whose range holds it; when it was
	// the key that started a chunk, that start may be gone, and the
	// chunk before it runs on: both are read anew.
	marked := make([]bool, max(n, 1))
	for _, k := range keys {
		j := sort.Search(n, func(i int) bool { return bytes.Compare(tbl.chunks[i].key, k) > 0 }) - 1
		j = max(j, 0)
		marked[j] = true
		if j > 0 && bytes.Equal(tbl.chunks[j].key, k) {
			marked[j-1] = true
		}
	}
	end := func(i int) (int64, int64) {
		if i+1 < n {
			return tbl.chunks[i+1].off, tbl.chunks[i+1].zoff
		}
		return tbl.packages.Size, tbl.gz.Size - gzTailLen
	}
	first = -1
	for i := 0; i < max(n, 1); i++ {
		if !marked[i] {
			e, ze := end(i)
			c := tbl.chunks[i]
			chunks = append(chunks, patchChunk{key: c.key, off: c.off, n: e - c.off, zoff: c.zoff, zn: ze - c.zoff})
			continue
		}
		a := i
		for i+1 < n && marked[i+1] {
			i++
		}
		if first < 0 {
			first = len(chunks)
		}
		chunks = append(chunks, readChunks(b, tbl, a, i, every)...)
	}
	if first < 0 {
		first = len(chunks)
	}
	return chunks, first
}

// readChunks reads the stanzas of old chunks a to z (inclusive) anew
// from b — from the first key of a (the start of the list for 0) to
// that of z+1 (the end for the last) — and cuts them into chunks.
func readChunks(b *bolt.Bucket, tbl *chunkTable, a, z, every int) []patchChunk {
	c := b.Cursor()
	var k, v []byte
	if a == 0 {
		k, v = c.First()
	} else {
		k, v = c.Seek(tbl.chunks[a].key)
	}
	var end []byte
	if z+1 < len(tbl.chunks) {
		end = tbl.chunks[z+1].key
	}
	var out []patchChunk
	for ; k != nil && (end == nil || bytes.Compare(k, end) < 0); k, v = c.Next() {
		if len(out) == 0 || chunkStart(k, every) {
			out = append(out, patchChunk{key: bytes.Clone(k)})
		}
		cur := &out[len(out)-1]
		cur.raw = append(cur.raw, pkgStanza(v)...)
		cur.raw = append(cur.raw, '\n')
	}
	return out
}

// compressChunks compresses the new chunks (those with content) on every
// core.
func compressChunks(chunks []patchChunk) error {
	jobs := make(chan *patchChunk)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dfl, err := newChunkDeflater()
			for c := range jobs {
				var buf bytes.Buffer
				if err == nil {
					err = dfl.deflate(&buf, c.raw)
				}
				c.z = buf.Bytes()
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range chunks {
		if chunks[i].raw != nil && chunks[i].z == nil {
			jobs <- &chunks[i]
		}
	}
	close(jobs)
	wg.Wait()
	return firstErr
}
