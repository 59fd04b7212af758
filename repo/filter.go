package repo

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// Filter is a parsed reprepro formula (listfilter, copyfilter):
//
//	Package (= hi), Version (>= 0.2)
//	Section (== admin) | !Source
//	$Architecture (== armhf), Package (% lampi-*)
//
// Terms "Field (op value)" or "Field" (present) are combined with '!'
// (not), '|' (or) and ',' (and), binding in that order, with parentheses.
// Operators: = == != << <= >= >> (< and > mean <= and >=, as reprepro
// reads them), % and !% (shell glob). Version, $Version and
// $SourceVersion compare as dpkg versions; other fields as strings.
type Filter struct {
	root node
	src  string
}

type node interface {
	eval(e *filterEntry) bool
}

type andNode []node
type orNode []node
type notNode struct{ n node }
type termNode struct {
	field, op, value string
	glob             *regexp.Regexp
}

func (a andNode) eval(e *filterEntry) bool {
	for _, n := range a {
		if !n.eval(e) {
			return false
		}
	}
	return true
}

func (o orNode) eval(e *filterEntry) bool {
	for _, n := range o {
		if n.eval(e) {
			return true
		}
	}
	return false
}

func (n notNode) eval(e *filterEntry) bool { return !n.n.eval(e) }

// filterEntry is an Entry with its stanza parsed on demand.
type filterEntry struct {
	*Entry
	p *deb.Paragraph
}

func (e *filterEntry) field(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "$version":
		return e.Version, true
	case "$architecture":
		return e.Target.Arch, true
	case "$component":
		return e.Target.Component, true
	case "$packagetype":
		return "deb", true
	case "$source", "$sourceversion":
		src, ver := e.Package, e.Version
		if s, ok := e.field("Source"); ok {
			name, rest, _ := strings.Cut(s, " ")
			src = name
			if v := strings.Trim(strings.TrimSpace(rest), "()"); v != "" {
				ver = v
			}
		}
		if strings.EqualFold(name, "$source") {
			return src, true
		}
		return ver, true
	}
	if e.p == nil {
		p, err := deb.ParseControl(bytes.NewReader(e.Stanza), "stanza")
		if err != nil {
			p = &deb.Paragraph{}
		}
		e.p = p
	}
	return e.p.Lookup(name)
}

func (t *termNode) eval(e *filterEntry) bool {
	v, ok := e.field(t.field)
	if t.op == "" {
		return ok
	}
	if !ok {
		return t.op == "!=" || t.op == "!%"
	}
	switch t.op {
	case "%":
		return t.glob.MatchString(v)
	case "!%":
		return !t.glob.MatchString(v)
	}
	c := compareField(t.field, v, t.value)
	switch t.op {
	case "=", "==":
		return c == 0
	case "!=":
		return c != 0
	case "<<":
		return c < 0
	case "<=", "<":
		return c <= 0
	case ">>":
		return c > 0
	case ">=", ">":
		return c >= 0
	}
	return false
}

func compareField(field, a, b string) int {
	switch strings.ToLower(field) {
	case "version", "$version", "$sourceversion":
		va, erra := deb.ParseVersion(a)
		vb, errb := deb.ParseVersion(b)
		if erra == nil && errb == nil {
			return va.Compare(vb)
		}
	}
	return strings.Compare(a, b)
}

// Match reports whether e satisfies the formula.
func (f *Filter) Match(e *Entry) bool { return f.root.eval(&filterEntry{Entry: e}) }

// String returns the formula as given.
func (f *Filter) String() string { return f.src }

// ParseFilter parses a formula. Errors wrap ErrFilter and point at the
// offending character.
func ParseFilter(s string) (*Filter, error) {
	p := &filterParser{s: s}
	n, err := p.and()
	if err == nil {
		p.space()
		if p.i < len(p.s) {
			err = p.errf("unexpected %q", p.s[p.i])
		}
	}
	if err != nil {
		return nil, err
	}
	return &Filter{root: n, src: s}, nil
}

type filterParser struct {
	s string
	i int
}

func (p *filterParser) errf(format string, a ...any) error {
	return fmt.Errorf("%w: %q at character %d: %s", ErrFilter, p.s, p.i+1, fmt.Sprintf(format, a...))
}

func (p *filterParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *filterParser) peek() byte {
	p.space()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *filterParser) and() (node, error) {
	var list andNode
	for {
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		list = append(list, n)
		if p.peek() != ',' {
			break
		}
		p.i++
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return list, nil
}

func (p *filterParser) or() (node, error) {
	var list orNode
	for {
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		list = append(list, n)
		if p.peek() != '|' {
			break
		}
		p.i++
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return list, nil
}

func (p *filterParser) unary() (node, error) {
	switch p.peek() {
	case '!':
		p.i++
		n, err := p.unary()
		return notNode{n}, err
	case '(':
		p.i++
		n, err := p.and()
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, p.errf("expected ')'")
		}
		p.i++
		return n, nil
	case 0:
		return nil, p.errf("unexpected end of the formula; expected a field name")
	}
	return p.term()
}

func (p *filterParser) term() (node, error) {
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(" \t\n(),|!", rune(p.s[p.i])) {
		p.i++
	}
	t := &termNode{field: p.s[start:p.i]}
	if t.field == "" {
		return nil, p.errf("expected a field name")
	}
	if p.peek() != '(' {
		return t, nil
	}
	p.i++
	p.space()
	for _, op := range []string{"<<", "<=", ">>", ">=", "==", "!=", "!%", "=", "<", ">", "%"} {
		if strings.HasPrefix(p.s[p.i:], op) {
			t.op = op
			p.i += len(op)
			break
		}
	}
	if t.op == "" {
		return nil, p.errf("expected an operator (= == != << <= >= >> %% !%%) after %q", t.field+" (")
	}
	end := strings.IndexByte(p.s[p.i:], ')')
	if end < 0 {
		p.i = len(p.s)
		return nil, p.errf("unexpected end of the formula; expected ')'")
	}
	t.value = strings.TrimSpace(p.s[p.i : p.i+end])
	p.i += end + 1
	if t.value == "" {
		return nil, p.errf("empty value after %q", t.op)
	}
	if t.op == "%" || t.op == "!%" {
		t.glob = globRegexp(t.value)
	}
	return t, nil
}

// globRegexp turns a shell glob (* ? [...]) into an anchored regexp.
func globRegexp(g string) *regexp.Regexp {
	// Field values are text; a pattern that is not valid UTF-8 could not
	// compile even quoted, so its invalid bytes become U+FFFD (and match
	// nothing but themselves).
	g = strings.ToValidUTF8(g, "\uFFFD")
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			if j := strings.IndexByte(g[i+1:], ']'); j >= 0 {
				class := g[i+1 : i+1+j]
				if strings.HasPrefix(class, "!") {
					class = "^" + class[1:]
				}
				b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
				i += j + 1
				continue
			}
			b.WriteString(`\[`)
		default:
			b.WriteString(regexp.QuoteMeta(g[i : i+1]))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return regexp.MustCompile("^" + regexp.QuoteMeta(g) + "$")
	}
	return re
}
