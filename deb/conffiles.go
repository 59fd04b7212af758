package deb

import (
	"fmt"
	"sort"
	"strings"
)

// conffile is one line of DEBIAN/conffiles.
type conffile struct {
	path string
	flag string // "" or "remove-on-upgrade"
	line int
}

func (c conffile) String() string {
	if c.flag != "" {
		return c.flag + " " + c.path
	}
	return c.path
}

// parseConffiles checks the syntax of DEBIAN/conffiles: one absolute path
// per line, optionally preceded by the flag "remove-on-upgrade" (dpkg ≥
// 1.20.1). Blank lines are ignored, as dpkg does.
func parseConffiles(data []byte, p string) ([]string, error) {
	cs, err := conffileLines(data, p)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out, nil
}

func conffileLines(data []byte, p string) ([]conffile, error) {
	var out []conffile
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimRight(line, " \t\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		c := conffile{path: line, line: n}
		if f := strings.Fields(line); len(f) == 2 {
			if f[0] != "remove-on-upgrade" {
				return nil, fmt.Errorf("%w: %s:%d: unknown flag %q; the only flag dpkg knows is 'remove-on-upgrade'", ErrInvalidTree, p, n, f[0])
			}
			c.flag, c.path = f[0], f[1]
		} else if len(f) > 2 {
			return nil, fmt.Errorf("%w: %s:%d: %q: expected one absolute path per line", ErrInvalidTree, p, n, line)
		}
		if !strings.HasPrefix(c.path, "/") {
			return nil, fmt.Errorf("%w: %s:%d: conffile %q is not an absolute path; write it as installed, e.g. /etc/hi/hi.conf", ErrInvalidTree, p, n, c.path)
		}
		if prev, dup := seen[c.path]; dup {
			return nil, fmt.Errorf("%w: %s:%d: conffile %s is listed twice (first at line %d)", ErrInvalidTree, p, n, c.path, prev)
		}
		seen[c.path] = n
		out = append(out, c)
	}
	return out, nil
}

// resolveConffiles merges the listed conffiles with every regular file
// under /etc (what dh_installdeb does) and checks that each listed one is
// a regular file of the payload (and that remove-on-upgrade ones are not).
func resolveConffiles(listed []string, entries []entry) ([]string, error) {
	regular := map[string]bool{}
	var fromEtc []string
	for _, e := range entries {
		if !e.mode.IsRegular() {
			continue
		}
		abs := strings.TrimPrefix(e.name, ".")
		regular[abs] = true
		if strings.HasPrefix(abs, "/etc/") {
			fromEtc = append(fromEtc, abs)
		}
	}
	cs, err := conffileLines([]byte(strings.Join(listed, "\n")), "DEBIAN/conffiles")
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	var plain, removed []string
	for _, c := range cs {
		switch {
		case c.flag != "" && regular[c.path]:
			return nil, fmt.Errorf("%w: DEBIAN/conffiles: %s is marked remove-on-upgrade but is in the payload; remove it from the tree or drop the flag", ErrInvalidTree, c.path)
		case c.flag != "":
			removed = append(removed, c.String())
		case !regular[c.path]:
			return nil, fmt.Errorf("%w: DEBIAN/conffiles: conffile %s is not a regular file in the package tree; add it or remove the line", ErrInvalidTree, c.path)
		default:
			set[c.path] = true
		}
	}
	for _, p := range fromEtc {
		set[p] = true
	}
	for p := range set {
		plain = append(plain, p)
	}
	sort.Strings(plain)
	sort.Strings(removed)
	return append(plain, removed...), nil
}
