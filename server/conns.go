package server

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/lampi-pkg/lampi-pkg/internal/netutil"
)

// Connection limits (Options.MaxConns, Options.MaxConnsPerAddr).
const (
	// DefaultMaxConns bounds the connections open at once: each costs a
	// file descriptor, and a process out of them accepts nobody.
	DefaultMaxConns = 4096
	// DefaultMaxConnsPerAddr bounds the connections open at once from one
	// client address (an IPv4 address, an IPv6 /64): a site of devices
	// behind one NAT address fits, one host cannot take every slot.
	DefaultMaxConnsPerAddr = 256
)

// connLimiter counts open connections, in all and per client address,
// and refuses those over a limit.
type connLimiter struct {
	max, perAddr int // ≤ 0: no limit
	metrics      *Metrics

	mu     sync.Mutex
	open   int
	byAddr map[netip.Prefix]int
}

func newConnLimiter(max, perAddr int, m *Metrics) *connLimiter {
	return &connLimiter{max: max, perAddr: perAddr, metrics: m, byAddr: map[netip.Prefix]int{}}
}

// acquire counts a new connection from addr, or reports false when it is
// over a limit (it is then not counted: close it). release undoes a
// successful acquire once, however often it is called.
func (l *connLimiter) acquire(addr net.Addr) (release func(), ok bool) {
	key := netutil.PeerKey(addr)
	l.mu.Lock()
	if l.max > 0 && l.open >= l.max || l.perAddr > 0 && l.byAddr[key] >= l.perAddr {
		l.mu.Unlock()
		l.metrics.connsRefused.Add(1)
		return nil, false
	}
	l.open++
	l.byAddr[key]++
	l.mu.Unlock()
	l.metrics.connsOpen.Add(1)
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		l.mu.Lock()
		l.open--
		if l.byAddr[key]--; l.byAddr[key] <= 0 {
			delete(l.byAddr, key)
		}
		l.mu.Unlock()
		l.metrics.connsOpen.Add(-1)
	}, true
}

// Listener returns ln with the server's connection limits applied
// (Options.MaxConns, Options.MaxConnsPerAddr): a connection over a limit
// is closed as soon as it is accepted, so that it holds no file
// descriptor. Use it where the Front is not used, e.g.
// hs.ServeTLS(s.Listener(ln), cert, key); the Front applies the limits
// itself.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: s.conns}
}

type limitListener struct {
	net.Listener
	l *connLimiter
}

func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := ln.l.acquire(c.RemoteAddr())
		if !ok {
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: release}, nil
	}
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// ReadFrom keeps sendfile(2) for net/http's file bodies.
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite keeps net/http's graceful close of a connection.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
