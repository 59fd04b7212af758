package deb

import "errors"

// Sentinel errors. Every error returned by this package that matches one of
// these wraps it, so callers test with errors.Is and users still read the
// full message (file, line, field, what to do).
var (
	// ErrSyntax: a control file (deb822 paragraph) is malformed.
	ErrSyntax = errors.New("control file syntax error")
	// ErrMissingField: a mandatory control field is absent or empty.
	ErrMissingField = errors.New("missing mandatory field")
	// ErrInvalidField: a control field's value is not what dpkg accepts.
	ErrInvalidField = errors.New("invalid field value")
	// ErrInvalidVersion: a version string dpkg would reject.
	ErrInvalidVersion = errors.New("invalid version")
	// ErrInvalidTree: a package source tree cannot be built as is.
	ErrInvalidTree = errors.New("invalid package tree")
	// ErrNotDeb: the input is not a Debian binary package.
	ErrNotDeb = errors.New("not a Debian binary package")
	// ErrTruncated: an archive or one of its members ends early.
	ErrTruncated = errors.New("truncated archive")
	// ErrUnsafePath: an archive member would escape its destination.
	ErrUnsafePath = errors.New("unsafe path in archive")
	// ErrCompression: an unknown or unsupported compression.
	ErrCompression = errors.New("unsupported compression")
)
