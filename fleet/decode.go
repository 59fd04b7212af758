package fleet

import (
	"time"
	"unicode/utf8"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// decodeState is state.Decode for the collector's hot path. Reports as
// agents write them (encoding/json output: known keys, plain strings,
// integer seq, RFC 3339 times) are parsed here without reflection; for
// anything else — an escape sequence, an unknown or repeated key, a
// null, a number that is not a plain integer — it returns what
// state.Decode returns, by calling it. When the fast path accepts a
// report the result equals state.Decode's (FuzzDecodeState checks this).
func decodeState(b []byte) (state.State, error) {
	if len(b) <= state.MaxSize {
		if s, ok := fastDecode(b); ok {
			if err := s.Validate(); err == nil {
				return s, nil
			}
		}
	}
	return state.Decode(b)
}

// Fields of state.State, as bits of a "seen" mask.
const (
	fSeq = 1 << iota
	fTime
	fDevice
	fAgent
	fArch
	fPackages
	fLastCheck
	fResult
	fError
	fTarget
	fReleaseDate
	fBootID
)

type scanner struct {
	b []byte
	i int
}

func (p *scanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) byte(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, valid UTF-8.
func (p *scanner) str() ([]byte, bool) {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	ascii := true
	for j := start; j < len(p.b); j++ {
		c := p.b[j]
		switch {
		case c == '"':
			p.i = j + 1
			s := p.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// uint reads a JSON integer that fits a uint64.
func (p *scanner) uint() (uint64, bool) {
	p.ws()
	start := p.i
	var n uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 1 && p.b[start] == '0' {
		return 0, false
	}
	// A fraction or exponent is not an integer: leave it to encoding/json.
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	return n, true
}

// time reads a string and parses it as encoding/json does for time.Time.
func (p *scanner) time() (time.Time, bool) {
	p.ws()
	start := p.i
	if _, ok := p.str(); !ok {
		return time.Time{}, false
	}
	var t time.Time
	if t.UnmarshalJSON(p.b[start:p.i]) != nil {
		return time.Time{}, false
	}
	return t, true
}

// strMap reads an object of string values.
func (p *scanner) strMap() (map[string]string, bool) {
	if !p.byte('{') {
		return nil, false
	}
	m := map[string]string{}
	if p.byte('}') {
		return m, true
	}
	for {
		k, ok := p.str()
		if !ok || !p.byte(':') {
			return nil, false
		}
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		m[string(k)] = string(v)
		if p.byte('}') {
			return m, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

func fastDecode(b []byte) (s state.State, ok bool) {
	p := &scanner{b: b}
	if !p.byte('{') {
		return s, false
	}
	seen := 0
	if !p.byte('}') {
		for {
			key, ok := p.str()
			if !ok || !p.byte(':') {
				return s, false
			}
			var bit int
			switch string(key) {
			case "seq":
				bit = fSeq
				s.Seq, ok = p.uint()
			case "time":
				bit = fTime
				s.Time, ok = p.time()
			case "device":
				bit = fDevice
				s.Device, ok = p.string()
			case "agent":
				bit = fAgent
				s.Agent, ok = p.string()
			case "arch":
				bit = fArch
				s.Arch, ok = p.string()
			case "packages":
				bit = fPackages
				s.Packages, ok = p.strMap()
			case "last_check":
				bit = fLastCheck
				s.LastCheck, ok = p.time()
			case "result":
				bit = fResult
				s.Result, ok = p.string()
			case "error":
				bit = fError
				s.Error, ok = p.string()
			case "target":
				bit = fTarget
				s.Target, ok = p.strMap()
			case "release_date":
				bit = fReleaseDate
				s.ReleaseDate, ok = p.time()
			case "boot_id": // every agent since it sends one
				bit = fBootID
				s.BootID, ok = p.string()
			default:
				return s, false
			}
			if !ok || seen&bit != 0 {
				return s, false
			}
			seen |= bit
			if p.byte('}') {
				break
			}
			if !p.byte(',') {
				return s, false
			}
		}
	}
	p.ws()
	if p.i != len(p.b) {
		return s, false
	}
	return s, true
}

func (p *scanner) string() (string, bool) {
	v, ok := p.str()
	return string(v), ok
}
