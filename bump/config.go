package bump

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Defaults of bump2version 1.0.1 when the configuration does not say.
const (
	DefaultParse      = `(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)`
	DefaultSerialize  = "{major}.{minor}.{patch}"
	DefaultSearch     = "{current_version}"
	DefaultReplace    = "{new_version}"
	DefaultTagName    = "v{new_version}"
	DefaultMessage    = "Bump version: {current_version} → {new_version}"
	configSection     = "bumpversion"
	bumpversionCfg    = ".bumpversion.cfg"
	setupCfg          = "setup.cfg"
	deprecatedFilesOp = "files"
)

// Config is a bump2version configuration: the [bumpversion] section of
// .bumpversion.cfg or setup.cfg with its [bumpversion:file:…],
// [bumpversion:glob:…] and [bumpversion:part:…] sections.
type Config struct {
	// Path is the file it was read from, relative to the tree
	// (".bumpversion.cfg" or "setup.cfg").
	Path string
	// CurrentVersion is current_version; CurrentLine its line in Path.
	CurrentVersion string
	CurrentLine    int
	// NewVersion is new_version when the file sets one (rare).
	NewVersion string
	// Commit, Tag, SignTags, AllowDirty and DryRun are the booleans of
	// [bumpversion]; the *Set fields tell whether the file sets them.
	Commit, Tag, SignTags, AllowDirty, DryRun bool
	CommitSet, TagSet                         bool
	// TagName, TagMessage, Message and CommitArgs are the templates of
	// the tag name, the tag message, the commit message and the extra
	// arguments of "git commit" (one per line).
	TagName, TagMessage, Message, CommitArgs string

	main    *versionConfig
	files   []fileSpec
	ini     *iniFile
	newline newlineStyle
}

// fileSpec is one file (or glob) the configuration lists.
type fileSpec struct {
	path    string
	cfg     string // the configuration file
	glob    bool
	section string // e.g. "bumpversion:file:setup.py", for messages
	line    int
	vc      *versionConfig
}

var sectionType = regexp.MustCompile(`^bumpversion:((?P<file>file|glob)(\s*\(\s*(?P<suffix>[^):]+)\)?)?|(?P<part>part)):(?P<value>.+)$`)

// FindConfig returns the configuration file bump2version would read in
// dir: .bumpversion.cfg, else setup.cfg, and whether it exists. A setup.cfg
// without a [bumpversion] section does not count (lampi-pkg then uses its
// Debian defaults; bump2version would fail for lack of current_version).
func FindConfig(dir string) (string, bool, error) {
	p := filepath.Join(dir, bumpversionCfg)
	if _, err := os.Stat(p); err == nil {
		return bumpversionCfg, true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	b, err := os.ReadFile(filepath.Join(dir, setupCfg))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	text, _, _ := decodeText(b)
	for _, line := range strings.Split(text, "\n") {
		if h, ok := iniHeader(pyStrip(line)); ok && h == configSection {
			return setupCfg, true, nil
		}
	}
	return "", false, nil
}

// ParseConfig parses the configuration file named name (".bumpversion.cfg"
// or "setup.cfg", which decides whether "%" interpolation applies) with the
// given content. It checks everything bump2version checks when it loads a
// configuration, and more: the parse pattern must compile and the serialize
// templates must be well formed. Errors wrap ErrConfig.
func ParseConfig(name string, data []byte) (*Config, error) {
	text, nl, ok := decodeText(data)
	if !ok {
		return nil, fmt.Errorf("%s: %w: not UTF-8 text", name, ErrConfig)
	}
	ini, err := parseINI(name, text, filepath.Base(name) == setupCfg)
	if err != nil {
		return nil, err
	}
	c := &Config{Path: name, ini: ini, newline: nl, TagName: DefaultTagName, TagMessage: DefaultMessage, Message: DefaultMessage}
	sec := ini.section(configSection)
	if sec == nil {
		return nil, fmt.Errorf("%s: %w: no [bumpversion] section: add one with current_version = …", name, ErrConfig)
	}
	vals := map[string]string{}
	for _, o := range sec.opts {
		v, err := ini.get(sec, o)
		if err != nil {
			return nil, err
		}
		vals[o.key] = v
	}
	if err := c.setMainOptions(sec, vals); err != nil {
		return nil, err
	}
	if err := c.setMainVersion(sec, vals); err != nil {
		return nil, err
	}
	if err := c.addSections(ini); err != nil {
		return nil, err
	}
	if v, ok := vals[deprecatedFilesOp]; ok {
		for _, p := range strings.Split(v, " ") {
			c.files = append(c.files, fileSpec{path: p, cfg: name, section: "bumpversion", line: optLine(sec, deprecatedFilesOp), vc: c.main})
		}
	}
	return c, nil
}

// setMainOptions sets the versions, the commit and tag options and their
// templates from the [bumpversion] section sec, whose values are vals.
func (c *Config) setMainOptions(sec *iniSection, vals map[string]string) error {
	c.CurrentVersion = vals["current_version"]
	if o := sec.option("current_version"); o != nil {
		c.CurrentLine = o.line
	}
	c.NewVersion = vals["new_version"]
	for key, dst := range map[string]*string{"tag_name": &c.TagName, "tag_message": &c.TagMessage, "message": &c.Message, "commit_args": &c.CommitArgs} {
		if v, ok := vals[key]; ok {
			*dst = v
		}
	}
	for key, dst := range map[string]*bool{"commit": &c.Commit, "tag": &c.Tag, "sign_tags": &c.SignTags, "allow_dirty": &c.AllowDirty, "dry_run": &c.DryRun} {
		v, ok := vals[key]
		if !ok {
			continue
		}
		b, known := map[string]bool{"1": true, "yes": true, "true": true, "on": true, "0": false, "no": false, "false": false, "off": false}[strings.ToLower(v)]
		if !known {
			return fmt.Errorf("%s:%d: %w: %s = %q is not a boolean: use True or False", c.Path, sec.option(key).line, ErrConfig, key, v)
		}
		*dst = b
	}
	_, c.CommitSet = vals["commit"]
	_, c.TagSet = vals["tag"]
	return nil
}

// setMainVersion sets how versions are parsed, written, searched for and
// replaced, from the [bumpversion] section sec. Without parse, versions
// are whole Debian versions (DebianParse); without serialize either, they
// are written as they are.
func (c *Config) setMainVersion(sec *iniSection, vals map[string]string) error {
	mainParse, hasParse := vals["parse"]
	mainSerialize, hasSerialize := []string{DefaultSerialize}, false
	if v, ok := vals["serialize"]; ok {
		mainSerialize, hasSerialize = nonEmptyLines(v, false), true
	}
	c.main = &versionConfig{parseSrc: mainParse, serialize: mainSerialize, search: DefaultSearch, replace: DefaultReplace, parts: map[string]*partConfig{}}
	if !hasParse {
		c.main.parseSrc, c.main.debian = DebianParse, true
		if !hasSerialize {
			c.main.serialize, c.main.whole = nil, true
		}
	}
	if v, ok := vals["search"]; ok {
		c.main.search = v
	}
	if v, ok := vals["replace"]; ok {
		c.main.replace = v
	}
	if err := c.main.check(c.Path, sec.line, "[bumpversion]"); err != nil {
		return err
	}
	var err error
	if c.main.parse, err = compileParse(c.main.parseSrc); err != nil {
		return fmt.Errorf("%s:%d: %w: %w", c.Path, optLine(sec, "parse"), ErrConfig, err)
	}
	return nil
}

// addSections reads the [bumpversion:part:…] sections into the main
// configuration's parts and the [bumpversion:file:…] and
// [bumpversion:glob:…] sections into the files to change.
func (c *Config) addSections(ini *iniFile) error {
	name := c.Path
	for _, s := range ini.sections {
		m := sectionType.FindStringSubmatch(s.name)
		if m == nil {
			continue
		}
		value := m[sectionType.SubexpIndex("value")]
		opts := map[string]string{}
		for _, o := range s.opts {
			v, err := ini.get(s, o)
			if err != nil {
				return err
			}
			opts[o.key] = v
		}
		if m[sectionType.SubexpIndex("part")] != "" {
			pc, err := newPartConfig(opts)
			if err != nil {
				return fmt.Errorf("%s:%d: %w: [%s]: %w", name, s.line, ErrConfig, s.name, err)
			}
			c.main.parts[value] = pc
			continue
		}
		vc := *c.main
		for key, v := range opts {
			i := slices.IndexFunc(fileOptions, func(o fileOption) bool { return o.key == key })
			if i < 0 {
				return fmt.Errorf("%s:%d: %w: [%s]: unknown option %q (a file section takes %s)", name, optLine(s, key), ErrConfig, s.name, key, fileOptionKeys())
			}
			fileOptions[i].set(&vc, v)
		}
		if err := vc.check(name, s.line, "["+s.name+"]"); err != nil {
			return err
		}
		c.files = append(c.files, fileSpec{path: value, cfg: name, glob: m[sectionType.SubexpIndex("file")] == "glob", section: s.name, line: s.line, vc: &vc})
	}
	return nil
}

// fileOption is an option of a [bumpversion:file:…] section and how it
// changes the file's copy of the main configuration.
type fileOption struct {
	key string
	set func(vc *versionConfig, v string)
}

// fileOptions is the one list of a file section's options.
var fileOptions = []fileOption{
	// bump2version 1.0.1 reads versions with the main parse only; a
	// file's parse changes nothing.
	{"parse", func(vc *versionConfig, v string) { vc.parseSrc = v }},
	{"serialize", func(vc *versionConfig, v string) { vc.serialize, vc.whole = nonEmptyLines(v, true), false }},
	{"search", func(vc *versionConfig, v string) { vc.search = v }},
	{"replace", func(vc *versionConfig, v string) { vc.replace = v }},
}

// fileOptionKeys names fileOptions' keys for messages: "a, b, c and d".
func fileOptionKeys() string {
	keys := make([]string, len(fileOptions))
	for i, o := range fileOptions {
		keys[i] = o.key
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " and " + keys[len(keys)-1]
}

// check validates the templates of one version configuration.
func (vc *versionConfig) check(file string, line int, where string) error {
	if len(vc.serialize) == 0 && !vc.whole {
		return fmt.Errorf("%s:%d: %w: %s: serialize is empty: give at least one template such as {major}.{minor}.{patch}", file, line, ErrConfig, where)
	}
	for _, t := range append([]string{vc.search, vc.replace}, vc.serialize...) {
		if _, err := parsePyFormat(t); err != nil {
			return fmt.Errorf("%s:%d: %w: %s: %w", file, line, ErrConfig, where, err)
		}
	}
	return nil
}

// newPartConfig builds a [bumpversion:part:NAME] configuration as
// bump2version does: numeric with an optional first_value, or a list of
// values with optional first_value and optional_value among them.
func newPartConfig(opts map[string]string) (*partConfig, error) {
	if _, ok := opts["values"]; !ok {
		for k := range opts {
			if k != "first_value" {
				return nil, fmt.Errorf("option %q needs a values list (a numeric part takes only first_value)", k)
			}
		}
		first, ok := opts["first_value"]
		if !ok {
			return defaultPart, nil
		}
		if !firstNumeric.MatchString(first) {
			return nil, fmt.Errorf("first_value %q has no digit, but a numeric part counts in digits", first)
		}
		return &partConfig{first: first, optional: first}, nil
	}
	pc := &partConfig{values: nonEmptyLines(opts["values"], false)}
	if len(pc.values) == 0 {
		return nil, fmt.Errorf("values is empty: list one value per line")
	}
	pc.first, pc.optional = pc.values[0], pc.values[0]
	for k, v := range opts {
		switch k {
		case "values":
		case "first_value", "optional_value":
			if !slices.Contains(pc.values, v) {
				return nil, fmt.Errorf("%s %q is not one of the values %s", k, v, strings.Join(pc.values, ", "))
			}
			if k == "first_value" {
				pc.first = v
			} else {
				pc.optional = v
			}
		default:
			return nil, fmt.Errorf("unknown option %q (a part takes values, first_value and optional_value)", k)
		}
	}
	return pc, nil
}

// nonEmptyLines splits a multi-line option into its stripped, non-empty
// lines; in file sections bump2version also turns "\n" into a newline.
func nonEmptyLines(v string, unescape bool) []string {
	var out []string
	for _, l := range pySplitlines(v) {
		l = pyStrip(l)
		if unescape {
			l = strings.ReplaceAll(l, `\n`, "\n")
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func optLine(s *iniSection, key string) int {
	if o := s.option(key); o != nil {
		return o.line
	}
	return s.line
}
