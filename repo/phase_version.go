package repo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// PhaseVersion sets apt's Phased-Update-Percentage on one version of a
// package in every target of the distribution that holds it (100 removes
// the field), and publishes. Unlike Phase, which acts on the newest
// version, it names the version: a rollout controller must not phase a
// newer version someone published meanwhile. An error wraps ErrNotFound
// when no target holds that version.
func (r *Repo) PhaseVersion(ctx context.Context, codename, name, version string, percent int) (*Result, error) {
	return r.setPhase(ctx, codename, Selection{}, name+" "+version, percent, nil, versionOnly(version))
}

// versionOnly picks the entries of one version.
func versionOnly(version string) func([]Entry) []Entry {
	return func(es []Entry) []Entry {
		var out []Entry
		for _, e := range es {
			if e.Version == version {
				out = append(out, e)
			}
		}
		return out
	}
}

// setPhase sets Phased-Update-Percentage on the entries pick chooses
// among each selected target's entries of the package (what names the
// package and, for errors, the version), and the fields of extra ("" removes
// one) in the same publish.
func (r *Repo) setPhase(ctx context.Context, codename string, sel Selection, what string, percent int, extra map[string]string, pick func([]Entry) []Entry) (*Result, error) {
	name, _, _ := strings.Cut(what, " ")
	if percent < 0 || percent > 100 {
		return nil, fmt.Errorf("phase %s %s: percentage %d out of range 0..100", codename, what, percent)
	}
	d, err := r.writable("phase", codename)
	if err != nil {
		return nil, err
	}
	targets, err := sel.Targets(d)
	if err != nil {
		return nil, err
	}
	value := strconv.Itoa(percent)
	if percent == 100 {
		value = ""
	}
	return r.change(ctx, d, false, func(tx *bolt.Tx, res *Result) ([]string, error) {
		for _, t := range targets {
			es, err := listTarget(tx, t, []string{name}, nil)
			if err != nil {
				return nil, err
			}
			for _, e := range pick(es) {
				b, _ := targetBucket(tx, t, false)
				stanza := setStanzaField(e.Stanza, "Phased-Update-Percentage", value)
				for _, k := range slices.Sorted(maps.Keys(extra)) {
					stanza = setStanzaField(stanza, k, extra[k])
				}
				if err := putPkg(tx, b, t, pkgKey(e.Package, e.Version), pkgValue(e.File, stanza)); err != nil {
					return nil, err
				}
				res.Changes = append(res.Changes, Change{Action: "phase", Target: t, Package: e.Package, Version: e.Version, File: e.File})
			}
		}
		if len(res.Changes) == 0 {
			return nil, fmt.Errorf("phase %s: %w: %s", codename, ErrNotFound, what)
		}
		return nil, nil
	})
}
