package xzenc

// LZMA2 chunks: an LZMA chunk codes at most 2 MiB of input into at most
// 64 KiB; its header says whether the decoder resets its dictionary, its
// state (probabilities, state machine, reps) and properties first.
// Incompressible input is stored in chunks of at most 64 KiB.

const (
	chunkMaxInput  = 1 << 21
	chunkMaxOutput = 1 << 16
	storedMax      = 1 << 16
	symbolMargin   = 64 // bytes one symbol can add to the range coder, at most
)

const (
	resetNone  = 0
	resetState = 1 // state reset (LZMA2 control 0xA0)
	resetProps = 2 // state reset with properties (0xC0)
	resetDict  = 3 // everything (0xE0), the start of a block
)

// encodeLZMA2 codes buf as LZMA2 chunks (without the end marker),
// appended to out.
func encodeLZMA2(out, buf []byte, o Options) []byte {
	mf := newFinder(buf, o)
	defer mf.close()
	m := &model{niceLen: o.NiceLen}
	m.reset()
	p := &parser{m: m, mf: mf, buf: buf, nice: o.NiceLen}
	reset := resetDict
	start := 0
	var rc rangeEncoder
	rc.reset()
	chunkStart := start
	pos := start
	flush := func() {
		if pos == chunkStart {
			return
		}
		rc.flush()
		u := pos - chunkStart
		if len(rc.out) >= u {
			// Stored: the decoder's LZMA state did not follow, so the
			// next LZMA chunk resets it (and so must we).
			out = appendStored(out, buf[chunkStart:pos], reset == resetDict)
			m.reset()
			reset = resetProps
		} else {
			out = appendChunkHeader(out, reset, u, len(rc.out))
			out = append(out, rc.out...)
			reset = resetNone
		}
		rc.reset()
		chunkStart = pos
	}
	for pos < len(buf) {
		// The parse names distances by rep index as of its start; they
		// are turned into distances, as the model's reps may be reset
		// (after a stored chunk) before the path is all coded.
		reps := m.reps
		for _, s := range p.parse(pos) {
			if pos-chunkStart+int(s.len) > chunkMaxInput || rc.pending()+symbolMargin > chunkMaxOutput {
				flush()
			}
			switch {
			case s.back == literalMarker:
				encodeLiteralAt(m, &rc, buf, pos)
			case s.back < 4:
				d := reps[s.back]
				if s.len > 1 {
					copy(reps[1:s.back+1], reps[:s.back])
					reps[0] = d
				}
				encodeDistance(m, &rc, buf, pos, d, s.len)
			default:
				reps = [4]uint32{s.back - 4, reps[0], reps[1], reps[2]}
				encodeDistance(m, &rc, buf, pos, s.back-4, s.len)
			}
			pos += int(s.len)
		}
	}
	flush()
	return out
}

//go:norace
func encodeLiteralAt(m *model, rc *rangeEncoder, buf []byte, pos int) {
	var prev, mb byte
	if pos > 0 {
		prev = buf[pos-1]
	}
	if back := pos - int(m.reps[0]) - 1; back >= 0 {
		mb = buf[back]
	}
	m.encodeLiteral(rc, pos, buf[pos], prev, mb)
}

// encodeDistance codes l bytes at distance dist+1: as a rep when the
// model has that distance, else as a match (a single byte not at rep 0
// as a literal).
//
//go:norace
func encodeDistance(m *model, rc *rangeEncoder, buf []byte, pos int, dist, l uint32) {
	for i := uint32(0); i < 4; i++ {
		if m.reps[i] == dist && (l > 1 || i == 0) {
			m.encodeRep(rc, pos, i, l)
			return
		}
	}
	if l == 1 {
		encodeLiteralAt(m, rc, buf, pos)
		return
	}
	m.encodeMatch(rc, pos, dist, l)
}

func appendChunkHeader(out []byte, reset, u, c int) []byte {
	ctl := byte(0x80 | reset<<5 | (u-1)>>16)
	out = append(out, ctl, byte((u-1)>>8), byte(u-1), byte((c-1)>>8), byte(c-1))
	if reset >= resetProps {
		out = append(out, propsByte)
	}
	return out
}

// appendStored writes data as uncompressed chunks; the first one resets
// the dictionary when dictReset is set.
func appendStored(out, data []byte, dictReset bool) []byte {
	for len(data) > 0 {
		n := min(len(data), storedMax)
		ctl := byte(2)
		if dictReset {
			ctl, dictReset = 1, false
		}
		out = append(out, ctl, byte((n-1)>>8), byte(n-1))
		out = append(out, data[:n]...)
		data = data[n:]
	}
	return out
}
