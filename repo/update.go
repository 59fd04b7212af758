package repo

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// UpdateOptions refine Update.
type UpdateOptions struct {
	// Keyring holds the public keys VerifyRelease fields name (nil: only
	// blindtrust rules can be used).
	Keyring *signing.Keyring
	// HTTPClient fetches from http:// and https:// methods (nil:
	// http.DefaultClient). Bound its time, as a stalled upstream
	// otherwise blocks the update.
	HTTPClient *http.Client
	// Check only computes what would be done (checkupdate).
	Check bool
}

// UpdateItem is one package update installs (or, with Check, would).
type UpdateItem struct {
	Target  Target `json:"target"`
	Package string `json:"package"`
	Version string `json:"version"`
	// OldVersion is the newest local version before ("" when new).
	OldVersion string `json:"old_version,omitempty"`
	Rule       string `json:"rule"`
	// URL is where the .deb is fetched from ("" for a deletion).
	URL string `json:"url,omitempty"`
	// Delete marks a deletion ("Update: -"): OldVersion is removed and
	// Version is "".
	Delete bool `json:"delete,omitempty"`
	// Also is set on a package taken only because another one
	// depends on it (WithDependencies): the package that needs it.
	Also string `json:"also,omitempty"`

	section, priority string
	filename          string
	sums              Checksums
	up                *upstream
	local             string // the downloaded, verified file
	downgrade         bool   // under "-": replaces a newer local version
}

// UpdateResult reports what Update did.
type UpdateResult struct {
	Result
	// Items are the packages fetched from upstreams and, under
	// "Update: -", those deleted (with Check: those that would be), in
	// target and name order.
	Items []UpdateItem
}

// Update mirrors packages into the distributions named (all that have an
// Update field when none is named) from the upstreams their Update
// field names in conf/updates, as "reprepro update" does.
//
// For each rule the upstream's InRelease (or Release and Release.gpg) is
// fetched and its signature checked against the keys of o.Keyring that
// the rule's VerifyRelease names before any of it is believed
// ("VerifyRelease: blindtrust" skips that check, and only when written).
// Then the Packages indices of the mapped components and architectures
// are fetched, each checked against the size and SHA256 of the verified
// Release. Per local package list and name, the newest version the rules
// offer (after FilterFormula and FilterList) is installed when it is
// newer than the newest local one: its .deb is fetched — its Filename
// must stay below the upstream, and size and SHA256 must match the
// verified index — into the repository's private staging directory.
// A "-" in the Update field deletes what the rules after it do not
// offer (see update_delete.go); without it nothing is deleted.
//
// Only when every file of every distribution has been fetched and
// verified does anything change; each distribution is then included
// and published in one all-or-nothing step, as IncludePublish does.
func (r *Repo) Update(ctx context.Context, codenames []string, o UpdateOptions) (*UpdateResult, error) {
	rules, err := LoadUpdateRules(r.Conf.Dir)
	if err != nil {
		return nil, err
	}
	dists, err := r.updateDists(codenames, rules, o.Check)
	if err != nil {
		return nil, err
	}
	f := &updateFetcher{r: r, o: o, releases: map[string]*upstreamRelease{}, lists: map[string]fetchedList{}, ups: map[string]*upstream{}}
	res := &UpdateResult{}
	var plans [][]UpdateItem
	for _, d := range dists {
		items, err := f.plan(ctx, d, rules)
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", d.Codename, err)
		}
		plans = append(plans, items)
		res.Items = append(res.Items, items...)
	}
	if o.Check {
		return res, nil
	}
	staging, err := r.stagingDir()
	if err != nil {
		return nil, err
	}
	defer func() {
		os.RemoveAll(staging)
		os.Remove(r.tmpRoot) // only if empty, as after a snapshot
	}()
	if err := f.download(ctx, staging, plans); err != nil {
		return nil, err
	}
	res.Items = res.Items[:0]
	for i, d := range dists {
		res.Items = append(res.Items, plans[i]...)
		if len(plans[i]) == 0 {
			continue
		}
		one, err := r.updatePublish(ctx, d, plans[i])
		if one != nil {
			res.Changes = append(res.Changes, one.Changes...)
			res.Exported = append(res.Exported, one.Exported...)
			res.Deleted = append(res.Deleted, one.Deleted...)
		}
		if err != nil {
			return res, fmt.Errorf("update %s: %w", d.Codename, err)
		}
	}
	return res, nil
}

// updateDists returns the distributions to update and checks their
// Update fields.
func (r *Repo) updateDists(codenames []string, rules map[string]*UpdateRule, check bool) ([]*Distribution, error) {
	var dists []*Distribution
	if len(codenames) == 0 {
		for _, d := range r.Conf.Distributions {
			if len(d.Update) > 0 {
				dists = append(dists, d)
			}
		}
	}
	for _, c := range codenames {
		d, err := r.Conf.Distribution(c)
		if err != nil {
			return nil, err
		}
		if len(d.Update) == 0 {
			return nil, fmt.Errorf("update %s: %w: the distribution has no Update field (%s:%d); add \"Update: RULE\" naming a paragraph of conf/updates", c, ErrConfig, d.File, d.Line)
		}
		dists = append(dists, d)
	}
	for _, d := range dists {
		if d.ReadOnly && !check {
			return nil, fmt.Errorf("update %s: %w (ReadOnly in %s:%d)", d.Codename, ErrReadOnly, d.File, d.Line)
		}
		for _, name := range d.Update {
			if name != "-" && rules[name] == nil {
				return nil, fmt.Errorf("%s: %w: Update: no rule %q in conf/updates", d.UpdateAt, ErrConfig, name)
			}
		}
	}
	return dists, nil
}

// updateFetcher fetches and caches upstream Release files and indices
// for one Update call.
type updateFetcher struct {
	r        *Repo
	o        UpdateOptions
	ups      map[string]*upstream
	releases map[string]*upstreamRelease
	lists    map[string]fetchedList
}

// fetchedList is one upstream Packages index; listed is false when the
// Release lists no such index.
type fetchedList struct {
	ps     []*deb.Paragraph
	listed bool
}

// candidate is the newest version the rules offer of one name.
type candidate struct {
	version deb.Version
	item    UpdateItem
	stanza  *deb.Paragraph // the upstream's, for its dependencies
}

// plan computes the packages to install into d and, when its Update
// field has "-", those to delete (see targetOffers.items).
func (f *updateFetcher) plan(ctx context.Context, d *Distribution, rules map[string]*UpdateRule) ([]UpdateItem, error) {
	entries, err := f.r.List(ctx, d.Codename, Selection{Types: []string{"deb"}}, nil, nil)
	if err != nil {
		return nil, err
	}
	local := map[Target]map[string]deb.Version{}
	for _, e := range entries {
		v, err := deb.ParseVersion(e.Version)
		if err != nil {
			continue
		}
		m := local[e.Target]
		if m == nil {
			m = map[string]deb.Version{}
			local[e.Target] = m
		}
		if have, ok := m[e.Package]; !ok || v.Compare(have) > 0 {
			m[e.Package] = v
		}
	}
	names, deleting := activeRules(d.Update)
	var items []UpdateItem
	for _, t := range d.Targets() {
		if t.IsSource() {
			continue
		}
		to := &targetOffers{local: local[t], cands: map[string]*candidate{}, held: map[string]bool{}, deleting: deleting}
		for _, name := range names {
			if err := f.offer(ctx, d, t, rules[name], to); err != nil {
				return nil, err
			}
		}
		for _, name := range names {
			if err := f.addDependencies(t, rules[name], to); err != nil {
				return nil, err
			}
		}
		items = append(items, to.items(t)...)
	}
	return items, nil
}

// offer adds to to.cands what rule offers for target t of d.
func (f *updateFetcher) offer(ctx context.Context, d *Distribution, t Target, rule *UpdateRule, to *targetOffers) error {
	suite := rule.Suite
	switch {
	case suite == "" || suite == "*":
		suite = d.Codename
	case strings.HasPrefix(suite, "*/"):
		suite = d.Codename + suite[1:]
	}
	comps := rule.Components
	if comps == nil {
		for _, c := range d.Components {
			comps = append(comps, Mapping{c, c})
		}
	}
	archs := rule.Architectures
	if archs == nil {
		for _, a := range d.Architectures {
			if a != SourceArch {
				archs = append(archs, Mapping{a, a})
			}
		}
	}
	for _, a := range archs {
		if a.From == SourceArch || a.To == SourceArch {
			return fmt.Errorf("%s:%d: %w: Architectures: source packages are not mirrored by lampi-pkg's update; remove %q", rule.File, rule.Line, ErrConfig, a.From)
		}
	}
	for _, c := range comps {
		if c.To != t.Component {
			continue
		}
		for _, a := range archs {
			if a.To != t.Arch {
				continue
			}
			ps, listed, err := f.list(ctx, rule, suite, c.From, a.From)
			if err != nil {
				return err
			}
			if !listed {
				to.incomplete = true
			}
			for _, p := range ps {
				if err := f.consider(rule, t, a.From, p, to); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// consider applies rule's filters to one upstream stanza and keeps it in
// to.cands when it is the newest offer of its name.
func (f *updateFetcher) consider(rule *UpdateRule, t Target, fromArch string, p *deb.Paragraph, to *targetOffers) error {
	u := f.ups[rule.Method]
	name, vs, arch := p.Get("Package"), p.Get("Version"), p.Get("Architecture")
	v, err := deb.ParseVersion(vs)
	if name == "" || err != nil {
		return fmt.Errorf("%w: rule %s: a stanza of %s has no Package or a bad Version %q", ErrUpdate, rule.Name, u.method, vs)
	}
	if arch != "all" && arch != t.Arch {
		if arch == fromArch {
			return fmt.Errorf("%w: rule %s: %s %s is Architecture %s, which cannot go into %s: the package's own Architecture decides its list (map only Architecture: all packages, e.g. with \"FilterFormula: Architecture (== all)\")", ErrUpdate, rule.Name, name, vs, arch, t)
		}
		return fmt.Errorf("%w: rule %s: %s %s in the %s index has Architecture %s", ErrUpdate, rule.Name, name, vs, fromArch, arch)
	}
	if rule.WithDependencies != "" {
		to.addToPool(rule.Name, name, v, p)
	}
	if rule.Filter != nil && !rule.Filter.Match(&Entry{Target: t, Package: name, Version: vs, Architecture: arch, Stanza: []byte(p.String())}) {
		return nil
	}
	have, present := to.local[name]
	// Under "-" every local package is up for deletion, so reprepro
	// asks the FilterList about every offer of a local name, not only
	// about newer ones.
	asked := !present || have.Compare(v) < 0 || to.deleting
	if rule.FilterList != nil {
		switch rule.FilterList.action(name, vs) {
		case "deinstall", "purge":
			return nil
		case "hold":
			if present {
				to.held[name] = true
			}
			return nil
		case "upgradeonly":
			if !present {
				return nil
			}
		case "warning":
			if asked {
				f.r.opts.Warn(fmt.Sprintf("update %s: rule %s offers %s %s (FilterList says warning: not installed)", t, rule.Name, name, vs))
			}
			return nil
		case "error":
			if asked {
				return fmt.Errorf("%w: rule %s offers %s %s, which its FilterList marks error", ErrUpdate, rule.Name, name, vs)
			}
			return nil
		}
	}
	return f.offerStanza(rule, t, name, v, p, to)
}

// offerStanza makes the stanza p (name at version v) of rule's upstream
// the candidate for name unless a candidate as new is there already.
func (f *updateFetcher) offerStanza(rule *UpdateRule, t Target, name string, v deb.Version, p *deb.Paragraph, to *targetOffers) error {
	if c := to.cands[name]; c != nil && c.version.Compare(v) >= 0 {
		return nil
	}
	u := f.ups[rule.Method]
	vs := p.Get("Version")
	filename := p.Get("Filename")
	if err := checkRemotePath(filename); err != nil {
		return fmt.Errorf("rule %s: %s %s: %w", rule.Name, name, vs, err)
	}
	size, err := strconv.ParseInt(p.Get("Size"), 10, 64)
	sum := strings.ToLower(p.Get("SHA256"))
	if err != nil || size < 0 || len(sum) != 64 {
		return fmt.Errorf("%w: rule %s: %s %s: the index gives no usable Size and SHA256 to check the file by", ErrUpdate, rule.Name, name, vs)
	}
	to.cands[name] = &candidate{version: v, stanza: p, item: UpdateItem{
		Target: t, Package: name, Version: vs, Rule: rule.Name, URL: u.method + "/" + filename,
		section: p.Get("Section"), priority: p.Get("Priority"), filename: filename,
		sums: Checksums{Size: size, SHA256: sum}, up: u,
	}}
	return nil
}

// list returns the verified stanzas of comp/binary-arch of the upstream;
// listed is false when its Release lists no such index.
func (f *updateFetcher) list(ctx context.Context, rule *UpdateRule, suite, comp, arch string) (ps []*deb.Paragraph, listed bool, err error) {
	u := f.ups[rule.Method]
	if u == nil {
		u = newUpstream(rule.Method, f.o.HTTPClient)
		f.ups[rule.Method] = u
	}
	// A Release verified for one rule is not reused by another: their
	// VerifyRelease may differ.
	rkey := rule.Name + "\x00" + suite
	rel := f.releases[rkey]
	if rel == nil {
		if rel, err = f.r.fetchRelease(ctx, u, rule, suite, f.o.Keyring); err != nil {
			return nil, false, err
		}
		f.releases[rkey] = rel
	}
	lkey := rkey + "\x00" + comp + "\x00" + arch
	if l, ok := f.lists[lkey]; ok {
		return l.ps, l.listed, nil
	}
	ps, listed, err = f.r.fetchPackages(ctx, u, rel, comp, arch)
	if err != nil {
		return nil, false, fmt.Errorf("rule %s: %w", rule.Name, err)
	}
	if !listed {
		f.r.opts.Warn(fmt.Sprintf("update: rule %s: %s/dists/%s/Release lists no %s/binary-%s/Packages; nothing to take from there (and, under \"Update: -\", nothing is deleted from the package lists it feeds)", rule.Name, u.method, suite, comp, arch))
	}
	f.lists[lkey] = fetchedList{ps, listed}
	return ps, listed, nil
}

// download fetches every planned .deb once into staging, checking each
// against its verified size and SHA256.
func (f *updateFetcher) download(ctx context.Context, staging string, plans [][]UpdateItem) error {
	got := map[string]string{}
	for _, items := range plans {
		for i := range items {
			it := &items[i]
			if it.Delete {
				continue
			}
			if p, ok := got[it.URL]; ok {
				it.local = p
				continue
			}
			p := filepath.Join(staging, strconv.Itoa(len(got))+".deb")
			if err := fetchToFile(ctx, it.up, it.filename, it.sums, p); err != nil {
				return fmt.Errorf("update: %s %s (rule %s): %w", it.Package, it.Version, it.Rule, err)
			}
			got[it.URL], it.local = p, p
		}
	}
	return nil
}

// fetchToFile writes the verified upstream file rel to path.
func fetchToFile(ctx context.Context, u *upstream, rel string, want Checksums, path string) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = u.fetchVerified(ctx, rel, want, out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// updateGroup is the packages of one IncludeDeb call.
type updateGroup struct {
	component, arch, section, priority string
}

// updatePublish includes the fetched packages of d and publishes d, all
// or nothing (the way IncludePublish does).
func (r *Repo) updatePublish(ctx context.Context, d *Distribution, items []UpdateItem) (*Result, error) {
	signer, err := r.PublishSigner(ctx, d.Codename)
	if err != nil {
		return nil, err
	}
	groups := map[updateGroup][]UpdateItem{}
	var order []updateGroup
	for _, it := range items {
		if it.Delete {
			continue
		}
		k := updateGroup{it.Target.Component, it.Target.Arch, it.section, it.priority}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], it)
	}
	g, err := r.guard(ctx, d, signer, "update")
	if err != nil {
		return nil, err
	}
	defer g.close()
	res, err := updateRemovals(ctx, g.inner, d.Codename, items)
	if err != nil {
		return nil, r.rollback(ctx, g.snap, res, err)
	}
	for _, grp := range order {
		var files []string
		want := map[string]bool{}
		for _, it := range groups[grp] {
			files = append(files, it.local)
			want[it.Package+" "+it.Version] = true
		}
		one, err := g.inner.IncludeDeb(ctx, d.Codename, files, IncludeOptions{
			Component: grp.component, Architectures: []string{grp.arch}, Section: grp.section, Priority: grp.priority,
		})
		if one != nil {
			res.Changes = append(res.Changes, one.Changes...)
		}
		if err == nil {
			err = checkIncluded(one, want)
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return nil, r.rollback(ctx, g.snap, res, err)
		}
	}
	return r.publishGuarded(ctx, g, d, res)
}

// checkIncluded refuses a .deb that is not the package its upstream
// stanza described (a name or version differing from the index).
func checkIncluded(res *Result, want map[string]bool) error {
	var bad []string
	for _, c := range res.Changes {
		if c.Action == "remove" {
			continue
		}
		if !want[c.Package+" "+c.Version] {
			bad = append(bad, c.Package+" "+c.Version)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: the fetched .deb files hold %s, which their upstream index does not list under that name and version: refused", ErrUpdate, strings.Join(bad, ", "))
	}
	return nil
}
