//go:build !linux

package fleet

import "net"

// readableWaiter: only on Linux; elsewhere mochi's buffer is read directly.
func readableWaiter(net.Conn) func() error { return nil }
