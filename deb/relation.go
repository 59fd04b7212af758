package deb

import (
	"fmt"
	"strings"
)

// RelationFields are the binary package relationship fields dpkg parses.
var RelationFields = []string{"Pre-Depends", "Depends", "Recommends", "Suggests", "Enhances", "Breaks", "Conflicts", "Replaces", "Provides"}

// Relation is one package reference in a relationship field, such as
// "python3:any (>= 3.9)".
type Relation struct {
	Name string
	// ArchQual is the multiarch qualifier after ':' ("any", "native", an
	// architecture), or "".
	ArchQual string
	// Op is one of "<<", "<=", "=", ">=", ">>" (or the obsolete "<", ">"),
	// or "" when no version is given.
	Op      string
	Version Version
}

// String formats the relation as it appears in a control file.
func (r Relation) String() string {
	s := r.Name
	if r.ArchQual != "" {
		s += ":" + r.ArchQual
	}
	if r.Op != "" {
		s += " (" + r.Op + " " + r.Version.String() + ")"
	}
	return s
}

// Alternatives are relations joined by '|': any one satisfies the group.
type Alternatives []Relation

// Relations is a whole relationship field: groups joined by ','.
type Relations []Alternatives

// String formats the field value in canonical form.
func (rs Relations) String() string {
	groups := make([]string, len(rs))
	for i, alt := range rs {
		parts := make([]string, len(alt))
		for j, r := range alt {
			parts[j] = r.String()
		}
		groups[i] = strings.Join(parts, " | ")
	}
	return strings.Join(groups, ", ")
}

// ParseRelations parses the value of the relationship field named field
// with dpkg's rules for binary packages: no architecture restrictions
// ("[amd64]") or build profiles ("<!nocheck>"), alternatives only where dpkg
// allows them, exact versions only in Provides. Obsolete operators ("<",
// ">") are accepted and reported in warnings, as dpkg does. Errors wrap
// ErrInvalidField.
func ParseRelations(field, value string) (Relations, []string, error) {
	var (
		out      Relations
		warnings []string
	)
	noAlternatives := strings.EqualFold(field, "Provides") || strings.EqualFold(field, "Conflicts") ||
		strings.EqualFold(field, "Breaks") || strings.EqualFold(field, "Replaces")
	flat := strings.Join(strings.Fields(value), " ")
	for _, group := range strings.Split(flat, ",") {
		group = strings.TrimSpace(group)
		if group == "" {
			return nil, nil, fmt.Errorf("%w: %s: empty entry between commas in %q (remove the stray comma)", ErrInvalidField, field, flat)
		}
		var alt Alternatives
		choices := strings.Split(group, "|")
		if len(choices) > 1 && noAlternatives {
			return nil, nil, fmt.Errorf("%w: %s: alternatives ('|') are not allowed in this field: %q", ErrInvalidField, field, group)
		}
		for _, c := range choices {
			r, warn, err := parseRelation(field, strings.TrimSpace(c))
			if err != nil {
				return nil, nil, err
			}
			warnings = append(warnings, warn...)
			alt = append(alt, r)
		}
		out = append(out, alt)
	}
	return out, warnings, nil
}

func parseRelation(field, s string) (Relation, []string, error) {
	var r Relation
	var warnings []string
	bad := func(format string, a ...any) (Relation, []string, error) {
		return Relation{}, nil, fmt.Errorf("%w: %s: %s", ErrInvalidField, field, fmt.Sprintf(format, a...))
	}
	if s == "" {
		return bad("empty alternative next to '|'")
	}
	name := s
	rest := ""
	if i := strings.IndexAny(s, " ("); i >= 0 {
		name, rest = s[:i], strings.TrimSpace(s[i:])
	}
	if n, q, ok := strings.Cut(name, ":"); ok {
		name, r.ArchQual = n, q
		if q == "" {
			return bad("empty architecture qualifier after %q", n+":")
		}
		if err := ValidateArchitecture(q); err != nil && q != "any" && q != "native" {
			return bad("bad architecture qualifier %q in %q", q, s)
		}
	}
	if err := ValidatePackageName(name); err != nil {
		return bad("%q is not a valid package name: %v", name, err)
	}
	r.Name = name
	if rest == "" {
		return r, nil, nil
	}
	switch rest[0] {
	case '[':
		return bad("architecture restrictions like %q belong in a source package's debian/control, not in a binary package", rest)
	case '<':
		return bad("build profiles like %q belong in a source package's debian/control, not in a binary package", rest)
	case '(':
	default:
		return bad("unexpected %q after package name %q; write e.g. '%s (>= 1.0)'", rest, name, name)
	}
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return bad("missing ')' in %q", s)
	}
	if tail := strings.TrimSpace(rest[end+1:]); tail != "" {
		return bad("unexpected %q after the version of %q (a ',' or '|' is missing?)", tail, name)
	}
	inner := strings.TrimSpace(rest[1:end])
	op := ""
	for _, o := range []string{"<<", "<=", ">=", ">>", "=", "<", ">"} {
		if strings.HasPrefix(inner, o) {
			op = o
			break
		}
	}
	if op == "" {
		return bad("version relation in %q must start with one of << <= = >= >>", s)
	}
	if op == "<" || op == ">" {
		warnings = append(warnings, fmt.Sprintf("%s: '%s' in %q is obsolete, use '%s=' or '%s%s'", field, op, s, op, op, op))
	}
	if strings.EqualFold(field, "Provides") && op != "=" {
		return bad("only exact versions ('=') may be used in Provides: %q", s)
	}
	vs := strings.TrimSpace(inner[len(op):])
	if vs == "" {
		return bad("missing version after %q in %q", op, s)
	}
	v, err := ParseVersion(vs)
	if err != nil {
		return bad("in %q: %v", s, err)
	}
	r.Op, r.Version = op, v
	return r, warnings, nil
}
