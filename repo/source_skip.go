package repo

import (
	bolt "go.etcd.io/bbolt"
)

// skipOlderSource applies reprepro's rule for an older version to a
// source package being included (as addPackage does to a binary): under
// Options.RepreproRules, when the Limit-th newest version in its source
// target is newer, the package is skipped (Change "skip") and nothing
// changes. copy and move, which may downgrade, do not come here.
func (r *Repo) skipOlderSource(tx *bolt.Tx, d *Distribution, sp *sourcePackage, res *Result) (bool, error) {
	if !r.opts.RepreproRules {
		return false, nil
	}
	t := Target{Codename: d.Codename, Component: sp.component, Arch: SourceArch}
	b, err := targetBucket(tx, t, false)
	if err != nil || b == nil {
		return false, err
	}
	have, err := versionsOf(b, sp.name)
	if err != nil {
		return false, err
	}
	for _, e := range have {
		if e.version.Compare(sp.version) == 0 {
			return false, nil // the same version: putEntry decides
		}
	}
	kept := tooOld(tx, d, sp.name, have, sp.version)
	if kept == "" {
		return false, nil
	}
	res.Changes = append(res.Changes, Change{Action: "skip", Target: t, Package: sp.name, Version: sp.version.String(), OldVersion: kept, File: sp.files[0].filekey})
	return true, nil
}
