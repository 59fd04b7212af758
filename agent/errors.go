package agent

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every error of this package that matches one of them
// wraps it with the thing that failed (file and line, URL, package), so
// callers test with errors.Is and users read the whole message.
var (
	// ErrConfig: agent.conf or the apt source file is invalid.
	ErrConfig = errors.New("invalid configuration")
	// ErrSignature: InRelease is not signed by a key of the source's
	// Signed-By keyring, or a .deb's origin signature does not verify.
	ErrSignature = errors.New("signature check failed")
	// ErrExpired: the Release file's Valid-Until has passed.
	ErrExpired = errors.New("release file expired")
	// ErrNotYetValid: the Release file's Date lies in the future.
	ErrNotYetValid = errors.New("release file not valid yet")
	// ErrReplay: a Release older than the last accepted one was served
	// (a rollback or freeze attack, or a stale mirror).
	ErrReplay = errors.New("older release file refused")
	// ErrHashMismatch: a downloaded file's size or SHA256 differs from what
	// the signed index says.
	ErrHashMismatch = errors.New("hash sum mismatch")
	// ErrTooLarge: a server sent more bytes than the index allows, or more
	// than the configured limit.
	ErrTooLarge = errors.New("file too large")
	// ErrUnsafePath: an index names a file outside the repository.
	ErrUnsafePath = errors.New("unsafe path in index")
	// ErrIndex: the signed Release or Packages index is malformed or lacks
	// what the agent needs.
	ErrIndex = errors.New("bad repository index")
	// ErrHTTP: the server answered with an unexpected status.
	ErrHTTP = errors.New("unexpected HTTP response")
	// ErrStalled: a request received nothing for fetch_idle_timeout, or
	// the cycle's requests together took longer than fetch_timeout (a
	// stalled or trickling server, or something on the path holding the
	// connection).
	ErrStalled = errors.New("transfer stalled")
	// ErrLocked: the dpkg lock stayed taken for the whole lock timeout.
	ErrLocked = errors.New("dpkg is locked")
	// ErrInstall: apt-get or dpkg failed.
	ErrInstall = errors.New("install failed")
	// ErrHealthCheck: the health-check command failed after an install.
	ErrHealthCheck = errors.New("health check failed")
	// ErrNoRollback: the previous version's .deb is not in the cache, so a
	// failed update cannot be undone.
	ErrNoRollback = errors.New("no package to roll back to")
)

// RetryAfterError is returned when the server asked the agent to come back
// later (HTTP 429 or 503 with Retry-After).
type RetryAfterError struct {
	URL   string
	After time.Duration
	// TLS is true when the answer came over TLS (from the server the
	// certificate names); a plain-HTTP answer may come from anyone on
	// the path.
	TLS bool
	Err error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%s: server asks to retry after %s: %v", e.URL, e.After, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }
