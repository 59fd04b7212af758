package bump

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// pyGlob expands pattern (slash-separated, relative to dir unless absolute)
// like Python's glob.glob(pattern, recursive=True), which bump2version uses
// for [bumpversion:glob:…]: '*', '?' and '[…]' ('[!…]' negates) within one
// name, "**" alone as a name for any number of directories, and names
// starting with '.' matched only by patterns starting with '.'. Results are
// sorted (Python returns them in directory order).
func pyGlob(dir, pattern string) []string {
	if !hasMagic(pattern) {
		if _, err := os.Lstat(joinDir(dir, pattern)); err == nil {
			return []string{pattern}
		}
		return nil
	}
	prefix, parts := "", strings.Split(pattern, "/")
	if strings.HasPrefix(pattern, "/") {
		prefix, parts = "/", parts[1:]
	}
	var out []string
	seen := map[string]bool{}
	var walk func(rel string, parts []string)
	walk = func(rel string, parts []string) {
		if len(parts) == 0 {
			if !seen[rel] {
				seen[rel] = true
				out = append(out, rel)
			}
			return
		}
		p, rest := parts[0], parts[1:]
		switch {
		case p == "**":
			walk(rel, rest)
			for _, name := range listDir(dir, rel) {
				if strings.HasPrefix(name, ".") {
					continue
				}
				child := join(rel, name)
				if st, err := os.Stat(joinDir(dir, child)); err == nil && st.IsDir() {
					walk(child, parts)
				} else if len(rest) == 0 {
					walk(child, rest)
				}
			}
		case hasMagic(p):
			re := fnmatchRegexp(p)
			for _, name := range listDir(dir, rel) {
				if strings.HasPrefix(name, ".") && !strings.HasPrefix(p, ".") {
					continue
				}
				if re.MatchString(name) {
					walk(join(rel, name), rest)
				}
			}
		default:
			child := join(rel, p)
			if _, err := os.Lstat(joinDir(dir, child)); err == nil {
				walk(child, rest)
			}
		}
	}
	walk(prefix, parts)
	sort.Strings(out)
	return out
}

func hasMagic(s string) bool { return strings.ContainsAny(s, "*?[") }

func join(rel, name string) string {
	if rel == "" {
		return name
	}
	return path.Join(rel, name)
}

// joinDir makes a pattern-relative path a file system path.
func joinDir(dir, rel string) string {
	if filepath.IsAbs(filepath.FromSlash(rel)) {
		return filepath.FromSlash(rel)
	}
	return filepath.Join(dir, filepath.FromSlash(rel))
}

func listDir(dir, rel string) []string {
	p := dir
	if rel != "" {
		p = joinDir(dir, rel)
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names
}

// fnmatchRegexp translates one fnmatch pattern as Python's fnmatch does.
func fnmatchRegexp(p string) *regexp.Regexp {
	var sb strings.Builder
	sb.WriteString(`^(?s:`)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			sb.WriteString(`.*`)
		case '?':
			sb.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(p) && p[j] == '!' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				sb.WriteString(`\[`)
				continue
			}
			body := p[i+1 : j]
			neg := strings.HasPrefix(body, "!")
			if neg {
				body = body[1:]
			}
			body = strings.ReplaceAll(body, `\`, `\\`)
			if neg {
				sb.WriteString("[^" + body + "]")
			} else if strings.HasPrefix(body, "^") {
				sb.WriteString(`[\` + body + "]")
			} else {
				sb.WriteString("[" + body + "]")
			}
			i = j
		default:
			r, n := utf8.DecodeRuneInString(p[i:])
			sb.WriteString(regexp.QuoteMeta(string(r)))
			i += n - 1
		}
	}
	sb.WriteString(`)$`)
	re, err := regexp.Compile(sb.String())
	if err != nil {
		return regexp.MustCompile(`^` + regexp.QuoteMeta(p) + `$`)
	}
	return re
}
