package xzenc

import (
	"math/bits"
	"sync"
)

// finder runs the match finder ahead of the parser, in windows of
// windowSize positions, as a pipeline: the producer goroutine scans a
// window alone (the 2- and 3-byte matches, and the long repeats: matches
// of Options.LongLen or more); then the workers find the tree matches of
// their buckets, while the producer scans the next window; then the
// window goes to the parser, which reads matches of any position in the
// windows it holds. The parser holds at most two windows (a parse looks
// less than a window ahead), so four windows keep every stage busy.
//
// Positions inside a long repeat are left out of the trees: the parser
// takes a match of nice length whole, and seldom chooses to start a match
// inside one of LongLen bytes or more (a third to three quarters of the
// positions of real packages are left out). Should it land there, it gets
// the repeat's continuation as its match. What is left out depends on the
// input only, never on the number of workers.

const windowSize = 1 << 16

type window struct {
	start, end int
	ref        []uint32 // per position: offset in its worker's flat list
	count      []uint16 // per position: number of tree matches
	owner      []uint8  // per position: the worker that found them
	short      [][2]match
	repeat     []uint32  // per position: distance of the long repeat there, 0 if none
	skip       []bool    // per position: inside a repeat, left out of the trees
	flat       [][]match // per worker
	// per worker: the positions of its buckets to insert (offsets in the
	// window) and their 4-byte hashes, hashed once by the scan
	todo [][]insertion
}

type insertion struct{ i, h uint32 }

type finder struct {
	bt      *bt4
	buf     []byte
	workers int
	ready   chan *window
	free    chan *window
	stop    chan struct{}
	held    []*window
	merged  []match
	wg      sync.WaitGroup
	// The producer's scan state, carried from window to window.
	h2t        [hash2Size]uint32
	h3t        []uint32
	repeatDist uint32 // distance of the last repeat found
	repeatEnd  int    // its end: positions before it are left out
	flatEnd    int    // end of the last incompressible block found
	shift      uint   // buckets go to workers by their top bits
	long       int    // a repeat this long leaves the positions inside it out of the trees
}

func newFinder(buf []byte, o Options) *finder {
	f := &finder{
		bt: newBT4(buf, o.DictSize, o.NiceLen, o.Depth), buf: buf, workers: o.Workers,
		ready: make(chan *window, 2), free: make(chan *window, 4), stop: make(chan struct{}),
		merged: make([]match, 0, maxMatchLen),
		h3t:    make([]uint32, hash3Size), long: o.LongLen,
	}
	// Buckets go to workers by their top bits (no division per position).
	f.shift = uint(bits.Len32(f.bt.mask4))
	n := max(min(windowSize, len(buf)), 1) // small inputs need small windows
	for i := 0; i < cap(f.free); i++ {
		w := &window{
			ref: make([]uint32, n), count: make([]uint16, n),
			owner: make([]uint8, n), short: make([][2]match, n),
			repeat: make([]uint32, n), skip: make([]bool, n),
			flat: make([][]match, o.Workers), todo: make([][]insertion, o.Workers),
		}
		// Room for two tree matches a position, so that the lists
		// seldom grow by copies.
		for k := range w.flat {
			w.flat[k] = make([]match, 0, 2*n/o.Workers+64)
			w.todo[k] = make([]insertion, 0, n/o.Workers+64)
		}
		f.free <- w
	}
	f.wg.Add(2) // produce and fill
	go f.produce()
	return f
}

// close stops the goroutines (the parser may stop early on an error).
func (f *finder) close() {
	close(f.stop)
	f.wg.Wait()
	f.bt.release()
}

func (f *finder) produce() {
	defer f.wg.Done()
	scanned := make(chan *window, 1)
	go f.fill(scanned)
	defer close(scanned)
	for start := 0; start < len(f.buf); start += windowSize {
		var w *window
		select {
		case w = <-f.free:
		case <-f.stop:
			return
		}
		w.start, w.end = start, min(start+windowSize, len(f.buf))
		f.scan(w)
		select {
		case scanned <- w:
		case <-f.stop:
			return
		}
	}
}

// fill has the workers insert each scanned window's positions, then
// hands the window to the parser.
func (f *finder) fill(scanned <-chan *window) {
	defer f.wg.Done()
	defer close(f.ready)
	jobs := make([]chan *window, f.workers)
	done := make(chan struct{}, f.workers)
	var wwg sync.WaitGroup
	for k := range jobs {
		jobs[k] = make(chan *window)
		wwg.Add(1)
		go func(k int) {
			defer wwg.Done()
			for w := range jobs[k] {
				f.work(w, k)
				done <- struct{}{}
			}
		}(k)
	}
	defer func() {
		for _, ch := range jobs {
			close(ch)
		}
		wwg.Wait()
	}()
	for w := range scanned {
		for k := range jobs {
			jobs[k] <- w
		}
		for range jobs {
			<-done
		}
		select {
		case f.ready <- w:
		case <-f.stop:
			return
		}
	}
}

// scan finds the 2- and 3-byte matches of the window's positions and its
// long repeats: a position where the repeat just left or the longest short
// match goes on for LongLen bytes or more starts a repeat, and the positions
// after it, up to its end, are left out of the trees.
//
//go:norace
func (f *finder) scan(w *window) {
	buf, lim, nice, mask4 := f.buf, f.bt.limit, f.bt.nice, f.bt.mask4
	h2t, h3t := &f.h2t, f.h3t
	for k := range w.todo {
		w.todo[k] = w.todo[k][:0]
	}
	for pos := w.start; pos < w.end; pos++ {
		if pos%flatBlock == 0 && incompressible(buf[pos:min(pos+flatBlock, len(buf))]) {
			f.flatEnd = pos + flatBlock
		}
		i := pos - w.start
		s := &w.short[i]
		*s = [2]match{}
		w.repeat[i], w.skip[i] = 0, false
		limit := min(len(buf)-pos, nice)
		if limit < 4 {
			continue
		}
		h2, h3 := hash23(buf[pos:])
		cur := uint32(pos) + f.bt.offset
		d2, d3 := cur-h2t[h2], cur-h3t[h3]
		h2t[h2], h3t[h3] = cur, cur
		if pos < f.repeatEnd {
			// Inside a repeat the parser seldom looks, and the
			// repeat's continuation is its match there.
			w.repeat[i], w.skip[i], w.count[i] = f.repeatDist, true, 0
			continue
		}
		n := 0
		if d2 < lim && buf[pos-int(d2)] == buf[pos] {
			s[0] = match{2, d2 - 1}
			n = 1
		}
		if d2 != d3 && d3 < lim && buf[pos-int(d3)] == buf[pos] {
			s[n] = match{3, d3 - 1}
			d2 = d3
			n++
		}
		if n > 0 {
			l := matchLen(buf, pos-int(d2), pos, int(s[n-1].len), limit)
			if l == nice {
				l = matchLen(buf, pos-int(d2), pos, l, min(len(buf)-pos, maxMatchLen))
			}
			s[n-1].len = uint32(l)
		}
		f.repeatAt(w, i, pos, limit, s[max(n-1, 0)])
		// Positions of incompressible blocks are left out of the trees:
		// what follows seldom matches them, and their own matches are
		// too short to pay. The short matches and repeats are kept (a
		// copy of a compressed file is still found).
		w.skip[i] = pos < f.flatEnd
		if !w.skip[i] {
			h := hash4(buf[pos:], mask4)
			k := int(uint64(h) * uint64(f.workers) >> f.shift)
			w.todo[k] = append(w.todo[k], insertion{uint32(i), h})
		}
	}
}

// flatBlock is the size of the blocks judged incompressible or not.
const flatBlock = 4096

// incompressible says whether b (a whole flatBlock) looks like random
// bytes (compressed or encrypted data): its byte counts are nearly even.
// The sum of the squared counts is about n²/256 + n for random bytes
// (69,632 for 4 KiB) and several times that for text or code; the line is
// drawn at n²/180. Integers only: the same answer on every machine.
//
//go:norace
func incompressible(b []byte) bool {
	if len(b) < flatBlock {
		return false
	}
	var counts [256]uint32
	for _, c := range b {
		counts[c]++
	}
	var sum uint64
	for _, c := range counts {
		sum += uint64(c) * uint64(c)
	}
	return 180*sum < uint64(len(b))*uint64(len(b))
}

// repeatAt looks for a repeat of LongLen bytes or more at pos, outside
// the last one found (limit bytes ahead are there, nice at most): the last
// one's distance and the longest short match are tried (a table of longer
// hashes found a few more, for a cache miss a position: no faster).
//
//go:norace
func (f *finder) repeatAt(w *window, i, pos, limit int, short match) {
	long := f.long
	if limit < long {
		return
	}
	limit = long
	found := func(d uint32, l int) {
		w.repeat[i], f.repeatDist, f.repeatEnd = d, d, pos+l
	}
	buf := f.buf
	if d := f.repeatDist; d != 0 && d < f.bt.limit {
		if l := matchLen(buf, pos-int(d), pos, 0, limit); l == limit {
			found(d, matchLen(buf, pos-int(d), pos, l, min(len(buf)-pos, maxMatchLen)))
			return
		}
	}
	if int(short.len) >= long {
		found(short.dist+1, int(short.len))
	}
}

// work inserts the positions of worker k's buckets the scan listed.
//
//go:norace
func (f *finder) work(w *window, k int) {
	bt := f.bt
	flat := w.flat[k][:0]
	todo := w.todo[k]
	// Each position's bucket head is read one insertion ahead, so that
	// its cache miss overlaps the tree walk of the position before.
	var head uint32
	if len(todo) > 0 {
		head = bt.hash4[todo[0].h]
	}
	for j, t := range todo {
		next := head
		if j+1 < len(todo) {
			head = bt.hash4[todo[j+1].h]
		}
		off := len(flat)
		flat = bt.insert(flat, w.start+int(t.i), t.h, next)
		if j+1 < len(todo) && todo[j+1].h == t.h {
			head = uint32(w.start+int(t.i)) + bt.offset
		}
		w.ref[t.i], w.count[t.i], w.owner[t.i] = uint32(off), uint16(len(flat)-off), uint8(k)
	}
	w.flat[k] = flat
}

// at returns the matches at pos, valid until the next call. pos may not
// go back before the start of the window of an earlier release point.
func (f *finder) at(pos int) []match {
	var w *window
	for _, h := range f.held {
		if pos >= h.start && pos < h.end {
			w = h
			break
		}
	}
	for w == nil {
		h, ok := <-f.ready
		if !ok {
			return nil
		}
		f.held = append(f.held, h)
		if pos >= h.start && pos < h.end {
			w = h
		}
	}
	i := pos - w.start
	out := f.merged[:0]
	for _, s := range w.short[i] {
		if s.len != 0 {
			out = append(out, s)
		}
	}
	best, limit := 3, min(len(f.buf)-pos, f.bt.nice)
	if len(out) > 0 {
		best = max(best, int(out[len(out)-1].len))
	}
	if best < limit && pos <= len(f.buf)-4 && !w.skip[i] {
		tree := w.flat[w.owner[i]][w.ref[i] : w.ref[i]+uint32(w.count[i])]
		for _, m := range tree {
			if int(m.len) > best {
				out = append(out, m)
				best = int(m.len)
			}
		}
	}
	if d := w.repeat[i]; d != 0 && best < limit {
		// The repeat's continuation, as the tree would give it: up to
		// nice, and then as far as it goes.
		l := matchLen(f.buf, pos-int(d), pos, 0, limit)
		if l == f.bt.nice {
			l = matchLen(f.buf, pos-int(d), pos, l, min(len(f.buf)-pos, maxMatchLen))
		}
		if l > best {
			out = append(out, match{uint32(l), d - 1})
		}
	}
	f.merged = out
	return out
}

// release gives back the windows that end at or before pos.
func (f *finder) release(pos int) {
	kept := f.held[:0]
	for _, h := range f.held {
		if h.end <= pos {
			f.free <- h
		} else {
			kept = append(kept, h)
		}
	}
	f.held = kept
}
