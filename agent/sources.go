package agent

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// Source is one apt repository the agent polls: one URI, suite and set of
// components of a deb822 .sources paragraph or a one-line sources.list entry.
type Source struct {
	// File and Line locate the entry, for error messages.
	File string
	Line int
	// URI is the repository base, without a trailing slash.
	URI        string
	Suite      string
	Components []string
	// SignedBy is the keyring file (binary .gpg or armored .asc) the
	// InRelease signature is checked against; SignedByKey holds an inline
	// armored key block of a .sources file instead.
	SignedBy    string
	SignedByKey []byte
	// Architectures limits the architectures (empty: the agent's own).
	Architectures []string
	// ByHash is the by-hash= option: "" (as the Release says), "yes", "no"
	// or "force".
	ByHash string
}

// Key identifies the source in the agent's state (URI and suite).
func (s Source) Key() string { return s.URI + " " + s.Suite }

// String is how messages name the source.
func (s Source) String() string {
	return fmt.Sprintf("%s %s %s", s.URI, s.Suite, strings.Join(s.Components, " "))
}

// LoadSources reads the apt source file at path: deb822 when its name ends in
// ".sources", one-line entries otherwise. Entries of other types (deb-src),
// disabled entries and sources without a signing key are refused or skipped
// as apt would, except that the agent requires Signed-By: it never trusts
// the machine-wide keyring.
func LoadSources(path string) ([]Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: apt source: %v", ErrConfig, err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".sources") {
		return ParseDeb822Sources(f, path)
	}
	return ParseSourcesList(f, path)
}

// ParseDeb822Sources parses a deb822 .sources file (sources.list(5)):
// Types, URIs, Suites, Components, Signed-By (a keyring path or an inline
// armored key), Architectures, By-Hash and Enabled. One Source is returned
// per URI and suite of each enabled "deb" paragraph.
func ParseDeb822Sources(r io.Reader, file string) ([]Source, error) {
	paras, err := deb.ParseParagraphsOptions(r, file, deb.ParseOptions{Comments: true, Tolerant: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var out []Source
	for _, p := range paras {
		get := p.Field
		line := p.Fields[0].Line
		errf := func(l int, format string, a ...any) error {
			return fmt.Errorf("%w: %s:%d: %s", ErrConfig, file, l, fmt.Sprintf(format, a...))
		}
		if f, ok := get("Enabled"); ok && strings.EqualFold(f.Value, "no") {
			continue
		}
		types, ok := get("Types")
		if !ok {
			return nil, errf(line, "paragraph has no Types field; add \"Types: deb\"")
		}
		if !containsWord(strings.Fields(types.Value), "deb") {
			continue
		}
		uris, ok := get("URIs")
		if !ok || strings.TrimSpace(uris.Value) == "" {
			return nil, errf(line, "paragraph has no URIs field")
		}
		suites, ok := get("Suites")
		if !ok || strings.TrimSpace(suites.Value) == "" {
			return nil, errf(line, "paragraph has no Suites field")
		}
		comps, _ := get("Components")
		src := Source{File: file, Line: line}
		if f, ok := get("Signed-By"); ok {
			v := strings.TrimSpace(f.Value)
			if strings.Contains(v, "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
				src.SignedByKey = inlineKey(v)
			} else {
				src.SignedBy = v
			}
			if err := checkKeyPath(src.SignedBy, src.SignedByKey); err != nil {
				return nil, errf(f.Line, "Signed-By: %v", err)
			}
		} else {
			return nil, errf(line, "no Signed-By field: lampi-agent trusts only the key named by the source; add \"Signed-By: /usr/share/keyrings/KEYRING.gpg\"")
		}
		if f, ok := get("Architectures"); ok {
			src.Architectures = strings.Fields(f.Value)
		}
		if f, ok := get("By-Hash"); ok {
			bh, err := parseByHash(f.Value)
			if err != nil {
				return nil, errf(f.Line, "By-Hash: %v", err)
			}
			src.ByHash = bh
		}
		for _, u := range strings.Fields(uris.Value) {
			base, err := parseRepoURI(u)
			if err != nil {
				return nil, errf(uris.Line, "URIs: %v", err)
			}
			for _, suite := range strings.Fields(suites.Value) {
				s := src
				s.URI, s.Suite = base, suite
				s.Components = strings.Fields(comps.Value)
				if err := checkSuite(&s); err != nil {
					return nil, errf(suites.Line, "%v", err)
				}
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: no enabled \"Types: deb\" entry", ErrConfig, file)
	}
	return out, nil
}

// inlineKey turns a deb822 multi-line Signed-By value back into an armored
// key block: continuation lines lose one leading space and " ." is an empty
// line.
func inlineKey(v string) []byte {
	var b strings.Builder
	for _, l := range strings.Split(v, "\n") {
		l = strings.TrimLeft(l, " \t")
		if l == "." {
			l = ""
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// ParseSourcesList parses one-line entries
// ("deb [signed-by=KEYRING arch=armhf] URI SUITE COMPONENT…"); comments,
// blank lines and deb-src entries are skipped.
func ParseSourcesList(r io.Reader, file string) ([]Source, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var out []Source
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		typ, rest, _ := strings.Cut(text, " ")
		switch typ {
		case "deb-src":
			continue
		case "deb":
		default:
			return nil, fmt.Errorf("%w: %s:%d: unknown entry type %q; expected \"deb\"", ErrConfig, file, line, typ)
		}
		src, err := parseSourceEntry(strings.TrimSpace(rest), file, line)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrConfig, file, line, err)
		}
		out = append(out, src)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s:%d: %v", ErrConfig, file, line, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: no \"deb\" entry", ErrConfig, file)
	}
	return out, nil
}

// parseSourceEntry reads what follows "deb" on a line of a sources.list:
// "[options] URI SUITE [COMPONENT…]".
func parseSourceEntry(rest, file string, line int) (Source, error) {
	src := Source{File: file, Line: line}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return src, fmt.Errorf("options start with '[' but have no ']'")
		}
		if err := setSourceOptions(&src, strings.Fields(rest[1:end])); err != nil {
			return src, err
		}
		rest = rest[end+1:]
	}
	words := strings.Fields(rest)
	if len(words) < 2 {
		return src, fmt.Errorf("expected \"deb [options] URI SUITE [COMPONENT…]\"")
	}
	base, err := parseRepoURI(words[0])
	if err != nil {
		return src, err
	}
	src.URI, src.Suite, src.Components = base, words[1], words[2:]
	if src.SignedBy == "" {
		return src, fmt.Errorf("no signed-by= option: lampi-agent trusts only the key named by the source; add [signed-by=/usr/share/keyrings/KEYRING.gpg]")
	}
	if err := checkKeyPath(src.SignedBy, nil); err != nil {
		return src, fmt.Errorf("signed-by: %v", err)
	}
	if err := checkSuite(&src); err != nil {
		return src, err
	}
	return src, nil
}

// setSourceOptions sets the [key=value …] options of a sources.list entry
// on src; options apt has and lampi-agent does not use are left alone.
func setSourceOptions(src *Source, opts []string) error {
	for _, opt := range opts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			return fmt.Errorf("option %q is not key=value", opt)
		}
		switch strings.ToLower(k) {
		case "signed-by":
			src.SignedBy = v
		case "arch":
			src.Architectures = strings.Split(v, ",")
		case "by-hash":
			bh, err := parseByHash(v)
			if err != nil {
				return fmt.Errorf("by-hash: %v", err)
			}
			src.ByHash = bh
		case "trusted":
			if v == "yes" {
				return fmt.Errorf("trusted=yes turns signature checks off; lampi-agent refuses it")
			}
		}
	}
	return nil
}

func parseRepoURI(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("bad URI %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("URI %q: only http:// and https:// are supported", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("URI %q has no host", s)
	}
	return strings.TrimRight(s, "/"), nil
}

func parseByHash(v string) (string, error) {
	switch strings.ToLower(v) {
	case "yes", "no", "force":
		return strings.ToLower(v), nil
	}
	return "", fmt.Errorf("%q is not yes, no or force", v)
}

func checkKeyPath(path string, inline []byte) error {
	if inline != nil {
		return nil
	}
	if path == "" {
		return fmt.Errorf("empty")
	}
	if strings.Contains(path, ",") || !filepath.IsAbs(path) {
		return fmt.Errorf("%q: give one absolute keyring path (fingerprints are not supported)", path)
	}
	return nil
}

func checkSuite(s *Source) error {
	if strings.HasSuffix(s.Suite, "/") {
		return fmt.Errorf("flat repository %q (suite ending in /) is not supported", s.Suite)
	}
	if strings.ContainsAny(s.Suite, "/\\") || s.Suite == "." || s.Suite == ".." {
		return fmt.Errorf("suite %q must be a plain name", s.Suite)
	}
	if len(s.Components) == 0 {
		return fmt.Errorf("no components after the suite %q", s.Suite)
	}
	for _, c := range s.Components {
		if c == "." || c == ".." || strings.Contains(c, "..") || strings.HasPrefix(c, "/") {
			return fmt.Errorf("component %q must be a plain name", c)
		}
	}
	return nil
}

func containsWord(list []string, w string) bool {
	for _, x := range list {
		if x == w {
			return true
		}
	}
	return false
}
