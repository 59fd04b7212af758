package deb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Field is one field of a deb822 paragraph. Value holds the text after the
// colon with surrounding white space removed; a multi-line value keeps its
// continuation lines verbatim after a "\n" (each starting with a space or a
// tab), e.g. "short summary\n Long text.\n .\n More.".
type Field struct {
	Name  string
	Value string
	// Line is the 1-based line of the field name in the parsed file, or 0
	// for fields added by code.
	Line int
}

// Paragraph is an ordered deb822 paragraph: a control file, one stanza of a
// Packages index, a Release file. Field names compare case-insensitively,
// as dpkg and apt do; the original spelling and order are kept.
type Paragraph struct {
	Fields []Field
}

// Lookup returns the value of the named field and whether it is present.
func (p *Paragraph) Lookup(name string) (string, bool) {
	if i := p.index(name); i >= 0 {
		return p.Fields[i].Value, true
	}
	return "", false
}

// Get returns the value of the named field, or "" if it is absent.
func (p *Paragraph) Get(name string) string {
	v, _ := p.Lookup(name)
	return v
}

// Field returns the named field (with its line number) and whether it exists.
func (p *Paragraph) Field(name string) (Field, bool) {
	if i := p.index(name); i >= 0 {
		return p.Fields[i], true
	}
	return Field{}, false
}

// Set replaces the value of the named field in place, or appends the field
// if it is absent.
func (p *Paragraph) Set(name, value string) {
	if i := p.index(name); i >= 0 {
		p.Fields[i].Value = value
		return
	}
	p.Fields = append(p.Fields, Field{Name: name, Value: value})
}

// SetAfter sets the named field; if it is absent it is inserted right after
// the field named after (or appended when that one is absent too).
func (p *Paragraph) SetAfter(after, name, value string) {
	if i := p.index(name); i >= 0 {
		p.Fields[i].Value = value
		return
	}
	i := p.index(after)
	if i < 0 {
		p.Fields = append(p.Fields, Field{Name: name, Value: value})
		return
	}
	p.Fields = append(p.Fields, Field{})
	copy(p.Fields[i+2:], p.Fields[i+1:])
	p.Fields[i+1] = Field{Name: name, Value: value}
}

// Delete removes the named field if present.
func (p *Paragraph) Delete(name string) {
	if i := p.index(name); i >= 0 {
		p.Fields = append(p.Fields[:i], p.Fields[i+1:]...)
	}
}

// Clone returns a deep copy of p.
func (p *Paragraph) Clone() *Paragraph {
	return &Paragraph{Fields: append([]Field(nil), p.Fields...)}
}

func (p *Paragraph) index(name string) int {
	for i, f := range p.Fields {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

// WriteTo writes the paragraph in deb822 form, one "Name: value" line per
// field (continuation lines as stored), ending with a newline and no
// trailing blank line.
func (p *Paragraph) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	for _, f := range p.Fields {
		b.WriteString(f.Name)
		b.WriteByte(':')
		if f.Value != "" && f.Value[0] != '\n' {
			b.WriteByte(' ')
		}
		b.WriteString(f.Value)
		b.WriteByte('\n')
	}
	return b.WriteTo(w)
}

// String returns the paragraph as WriteTo writes it.
func (p *Paragraph) String() string {
	var b strings.Builder
	p.WriteTo(&b)
	return b.String()
}

// ParseControl parses a binary package control file: exactly one paragraph,
// as dpkg-deb requires. Blank lines before the paragraph and after it are
// allowed; a second paragraph is an error. Errors wrap ErrSyntax and name
// filename and the line.
func ParseControl(r io.Reader, filename string) (*Paragraph, error) {
	ps, err := parseParagraphs(r, filename, parseOptions{strict: true})
	if err != nil {
		return nil, err
	}
	switch len(ps) {
	case 0:
		return nil, fmt.Errorf("%s: %w: the file is empty; a control file needs at least Package, Version, Architecture, Maintainer and Description", filename, ErrSyntax)
	case 1:
		return ps[0], nil
	default:
		return nil, fmt.Errorf("%s:%d: %w: a second paragraph starts here, but a control file holds exactly one (remove the blank line above it)", filename, ps[1].Fields[0].Line, ErrSyntax)
	}
}

// ParseParagraphs parses a file of blank-line separated paragraphs, such as
// a Packages index or a Release file. Lines starting with '#' are not
// comments here (dpkg and apt do not allow them in these files).
func ParseParagraphs(r io.Reader, filename string) ([]*Paragraph, error) {
	return parseParagraphs(r, filename, parseOptions{})
}

// ParseOptions widens what [ParseParagraphsOptions] accepts, for deb822
// files that people write by hand rather than tools, such as apt's
// .sources files (sources.list(5)).
type ParseOptions struct {
	// Comments skips lines starting with '#' wherever they are, also
	// between a field's continuation lines; a paragraph still ends only
	// at a blank line. (A line starting with white space then '#' is a
	// continuation line, as for apt.)
	Comments bool
	// Tolerant accepts a last line without a newline and lines ending in
	// "\r\n" (the "\r" is dropped), as apt does for its configuration.
	Tolerant bool
}

// ParseParagraphsOptions parses like [ParseParagraphs], widened by opts.
func ParseParagraphsOptions(r io.Reader, filename string, opts ParseOptions) ([]*Paragraph, error) {
	return parseParagraphs(r, filename, parseOptions{ParseOptions: opts})
}

// parseOptions adds strict, for control files: no white-space-only line
// inside a paragraph, no field name starting with '#'.
type parseOptions struct {
	ParseOptions
	strict bool
}

// maxLine bounds one line of a control file; dpkg has no such limit, but a
// hostile file must not make us allocate without bound.
const maxLine = 1 << 20

func parseParagraphs(r io.Reader, filename string, opts parseOptions) ([]*Paragraph, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(scanLinesKeepEOL)
	var (
		out  []*Paragraph
		cur  *Paragraph
		line int
	)
	errf := func(format string, a ...any) error {
		return fmt.Errorf("%s:%d: %w: %s", filename, line, ErrSyntax, fmt.Sprintf(format, a...))
	}
	for sc.Scan() {
		line++
		text, end, msg := lineText(sc.Text(), opts)
		if msg != "" {
			return nil, errf("%s", msg)
		}
		if end {
			break
		}
		if opts.Comments && strings.HasPrefix(text, "#") {
			continue
		}
		if strings.TrimSpace(text) == "" {
			if text != "" && cur != nil && opts.strict {
				return nil, errf("line holds only white space inside field %q; use ' .' for an empty line in a multi-line value, or delete the line", cur.Fields[len(cur.Fields)-1].Name)
			}
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		if text[0] == ' ' || text[0] == '\t' {
			if cur == nil {
				return nil, errf("continuation line (starting with white space) before any field; remove the leading white space")
			}
			f := &cur.Fields[len(cur.Fields)-1]
			f.Value += "\n" + strings.TrimRight(text, " \t")
			continue
		}
		name, value, ok := strings.Cut(text, ":")
		if !ok {
			return nil, errf("%q is not a field: expected 'Name: value'", trunc(text))
		}
		if msg := checkFieldName(name, opts); msg != "" {
			return nil, errf("%s", msg)
		}
		if cur == nil {
			cur = &Paragraph{}
		}
		if prev, dup := cur.Field(name); dup {
			return nil, errf("duplicate field %q (first at line %d); keep one", name, prev.Line)
		}
		cur.Fields = append(cur.Fields, Field{Name: name, Value: strings.Trim(value, " \t"), Line: line})
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("%s:%d: %w: line longer than %d bytes", filename, line+1, ErrSyntax, maxLine)
		}
		return nil, fmt.Errorf("read %s: %w", filename, err)
	}
	if cur != nil {
		out = append(out, cur)
	}
	for _, p := range out {
		for _, f := range p.Fields {
			if f.Value == "" {
				line = f.Line
				return nil, errf("field %q has an empty value; give it a value or remove it", f.Name)
			}
		}
	}
	return out, nil
}

// lineText is the text of one line as the scanner returns it (with its
// "\n"), without the line ending, or end when the input ends here in
// white space without a final newline; msg says what is wrong with the
// line's ending, if anything.
func lineText(raw string, opts parseOptions) (text string, end bool, msg string) {
	if !strings.HasSuffix(raw, "\n") {
		if strings.TrimSpace(raw) == "" {
			return "", true, ""
		}
		if !opts.Tolerant {
			return "", false, "the file does not end with a newline; add one after the last line"
		}
	}
	text = strings.TrimSuffix(raw, "\n")
	if opts.Tolerant {
		text = strings.TrimSuffix(text, "\r")
	}
	if strings.HasSuffix(strings.TrimRight(text, " \t"), "\r") {
		return "", false, "line ends with a carriage return (Windows line endings); convert the file, e.g. with 'sed -i s/\\r$// FILE'"
	}
	return text, false, ""
}

// checkFieldName says what is wrong with a field name, or "" when
// nothing is.
func checkFieldName(name string, opts parseOptions) string {
	switch {
	case name == "":
		return "empty field name before ':'"
	case name[0] == '-':
		return fmt.Sprintf("field name %q cannot start with '-'", name)
	case name[0] == '#' && opts.strict:
		return "comments ('#') are not allowed in a control file"
	case strings.ContainsAny(name, " \t"):
		return fmt.Sprintf("field name %q contains white space; write 'Name: value'", trunc(name))
	}
	for _, c := range []byte(name) {
		if c < 33 || c > 126 {
			return fmt.Sprintf("field name %q contains a character outside printable ASCII", trunc(name))
		}
	}
	return ""
}

// scanLinesKeepEOL splits like bufio.ScanLines but keeps the "\n", so the
// parser can tell a missing final newline.
func scanLinesKeepEOL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
