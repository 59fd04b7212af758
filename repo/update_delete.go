package repo

import (
	"context"
	"sort"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// "Update: - rule…" (reprepro's delete rule).
//
// reprepro reads a distribution's Update field from left to right, per
// package list: it starts from what the list holds, and the "-" marks
// every package in it for deletion; a later rule clears the mark of a
// name when it offers that name (any version the filters let through:
// the same version keeps the local package, another one — newer or
// older — replaces it), and a FilterList "hold" clears it when the
// upstream lists the name. What is still marked at the end is deleted.
// So:
//
//   - only the rules after the last "-" count; what the rules before it
//     offer is marked too (reprepro uses them only to avoid downloads),
//   - FilterFormula, "deinstall", "purge", "warning" and "upgradeonly"
//     (for a name not held) do not clear the mark: such a local package
//     is deleted,
//   - a package list one of whose indices the upstream's Release does
//     not list gets no deletions (reprepro: "missing" index, deletes
//     ignored); a fetch that fails fails the whole update before
//     anything changes, so it deletes nothing either,
//   - under Limit the upgrade list sees only the newest version of each
//     name, and a deletion removes that version (older versions Limit
//     kept stay until a later update finds them newest and unoffered),
//     as reprepro's upgradelist does.

// activeRules returns the rule names of an Update field that count:
// those after the last "-" (all when there is none), and whether there
// is a "-".
func activeRules(update []string) (names []string, deleting bool) {
	for i := len(update) - 1; i >= 0; i-- {
		if update[i] == "-" {
			return update[i+1:], true
		}
	}
	return update, false
}

// targetOffers collects what the rules of one Update field offer for one
// package list.
type targetOffers struct {
	// local is the newest version the list holds of each name.
	local map[string]deb.Version
	// cands is the newest offer of each name.
	cands map[string]*candidate
	// held are the local names a FilterList holds where the upstream
	// lists them: kept under "-".
	held map[string]bool
	// deleting is set by a "-" in the Update field.
	deleting bool
	// incomplete is set when an index the rules map onto this list is
	// missing upstream: then nothing is deleted from it.
	incomplete bool
	// pool holds, per rule with WithDependencies, every stanza the rule
	// offers for this list (before the filters), by package name.
	pool map[string]map[string][]poolEntry
}

// items turns the offers into the plan for target t, in name order:
// installs and upgrades; under "-" also the downgrades (the only version
// offered is older than the local one) and the deletions.
func (to *targetOffers) items(t Target) []UpdateItem {
	deleting := to.deleting && !to.incomplete
	names := make([]string, 0, len(to.cands))
	for n := range to.cands {
		names = append(names, n)
	}
	if deleting {
		for n := range to.local {
			if to.cands[n] == nil {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	var items []UpdateItem
	for _, n := range names {
		c := to.cands[n]
		have, ok := to.local[n]
		switch {
		case c == nil:
			if !to.held[n] {
				items = append(items, UpdateItem{Target: t, Package: n, OldVersion: have.String(), Rule: "-", Delete: true})
			}
		case !ok:
			items = append(items, c.item)
		default:
			cmp := have.Compare(c.version)
			if cmp == 0 || cmp > 0 && !to.deleting {
				continue
			}
			it := c.item
			it.OldVersion = have.String()
			it.downgrade = cmp > 0
			items = append(items, it)
		}
	}
	return items
}

// updateRemovals removes from the inner repository of an update what
// the plan deletes or replaces by an older version (newest version
// first, as reprepro: name=version of the version the plan saw).
func updateRemovals(ctx context.Context, inner *Repo, codename string, items []UpdateItem) (*Result, error) {
	byTarget := map[Target][]string{}
	var order []Target
	for _, it := range items {
		if !it.Delete && !it.downgrade {
			continue
		}
		if byTarget[it.Target] == nil {
			order = append(order, it.Target)
		}
		byTarget[it.Target] = append(byTarget[it.Target], it.Package+"="+it.OldVersion)
	}
	res := &Result{}
	for _, t := range order {
		one, err := inner.Remove(ctx, codename, Selection{Components: []string{t.Component}, Architectures: []string{t.Arch}, Types: []string{"deb"}}, byTarget[t])
		if one != nil {
			res.Changes = append(res.Changes, one.Changes...)
		}
		if err != nil {
			return res, err
		}
	}
	return res, nil
}
