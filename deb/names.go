package deb

import (
	"fmt"
	"strings"
)

// ValidatePackageName checks a binary package name against Debian Policy
// §5.6.1: at least two characters, only lowercase letters a-z, digits and
// "+-.", starting with a letter or digit. Errors wrap ErrInvalidField.
//
// This is stricter than "dpkg --validate-pkgname", which also accepts
// one-character names, uppercase letters and '_' (dpkg folds case when it
// installs, and apt, reprepro and lintian refuse such names), so every
// name accepted here is accepted by dpkg.
func ValidatePackageName(s string) error {
	bad := func(format string, a ...any) error {
		return &dpkgRuleError{
			msg:      fmt.Sprintf("package name %q: ", s) + fmt.Sprintf(format, a...),
			sentinel: ErrInvalidField,
		}
	}
	switch {
	case s == "":
		return bad("empty")
	case !nameLowerAlnum(s[0]):
		return bad("must start with a lowercase letter or a digit, not %q", s[0])
	case len(s) < 2:
		return bad("too short (at least 2 characters)")
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case nameLowerAlnum(c) || c == '+' || c == '-' || c == '.':
		case 'A' <= c && c <= 'Z':
			return bad("uppercase %q at byte %d (package names are lowercase)", c, i)
		default:
			return bad("character %q at byte %d not allowed (only a-z, 0-9 and + - .)", c, i)
		}
	}
	return nil
}

// ValidateArchitecture checks the Architecture field of a binary package:
// one Debian architecture name such as amd64, arm64, armhf, or "all".
// Errors wrap ErrInvalidField.
//
// The syntax is dpkg's (a letter or digit, then letters, digits and '-'),
// narrowed to what a binary package can carry: lowercase only, no empty
// part between hyphens, no wildcard ("any", "linux-any", "any-arm64": they
// belong in a source package) and not "source". Every name accepted here
// is accepted by "dpkg --validate-archname".
func ValidateArchitecture(s string) error {
	bad := func(format string, a ...any) error {
		return &dpkgRuleError{
			msg:      fmt.Sprintf("architecture %q: ", s) + fmt.Sprintf(format, a...),
			sentinel: ErrInvalidField,
		}
	}
	if s == "" {
		return bad("empty (use e.g. amd64, arm64, armhf or all)")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case nameLowerAlnum(c) || c == '-':
		case 'A' <= c && c <= 'Z':
			return bad("uppercase %q at byte %d (architecture names are lowercase)", c, i)
		default:
			return bad("character %q at byte %d not allowed (only a-z, 0-9 and -)", c, i)
		}
	}
	for _, part := range strings.Split(s, "-") {
		switch part {
		case "":
			return bad("empty part between hyphens")
		case "any":
			return bad("a wildcard is not an architecture; a binary package names one architecture such as amd64, arm64, armhf, or all")
		}
	}
	if s == "source" {
		return bad("not a binary architecture; use e.g. amd64, arm64, armhf or all")
	}
	return nil
}

func nameLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
