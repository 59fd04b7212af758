package state

import "errors"

// ErrInvalid is wrapped by every validation and decoding error.
var ErrInvalid = errors.New("invalid state report")
