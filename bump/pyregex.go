package bump

import (
	"fmt"
	"regexp"
	"strings"
)

// compileParse compiles a bump2version "parse" pattern. bump2version
// compiles it with Python's re.VERBOSE, so white space outside character
// classes is ignored and '#' starts a comment; Go's RE2 syntax has no such
// flag, so the pattern is stripped first. Python-only constructs
// (look-around, back-references) are refused with Go's message.
func compileParse(pattern string) (*regexp.Regexp, error) {
	stripped := stripVerbose(pattern)
	stripped = strings.ReplaceAll(stripped, `\Z`, `\z`)
	re, err := regexp.Compile(stripped)
	if err != nil {
		return nil, fmt.Errorf("parse pattern %q: %v (Go's RE2 syntax has no look-around or back-references)", trunc(pattern), err)
	}
	return re, nil
}

// stripVerbose removes what re.VERBOSE ignores: white space outside a
// character class and not escaped, and '#' comments up to the end of line.
func stripVerbose(p string) string {
	var sb strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			sb.WriteByte(c)
			sb.WriteByte(p[i+1])
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
			sb.WriteByte(c)
		case c == '[':
			inClass = true
			sb.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal member.
			if i+1 < len(p) && p[i+1] == '^' {
				sb.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				sb.WriteByte(']')
				i++
			}
		case c == '#':
			for i < len(p) && p[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}
