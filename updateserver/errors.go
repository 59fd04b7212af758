package updateserver

import "errors"

// Sentinel errors of New, for a caller that maps them to its own advice
// (errors.Is). The error's text is the failing part's own, prefixed
// with what it was ("fleet database: …", "collector: …").
var (
	// ErrConfig is returned when Config lacks a required field (Dir,
	// Now) or holds a contradiction (no broker to collect from).
	ErrConfig = errors.New("updateserver: invalid configuration")
	// ErrFleetDB is returned when the fleet database cannot be opened:
	// most often another process (a second server, "fleet collect")
	// holds its lock.
	ErrFleetDB = errors.New("fleet database")
	// ErrBroker is returned when the embedded MQTT broker cannot start,
	// e.g. its address is taken.
	ErrBroker = errors.New("mqtt broker")
	// ErrCollector is returned when the collector cannot be set up for
	// the external broker, e.g. its URL does not parse.
	ErrCollector = errors.New("collector")
)

// tagged is an error whose text is err's and that also matches tag
// under errors.Is, so a sentinel can be attached without changing what
// the user reads.
type tagged struct {
	tag, err error
}

func (e *tagged) Error() string        { return e.err.Error() }
func (e *tagged) Unwrap() error        { return e.err }
func (e *tagged) Is(target error) bool { return target == e.tag }

func tag(sentinel, err error) error { return &tagged{tag: sentinel, err: err} }
