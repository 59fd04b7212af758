package upload

import "errors"

// Sentinel errors an *APIError wraps, by HTTP status.
var (
	// ErrUnauthorized (401): no token, or one the server does not know.
	ErrUnauthorized = errors.New("the server refused the token")
	// ErrForbidden (403): the token is revoked or out of scope, or the
	// distribution is read-only.
	ErrForbidden = errors.New("the token may not upload there")
	// ErrConflict (409): the same version is published with other
	// content, or a newer version is.
	ErrConflict = errors.New("the package clashes with the published one")
	// ErrTooLarge (413): beyond the server's upload limit.
	ErrTooLarge = errors.New("upload too large for the server")
	// ErrRejected (415, 422, 400): not a usable .deb, a bad signature, a
	// package the distribution cannot take.
	ErrRejected = errors.New("the server rejected the package")
	// ErrBusy (503): the repository stayed locked through every retry.
	ErrBusy = errors.New("the server is busy")
)
