package fleet

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/netutil"
)

// guardListener protects the broker from clients that have not logged in
// yet: each connection must send its CONNECT (after the TLS handshake)
// within a deadline, and the connections of one address that have not
// logged in are bounded. Without it a socket that never sends CONNECT
// stays open for good, and many of them cost memory before any credential
// is checked. It also keeps every open connection, so the broker can close
// those that never logged in when it stops.
type guardListener struct {
	net.Listener
	timeout time.Duration
	max     int // ≤ 0: no limit
	log     *slog.Logger

	mu      sync.Mutex
	pending map[netip.Prefix]int
	open    map[*guardedConn]struct{}
	refused uint64
}

func newGuardListener(ln net.Listener, timeout time.Duration, max int, log *slog.Logger) *guardListener {
	return &guardListener{Listener: ln, timeout: timeout, max: max, log: log,
		pending: map[netip.Prefix]int{}, open: map[*guardedConn]struct{}{}}
}

// Accept returns the next connection within the limit; connections beyond
// it are closed here and never reach the broker.
func (l *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := netutil.PeerKey(c.RemoteAddr())
		l.mu.Lock()
		if l.max > 0 && l.pending[key] >= l.max {
			l.refused++
			n := l.refused
			l.mu.Unlock()
			c.Close()
			// Logged at the 1st, 2nd, 4th, 8th… refusal: a flood of
			// connections does not flood the log.
			if n&(n-1) == 0 {
				l.log.Warn("mqtt: connection closed: too many connections from one address have not logged in yet",
					"address", key.String(), "limit", l.max, "refused_so_far", n)
			}
			continue
		}
		gc := &guardedConn{Conn: c, l: l, key: key}
		l.pending[key]++
		l.open[gc] = struct{}{}
		l.mu.Unlock()
		if err := c.SetDeadline(time.Now().Add(l.timeout)); err != nil {
			gc.Close()
			continue
		}
		return gc, nil
	}
}

// closeOpen closes every connection still open (those that never logged
// in included).
func (l *guardListener) closeOpen() {
	l.mu.Lock()
	conns := make([]*guardedConn, 0, len(l.open))
	for c := range l.open {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// guardedConn is a connection counted as not logged in until loggedIn or
// Close.
type guardedConn struct {
	net.Conn
	l         *guardListener
	key       netip.Prefix
	loginOnce sync.Once
	closeOnce sync.Once
}

// notPending ends the connection's count against its address.
func (c *guardedConn) notPending() {
	c.loginOnce.Do(func() {
		c.l.mu.Lock()
		defer c.l.mu.Unlock()
		if c.l.pending[c.key]--; c.l.pending[c.key] <= 0 {
			delete(c.l.pending, c.key)
		}
	})
}

func (c *guardedConn) Close() error {
	c.notPending()
	c.closeOnce.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// loggedIn ends the pending count of the connection under conn (which
// may be the TLS connection around it); its deadline is the broker's
// keep-alive from now on.
func loggedIn(conn net.Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if gc, ok := conn.(*guardedConn); ok {
		gc.notPending()
	}
}
