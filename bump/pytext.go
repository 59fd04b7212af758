package bump

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the small pieces of Python's text handling that
// bump2version's behaviour rests on: what str.strip() and str.splitlines()
// call white space and line breaks, and how a file read in text mode
// ("universal newlines") maps its line endings.

// pySpace reports whether r is white space for Python's str.isspace, which
// also counts the ASCII separators 0x1c..0x1f.
func pySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func pyStrip(s string) string  { return strings.TrimFunc(s, pySpace) }
func pyRstrip(s string) string { return strings.TrimRightFunc(s, pySpace) }

// pyLineBreak reports whether r ends a line for str.splitlines.
func pyLineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// pySplitlines is str.splitlines(): lines without their breaks, "\r\n"
// counting as one break, and no empty last element for a trailing break.
func pySplitlines(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		if i < start || !pyLineBreak(r) {
			continue
		}
		out = append(out, s[start:i])
		start = i + len(string(r))
		if r == '\r' && strings.HasPrefix(s[start:], "\n") {
			start++
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// newlineStyle is how a text file ends its lines, as Python's universal
// newline reader records it in file.newlines.
type newlineStyle string

const (
	nlNone  newlineStyle = ""
	nlLF    newlineStyle = "\n"
	nlCRLF  newlineStyle = "\r\n"
	nlCR    newlineStyle = "\r"
	nlMixed newlineStyle = "mixed"
)

// decodeText turns file bytes into the text Python's text mode reads: it
// must be UTF-8, and "\r\n" and lone "\r" become "\n". It returns the line
// ending style found so that encodeText can write the text back the way
// bump2version does (newline=file.newlines).
func decodeText(b []byte) (string, newlineStyle, bool) {
	s := string(b)
	if !utf8.ValidString(s) {
		return "", nlNone, false
	}
	if !strings.ContainsRune(s, '\r') {
		if strings.ContainsRune(s, '\n') {
			return s, nlLF, true
		}
		return s, nlNone, true
	}
	seen := map[newlineStyle]bool{}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n':
			seen[nlCRLF] = true
			sb.WriteByte('\n')
			i++
		case s[i] == '\r':
			seen[nlCR] = true
			sb.WriteByte('\n')
		case s[i] == '\n':
			seen[nlLF] = true
			sb.WriteByte('\n')
		default:
			sb.WriteByte(s[i])
		}
	}
	if len(seen) > 1 {
		return sb.String(), nlMixed, true
	}
	for k := range seen {
		return sb.String(), k, true
	}
	return sb.String(), nlNone, true
}

// encodeText is the inverse of decodeText for one line ending style: every
// "\n" is written as style ("\n" when the file had no line break at all).
func encodeText(s string, style newlineStyle) []byte {
	if style == nlCRLF || style == nlCR {
		s = strings.ReplaceAll(s, "\n", string(style))
	}
	return []byte(s)
}
