// Package xzenc compresses into the .xz format with an LZMA2 encoder of
// its own, in pure Go: a binary-tree match finder (bt4) and optimal
// parsing as liblzma's "normal" mode does, so that its output is about as
// small as "xz -6"'s, where a greedy encoder is 15–25 % larger.
//
// # Basics
//
// Compress returns one xz stream holding one block (check CRC64). The
// match finder's trees are split by hash bucket between Options.Workers
// goroutines, which run ahead of the parser; the matches, and so the
// bytes written, are those of a single goroutine, whatever the number of
// workers. Positions inside a repeat of Options.LongLen bytes or more
// (16 at level 6) are left out of the trees (the parser seldom starts a
// match there): a third to three quarters of the positions of real
// packages, for 0.1–0.5 % of size.
// So are the positions of 4 KiB blocks whose byte counts are nearly even
// (compressed files in a tar: 13 % of sudo's), for a size change of
// ±0.3 %.
//
// # Caveats
//
// The input is held whole in memory, with 8 bytes of tree per byte of
// window (mapped in 2 MB pages on Linux, see internal/hugemem: the trees
// are read at random): callers cut large inputs into blocks (as "xz -T"
// does). Only
// lc=3, lp=0, pb=2 (xz's defaults) are written.
//
// The compute loops — the match finder's scan and tree insertion, the
// parser, the model's prices and the range coder — are marked
// //go:norace: under the race detector they would run 25–40 times slower
// (every test that builds an xz .deb with -race paid for it), and the race
// detector does not watch the memory they touch. What hands data between
// goroutines (the finder's windows and channels, Compress) stays
// instrumented, and TestWorkersDoNotChangeOutput checks that any number of
// workers writes the same bytes. A change to how the workers share the
// trees needs a run with the directives removed.
package xzenc

import (
	"encoding/binary"
	"hash/crc32"
	"hash/crc64"
)

// Options set the encoder. Zero fields take Preset(6)'s value.
type Options struct {
	// DictSize is the window: the farthest a match reaches back.
	DictSize int
	// NiceLen: a match this long is taken without looking further (xz's
	// nice_len, 8 to 273).
	NiceLen int
	// LongLen (8 to NiceLen): the positions inside a repeat this long
	// are left out of the match finder's trees (the repeat's
	// continuation is their match).
	LongLen int
	// Depth bounds the match finder's tree walk per position.
	Depth int
	// Workers finding matches (0 = 1); the output does not depend on it.
	Workers int
}

// Preset returns the options for an xz level 0–9: xz's dictionary sizes,
// and match-finder settings that keep the output within about 2.5 % of
// "xz -6" at level 6 (0.3–2.3 % on real packages) for much less work than
// xz's own (nice_len 64, depth 48): nice 24 and depth 16 visit 12–23 %
// fewer tree nodes and price 7–10 % fewer positions than nice 32 and
// depth 24, for 0.1–0.6 % of size; LongLen 16 (repeats of 16 bytes or more
// left out of the trees, was 24) visits another 15 % fewer nodes for
// −0.1 to +0.3 % of size.
func Preset(level int) Options {
	dicts := []int{256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20}
	nice := []int{8, 16, 16, 16, 16, 24, 24, 64, 64, 64}
	long := []int{8, 16, 16, 16, 16, 16, 16, 64, 64, 64}
	depth := []int{4, 8, 12, 16, 16, 16, 16, 48, 48, 48}
	level = max(0, min(level, 9))
	return Options{DictSize: dicts[level], NiceLen: nice[level], LongLen: long[level], Depth: depth[level]}
}

func (o Options) withDefaults() Options {
	d := Preset(6)
	if o.DictSize <= 0 {
		o.DictSize = d.DictSize
	}
	if o.NiceLen < 8 || o.NiceLen > maxMatchLen {
		o.NiceLen = d.NiceLen
	}
	if o.Depth <= 0 {
		o.Depth = d.Depth
	}
	if o.LongLen <= 0 {
		o.LongLen = d.LongLen
	}
	o.LongLen = max(8, min(o.LongLen, o.NiceLen))
	o.Workers = max(1, min(o.Workers, 64))
	return o
}

var crc64Table = crc64.MakeTable(crc64.ECMA)

// Compress returns the xz stream of data: one block, CRC64 check. The
// block declares a dictionary no larger than data, and its sizes.
func Compress(data []byte, o Options) []byte {
	o = o.withDefaults()
	out := StreamHeader()
	if len(data) == 0 {
		return append(out, IndexAndFooter(nil)...)
	}
	dict := min(o.DictSize, max(len(data), 4096))
	lz := encodeLZMA2(nil, data, o)
	lz = append(lz, 0) // end of LZMA2 data
	compressed := len(lz)
	bh := blockHeader(dict, uint64(compressed), uint64(len(data)))
	out = append(append(out, bh...), lz...)
	for len(lz)%4 != 0 {
		lz = append(lz, 0)
		out = append(out, 0)
	}
	out = binary.LittleEndian.AppendUint64(out, crc64.Checksum(data, crc64Table))
	unpadded := uint64(len(bh) + compressed + 8)
	return append(out, IndexAndFooter([][2]uint64{{unpadded, uint64(len(data))}})...)
}

var streamFlags = []byte{0x00, 0x04} // check: CRC64

// StreamHeader returns the header of an xz stream with CRC64 checks.
func StreamHeader() []byte {
	h := []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}
	h = append(h, streamFlags...)
	return binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(streamFlags))
}

// blockHeader: both sizes (decoders size their dictionary by them, and
// "xz -T" decodes in parallel), one filter: LZMA2 with the dictionary size.
func blockHeader(dict int, compressed, uncompressed uint64) []byte {
	h := []byte{0, 0xC0}
	h = binary.AppendUvarint(h, compressed)
	h = binary.AppendUvarint(h, uncompressed)
	h = append(h, 0x21, 0x01, dictByte(dict))
	for (len(h)+4)%4 != 0 {
		h = append(h, 0)
	}
	h[0] = byte((len(h)+4)/4 - 1)
	return binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(h))
}

// dictByte encodes the smallest dictionary size LZMA2 can declare that
// holds dict: 2^n or 3·2^(n-1) bytes.
func dictByte(dict int) byte {
	for b := 0; b < 40; b++ {
		if (2|b&1)<<(b/2+11) >= dict {
			return byte(b)
		}
	}
	return 40
}

// IndexAndFooter returns the end of an xz stream (CRC64 checks): the
// index of its blocks' (unpadded, uncompressed) sizes and the footer.
func IndexAndFooter(blocks [][2]uint64) []byte {
	idx := []byte{0x00}
	idx = binary.AppendUvarint(idx, uint64(len(blocks)))
	for _, b := range blocks {
		idx = binary.AppendUvarint(idx, b[0])
		idx = binary.AppendUvarint(idx, b[1])
	}
	for len(idx)%4 != 0 {
		idx = append(idx, 0)
	}
	idx = binary.LittleEndian.AppendUint32(idx, crc32.ChecksumIEEE(idx))
	foot := binary.LittleEndian.AppendUint32(nil, uint32(len(idx)/4-1))
	foot = append(foot, streamFlags...)
	foot = append(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(foot)), foot...)
	return append(append(idx, foot...), 'Y', 'Z')
}
