package repo

import (
	"context"
	"fmt"
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

func (s Selection) targets(d *Distribution) ([]Target, error) {
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
		if ty != "deb" && ty != "dsc" {
			return nil, fmt.Errorf("%s: %w: package type %q; lampi-pkg has deb and dsc package lists", d.Codename, ErrArchitecture, ty)
		}
	}
	typeOf := func(t Target) string {
		if t.IsSource() {
			return "dsc"
		}
		return "deb"
	}
	var out []Target
	for _, t := range d.Targets() {
		if (len(s.Components) == 0 || contains(s.Components, t.Component)) &&
			(len(s.Architectures) == 0 || contains(s.Architectures, t.Arch)) &&
			(len(s.Types) == 0 || contains(s.Types, typeOf(t))) {
			out = append(out, t)
		}
	}
	return out, nil
}

// List returns the packages of a distribution in reprepro's order
// (component, architecture, then name), optionally only those named in
// names and those match accepts. It never waits for a writer's command.
func (r *Repo) List(ctx context.Context, codename string, sel Selection, names []string, match func(*Entry) bool) ([]Entry, error) {
	d, err := r.Conf.Distribution(codename)
	if err != nil {
		return nil, err
	}
	targets, err := sel.targets(d)
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

// listTarget returns the entries of one target.
func listTarget(tx *bolt.Tx, t Target, names []string, match func(*Entry) bool) ([]Entry, error) {
	b, err := targetBucket(tx, t, false)
	if err != nil || b == nil {
		return nil, err
	}
	var out []Entry
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
		return out, b.ForEach(func(k, v []byte) error { add(k, v); return nil })
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

// String formats an entry as "reprepro list" does:
// "bookworm|main|amd64: hi 0.2".
func (e Entry) String() string {
	return e.Target.String() + ": " + e.Package + " " + e.Version
}
