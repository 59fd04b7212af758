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

//go:norace
func repLen(buf []byte, pos int, rep uint32, limit int) int {
	back := pos - int(rep) - 1
	if back < 0 || buf[back] != buf[pos] || limit < 2 || buf[back+1] != buf[pos+1] {
		return 0
	}
	return matchLen(buf, back, pos, 2, limit)
}

// parse returns the steps that code the bytes from pos on, in order: the
// obvious step when there is one, else the cheapest path found by pricing
// every step from pos (priceStart) and then from each position that path
// reaches (relax), read back from where the pricing stopped (backtrack).
//
//go:norace
func (p *parser) parse(pos int) []step {
	p.path = p.path[:0]
	p.mf.release(pos)
	matches := p.mf.at(pos)
	if len(p.buf)-pos < 2 {
		return append(p.path, step{literalMarker, 1})
	}
	repLens, repMax := p.repLens(pos)
	if s, ok := p.obvious(pos, matches, repLens, repMax); ok {
		return append(p.path, s)
	}
	lenEnd := p.priceStart(pos, matches, repLens, repMax)
	if lenEnd < 2 {
		return append(p.path, step{p.opts[1].back, 1})
	}
	return p.backtrack(p.relax(pos, lenEnd))
}

// longest is the length of the longest of matches (the finder reports them
// shortest first), 0 when there are none.
//
//go:norace
func longest(matches []match) int {
	if n := len(matches); n > 0 {
		return int(matches[n-1].len)
	}
	return 0
}

// repLens returns how many bytes from pos each of the four rep distances
// repeats, and the index of the longest.
//
//go:norace
func (p *parser) repLens(pos int) (lens [4]int, best int) {
	limit := min(len(p.buf)-pos, maxMatchLen)
	for i := 0; i < 4; i++ {
		lens[i] = repLen(p.buf, pos, p.m.reps[i], limit)
		if lens[i] > lens[best] {
			best = i
		}
	}
	return lens, best
}

// matchByte is the byte the rep 0 distance points at from pos (0 before the
// start of the buffer), the byte a literal is priced against.
//
//go:norace
func (p *parser) matchByte(pos int, rep0 uint32) (byte, bool) {
	if back := pos - int(rep0) - 1; back >= 0 {
		return p.buf[back], true
	}
	return 0, false
}

// obvious returns the step to take from pos without pricing: a rep or a
// match of nice length, or a literal when nothing of two bytes repeats.
//
//go:norace
func (p *parser) obvious(pos int, matches []match, repLens [4]int, repMax int) (step, bool) {
	if repLens[repMax] >= p.nice {
		return step{uint32(repMax), uint32(repLens[repMax])}, true
	}
	mainLen := longest(matches)
	if mainLen >= p.nice {
		return step{matches[len(matches)-1].dist + 4, uint32(mainLen)}, true
	}
	matchByte, _ := p.matchByte(pos, p.m.reps[0])
	if mainLen < 2 && p.buf[pos] != matchByte && repLens[repMax] < 2 {
		return step{literalMarker, 1}, true
	}
	return step{}, false
}

// priceStart prices every step from pos itself (position 0 of p.opts): the
// literal or short rep to position 1, each rep and each match to the
// positions it reaches. It returns the last position priced; below 2 only
// position 1 is.
//
//go:norace
func (p *parser) priceStart(pos int, matches []match, repLens [4]int, repMax int) int {
	buf, m, o := p.buf, p.m, &p.opts
	cur, prevByte := buf[pos], byte(0)
	if pos > 0 {
		prevByte = buf[pos-1]
	}
	matchByte, haveMatchByte := p.matchByte(pos, m.reps[0])
	s := m.state
	ps := pos & pbMask
	o[0] = opt{state: s, reps: m.reps}
	o[1] = opt{price: price0(m.isMatch[s][ps]) + m.literalPrice(s, cur, prevByte, matchByte), back: literalMarker}
	matchPrice := price1(m.isMatch[s][ps])
	repMatchPrice := matchPrice + price1(m.isRep[s])
	if matchByte == cur && haveMatchByte {
		if sr := repMatchPrice + m.shortRepPrice(s, ps); sr < o[1].price {
			o[1].price, o[1].back = sr, 0
		}
	}
	mainLen := longest(matches)
	lenEnd := max(mainLen, repLens[repMax])
	if lenEnd < 2 {
		return lenEnd
	}
	for i := 2; i <= lenEnd; i++ {
		o[i] = opt{price: priceInf}
	}
	for i := uint32(0); i < 4; i++ {
		if rl := repLens[i]; rl >= 2 {
			p.priceRep(0, rl, i, repMatchPrice+m.repPrice(i, s, ps), ps)
		}
	}
	start := 2
	if repLens[0] >= 2 {
		start = repLens[0] + 1
	}
	if start <= mainLen {
		p.priceMatches(0, start, matchPrice+price0(m.isRep[s]), ps, matches)
	}
	return lenEnd
}

// relax walks the positions priced so far, settles the state and reps of
// the cheapest path to each, and prices the steps from there, until it
// reaches lenEnd (which grows as steps reach further) or a match of nice
// length. It returns the position it stopped at.
//
//go:norace
func (p *parser) relax(pos, lenEnd int) int {
	c := 1
	for ; c < lenEnd; c++ {
		matches := p.mf.at(pos + c)
		if longest(matches) >= p.nice {
			break
		}
		p.settle(c)
		lenEnd = p.priceFrom(pos, c, lenEnd, matches)
	}
	return c
}

// settle sets the state and reps of position c from the step that reaches
// it most cheaply.
//
//go:norace
func (p *parser) settle(c int) {
	cur := &p.opts[c]
	prev := &p.opts[cur.prev]
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
}

// priceFrom prices every step from position c (relative to pos), whose
// state and reps settle has set: a literal or short rep to c+1, each rep and
// each match, cut to the nice length and to the room left in p.opts. It
// returns lenEnd grown to the furthest position priced.
//
//go:norace
func (p *parser) priceFrom(pos, c, lenEnd int, matches []match) int {
	buf, m, o := p.buf, p.m, &p.opts
	at := pos + c
	price, st, reps := o[c].price, o[c].state, o[c].reps
	cb := buf[at]
	mb, haveMB := p.matchByte(at, reps[0])
	ps := at & pbMask
	next := &o[c+1]
	if lit := price + price0(m.isMatch[st][ps]) + m.literalPrice(st, cb, buf[at-1], mb); lit < next.price {
		*next = opt{price: lit, prev: uint32(c), back: literalMarker}
	}
	matchPrice := price + price1(m.isMatch[st][ps])
	repMatchPrice := matchPrice + price1(m.isRep[st])
	if mb == cb && haveMB && !(next.prev == uint32(c) && next.back == 0) {
		if sr := repMatchPrice + m.shortRepPrice(st, ps); sr <= next.price {
			*next = opt{price: sr, prev: uint32(c), back: 0}
		}
	}
	availFull := min(len(buf)-at, numOpts-1-c)
	if availFull < 2 {
		return lenEnd
	}
	limit := min(availFull, p.nice)
	start := 2
	for i := uint32(0); i < 4; i++ {
		rl := repLen(buf, at, reps[i], limit)
		if rl < 2 {
			continue
		}
		lenEnd = p.grow(lenEnd, c+rl)
		p.priceRep(c, rl, i, repMatchPrice+m.repPrice(i, st, ps), ps)
		if i == 0 {
			start = rl + 1
		}
	}
	matches = clip(matches, limit)
	if newLen := longest(matches); newLen >= start {
		lenEnd = p.grow(lenEnd, c+newLen)
		p.priceMatches(c, start, matchPrice+price0(m.isRep[st]), ps, matches)
	}
	return lenEnd
}

// clip cuts matches (shortest first) at limit bytes: the first match that
// reaches limit is the last one kept, shortened to limit.
//
//go:norace
func clip(matches []match, limit int) []match {
	if longest(matches) <= limit {
		return matches
	}
	n := 0
	for int(matches[n].len) < limit {
		n++
	}
	matches = matches[:n+1]
	matches[n].len = uint32(limit)
	return matches
}

// grow marks the positions after lenEnd up to end unreached and returns the
// new end.
//
//go:norace
func (p *parser) grow(lenEnd, end int) int {
	for lenEnd < end {
		lenEnd++
		p.opts[lenEnd] = opt{price: priceInf}
	}
	return lenEnd
}

// priceRep prices rep i of every length from rl down to 2 from position c,
// base being the price of choosing that rep there.
//
//go:norace
func (p *parser) priceRep(c, rl int, i uint32, base uint32, ps int) {
	o, m := &p.opts, p.m
	for l := rl; l >= 2; l-- {
		if cl := base + m.repLen.price(uint32(l), ps); cl < o[c+l].price {
			o[c+l] = opt{price: cl, prev: uint32(c), back: i}
		}
	}
}

// priceMatches prices a match of every length from start to the longest of
// matches from position c, each length at the distance of the shortest
// match that reaches it; normal is the price of choosing a match there.
//
//go:norace
func (p *parser) priceMatches(c, start int, normal uint32, ps int, matches []match) {
	o, m := &p.opts, p.m
	i := 0
	for start > int(matches[i].len) {
		i++
	}
	for l := start; ; l++ {
		d := matches[i].dist
		if cl := normal + m.matchLen.price(uint32(l), ps) + m.distPrice(d, uint32(l)); cl < o[c+l].price {
			o[c+l] = opt{price: cl, prev: uint32(c), back: d + 4}
		}
		if l == int(matches[i].len) {
			i++
			if i == len(matches) {
				return
			}
		}
	}
}

// backtrack walks back from position c along the cheapest path and returns
// its steps in order.
//
//go:norace
func (p *parser) backtrack(c int) []step {
	o := &p.opts
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
