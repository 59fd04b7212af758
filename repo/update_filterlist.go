package repo

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// FilterList is a parsed FilterList field of conf/updates: a fallback
// action and list files of "name action" lines (dpkg --get-selections
// style); the first file naming a package decides.
type FilterList struct {
	Fallback string
	files    []map[string]listAction
}

// listAction is one line of a filter list: an action, or "= version"
// (Version set).
type listAction struct {
	Action, Version string
}

// filterActions are the implemented FilterList actions. reprepro's
// "supersede" (delete a local package the upstream has caught up with)
// is refused; "Update: -" is the way to delete what upstreams dropped.
var filterActions = map[string]bool{
	"install": true, "upgradeonly": true, "deinstall": true, "purge": true,
	"hold": true, "warning": true, "error": true,
}

func checkFilterAction(a string) error {
	if a == "supersede" {
		return fmt.Errorf("action supersede is not implemented (to delete what the upstreams no longer offer, start the distribution's Update field with \"-\")")
	}
	if !filterActions[a] {
		return fmt.Errorf("unknown action %q (install, upgradeonly, deinstall, purge, hold, warning, error or \"= VERSION\")", a)
	}
	return nil
}

// parseFilterList reads "FALLBACK FILE…", files relative to confdir.
func parseFilterList(confdir, v string) (*FilterList, error) {
	words := strings.Fields(v)
	if len(words) < 2 {
		return nil, fmt.Errorf("%q: write the fallback action and at least one list file (e.g. \"deinstall base.list\")", v)
	}
	if err := checkFilterAction(words[0]); err != nil {
		return nil, err
	}
	fl := &FilterList{Fallback: words[0]}
	for _, name := range words[1:] {
		m, err := readFilterListFile(confPath(confdir, strings.TrimPrefix(name, "+c/")))
		if err != nil {
			return nil, err
		}
		fl.files = append(fl.files, m)
	}
	return fl, nil
}

func readFilterListFile(path string) (map[string]listAction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("filter list: %w", err)
	}
	defer f.Close()
	m := map[string]listAction{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		w := strings.Fields(line)
		var a listAction
		switch {
		case len(w) == 2 && strings.HasPrefix(w[1], "=") && len(w[1]) > 1:
			a.Version = w[1][1:]
		case len(w) == 3 && w[1] == "=":
			a.Version = w[2]
		case len(w) == 2:
			if err := checkFilterAction(w[1]); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			a.Action = w[1]
		default:
			return nil, fmt.Errorf("%s:%d: %q: write \"NAME ACTION\"", path, n, line)
		}
		if _, dup := m[w[0]]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed twice", path, n, w[0])
		}
		m[w[0]] = a
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// action returns what to do with version of the package name.
func (fl *FilterList) action(name, version string) string {
	for _, m := range fl.files {
		a, ok := m[name]
		if !ok {
			continue
		}
		if a.Version == "" {
			return a.Action
		}
		if a.Version == version {
			return "install"
		}
	}
	return fl.Fallback
}
