package bump

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// This file keeps bump2version's model from losing part of a version on
// the way into a file. bump2version reads a version with the first match of
// parse anywhere in it and writes it back with serialize: "--new-version
// 1.5.0~rc1" with the default parse puts 1.5.0~rc1 into current_version but
// 1.5.0 into every file, and a release then publishes a 1.5.0 that clashes
// with the real one later. Here the version is read whole, and a file gets
// it as asked, or a shorter form that sorts before it (a {major}.{minor}
// of 1.5.1); anything else is refused before a file is written.

// preReleaseExample is a configuration that reads and writes '~'
// pre-releases, for messages.
const preReleaseExample = `parse = (?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)(~(?P<release>rc)(?P<rc>\d+))? with serialize = {major}.{minor}.{patch}~{release}{rc} and {major}.{minor}.{patch} (one a line) and a [bumpversion:part:release] with values rc and final and optional_value = final`

// readVersion reads s, a current or new version (what says which), with
// the main parse. Without parse it must be a whole Debian version; with
// parse, the pattern must match all of s.
func (c *Config) readVersion(s, what string) (*version, error) {
	vc := c.main
	if vc.debian {
		v, err := parseDebianVersion(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w (without parse in [bumpversion], versions are Debian versions; give parse and serialize to read others)", ErrVersion, what, err)
		}
		return v, nil
	}
	if _, err := deb.ParseVersion(s); err != nil {
		return nil, fmt.Errorf("%w: %s is not a Debian version: %w", ErrVersion, what, err)
	}
	m := vc.parse.FindStringSubmatchIndex(s)
	if m == nil {
		return nil, fmt.Errorf("%w: %s %q does not match the parse pattern %q of %s", ErrVersion, what, s, vc.parseSrc, c.Path)
	}
	if m[0] != 0 || m[1] != len(s) {
		lost := s[:m[0]] + s[m[1]:]
		hint := "extend parse (and serialize) so that they read and write it"
		if strings.HasPrefix(s[m[1]:], "~") {
			hint = "extend them, e.g. " + preReleaseExample
		}
		return nil, fmt.Errorf("%w: %s %q: parse = %s in %s reads only %q of it, so %q would be lost: remove parse and serialize from [bumpversion] to use lampi-pkg's default, which reads whole Debian versions (epoch, ~pre-release, +build, -revision), or %s", ErrSerialize, what, s, vc.parseSrc, c.Path, s[m[0]:m[1]], lost, hint)
	}
	return vc.parseVersion(s), nil
}

// renderNew writes the new version v (v.original is the version itself) as
// vc writes it, and refuses a rendering that names a later version than v
// in dpkg's order: a file may show 1.5 for 1.5.1, or 1.5.0 for 1:1.5.0-2,
// but not 1.5.0 for 1.5.0~rc1, a later release than the one made. With a
// parse of the configuration's own, whose parts lampi-pkg cannot judge,
// only renderings that leave out a part that is set are checked (so that
// files come out as bump2version writes them otherwise); without parse,
// every rendering is (0.1 written as 0.1.0 is refused too).
func (c *Config) renderNew(vc *versionConfig, v *version, lookup lookupFunc) (string, error) {
	s, tmpl, err := vc.renderTemplate(v, lookup)
	if err != nil || vc.whole {
		return s, err
	}
	shown := pyLabels(tmpl)
	var dropped []string
	for _, l := range v.labels {
		if !slices.Contains(shown, l) && !v.parts[l].isOptional() {
			dropped = append(dropped, l)
		}
	}
	if len(dropped) == 0 && !vc.debian {
		return s, nil
	}
	named := strings.TrimSuffix(strings.TrimPrefix(s, literalPrefix(tmpl)), literalSuffix(tmpl))
	got, err := deb.ParseVersion(named)
	if err != nil {
		if len(dropped) == 0 {
			return s, nil // not a version at all ("1_4_10"), and nothing lost
		}
		return "", fmt.Errorf("%w: serialize %s would write %s as %q, which leaves out %s, and dpkg cannot compare %q with %s, so it may name another release; %s", ErrSerialize, tmpl, v.original, s, joinParts(dropped), named, v.original, c.showingHint(vc, tmpl, dropped))
	}
	if want, err := deb.ParseVersion(v.original); err == nil && got.Compare(want) <= 0 {
		return s, nil
	}
	if len(dropped) == 0 {
		return "", fmt.Errorf("%w: serialize %s would write %s as %q, and %s sorts after %s in dpkg's order: the file would name a later version than the one made; add a template without the parts %s does not have (bump2version picks the last template that shows every part that is set), e.g. serialize = %s then {major}.{minor}, one a line", ErrSerialize, tmpl, v.original, s, named, v.original, v.original, tmpl)
	}
	return "", fmt.Errorf("%w: serialize %s would write %s as %q, which leaves out %s, and %s sorts after %s in dpkg's order: the file would name a later release than the one made; %s", ErrSerialize, tmpl, v.original, s, joinParts(dropped), named, v.original, c.showingHint(vc, tmpl, dropped))
}

// showingHint suggests a serialize that shows the dropped parts.
func (c *Config) showingHint(vc *versionConfig, tmpl string, dropped []string) string {
	if vc.debian {
		// The parts that can be dropped without naming a later version
		// come last (~pre, +build, -revision): show them after the last
		// field.
		i := len(tmpl)
		if labels := pyLabels(tmpl); len(labels) > 0 {
			last := "{" + labels[len(labels)-1] + "}"
			if k := strings.LastIndex(tmpl, last); k >= 0 {
				i = k + len(last)
			}
		}
		return fmt.Sprintf("add a template that shows them, e.g. serialize = %s%s%s, or no serialize at all (the whole version)", tmpl[:i], strings.ReplaceAll(joinParts(dropped), ", ", ""), tmpl[i:])
	}
	for _, t := range c.main.serialize {
		labels := pyLabels(t)
		ok := true
		for _, d := range dropped {
			ok = ok && slices.Contains(labels, d)
		}
		if ok && t != tmpl {
			return fmt.Sprintf("add a template that shows them, as [bumpversion]'s %s does", t)
		}
	}
	return "add a template that shows them"
}

// literalPrefix and literalSuffix are the text of a template before its
// first field and after its last: decoration such as the v of v{major}.
func literalPrefix(tmpl string) string {
	pieces, err := parsePyFormat(tmpl)
	if err != nil || len(pieces) == 0 {
		return ""
	}
	if pieces[0].field != nil {
		return pieces[0].lit
	}
	return ""
}

func literalSuffix(tmpl string) string {
	pieces, err := parsePyFormat(tmpl)
	if err != nil || len(pieces) == 0 {
		return ""
	}
	last := pieces[len(pieces)-1]
	if last.field == nil {
		return last.lit
	}
	return ""
}
