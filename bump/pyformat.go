package bump

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// bump2version's templates (serialize, search, replace, message, tag_name)
// are Python format strings: "{major}.{minor}", "{now:%Y-%m-%d}", with
// "{{" and "}}" for literal braces. This file implements the part of
// str.format that such templates use.

// pyField is one replacement field of a format string.
type pyField struct {
	name string
	spec string
}

// pyPiece is literal text followed by an optional field.
type pyPiece struct {
	lit   string
	field *pyField
}

// errMissingKey is returned (wrapped) when a template names a key the
// context does not have, Python's KeyError.
var errMissingKey = errors.New("missing key")

// parsePyFormat splits a format string as string.Formatter().parse does.
func parsePyFormat(s string) ([]pyPiece, error) {
	var out []pyPiece
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return nil, fmt.Errorf("template %q: single '}' (write }} for a literal brace)", s)
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '{':
			depth, j := 1, i+1
			for ; j < len(s) && depth > 0; j++ {
				switch s[j] {
				case '{':
					depth++
				case '}':
					depth--
				}
			}
			if depth > 0 {
				return nil, fmt.Errorf("template %q: '{' without its '}' (write {{ for a literal brace)", s)
			}
			f, err := parsePyField(s, s[i+1:j-1])
			if err != nil {
				return nil, err
			}
			out = append(out, pyPiece{lit: lit.String(), field: f})
			lit.Reset()
			i = j - 1
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		out = append(out, pyPiece{lit: lit.String()})
	}
	return out, nil
}

func parsePyField(tmpl, body string) (*pyField, error) {
	name, spec := body, ""
	if k := strings.IndexAny(body, ":!"); k >= 0 {
		name, spec = body[:k], body[k+1:]
		if body[k] == '!' {
			return nil, fmt.Errorf("template %q: conversions such as {%s} are not supported", tmpl, body)
		}
	}
	switch {
	case name == "" || name[0] >= '0' && name[0] <= '9':
		return nil, fmt.Errorf("template %q: positional field {%s}: name a version part or a key such as {current_version}", tmpl, body)
	case strings.ContainsAny(name, ".["):
		return nil, fmt.Errorf("template %q: attribute or index lookups such as {%s} are not supported", tmpl, body)
	case strings.ContainsAny(spec, "{}"):
		return nil, fmt.Errorf("template %q: nested fields in {%s} are not supported", tmpl, body)
	}
	return &pyField{name: name, spec: spec}, nil
}

// pyLabels returns the field names of a template in order, as
// bump2version's labels_for_format does; an unparsable template has none.
func pyLabels(tmpl string) []string {
	pieces, err := parsePyFormat(tmpl)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range pieces {
		if p.field != nil {
			out = append(out, p.field.name)
		}
	}
	return out
}

// lookupFunc resolves a template key: a string, a *part, a time.Time
// (Python's naive datetime) or an int.
type lookupFunc func(name string) (any, bool, error)

// pyFormat renders tmpl with the values lookup gives.
func pyFormat(tmpl string, lookup lookupFunc) (string, error) {
	pieces, err := parsePyFormat(tmpl)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, p := range pieces {
		sb.WriteString(p.lit)
		if p.field == nil {
			continue
		}
		v, ok, err := lookup(p.field.name)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("template %q: %w {%s}", tmpl, errMissingKey, p.field.name)
		}
		s, err := formatValue(v, p.field.spec)
		if err != nil {
			return "", fmt.Errorf("template %q: {%s}: %w", tmpl, p.field.name, err)
		}
		sb.WriteString(s)
	}
	return sb.String(), nil
}

func formatValue(v any, spec string) (string, error) {
	switch v := v.(type) {
	case *part:
		// bump2version's VersionPart.__format__ ignores the spec.
		return v.value(), nil
	case time.Time:
		if spec == "" {
			return pyDatetimeStr(v), nil
		}
		return strftime(v, spec)
	case string:
		if spec != "" {
			return "", fmt.Errorf("format spec %q on a string is not supported", spec)
		}
		return v, nil
	case int:
		if spec != "" {
			return "", fmt.Errorf("format spec %q on a number is not supported", spec)
		}
		return strconv.Itoa(v), nil
	}
	return fmt.Sprint(v), nil
}

// pyDatetimeStr is str() of a naive datetime.
func pyDatetimeStr(t time.Time) string {
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.000000")
}

// strftime formats t like Python's datetime.strftime on glibc for the
// common directives. now and utcnow are naive, so %z and %Z are empty.
func strftime(t time.Time, f string) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			sb.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			sb.WriteString(strconv.Itoa(t.Year()))
		case 'y':
			fmt.Fprintf(&sb, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&sb, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&sb, "%02d", t.Day())
		case 'e':
			fmt.Fprintf(&sb, "%2d", t.Day())
		case 'H':
			fmt.Fprintf(&sb, "%02d", t.Hour())
		case 'I':
			fmt.Fprintf(&sb, "%02d", (t.Hour()+11)%12+1)
		case 'M':
			fmt.Fprintf(&sb, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&sb, "%02d", t.Second())
		case 'f':
			fmt.Fprintf(&sb, "%06d", t.Nanosecond()/1000)
		case 'j':
			fmt.Fprintf(&sb, "%03d", t.YearDay())
		case 'p':
			sb.WriteString(t.Format("PM"))
		case 'a':
			sb.WriteString(t.Format("Mon"))
		case 'A':
			sb.WriteString(t.Format("Monday"))
		case 'b', 'h':
			sb.WriteString(t.Format("Jan"))
		case 'B':
			sb.WriteString(t.Format("January"))
		case 'u':
			sb.WriteString(strconv.Itoa((int(t.Weekday())+6)%7 + 1))
		case 'w':
			sb.WriteString(strconv.Itoa(int(t.Weekday())))
		case 'F':
			sb.WriteString(t.Format("2006-01-02"))
		case 'T':
			sb.WriteString(t.Format("15:04:05"))
		case 's':
			sb.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'z', 'Z':
		case '%':
			sb.WriteByte('%')
		default:
			return "", fmt.Errorf("strftime directive %%%c is not supported (use %%Y %%m %%d %%H %%M %%S and the like)", f[i])
		}
	}
	return sb.String(), nil
}
