package bump

import "errors"

// Sentinel errors. Every error of this package that matches one of these
// wraps it, so callers test with errors.Is while users read the full
// message: which file and line, which part, and what to do.
var (
	// ErrConfig: the configuration file cannot be read as bump2version
	// would read it (syntax, unknown option, bad template or pattern).
	ErrConfig = errors.New("bad bump configuration")
	// ErrNoVersion: the tree has neither a configuration with
	// current_version nor a DEBIAN/control with a Version field.
	ErrNoVersion = errors.New("no version to bump")
	// ErrPart: the part cannot be bumped (unknown, or at its last value).
	ErrPart = errors.New("cannot bump part")
	// ErrVersion: a version is not one dpkg accepts, or the parse pattern
	// does not match it.
	ErrVersion = errors.New("invalid version")
	// ErrSerialize: the configuration cannot write the new version as it
	// is: its parse reads only part of it, its serialize writes it
	// differently (--new-version), or a file would get a form that names
	// a later version (1.5.0 for 1.5.0~rc1). The message says which
	// parse or serialize would.
	ErrSerialize = errors.New("configuration cannot write the version exactly")
	// ErrOrder: the new version does not sort after the old one in dpkg's
	// order.
	ErrOrder = errors.New("new version does not sort after the old one")
	// ErrMismatch: DEBIAN/control and the configuration disagree on the
	// current version.
	ErrMismatch = errors.New("versions disagree")
	// ErrNotFound: a file the configuration lists does not contain the
	// current version (as bump2version checks before changing anything).
	ErrNotFound = errors.New("version not found in file")
	// ErrDirty: the git working tree has uncommitted changes.
	ErrDirty = errors.New("git working tree is dirty")
	// ErrGit: a git command failed.
	ErrGit = errors.New("git failed")
	// ErrConflict: a file changed between Prepare and Apply, or between
	// Apply and Rollback; it is left alone.
	ErrConflict = errors.New("file changed meanwhile")
)
