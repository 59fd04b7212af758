package repo

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// confParagraph is one paragraph of a reprepro configuration file, with
// where it was read from.
type confParagraph struct {
	file   string
	line   int // line of the first field
	fields []deb.Field
}

func (p *confParagraph) get(name string) (deb.Field, bool) {
	for _, f := range p.fields {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return deb.Field{}, false
}

// maxIncludeDepth bounds "!include:" nesting (a file including itself).
const maxIncludeDepth = 8

// readConfFile reads a reprepro configuration file (conf/distributions)
// or, when path is a directory, every "*.conf" file in it not starting
// with '.', in name order. "!include:" paragraphs are expanded in place,
// relative to confdir.
func readConfFile(confdir, path string, depth int) ([]*confParagraph, error) {
	if depth > maxIncludeDepth {
		return nil, fmt.Errorf("%s: %w: more than %d nested !include: (does a file include itself?)", path, ErrConfig, maxIncludeDepth)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		var out []*confParagraph
		for _, e := range entries {
			n := e.Name()
			if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".conf") || e.IsDir() {
				continue
			}
			ps, err := readConfFile(confdir, filepath.Join(path, n), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, ps...)
		}
		return out, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ps, err := parseConf(f, path)
	if err != nil {
		return nil, err
	}
	var out []*confParagraph
	for _, p := range ps {
		inc, ok := p.get("!include")
		if !ok {
			out = append(out, p)
			continue
		}
		if len(p.fields) != 1 {
			return nil, fmt.Errorf("%s:%d: %w: a \"!include:\" paragraph must hold nothing else; separate it with a blank line", p.file, inc.Line, ErrConfig)
		}
		target := confPath(confdir, inc.Value)
		sub, err := readConfFile(confdir, target, depth+1)
		if err != nil {
			if _, ok := err.(*fs.PathError); ok {
				return nil, fmt.Errorf("%s:%d: %w: !include: %w", p.file, inc.Line, ErrConfig, err)
			}
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

// confPath resolves a path named in the configuration: absolute, "~/"
// (home directory, as reprepro), or relative to confdir.
func confPath(confdir, p string) string {
	switch {
	case filepath.IsAbs(p):
		return p
	case strings.HasPrefix(p, "~/"):
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return filepath.Join(confdir, p)
}

// parseConf parses reprepro's configuration syntax: deb822 paragraphs
// separated by blank lines; a line starting with '#' is ignored, and
// elsewhere '#' starts a comment that runs to the end of the line; a line
// starting with white space continues the previous field. Field values
// keep their continuation lines after "\n". Errors name filename:line.
// It is not deb's paragraph parser on purpose: reprepro's files take '#'
// comments inside lines, which deb822 files (control, Packages, apt's
// .sources) do not.
func parseConf(r io.Reader, filename string) ([]*confParagraph, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var (
		out  []*confParagraph
		cur  *confParagraph
		line int
	)
	errf := func(format string, a ...any) error {
		return fmt.Errorf("%s:%d: %w: %s", filename, line, ErrConfig, fmt.Sprintf(format, a...))
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.HasPrefix(text, "#") {
			continue
		}
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimRight(text, " \t\r")
		if text == "" {
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		if text[0] == ' ' || text[0] == '\t' {
			if cur == nil {
				return nil, errf("continuation line (starting with white space) outside a field; remove the leading white space")
			}
			f := &cur.fields[len(cur.fields)-1]
			f.Value += "\n" + strings.TrimSpace(text)
			continue
		}
		name, value, ok := strings.Cut(text, ":")
		if !ok {
			return nil, errf("%q is not a field: expected 'Name: value'", shorten(text))
		}
		if name == "" || strings.ContainsAny(name, " \t") {
			return nil, errf("bad field name %q: expected 'Name: value' with no space before the colon", shorten(name))
		}
		if cur == nil {
			cur = &confParagraph{file: filename, line: line}
		}
		if prev, dup := cur.get(name); dup {
			return nil, errf("duplicate field %q in one paragraph (first at line %d); keep one", name, prev.Line)
		}
		cur.fields = append(cur.fields, deb.Field{Name: name, Value: strings.TrimSpace(value), Line: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: read: %w", filename, line+1, err)
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out, nil
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Config is a repository's configuration: conf/distributions and
// conf/options, as reprepro reads them.
type Config struct {
	// Dir is the configuration directory (normally BASEDIR/conf).
	Dir string
	// Distributions in file order.
	Distributions []*Distribution
	// Options holds conf/options: long option name → value ("" for flags).
	Options map[string]string
	// Settings holds the conf/options values that are not plain strings,
	// parsed and checked.
	Settings Settings
	// Warnings lists what was read but is ignored (unknown fields,
	// reprepro features lampi-pkg does not implement), with file:line.
	Warnings []string
}

// Distribution returns the distribution with the given codename, or an
// error wrapping ErrUnknownCodename that lists the known ones.
func (c *Config) Distribution(codename string) (*Distribution, error) {
	if d := c.Lookup(codename); d != nil {
		if d.Codename == codename {
			return d, nil
		}
		return nil, fmt.Errorf("%w: %q is the suite of %q; commands take the codename", ErrUnknownCodename, codename, d.Codename)
	}
	var names []string
	for _, d := range c.Distributions {
		names = append(names, d.Codename)
	}
	return nil, fmt.Errorf("%w: %q is not a Codename in %s (known: %s)", ErrUnknownCodename, codename,
		filepath.Join(c.Dir, "distributions"), strings.Join(names, ", "))
}

// LoadConfig reads confdir/distributions (a file or a directory of *.conf
// files) and confdir/options (optional). Syntax and consistency errors
// wrap ErrConfig and name file:line; unknown fields are kept in
// Distribution.Fields and reported in Warnings.
func LoadConfig(confdir string) (*Config, error) {
	c := &Config{Dir: confdir, Options: map[string]string{}}
	dpath := filepath.Join(confdir, "distributions")
	ps, err := readConfFile(confdir, dpath, 0)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%w: %s does not exist; create it (lampi-pkg repo init) or pass the repository's base directory with -b", ErrConfig, dpath)
		}
		return nil, err
	}
	seen := map[string]*Distribution{}
	for _, p := range ps {
		d, warns, err := newDistribution(p)
		if err != nil {
			return nil, err
		}
		if prev := seen[d.Codename]; prev != nil {
			return nil, fmt.Errorf("%s:%d: %w: Codename %q is defined twice (first at %s:%d)", d.File, d.Line, ErrConfig, d.Codename, prev.File, prev.Line)
		}
		seen[d.Codename] = d
		c.Distributions = append(c.Distributions, d)
		c.Warnings = append(c.Warnings, warns...)
	}
	if len(c.Distributions) == 0 {
		return nil, fmt.Errorf("%s: %w: no distribution defined; add a paragraph with Codename, Architectures and Components", dpath, ErrConfig)
	}
	warns, err := checkArchives(c.Distributions) // archive.go
	if err != nil {
		return nil, err
	}
	c.Warnings = append(c.Warnings, warns...)
	opath := filepath.Join(confdir, "options")
	data, err := os.ReadFile(opath)
	switch {
	case err == nil:
		if err := c.parseOptions(data, opath); err != nil {
			return nil, err
		}
	case !os.IsNotExist(err):
		return nil, err
	}
	return c, nil
}

// SortedCodenames returns the codenames of c in name order.
func (c *Config) SortedCodenames() []string {
	var out []string
	for _, d := range c.Distributions {
		out = append(out, d.Codename)
	}
	sort.Strings(out)
	return out
}
