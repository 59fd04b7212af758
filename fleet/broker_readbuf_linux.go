package fleet

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// readableWaiter returns a function that blocks until conn (a plain TCP
// connection, possibly under the guard) can be read — data, end of
// stream or an error waiting — or its read deadline passes; nil for any
// other connection. It reads nothing: the bytes stay in the socket.
func readableWaiter(conn net.Conn) func() error {
	if gc, ok := conn.(*guardedConn); ok {
		conn = gc.Conn
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() error {
		var one [1]byte
		return rc.Read(func(fd uintptr) bool {
			for {
				_, _, err := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
				if err == unix.EINTR {
					continue
				}
				return err != unix.EAGAIN // else wait until readable
			}
		})
	}
}
