package deb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

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

// step checks the next structural element and queues its bytes.
func (g *zstdGuard) step() error {
	switch g.state {
	case zsgFrame:
		return g.frameHeader()
	case zsgBlock:
		return g.blockHeader()
	case zsgChecksum:
		if _, err := g.take(4); err != nil {
			return err
		}
		g.state = zsgFrame
	}
	return nil
}

// frameHeader checks a frame's magic and header, refuses a declared content
// size over the limit and lowers a window larger than the limit needs; a
// skippable frame passes through.
func (g *zstdGuard) frameHeader() error {
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
	g.check = fhd&0x04 != 0
	// Window_Descriptor (unless single segment), Dictionary_ID,
	// Frame_Content_Size, in this order.
	wdLen, dictLen, fcsLen := 1, [4]int{0, 1, 2, 4}[fhd&3], [4]int{0, 2, 4, 8}[fhd>>6]
	if fhd&0x20 != 0 { // single segment
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
		if size := zstdContentSize(h[len(h)-fcsLen:]); size > uint64(g.limit) {
			return fmt.Errorf("%w: a frame declares %d bytes; the limit is %s", ErrTooLarge, size, limitString(g.limit))
		}
	}
	if wdLen == 1 && zstdWindow(h[0]) > g.limit+zstdMaxBlock {
		h[0] = zstdWindowFor(g.limit + zstdMaxBlock)
	}
	g.state = zsgBlock
	return nil
}

// zstdContentSize decodes a Frame_Content_Size field (little endian; the
// two-byte form counts from 256).
func zstdContentSize(f []byte) uint64 {
	var size uint64
	for i := len(f) - 1; i >= 0; i-- {
		size = size<<8 | uint64(f[i])
	}
	if len(f) == 2 {
		size += 256
	}
	return size
}

// blockHeader checks a block header and lets the block's bytes pass; the
// last block ends the frame (with its checksum, when it has one).
func (g *zstdGuard) blockHeader() error {
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
	return nil
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
