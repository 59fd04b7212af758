package repo

import (
	"errors"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// Sentinel errors. Every error returned by this package that matches one of
// these wraps it with the file and line, codename, package or pool file at
// fault and what to do, so callers test with errors.Is and users read the
// whole message.
var (
	// ErrConfig: conf/distributions or conf/options is malformed or
	// inconsistent (syntax error, missing Codename, duplicate codename…).
	// The message names file:line.
	ErrConfig = errors.New("repository configuration error")
	// ErrUnknownCodename: a command names a distribution that
	// conf/distributions does not define.
	ErrUnknownCodename = errors.New("unknown distribution")
	// ErrArchitecture: a package's architecture is not one the target
	// distribution lists in Architectures (and not "all").
	ErrArchitecture = errors.New("architecture not in the distribution")
	// ErrComponent: a component (-C) the distribution does not list.
	ErrComponent = errors.New("component not in the distribution")
	// ErrBadPackage: a file to include is not a usable .deb (not a deb,
	// truncated, missing or invalid control fields). It also wraps the
	// deb package's sentinel when there is one.
	ErrBadPackage = errors.New("unusable package")
	// ErrOlderVersion: the distribution already holds a newer version of
	// the package (by default; with Options.RepreproRules such a package
	// is skipped or added as reprepro does).
	ErrOlderVersion = errors.New("older than the version in the distribution")
	// ErrChecksum: a file named by a .dsc or .changes does not have the
	// size or a checksum the listing gives.
	ErrChecksum = errors.New("file does not match its listing")
	// ErrVersionClash: the same name, version and architecture is
	// already in the repository with different content. Bump the
	// version: apt never reinstalls a version it already has.
	ErrVersionClash = errors.New("same version with different content")
	// ErrNotFound: a package to remove, copy or phase is not in the
	// distribution (remove and copy: not with Options.RepreproRules,
	// which reports it in Result.NotFound).
	ErrNotFound = errors.New("package not found")
	// ErrArgument: a package argument does not parse (NAME or
	// NAME=VERSION; a glob of copymatched).
	ErrArgument = errors.New("invalid package argument")
	// ErrLocked: another process holds the repository lock longer than
	// the wait timeout (--waitforlock).
	ErrLocked = errors.New("repository is locked by another process")
	// ErrReadOnly: the distribution has "ReadOnly: yes".
	ErrReadOnly = errors.New("distribution is read-only")
	// ErrFilter: a listfilter/copyfilter formula does not parse.
	ErrFilter = errors.New("invalid filter formula")
	// ErrSigning: the distribution's SignWith key cannot be found or
	// cannot sign.
	ErrSigning = errors.New("cannot sign the distribution")
	// ErrCheck: check or checkpool found missing or damaged files.
	ErrCheck = errors.New("repository check failed")
	// ErrState: the state database is missing, from a newer lampi-pkg or
	// damaged.
	ErrState = errors.New("repository state database problem")
	// ErrUpdate: update could not mirror an upstream: a file is
	// missing, or does not match the size and SHA256 its signed listing
	// gives, or names a path outside the repository. Nothing changed.
	ErrUpdate = errors.New("update from upstream failed")
	// ErrUpdateSignature: an upstream's Release file is not signed by a
	// key its rule's VerifyRelease names (or no keyring holds that key).
	// Nothing of the upstream was trusted and nothing changed.
	ErrUpdateSignature = errors.New("upstream Release signature not trusted")
	// ErrTarget: a publish target cannot be used (unreachable endpoint,
	// missing bucket, refused credentials, bad configuration). It is
	// storage.ErrTarget, so either matches.
	ErrTarget = storage.ErrTarget
	// ErrTargetBehind: the local repository was published but a target
	// could not be brought up to date; the next command (or export)
	// completes it.
	ErrTargetBehind = errors.New("publish target is behind the local repository")
	// ErrUpload: an upload (.changes) was refused: the distribution's
	// Uploaders file does not allow its signer, its signature is bad, or
	// (processincoming) no distribution of the rule takes it or
	// including it failed. The error says which.
	ErrUpload = errors.New("upload refused")
)
