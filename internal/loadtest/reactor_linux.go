package loadtest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reactor reads many plain TCP connections through one epoll set of its
// own, outside Go's network poller: one goroutine (the publisher's, see
// serveReactor) collects the PUBACKs of all its connections in one
// epoll_wait and reads each with one recvmsg, instead of a goroutine
// waking, reading and parking per PUBACK. Every socket reports its
// receive time (SO_TIMESTAMPNS), so a PUBACK read late is still
// measured from when it arrived.
type reactor struct {
	epfd int
	efd  int // an eventfd in the set: wake makes poll return

	mu    sync.Mutex
	conns []*leanClient // by epoll data; nil once dropped

	// The reading goroutine's:
	events []unix.EpollEvent
	msg    unix.Msghdr
	iov    unix.Iovec
	oob    []byte
}

func newReactor() (*reactor, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(efd)
		return nil, err
	}
	rx := &reactor{epfd: epfd, efd: efd, events: make([]unix.EpollEvent, 256), oob: make([]byte, 64)}
	rx.msg.Iov = &rx.iov
	rx.msg.Iovlen = 1
	return rx, nil
}

// wake makes a poll under way (or the next) return.
func (rx *reactor) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(rx.efd, one[:])
}

// take moves a plain TCP connection from Go's poller to the reactor: its
// socket is duplicated and the net.Conn closed (which removes it from
// Go's poller). It returns false, changing nothing, if it cannot.
func (rx *reactor) take(c *leanClient) bool {
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return false
	}
	sc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if cerr := sc.Control(func(s uintptr) {
		fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); cerr != nil || err != nil {
		return false
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) != nil {
		_ = unix.Close(fd)
		return false
	}
	_ = unix.SetNonblock(fd, true)
	rx.mu.Lock()
	idx := len(rx.conns)
	rx.conns = append(rx.conns, c)
	rx.mu.Unlock()
	c.mu.Lock()
	c.fd, c.rx, c.rxi = fd, rx, idx
	c.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(idx)}
	if err := unix.EpollCtl(rx.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		c.mu.Lock()
		c.fd, c.rx = -1, nil
		c.mu.Unlock()
		rx.mu.Lock()
		rx.conns[idx] = nil
		rx.mu.Unlock()
		_ = unix.Close(fd)
		return false
	}
	c.mu.Lock()
	c.nc = nil
	var err2 error
	if c.r.have > 0 { // read with the CONNACK
		err2 = c.r.feedLocked(0, time.Time{})
	}
	c.mu.Unlock()
	_ = tc.Close()
	if err2 != nil {
		c.fail(fmt.Errorf("%w: %w", errDisconnected, err2))
	}
	return true
}

// drop forgets a connection; called with c.mu held before its socket is
// closed.
func (rx *reactor) drop(c *leanClient) {
	_ = unix.EpollCtl(rx.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	rx.mu.Lock()
	rx.conns[c.rxi] = nil
	rx.mu.Unlock()
}

// poll reads every connection with something to read, waiting up to
// msec milliseconds for one (0: not at all, and without entering the
// scheduler's blocking system call path).
func (rx *reactor) poll(msec int) {
	var n int
	var err error
	if msec == 0 {
		// epoll_pwait without a signal mask is epoll_wait, which not
		// every architecture has.
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(rx.epfd), uintptr(unsafe.Pointer(&rx.events[0])),
			uintptr(len(rx.events)), 0, 0, 0)
		n = int(r)
		if e != 0 {
			err = e
		}
	} else {
		n, err = unix.EpollWait(rx.epfd, rx.events, msec)
	}
	if err != nil {
		return // EINTR
	}
	for i := 0; i < n; i++ {
		idx := int(rx.events[i].Fd)
		if idx < 0 {
			var b [8]byte
			_, _ = unix.Read(rx.efd, b[:])
			continue
		}
		rx.mu.Lock()
		var c *leanClient
		if idx < len(rx.conns) {
			c = rx.conns[idx]
		}
		rx.mu.Unlock()
		if c != nil {
			rx.read(c)
		}
	}
}

// read reads a connection once and handles what came.
func (rx *reactor) read(c *leanClient) {
	c.mu.Lock()
	if c.fd < 0 {
		c.mu.Unlock()
		return
	}
	r := c.r
	n, at, err := rx.recv(c.fd, r.buf[r.have:])
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		c.mu.Unlock()
		return
	case err == nil && n == 0:
		err = io.EOF
	case err == nil:
		err = r.feedLocked(n, at)
		if err == nil {
			err = c.flushLocked()
		}
	}
	c.mu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("%w: %w", errDisconnected, err))
	}
}

// recv reads into p and returns when the last bytes read arrived.
func (rx *reactor) recv(fd int, p []byte) (int, time.Time, error) {
	rx.iov.Base = &p[0]
	rx.iov.SetLen(len(p))
	rx.msg.Control = &rx.oob[0]
	rx.msg.SetControllen(len(rx.oob))
	// The socket does not block: a raw system call spares the scheduler's
	// bookkeeping (and waking its monitor thread) around it.
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&rx.msg)), 0)
	if e != 0 {
		return 0, time.Time{}, e
	}
	var at time.Time
	oob := rx.oob[:rx.msg.Controllen]
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			at = time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
		oob = rest
	}
	return int(r), at, nil
}

// close closes the epoll set; every connection is closed already.
func (rx *reactor) close() {
	_ = unix.Close(rx.epfd)
	_ = unix.Close(rx.efd)
}

// writeFD writes all of b to a non-blocking socket: with raw system
// calls, as it does not block, and waiting in poll(2) when the socket's
// buffer is full.
func writeFD(fd int, b []byte) error {
	for len(b) > 0 {
		r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e == 0 {
			b = b[r:]
			continue
		}
		switch e {
		case unix.EINTR:
		case unix.EAGAIN:
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(fds, 1000); err != nil && err != unix.EINTR {
				return err
			}
		default:
			return e
		}
	}
	return nil
}

func shutdownFD(fd int) error { return unix.Shutdown(fd, unix.SHUT_RDWR) }

func closeFD(fd int) error { return unix.Close(fd) }
