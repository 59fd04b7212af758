package deb

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

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
		return g.streamHeader()
	case xzgBlockOrIndex:
		return g.blockOrIndex()
	case xzgChunk:
		return g.chunk()
	case xzgBlockEnd:
		// Block padding and the check field.
		if _, err := g.take(int(-g.off&3) + g.check); err != nil {
			return err
		}
		g.state = xzgBlockOrIndex
	case xzgIndexRecords:
		return g.indexRecord()
	case xzgIndexEnd:
		// Index padding and CRC32, then the 12-byte stream footer.
		if _, err := g.take(int(-g.off&3) + 4 + 12); err != nil {
			return err
		}
		g.state = xzgStreamPadding
	case xzgStreamPadding:
		return g.streamPadding()
	}
	return nil
}

// streamHeader checks the 12-byte stream header and notes the size of the
// blocks' check field.
func (g *xzGuard) streamHeader() error {
	h, err := g.take(12)
	if err != nil {
		return err
	}
	if !bytes.Equal(h[:6], xzGuardMagic) || h[6] != 0 || h[7]&0xf0 != 0 {
		return fmt.Errorf("%w: xz: bad stream header", ErrCorrupt)
	}
	g.check = xzGuardCheckSize(h[7] & 0x0f)
	g.state = xzgBlockOrIndex
	return nil
}

// blockOrIndex reads the byte that starts a block header (its size) or the
// index (0): a block header is checked, and its dictionary bounded, by
// blockHeader; the index's record count is read.
func (g *xzGuard) blockOrIndex() error {
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
	if err := g.blockHeader(h); err != nil {
		return err
	}
	g.state = xzgChunk
	return nil
}

// blockHeader checks the block header h (pending, after its size byte),
// refuses a block larger than the limit, and lowers its dictionary to the
// block's size (from the header, the index or the limit) — within the
// limit for all the blocks' dictionaries together.
func (g *xzGuard) blockHeader(h []byte) error {
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
	if props < 0 || size < 0 {
		return nil
	}
	// The size byte and h are pending, in one piece.
	hdr := g.pending[len(g.pending)-len(h)-1:]
	shrinkXZDict(hdr, 1+props, size)
	if g.limit < 0 {
		return nil
	}
	// The decoder allocates a dictionary per block: their sum is bounded
	// too, or many small streams would each cost a whole dictionary.
	d := xzDictSize(hdr[1+props])
	if d > g.limit-g.dicts {
		return fmt.Errorf("%w: the blocks ask for more than %s of dictionaries in all, the limit", ErrTooLarge, limitString(g.limit))
	}
	g.dicts += d
	return nil
}

// chunk checks one LZMA2 chunk header and lets its compressed bytes pass;
// the end marker (0) ends the block.
func (g *xzGuard) chunk() error {
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
	return nil
}

// indexRecord reads one index record (unpadded and uncompressed size), or
// moves on to the index's end after the last.
func (g *xzGuard) indexRecord() error {
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
}

// streamPadding reads stream padding (zeros, four at a time) after a
// stream's footer, until the end of the input or the next stream.
func (g *xzGuard) streamPadding() error {
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

// xzGuardCheckSize returns the size of the block check for an xz check ID.
func xzGuardCheckSize(id byte) int {
	if id == 0 {
		return 0
	}
	return 4 << ((id - 1) / 3)
}
