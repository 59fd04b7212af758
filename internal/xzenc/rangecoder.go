package xzenc

import "math/bits"

// The range coder and the prices of its bits, as the LZMA format defines
// them: 11-bit probabilities, adapted by 1/32 of the distance to 0 or 1.

const (
	probBits   = 11
	probInit   = 1 << (probBits - 1)
	moveBits   = 5
	priceShift = 4 // prices are in 1/16 bit
	priceInf   = 1 << 30
)

type prob uint16

// probPrices[p >> 4] is the price of a 0 bit coded with probability p:
// -log2(p / 2048) in 1/16 bit. It is computed with integers only, so that
// every machine makes the same parse, and so the same bytes.
var probPrices = func() (t [1 << (probBits - 4)]uint32) {
	for i := range t {
		t[i] = probBits<<priceShift - log2x16(uint32(i<<4+8))
	}
	return t
}()

// log2x16 is floor(16·log2(v)) for 1 ≤ v < 1<<16: the integer part from the top
// bit, four fractional bits by squaring the mantissa (a bit is set each
// time the square reaches 2).
//
//go:norace
func log2x16(v uint32) uint32 {
	n := uint32(bits.Len32(v)) - 1
	x := uint64(v) << (16 - n) // mantissa in [1, 2) as Q16
	var frac uint32
	for i := 0; i < priceShift; i++ {
		x = x * x >> 16
		frac <<= 1
		if x >= 2<<16 {
			x >>= 1
			frac |= 1
		}
	}
	return n<<priceShift | frac
}

//go:norace
func price0(p prob) uint32 { return probPrices[p>>4] }

//go:norace
func price1(p prob) uint32 { return probPrices[((1<<probBits)-p)>>4] }

//go:norace
func priceBit(p prob, bit uint32) uint32 {
	if bit == 0 {
		return price0(p)
	}
	return price1(p)
}

// rangeEncoder writes into out; low holds 33 bits, the top one a carry.
type rangeEncoder struct {
	low       uint64
	rng       uint32
	cache     byte
	cacheSize int
	out       []byte
}

//go:norace
func (e *rangeEncoder) reset() {
	e.low, e.rng, e.cache, e.cacheSize = 0, 0xFFFFFFFF, 0, 1
	e.out = e.out[:0]
}

//go:norace
func (e *rangeEncoder) shiftLow() {
	if uint32(e.low) < 0xFF000000 || e.low>>32 != 0 {
		carry := byte(e.low >> 32)
		temp := e.cache
		for {
			e.out = append(e.out, temp+carry)
			temp = 0xFF
			e.cacheSize--
			if e.cacheSize == 0 {
				break
			}
		}
		e.cache = byte(e.low >> 24)
	}
	e.cacheSize++
	e.low = (e.low & 0x00FFFFFF) << 8
}

//go:norace
func (e *rangeEncoder) bit(p *prob, bit uint32) {
	bound := (e.rng >> probBits) * uint32(*p)
	if bit == 0 {
		e.rng = bound
		*p += ((1 << probBits) - *p) >> moveBits
	} else {
		e.low += uint64(bound)
		e.rng -= bound
		*p -= *p >> moveBits
	}
	for e.rng < 1<<24 {
		e.rng <<= 8
		e.shiftLow()
	}
}

// direct writes the n low bits of v, high bit first, at probability 1/2.
//
//go:norace
func (e *rangeEncoder) direct(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		e.rng >>= 1
		if v>>uint(i)&1 != 0 {
			e.low += uint64(e.rng)
		}
		for e.rng < 1<<24 {
			e.rng <<= 8
			e.shiftLow()
		}
	}
}

//go:norace
func (e *rangeEncoder) flush() {
	for i := 0; i < 5; i++ {
		e.shiftLow()
	}
}

// pending is the number of bytes the coder will have written after flush.
//
//go:norace
func (e *rangeEncoder) pending() int { return len(e.out) + e.cacheSize + 4 }

// treeEncode codes the n-bit symbol high bit first through probs[1:].
//
//go:norace
func (e *rangeEncoder) tree(probs []prob, n int, sym uint32) {
	m := uint32(1)
	for i := n - 1; i >= 0; i-- {
		b := sym >> uint(i) & 1
		e.bit(&probs[m], b)
		m = m<<1 | b
	}
}

// reverseTree codes the n-bit symbol low bit first through probs[1:].
//
//go:norace
func (e *rangeEncoder) reverseTree(probs []prob, n int, sym uint32) {
	m := uint32(1)
	for i := 0; i < n; i++ {
		b := sym & 1
		sym >>= 1
		e.bit(&probs[m], b)
		m = m<<1 | b
	}
}

//go:norace
func treePrice(probs []prob, n int, sym uint32) uint32 {
	var price uint32
	m := uint32(1)
	for i := n - 1; i >= 0; i-- {
		b := sym >> uint(i) & 1
		price += priceBit(probs[m], b)
		m = m<<1 | b
	}
	return price
}

//go:norace
func reverseTreePrice(probs []prob, n int, sym uint32) uint32 {
	var price uint32
	m := uint32(1)
	for i := 0; i < n; i++ {
		b := sym & 1
		sym >>= 1
		price += priceBit(probs[m], b)
		m = m<<1 | b
	}
	return price
}
