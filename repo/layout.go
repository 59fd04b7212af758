package repo

import "path/filepath"

// Layout names the files and directories of a repository's base
// directory: reprepro's own (conf/, db/, dists/, pool/) and those that
// lampi-pkg's server keeps beside them under db/. Every place that
// spells one of these paths asks a Layout instead, so they are written
// down once.
//
// A Layout is only names: it neither reads nor creates anything, and it
// does not apply conf/options (a confdir or dbdir there moves the
// repository's own files; Options.DBDir and friends say where they went).
type Layout struct {
	// Base is the repository's base directory (reprepro's basedir).
	Base string
}

// Conf is BASE/conf: conf/distributions, conf/options, conf/targets.
func (l Layout) Conf() string { return filepath.Join(l.Base, "conf") }

// KeyDir is BASE/conf/keys, where "lampi-pkg key generate" puts the
// signing keys that SignWith names by fingerprint.
func (l Layout) KeyDir() string { return filepath.Join(l.Base, "conf", "keys") }

// DB is BASE/db, the state directory.
func (l Layout) DB() string { return filepath.Join(l.Base, "db") }

// Dists is BASE/dists, the published indices.
func (l Layout) Dists() string { return filepath.Join(l.Base, "dists") }

// Release is BASE/dists/CODENAME/NAME (NAME: InRelease, Release,
// Release.gpg).
func (l Layout) Release(codename, name string) string {
	return filepath.Join(l.Base, "dists", codename, name)
}

// Pool is BASE/pool, the published packages.
func (l Layout) Pool() string { return filepath.Join(l.Base, "pool") }

// Tokens is BASE/db/tokens.db: the upload and device-API tokens of
// "lampi-pkg token" and "lampi-pkg serve" (hashes only).
func (l Layout) Tokens() string { return filepath.Join(l.Base, "db", "tokens.db") }

// FleetDB is BASE/db/fleet.db: the fleet database "lampi-pkg serve"
// collects device reports into and keeps device credentials in.
func (l Layout) FleetDB() string { return filepath.Join(l.Base, "db", "fleet.db") }

// ServeDates is BASE/db/serve-dates.db: the Last-Modified dates the
// server gave each version of a file under dists/.
func (l Layout) ServeDates() string { return filepath.Join(l.Base, "db", "serve-dates.db") }

// Uploads is BASE/db/uploads, where the server stages uploaded packages.
func (l Layout) Uploads() string { return filepath.Join(l.Base, "db", "uploads") }

// Rollouts is BASE/db/rollouts.db: the rollouts the update server's
// controller walks, their audit logs and the controller's lease.
func (l Layout) Rollouts() string { return filepath.Join(l.Base, "db", "rollouts.db") }
