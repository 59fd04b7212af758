package bump

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
)

// This file is bump2version's version model: a version is a set of named
// parts found by the parse pattern; bumping a part increments it, resets
// the parts after it (in the order of the first serialize template) to
// their first value, and keeps the parts before it; serializing picks a
// template that can show every part that is not at its optional value.

// partConfig says how one part counts: numerically (values == nil) or
// through a list of values.
type partConfig struct {
	values   []string
	first    string
	optional string
}

// defaultPart is a numeric part starting at 0, bump2version's
// NumericVersionPartConfiguration().
var defaultPart = &partConfig{first: "0", optional: "0"}

var firstNumeric = regexp.MustCompile(`^([^0-9]*)([0-9]+)(.*)$`)

// bump returns the value after v.
func (c *partConfig) bump(v string) (string, error) {
	if c.values == nil {
		m := firstNumeric.FindStringSubmatch(v)
		if m == nil {
			return "", fmt.Errorf("%w: value %q has no digits to count up", ErrPart, v)
		}
		n, _ := new(big.Int).SetString(m[2], 10)
		return m[1] + n.Add(n, big.NewInt(1)).String() + m[3], nil
	}
	i := slices.Index(c.values, v)
	switch {
	case i < 0:
		return "", fmt.Errorf("%w: value %q is not one of its values %s", ErrPart, v, strings.Join(c.values, ", "))
	case i == len(c.values)-1:
		return "", fmt.Errorf("%w: value %q is already the last of its values %s", ErrPart, v, strings.Join(c.values, ", "))
	}
	return c.values[i+1], nil
}

// part is one part's value. An empty raw value (a group that did not match)
// stands for the optional value, as in bump2version.
type part struct {
	raw string
	cfg *partConfig
}

func (p *part) value() string {
	if p.raw != "" {
		return p.raw
	}
	return p.cfg.optional
}

func (p *part) isOptional() bool { return p.value() == p.cfg.optional }

// copy keeps the raw value but, exactly like bump2version 1.0.1's
// VersionPart.copy(), not the part's configuration: a kept part counts as
// a plain numeric part when the new current_version is serialized (this
// can change which template is chosen, so it is reproduced on purpose; see
// testdata/compat/kept-part-quirk.txtar).
func (p *part) copy() *part { return &part{raw: p.raw, cfg: defaultPart} }

func (p *part) null() *part { return &part{raw: p.cfg.first, cfg: p.cfg} }

// version is a parsed version: its parts in the parse pattern's group order.
type version struct {
	labels   []string
	parts    map[string]*part
	original string
}

// versionConfig is one parse/serialize/search/replace set: the main one of
// [bumpversion], or a [bumpversion:file:…] section's.
type versionConfig struct {
	parseSrc  string
	parse     *regexp.Regexp
	serialize []string
	search    string
	replace   string
	parts     map[string]*partConfig
	// debian: the configuration has no parse, so versions are read whole
	// as Debian versions (parseDebianVersion) and stepped with Next.
	// whole: there is no serialize either, so the version is written as
	// it is.
	debian, whole bool
}

// order is the part order: the fields of the first serialize template.
func (vc *versionConfig) order() []string {
	if vc.whole {
		return debianOrder
	}
	return pyLabels(vc.serialize[0])
}

// describe says how the configuration writes versions, for messages.
func (vc *versionConfig) describe() string {
	switch {
	case vc.whole:
		return "the whole version (no parse, no serialize)"
	case vc.debian:
		return fmt.Sprintf("no parse, serialize = %s", strings.Join(vc.serialize, " | "))
	}
	return fmt.Sprintf("parse = %s, serialize = %s", vc.parseSrc, strings.Join(vc.serialize, " | "))
}

// parseVersion matches s with the parse pattern (anywhere in s, as
// re.search does); nil when s is empty or does not match. Without parse,
// s must be a whole Debian version.
func (vc *versionConfig) parseVersion(s string) *version {
	if s == "" {
		return nil
	}
	if vc.debian {
		v, err := parseDebianVersion(s)
		if err != nil {
			return nil
		}
		return v
	}
	m := vc.parse.FindStringSubmatchIndex(s)
	if m == nil {
		return nil
	}
	v := &version{parts: map[string]*part{}, original: s}
	for i, name := range vc.parse.SubexpNames() {
		if name == "" || v.parts[name] != nil {
			continue
		}
		raw := ""
		if m[2*i] >= 0 {
			raw = s[m[2*i]:m[2*i+1]]
		}
		cfg := vc.parts[name]
		if cfg == nil {
			cfg = defaultPart
		}
		v.labels = append(v.labels, name)
		v.parts[name] = &part{raw: raw, cfg: cfg}
	}
	return v
}

// bump returns v with the named part bumped; bumped is false when the part
// is not in order (bump2version then leaves every part as it is).
func (v *version) bump(name string, order []string) (nv *version, bumped bool, err error) {
	nv = &version{parts: map[string]*part{}}
	for _, label := range order {
		p, ok := v.parts[label]
		if !ok || nv.parts[label] != nil {
			continue
		}
		switch {
		case label == name:
			raw, err := p.cfg.bump(p.value())
			if err != nil {
				return nil, false, fmt.Errorf("part %q: %w", name, err)
			}
			p, bumped = &part{raw: raw, cfg: p.cfg}, true
		case bumped:
			p = p.null()
		default:
			p = p.copy()
		}
		nv.labels = append(nv.labels, label)
		nv.parts[label] = p
	}
	return nv, bumped, nil
}

// errIncomplete: a template cannot show every part that needs showing.
var errIncomplete = errors.New("template does not show every part")

// render renders v with the first fitting template, as bump2version's
// VersionConfig.serialize: the last template that shows every needed part,
// or the first template when none does. Without serialize (and parse), it
// is v as written.
func (vc *versionConfig) render(v *version, ctx lookupFunc) (string, error) {
	s, _, err := vc.renderTemplate(v, ctx)
	return s, err
}

// renderTemplate is render that also returns the template chosen ("" for
// the whole version).
func (vc *versionConfig) renderTemplate(v *version, ctx lookupFunc) (string, string, error) {
	if vc.whole {
		if v.original == "" {
			return "", "", fmt.Errorf("%w: no version string to write", ErrVersion)
		}
		return v.original, "", nil
	}
	if vc.debian && len(v.labels) == 0 {
		return "", "", shapeError(v.original)
	}
	s, tmpl, err := vc.renderParts(v, ctx)
	if err != nil && vc.debian && errors.Is(err, errMissingKey) {
		err = fmt.Errorf("%w (without parse in [bumpversion], a serialize template may use %s)", err, debianPartsHint)
	}
	return s, tmpl, err
}

func (vc *versionConfig) renderParts(v *version, ctx lookupFunc) (string, string, error) {
	lookup := func(name string) (any, bool, error) {
		if p, ok := v.parts[name]; ok {
			return p, true, nil
		}
		return ctx(name)
	}
	chosen := ""
	for _, tmpl := range vc.serialize {
		err := vc.checkTemplate(tmpl, lookup)
		switch {
		case err == nil:
			chosen = tmpl
		case errors.Is(err, errIncomplete):
			if chosen == "" {
				chosen = tmpl
			}
		default:
			return "", "", err
		}
	}
	s, err := pyFormat(chosen, lookup)
	return s, chosen, err
}

// checkTemplate is bump2version's _serialize with raise_if_incomplete.
func (vc *versionConfig) checkTemplate(tmpl string, lookup lookupFunc) error {
	if _, err := pyFormat(tmpl, lookup); err != nil {
		return err
	}
	need := map[string]bool{}
	foundRequired := false
	for _, k := range vc.order() {
		val, ok, err := lookup(k)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("serialize template %q: %w {%s}", vc.serialize[0], errMissingKey, k)
		}
		p, isPart := val.(*part)
		if !isPart {
			continue
		}
		if !p.isOptional() {
			foundRequired = true
			need[k] = true
		} else if !foundRequired {
			need[k] = true
		}
	}
	shown := map[string]bool{}
	for _, l := range pyLabels(tmpl) {
		shown[l] = true
	}
	for k := range need {
		if !shown[k] {
			return errIncomplete
		}
	}
	return nil
}
