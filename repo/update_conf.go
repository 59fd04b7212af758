package repo

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// UpdateRule is one paragraph of conf/updates (after From inheritance):
// where "update" mirrors packages from and which of them.
type UpdateRule struct {
	Name string
	// Method is the upstream's base URL: file:///path, copy:/path,
	// http:// or https://.
	Method string
	// Suite is the upstream's dists/ directory name; "" is the local
	// codename, and "*/x" becomes "<codename>/x".
	Suite string
	// Components maps upstream to local components (nil: every local
	// component, under its own name).
	Components []Mapping
	// Architectures maps upstream to local architectures (nil: every
	// local binary architecture).
	Architectures []Mapping
	// VerifyRelease lists the keys (16 hex digits or whole fingerprints)
	// one of which must have signed the Release file; a "+" after a key
	// also accepts its subkeys. Nil with BlindTrust only.
	VerifyRelease []KeySpec
	// BlindTrust is "VerifyRelease: blindtrust": no signature is checked.
	BlindTrust bool
	// GetInRelease false fetches Release and Release.gpg only.
	GetInRelease bool
	// Filter, if set, is the FilterFormula packages must match.
	Filter *Filter
	// FilterList, if set, is the parsed FilterList.
	FilterList *FilterList
	// WithDependencies is "WithDependencies:", a lampi-pkg extension:
	// "" (no), "depends" (yes: Pre-Depends and Depends) or "recommends"
	// (also Recommends) — what the packages the filters select need is
	// taken too (see update_deps.go).
	WithDependencies string
	// File and Line locate the paragraph.
	File string
	Line int
}

// Mapping is one "from>to" item of a Components or Architectures field
// (From == To for a plain name).
type Mapping struct{ From, To string }

// KeySpec is one key of VerifyRelease.
type KeySpec struct {
	// ID is the upper-case hex key id (16 digits) or fingerprint (40).
	ID string
	// Subkeys accepts signatures by the key's subkeys ("+").
	Subkeys bool
}

// updateFields are the conf/updates fields lampi-pkg implements; every
// other field reprepro knows (Fallback, Config, Flat, IgnoreRelease: yes,
// IgnoreHashes, UDebComponents, DDebComponents, FilterSrcList,
// ListHook, ListShellHook, DownloadListsAs, OmitExtraSourceOnly) is
// refused with its file and line, never ignored.
var updateFields = map[string]bool{
	"name": true, "from": true, "method": true, "suite": true, "components": true,
	"architectures": true, "verifyrelease": true, "getinrelease": true,
	"ignorerelease": true, "filterformula": true, "filterlist": true,
	"withdependencies": true,
}

var keyIDPattern = regexp.MustCompile(`^(?:[0-9A-F]{16}|[0-9A-F]{40})$`)

// LoadUpdateRules reads confdir/updates (a file, or a directory of
// *.conf files; "!include:" as in conf/distributions). A missing file
// gives no rules. Errors wrap ErrConfig and name file:line and field.
func LoadUpdateRules(confdir string) (map[string]*UpdateRule, error) {
	path := filepath.Join(confdir, "updates")
	ps, err := readConfFile(confdir, path, 0)
	if os.IsNotExist(err) {
		return map[string]*UpdateRule{}, nil
	}
	if err != nil {
		return nil, err
	}
	byName := map[string]*confParagraph{}
	var order []string
	for _, p := range ps {
		for _, f := range p.fields {
			if !updateFields[strings.ToLower(f.Name)] {
				return nil, fmt.Errorf("%s:%d: %w: %s: not implemented by lampi-pkg's update (implemented: Name, From, Method, Suite, Components, Architectures, VerifyRelease, GetInRelease, FilterFormula, FilterList, and lampi-pkg's WithDependencies); remove the field or mirror with reprepro", p.file, f.Line, ErrConfig, f.Name)
			}
		}
		nf, ok := p.get("name")
		if !ok || strings.TrimSpace(nf.Value) == "" {
			return nil, fmt.Errorf("%s:%d: %w: the conf/updates paragraph has no Name (the word a distribution's Update: field refers to)", p.file, p.line, ErrConfig)
		}
		name := strings.TrimSpace(nf.Value)
		if prev := byName[name]; prev != nil {
			return nil, fmt.Errorf("%s:%d: %w: update rule %q is defined twice (first at %s:%d)", p.file, nf.Line, ErrConfig, name, prev.file, prev.line)
		}
		byName[name] = p
		order = append(order, name)
	}
	rules := map[string]*UpdateRule{}
	for _, name := range order {
		u, err := buildUpdateRule(byName, name, 0)
		if err != nil {
			return nil, err
		}
		rules[name] = u
	}
	return rules, nil
}

// buildUpdateRule resolves the rule name, its From chain first: a field
// of the rule overrides the one it inherits.
func buildUpdateRule(byName map[string]*confParagraph, name string, depth int) (*UpdateRule, error) {
	p := byName[name]
	u := &UpdateRule{GetInRelease: true}
	if from, ok := p.get("from"); ok {
		if depth > maxIncludeDepth {
			return nil, fmt.Errorf("%s:%d: %w: From: more than %d rules deep (does a rule derive from itself?)", p.file, from.Line, ErrConfig, maxIncludeDepth)
		}
		parent := strings.TrimSpace(from.Value)
		if byName[parent] == nil {
			return nil, fmt.Errorf("%s:%d: %w: From: no update rule is named %q", p.file, from.Line, ErrConfig, parent)
		}
		if m, ok := p.get("method"); ok {
			return nil, fmt.Errorf("%s:%d: %w: Method: a rule with From takes its Method from %q", p.file, m.Line, ErrConfig, parent)
		}
		base, err := buildUpdateRule(byName, parent, depth+1)
		if err != nil {
			return nil, err
		}
		*u = *base
	}
	u.Name, u.File, u.Line = name, p.file, p.line
	for _, f := range p.fields {
		if err := u.setField(p.file, f); err != nil {
			return nil, err
		}
	}
	if u.Method == "" {
		return nil, fmt.Errorf("%s:%d: %w: update rule %q has no Method (the upstream's URL, e.g. http://deb.debian.org/debian or file:///srv/base)", p.file, p.line, ErrConfig, name)
	}
	if !u.BlindTrust && len(u.VerifyRelease) == 0 {
		return nil, fmt.Errorf("%s:%d: %w: update rule %q has no VerifyRelease: name the key (fingerprint or 16-digit key id) that signs the upstream's Release file; \"VerifyRelease: blindtrust\" accepts it unchecked", p.file, p.line, ErrConfig, name)
	}
	return u, nil
}

// setField applies one field of a conf/updates paragraph.
func (u *UpdateRule) setField(file string, f deb.Field) error {
	v := strings.TrimSpace(f.Value)
	bad := func(why string) error {
		return fmt.Errorf("%s:%d: %w: %s: %s", file, f.Line, ErrConfig, f.Name, why)
	}
	switch strings.ToLower(f.Name) {
	case "name", "from":
	case "method":
		if err := checkMethod(v); err != nil {
			return bad(err.Error())
		}
		u.Method = strings.TrimRight(v, "/")
	case "suite":
		if v == "" || strings.ContainsAny(v, " \t") || strings.Contains(v, "..") {
			return bad(fmt.Sprintf("%q is not a suite name (one word, no \"..\")", v))
		}
		u.Suite = v
	case "components", "architectures":
		m, err := parseMappings(v)
		if err != nil {
			return bad(err.Error())
		}
		if m == nil {
			m = []Mapping{} // an empty field: nothing (nil means all)
		}
		if strings.EqualFold(f.Name, "components") {
			u.Components = m
		} else {
			u.Architectures = m
		}
	case "verifyrelease":
		if err := u.setVerifyRelease(v); err != nil {
			return bad(err.Error())
		}
	case "getinrelease":
		b, err := parseYesNo(v)
		if err != nil {
			return bad(err.Error())
		}
		u.GetInRelease = b
	case "ignorerelease":
		b, err := parseYesNo(v)
		if err != nil {
			return bad(err.Error())
		}
		if b {
			return bad("yes: mirroring without the upstream's Release file (no hashes to check) is not implemented")
		}
	case "filterformula":
		flt, err := ParseFilter(v)
		if err != nil {
			return bad(err.Error())
		}
		u.Filter = flt
	case "filterlist":
		fl, err := parseFilterList(filepath.Dir(file), v)
		if err != nil {
			return bad(err.Error())
		}
		u.FilterList = fl
	case "withdependencies":
		level, err := parseWithDependencies(v)
		if err != nil {
			return bad(err.Error())
		}
		u.WithDependencies = level
	}
	return nil
}

// setVerifyRelease reads VerifyRelease: blindtrust, or the keys (ids or
// fingerprints, "+" for their subkeys too) one of which must have signed
// the upstream's Release.
func (u *UpdateRule) setVerifyRelease(v string) error {
	u.VerifyRelease, u.BlindTrust = nil, false
	if strings.EqualFold(v, "blindtrust") {
		u.BlindTrust = true
		return nil
	}
	for _, k := range strings.FieldsFunc(v, func(r rune) bool { return r == '|' || r == ' ' || r == '\t' || r == '\n' }) {
		ks := KeySpec{}
		if strings.HasSuffix(k, "+") {
			k, ks.Subkeys = strings.TrimSuffix(k, "+"), true
		}
		if strings.HasSuffix(k, "!") {
			return fmt.Errorf("%q: accepting revoked or expired keys (\"!\") is not implemented; renew the key or name a valid one", k+"!")
		}
		ks.ID = strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(k, "0x"), "0X"))
		if !keyIDPattern.MatchString(ks.ID) {
			return fmt.Errorf("%q is neither a 16-digit key id nor a 40-digit fingerprint (or blindtrust)", k)
		}
		u.VerifyRelease = append(u.VerifyRelease, ks)
	}
	if len(u.VerifyRelease) == 0 {
		return fmt.Errorf("empty: name the signing key, or write blindtrust to check nothing")
	}
	return nil
}

// checkMethod accepts the URL schemes update can fetch from.
func checkMethod(v string) error {
	if strings.HasPrefix(v, "copy:") {
		v = "file:" + strings.TrimPrefix(v, "copy:")
	}
	uri, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", v, err)
	}
	switch uri.Scheme {
	case "http", "https":
		if uri.Host == "" {
			return fmt.Errorf("%q has no host", v)
		}
	case "file":
		if !filepath.IsAbs(uri.Path) {
			return fmt.Errorf("%q: a file: or copy: method needs an absolute path (file:///srv/base)", v)
		}
	default:
		return fmt.Errorf("%q: scheme %q is not implemented (use file://, copy:, http:// or https://)", v, uri.Scheme)
	}
	return nil
}

// parseMappings reads "main contrib>extra" items.
func parseMappings(v string) ([]Mapping, error) {
	var out []Mapping
	for _, item := range strings.Fields(v) {
		from, to, ok := strings.Cut(item, ">")
		if !ok {
			to = from
		}
		if from == "" || to == "" || strings.Contains(to, ">") {
			return nil, fmt.Errorf("%q: write NAME or UPSTREAM>LOCAL", item)
		}
		if err := checkName(from); err != nil {
			return nil, err
		}
		if err := checkName(to); err != nil {
			return nil, err
		}
		out = append(out, Mapping{From: from, To: to})
	}
	return out, nil
}

// parseYesNo reads a reprepro boolean field.
func parseYesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true", "1":
		return true, nil
	case "no", "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q: write yes or no", v)
}
