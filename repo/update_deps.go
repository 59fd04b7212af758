package repo

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// Filtered mirrors with dependencies: "WithDependencies:" in
// conf/updates, a lampi-pkg extension (reprepro has no such field; its
// FilterFormula takes exactly the packages it matches).
//
// The packages a rule's filters select for a package list are completed
// with what their Pre-Depends and Depends (and, with "recommends", their
// Recommends) need, resolved against every stanza the same rule's
// upstream indices list for that package list (its architecture and
// Architecture: all), before the filters, as aptly's "mirror create
// -with-deps" does: a relation is satisfied by a package already taken
// (by name and version, or by its Provides); otherwise the first
// alternative the upstream can satisfy is taken, at the newest version
// that satisfies the relation — a package of that name, else the first
// provider by name. Dependencies of what is taken are followed in turn.
// A relation nothing satisfies is a warning that names the package and
// the relation; it never stops the update.

// dependency levels of WithDependencies.
const (
	depsNone       = ""
	depsDepends    = "depends"
	depsRecommends = "recommends"
)

// parseWithDependencies reads "WithDependencies: yes|no|recommends".
func parseWithDependencies(v string) (string, error) {
	if strings.EqualFold(v, depsRecommends) {
		return depsRecommends, nil
	}
	b, err := parseYesNo(v)
	if err != nil {
		return "", fmt.Errorf("%q: write yes (Depends and Pre-Depends), recommends (also Recommends) or no", v)
	}
	if b {
		return depsDepends, nil
	}
	return depsNone, nil
}

// depFields returns the relation fields followed at level.
func depFields(level string) []string {
	if level == depsRecommends {
		return []string{"Pre-Depends", "Depends", "Recommends"}
	}
	return []string{"Pre-Depends", "Depends"}
}

// poolEntry is one upstream stanza dependencies can be resolved to.
type poolEntry struct {
	version deb.Version
	stanza  *deb.Paragraph
}

// addToPool records a stanza rule offers for the package list.
func (to *targetOffers) addToPool(rule, name string, v deb.Version, p *deb.Paragraph) {
	if to.pool == nil {
		to.pool = map[string]map[string][]poolEntry{}
	}
	m := to.pool[rule]
	if m == nil {
		m = map[string][]poolEntry{}
		to.pool[rule] = m
	}
	m[name] = append(m[name], poolEntry{v, p})
}

// provided is one Provides entry: the providing package and, for a
// versioned Provides, the version provided.
type provided struct {
	by    string
	entry poolEntry
	op    string
	ver   deb.Version
}

// providesOf parses the Provides field of a stanza; a field that does
// not parse provides nothing (and is warned about by the caller).
func providesOf(p *deb.Paragraph) (deb.Relations, error) {
	v := strings.TrimSpace(p.Get("Provides"))
	if v == "" {
		return nil, nil
	}
	rs, _, err := deb.ParseRelations("Provides", v)
	return rs, err
}

// depResolver completes the selection of one rule for one package list.
type depResolver struct {
	f     *updateFetcher
	t     Target
	rule  *UpdateRule
	to    *targetOffers
	pool  map[string][]poolEntry
	provs map[string][]provided // virtual name → pool providers
	taken map[string][]provided // virtual name → candidates providing it
}

// addDependencies takes, for rule's WithDependencies, what the
// candidates rule selected for t depend on.
func (f *updateFetcher) addDependencies(t Target, rule *UpdateRule, to *targetOffers) error {
	if rule.WithDependencies == depsNone {
		return nil
	}
	dr := &depResolver{f: f, t: t, rule: rule, to: to, pool: to.pool[rule.Name], provs: map[string][]provided{}, taken: map[string][]provided{}}
	for _, n := range slices.Sorted(maps.Keys(dr.pool)) {
		for _, e := range dr.pool[n] {
			dr.indexProvides(dr.provs, n, e)
		}
	}
	var queue []string
	for _, n := range slices.Sorted(maps.Keys(to.cands)) {
		c := to.cands[n]
		dr.indexProvides(dr.taken, n, poolEntry{c.version, c.stanza})
		if c.item.Rule == rule.Name {
			queue = append(queue, n)
		}
	}
	done := map[string]bool{}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		c := to.cands[n]
		key := n + " " + c.item.Version
		if done[key] || c.stanza == nil {
			continue
		}
		done[key] = true
		added, err := dr.complete(n, c)
		if err != nil {
			return err
		}
		queue = append(queue, added...)
	}
	return nil
}

// indexProvides adds what the stanza of name provides to idx.
func (dr *depResolver) indexProvides(idx map[string][]provided, name string, e poolEntry) {
	rs, err := providesOf(e.stanza)
	if err != nil {
		dr.f.r.opts.Warn(fmt.Sprintf("update %s: rule %s: %s %s: %v (its Provides are not used to resolve dependencies)", dr.t, dr.rule.Name, name, e.stanza.Get("Version"), err))
		return
	}
	for _, alt := range rs {
		for _, r := range alt {
			idx[r.Name] = append(idx[r.Name], provided{by: name, entry: e, op: r.Op, ver: r.Version})
		}
	}
}

// complete takes what candidate n needs and returns the names taken.
func (dr *depResolver) complete(n string, c *candidate) ([]string, error) {
	var added []string
	for _, field := range depFields(dr.rule.WithDependencies) {
		v := strings.TrimSpace(c.stanza.Get(field))
		if v == "" {
			continue
		}
		rels, _, err := deb.ParseRelations(field, v)
		if err != nil {
			dr.f.r.opts.Warn(fmt.Sprintf("update %s: rule %s: %s %s: %v: its %s are not followed", dr.t, dr.rule.Name, n, c.item.Version, err, field))
			continue
		}
		for _, alt := range rels {
			if dr.satisfiedByTaken(alt) {
				continue
			}
			name, e, ok := dr.pick(alt)
			if !ok {
				dr.f.r.opts.Warn(fmt.Sprintf("update %s: rule %s: %s %s %s %q: the upstream offers nothing that satisfies it; not mirrored (apt will not install %s from this mirror alone)", dr.t, dr.rule.Name, n, c.item.Version, field, deb.Relations{alt}.String(), n))
				continue
			}
			if err := dr.f.offerStanza(dr.rule, dr.t, name, e.version, e.stanza, dr.to); err != nil {
				return nil, err
			}
			nc := dr.to.cands[name]
			nc.item.Also = n
			dr.indexProvides(dr.taken, name, e)
			added = append(added, name)
		}
	}
	return added, nil
}

// archOK reports whether r's architecture qualifier can be satisfied
// from this package list.
func (dr *depResolver) archOK(r deb.Relation) bool {
	return r.ArchQual == "" || r.ArchQual == "any" || r.ArchQual == "native" || r.ArchQual == dr.t.Arch
}

// versionHolds reports whether version v satisfies r's version relation.
func versionHolds(r deb.Relation, v deb.Version) bool {
	if r.Op == "" {
		return true
	}
	rel, err := deb.ParseVersionRelation(r.Op)
	return err == nil && rel.Holds(v, r.Version)
}

// providesHolds reports whether a Provides entry satisfies r: any
// Provides for an unversioned relation, only "(= V)" with V satisfying
// it for a versioned one.
func providesHolds(r deb.Relation, p provided) bool {
	if r.Op == "" {
		return true
	}
	return p.op == "=" && versionHolds(r, p.ver)
}

// satisfiedByTaken reports whether a candidate already satisfies one
// alternative of alt.
func (dr *depResolver) satisfiedByTaken(alt deb.Alternatives) bool {
	for _, r := range alt {
		if !dr.archOK(r) {
			continue
		}
		if c := dr.to.cands[r.Name]; c != nil && versionHolds(r, c.version) {
			return true
		}
		for _, p := range dr.taken[r.Name] {
			if c := dr.to.cands[p.by]; c != nil && c.version.Compare(p.entry.version) == 0 && providesHolds(r, p) {
				return true
			}
		}
	}
	return false
}

// pick returns the upstream package that satisfies the first alternative
// of alt the upstream can satisfy: the newest satisfying version of a
// package of that name, else of the first provider by name. A name that
// is already a candidate (at a version that does not satisfy) is not
// taken again.
func (dr *depResolver) pick(alt deb.Alternatives) (string, poolEntry, bool) {
	for _, r := range alt {
		if !dr.archOK(r) {
			continue
		}
		if dr.to.cands[r.Name] == nil {
			if e, ok := newestHolding(dr.pool[r.Name], func(e poolEntry) bool { return versionHolds(r, e.version) }); ok {
				return r.Name, e, true
			}
		}
		var best *provided
		for i, p := range dr.provs[r.Name] {
			if dr.to.cands[p.by] != nil || !providesHolds(r, p) {
				continue
			}
			if best == nil || p.by < best.by || p.by == best.by && p.entry.version.Compare(best.entry.version) > 0 {
				best = &dr.provs[r.Name][i]
			}
		}
		if best != nil {
			return best.by, best.entry, true
		}
	}
	return "", poolEntry{}, false
}

// newestHolding returns the newest entry ok accepts.
func newestHolding(es []poolEntry, ok func(poolEntry) bool) (poolEntry, bool) {
	var best poolEntry
	found := false
	for _, e := range es {
		if ok(e) && (!found || e.version.Compare(best.version) > 0) {
			best, found = e, true
		}
	}
	return best, found
}
