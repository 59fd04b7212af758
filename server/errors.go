package server

import "errors"

// Sentinel errors of the token store. (The upload client's are in
// package server/upload.)
var (
	// ErrTokenInvalid: a bearer token is missing, malformed or unknown.
	ErrTokenInvalid = errors.New("invalid token")
	// ErrTokenRevoked: the token was revoked with "lampi-pkg token revoke".
	ErrTokenRevoked = errors.New("token revoked")
	// ErrTokenExists: a token with that name exists already.
	ErrTokenExists = errors.New("token name already in use")
	// ErrTokenNotFound: no token has that name or ID.
	ErrTokenNotFound = errors.New("no such token")
	// ErrScope: a scope is not of the form upload:CODENAME (or upload:*).
	ErrScope = errors.New("invalid scope")
)
