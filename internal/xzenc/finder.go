package xzenc

import (
	"math/bits"
	"sync"
)

// finder runs the match finder ahead of the parser, in windows of
// windowSize positions: the workers find the tree matches of their
// buckets while the producer goroutine finds the 2- and 3-byte ones; a
// window is handed to the parser when all are done. The parser reads
// matches of any position in the windows it holds.

const windowSize = 1 << 16

type window struct {
	start, end int
	ref        []uint32 // per position: offset in its worker's flat list
	count      []uint16 // per position: number of tree matches
	owner      []uint8  // per position: the worker that found them
	short      [][2]match
	flat       [][]match // per worker
}

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
}

func newFinder(buf []byte, o Options) *finder {
	f := &finder{
		bt: newBT4(buf, o.DictSize, o.NiceLen, o.Depth), buf: buf, workers: o.Workers,
		ready: make(chan *window, 2), free: make(chan *window, 4), stop: make(chan struct{}),
		merged: make([]match, 0, maxMatchLen),
	}
	n := max(min(windowSize, len(buf)), 1) // small inputs need small windows
	for i := 0; i < 4; i++ {
		f.free <- &window{
			ref: make([]uint32, n), count: make([]uint16, n),
			owner: make([]uint8, n), short: make([][2]match, n),
			flat: make([][]match, o.Workers),
		}
	}
	f.wg.Add(1)
	go f.produce()
	return f
}

// close stops the goroutines (the parser may stop early on an error).
func (f *finder) close() {
	close(f.stop)
	f.wg.Wait()
}

func (f *finder) produce() {
	defer f.wg.Done()
	defer close(f.ready)
	n := len(f.buf)
	type job struct {
		w    *window
		done chan struct{}
	}
	jobs := make([]chan job, f.workers)
	var wwg sync.WaitGroup
	for k := range jobs {
		jobs[k] = make(chan job)
		wwg.Add(1)
		go func(k int) {
			defer wwg.Done()
			for j := range jobs[k] {
				f.work(j.w, k)
				j.done <- struct{}{}
			}
		}(k)
	}
	defer func() {
		for _, ch := range jobs {
			close(ch)
		}
		wwg.Wait()
	}()
	var h2t [hash2Size]uint32
	h3t := make([]uint32, hash3Size)
	done := make(chan struct{}, f.workers)
	for start := 0; start < n; start += windowSize {
		var w *window
		select {
		case w = <-f.free:
		case <-f.stop:
			return
		}
		w.start, w.end = start, min(start+windowSize, n)
		for k := range jobs {
			jobs[k] <- job{w, done}
		}
		f.shorts(w, &h2t, h3t)
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

// shorts finds the 2- and 3-byte matches of the window's positions.
func (f *finder) shorts(w *window, h2t *[hash2Size]uint32, h3t []uint32) {
	buf, lim := f.buf, f.bt.limit
	for pos := w.start; pos < w.end; pos++ {
		s := &w.short[pos-w.start]
		*s = [2]match{}
		limit := min(len(buf)-pos, f.bt.nice)
		if limit < 4 {
			continue
		}
		h2, h3 := hash23(buf[pos:])
		cur := uint32(pos) + f.bt.offset
		d2, d3 := cur-h2t[h2], cur-h3t[h3]
		h2t[h2], h3t[h3] = cur, cur
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
			if l == f.bt.nice {
				l = matchLen(buf, pos-int(d2), pos, l, min(len(buf)-pos, maxMatchLen))
			}
			s[n-1].len = uint32(l)
		}
	}
}

// work inserts the window's positions of worker k's buckets.
func (f *finder) work(w *window, k int) {
	buf, bt := f.buf, f.bt
	flat := w.flat[k][:0]
	last := len(buf) - 4
	// Buckets go to workers by their top bits (no division per position).
	shift := uint(bits.Len32(bt.mask4))
	for pos := w.start; pos < w.end && pos <= last; pos++ {
		h := hash4(buf[pos:], bt.mask4)
		if int(uint64(h)*uint64(f.workers)>>shift) != k {
			continue
		}
		i := pos - w.start
		off := len(flat)
		flat = bt.insert(flat, pos, h)
		w.ref[i], w.count[i], w.owner[i] = uint32(off), uint16(len(flat)-off), uint8(k)
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
	if best < limit && pos <= len(f.buf)-4 {
		tree := w.flat[w.owner[i]][w.ref[i] : w.ref[i]+uint32(w.count[i])]
		for _, m := range tree {
			if int(m.len) > best {
				out = append(out, m)
			}
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
