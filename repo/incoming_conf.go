package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// IncomingRule is one paragraph of conf/incoming: an incoming queue that
// ProcessIncoming reads .changes files from.
type IncomingRule struct {
	// Name is what "processincoming NAME" selects.
	Name string
	// IncomingDir is where uploads are found; TempDir where every file
	// of an upload is copied before it is read. Both are absolute, or
	// relative to the repository's base directory.
	IncomingDir, TempDir string
	// LogDir, when set, keeps the .changes, .buildinfo, build logs and
	// byhand files of each processed upload in a directory of its own
	// there, SOURCE_VERSION_ARCHS.NNNNNNN (absolute, or relative to the
	// base directory).
	LogDir string
	// Allow maps the words of a .changes' Distribution field to the
	// codenames that take them, in configuration order.
	Allow []AllowItem
	// Default is the codename of uploads Allow does not place ("": none).
	Default string
	// Multiple puts an upload naming several distributions into each of
	// them (Multiple, or Options: multiple_distributions) instead of the
	// first that takes it.
	Multiple bool
	// PermitOlder accepts an upload older than what a package list
	// holds: its packages are then added or skipped under the
	// distribution's Limit, as includedeb does (Permit: older_version).
	PermitOlder bool
	// PermitUnused accepts an upload listing files no package uses
	// (build logs, byhand files) (Permit: unused_files).
	PermitUnused bool
	// CleanupOnDeny and CleanupOnError delete a refused upload from the
	// incoming directory (Cleanup: on_deny, on_error); CleanupUnused
	// also deletes the unused files of a processed one (unused_files);
	// CleanupBuildinfo its .buildinfo files (unused_buildinfo_files).
	CleanupOnDeny, CleanupOnError, CleanupUnused, CleanupBuildinfo bool
	// File and Line locate the paragraph.
	File string
	Line int
}

// AllowItem is one word of an Allow field: uploads for From go into the
// distribution Into ("from>into", or a plain name for both).
type AllowItem struct{ From, Into string }

// incomingFields are the conf/incoming fields ProcessIncoming
// implements, by lower-case name.
var incomingFields = map[string]bool{
	"name": true, "incomingdir": true, "tempdir": true, "allow": true, "default": true,
	"multiple": true, "options": true, "permit": true, "cleanup": true, "logdir": true,
}

// notImplementedIncoming says what to do instead of a conf/incoming field
// reprepro knows and lampi-pkg does not implement.
var notImplementedIncoming = map[string]string{
	"morguedir": "remove it (Cleanup deletes files instead of moving them)",
}

// LoadIncoming reads the rule named name from confdir/incoming (a file
// or a directory of *.conf files, with "!include:" as conf/distributions
// allows) and checks it against c. A field lampi-pkg does not implement,
// an unknown word in Permit, Cleanup or Options, and an Allow or Default
// that names no distribution are errors naming file:line (ErrConfig):
// nothing in the file is ignored.
func (c *Config) LoadIncoming(name string) (*IncomingRule, error) {
	path := filepath.Join(c.Dir, "incoming")
	ps, err := readConfFile(c.Dir, path, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist; processincoming needs a paragraph with Name, IncomingDir, TempDir and Allow or Default there", ErrConfig, path)
		}
		return nil, err
	}
	var names []string
	for _, p := range ps {
		n, ok := p.get("name")
		if !ok {
			return nil, fmt.Errorf("%s:%d: %w: the paragraph has no Name (what processincoming is given)", p.file, p.line, ErrConfig)
		}
		names = append(names, n.Value)
		if n.Value == name {
			return c.newIncomingRule(p)
		}
	}
	return nil, fmt.Errorf("%w: no rule named %q in %s (known: %s)", ErrConfig, name, path, strings.Join(names, ", "))
}

func (c *Config) newIncomingRule(p *confParagraph) (*IncomingRule, error) {
	r := &IncomingRule{File: p.file, Line: p.line}
	for _, f := range p.fields {
		at := fmt.Sprintf("%s:%d", p.file, f.Line)
		lname := strings.ToLower(f.Name)
		if todo, ok := notImplementedIncoming[lname]; ok {
			return nil, fmt.Errorf("%s: %w: %s: not implemented by lampi-pkg; %s", at, ErrConfig, f.Name, todo)
		}
		if !incomingFields[lname] {
			return nil, fmt.Errorf("%s: %w: unknown field %q in conf/incoming (known: Name, IncomingDir, TempDir, LogDir, Allow, Default, Multiple, Options, Permit, Cleanup); check its spelling", at, ErrConfig, f.Name)
		}
		if err := c.setIncomingField(r, lname, f.Value); err != nil {
			return nil, fmt.Errorf("%s: %w: %s: %w", at, ErrConfig, f.Name, err)
		}
	}
	where := fmt.Sprintf("%s:%d", p.file, p.line)
	switch {
	case r.IncomingDir == "":
		return nil, fmt.Errorf("%s: %w: rule %q has no IncomingDir (the directory uploads arrive in)", where, ErrConfig, r.Name)
	case r.TempDir == "":
		return nil, fmt.Errorf("%s: %w: rule %q has no TempDir (where uploads are copied before they are read)", where, ErrConfig, r.Name)
	case len(r.Allow) == 0 && r.Default == "":
		return nil, fmt.Errorf("%s: %w: rule %q has neither Allow nor Default: no upload could go anywhere", where, ErrConfig, r.Name)
	}
	return r, nil
}

// setIncomingField applies one field (lower-case name) to r.
func (c *Config) setIncomingField(r *IncomingRule, name, v string) error {
	words := strings.Fields(v)
	known := func(into string) error {
		if c.Lookup(into) == nil {
			return fmt.Errorf("%q is neither a Codename nor a Suite in %s", into, filepath.Join(c.Dir, "distributions"))
		}
		return nil
	}
	switch name {
	case "name":
		r.Name = v
	case "incomingdir":
		r.IncomingDir = v
	case "tempdir":
		r.TempDir = v
	case "logdir":
		r.LogDir = v
	case "default":
		if len(words) != 1 {
			return fmt.Errorf("give one distribution, not %q", v)
		}
		if err := known(words[0]); err != nil {
			return err
		}
		r.Default = c.Lookup(words[0]).Codename
	case "allow":
		for _, w := range words {
			from, into, ok := strings.Cut(w, ">")
			if !ok {
				into = from
			}
			if from == "" || into == "" {
				return fmt.Errorf("%q: write NAME or FROM>INTO", w)
			}
			if err := known(into); err != nil {
				return err
			}
			r.Allow = append(r.Allow, AllowItem{From: from, Into: c.Lookup(into).Codename})
		}
	case "multiple":
		switch strings.ToLower(v) {
		case "", "yes", "true", "1":
			r.Multiple = true
		case "no", "false", "0":
		default:
			return fmt.Errorf("%q: write yes or no (or Options: multiple_distributions)", v)
		}
	case "options", "permit", "cleanup":
		return r.setWords(name, words)
	}
	return nil
}

// setWords sets the flags of the word-list fields Options, Permit and
// Cleanup; a word lampi-pkg does not implement is refused.
func (r *IncomingRule) setWords(name string, words []string) error {
	switch name {
	case "options":
		for _, w := range words {
			switch w {
			case "multiple_distributions":
				r.Multiple = true
			case "limit_arch_all":
				return fmt.Errorf("limit_arch_all is not implemented by lampi-pkg; remove it (architecture all packages go to every architecture of the distribution)")
			default:
				return fmt.Errorf("unknown option %q (known: multiple_distributions)", w)
			}
		}
	case "permit":
		for _, w := range words {
			switch w {
			case "older_version":
				r.PermitOlder = true
			case "unused_files":
				r.PermitUnused = true
			case "unlisted_binaries":
				return fmt.Errorf("unlisted_binaries is not implemented by lampi-pkg; remove it (every binary must be named in the Binary field of its .changes)")
			default:
				return fmt.Errorf("unknown word %q (known: older_version, unused_files)", w)
			}
		}
	case "cleanup":
		for _, w := range words {
			switch w {
			case "on_deny":
				r.CleanupOnDeny = true
			case "on_error":
				r.CleanupOnError = true
			case "unused_files":
				r.CleanupUnused = true
			case "unused_buildinfo_files":
				r.CleanupBuildinfo = true
			default:
				return fmt.Errorf("unknown word %q (known: on_deny, on_error, unused_files, unused_buildinfo_files; a processed upload is always deleted)", w)
			}
		}
	}
	return nil
}

// dir resolves a directory of the rule against the base directory.
func (r *IncomingRule) dir(base, d string) string {
	if filepath.IsAbs(d) {
		return d
	}
	return filepath.Join(base, d)
}

// destinations returns the codenames an upload for the given
// distribution words goes to: for each word in order, the first Allow
// item for it whose distribution accept takes, else Default; without
// Multiple only the first word that finds one.
func (r *IncomingRule) destinations(words []string, accept func(codename string) bool) []string {
	var out []string
	for _, w := range words {
		found := ""
		for _, a := range r.Allow {
			if a.From == w && accept(a.Into) {
				found = a.Into
				break
			}
		}
		if found == "" && r.Default != "" && accept(r.Default) {
			found = r.Default
		}
		if found == "" {
			continue
		}
		if !contains(out, found) {
			out = append(out, found)
		}
		if !r.Multiple {
			break
		}
	}
	return out
}
