package xzenc

import "math/bits"

// The LZMA model: the coder's state machine, the probabilities of every
// decision, and the price tables derived from them. lc=3, lp=0, pb=2 (the
// xz defaults; the LZMA2 properties byte 93 says so).

const (
	lc, lp, pb  = 3, 0, 2
	posStates   = 1 << pb
	pbMask      = posStates - 1
	numStates   = 12
	minMatchLen = 2
	maxMatchLen = 273

	lenLowBits, lenMidBits, lenHighBits = 3, 3, 8
	lenLowSymbols                       = 1 << lenLowBits
	lenMidSymbols                       = 1 << lenMidBits

	distStates     = 4
	distSlotBits   = 6
	startPosModel  = 4
	endPosModel    = 14
	fullDistances  = 1 << (endPosModel >> 1)
	alignBits      = 4
	alignSize      = 1 << alignBits
	literalCoder   = 0x300
	propsByte      = (pb*5+lp)*9 + lc
	literalMarker  = ^uint32(0) // "back" of a literal in a parse
	distPriceEvery = 128        // matches between refreshes of distance prices
	lenPriceEvery  = 64         // lengths between refreshes of a length price table
)

//go:norace
func updateLiteral(s uint8) uint8 {
	switch {
	case s < 4:
		return 0
	case s < 10:
		return s - 3
	}
	return s - 6
}

//go:norace
func updateMatch(s uint8) uint8 {
	if s < 7 {
		return 7
	}
	return 10
}

//go:norace
func updateLongRep(s uint8) uint8 {
	if s < 7 {
		return 8
	}
	return 11
}

//go:norace
func updateShortRep(s uint8) uint8 {
	if s < 7 {
		return 9
	}
	return 11
}

//go:norace
func distSlot(dist uint32) uint32 {
	if dist < startPosModel {
		return dist
	}
	n := uint32(bits.Len32(dist)) - 1
	return n<<1 | dist>>(n-1)&1
}

// lengthCoder codes match lengths 2..273 and keeps their prices.
type lengthCoder struct {
	choice, choice2 prob
	low             [posStates][lenLowSymbols]prob
	mid             [posStates][lenMidSymbols]prob
	high            [1 << lenHighBits]prob
	prices          [posStates][maxMatchLen - minMatchLen + 1]uint32
	counters        [posStates]int
	tableSize       int
}

//go:norace
func (c *lengthCoder) reset(tableSize int) {
	c.choice, c.choice2 = probInit, probInit
	for ps := range c.low {
		for i := range c.low[ps] {
			c.low[ps][i], c.mid[ps][i] = probInit, probInit
		}
	}
	for i := range c.high {
		c.high[i] = probInit
	}
	c.tableSize = tableSize
	for ps := range c.prices {
		c.updatePrices(ps)
	}
}

//go:norace
func (c *lengthCoder) encode(e *rangeEncoder, l uint32, ps int) {
	l -= minMatchLen
	switch {
	case l < lenLowSymbols:
		e.bit(&c.choice, 0)
		e.tree(c.low[ps][:], lenLowBits, l)
	case l < lenLowSymbols+lenMidSymbols:
		e.bit(&c.choice, 1)
		e.bit(&c.choice2, 0)
		e.tree(c.mid[ps][:], lenMidBits, l-lenLowSymbols)
	default:
		e.bit(&c.choice, 1)
		e.bit(&c.choice2, 1)
		e.tree(c.high[:], lenHighBits, l-lenLowSymbols-lenMidSymbols)
	}
	c.counters[ps]--
	if c.counters[ps] <= 0 {
		c.updatePrices(ps)
	}
}

//go:norace
func (c *lengthCoder) updatePrices(ps int) {
	a0, a1 := price0(c.choice), price1(c.choice)
	b0, b1 := a1+price0(c.choice2), a1+price1(c.choice2)
	p := &c.prices[ps]
	for l := 0; l < c.tableSize; l++ {
		switch {
		case l < lenLowSymbols:
			p[l] = a0 + treePrice(c.low[ps][:], lenLowBits, uint32(l))
		case l < lenLowSymbols+lenMidSymbols:
			p[l] = b0 + treePrice(c.mid[ps][:], lenMidBits, uint32(l-lenLowSymbols))
		default:
			p[l] = b1 + treePrice(c.high[:], lenHighBits, uint32(l-lenLowSymbols-lenMidSymbols))
		}
	}
	c.counters[ps] = lenPriceEvery
}

//go:norace
func (c *lengthCoder) price(l uint32, ps int) uint32 { return c.prices[ps][l-minMatchLen] }

// model is the state of an LZMA encoder between symbols.
type model struct {
	state uint8
	reps  [4]uint32

	isMatch    [numStates][posStates]prob
	isRep      [numStates]prob
	isRepG0    [numStates]prob
	isRepG1    [numStates]prob
	isRepG2    [numStates]prob
	isRep0Long [numStates][posStates]prob
	literal    [literalCoder << (lc + lp)]prob
	slots      [distStates][1 << distSlotBits]prob
	special    [fullDistances - endPosModel + 1]prob // [0] unused
	align      [alignSize]prob
	matchLen   lengthCoder
	repLen     lengthCoder

	slotPrices  [distStates][1 << distSlotBits]uint32
	distPrices  [distStates][fullDistances]uint32
	alignPrices [alignSize]uint32
	matchCount  int
	alignCount  int
	niceLen     int
}

//go:norace
func (m *model) reset() {
	m.state, m.reps = 0, [4]uint32{}
	fill := func(p []prob) {
		for i := range p {
			p[i] = probInit
		}
	}
	for s := 0; s < numStates; s++ {
		fill(m.isMatch[s][:])
		fill(m.isRep0Long[s][:])
	}
	fill(m.isRep[:])
	fill(m.isRepG0[:])
	fill(m.isRepG1[:])
	fill(m.isRepG2[:])
	fill(m.literal[:])
	for s := range m.slots {
		fill(m.slots[s][:])
	}
	fill(m.special[:])
	fill(m.align[:])
	m.matchLen.reset(m.niceLen + 1 - minMatchLen)
	m.repLen.reset(m.niceLen + 1 - minMatchLen)
	m.updateDistPrices()
	m.updateAlignPrices()
}

//go:norace
func (m *model) literalProbs(prevByte byte) []prob {
	i := int(prevByte>>(8-lc)) * literalCoder
	return m.literal[i : i+literalCoder]
}

// encodeLiteral codes b after prevByte; matchByte is the byte at rep0,
// used when the previous symbol was a match.
//
//go:norace
func (m *model) encodeLiteral(e *rangeEncoder, pos int, b, prevByte, matchByte byte) {
	ps := pos & pbMask
	e.bit(&m.isMatch[m.state][ps], 0)
	probs := m.literalProbs(prevByte)
	sym := uint32(1)
	if m.state >= 7 {
		for i := 7; i >= 0; i-- {
			bit := uint32(b>>uint(i)) & 1
			mb := uint32(matchByte>>uint(i)) & 1
			e.bit(&probs[(1+mb)<<8+sym], bit)
			sym = sym<<1 | bit
			if mb != bit {
				for i--; i >= 0; i-- {
					bit := uint32(b>>uint(i)) & 1
					e.bit(&probs[sym], bit)
					sym = sym<<1 | bit
				}
				break
			}
		}
	} else {
		e.tree(probs[:], 8, uint32(b))
	}
	m.state = updateLiteral(m.state)
}

// literalPrice is the price of b as the next literal in state s.
//
//go:norace
func (m *model) literalPrice(s uint8, b, prevByte, matchByte byte) uint32 {
	probs := m.literalProbs(prevByte)
	if s < 7 {
		return treePrice(probs, 8, uint32(b))
	}
	var price uint32
	sym := uint32(1)
	for i := 7; i >= 0; i-- {
		bit := uint32(b>>uint(i)) & 1
		mb := uint32(matchByte>>uint(i)) & 1
		price += priceBit(probs[(1+mb)<<8+sym], bit)
		sym = sym<<1 | bit
		if mb != bit {
			for i--; i >= 0; i-- {
				bit := uint32(b>>uint(i)) & 1
				price += priceBit(probs[sym], bit)
				sym = sym<<1 | bit
			}
			break
		}
	}
	return price
}

// encodeMatch codes a match of length l at distance dist+1.
//
//go:norace
func (m *model) encodeMatch(e *rangeEncoder, pos int, dist, l uint32) {
	ps := pos & pbMask
	e.bit(&m.isMatch[m.state][ps], 1)
	e.bit(&m.isRep[m.state], 0)
	m.matchLen.encode(e, l, ps)
	ls := min(l-minMatchLen, distStates-1)
	slot := distSlot(dist)
	e.tree(m.slots[ls][:], distSlotBits, slot)
	if slot >= startPosModel {
		footer := int(slot>>1) - 1
		base := (2 | slot&1) << uint(footer)
		reduced := dist - base
		if slot < endPosModel {
			e.reverseTree(m.special[base-slot:], footer, reduced)
		} else {
			e.direct(reduced>>alignBits, footer-alignBits)
			e.reverseTree(m.align[:], alignBits, reduced&(alignSize-1))
			m.alignCount++
			if m.alignCount >= alignSize {
				m.updateAlignPrices()
			}
		}
	}
	m.reps = [4]uint32{dist, m.reps[0], m.reps[1], m.reps[2]}
	m.state = updateMatch(m.state)
	m.matchCount++
	if m.matchCount >= distPriceEvery {
		m.updateDistPrices()
	}
}

// encodeRep codes a match of length l at reps[i]; l == 1 with i == 0 is
// a "short rep" (one byte at rep0).
//
//go:norace
func (m *model) encodeRep(e *rangeEncoder, pos int, i, l uint32) {
	ps := pos & pbMask
	s := m.state
	e.bit(&m.isMatch[s][ps], 1)
	e.bit(&m.isRep[s], 1)
	if i == 0 {
		e.bit(&m.isRepG0[s], 0)
		if l == 1 {
			e.bit(&m.isRep0Long[s][ps], 0)
			m.state = updateShortRep(s)
			return
		}
		e.bit(&m.isRep0Long[s][ps], 1)
	} else {
		e.bit(&m.isRepG0[s], 1)
		if i == 1 {
			e.bit(&m.isRepG1[s], 0)
		} else {
			e.bit(&m.isRepG1[s], 1)
			e.bit(&m.isRepG2[s], i-2)
		}
		d := m.reps[i]
		copy(m.reps[1:i+1], m.reps[:i])
		m.reps[0] = d
	}
	m.repLen.encode(e, l, ps)
	m.state = updateLongRep(s)
}

//go:norace
func (m *model) shortRepPrice(s uint8, ps int) uint32 {
	return price0(m.isRepG0[s]) + price0(m.isRep0Long[s][ps])
}

// repPrice is the price of choosing rep i (without isMatch, isRep and the
// length) for a long rep match.
//
//go:norace
func (m *model) repPrice(i uint32, s uint8, ps int) uint32 {
	if i == 0 {
		return price0(m.isRepG0[s]) + price1(m.isRep0Long[s][ps])
	}
	p := price1(m.isRepG0[s])
	if i == 1 {
		return p + price0(m.isRepG1[s])
	}
	return p + price1(m.isRepG1[s]) + priceBit(m.isRepG2[s], i-2)
}

//go:norace
func (m *model) distPrice(dist, l uint32) uint32 {
	ls := min(l-minMatchLen, distStates-1)
	if dist < fullDistances {
		return m.distPrices[ls][dist]
	}
	return m.slotPrices[ls][distSlot(dist)] + m.alignPrices[dist&(alignSize-1)]
}

//go:norace
func (m *model) updateDistPrices() {
	m.matchCount = 0
	for ls := 0; ls < distStates; ls++ {
		sp := &m.slotPrices[ls]
		for slot := uint32(0); slot < 1<<distSlotBits; slot++ {
			sp[slot] = treePrice(m.slots[ls][:], distSlotBits, slot)
			if slot >= endPosModel {
				sp[slot] += (slot>>1 - 1 - alignBits) << priceShift
			}
		}
		dp := &m.distPrices[ls]
		for d := uint32(0); d < fullDistances; d++ {
			slot := distSlot(d)
			dp[d] = sp[slot]
			if slot >= startPosModel {
				footer := int(slot>>1) - 1
				base := (2 | slot&1) << uint(footer)
				dp[d] += reverseTreePrice(m.special[base-slot:], footer, d-base)
			}
		}
	}
}

//go:norace
func (m *model) updateAlignPrices() {
	m.alignCount = 0
	for i := uint32(0); i < alignSize; i++ {
		m.alignPrices[i] = reverseTreePrice(m.align[:], alignBits, i)
	}
}
