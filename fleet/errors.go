package fleet

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these with
// the file, device or credential at fault, so callers test with errors.Is
// and users read the whole message.
var (
	// ErrLocked: another process (a running `serve` or `fleet collect`)
	// holds the fleet database open for writing.
	ErrLocked = errors.New("fleet database is in use by another process")
	// ErrNotFound: no device or credential with that id.
	ErrNotFound = errors.New("not found")
	// ErrExists: a credential with that id was already issued.
	ErrExists = errors.New("already exists")
	// ErrDatabase: the fleet database file is not one this package wrote
	// or is damaged.
	ErrDatabase = errors.New("unusable fleet database")
	// ErrBroker: the MQTT broker could not start or be reached.
	ErrBroker = errors.New("mqtt broker")
	// ErrCollectorStopped is Collector.Deliver's error once the collector
	// has stopped.
	ErrCollectorStopped = errors.New("fleet collector stopped")
)
