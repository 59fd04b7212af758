package xzenc

// The optimal parser: from the current position it prices every way of
// coding the next bytes (literal, short rep, the four rep distances,
// every match length at every match distance the finder reported) and
// keeps, for each reachable position, the cheapest path to it, until no
// path can improve (or a match of nice length shows up). The cheapest
// path to the end is then coded, symbol by symbol. This is what makes
// "xz -6" smaller than greedy or lazy matching.

const numOpts = 1 << 12

type opt struct {
	price uint32
	prev  uint32 // position (relative) the step comes from
	back  uint32 // literalMarker, rep index 0..3 (rep 0 of length 1: short rep), or dist+4
	state uint8
	reps  [4]uint32
}

type step struct{ back, len uint32 }

// parser holds the parse state of one encoder.
type parser struct {
	m    *model
	mf   *finder
	buf  []byte
	nice int
	opts [numOpts]opt
	path []step
}

func repLen(buf []byte, pos int, rep uint32, limit int) int {
	back := pos - int(rep) - 1
	if back < 0 || buf[back] != buf[pos] || limit < 2 || buf[back+1] != buf[pos+1] {
		return 0
	}
	return matchLen(buf, back, pos, 2, limit)
}

// parse returns the steps that code the bytes from pos on, cheapest first.
func (p *parser) parse(pos int) []step {
	buf, m := p.buf, p.m
	p.path = p.path[:0]
	p.mf.release(pos)
	matches := p.mf.at(pos)
	avail := len(buf) - pos
	if avail < 2 {
		return append(p.path, step{literalMarker, 1})
	}
	mainLen := 0
	if n := len(matches); n > 0 {
		mainLen = int(matches[n-1].len)
	}
	var repLens [4]int
	repMax := 0
	for i := 0; i < 4; i++ {
		repLens[i] = repLen(buf, pos, m.reps[i], min(avail, maxMatchLen))
		if repLens[i] > repLens[repMax] {
			repMax = i
		}
	}
	if repLens[repMax] >= p.nice {
		return append(p.path, step{uint32(repMax), uint32(repLens[repMax])})
	}
	if mainLen >= p.nice {
		return append(p.path, step{matches[len(matches)-1].dist + 4, uint32(mainLen)})
	}
	cur, prevByte := buf[pos], byte(0)
	if pos > 0 {
		prevByte = buf[pos-1]
	}
	matchByte := byte(0)
	if back := pos - int(m.reps[0]) - 1; back >= 0 {
		matchByte = buf[back]
	}
	if mainLen < 2 && cur != matchByte && repLens[repMax] < 2 {
		return append(p.path, step{literalMarker, 1})
	}

	o := &p.opts
	s := m.state
	ps := pos & pbMask
	o[0] = opt{state: s, reps: m.reps}
	o[1] = opt{price: price0(m.isMatch[s][ps]) + m.literalPrice(s, cur, prevByte, matchByte), back: literalMarker}
	matchPrice := price1(m.isMatch[s][ps])
	repMatchPrice := matchPrice + price1(m.isRep[s])
	if matchByte == cur && pos-int(m.reps[0])-1 >= 0 {
		if sr := repMatchPrice + m.shortRepPrice(s, ps); sr < o[1].price {
			o[1].price, o[1].back = sr, 0
		}
	}
	lenEnd := max(mainLen, repLens[repMax])
	if lenEnd < 2 {
		return append(p.path, step{o[1].back, 1})
	}
	for i := 2; i <= lenEnd; i++ {
		o[i] = opt{price: priceInf}
	}
	for i := uint32(0); i < 4; i++ {
		rl := repLens[i]
		if rl < 2 {
			continue
		}
		base := repMatchPrice + m.repPrice(i, s, ps)
		for l := rl; l >= 2; l-- {
			if c := base + m.repLen.price(uint32(l), ps); c < o[l].price {
				o[l] = opt{price: c, back: i}
			}
		}
	}
	normal := matchPrice + price0(m.isRep[s])
	l := 2
	if repLens[0] >= 2 {
		l = repLens[0] + 1
	}
	if l <= mainLen {
		i := 0
		for l > int(matches[i].len) {
			i++
		}
		for ; ; l++ {
			d := matches[i].dist
			if c := normal + m.matchLen.price(uint32(l), ps) + m.distPrice(d, uint32(l)); c < o[l].price {
				o[l] = opt{price: c, back: d + 4}
			}
			if l == int(matches[i].len) {
				i++
				if i == len(matches) {
					break
				}
			}
		}
	}

	c := 0
	for {
		c++
		if c >= lenEnd {
			break
		}
		at := pos + c
		newMatches := p.mf.at(at)
		newLen := 0
		if n := len(newMatches); n > 0 {
			newLen = int(newMatches[n-1].len)
		}
		if newLen >= p.nice {
			break
		}
		// The state and reps after the cheapest path to c.
		cur := &o[c]
		prev := &o[cur.prev]
		st, reps := prev.state, prev.reps
		switch b := cur.back; {
		case b == literalMarker:
			st = updateLiteral(st)
		case b == 0 && int(cur.prev) == c-1:
			st = updateShortRep(st) // rep 0 of one byte
		case b < 4:
			st = updateLongRep(st)
			d := reps[b]
			copy(reps[1:b+1], reps[:b])
			reps[0] = d
		default:
			st = updateMatch(st)
			reps = [4]uint32{b - 4, reps[0], reps[1], reps[2]}
		}
		cur.state, cur.reps = st, reps

		price := cur.price
		cb := buf[at]
		mb := byte(0)
		back0 := at - int(reps[0]) - 1
		if back0 >= 0 {
			mb = buf[back0]
		}
		ps := at & pbMask
		next := &o[c+1]
		if lit := price + price0(m.isMatch[st][ps]) + m.literalPrice(st, cb, buf[at-1], mb); lit < next.price {
			*next = opt{price: lit, prev: uint32(c), back: literalMarker}
		}
		matchPrice := price + price1(m.isMatch[st][ps])
		repMatchPrice := matchPrice + price1(m.isRep[st])
		if mb == cb && back0 >= 0 && !(next.prev == uint32(c) && next.back == 0) {
			if sr := repMatchPrice + m.shortRepPrice(st, ps); sr <= next.price {
				*next = opt{price: sr, prev: uint32(c), back: 0}
			}
		}
		availFull := min(len(buf)-at, numOpts-1-c)
		if availFull < 2 {
			continue
		}
		limit := min(availFull, p.nice)
		start := 2
		for i := uint32(0); i < 4; i++ {
			rl := repLen(buf, at, reps[i], limit)
			if rl < 2 {
				continue
			}
			for lenEnd < c+rl {
				lenEnd++
				o[lenEnd] = opt{price: priceInf}
			}
			base := repMatchPrice + m.repPrice(i, st, ps)
			for l := rl; l >= 2; l-- {
				if cl := base + m.repLen.price(uint32(l), ps); cl < o[c+l].price {
					o[c+l] = opt{price: cl, prev: uint32(c), back: i}
				}
			}
			if i == 0 {
				start = rl + 1
			}
		}
		if newLen > limit {
			n := 0
			for int(newMatches[n].len) < limit {
				n++
			}
			newMatches = newMatches[:n+1]
			newMatches[n].len = uint32(limit)
			newLen = limit
		}
		if newLen >= start {
			normal := matchPrice + price0(m.isRep[st])
			for lenEnd < c+newLen {
				lenEnd++
				o[lenEnd] = opt{price: priceInf}
			}
			i := 0
			for start > int(newMatches[i].len) {
				i++
			}
			for l := start; ; l++ {
				d := newMatches[i].dist
				if cl := normal + m.matchLen.price(uint32(l), ps) + m.distPrice(d, uint32(l)); cl < o[c+l].price {
					o[c+l] = opt{price: cl, prev: uint32(c), back: d + 4}
				}
				if l == int(newMatches[i].len) {
					i++
					if i == len(newMatches) {
						break
					}
				}
			}
		}
	}
	// Walk back from c and return the steps in order.
	for i := c; i > 0; {
		prev := int(o[i].prev)
		p.path = append(p.path, step{o[i].back, uint32(i - prev)})
		i = prev
	}
	for i, j := 0, len(p.path)-1; i < j; i, j = i+1, j-1 {
		p.path[i], p.path[j] = p.path[j], p.path[i]
	}
	return p.path
}
