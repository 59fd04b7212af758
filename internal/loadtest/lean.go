package loadtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// leanClient is the simulated devices' MQTT 5 client: one real
// connection with its own client id, login and Will, publishing at QoS 0
// or 1, and nothing a device does not need. A full paho client per
// device (its goroutines, per-packet allocations and session store) cost
// the load generator more CPU than the broker and the collector it
// measures. CONNECT and CONNACK go through paho's packets package;
// PUBLISH, PUBACK, PINGREQ and DISCONNECT are encoded here.
//
// Packet ids come from a fixed window (1 … window): a publish takes one,
// and it is free again after its PUBACK, so at most window messages are in
// flight and an id is never reused while unacknowledged.
//
// A plain TCP connection is read by a reactor (see reactor_linux.go),
// shared by many connections; any other (TLS) by a goroutine of its own.
// The PUBACKs of the load test's state reports go to the connection's
// handler (the publisher, which counts them and may send the device's
// next report from there); Publish is the plain blocking call (status
// messages, tests).
//
// Packets are appended to a pending buffer under mu and written by
// whoever finds no write under way, everything pending in one system call
// (a shared connection's reports leave together).
type leanClient struct {
	nc  net.Conn // nil once a reactor took the socket over
	fd  int      // the socket a reactor reads, -1: nc is read by the client's own goroutine
	rx  *reactor
	rxi int // the connection's index in rx
	r   *leanReader

	mu    sync.Mutex
	h     leanHandler   // nil: only blocking publishes
	idle  *sync.Cond    // signalled when a write ends
	free  []uint16      // free packet ids
	slots []leanSlot    // by packet id
	wait  []chan uint16 // blocking publishes waiting for an id, in order

	out, spare []byte // pending bytes; the buffer being written
	writing    bool   // a goroutine is writing out
	werr       error  // the first write error
	wrote      bool   // a packet was queued since the last ping check

	done chan struct{} // closed when the connection is gone
	err  error         // why, set before done is closed
	once sync.Once
}

// leanSlot is one packet id.
type leanSlot struct {
	busy   bool      // taken: not acknowledged yet (or its owner gave up)
	report bool      // a state report of the handler's
	ack    chan byte // the blocking Publish waiting for the PUBACK
}

// leanHandler is told about the state reports of a connection.
type leanHandler interface {
	// puback handles a PUBACK for a packet id marked as a report; it is
	// called with mu held and releases the id itself. at is when the
	// PUBACK arrived (the kernel's receive time), zero if unknown.
	puback(id uint16, code byte, at time.Time)
	// lost is called once when the connection is gone, mu not held.
	lost(err error)
}

// maxPending bounds the bytes waiting to be written on one connection.
const maxPending = 1 << 20

// readBuf is the read buffer of a connection: a device is sent PUBACKs;
// a packet larger than this is skipped.
const readBuf = 512

// errDisconnected is the error of publishes on a connection that is gone.
var errDisconnected = errors.New("the connection to the broker was lost")

// dialLean logs in over nc and starts reading: rx, if not nil, takes
// the socket over when it can (plain TCP), else the client reads with a
// goroutine of its own. window bounds the messages in flight (the
// broker's Receive Maximum lowers it).
func dialLean(ctx context.Context, nc net.Conn, cp *packets.Connect, window int, rx *reactor) (*leanClient, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	pkt := packets.NewControlPacket(packets.CONNECT)
	pkt.Content = cp
	if _, err := pkt.WriteTo(nc); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	br := bufio.NewReaderSize(nc, readBuf)
	in, err := packets.ReadPacket(br)
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("connect: reading CONNACK: %w", err)
	}
	ca, ok := in.Content.(*packets.Connack)
	if !ok {
		_ = nc.Close()
		return nil, fmt.Errorf("connect: the broker answered with %s, not CONNACK", in.PacketType())
	}
	if ca.ReasonCode != 0 {
		_ = nc.Close()
		return nil, fmt.Errorf("%w: %s (reason code 0x%02x)", ErrRefused, reasonText(ca.ReasonCode), ca.ReasonCode)
	}
	if ca.Properties != nil && ca.Properties.ReceiveMaximum != nil {
		window = max(1, min(window, int(*ca.Properties.ReceiveMaximum)))
	}
	_ = nc.SetDeadline(time.Time{})
	c := &leanClient{nc: nc, fd: -1, free: make([]uint16, 0, window), slots: make([]leanSlot, window+1),
		done: make(chan struct{})}
	c.idle = sync.NewCond(&c.mu)
	for id := window; id >= 1; id-- {
		c.free = append(c.free, uint16(id))
	}
	c.r = &leanReader{c: c, buf: make([]byte, readBuf)}
	// What the CONNACK's reader took beyond it is the start of the stream.
	c.r.have = copy(c.r.buf, peekBuffered(br))
	if rx != nil && rx.take(c) {
		return c, nil
	}
	go c.r.run()
	return c, nil
}

func peekBuffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// Done is closed when the connection is gone.
func (c *leanClient) Done() <-chan struct{} { return c.done }

// fail ends the connection for good: err says why.
func (c *leanClient) fail(err error) {
	c.once.Do(func() {
		c.err = err
		c.closeIO()
		close(c.done)
		c.mu.Lock()
		h := c.h
		c.mu.Unlock()
		if h != nil {
			h.lost(err)
		}
	})
}

// attach makes h the handler of the client's reports; if the connection
// is gone already, h hears so at once.
func (c *leanClient) attach(h leanHandler) {
	c.mu.Lock()
	c.h = h
	gone := closed(c)
	c.mu.Unlock()
	if gone {
		h.lost(c.err) // lost may be called twice: it ignores the second
	}
}

// closeIO closes the connection. A socket of a reactor's is closed once
// no write is under way (a write then fails at once: shutdown), so its
// number cannot be reused under a writer or the reactor.
func (c *leanClient) closeIO() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr == nil {
		c.werr = net.ErrClosed // nothing is written any more
	}
	if c.fd < 0 {
		if c.nc != nil {
			_ = c.nc.Close()
		}
		return
	}
	_ = shutdownFD(c.fd)
	for c.writing {
		c.idle.Wait()
	}
	c.rx.drop(c)
	_ = closeFD(c.fd)
	c.fd = -1
}

// acquireLocked takes a free packet id.
func (c *leanClient) acquireLocked() (uint16, bool) {
	n := len(c.free)
	if n == 0 {
		return 0, false
	}
	id := c.free[n-1]
	c.free = c.free[:n-1]
	return id, true
}

// releaseLocked frees a packet id, handing it to the first blocking
// publish waiting for one.
func (c *leanClient) releaseLocked(id uint16) {
	c.slots[id] = leanSlot{}
	if len(c.wait) > 0 {
		ch := c.wait[0]
		c.wait = c.wait[:copy(c.wait, c.wait[1:])]
		ch <- id // buffered, and only this sends on it
		return
	}
	c.free = append(c.free, id)
}

// appendPublishLocked queues one PUBLISH (packet id 0 at QoS 0).
func (c *leanClient) appendPublishLocked(qos byte, retain bool, topic string, id uint16, payload []byte) {
	flags := byte(packets.PUBLISH<<4) | qos<<1
	if retain {
		flags |= 1
	}
	size := 2 + len(topic) + 1 + len(payload)
	if qos > 0 {
		size += 2
	}
	b := append(c.out, flags)
	b = appendVBI(b, size)
	b = binary.BigEndian.AppendUint16(b, uint16(len(topic)))
	b = append(b, topic...)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	b = append(b, 0) // no properties
	c.out = append(b, payload...)
	c.wrote = true
}

// waitRoomLocked waits while the pending bytes are over maxPending and
// another goroutine is writing them out.
func (c *leanClient) waitRoomLocked() {
	for len(c.out) >= maxPending && c.writing && c.werr == nil {
		c.idle.Wait()
	}
}

// flushLocked writes everything pending unless another goroutine is
// writing (it takes this along); mu is released during each write. A
// write error closes the connection, which ends the reader.
func (c *leanClient) flushLocked() error {
	if c.writing || len(c.out) == 0 {
		return c.werr
	}
	c.writing = true
	for len(c.out) > 0 && c.werr == nil {
		buf := c.out
		c.out, c.spare = c.spare[:0], nil
		fd := c.fd
		c.mu.Unlock()
		var err error
		if fd >= 0 {
			err = writeFD(fd, buf)
		} else {
			_, err = c.nc.Write(buf)
		}
		c.mu.Lock()
		c.spare = buf[:0]
		if err != nil && c.werr == nil {
			// Closing (or shutting down) the connection ends the reader.
			c.werr = err
			if fd >= 0 {
				_ = shutdownFD(fd)
			} else {
				_ = c.nc.Close()
			}
		}
	}
	if c.werr != nil {
		c.out = c.out[:0]
	}
	c.writing = false
	c.idle.Broadcast()
	return c.werr
}

// flush writes what is pending.
func (c *leanClient) flush() error {
	c.mu.Lock()
	err := c.flushLocked()
	c.mu.Unlock()
	return err
}

// Publish sends one message; at QoS 1 it returns once the broker
// acknowledged it (or refused it: the reason code is in the error).
func (c *leanClient) Publish(ctx context.Context, qos byte, retain bool, topic string, payload []byte) error {
	c.mu.Lock()
	if closed(c) {
		c.mu.Unlock()
		return c.err
	}
	if qos == 0 {
		c.appendPublishLocked(0, retain, topic, 0, payload)
		err := c.flushLocked()
		c.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%w: %w", errDisconnected, err)
		}
		return nil
	}
	id, ok := c.acquireLocked()
	if !ok {
		ch := make(chan uint16, 1)
		c.wait = append(c.wait, ch)
		c.mu.Unlock()
		select {
		case id = <-ch:
		case <-c.done:
			return c.err
		case <-ctx.Done():
			c.mu.Lock()
			select {
			case id := <-ch:
				c.releaseLocked(id)
			default:
				for i, w := range c.wait {
					if w == ch {
						c.wait = append(c.wait[:i], c.wait[i+1:]...)
						break
					}
				}
			}
			c.mu.Unlock()
			return ctx.Err()
		}
		c.mu.Lock()
	}
	ack := make(chan byte, 1)
	c.slots[id] = leanSlot{busy: true, ack: ack}
	c.appendPublishLocked(1, retain, topic, id, payload)
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", errDisconnected, err)
	}
	select {
	case code := <-ack:
		return pubackError(code)
	case <-c.done:
		return c.err
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		select {
		case code := <-ack: // it came after all
			return pubackError(code)
		default:
		}
		// The id stays taken: its PUBACK may still come.
		c.slots[id].ack = nil
		return fmt.Errorf("no PUBACK: %w", ctx.Err())
	}
}

// pubackError is the error of a PUBACK's reason code (nil: success).
func pubackError(code byte) error {
	if code >= 0x80 {
		return fmt.Errorf("PUBLISH %s (PUBACK reason code 0x%02x)", pubackReason(code), code)
	}
	return nil
}

// ackLocked handles the PUBACK of a blocking publish (or of one whose
// publisher gave up).
func (c *leanClient) ackLocked(id uint16, code byte) {
	s := &c.slots[id]
	if !s.busy {
		return // an ack for an id nobody waits for: ignore
	}
	if s.ack != nil {
		s.ack <- code // buffered, and only this sends on it
	}
	c.releaseLocked(id)
}

// ping sends a PINGREQ when nothing was written since the last call:
// the broker closes a connection silent for 1.5 × the keep-alive, so it
// is called at least every keep-alive / 2.
func (c *leanClient) ping() {
	c.mu.Lock()
	if !c.wrote {
		c.out = append(c.out, packets.PINGREQ<<4, 0)
		_ = c.flushLocked()
	}
	c.wrote = false
	c.mu.Unlock()
}

// Disconnect says goodbye (no Will) and closes the connection.
func (c *leanClient) Disconnect() {
	c.mu.Lock()
	c.out = append(c.out, packets.DISCONNECT<<4, 0)
	for c.writing {
		c.idle.Wait()
	}
	_ = c.flushLocked()
	c.mu.Unlock()
	c.fail(fmt.Errorf("%w: disconnected", errDisconnected))
}

// leanReader holds what was read of a connection and not handled yet.
type leanReader struct {
	c    *leanClient
	buf  []byte
	have int // bytes of an incomplete packet at the start of buf
	skip int // bytes of a packet too large for buf still to skip
}

// run reads the connection with a goroutine of its own (TLS, or no
// reactor).
func (r *leanReader) run() {
	c := r.c
	c.mu.Lock()
	err := r.feedLocked(0, time.Time{})
	c.mu.Unlock()
	for err == nil {
		var n int
		n, err = c.nc.Read(r.buf[r.have:])
		if n > 0 {
			c.mu.Lock()
			ferr := r.feedLocked(n, time.Time{})
			if ferr == nil {
				ferr = c.flushLocked()
			}
			c.mu.Unlock()
			if ferr != nil {
				err = ferr
			}
		}
	}
	c.fail(fmt.Errorf("%w: %w", errDisconnected, err))
}

// feedLocked handles the n bytes just read after the r.have kept ones:
// every complete packet; an incomplete one stays at the start of buf.
// at is when they arrived, zero if unknown.
func (r *leanReader) feedLocked(n int, at time.Time) error {
	b := r.buf[:r.have+n]
	var err error
	for len(b) > 0 {
		if r.skip > 0 {
			k := min(r.skip, len(b))
			r.skip -= k
			b = b[k:]
			continue
		}
		size, hl, ok, verr := parseVBI(b[1:])
		if verr != nil {
			err = verr
			break
		}
		if !ok {
			break
		}
		total := 1 + hl + size
		if total > len(r.buf) { // a device is sent nothing large; skip it
			r.skip = total
			continue
		}
		if len(b) < total {
			break
		}
		if err = r.c.packetLocked(b[0], b[1+hl:total], at); err != nil {
			break
		}
		b = b[total:]
	}
	r.have = copy(r.buf, b)
	return err
}

// parseVBI decodes a remaining length at the start of b: its value and
// length, ok false when b ends before it does.
func parseVBI(b []byte) (n, size int, ok bool, err error) {
	shift := 0
	for i, d := range b {
		n |= int(d&0x7f) << shift
		if d&0x80 == 0 {
			return n, i + 1, true, nil
		}
		shift += 7
		if shift > 21 {
			return 0, 0, false, errors.New("malformed remaining length")
		}
	}
	return 0, 0, false, nil
}

// packetLocked handles one packet from the broker.
func (c *leanClient) packetLocked(typ byte, b []byte, at time.Time) error {
	switch typ >> 4 {
	case packets.PUBACK:
		if len(b) < 2 {
			return errors.New("malformed PUBACK")
		}
		id := int(binary.BigEndian.Uint16(b))
		code := byte(0)
		if len(b) >= 3 {
			code = b[2]
		}
		if id < 1 || id >= len(c.slots) {
			return fmt.Errorf("PUBACK for unknown packet id %d", id)
		}
		if c.slots[id].report {
			c.h.puback(uint16(id), code, at)
		} else {
			c.ackLocked(uint16(id), code)
		}
	case packets.DISCONNECT:
		code := byte(0)
		if len(b) >= 1 {
			code = b[0]
		}
		return fmt.Errorf("the broker disconnected (reason code 0x%02x)", code)
	case packets.PUBLISH: // not subscribed: acknowledge and drop
		if qos := typ >> 1 & 3; qos == 1 && len(b) >= 2 {
			tl := int(binary.BigEndian.Uint16(b))
			if len(b) >= 4+tl {
				c.out = append(c.out, packets.PUBACK<<4, 2, b[2+tl], b[3+tl])
			}
		}
	}
	return nil
}

func appendVBI(b []byte, n int) []byte {
	for {
		d := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// pubackReason names the refusals a broker may answer a PUBLISH with.
func pubackReason(code byte) string {
	switch code {
	case 0x83:
		return "refused: implementation specific error"
	case 0x87:
		return "is not authorized"
	case 0x90:
		return "refused: topic name invalid"
	case 0x91:
		return "refused: packet identifier in use"
	case 0x97:
		return "refused: quota exceeded"
	case 0x99:
		return "refused: payload format invalid"
	}
	return "refused by the broker"
}
