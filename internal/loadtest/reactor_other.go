//go:build !linux

package loadtest

import "errors"

// reactor is only implemented on Linux: elsewhere every connection is
// read by a goroutine of its own.
type reactor struct{}

var errNoReactor = errors.New("no reactor on this system")

func newReactor() (*reactor, error)       { return nil, errNoReactor }
func (rx *reactor) take(*leanClient) bool { return false }
func (rx *reactor) drop(*leanClient)      {}
func (rx *reactor) poll(int)              {}
func (rx *reactor) close()                {}
func (rx *reactor) wake()                 {}
func writeFD(int, []byte) error           { return errNoReactor }
func shutdownFD(int) error                { return errNoReactor }
func closeFD(int) error                   { return errNoReactor }
