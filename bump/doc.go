// Package bump changes the version of a package tree: DEBIAN/control and
// every file a bumpversion/bump2version configuration lists, then
// optionally commits and tags with git.
//
// # Basics
//
// A bump is done in steps that can be separated, so that "lampi-pkg
// release" can build and publish between them and undo everything when a
// later step fails:
//
//	plan, err := bump.Prepare(ctx, bump.Options{Dir: dir, Part: bump.Minor})
//	// plan.Old, plan.New, plan.Files (with their changed lines): nothing
//	// is written yet; plan.WriteDiff shows it (--dry-run).
//	applied, err := plan.Apply(ctx)  // files written, atomically each
//	// ... build, publish; on failure: applied.Rollback(ctx)
//	res, err := applied.Commit(ctx)  // git commit and tag, last
//
// Rollback restores every file byte for byte and also removes the commit
// and tag that Commit made, as long as nobody moved them since.
//
// # Configuration
//
// The configuration is read as bump2version 1.0.1 reads it: .bumpversion.cfg,
// else setup.cfg with a [bumpversion] section ("%" interpolation applies
// there). Its [bumpversion] section gives current_version, parse (a regular
// expression with named groups, Python's verbose mode), serialize (one
// template or more, one per line), search, replace, commit, tag, tag_name,
// tag_message, message, commit_args, sign_tags and allow_dirty; each
// [bumpversion:file:PATH] or [bumpversion:glob:PATTERN] section lists a file
// with its own parse, serialize, search and replace; each
// [bumpversion:part:NAME] section gives a part values, first_value and
// optional_value. Templates are Python format strings over the parts,
// {current_version}, {new_version}, {now:%Y-%m-%d}, {utcnow}, {$ENVVAR},
// {#} and {;}.
//
// Files change exactly as bump2version changes them, including its quirks:
// every listed file must contain the search text before anything changes;
// a file with no match for the search text gets every occurrence of
// current_version replaced instead; parts kept during a bump lose their
// [bumpversion:part] settings when the new current_version is serialized,
// while the files get that string parsed back (so they may show the
// version differently); and the
// configuration file is written back the way Python's configparser writes
// it (comments dropped, "key = value", continuation lines indented with a
// tab, [bumpversion] first). A table test runs the real bumpversion on the
// same trees and compares every byte.
//
// A configuration without parse reads current_version and --new-version
// as whole Debian versions (epoch, ~pre-release, +build, -revision), not
// as bump2version's three numbers found anywhere in the string; its parts
// are those of [Next] below, stepped the same way, and every file gets the
// version as it is, unless its section has its own serialize over the
// parts of [DebianParse] ({major}.{minor}, v{major}.{minor}.{patch}{pre}).
// On plain versions such as 1.4.10 the files change exactly as
// bump2version changes them.
//
// Without a configuration, the Version field of DEBIAN/control is stepped
// by [Next], Debian-aware: the epoch stays, the Debian revision goes back
// to 1 when the upstream version changes, pre-releases use '~' so that
// 1.2.3~rc1 sorts before 1.2.3, and "pre" walks 1.2.3 → 1.2.4~rc1 → ~rc2,
// then "final" (or "patch") makes it 1.2.4. A step from a pre-release
// that would release it releases it, as semver's increments do: patch,
// minor and final from 1.5.0~rc1 all give 1.5.0, major gives 2.0.0, and
// minor from 1.5.1~rc1 gives 1.6.0. Only the Version value of
// DEBIAN/control is changed; every other byte stays.
//
// # Caveats
//
// These differ from bump2version on purpose:
//
//   - The new version must sort after the old one in dpkg's order, both in
//     the configuration and in DEBIAN/control, or Prepare fails with
//     ErrOrder: a "1.2.3-rc1 → 1.2.3" release (semver style) is refused,
//     because dpkg sorts 1.2.3-rc1 after 1.2.3. Both versions must
//     therefore be valid Debian versions.
//   - The version asked for lands exactly, or nothing changes
//     (ErrSerialize): bump2version writes --new-version 1.5.0~rc1 into
//     current_version but 1.5.0 into the files, because its parse reads
//     only the three numbers; a release then publishes 1.5.0 and blocks
//     the real one. Here parse must match the whole version (also
//     current_version), the main serialize must write --new-version as
//     given, and no file may get a form that names a later version in
//     dpkg's order (1.5.0 for 1.5.0~rc1; a shorter form that sorts before
//     it, such as 1.5 for 1.5.1, is fine). Without parse every file's
//     form is judged so (0.1 written as 0.1.0 is refused too); with a
//     parse of its own, only forms that leave out a part that is set. The
//     error says which parse or serialize would write the version.
//   - Without parse, versions are read as Debian versions and the parts
//     are major, minor, patch, revision, pre and final (see above), where
//     bump2version would count up the patch of 1.5.0~rc1 to 1.5.1.
//   - With a configuration, DEBIAN/control is updated too (from
//     current_version, keeping its epoch and resetting its revision),
//     unless the configuration lists it and its search/replace changes it.
//     The part "revision" then steps only the revision of DEBIAN/control.
//   - Everything is checked before anything is written, and a failed write
//     restores what was written; bump2version can stop half way (on a file
//     with mixed line endings, for example, which both refuse).
//   - git refuses '~' and ':' in tag names ("git tag v1.2~rc1" fails, and
//     with it bump2version, after committing); they become '_' and '%' as
//     in DEP-14 (v1.2_rc1).
//   - Globs are expanded in sorted order; a setup.cfg without [bumpversion]
//     is not a configuration; [DEFAULT] sections are refused; the parse
//     pattern must be valid in Go's RE2 syntax (no look-around).
//   - The current version is never taken from git tags, only from the
//     configuration or DEBIAN/control.
package bump
