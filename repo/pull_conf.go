package repo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// PullRule is one paragraph of conf/pulls: which packages "pull" takes
// from another distribution of the same repository.
type PullRule struct {
	Name string
	// From is the codename of the distribution packages are pulled from.
	From string
	// Components, UDebComponents and DDebComponents are the components
	// of the pulling distribution the rule fills (nil: those of From).
	// A component is never mapped onto another (reprepro cannot either).
	Components, UDebComponents, DDebComponents []string
	// Architectures maps From's architectures onto the pulling
	// distribution's ("from>into"; nil: From's own, unmapped).
	Architectures []Mapping
	// Filter, if set, is the FilterFormula packages must match.
	Filter *Filter
	// FilterList and FilterSrcList, if set, are the parsed lists (see
	// conf/updates); FilterSrcList judges source packages, and binaries
	// by their source when there is no FilterList.
	FilterList, FilterSrcList *FilterList
	// File and Line locate the paragraph.
	File string
	Line int
}

// pullFields are the conf/pulls fields lampi-pkg implements: all that
// reprepro 5.4 knows, plus DDebComponents. Any other field is refused
// with its file and line, as reprepro refuses unknown fields.
var pullFields = map[string]bool{
	"name": true, "from": true, "components": true, "udebcomponents": true,
	"ddebcomponents": true, "architectures": true, "filterformula": true,
	"filterlist": true, "filtersrclist": true,
}

// LoadPullRules reads confdir/pulls (a file, or a directory of *.conf
// files; "!include:" as in conf/distributions). A missing file gives no
// rules. Errors wrap ErrConfig and name file:line and field.
func LoadPullRules(confdir string) (map[string]*PullRule, error) {
	ps, err := readConfFile(confdir, filepath.Join(confdir, "pulls"), 0)
	if os.IsNotExist(err) {
		return map[string]*PullRule{}, nil
	}
	if err != nil {
		return nil, err
	}
	rules := map[string]*PullRule{}
	for _, p := range ps {
		u := &PullRule{File: p.file, Line: p.line}
		for _, f := range p.fields {
			if !pullFields[strings.ToLower(f.Name)] {
				return nil, fmt.Errorf("%s:%d: %w: %s: not a field of conf/pulls (lampi-pkg reads Name, From, Components, UDebComponents, DDebComponents, Architectures, FilterFormula, FilterList, FilterSrcList); remove it", p.file, f.Line, ErrConfig, f.Name)
			}
			if err := u.setField(p.file, f); err != nil {
				return nil, err
			}
		}
		if u.Name == "" {
			return nil, fmt.Errorf("%s:%d: %w: the conf/pulls paragraph has no Name (the word a distribution's Pull: field refers to)", p.file, p.line, ErrConfig)
		}
		if u.From == "" {
			return nil, fmt.Errorf("%s:%d: %w: pull rule %q has no From (the codename of the distribution to pull from)", p.file, p.line, ErrConfig, u.Name)
		}
		if u.Name == "-" {
			return nil, fmt.Errorf("%s:%d: %w: Name: \"-\" is the delete rule of the Pull: field; name the rule otherwise", p.file, p.line, ErrConfig)
		}
		if prev := rules[u.Name]; prev != nil {
			return nil, fmt.Errorf("%s:%d: %w: pull rule %q is defined twice (first at %s:%d)", p.file, p.line, ErrConfig, u.Name, prev.File, prev.Line)
		}
		rules[u.Name] = u
	}
	return rules, nil
}

// setField applies one field of a conf/pulls paragraph.
func (u *PullRule) setField(file string, f deb.Field) error {
	v := strings.TrimSpace(f.Value)
	bad := func(why string) error {
		return fmt.Errorf("%s:%d: %w: %s: %s", file, f.Line, ErrConfig, f.Name, why)
	}
	switch name := strings.ToLower(f.Name); name {
	case "name", "from":
		if v == "" || strings.ContainsAny(v, " \t\n") {
			return bad(fmt.Sprintf("%q: write one word", v))
		}
		if name == "name" {
			u.Name = v
		} else {
			u.From = v
		}
	case "components", "udebcomponents", "ddebcomponents":
		comps := []string{} // an empty field: nothing (nil means all)
		for _, c := range strings.Fields(v) {
			if strings.Contains(c, ">") {
				return bad(fmt.Sprintf("%q: pull cannot move packages from one component to another (reprepro cannot either); list component names only, and use copy or copyfilter with -C for the rest", c))
			}
			if err := checkName(c); err != nil {
				return bad(err.Error())
			}
			comps = append(comps, c)
		}
		switch name {
		case "components":
			u.Components = comps
		case "udebcomponents":
			u.UDebComponents = comps
		default:
			u.DDebComponents = comps
		}
	case "architectures":
		m, err := parseMappings(v)
		if err != nil {
			return bad(err.Error())
		}
		for _, a := range m {
			if (a.From == SourceArch) != (a.To == SourceArch) {
				return bad(fmt.Sprintf("%s>%s: source packages can only go into the source lists", a.From, a.To))
			}
		}
		if m == nil {
			m = []Mapping{}
		}
		u.Architectures = m
	case "filterformula":
		flt, err := ParseFilter(v)
		if err != nil {
			return bad(err.Error())
		}
		u.Filter = flt
	case "filterlist", "filtersrclist":
		fl, err := parseFilterList(filepath.Dir(file), v)
		if err != nil {
			return bad(err.Error())
		}
		if name == "filterlist" {
			u.FilterList = fl
		} else {
			u.FilterSrcList = fl
		}
	}
	return nil
}
