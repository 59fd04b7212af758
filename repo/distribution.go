package repo

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// Distribution is one paragraph of conf/distributions.
type Distribution struct {
	Codename, Suite, Version, Origin, Label, Description string
	// Architectures are the binary architectures (binary-<arch>
	// directories), in configuration order, without "source".
	Architectures []string
	// HasSource is set when Architectures lists "source".
	HasSource bool
	// Components in configuration order; the first is the default.
	Components []string
	// DDebComponents are the components with debug package (.ddeb)
	// lists (reprepro 5.4's DDebComponents): COMPONENT/debug/binary-ARCH.
	DDebComponents []string
	// UDebComponents are the components with installer package (.udeb)
	// lists: COMPONENT/debian-installer/binary-ARCH.
	UDebComponents []string
	// SignWith names the signing key: a key file, a fingerprint or key
	// ID found in the key directory, or "yes"/"default" for the only key
	// there. Empty: the distribution is not signed.
	SignWith string
	// SignedBy is copied into the Release file's Signed-By field.
	SignedBy string
	// NotAutomatic and ButAutomaticUpgrades are copied into Release files.
	NotAutomatic, ButAutomaticUpgrades string
	// ValidFor, when not zero, puts Valid-Until = Date + ValidFor into
	// the Release file.
	ValidFor time.Duration
	// DebIndices says which Packages files to export.
	DebIndices Indices
	// DscIndices says which Sources files to export (when HasSource).
	DscIndices Indices
	// Tracking is the parsed Tracking field (zero: no tracking).
	Tracking Tracking
	// Limit is how many versions of a package to keep per component and
	// architecture; ≤ 0 keeps every version. The default is 1.
	Limit int
	// Archive is the codename of the distribution that keeps the
	// versions Limit pushes out of this one (reprepro 5.4's Archive
	// field; see archive.go); "" when they just go.
	Archive string
	// ArchiveAt is where the Archive field was read ("file:line").
	ArchiveAt string
	// ReadOnly refuses every change.
	ReadOnly bool
	// Log is the file (relative to the log directory) that additions and
	// removals are logged to, as reprepro does; "" for none.
	Log string
	// Update names the conf/updates rules "update" applies, in order
	// (the Update field; see update.go).
	Update []string
	// UpdateAt is where the Update field was read ("file:line").
	UpdateAt string
	// Pull names the conf/pulls rules "pull" applies, in order ("-":
	// delete what the rules after it do not offer; see pull.go).
	Pull []string
	// PullAt is where the Pull field was read ("file:line").
	PullAt string
	// Fields are all fields as written, known or not, in file order.
	Fields []deb.Field
	// File and Line locate the paragraph.
	File string
	Line int
}

// defaultDscIndices is reprepro's default for source targets: "Sources
// Release . .gz" (reprepro writes only .gz; we write both, as for
// Packages).
func defaultDscIndices() Indices {
	return Indices{Name: "Sources", Release: "Release", Uncompressed: true, Gzip: true}
}

// Indices is a parsed DebIndices field: "Packages Release . .gz .xz".
type Indices struct {
	// Name of the index file: "Packages".
	Name string
	// Release is the name of the per-architecture Release file, "" for
	// none.
	Release string
	// Uncompressed, Gzip and XZ say which forms to write.
	Uncompressed, Gzip, XZ bool
}

// defaultIndices is reprepro's default: "Packages Release . .gz".
func defaultIndices() Indices {
	return Indices{Name: "Packages", Release: "Release", Uncompressed: true, Gzip: true}
}

// Target is one package list of a distribution: codename, component and
// architecture, written "bookworm|main|amd64" as reprepro does.
type Target struct {
	Codename, Component, Arch string
	// Type is the package type of a binary list: "" for .deb, DDeb for
	// debug packages, UDeb for installer packages; reprepro writes their
	// lists "d|bookworm|main|amd64" and "u|bookworm|main|amd64".
	Type string
}

// The Types of package lists other than .deb and source.
const (
	DDeb = "ddeb"
	UDeb = "udeb"
)

func (t Target) String() string {
	s := t.Codename + "|" + t.Component + "|" + t.Arch
	switch t.Type {
	case DDeb:
		return "d|" + s
	case UDeb:
		return "u|" + s
	}
	return s
}

// MarshalText writes the target as String does.
func (t Target) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Dir is the index directory relative to the repository root:
// "dists/bookworm/main/binary-amd64".
func (t Target) Dir() string {
	return "dists/" + t.Codename + "/" + t.IndexDir()
}

// IndexDir is the index directory relative to dists/CODENAME:
// "main/binary-amd64", or "main/source" for a source target.
func (t Target) IndexDir() string {
	if t.IsSource() {
		return t.Component + "/source"
	}
	switch t.Type {
	case DDeb:
		return t.Component + "/debug/binary-" + t.Arch
	case UDeb:
		return t.Component + "/debian-installer/binary-" + t.Arch
	}
	return t.Component + "/binary-" + t.Arch
}

// IsSource reports whether t is a source target ("bookworm|main|source").
func (t Target) IsSource() bool { return t.Arch == SourceArch }

// SourceArch is the architecture word of source targets.
const SourceArch = "source"

// Targets lists the distribution's targets, component-major, in
// configuration order (the order reprepro exports them in): each
// component's architectures, then its source target when Architectures
// lists "source".
func (d *Distribution) Targets() []Target {
	var out []Target
	for _, c := range d.Components {
		udeb, ddeb := contains(d.UDebComponents, c), contains(d.DDebComponents, c)
		for _, a := range d.Architectures {
			out = append(out, Target{Codename: d.Codename, Component: c, Arch: a})
			if udeb {
				out = append(out, Target{Codename: d.Codename, Component: c, Arch: a, Type: UDeb})
			}
			if ddeb {
				out = append(out, Target{Codename: d.Codename, Component: c, Arch: a, Type: DDeb})
			}
		}
		if d.HasSource {
			out = append(out, Target{Codename: d.Codename, Component: c, Arch: SourceArch})
		}
	}
	return out
}

// HasComponent reports whether d lists component c.
func (d *Distribution) HasComponent(c string) bool { return contains(d.Components, c) }

// hasTarget reports whether d has target t's package list: its
// component and architecture (SourceArch: its source target), a debug
// or installer list when DDebComponents or UDebComponents names the
// component.
func (d *Distribution) hasTarget(t Target) bool {
	switch {
	case t.Arch == SourceArch:
		return d.HasSource && d.HasComponent(t.Component)
	case t.Type == DDeb:
		return contains(d.DDebComponents, t.Component) && d.HasArchitecture(t.Arch)
	case t.Type == UDeb:
		return contains(d.UDebComponents, t.Component) && d.HasArchitecture(t.Arch)
	}
	return d.HasComponent(t.Component) && d.HasArchitecture(t.Arch)
}

// HasArchitecture reports whether d lists architecture a.
func (d *Distribution) HasArchitecture(a string) bool { return contains(d.Architectures, a) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// newDistribution checks one paragraph of conf/distributions.
func newDistribution(p *confParagraph) (*Distribution, []string, error) {
	d := &Distribution{File: p.file, Line: p.line, Fields: p.fields, DebIndices: defaultIndices(), DscIndices: defaultDscIndices(), Limit: 1}
	var warns []string
	for _, f := range p.fields {
		at := fmt.Sprintf("%s:%d", p.file, f.Line)
		if why := refuseField(f); why != "" { // conf_refuse.go
			return nil, nil, fmt.Errorf("%s: %w: %s: %s", at, ErrConfig, f.Name, why)
		}
		warn, why := d.setField(f, at)
		if why != "" {
			return nil, nil, fmt.Errorf("%s: %w: %s: %s", at, ErrConfig, f.Name, why)
		}
		warns = append(warns, warn...)
	}
	where := fmt.Sprintf("%s:%d", p.file, p.line)
	switch {
	case d.Codename == "":
		return nil, nil, fmt.Errorf("%s: %w: the paragraph has no Codename (the name of its dists/ directory)", where, ErrConfig)
	case len(d.Architectures) == 0:
		return nil, nil, fmt.Errorf("%s: %w: distribution %q: Architectures is missing or empty (e.g. \"Architectures: armhf arm64\")", where, ErrConfig, d.Codename)
	case len(d.Components) == 0:
		return nil, nil, fmt.Errorf("%s: %w: distribution %q: Components is missing or empty (e.g. \"Components: main\")", where, ErrConfig, d.Codename)
	}
	for field, cs := range map[string][]string{"DDebComponents": d.DDebComponents, "UDebComponents": d.UDebComponents} {
		for _, c := range cs {
			if !d.HasComponent(c) {
				return nil, nil, fmt.Errorf("%s: %w: distribution %q: %s names %q, which Components (%s) does not list; debug and installer lists go with a component's packages", where, ErrConfig, d.Codename, field, c, strings.Join(d.Components, " "))
			}
		}
	}
	return d, warns, nil
}

// setField applies one field of a conf/distributions paragraph (read at
// at, "file:line"). It returns warnings about what is ignored, or why the
// value is wrong and what to write.
func (d *Distribution) setField(f deb.Field, at string) (warns []string, why string) {
	v, name := f.Value, strings.ToLower(f.Name)
	if field, ok := textFields[name]; ok {
		*field(d) = v
		return nil, ""
	}
	switch name {
	case "codename", "suite":
		if err := checkName(v); err != nil {
			return nil, err.Error()
		}
		if name == "codename" {
			d.Codename = v
		} else {
			d.Suite = v
		}
	case "architectures":
		return d.setArchitectures(v, at)
	case "components":
		return nil, d.setComponents(v)
	case "ddebcomponents":
		d.DDebComponents = strings.Fields(v)
	case "udebcomponents":
		d.UDebComponents = strings.Fields(v)
	case "validfor":
		dur, err := parseValidFor(v)
		if err != nil {
			return nil, err.Error()
		}
		d.ValidFor = dur
	case "debindices", "dscindices":
		return d.setIndices(name, v, at)
	case "tracking":
		t, err := parseTracking(v)
		if err != nil {
			return nil, err.Error()
		}
		d.Tracking = t
	case "limit":
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Sprintf("%q is not a number (the count of versions to keep; 0 keeps all)", v)
		}
		d.Limit = n
	case "readonly":
		d.ReadOnly = true
	case "archive":
		if err := checkName(v); err != nil {
			return nil, fmt.Sprintf("%v; give the Codename of the one distribution that keeps the versions Limit pushes out", err)
		}
		d.Archive, d.ArchiveAt = v, at
	case "log":
		// Notification script lines are refused (refuseField).
		first, _, _ := strings.Cut(v, "\n")
		d.Log = strings.TrimSpace(first)
	case "update":
		d.Update, d.UpdateAt = strings.Fields(v), at
	case "pull":
		d.Pull, d.PullAt = strings.Fields(v), at
	case "uploaders":
		// Read by include and processincoming (incoming_uploaders.go).
	default:
		// refuseField (conf_refuse.go) stops every field not handled
		// above before it gets here.
		return nil, fmt.Sprintf("field %q is not handled", f.Name)
	}
	return warns, ""
}

// textFields are the fields of conf/distributions kept as they are
// written, by lower-case name.
var textFields = map[string]func(d *Distribution) *string{
	"version":              func(d *Distribution) *string { return &d.Version },
	"origin":               func(d *Distribution) *string { return &d.Origin },
	"label":                func(d *Distribution) *string { return &d.Label },
	"description":          func(d *Distribution) *string { return &d.Description },
	"signwith":             func(d *Distribution) *string { return &d.SignWith },
	"signed-by":            func(d *Distribution) *string { return &d.SignedBy },
	"notautomatic":         func(d *Distribution) *string { return &d.NotAutomatic },
	"butautomaticupgrades": func(d *Distribution) *string { return &d.ButAutomaticUpgrades },
}

// setIndices reads a DebIndices or DscIndices field (name in lower case).
func (d *Distribution) setIndices(name, v, at string) (warns []string, why string) {
	ix, w, err := parseIndices(v)
	if err != nil {
		return nil, err.Error()
	}
	field, dst := "DebIndices", &d.DebIndices
	if name == "dscindices" {
		field, dst = "DscIndices", &d.DscIndices
	}
	if w != "" {
		warns = append(warns, fmt.Sprintf("%s: %s: %s", at, field, w))
	}
	*dst = ix
	return warns, ""
}

// setArchitectures reads an Architectures field: "source" adds source
// targets, "all" and duplicates are refused.
func (d *Distribution) setArchitectures(v, at string) (warns []string, why string) {
	for _, a := range strings.Fields(v) {
		switch {
		case a == "source":
			if d.HasSource {
				return nil, "\"source\" is listed twice"
			}
			d.HasSource = true
		case a == "all":
			return nil, "\"all\" cannot be listed: Architecture: all packages go into every binary-<arch> index; list the real architectures (e.g. armhf arm64 amd64)"
		default:
			if err := deb.ValidateArchitecture(a); err != nil {
				return nil, err.Error()
			}
			if d.HasArchitecture(a) {
				return nil, fmt.Sprintf("%q is listed twice", a)
			}
			d.Architectures = append(d.Architectures, a)
		}
	}
	return warns, ""
}

// setComponents reads a Components field; duplicates are refused.
func (d *Distribution) setComponents(v string) string {
	for _, c := range strings.Fields(v) {
		if err := checkName(c); err != nil {
			return err.Error()
		}
		if d.HasComponent(c) {
			return fmt.Sprintf("%q is listed twice", c)
		}
		d.Components = append(d.Components, c)
	}
	return ""
}

// checkName accepts what may be a codename, suite or component: a path of
// letters, digits and ".+-_~", parts separated by single '/'.
func checkName(s string) error {
	if s == "" {
		return fmt.Errorf("empty name")
	}
	for _, part := range strings.Split(s, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%q is not a usable name (empty part, '.' or '..')", s)
		}
		for _, c := range part {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".+-_~", c)
			if !ok {
				return fmt.Errorf("%q contains %q; use letters, digits and . + - _ ~", s, c)
			}
		}
	}
	return nil
}

// parseValidFor parses reprepro's ValidFor: numbers with units d (days),
// m (31 days) or y (365 days), summed ("1m 11d" is 42 days). We also accept
// h (hours) and w (weeks).
func parseValidFor(s string) (time.Duration, error) {
	var total time.Duration
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, fmt.Errorf("empty; expected e.g. \"7d\"")
	}
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("%q: expected a number followed by d, w, m or y (e.g. \"7d\")", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("%q: number out of range", s)
		}
		rest = strings.TrimLeft(rest[i:], " \t\n")
		if rest == "" {
			return 0, fmt.Errorf("%q: %d has no unit; add d, w, m or y", s, n)
		}
		day := 24 * time.Hour
		unit := map[byte]time.Duration{'h': time.Hour, 'd': day, 'w': 7 * day, 'm': 31 * day, 'y': 365 * day}[rest[0]]
		if unit == 0 {
			return 0, fmt.Errorf("%q: unknown unit %q; use d (days), w, m (31 days) or y (365 days)", s, rest[0])
		}
		total += time.Duration(n) * unit
		rest = strings.TrimLeft(rest[1:], " \t\n")
	}
	return total, nil
}

// parseIndices parses DebIndices: index name, optional Release name, then
// ".", ".gz", ".xz" (".bz2" is not written; a hook script is not run).
func parseIndices(s string) (Indices, string, error) {
	words := strings.Fields(s)
	if len(words) < 2 {
		return Indices{}, "", fmt.Errorf("%q: expected e.g. \"Packages Release . .gz\"", s)
	}
	ix := Indices{Name: words[0]}
	if strings.ContainsAny(ix.Name, "/") || strings.HasPrefix(ix.Name, ".") {
		return Indices{}, "", fmt.Errorf("%q is not an index file name", ix.Name)
	}
	words = words[1:]
	if !strings.HasPrefix(words[0], ".") {
		ix.Release = words[0]
		words = words[1:]
	}
	var warn []string
	for _, w := range words {
		switch w {
		case ".":
			ix.Uncompressed = true
		case ".gz":
			ix.Gzip = true
		case ".xz":
			ix.XZ = true
		case ".bz2":
			warn = append(warn, ".bz2 indices are not written (apt prefers .xz and .gz)")
		default:
			if strings.HasPrefix(w, ".") {
				return Indices{}, "", fmt.Errorf("unknown compression %q; use . .gz .xz", w)
			}
			warn = append(warn, fmt.Sprintf("hook script %q is not run", w))
		}
	}
	if !ix.Uncompressed && !ix.Gzip && !ix.XZ {
		return Indices{}, "", fmt.Errorf("%q: no form to write; add at least one of . .gz .xz", s)
	}
	return ix, strings.Join(warn, "; "), nil
}
