package deb

import (
	"errors"
	"fmt"
	"strings"
)

// Warning is a problem worth telling the user that does not stop a build:
// what lintian would flag in a hand-made package.
type Warning struct {
	File string
	Line int
	Msg  string
}

func (w Warning) String() string {
	switch {
	case w.File != "" && w.Line > 0:
		return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Msg)
	case w.File != "":
		return w.File + ": " + w.Msg
	}
	return w.Msg
}

// MandatoryFields are the fields every binary package control file needs.
var MandatoryFields = []string{"Package", "Version", "Architecture", "Maintainer", "Description"}

var knownPriorities = map[string]bool{"required": true, "important": true, "standard": true, "optional": true, "extra": true}

// ValidateControl checks a binary package's control paragraph the way
// dpkg-deb does, and a little stricter where dpkg only warns about things
// that break later (lowercase package names, exact Provides). filename is
// used in messages. It returns the warnings for what lintian would flag
// and an error (wrapping ErrMissingField or ErrInvalidField) for the first
// field dpkg would refuse; the error names file, line and field and says
// what to do.
func ValidateControl(p *Paragraph, filename string) ([]Warning, error) {
	var warns []Warning
	fieldErr := func(f Field, err error) error {
		return fmt.Errorf("%s:%d: field %s: %w", filename, f.Line, f.Name, err)
	}
	for _, name := range MandatoryFields {
		if _, ok := p.Lookup(name); !ok {
			return nil, fmt.Errorf("%s: %w %q; add a line '%s: …' (%s)", filename, ErrMissingField, name, name, fieldHint(name))
		}
	}
	checks := []struct {
		name  string
		check func(string) error
	}{
		{"Package", ValidatePackageName},
		{"Version", func(v string) error { _, err := ParseVersion(v); return err }},
		{"Architecture", ValidateArchitecture},
		{"Description", validateSynopsis},
	}
	for _, c := range checks {
		f, _ := p.Field(c.name)
		if err := c.check(f.Value); err != nil {
			return nil, fieldErr(f, err)
		}
	}
	if f, _ := p.Field("Maintainer"); !strings.Contains(f.Value, "<") || !strings.HasSuffix(f.Value, ">") {
		warns = append(warns, Warning{filename, f.Line, fmt.Sprintf("Maintainer %q has no e-mail address; write 'Full Name <user@example.org>'", f.Value)})
	}
	for _, name := range RelationFields {
		f, ok := p.Field(name)
		if !ok {
			continue
		}
		_, w, err := ParseRelations(f.Name, f.Value)
		if err != nil {
			return nil, fieldErr(f, err)
		}
		for _, m := range w {
			warns = append(warns, Warning{filename, f.Line, m})
		}
	}
	if f, ok := p.Field("Essential"); ok && f.Value != "yes" && f.Value != "no" {
		return nil, fieldErr(f, fmt.Errorf("%w: %q must be 'yes' or 'no'", ErrInvalidField, f.Value))
	}
	if f, ok := p.Field("Protected"); ok && f.Value != "yes" && f.Value != "no" {
		return nil, fieldErr(f, fmt.Errorf("%w: %q must be 'yes' or 'no'", ErrInvalidField, f.Value))
	}
	if f, ok := p.Field("Multi-Arch"); ok {
		switch f.Value {
		case "no", "same", "foreign", "allowed":
		default:
			return nil, fieldErr(f, fmt.Errorf("%w: %q must be one of no, same, foreign, allowed", ErrInvalidField, f.Value))
		}
	}
	if f, ok := p.Field("Priority"); !ok {
		warns = append(warns, Warning{filename, 0, "no Priority field; lintian expects one (usually 'Priority: optional')"})
	} else if !knownPriorities[f.Value] {
		warns = append(warns, Warning{filename, f.Line, fmt.Sprintf("unknown Priority %q; use required, important, standard or optional", f.Value)})
	}
	if _, ok := p.Lookup("Section"); !ok {
		warns = append(warns, Warning{filename, 0, "no Section field; lintian expects one (e.g. 'Section: misc')"})
	}
	return warns, nil
}

func fieldHint(name string) string {
	switch name {
	case "Package":
		return "lowercase letters, digits, '+', '-', '.'"
	case "Version":
		return "e.g. 1.2.3 or 1.2.3-1"
	case "Architecture":
		return "'all' for scripts and data, or e.g. armhf, arm64, amd64"
	case "Maintainer":
		return "'Full Name <user@example.org>'"
	}
	return "a one-line summary, then optional indented lines"
}

// IsValidationError reports whether err is a control-file problem the user
// must fix in the source tree (as opposed to an I/O failure).
func IsValidationError(err error) bool {
	return errors.Is(err, ErrSyntax) || errors.Is(err, ErrMissingField) || errors.Is(err, ErrInvalidField) ||
		errors.Is(err, ErrInvalidVersion) || errors.Is(err, ErrInvalidTree)
}

func validateSynopsis(desc string) error {
	if summary, _, _ := strings.Cut(desc, "\n"); strings.TrimSpace(summary) == "" {
		return fmt.Errorf("%w: the first line (the synopsis) is empty; put a one-line summary right after 'Description:'", ErrInvalidField)
	}
	return nil
}
