package fleet

import (
	"bufio"
	"net"
	"sync"
)

// maxPendingWrite bounds the bytes waiting to be written on a collector
// connection; a writer past it waits for the flush.
const maxPendingWrite = 1 << 20

// coalescingConn is the collector's connection under paho, tuned for a
// stream of small packets in both directions:
//
//   - reads go through a 64 KiB buffer: paho reads a packet header byte
//     by byte, a system call each without a buffer;
//   - it is a sync.Locker, which paho holds around the writes of one
//     packet (paho writes a packet's header and body with separate
//     Writes: two system calls per PUBACK unbuffered);
//   - writes are appended to a pending buffer that a flusher goroutine
//     writes out: the PUBACKs of a committed batch, which paho sends one
//     after another, leave in a few system calls instead of one each.
//     Order is kept (one buffer, one writer), and Close writes what is
//     pending first, so a DISCONNECT still reaches the broker.
type coalescingConn struct {
	net.Conn
	r *bufio.Reader

	mu       sync.Mutex // held by paho across one packet's Writes
	cond     *sync.Cond // signalled when a flush ends
	pending  []byte
	spare    []byte
	flushing bool
	closed   bool
	err      error
	wake     chan struct{}
	stop     chan struct{}
}

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10),
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	cc.cond = sync.NewCond(&cc.mu)
	go cc.flusher()
	return cc
}

func (c *coalescingConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Lock starts a packet; it waits while too much is pending.
func (c *coalescingConn) Lock() {
	c.mu.Lock()
	for len(c.pending) >= maxPendingWrite && c.err == nil {
		c.cond.Wait()
	}
}

// Write appends to the pending bytes; paho calls it holding the lock.
func (c *coalescingConn) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.pending = append(c.pending, p...)
	return len(p), nil
}

// Unlock ends a packet and wakes the flusher.
func (c *coalescingConn) Unlock() {
	if len(c.pending) > 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
}

func (c *coalescingConn) flusher() {
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		c.mu.Lock()
		for len(c.pending) > 0 && c.err == nil && !c.closed {
			c.flushLocked()
		}
		c.mu.Unlock()
	}
}

// flushLocked writes what is pending without holding the lock during
// the system call; called with c.mu held, returns with it held.
func (c *coalescingConn) flushLocked() {
	c.flushing = true
	buf := c.pending
	c.pending, c.spare = c.spare[:0], nil
	c.mu.Unlock()
	_, err := c.Conn.Write(buf)
	c.mu.Lock()
	c.spare = buf[:0]
	if err != nil && c.err == nil {
		c.err = err
		_ = c.Conn.Close() // the reader fails and paho shuts down
	}
	c.flushing = false
	c.cond.Broadcast()
}

// Close writes what is pending and closes the connection.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.Conn.Close()
	}
	for c.flushing {
		c.cond.Wait()
	}
	c.closed = true
	if len(c.pending) > 0 && c.err == nil {
		_, c.err = c.Conn.Write(c.pending)
		c.pending = nil
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	close(c.stop)
	c.cond.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}
