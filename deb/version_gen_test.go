package deb

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// versionGen makes random version strings biased toward the forms where
// implementations go wrong: '~' and "~~", epochs, letters next to digits
// and punctuation, long digit runs, leading zeros, revisions, and
// different spellings of equal versions.
type versionGen struct{ r *rand.Rand }

func (g versionGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g versionGen) digits() string {
	switch g.r.IntN(10) {
	case 0:
		n := 15 + g.r.IntN(30)
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + g.r.IntN(10)))
		}
		return b.String()
	case 1:
		return g.pick("0", "00", "000") + fmt.Sprint(g.r.IntN(12))
	case 2:
		return g.pick("2147483647", "2147483648", "4294967296", "18446744073709551615", "18446744073709551616")
	}
	return fmt.Sprint(g.r.IntN(12))
}

func (g versionGen) word() string {
	return g.pick("a", "b", "z", "A", "Z", "rc", "alpha", "beta", "dfsg", "git", "ubuntu", "bpo", "b", "deb")
}

// tokens returns 0..max separator+content segments.
func (g versionGen) tokens(max int, seps ...string) string {
	var b strings.Builder
	for range g.r.IntN(max + 1) {
		b.WriteString(g.pick(seps...))
		switch g.r.IntN(4) {
		case 0:
			b.WriteString(g.word())
		case 1:
			b.WriteString(g.word() + g.digits())
		case 2:
		default:
			b.WriteString(g.digits())
		}
	}
	return b.String()
}

// version returns a string that is usually a valid version.
func (g versionGen) version() string {
	var b strings.Builder
	hasEpoch := false
	switch n := g.r.IntN(40); {
	case n < 4:
		b.WriteString("0:")
	case n < 9:
		b.WriteString(fmt.Sprint(1+g.r.IntN(3), ":"))
	case n < 11:
		b.WriteString(g.pick("00:", "01:", "+1:", "-0:", "2147483647:", "10:"))
	}
	hasEpoch = b.Len() > 0
	hasRev := g.r.IntN(3) > 0
	seps := []string{".", ".", ".", "+", "~", "~~", "", "~"}
	if hasEpoch {
		seps = append(seps, ":")
	}
	if hasRev {
		seps = append(seps, "-")
	}
	b.WriteString(g.digits())
	b.WriteString(g.tokens(4, seps...))
	if hasRev {
		b.WriteString("-")
		switch g.r.IntN(4) {
		case 0:
			b.WriteString(g.pick("~", "+", ".", "~~") + g.tokens(2, ".", "+", "~", ""))
		case 1:
			b.WriteString(g.word() + g.tokens(2, ".", "+", "~", ""))
		default:
			b.WriteString(g.digits() + g.tokens(3, ".", "+", "~", "", "~~"))
		}
		if b.String()[b.Len()-1] == '-' {
			b.WriteString("0")
		}
	}
	return b.String()
}

// mutate returns a small change of v: often an equal spelling, else a
// near neighbour in the order.
func (g versionGen) mutate(v string) string {
	digitAt := func() int {
		var at []int
		for i := 0; i < len(v); i++ {
			if versionDigit(v[i]) {
				at = append(at, i)
			}
		}
		if len(at) == 0 {
			return -1
		}
		return at[g.r.IntN(len(at))]
	}
	switch g.r.IntN(9) {
	case 0: // leading zero
		if i := digitAt(); i >= 0 {
			return v[:i] + "0" + v[i:]
		}
	case 1:
		if !strings.Contains(v, ":") {
			return g.pick("0:", "00:", "1:") + v
		}
	case 2:
		if !strings.Contains(v, "-") {
			return v + g.pick("-0", "-00", "-1", "-~", "-0~")
		}
	case 3: // bump or lower a digit
		if i := digitAt(); i >= 0 {
			return v[:i] + fmt.Sprint((int(v[i]-'0')+g.r.IntN(3)+9)%10) + v[i+1:]
		}
	case 4: // swap similar characters
		r := strings.NewReplacer(".", "+", "+", ".", "a", "A", "~", "~~", "b", "a")
		return r.Replace(v)
	}
	return v + g.pick("~", "~~", "a", "A", ".", "+", "0", ".0", "~rc1", "+b1", "~~a", ".1")
}

// pool returns n distinct valid versions, in families of near neighbours.
func (g versionGen) pool(n int) []string {
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		s := g.version()
		if len(out) > 0 && g.r.IntN(3) > 0 {
			s = g.mutate(out[g.r.IntN(len(out))])
		}
		if _, err := ParseVersion(s); err != nil || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// junk returns a string for the validity test: a version, a broken
// version, or random characters.
func (g versionGen) junk() string {
	alphabet := []string{"0", "1", "9", "a", "Z", ".", "+", "~", "-", ":", " ", "\t", "_", "%", "é", "\xe9", "\n", "\v", "\r", "\x85", "\xa0", "/", ",", "(", "*", "'"}
	switch g.r.IntN(5) {
	case 0:
		return g.version()
	case 1, 2: // a version with an edit
		v := []byte(g.version())
		i := g.r.IntN(len(v) + 1)
		switch c := g.pick(alphabet...); g.r.IntN(3) {
		case 0:
			return string(v[:i]) + c + string(v[i:])
		case 1:
			if i < len(v) {
				return string(v[:i]) + c + string(v[i+1:])
			}
		}
		return string(v[:i]) + string(v[min(i+1, len(v)):])
	case 3: // assembled from parts
		return g.pick("", " ", "\t", "") + g.pick("", "", "1:", ":", "+1:", "-1:", "-0:", "a:", "1a:", "\n1:", " 1:", "2147483648:", "99999999999999999999:", "-:", "0x1:") +
			g.pick("", "1", "1.0", "a1", "~1", "1:2", "1-2", "-", "1 0", "1_0") +
			g.pick("", "", "-", "-1", "-a", "-1:2", "-_", "-~", "--", "-1-") + g.pick("", "", " ", "\t ", " x")
	}
	var b strings.Builder
	for range 1 + g.r.IntN(8) {
		b.WriteString(g.pick(alphabet...))
	}
	return b.String()
}
