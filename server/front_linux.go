package server

import (
	"net"

	"golang.org/x/sys/unix"
)

// writeHead writes a response head; with more (a body follows with
// sendfile) it is sent with MSG_MORE, so that head and body leave in the
// same segments, as nginx's tcp_nopush does.
func writeHead(c *net.TCPConn, b []byte, more bool) error {
	if !more {
		_, err := c.Write(b)
		return err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		_, err = c.Write(b)
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			n, err := unix.SendmsgN(int(fd), b, nil, nil, unix.MSG_MORE|unix.MSG_NOSIGNAL)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false // wait until writable
			case err != nil:
				werr = err
				return true
			}
			b = b[n:]
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}
