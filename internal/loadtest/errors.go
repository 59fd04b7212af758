package loadtest

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these with
// the option, address or connection at fault, so callers test with
// errors.Is and users read the whole message.
var (
	// ErrOptions is wrapped by every refusal of the options.
	ErrOptions = errors.New("load test options")
	// ErrNotLoopback is wrapped when a broker or server is not on this
	// machine and Options.AllowRemote is not set.
	ErrNotLoopback = errors.New("not a loopback address")
	// ErrConnect is wrapped when no connection to the broker could be made.
	ErrConnect = errors.New("cannot connect to broker")
	// ErrRefused is wrapped when the broker refused a connection (bad
	// login, not authorized).
	ErrRefused = errors.New("refused by the broker")
)
