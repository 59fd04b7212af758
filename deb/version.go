package deb

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Version is a Debian package version: [epoch:]upstream[-revision].
//
// Build one with [ParseVersion], which accepts exactly the strings that
// "dpkg --validate-version" (dpkg 1.21, Debian 12) accepts. The zero Version
// stands for "no version", as dpkg's empty or "<unknown>" version does in
// "dpkg --compare-versions"; ParseVersion never returns it.
type Version struct {
	// Epoch is the number before the first ':', 0 when absent. dpkg
	// limits it to 0..2147483647 (INT_MAX).
	Epoch int
	// Upstream is the part between the epoch and the last '-'. It starts
	// with a digit and holds letters, digits and ".+~-:" ('-' only when
	// there is a revision, ':' only when there is an epoch).
	Upstream string
	// Revision is the part after the last '-', empty when there is no
	// '-'. It holds letters, digits and ".+~".
	Revision string
}

// maxEpoch is dpkg's INT_MAX limit on epochs.
const maxEpoch = 1<<31 - 1

// dpkgRuleError is a value dpkg would reject. Its message says what is
// wrong and where; errors.Is matches its sentinel (ErrInvalidVersion,
// ErrInvalidField).
type dpkgRuleError struct {
	msg      string
	sentinel error
}

func (e *dpkgRuleError) Error() string { return e.msg }
func (e *dpkgRuleError) Unwrap() error { return e.sentinel }

func invalidVersion(s, format string, a ...any) error {
	return &dpkgRuleError{
		msg:      fmt.Sprintf("version %q: ", s) + fmt.Sprintf(format, a...),
		sentinel: ErrInvalidVersion,
	}
}

// ParseVersion parses s as dpkg does and rejects every string that
// "dpkg --validate-version" rejects, whether dpkg calls the problem an
// error or a warning. Errors wrap ErrInvalidVersion.
//
// Like dpkg, it accepts a few surprising spellings: leading and trailing
// blanks (space, tab) are ignored; the epoch is read as C's strtol reads
// it, so it may carry a sign ("+1:2", "-0:2") and leading whitespace other
// than blanks ("\n1:2"); any later ':' belongs to the upstream version
// ("1:2:3" is epoch 1, upstream "2:3").
func ParseVersion(s string) (Version, error) {
	if s == "" {
		return Version{}, invalidVersion(s, "version string is empty")
	}
	start := 0
	for start < len(s) && versionBlank(s[start]) {
		start++
	}
	if start == len(s) {
		return Version{}, invalidVersion(s, "version string is empty (only blanks)")
	}
	end := start
	for end < len(s) && !versionBlank(s[end]) {
		end++
	}
	for i := end; i < len(s); i++ {
		if !versionBlank(s[i]) {
			return Version{}, invalidVersion(s, "embedded blank at byte %d (versions contain no spaces)", end)
		}
	}
	body, off := s[start:end], start

	var v Version
	if colon := strings.IndexByte(body, ':'); colon >= 0 {
		epoch, err := parseEpoch(s, body[:colon])
		if err != nil {
			return Version{}, err
		}
		if off+colon+1 == len(s) {
			return Version{}, invalidVersion(s, "nothing after the epoch colon at byte %d", off+colon)
		}
		v.Epoch = epoch
		body, off = body[colon+1:], off+colon+1
	}
	v.Upstream = body
	if hyphen := strings.LastIndexByte(body, '-'); hyphen >= 0 {
		v.Upstream, v.Revision = body[:hyphen], body[hyphen+1:]
		if v.Revision == "" {
			return Version{}, invalidVersion(s, "revision is empty (nothing after the '-' at byte %d)", off+hyphen)
		}
	}
	if v.Upstream == "" {
		return Version{}, invalidVersion(s, "upstream version is empty (the part between the epoch and the revision)")
	}
	if !versionDigit(v.Upstream[0]) {
		return Version{}, invalidVersion(s, "upstream version %q does not start with a digit", v.Upstream)
	}
	for i := 0; i < len(v.Upstream); i++ {
		if c := v.Upstream[i]; !versionAlnum(c) && !strings.ContainsRune(".+~-:", rune(c)) {
			return Version{}, invalidVersion(s, "invalid character %s at byte %d in upstream version %q (allowed: letters, digits and . + ~ - :)", quoteCharAt(v.Upstream, i), off+i, v.Upstream)
		}
	}
	for i := 0; i < len(v.Revision); i++ {
		if c := v.Revision[i]; !versionAlnum(c) && !strings.ContainsRune(".+~", rune(c)) {
			return Version{}, invalidVersion(s, "invalid character %s at byte %d in revision %q (allowed: letters, digits and . + ~)", quoteCharAt(v.Revision, i), off+len(v.Upstream)+1+i, v.Revision)
		}
	}
	return v, nil
}

// parseEpoch reads the text before the first ':' the way dpkg does with
// strtol: optional leading whitespace, an optional sign, then digits that
// must run up to the colon. "-0" is therefore a valid epoch.
func parseEpoch(s, field string) (int, error) {
	if field == "" {
		return 0, invalidVersion(s, "epoch is empty (nothing before ':')")
	}
	i := 0
	for i < len(field) && strings.IndexByte(" \t\n\v\f\r", field[i]) >= 0 {
		i++
	}
	negative := false
	if i < len(field) && (field[i] == '+' || field[i] == '-') {
		negative = field[i] == '-'
		i++
	}
	digits := field[i:]
	n := 0
	for n < len(digits) && versionDigit(digits[n]) {
		n++
	}
	if n == 0 || n != len(digits) {
		return 0, invalidVersion(s, "epoch in %q is not a number", field)
	}
	digits = strings.TrimLeft(digits, "0")
	if negative && digits != "" {
		return 0, invalidVersion(s, "epoch in %q is negative", field)
	}
	if digits == "" {
		return 0, nil
	}
	epoch, err := strconv.Atoi(digits) // fails only when out of range
	if err != nil || epoch > maxEpoch {
		return 0, invalidVersion(s, "epoch in %q is too big (at most %d)", field, maxEpoch)
	}
	return epoch, nil
}

// MustParseVersion is ParseVersion for constants and tests: it panics if
// s is not a valid version.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the canonical form of v, which ParseVersion reads back
// to an identical Version. It is dpkg's own printing: the epoch is written
// only when it is not 0 or when the upstream version holds a ':' (which
// would otherwise be read as an epoch separator); the revision and its '-'
// only when there is a revision. So the spelling that was parsed is not
// kept: " 0:1.0 " and "+0:1.0" both print as "1.0".
func (v Version) String() string {
	if v.Epoch != 0 || strings.ContainsRune(v.Upstream, ':') {
		return strconv.Itoa(v.Epoch) + ":" + v.WithoutEpoch()
	}
	return v.WithoutEpoch()
}

// WithoutEpoch returns upstream[-revision], the form used in .deb file
// names and pool paths.
func (v Version) WithoutEpoch() string {
	if v.Revision == "" {
		return v.Upstream
	}
	return v.Upstream + "-" + v.Revision
}

// IsZero reports whether v is the zero Version, dpkg's "no version".
func (v Version) IsZero() bool { return v == Version{} }

// Compare returns -1, 0 or +1 as v sorts before, equal to or after o in
// dpkg's order: epochs numerically, then the upstream versions, then the
// revisions. Within upstream and revision, runs of non-digits compare
// character by character, where '~' sorts before everything (even the end
// of the string), then the end, then letters, then all other characters;
// runs of digits compare as numbers of any length. So 1.0 == 1.00,
// 1.0~rc1 < 1.0 < 1.0a < 1.0+b1 < 1.0.1, and a missing revision equals
// "-0".
func (v Version) Compare(o Version) int {
	switch {
	case v.Epoch < o.Epoch:
		return -1
	case v.Epoch > o.Epoch:
		return 1
	}
	if c := comparePart(v.Upstream, o.Upstream); c != 0 {
		return c
	}
	return comparePart(v.Revision, o.Revision)
}

// CompareVersions parses a and b and compares them like Version.Compare.
func CompareVersions(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// CompareLoose compares version strings that may not be valid Debian
// versions (read from a device report, a file name, an index written by
// someone else), with one rule for every caller: valid versions compare as
// dpkg does ([Version.Compare]); an invalid one sorts below every valid
// one; two invalid ones compare bytewise. The order is total, so it can
// sort: sorted newest first, the invalid strings come last. It returns -1,
// 0 or +1 (0 for equal strings, and for valid versions dpkg holds equal,
// such as "1.0" and "0:1.0").
func CompareLoose(a, b string) int {
	va, errA := ParseVersion(a)
	vb, errB := ParseVersion(b)
	switch {
	case errA == nil && errB == nil:
		return va.Compare(vb)
	case errA == nil:
		return 1
	case errB == nil:
		return -1
	}
	return strings.Compare(a, b)
}

// comparePart is dpkg's verrevcmp on one part (upstream or revision).
func comparePart(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		// Non-digit run, character by character. It ends on the first
		// difference, since only the end of a string weighs 0 here.
		for (i < len(a) && !versionDigit(a[i])) || (j < len(b) && !versionDigit(b[j])) {
			ca, cb := charWeight(a, i), charWeight(b, j)
			if ca != cb {
				return sign(ca - cb)
			}
			i, j = i+1, j+1
		}
		// Digit run: drop leading zeros, then the longer number is
		// larger, and numbers of equal length compare as text.
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		si, sj := i, j
		for i < len(a) && versionDigit(a[i]) {
			i++
		}
		for j < len(b) && versionDigit(b[j]) {
			j++
		}
		if da, db := i-si, j-sj; da != db {
			return sign(da - db)
		}
		if c := strings.Compare(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}

// charWeight is the sort weight of s[i] in a non-digit run, as dpkg's
// order(): '~' < end of string (and digits) < letters < everything else.
// Bytes above 0x7f (never in a valid version) weigh as dpkg's signed chars.
func charWeight(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case versionDigit(c):
		return 0
	case versionLetter(c):
		return int(c)
	case c == '~':
		return -1
	}
	return int(int8(c)) + 256
}

// quoteCharAt quotes the character starting at s[i] for an error
// message: 'é' for a UTF-8 character, '\xe9' for a stray byte.
func quoteCharAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf(`'\x%02x'`, s[i])
	}
	return strconv.QuoteRune(r)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func versionBlank(c byte) bool  { return c == ' ' || c == '\t' }
func versionDigit(c byte) bool  { return '0' <= c && c <= '9' }
func versionLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func versionAlnum(c byte) bool  { return versionDigit(c) || versionLetter(c) }

// VersionRelation is a version relation as "dpkg --compare-versions" spells it:
// lt le eq ne ge gt; the Depends-field forms << <= = >= >>; the obsolete
// < and > (which mean <= and >=); and lt-nl le-nl ge-nl gt-nl, for which a
// missing version sorts after every version instead of before.
type VersionRelation struct {
	name      string
	holds     [3]bool // for Compare results -1, 0, +1
	noneLater bool
	obsolete  bool
}

// ParseVersionRelation returns the relation spelled op, or an error wrapping
// ErrInvalidField for anything "dpkg --compare-versions" does not accept.
func ParseVersionRelation(op string) (VersionRelation, error) {
	r := VersionRelation{name: op}
	switch op {
	case "lt", "<<", "lt-nl":
		r.holds = [3]bool{true, false, false}
	case "le", "<=", "<", "le-nl":
		r.holds = [3]bool{true, true, false}
	case "eq", "=":
		r.holds = [3]bool{false, true, false}
	case "ne":
		r.holds = [3]bool{true, false, true}
	case "ge", ">=", ">", "ge-nl":
		r.holds = [3]bool{false, true, true}
	case "gt", ">>", "gt-nl":
		r.holds = [3]bool{false, false, true}
	default:
		return VersionRelation{}, &dpkgRuleError{
			msg:      fmt.Sprintf("relation %q: unknown (use lt le eq ne ge gt, << <= = >= >>, or lt-nl le-nl ge-nl gt-nl)", op),
			sentinel: ErrInvalidField,
		}
	}
	r.noneLater = strings.HasSuffix(op, "-nl")
	r.obsolete = op == "<" || op == ">"
	return r, nil
}

// String returns the relation as it was spelled.
func (r VersionRelation) String() string { return r.name }

// Obsolete reports whether r is the obsolete "<" or ">", which dpkg warns
// about: they mean "<=" and ">=", not "<<" and ">>".
func (r VersionRelation) Obsolete() bool { return r.obsolete }

// Holds reports whether "a r b" is true. A zero Version is a missing
// version: it equals another missing one and sorts before every version,
// or after every version for the "-nl" relations.
func (r VersionRelation) Holds(a, b Version) bool {
	var c int
	switch {
	case a.IsZero() && b.IsZero():
		c = 0
	case a.IsZero():
		c = -1
	case b.IsZero():
		c = 1
	default:
		return r.holds[a.Compare(b)+1]
	}
	if r.noneLater {
		c = -c
	}
	return r.holds[c+1]
}
