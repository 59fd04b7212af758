// Package release takes package trees from source to a published, signed
// apt repository in one all-or-nothing command: bump → build → sign →
// commit → include → publish.
//
// # Basics
//
//	r, _ := repo.Open("/srv/repo", repo.Options{Now: time.Now})
//	rep, err := release.Run(ctx, release.Options{
//		Dirs: []string{"hi", "lampi-service"}, Repo: r, Part: "minor", Now: time.Now,
//	})
//
// The steps, in order:
//
//   - bump (with Options.Part): every tree's bump is prepared (bump.Prepare)
//     before any is applied, then applied.
//   - build: each tree is built (deb.Build) into Options.OutDir or a
//     temporary directory, never inside a tree.
//   - check: each package is compared with what the repository already
//     holds. The same name and version with the same content (an origin
//     signature aside) is already published: nothing to do for it. The same
//     version with other content is refused (bump the version); so is an
//     older version.
//   - sign (with Options.SignDeb): a debsigs origin signature is added.
//   - commit: the git commit and tag of each bump, if asked for.
//   - include and publish: one repo.IncludePublish for all the new
//     packages, so several trees go out in one signed publish.
//
// All or nothing: when a step fails, every file a bump changed is written
// back byte for byte (with its modification time, so that a rebuild gives
// the same package), the commits and tags made are removed, the packages
// built into OutDir are deleted, and the repository is left as it was
// (repo.IncludePublish restores it). The error is a *StepError naming the
// step and the tree.
//
// Running again without a bump and without changes finds every package
// already published and publishes nothing (Report.Published is false).
//
// Options.DryRun does everything that changes nothing: it prepares the
// bumps, builds the would-be packages from the trees with the bumped files
// overlaid (so build errors show), compares them with the repository, and
// checks that the repository can be signed; no tree, git or repository
// file is touched.
//
// # Releasing to a server
//
// With Options.Server instead of Options.Repo, the release publishes
// through a lampi-pkg server's upload API (with its client, package
// server/upload): the token and the distribution are checked before
// anything changes; the check step is the server's dry run (a "clash"
// verdict is looked at closer by downloading the published file, so that a rebuild of the same files is
// unchanged); packages are signed before the check (the server may
// require signatures), with Options.DebSigner only; the include and
// publish are one upload (step "upload") that the server checks,
// includes and publishes all or nothing. Should the answer to the upload
// get lost, the server is asked again whether it now holds every package.
// A refusal anywhere undoes the bump, commit and tag as for a local
// repository.
//
// # Caveats
//
// The repository's SignWith key is checked before anything changes, so a
// missing key fails the release at once. A process killed half way cannot
// undo anything: the trees keep the bump, and the repository is either as
// before or published (repo.IncludePublish is crash-safe, not rolled back).
package release
