package xzenc

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"

	"github.com/lampi-pkg/lampi-pkg/internal/hugemem"
)

// The match finder: for each position, the matches of increasing length
// (the nearest of each length) within the window. Matches of 2 and 3
// bytes come from hash tables of the last position of every 2- and 3-byte
// prefix; longer ones from binary trees (bt4): one tree per bucket of a
// 4-byte hash, holding that bucket's positions ordered by the bytes that
// follow them, re-rooted at every new position.
//
// Trees of different buckets share nothing, so the buckets are split
// between workers, each walking every position and inserting only those
// of its own buckets: the matches found are exactly those of one
// sequential finder, whatever the number of workers.

const (
	hash2Size = 1 << 10
	hash3Size = 1 << 16
)

var crcTable = crc32.MakeTable(crc32.IEEE)

type match struct {
	len, dist uint32 // dist is the distance minus one, as LZMA codes it
}

// bt4 holds the trees of every bucket; a worker touches only the entries
// of its own buckets (and of the positions in them).
type bt4 struct {
	buf    []byte
	limit  uint32 // window + 1: positions this far back or more are forgotten
	cyclic uint32 // slots of son; see newBT4
	depth  int    // tree nodes visited per position at most
	nice   int    // a match this long ends the search
	hash4  []uint32
	mask4  uint32
	son    []uint32
	offset uint32 // stored positions are pos+offset, so 0 means "empty"
	free   []func()
}

func newBT4(buf []byte, window, nice, depth int) *bt4 {
	w := max(min(window, len(buf)), 1)
	h := uint32(w - 1)
	h |= h >> 1
	h |= h >> 2
	h |= h >> 4
	h |= h >> 8
	h |= h >> 16
	h >>= 1
	h |= 0xFFFF
	if h > 1<<24 {
		h >>= 1
	}
	// A position's slot is reused windowSize positions after it has been
	// forgotten: a worker running ahead by up to a window never
	// overwrites a node another worker may still visit.
	cyclic := uint32(min(w+1+windowSize, len(buf)+1))
	// The tables (8 bytes a position of the window, and the heads) are
	// read at random: in 2 MB pages, a read misses the TLB and a first
	// write faults 512 times less often.
	hash4, freeHash := hugemem.Uint32s(int(h) + 1)
	son, freeSon := hugemem.Uint32s(2 * int(cyclic))
	return &bt4{
		buf: buf, limit: uint32(w + 1), cyclic: cyclic, depth: depth, nice: nice,
		hash4: hash4, mask4: h, son: son, offset: cyclic,
		free: []func(){freeHash, freeSon},
	}
}

// release frees the tables; f may not be used afterwards.
func (f *bt4) release() {
	for _, free := range f.free {
		free()
	}
	f.hash4, f.son, f.free = nil, nil, nil
}

//go:norace
func hash4(b []byte, mask uint32) uint32 {
	b = b[:4]
	t := crcTable[b[0]] ^ uint32(b[1]) ^ uint32(b[2])<<8
	return (t ^ crcTable[b[3]]<<5) & mask
}

//go:norace
func hash23(b []byte) (h2, h3 uint32) {
	b = b[:3]
	t := crcTable[b[0]] ^ uint32(b[1])
	return t & (hash2Size - 1), (t ^ uint32(b[2])<<8) & (hash3Size - 1)
}

// matchLen returns how many bytes at a and b agree, from n up to limit,
// comparing eight at a time.
//
//go:norace
func matchLen(buf []byte, a, b, n, limit int) int {
	x, y := buf[a:a+limit], buf[b:b+limit]
	for n+8 <= limit {
		if d := binary.LittleEndian.Uint64(x[n:]) ^ binary.LittleEndian.Uint64(y[n:]); d != 0 {
			return n + bits.TrailingZeros64(d)>>3
		}
		n += 8
	}
	for n < limit && x[n] == y[n] {
		n++
	}
	return n
}

// insert puts pos, whose 4-byte hash is h, at the root of its bucket's
// tree and appends to out the matches longer than 3 bytes found on the
// way, of increasing length; the longest, when it reaches nice, is
// extended up to maxMatchLen.
//
//go:norace
func (f *bt4) insert(out []match, pos int, h, next uint32) []match {
	limit := min(len(f.buf)-pos, f.nice)
	cur := uint32(pos) + f.offset
	f.hash4[h] = cur
	n := len(out)
	out = f.tree(out, pos, cur, next, limit)
	if len(out) > n && int(out[len(out)-1].len) == f.nice {
		l := &out[len(out)-1]
		l.len = uint32(matchLen(f.buf, pos-int(l.dist)-1, pos, int(l.len), min(len(f.buf)-pos, maxMatchLen)))
	}
	return out
}

// tree walks the binary tree from the node next, re-rooting it at pos,
// and appends every match longer than the last one found.
//
//go:norace
func (f *bt4) tree(out []match, pos int, cur, next uint32, limit int) []match {
	son, buf, cyclic, lim := f.son, f.buf, f.cyclic, f.limit
	cp := (cur - f.offset) % cyclic
	ptr0, ptr1 := 2*cp+1, 2*cp
	len0, len1 := 0, 0
	best := 3
	for depth := f.depth; ; depth-- {
		delta := cur - next
		if depth == 0 || delta >= lim {
			son[ptr0], son[ptr1] = 0, 0
			return out
		}
		var pair uint32
		if delta > cp {
			pair = 2 * (cp + cyclic - delta)
		} else {
			pair = 2 * (cp - delta)
		}
		pb := pos - int(delta)
		l := min(len0, len1)
		if buf[pb+l] == buf[pos+l] {
			l = matchLen(buf, pb, pos, l+1, limit)
			if l > best {
				best = l
				out = append(out, match{uint32(l), delta - 1})
			}
			if l == limit {
				son[ptr1], son[ptr0] = son[pair], son[pair+1]
				return out
			}
		}
		if buf[pb+l] < buf[pos+l] {
			son[ptr1] = next
			ptr1 = pair + 1
			next = son[ptr1]
			len1 = l
		} else {
			son[ptr0] = next
			ptr0 = pair
			next = son[ptr0]
			len0 = l
		}
	}
}
