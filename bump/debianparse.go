package bump

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// This file is the default of a configuration without parse: lampi-pkg
// reads current_version and --new-version as whole Debian versions (epoch,
// ~pre-release, +build, -revision) instead of bump2version's three numbers
// found anywhere in the string, and steps the parts with Next.

// DebianParse is the pattern that splits a Debian version into the parts a
// file's own serialize template may show when the configuration has no
// parse: {major}, {minor} and {patch}, and {epoch} ("1:"), {pre} ("~rc1"),
// {build} ("+b1") and {revision} ("-1"), each of the last four with its
// separator, or empty. A version of another shape (four numbers, letters
// after the numbers) is still read whole; only such a template cannot show
// it.
const DebianParse = `^(?P<epoch>[0-9]+:)?(?P<major>[0-9]+)(?:\.(?P<minor>[0-9]+))?(?:\.(?P<patch>[0-9]+))?(?P<pre>~[A-Za-z0-9.~]*)?(?P<build>\+[A-Za-z0-9.+~]*)?(?P<revision>-[A-Za-z0-9.+~]+)?$`

// debianTemplate shows every part of DebianParse; it is what a version
// parsed with it reads as, and the main serialize of a configuration
// without parse and serialize.
const debianTemplate = "{epoch}{major}.{minor}.{patch}{pre}{build}{revision}"

var debianParse = regexp.MustCompile(DebianParse)

// emptyPart is a part that is left out when it has no value: the epoch,
// pre-release, build and revision of DebianParse, which carry their
// separators.
var emptyPart = &partConfig{}

// debianPartConfig says how a part of DebianParse counts.
func debianPartConfig(name string) *partConfig {
	switch name {
	case "major", "minor", "patch":
		return defaultPart
	}
	return emptyPart
}

// parseDebianVersion reads s as a whole Debian version, split into the parts
// of DebianParse when it has their shape (otherwise with no parts). It
// fails unless s is a Debian version written the way dpkg prints it, so that
// the string written into the files is the string dpkg reads.
func parseDebianVersion(s string) (*version, error) {
	v, err := deb.ParseVersion(s)
	if err != nil {
		return nil, err
	}
	if v.String() != s {
		return nil, fmt.Errorf("version %q: dpkg reads it as %s: write it that way", s, v)
	}
	out := &version{parts: map[string]*part{}, original: s}
	m := debianParse.FindStringSubmatchIndex(s)
	if m == nil {
		return out, nil
	}
	for i, name := range debianParse.SubexpNames() {
		if name == "" {
			continue
		}
		raw := ""
		if m[2*i] >= 0 {
			raw = s[m[2*i]:m[2*i+1]]
		}
		out.labels = append(out.labels, name)
		out.parts[name] = &part{raw: raw, cfg: debianPartConfig(name)}
	}
	return out, nil
}

// debianOrder is the part order of DebianParse.
var debianOrder = pyLabels(debianTemplate)

// debianPartsHint describes the parts a template may use without parse.
const debianPartsHint = "{major}, {minor}, {patch}, and {epoch}, {pre}, {build}, {revision} with their separators (1:, ~rc1, +b1, -1)"

// shapeError says that a version cannot be split into the parts of
// DebianParse.
func shapeError(s string) error {
	return fmt.Errorf("%w: %s is not of the form [epoch:]major[.minor[.patch]][~pre][+build][-revision], so a serialize template cannot show it: remove the serialize so that the file gets the whole version, or give [bumpversion] a parse and serialize of your own", ErrVersion, s)
}

// joinParts writes parts as "{a}, {b}".
func joinParts(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("{" + n + "}")
	}
	return b.String()
}
