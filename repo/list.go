package repo

import (
	"context"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Entry is one package in a package list.
type Entry struct {
	Target       Target `json:"target"`
	Package      string `json:"package"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	// File is the pool file.
	File string `json:"file"`
	// Stanza is the package's Packages stanza.
	Stanza []byte `json:"-"`
}

// Selection narrows the targets a command works on, like reprepro's -C
// and -A (empty: all).
type Selection struct {
	Components    []string
	Architectures []string
	// Types are reprepro's -T package types: "deb" (binary package
	// lists), "dsc" (source package lists).
	Types []string
}

// Targets lists the package lists of d that s selects, in configuration
// order; a component, architecture or type s names that d does not have
// is an error.
func (s Selection) Targets(d *Distribution) ([]Target, error) {
	for _, c := range s.Components {
		if !d.HasComponent(c) {
			return nil, fmt.Errorf("%s: %w: %q (Components: %s)", d.Codename, ErrComponent, c, strings.Join(d.Components, " "))
		}
	}
	for _, a := range s.Architectures {
		if !d.HasArchitecture(a) && !(a == SourceArch && d.HasSource) {
			return nil, fmt.Errorf("%s: %w: %q (Architectures: %s)", d.Codename, ErrArchitecture, a, strings.Join(d.Architectures, " "))
		}
	}
	for _, ty := range s.Types {
		if ty != "deb" && ty != "dsc" && ty != DDeb && ty != UDeb {
			return nil, fmt.Errorf("%s: %w: package type %q; lampi-pkg has deb, udeb, ddeb and dsc package lists", d.Codename, ErrArchitecture, ty)
		}
	}
	var out []Target
	for _, t := range d.Targets() {
		if s.matches(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// matches reports whether t is among the selected targets.
func (s Selection) matches(t Target) bool {
	return (len(s.Components) == 0 || contains(s.Components, t.Component)) &&
		(len(s.Architectures) == 0 || contains(s.Architectures, t.Arch)) &&
		(len(s.Types) == 0 || contains(s.Types, typeOf(t)))
}

// typeOf is a target's package type as -T names it: "dsc" for a source
// list, "ddeb" and "udeb" for debug and installer lists, "deb" otherwise.
func typeOf(t Target) string {
	switch {
	case t.IsSource():
		return "dsc"
	case t.Type != "":
		return t.Type
	}
	return "deb"
}

// LsLine is one line of "reprepro ls": a version of a package in one
// distribution, and the architectures of the package lists holding it.
type LsLine struct {
	Codename      string   `json:"codename"`
	Version       string   `json:"version"`
	Architectures []string `json:"architectures"`
	// Component is set by LsByComponent only.
	Component string `json:"component,omitempty"`
}

// Ls finds every version of the package name in every distribution, as
// "reprepro ls": distributions in configuration order, in each the
// versions in the order its package lists (the selected ones; a
// distribution lacking a selected component or architecture is passed
// over) first show them, newest first within a list. It never waits for
// a writer's command.
func (r *Repo) Ls(ctx context.Context, sel Selection, name string) ([]LsLine, error) {
	return r.ls(sel, name, false)
}

// LsByComponent is Ls grouped by component as "reprepro lsbycomponent":
// in each distribution (configuration order), one line per version and
// component, with the component named (LsLine.Component).
func (r *Repo) LsByComponent(ctx context.Context, sel Selection, name string) ([]LsLine, error) {
	return r.ls(sel, name, true)
}

// ls is the one walk behind Ls and LsByComponent: the lines of a
// distribution merge the architectures of one version, within one
// component when byComponent is set.
func (r *Repo) ls(sel Selection, name string, byComponent bool) ([]LsLine, error) {
	var out []LsLine
	err := r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		for _, d := range r.Conf.Distributions {
			first, comp := len(out), ""
			for _, t := range d.Targets() {
				if !sel.matches(t) {
					continue
				}
				if byComponent && t.Component != comp {
					first, comp = len(out), t.Component
				}
				es, err := listTarget(tx, t, []string{name}, nil)
				if err != nil {
					return err
				}
				for _, e := range es {
					out = addLsArch(out, first, d.Codename, e.Version, t.Arch)
				}
				for i := first; byComponent && i < len(out); i++ {
					out[i].Component = comp
				}
			}
		}
		return nil
	})
	return out, err
}

// addLsArch records that the package list of arch in codename holds
// version: a new line, or one more architecture on the line of that
// version among lines[first:].
func addLsArch(lines []LsLine, first int, codename, version, arch string) []LsLine {
	for i := first; i < len(lines); i++ {
		if lines[i].Version == version {
			if !contains(lines[i].Architectures, arch) {
				lines[i].Architectures = append(lines[i].Architectures, arch)
			}
			return lines
		}
	}
	return append(lines, LsLine{Codename: codename, Version: version, Architectures: []string{arch}})
}

// List returns the packages of a distribution in reprepro's order
// (component, architecture, then name, and the versions of a name newest
// first by dpkg's rules), optionally only those named in names and those
// match accepts. It never waits for a writer's command.
func (r *Repo) List(ctx context.Context, codename string, sel Selection, names []string, match func(*Entry) bool) ([]Entry, error) {
	d, err := r.Conf.Distribution(codename)
	if err != nil {
		return nil, err
	}
	targets, err := sel.Targets(d)
	if err != nil {
		return nil, err
	}
	var out []Entry
	err = r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		for _, t := range targets {
			es, err := listTarget(tx, t, names, match)
			if err != nil {
				return err
			}
			out = append(out, es...)
		}
		return nil
	})
	return out, err
}

// listTarget returns the entries of one target: by name, and the
// versions of a name newest first (see newestFirst).
func listTarget(tx *bolt.Tx, t Target, names []string, match func(*Entry) bool) (out []Entry, err error) {
	b, err := targetBucket(tx, t, false)
	if err != nil || b == nil {
		return nil, err
	}
	defer func() { newestFirst(out) }()
	add := func(k, v []byte) {
		name, version := splitPkgKey(k)
		fk, stanza := splitPkgValue(v)
		e := Entry{Target: t, Package: name, Version: version, File: fk,
			Architecture: stanzaField(stanza, "Architecture"), Stanza: append([]byte(nil), stanza...)}
		if match == nil || match(&e) {
			out = append(out, e)
		}
	}
	if len(names) == 0 {
		err = b.ForEach(func(k, v []byte) error { add(k, v); return nil })
		return out, err
	}
	for _, n := range names {
		prefix := []byte(n + "\x00")
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
			add(k, v)
		}
	}
	return out, nil
}

// newestFirst orders the versions of each name in es newest first, as
// dpkg compares them, leaving the names where they are. The keys of a
// target sort by name and then by the version's bytes ("2.9-10" before
// "2.9-2"); reprepro lists, copies and removes in version order.
func newestFirst(es []Entry) {
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].Package == es[i].Package {
			j++
		}
		if j-i > 1 {
			group := es[i:j]
			sort.SliceStable(group, func(a, b int) bool {
				return looseVersion(group[a].Version).Compare(looseVersion(group[b].Version)) > 0
			})
		}
		i = j
	}
}

// String formats an entry as "reprepro list" does:
// "bookworm|main|amd64: hi 0.2".
func (e Entry) String() string {
	return e.Target.String() + ": " + e.Package + " " + e.Version
}
