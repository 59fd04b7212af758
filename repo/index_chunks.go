package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/fnv"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// A Packages index is cut into chunks at stanzas chosen by their package
// key alone (chunkStart), so that the cut points do not move when a
// package elsewhere is added or removed. Packages.gz compresses each chunk
// on its own (a raw deflate stream ended by a sync flush, history reset):
// the compressed chunks of unchanged stanzas stay byte for byte the same,
// and an export that changes a few packages (index_patch.go) recompresses
// only their chunks and rehashes only from the first changed one (the
// digests' states at each chunk start are kept in a chunkTable). A full
// export writes the same bytes, so patched and rebuilt indices are equal.

// chunkEvery is the default of Repo.chunkEvery: a stanza starts a chunk
// when the FNV-1a hash of its key is a multiple of it (about 128 stanzas, 80 KB of a typical index, per
// chunk; compressing chunks on their own costs well under 1% in size).
const chunkEvery = 128

// chunkStart tells whether the stanza of key starts a chunk, one in
// every on average (the first stanza of an index always does).
func chunkStart(key []byte, every int) bool {
	h := fnv.New32a()
	h.Write(key)
	return h.Sum32()%uint32(max(every, 1)) == 0
}

// gzHeader is the gzip header of every index: no name, no time, OS
// unknown.
var gzHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// deflateEnd is an empty final deflate block (fixed Huffman codes).
var deflateEnd = []byte{0x03, 0x00}

// gzTail ends a chunked gzip stream of content whose CRC-32 and size are
// given.
func gzTail(crc uint32, size int64) []byte {
	b := append([]byte(nil), deflateEnd...)
	b = binary.LittleEndian.AppendUint32(b, crc)
	return binary.LittleEndian.AppendUint32(b, uint32(size))
}

// gzTailLen is the length of gzTail's result.
const gzTailLen = 2 + 8

// chunkDeflater compresses chunks on their own. klauspost's fastest
// level compresses Packages files about as well as zlib's default,
// several times faster.
type chunkDeflater struct {
	zw *flate.Writer
}

func newChunkDeflater() (*chunkDeflater, error) {
	zw, err := flate.NewWriter(io.Discard, flate.BestSpeed)
	return &chunkDeflater{zw: zw}, err
}

// deflate appends the compressed form of chunk p to dst: raw deflate
// with a fresh history, ended by a sync flush (byte aligned, not final).
func (c *chunkDeflater) deflate(dst *bytes.Buffer, p []byte) error {
	c.zw.Reset(dst)
	if _, err := c.zw.Write(p); err != nil {
		return err
	}
	return c.zw.Flush()
}

// chunkGzip writes a chunked Packages.gz as the content arrives in
// Writes (pkgStream.copyTo), cutting where marks says chunks start.
type chunkGzip struct {
	out   *bytes.Buffer
	dfl   *chunkDeflater
	marks func(i int) (int, bool) // the i-th chunk start, if known
	next  int                     // the index of the next chunk start
	off   int                     // content bytes written
	chunk []byte                  // the current chunk's bytes
	crc   uint32
	// zoffs are the offsets in out where the chunks' compressed forms
	// start, crcs the CRC-32 of the content before each chunk.
	zoffs []int64
	crcs  []uint32
}

func (g *chunkGzip) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		m, ok := g.marks(g.next)
		if !ok || m >= g.off+len(p) {
			g.chunk = append(g.chunk, p...)
			g.off += len(p)
			break
		}
		if m > g.off {
			g.chunk = append(g.chunk, p[:m-g.off]...)
			p = p[m-g.off:]
			g.off = m
		}
		if err := g.flush(); err != nil {
			return 0, err
		}
		g.next++
	}
	return n, nil
}

// flush compresses the current chunk, if it holds anything.
func (g *chunkGzip) flush() error {
	if len(g.chunk) == 0 {
		return nil
	}
	g.zoffs = append(g.zoffs, int64(g.out.Len()))
	g.crcs = append(g.crcs, g.crc)
	g.crc = crc32.Update(g.crc, crc32.IEEETable, g.chunk)
	err := g.dfl.deflate(g.out, g.chunk)
	g.chunk = g.chunk[:0]
	return err
}

// close compresses the last chunk and ends the stream.
func (g *chunkGzip) close() error {
	if err := g.flush(); err != nil {
		return err
	}
	g.out.Write(gzTail(g.crc, int64(g.off)))
	return nil
}

// chunkTable describes a target's published Packages and Packages.gz as
// chunks, for the next export to patch them: kept in
// DBDIR/indices/<codename>_<component>_<arch> (no fsync: it is checked
// against the published checksums and the package list's generation
// before use, and a missing or stale table only means a full rebuild).
type chunkTable struct {
	// gen is the generation of the package list the index was made
	// from (the target bucket's sequence, advanced by every export).
	gen uint64
	// packages and gz are the checksums of the files described.
	packages, gz Checksums
	chunks       []chunkInfo
}

// chunkInfo is one chunk: its first stanza's key, where it starts in
// Packages and in Packages.gz, the CRC-32 of Packages before it, and the digests' states of both files at
// those points (MD5, SHA1, SHA256, SHA512 of Packages, then of
// Packages.gz).
type chunkInfo struct {
	key       []byte
	off, zoff int64
	crc       uint32 // the CRC-32 of Packages up to off
	states    [8][]byte
}

// chunkTableMagic starts an encoded chunkTable.
const chunkTableMagic = "lampi-pkg chunk table 2\n"

// encode writes the table, followed by the SHA-256 of what precedes it.
func (t *chunkTable) encode() []byte {
	b := []byte(chunkTableMagic)
	b = binary.AppendUvarint(b, t.gen)
	for _, c := range []Checksums{t.packages, t.gz} {
		e := c.encode()
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	b = binary.AppendUvarint(b, uint64(len(t.chunks)))
	for _, c := range t.chunks {
		b = binary.AppendUvarint(b, uint64(len(c.key)))
		b = append(b, c.key...)
		b = binary.AppendUvarint(b, uint64(c.off))
		b = binary.AppendUvarint(b, uint64(c.zoff))
		b = binary.AppendUvarint(b, uint64(c.crc))
		for _, s := range c.states {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// errBadTable is what decodeChunkTable returns for anything but a whole,
// well-formed table.
var errBadTable = errors.New("malformed chunk table")

func decodeChunkTable(b []byte) (*chunkTable, error) {
	if len(b) < len(chunkTableMagic)+sha256.Size || string(b[:len(chunkTableMagic)]) != chunkTableMagic {
		return nil, errBadTable
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return nil, errBadTable
	}
	r := tableReader{b: body[len(chunkTableMagic):]}
	t := &chunkTable{gen: r.uvarint()}
	for _, c := range []*Checksums{&t.packages, &t.gz} {
		var err error
		if *c, err = decodeChecksums(r.bytes()); err != nil {
			return nil, errBadTable
		}
	}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return nil, errBadTable
	}
	t.chunks = make([]chunkInfo, n)
	for i := range t.chunks {
		c := &t.chunks[i]
		c.key = r.bytes()
		c.off, c.zoff = int64(r.uvarint()), int64(r.uvarint())
		c.crc = uint32(r.uvarint())
		for j := range c.states {
			c.states[j] = r.bytes()
		}
	}
	if r.bad || len(r.b) != 0 {
		return nil, errBadTable
	}
	return t, nil
}

// tableReader reads the fields of an encoded chunkTable.
type tableReader struct {
	b   []byte
	bad bool
}

func (r *tableReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *tableReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// indexContent is an index's content: in memory (data, from offset
// base on), or in a (spool) file.
type indexContent struct {
	data []byte
	base int64
	file io.ReaderAt
}

// feed writes bytes from to to of the content to h (through buf for a
// file).
func (c indexContent) feed(h hash.Hash, from, to int64, buf []byte) error {
	if to <= from {
		return nil
	}
	if c.data != nil {
		h.Write(c.data[from-c.base : to-c.base])
		return nil
	}
	_, err := io.CopyBuffer(h, io.NewSectionReader(c.file, from, to-from), buf)
	return err
}

// sumsFrom computes the checksums of the size bytes of src. With resume
// set it hashes from offset start on, the digests' states there taken
// from resume (slots base to base+3); otherwise from the start. It
// records the states at each offs[i] (all at least start) into states[i]
// (same slots). The four digests run concurrently.
func sumsFrom(src indexContent, size, start int64, resume *[8][]byte, offs []int64, states [][8][]byte, base int) (Checksums, error) {
	ds := newDigests()
	out := make([]string, len(ds))
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for d, h := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[d] = func() error {
				var buf []byte
				if src.data == nil {
					buf = make([]byte, spoolRead)
				}
				at := int64(0)
				if resume != nil {
					if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(resume[base+d]); err != nil {
						return err
					}
					at = start
				}
				for i, off := range offs {
					if err := src.feed(h, at, off, buf); err != nil {
						return err
					}
					at = off
					s, err := h.(encoding.BinaryMarshaler).MarshalBinary()
					if err != nil {
						return err
					}
					states[i][base+d] = s
				}
				if err := src.feed(h, at, size, buf); err != nil {
					return err
				}
				out[d] = hex.EncodeToString(h.Sum(nil))
				return nil
			}()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Checksums{}, fmt.Errorf("hash index: %w", err)
	}
	return Checksums{Size: size, MD5: out[0], SHA1: out[1], SHA256: out[2], SHA512: out[3]}, nil
}
