// Package mqttconn is the connection under an MQTT client (paho, or the
// load generator's lean client) for streams of small packets: buffered
// reads, whole packets, and writes combined into few system calls.
package mqttconn

import (
	"bufio"
	"net"
	"sync"
)

// maxPending bounds the bytes waiting to be written on one connection;
// a writer past it waits for the flush.
const maxPending = 1 << 20

// Conn is the connection under one MQTT client, tuned for many
// small packets:
//
//   - reads go through a buffer: paho reads each packet a few bytes at a
//     time, which costs several system calls per PUBACK unbuffered;
//   - it is a sync.Locker, which paho holds around the writes of one
//     packet, so the packets of concurrent publishes never interleave;
//   - writes are combined: a packet is appended to a pending buffer, and
//     the writer that finds no flush under way writes everything pending
//     in one system call, again until nothing is left. Under load many
//     packets share a write; alone a packet goes out at once.
type Conn struct {
	net.Conn
	r *bufio.Reader

	mu       sync.Mutex // held by paho across one packet's Writes
	idle     *sync.Cond // signalled when a flush ends
	pending  []byte
	spare    []byte
	flushing bool
	err      error
	// wake, when set, hands flushing to a background goroutine: Unlock
	// only signals it, and whatever accumulated until it runs leaves in
	// one write (a subscriber's PUBACKs, written one after another by one
	// goroutine, would otherwise cost a system call each).
	wake chan struct{}
	stop chan struct{}
}

// New wraps c with a read buffer of readBuf bytes; a packet is written
// when its writer unlocks, together with whatever others added meanwhile.
func New(c net.Conn, readBuf int) *Conn {
	bc := &Conn{Conn: c, r: bufio.NewReaderSize(c, readBuf)}
	bc.idle = sync.NewCond(&bc.mu)
	return bc
}

// NewBatching is New with background flushing: Unlock only wakes a
// flusher, and what accumulated until it runs leaves in one write (a
// subscriber's PUBACKs, written one after another by one goroutine,
// would otherwise cost a system call each).
func NewBatching(c net.Conn, readBuf int) *Conn {
	bc := New(c, readBuf)
	bc.wake, bc.stop = make(chan struct{}, 1), make(chan struct{})
	go bc.flusher()
	return bc
}

// Reader is the buffered reader of the connection (Read reads from it).
func (c *Conn) Reader() *bufio.Reader { return c.r }

func (c *Conn) flusher() {
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		c.mu.Lock()
		if !c.flushing {
			c.flushLocked()
		}
		c.mu.Unlock()
	}
}

func (c *Conn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Lock starts a packet.
func (c *Conn) Lock() {
	c.mu.Lock()
	for len(c.pending) >= maxPending && c.err == nil {
		c.idle.Wait()
	}
}

// Write appends to the pending bytes; paho calls it holding the lock.
func (c *Conn) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.pending = append(c.pending, p...)
	return len(p), nil
}

// Unlock ends a packet and, unless another writer is flushing (it will
// take this packet along), flushes.
func (c *Conn) Unlock() {
	if c.flushing || len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	if c.wake != nil {
		select {
		case c.wake <- struct{}{}:
		default:
		}
		c.mu.Unlock()
		return
	}
	c.flushLocked()
	c.mu.Unlock()
}

// flushLocked writes everything pending, the lock released during each
// write; called and returns with c.mu held.
func (c *Conn) flushLocked() {
	c.flushing = true
	for len(c.pending) > 0 && c.err == nil {
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
	}
	c.flushing = false
	c.idle.Broadcast()
}

// Close writes what is pending (a DISCONNECT must reach the broker, or it
// publishes the Will) and closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	for c.flushing {
		c.idle.Wait()
	}
	if len(c.pending) > 0 && c.err == nil {
		_, c.err = c.Conn.Write(c.pending)
		c.pending = nil
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	if c.stop != nil {
		select {
		case <-c.stop:
		default:
			close(c.stop)
		}
	}
	c.idle.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}
