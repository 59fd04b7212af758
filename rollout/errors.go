package rollout

import "errors"

// Sentinel errors; every error of this package that matches one wraps it.
var (
	// ErrPlan: a rollout plan that cannot be parsed or makes no sense.
	ErrPlan = errors.New("invalid rollout plan")
	// ErrNotFound: no rollout with that key.
	ErrNotFound = errors.New("rollout not found")
	// ErrExists: a rollout of that version is already open.
	ErrExists = errors.New("rollout exists")
	// ErrState: the rollout is not in a state that allows the request
	// (resume a completed rollout, pause a halted one).
	ErrState = errors.New("rollout state does not allow this")
	// ErrConflict: the rollout changed in the store while it was being
	// changed from what was read (a pause by hand during a tick); the
	// stored state stands, and the change is not saved.
	ErrConflict = errors.New("rollout changed meanwhile")
)
