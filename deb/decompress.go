package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Decompression limits. A hostile archive must not make the reader
// allocate without bound: compressors that declare their window or
// dictionary size up front are refused beyond these sizes (xz -9 uses
// 64 MiB, zstd -19 8 MiB, zstd --long=27 128 MiB).
const (
	maxXZDict     = 128 << 20
	maxZstdWindow = 128 << 20
)

// compressionOfMember returns the compression of a control.tar* or
// data.tar* member from its name's suffix.
func compressionOfMember(name string) (Compression, error) {
	i := strings.Index(name, ".tar")
	ext := name[i+len(".tar"):]
	switch ext {
	case "":
		return CompressNone, nil
	case ".gz":
		return CompressGzip, nil
	case ".xz":
		return CompressXZ, nil
	case ".zst":
		return CompressZstd, nil
	case ".bz2":
		return "", fmt.Errorf("member %s: %w: bzip2; only xz, gzip, zstd and none are read", name, ErrCompression)
	case ".lzma":
		return "", fmt.Errorf("member %s: %w: lzma; only xz, gzip, zstd and none are read", name, ErrCompression)
	}
	return "", fmt.Errorf("member %s: %w: unknown suffix %q; expected .xz, .gz, .zst or none", name, ErrCompression, ext)
}

// newDecompressor returns a reader of the decompressed content of r.
// Close releases the decoder; it does not close r.
func newDecompressor(r io.Reader, c Compression) (io.ReadCloser, error) {
	return newSizedDecompressor(r, c, -1, nil)
}

// newSizedDecompressor is newDecompressor with what is known of the
// compressed data up front: its size (-1 if unknown) and, for xz, the
// uncompressed size of each block as the stream's index declares it
// (nil if unknown; see xzBlockSizes). They only bound allocations.
func newSizedDecompressor(r io.Reader, c Compression, size int64, xzBlocks []int64) (io.ReadCloser, error) {
	return newBoundedDecompressor(r, c, size, xzBlocks, -1)
}

// newBoundedDecompressor is newSizedDecompressor for output that is cut
// at limit bytes (-1: no limit): the decoder's window never exceeds what
// the first limit bytes can refer to, so that its memory is bounded by
// the limit, not by what the data declares; data that declares more
// output than the limit is refused up front (ErrTooLarge).
func newBoundedDecompressor(r io.Reader, c Compression, size int64, xzBlocks []int64, limit int64) (io.ReadCloser, error) {
	switch c {
	case CompressNone:
		return io.NopCloser(r), nil
	case CompressGzip:
		z, err := kgzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", decodeErr(err))
		}
		return z, nil
	case CompressXZ:
		g := newXZGuard(r, size)
		g.blocks, g.limit = xzBlocks, limit
		z, err := xz.NewReader(g)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", decodeErr(err))
		}
		return io.NopCloser(z), nil
	case CompressZstd:
		if limit >= 0 {
			r = newZstdGuard(r, limit)
		}
		z, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", decodeErr(err))
		}
		return z.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrCompression, c)
}

// decodeErr maps a decoder's error: a truncation reported by our own
// readers is kept, an early end of input becomes ErrTruncated, anything
// else is corrupt data.
func decodeErr(err error) error {
	switch {
	case errors.Is(err, ErrTruncated), errors.Is(err, ErrTooLarge), errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: compressed data ends early", ErrTruncated)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// decodedReader reads decompressed data, mapping decoder errors with
// decodeErr and refusing to deliver more than limit bytes (when limit ≥ 0).
type decodedReader struct {
	r     io.Reader
	c     Compression
	limit int64
	n     int64
}

func (d *decodedReader) Read(p []byte) (int, error) {
	if d.limit >= 0 && d.n >= d.limit {
		// Find out whether there is more before calling it a bomb.
		var one [1]byte
		if k, err := d.r.Read(one[:]); k > 0 {
			return 0, fmt.Errorf("%w: it decompresses to more than %d bytes", ErrTooLarge, d.limit)
		} else if err != nil {
			return 0, d.mapErr(err)
		}
		return 0, nil
	}
	if d.limit >= 0 && int64(len(p)) > d.limit-d.n {
		p = p[:d.limit-d.n]
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	return n, d.mapErr(err)
}

func (d *decodedReader) mapErr(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if d.c == CompressNone {
		return err
	}
	return fmt.Errorf("%s: %w", d.c, decodeErr(err))
}

// xzGuard passes an xz stream through while following its framing
// (stream header, block headers, LZMA2 chunk headers, index, footer), so
// that a block header declaring a dictionary larger than maxXZDict is
// refused before the xz decoder sees it and allocates the dictionary.
// Structural errors stop the stream early; the decoder then reports them.
//
// With a limit on the output (≥ 0), a block declaring more is refused,
// no dictionary is larger than the limit (the first limit bytes of output
// never refer further back) and neither are all the blocks' dictionaries
// together (the sizes of honest blocks add up to the output).
//
// It also bounds the dictionary by the data: the decoder allocates (and
// clears) the whole declared dictionary, 8 MiB for xz -6, even for a block
// of a few hundred bytes. LZMA2 never refers further back than the start
// of the block, so a dictionary as large as the block's uncompressed size
// decodes it exactly. When that size is known — from the block header's
// Uncompressed Size field, or from the index (blocks) — the guard lowers
// the declared dictionary to the smallest encodable size holding it and
// fixes the header's CRC32. A size that lies cannot change the output:
// a match reaching beyond the smaller dictionary is a decoding error, and
// the decoder checks the actual sizes against the header and the index.
type xzGuard struct {
	framing // off: the offset in the current stream
	state   xzGuardState
	check   int   // size of each block's check field
	records int64 // index records left
	blocks  []int64
	block   int   // blocks seen so far
	limit   int64 // the output is cut there (-1: no limit)
	dicts   int64 // dictionary bytes of the blocks so far (with a limit)
}

type xzGuardState int

const (
	xzgStreamHeader xzGuardState = iota
	xzgBlockOrIndex
	xzgChunk
	xzgBlockEnd
	xzgIndexRecords
	xzgIndexEnd
	xzgStreamPadding
)

var xzGuardMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

// newXZGuard reads r, whose size is size (-1 if unknown): a small member
// gets a small buffer.
func newXZGuard(r io.Reader, size int64) *xzGuard {
	n := 32 << 10
	if size >= 0 && size < int64(n) {
		n = max(int(size), 64)
	}
	g := &xzGuard{framing: framing{r: bufio.NewReaderSize(r, n)}}
	g.next = g.step
	return g
}

// framing is what the framing guards (xzGuard, zstdGuard) share: Read
// returns the bytes next has checked and queued with take, then the raw
// bytes next said to pass through unchecked (compressed data).
type framing struct {
	r       *bufio.Reader
	next    func() error // checks the next structural element
	pending []byte       // checked bytes not yet returned
	raw     int64        // bytes to pass through unchecked
	off     int64        // input bytes read (the guard may reset it)
	err     error
}

func (g *framing) Read(p []byte) (int, error) {
	for len(g.pending) == 0 && g.raw == 0 {
		if g.err != nil {
			return 0, g.err
		}
		g.pending = g.pending[:0]
		g.err = g.next()
		if g.err != nil && !errors.Is(g.err, io.EOF) {
			g.pending = nil // never hand out a half-checked structure
		}
	}
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	if int64(len(p)) > g.raw {
		p = p[:g.raw]
	}
	n, err := g.r.Read(p)
	g.raw -= int64(n)
	g.off += int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// take reads exactly n more bytes into pending and returns them.
func (g *framing) take(n int) ([]byte, error) {
	start := len(g.pending)
	g.pending = append(g.pending, make([]byte, n)...)
	k, err := io.ReadFull(g.r, g.pending[start:])
	g.off += int64(k)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return g.pending[start:], err
}

// varint reads one xz multibyte integer into pending.
func (g *xzGuard) varint() (uint64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		b, err := g.take(1)
		if err != nil {
			return 0, err
		}
		v |= uint64(b[0]&0x7f) << (7 * i)
		if b[0]&0x80 == 0 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: xz: malformed integer in the index", ErrCorrupt)
}

// step checks the next structural element and queues its bytes.
func (g *xzGuard) step() error {
	switch g.state {
	case xzgStreamHeader:
		h, err := g.take(12)
		if err != nil {
			return err
		}
		if !bytes.Equal(h[:6], xzGuardMagic) || h[6] != 0 || h[7]&0xf0 != 0 {
			return fmt.Errorf("%w: xz: bad stream header", ErrCorrupt)
		}
		g.check = xzGuardCheckSize(h[7] & 0x0f)
		g.state = xzgBlockOrIndex
	case xzgBlockOrIndex:
		b, err := g.take(1)
		if err != nil {
			return err
		}
		if b[0] == 0 {
			n, err := g.varint()
			if err != nil {
				return err
			}
			g.records, g.state = int64(min(n, 1<<62)), xzgIndexRecords
			return nil
		}
		h, err := g.take(int(b[0])*4 + 3)
		if err != nil {
			return err
		}
		props, size, err := checkXZGuardBlockHeader(h)
		if err != nil {
			return err
		}
		if g.block < len(g.blocks) && (size < 0 || g.blocks[g.block] < size) {
			size = g.blocks[g.block]
		}
		g.block++
		if g.limit >= 0 {
			if size > g.limit {
				return fmt.Errorf("%w: a block declares %d bytes; the limit is %s", ErrTooLarge, size, limitString(g.limit))
			}
			if size < 0 {
				size = g.limit
			}
		}
		if props >= 0 && size >= 0 {
			// The size byte and h are pending, in one piece.
			hdr := g.pending[len(g.pending)-len(h)-1:]
			shrinkXZDict(hdr, 1+props, size)
			if g.limit >= 0 {
				// The decoder allocates a dictionary per block: their sum
				// is bounded too, or many small streams would each cost a
				// whole dictionary.
				if d := xzDictSize(hdr[1+props]); d > g.limit-g.dicts {
					return fmt.Errorf("%w: the blocks ask for more than %s of dictionaries in all, the limit", ErrTooLarge, limitString(g.limit))
				} else {
					g.dicts += d
				}
			}
		}
		g.state = xzgChunk
	case xzgChunk:
		c, err := g.take(1)
		if err != nil {
			return err
		}
		switch ctl := c[0]; {
		case ctl == 0:
			g.state = xzgBlockEnd
		case ctl == 1 || ctl == 2:
			s, err := g.take(2)
			if err != nil {
				return err
			}
			g.raw = int64(s[0])<<8 | int64(s[1]) + 1
		case ctl >= 0x80:
			n := 4
			if ctl >= 0xc0 {
				n = 5
			}
			s, err := g.take(n)
			if err != nil {
				return err
			}
			g.raw = int64(s[2])<<8 | int64(s[3]) + 1
		default:
			return fmt.Errorf("%w: xz: invalid LZMA2 chunk", ErrCorrupt)
		}
	case xzgBlockEnd:
		if _, err := g.take(int(-g.off&3) + g.check); err != nil {
			return err
		}
		g.state = xzgBlockOrIndex
	case xzgIndexRecords:
		if g.records == 0 {
			g.state = xzgIndexEnd
			return nil
		}
		g.records--
		if _, err := g.varint(); err != nil {
			return err
		}
		_, err := g.varint()
		return err
	case xzgIndexEnd:
		// Index padding and CRC32, then the 12-byte stream footer.
		if _, err := g.take(int(-g.off&3) + 4 + 12); err != nil {
			return err
		}
		g.state = xzgStreamPadding
	case xzgStreamPadding:
		b, err := g.r.Peek(4)
		if len(b) == 0 && err == io.EOF {
			return io.EOF
		}
		if len(b) == 4 && bytes.Equal(b, []byte{0, 0, 0, 0}) {
			_, err := g.take(4)
			return err
		}
		if len(b) == 4 && bytes.Equal(b, xzGuardMagic[:4]) {
			g.off, g.state = 0, xzgStreamHeader
			return nil
		}
		return fmt.Errorf("%w: xz: unexpected data after the end of the stream", ErrCorrupt)
	}
	return nil
}

// checkXZGuardBlockHeader checks a block header (without its size byte) and
// refuses LZMA2 dictionaries larger than maxXZDict. It returns the offset
// in h of the LZMA2 properties byte (-1 without LZMA2) and the declared
// uncompressed size (-1 when absent).
func checkXZGuardBlockHeader(h []byte) (props int, size int64, err error) {
	bad := fmt.Errorf("%w: xz: malformed block header", ErrCorrupt)
	if len(h) < 5 {
		return 0, 0, bad
	}
	body := h[:len(h)-4] // without the CRC32
	flags := body[0]
	pos := 1
	readVarint := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && pos < len(body); i++ {
			b := body[pos]
			pos++
			v |= uint64(b&0x7f) << (7 * i)
			if b&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	if flags&0x40 != 0 {
		if _, ok := readVarint(); !ok {
			return 0, 0, bad
		}
	}
	props, size = -1, -1
	if flags&0x80 != 0 {
		v, ok := readVarint()
		if !ok {
			return 0, 0, bad
		}
		if v < 1<<62 {
			size = int64(v)
		}
	}
	for i := 0; i <= int(flags&3); i++ {
		id, ok1 := readVarint()
		n, ok2 := readVarint()
		if !ok1 || !ok2 || n > uint64(len(body)-pos) {
			return 0, 0, bad
		}
		p := body[pos : pos+int(n)]
		if id == 0x21 { // LZMA2
			if len(p) != 1 || p[0] > 40 {
				return 0, 0, bad
			}
			dict := xzDictSize(p[0])
			if dict > maxXZDict {
				return 0, 0, fmt.Errorf("%w: xz: the data asks for a %d MiB dictionary; the limit is %d MiB", ErrTooLarge, dict>>20, maxXZDict>>20)
			}
			props = pos
		}
		pos += int(n)
	}
	return props, size, nil
}

// xzDictSize is the dictionary size an LZMA2 properties byte declares.
func xzDictSize(p byte) int64 { return int64(2|p&1) << (p/2 + 11) }

// shrinkXZDict lowers the LZMA2 dictionary declared by the properties byte
// at h[at] of the block header h (size byte included) to the smallest
// size, at least 4 KiB, that holds size bytes, and recomputes the header's
// CRC32. A dictionary that is already smaller stays.
func shrinkXZDict(h []byte, at int, size int64) {
	p := byte(0)
	for p < 40 && xzDictSize(p) < size {
		p++
	}
	if p >= h[at] {
		return
	}
	h[at] = p
	binary.LittleEndian.PutUint32(h[len(h)-4:], crc32.ChecksumIEEE(h[:len(h)-4]))
}

// xzBlockSizes reads the indexes of the xz streams in r (size bytes:
// one stream, or several concatenated with stream padding between and
// after them, as the format allows) and returns each block's uncompressed
// size in order, or nil when r is not such a sequence of well-formed
// streams (then nothing is known up front; the decoder reports what is
// wrong). Streams are found from the end, footer to index to header.
func xzBlockSizes(r io.ReaderAt, size int64) []int64 {
	const maxStreams = 1024
	var streams [][]int64
	for end := size; ; {
		if end = skipXZPadding(r, end); end <= 0 {
			return nil // too much padding, or padding first
		}
		blocks, start := xzStreamBlocks(r, end)
		if blocks == nil || len(streams) == maxStreams {
			return nil
		}
		streams = append(streams, blocks)
		if start == 0 {
			break
		}
		end = start
	}
	var out []int64
	for i := len(streams) - 1; i >= 0; i-- {
		out = append(out, streams[i]...)
	}
	return out
}

// skipXZPadding returns where the stream padding (zero bytes, in fours)
// ending at end starts, or -1 when there is more than 64 KiB of it.
func skipXZPadding(r io.ReaderAt, end int64) int64 {
	var b [4]byte
	for n := 0; end >= 4; n += 4 {
		if n > 64<<10 {
			return -1
		}
		if _, err := r.ReadAt(b[:], end-4); err != nil {
			return -1
		}
		if b != [4]byte{} {
			return end
		}
		end -= 4
	}
	return end
}

// xzStreamBlocks reads the index of the xz stream that ends at end in r
// and returns its blocks' uncompressed sizes (non-nil) and where the
// stream starts, or nil.
func xzStreamBlocks(r io.ReaderAt, end int64) ([]int64, int64) {
	const maxIndex = 1 << 20
	var footer [12]byte
	if end < 32 {
		return nil, 0
	}
	if _, err := r.ReadAt(footer[:], end-12); err != nil || footer[10] != 'Y' || footer[11] != 'Z' {
		return nil, 0
	}
	if crc32.ChecksumIEEE(footer[4:10]) != binary.LittleEndian.Uint32(footer[:4]) {
		return nil, 0
	}
	n := (int64(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
	if n > maxIndex || n > end-24 {
		return nil, 0
	}
	index := make([]byte, n)
	if _, err := r.ReadAt(index, end-12-n); err != nil {
		return nil, 0
	}
	body := index[:n-4]
	if index[0] != 0 || crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(index[n-4:]) {
		return nil, 0
	}
	pos := 1
	varint := func() (int64, bool) {
		v, k := binary.Uvarint(body[pos:])
		if k <= 0 || k > 9 || v >= 1<<62 {
			return 0, false
		}
		pos += k
		return int64(v), true
	}
	count, ok := varint()
	if !ok || count > int64(len(body)) {
		return nil, 0
	}
	out := make([]int64, 0, count)
	total := int64(12) // the stream header
	for range count {
		unpadded, ok1 := varint()
		uncompressed, ok2 := varint()
		if !ok1 || !ok2 || unpadded > end {
			return nil, 0
		}
		total += (unpadded + 3) &^ 3
		out = append(out, uncompressed)
	}
	start := end - 12 - n - total
	var magic [6]byte
	if start < 0 || total > end {
		return nil, 0
	}
	if _, err := r.ReadAt(magic[:], start); err != nil || !bytes.Equal(magic[:], xzGuardMagic) {
		return nil, 0
	}
	return out, start
}

// zstdGuard passes a zstd stream through while following its framing
// (frame headers, block headers, checksums, skippable frames) for output
// that is cut at limit bytes: a frame whose header declares more content
// than the limit is refused, and a window larger than the limit (plus
// one block, which the decoder works in) is lowered to it in the frame
// header. The decoder allocates the declared window up front — up to
// 128 MiB for a frame of a few bytes — while the first limit bytes of
// output can never refer further back than the limit, so the output is
// the same. Structural errors stop the stream; the decoder reports them.
type zstdGuard struct {
	framing
	limit int64
	state zstdGuardState
	check bool // the current frame ends with a checksum
}

type zstdGuardState int

const (
	zsgFrame zstdGuardState = iota
	zsgBlock
	zsgChecksum
)

// zstdMaxBlock is the largest block a zstd frame holds decompressed.
const zstdMaxBlock = 128 << 10

func newZstdGuard(r io.Reader, limit int64) *zstdGuard {
	g := &zstdGuard{framing: framing{r: bufio.NewReaderSize(r, 4<<10)}, limit: limit}
	g.next = g.step
	return g
}

func (g *zstdGuard) step() error {
	switch g.state {
	case zsgFrame:
		if _, err := g.r.Peek(1); err == io.EOF {
			return io.EOF
		}
		m, err := g.take(4)
		if err != nil {
			return err
		}
		magic := binary.LittleEndian.Uint32(m)
		if magic&0xfffffff0 == 0x184d2a50 { // skippable frame
			s, err := g.take(4)
			if err != nil {
				return err
			}
			g.raw = int64(binary.LittleEndian.Uint32(s))
			return nil
		}
		if magic != 0xfd2fb528 {
			return fmt.Errorf("%w: bad frame magic", ErrCorrupt)
		}
		d, err := g.take(1)
		if err != nil {
			return err
		}
		fhd := d[0]
		single := fhd&0x20 != 0
		g.check = fhd&0x04 != 0
		// Window_Descriptor (unless single segment), Dictionary_ID,
		// Frame_Content_Size, in this order.
		wdLen, dictLen, fcsLen := 1, [4]int{0, 1, 2, 4}[fhd&3], [4]int{0, 2, 4, 8}[fhd>>6]
		if single {
			wdLen = 0
			if fcsLen == 0 {
				fcsLen = 1
			}
		}
		h, err := g.take(wdLen + dictLen + fcsLen)
		if err != nil {
			return err
		}
		if fcsLen > 0 {
			var size uint64
			for i := len(h) - 1; i >= len(h)-fcsLen; i-- {
				size = size<<8 | uint64(h[i])
			}
			if fcsLen == 2 {
				size += 256
			}
			if size > uint64(g.limit) {
				return fmt.Errorf("%w: a frame declares %d bytes; the limit is %s", ErrTooLarge, size, limitString(g.limit))
			}
		}
		if wdLen == 1 && zstdWindow(h[0]) > g.limit+zstdMaxBlock {
			h[0] = zstdWindowFor(g.limit + zstdMaxBlock)
		}
		g.state = zsgBlock
	case zsgBlock:
		b, err := g.take(3)
		if err != nil {
			return err
		}
		hdr := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		switch (hdr >> 1) & 3 {
		case 0, 2: // raw, compressed
			g.raw = int64(hdr >> 3)
		case 1: // RLE: one byte
			g.raw = 1
		default:
			return fmt.Errorf("%w: reserved block type", ErrCorrupt)
		}
		if hdr&1 != 0 {
			g.state = zsgFrame
			if g.check {
				g.state = zsgChecksum
			}
		}
	case zsgChecksum:
		if _, err := g.take(4); err != nil {
			return err
		}
		g.state = zsgFrame
	}
	return nil
}

// limitString shows a size limit in messages: in MiB when it is whole.
func limitString(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// zstdWindow is the window size a zstd Window_Descriptor byte declares.
func zstdWindow(wd byte) int64 {
	base := int64(1) << (10 + wd>>3)
	return base + base/8*int64(wd&7)
}

// zstdWindowFor is the smallest Window_Descriptor declaring at least n
// bytes (n ≤ 128 MiB).
func zstdWindowFor(n int64) byte {
	wd := byte(0)
	for zstdWindow(wd) < n {
		wd++
	}
	return wd
}

// xzGuardCheckSize returns the size of the block check for an xz check ID.
func xzGuardCheckSize(id byte) int {
	if id == 0 {
		return 0
	}
	return 4 << ((id - 1) / 3)
}

// tarErr maps archive/tar's errors onto the package's sentinels.
func tarErr(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the tarball ends early", ErrTruncated)
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// tarNext is tr.Next, except that archive/tar's ErrInsecurePath (returned
// with GODEBUG=tarinsecurepath=0) is left to this package's own path
// checks, which name the entry.
func tarNext(tr *tar.Reader) (*tar.Header, error) {
	h, err := tr.Next()
	if h != nil && errors.Is(err, tar.ErrInsecurePath) {
		err = nil
	}
	return h, err
}
