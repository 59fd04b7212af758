package bump

import (
	"fmt"
	"strings"
)

// iniFile is a configuration file read the way Python's configparser reads
// it for bump2version (RawConfigParser for .bumpversion.cfg, ConfigParser
// with "%" interpolation for setup.cfg): option names keep their case,
// "=" and ":" both separate a name from its value, whole-line comments
// start with '#' or ';', there are no inline comments, and a value goes on
// over the following lines that are indented deeper than its first line.
type iniFile struct {
	name     string // file name for messages
	sections []*iniSection
	// interpolate is true for setup.cfg: values are read through
	// configparser's BasicInterpolation ("%%" and "%(name)s").
	interpolate bool
}

type iniSection struct {
	name string
	line int
	opts []*iniOption
}

type iniOption struct {
	key string
	// raw is the value as configparser stores it: continuation lines
	// joined with "\n", each stripped, trailing white space removed.
	raw  string
	line int
}

// section returns the named section or nil.
func (f *iniFile) section(name string) *iniSection {
	for _, s := range f.sections {
		if s.name == name {
			return s
		}
	}
	return nil
}

// option returns the named option or nil.
func (s *iniSection) option(key string) *iniOption {
	if s == nil {
		return nil
	}
	for _, o := range s.opts {
		if o.key == key {
			return o
		}
	}
	return nil
}

// parseINI parses text (already decoded, line endings "\n") as configparser
// does, with its strict duplicate checks. Errors wrap ErrConfig and name the
// file and line.
func parseINI(name, text string, interpolate bool) (*iniFile, error) {
	f := &iniFile{name: name, interpolate: interpolate}
	var (
		cur         *iniSection
		opt         *iniOption
		lines       []string // value lines of opt
		indentLevel int
		bad         []string
	)
	flush := func() {
		if opt != nil {
			opt.raw = pyRstrip(strings.Join(lines, "\n"))
		}
	}
	seenSection := map[string]bool{}
	for i, line := range strings.SplitAfter(text, "\n") {
		lineno := i + 1
		if line == "" {
			continue
		}
		stripped := pyStrip(line)
		comment := strings.HasPrefix(stripped, "#") || strings.HasPrefix(stripped, ";")
		if comment || stripped == "" {
			// An empty line belongs to the value being read (configparser's
			// empty_lines_in_values); trailing ones are dropped when joined.
			if !comment && cur != nil && opt != nil {
				lines = append(lines, "")
			}
			continue
		}
		indent := strings.IndexFunc(line, func(r rune) bool { return !pySpace(r) })
		if cur != nil && opt != nil && indent > indentLevel {
			lines = append(lines, stripped)
			continue
		}
		indentLevel = indent
		if header, ok := iniHeader(stripped); ok {
			flush()
			opt, lines = nil, nil
			if seenSection[header] {
				return nil, fmt.Errorf("%s:%d: %w: section [%s] appears twice (configparser refuses this too): merge the two", name, lineno, ErrConfig, header)
			}
			if header == "DEFAULT" {
				return nil, fmt.Errorf("%s:%d: %w: a [DEFAULT] section is not supported: move its options into the sections that use them", name, lineno, ErrConfig)
			}
			seenSection[header] = true
			cur = &iniSection{name: header, line: lineno}
			f.sections = append(f.sections, cur)
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: %w: %q comes before any [section] header: start the file with [bumpversion]", name, lineno, ErrConfig, trunc(stripped))
		}
		sep := strings.IndexAny(stripped, "=:")
		if sep <= 0 || pyRstrip(stripped[:sep]) == "" {
			// configparser collects these and fails at the end.
			bad = append(bad, fmt.Sprintf("%s:%d: %q", name, lineno, trunc(stripped)))
			continue
		}
		key := pyRstrip(stripped[:sep])
		if cur.option(key) != nil {
			return nil, fmt.Errorf("%s:%d: %w: option %q appears twice in [%s] (configparser refuses this too): keep one", name, lineno, ErrConfig, key, cur.name)
		}
		flush()
		opt = &iniOption{key: key, line: lineno}
		lines = []string{pyStrip(stripped[sep+1:])}
		cur.opts = append(cur.opts, opt)
	}
	flush()
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: %w: lines that are neither a [section], an option (name = value) nor a comment: %s", name, ErrConfig, strings.Join(bad, "; "))
	}
	return f, nil
}

// iniHeader matches configparser's SECTCRE, "\[(?P<header>.+)\]", against a
// stripped line: the header runs to the last ']'.
func iniHeader(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return "", false
	}
	end := strings.LastIndexByte(s, ']')
	if end < 2 {
		return "", false
	}
	return s[1:end], true
}

// get returns the value of an option as configparser's get() does: raw for
// .bumpversion.cfg, interpolated for setup.cfg.
func (f *iniFile) get(s *iniSection, o *iniOption) (string, error) {
	if !f.interpolate {
		return o.raw, nil
	}
	return f.interpolateValue(s, o.key, o.raw, 1, map[string]string{})
}

// maxInterpolationDepth is configparser's MAX_INTERPOLATION_DEPTH.
const maxInterpolationDepth = 10

// maxInterpolated bounds an interpolated value, against references that
// double at every level.
const maxInterpolated = 1 << 20

// interpolateValue is configparser's BasicInterpolation: "%%" is a '%',
// "%(name)s" is the value of option name of the same section.
// memo holds the options already interpolated, so that references that
// fan out at every level cost one evaluation each.
func (f *iniFile) interpolateValue(s *iniSection, key, v string, depth int, memo map[string]string) (string, error) {
	if depth > maxInterpolationDepth {
		return "", fmt.Errorf("%s: %w: option %q in [%s]: interpolation deeper than %d levels (a loop of %%(name)s references?)", f.name, ErrConfig, key, s.name, maxInterpolationDepth)
	}
	var sb strings.Builder
	for {
		p := strings.IndexByte(v, '%')
		if p < 0 {
			sb.WriteString(v)
			return sb.String(), nil
		}
		sb.WriteString(v[:p])
		v = v[p:]
		switch {
		case strings.HasPrefix(v, "%%"):
			sb.WriteByte('%')
			v = v[2:]
		case strings.HasPrefix(v, "%("):
			end := strings.Index(v, ")s")
			if end < 0 {
				return "", fmt.Errorf("%s: %w: option %q in [%s]: bad interpolation %q: write %%%% for a literal '%%'", f.name, ErrConfig, key, s.name, trunc(v))
			}
			name := v[2:end]
			ref := s.option(name)
			if ref == nil {
				return "", fmt.Errorf("%s: %w: option %q in [%s] refers to %%(%s)s, which is not an option of that section", f.name, ErrConfig, key, s.name, name)
			}
			val, ok := memo[name]
			if !ok {
				var err error
				if val, err = f.interpolateValue(s, name, ref.raw, depth+1, memo); err != nil {
					return "", err
				}
				memo[name] = val
			}
			sb.WriteString(val)
			if sb.Len() > maxInterpolated {
				return "", fmt.Errorf("%s: %w: option %q in [%s]: interpolation grows past %d bytes", f.name, ErrConfig, key, s.name, maxInterpolated)
			}
			v = v[end+2:]
		default:
			return "", fmt.Errorf("%s: %w: option %q in [%s]: a lone '%%' in %q (setup.cfg values are interpolated): write %%%% for a literal '%%'", f.name, ErrConfig, key, s.name, trunc(v))
		}
	}
}

// set changes or appends an option of section s (created first in the
// file if missing), as configparser's set() does.
func (f *iniFile) set(secName, key, value string) {
	s := f.section(secName)
	if s == nil {
		s = &iniSection{name: secName}
		f.sections = append([]*iniSection{s}, f.sections...)
	}
	if o := s.option(key); o != nil {
		o.raw = value
		return
	}
	s.opts = append(s.opts, &iniOption{key: key, raw: value})
}

// remove deletes an option if present.
func (f *iniFile) remove(secName, key string) {
	s := f.section(secName)
	if s == nil {
		return
	}
	for i, o := range s.opts {
		if o.key == key {
			s.opts = append(s.opts[:i], s.opts[i+1:]...)
			return
		}
	}
}

// write renders the file as bump2version writes it back: configparser's
// write() ("key = value", continuation lines after "\n\t", a blank line
// after each section, comments gone) with first the section named first
// (bump2version creates [bumpversion] before reading the file), then the
// others in file order; the result is stripped and ends in one "\n".
func (f *iniFile) write(first string) string {
	var sb strings.Builder
	emit := func(s *iniSection) {
		sb.WriteString("[" + s.name + "]\n")
		for _, o := range s.opts {
			sb.WriteString(o.key + " = " + strings.ReplaceAll(o.raw, "\n", "\n\t") + "\n")
		}
		sb.WriteString("\n")
	}
	if s := f.section(first); s != nil {
		emit(s)
	}
	for _, s := range f.sections {
		if s.name != first {
			emit(s)
		}
	}
	return pyStrip(sb.String()) + "\n"
}

// trunc shortens s for an error message.
func trunc(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
