package rollout

import "errors"

// Sentinel errors; every error of this package that matches one wraps it.
var (
	// ErrPlan: a rollout plan that cannot be parsed or makes no sense.
	ErrPlan = errors.New("invalid rollout plan")
)
