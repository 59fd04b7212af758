package storage

import "errors"

// Sentinel errors. An error of this package that matches one of these
// wraps it with the target, bucket or name at fault and what to do.
var (
	// ErrTarget is returned when a publish target cannot be used:
	// unreachable endpoint, missing bucket, refused credentials, bad URL
	// or configuration, or an object store whose clock dates a new
	// object before the one it replaces.
	ErrTarget = errors.New("publish target error")
	// ErrInvalidName is returned when a name given to a Storage is not a
	// clean relative slash-separated path inside its root ("", absolute,
	// "..", "a//b").
	ErrInvalidName = errors.New("invalid name")
)
