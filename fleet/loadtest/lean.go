package loadtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/lampi-pkg/lampi-pkg/internal/mqttconn"
)

// leanClient is the simulated devices' MQTT 5 client: one real
// connection with its own client id, login and Will, publishing at QoS 0
// or 1 and awaiting each PUBACK, and nothing a device does not need. A
// full paho client per device (its goroutines, per-packet allocations and
// session store) cost the load generator more CPU than the broker and the
// collector it measures. CONNECT and CONNACK go through paho's packets
// package; PUBLISH, PUBACK, PINGREQ and DISCONNECT are encoded here.
//
// Packet ids come from a fixed window (1 … window): a publisher takes one,
// and gives it back after its PUBACK, so at most window reports are in
// flight and an id is never reused while unacknowledged.
type leanClient struct {
	conn *mqttconn.Conn
	r    *bufio.Reader

	ids   chan uint16   // free packet ids
	acks  []chan byte   // by packet id: the PUBACK's reason code
	done  chan struct{} // closed when the reader stops
	err   error         // why, set before done is closed
	wrote atomic.Bool   // a packet was written since the last ping check
	once  sync.Once
	bufs  sync.Pool // *[]byte packet buffers
}

// errDisconnected is the error of publishes on a connection that is gone.
var errDisconnected = errors.New("the connection to the broker was lost")

// dialLean opens a connection with dialNet and logs in.
func dialLean(ctx context.Context, nc net.Conn, cp *packets.Connect, window int) (*leanClient, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	bc := mqttconn.New(nc, 4<<10)
	pkt := packets.NewControlPacket(packets.CONNECT)
	pkt.Content = cp
	if _, err := pkt.WriteTo(bc); err != nil {
		_ = bc.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	in, err := packets.ReadPacket(bc.Reader())
	if err != nil {
		_ = bc.Close()
		return nil, fmt.Errorf("connect: reading CONNACK: %w", err)
	}
	ca, ok := in.Content.(*packets.Connack)
	if !ok {
		_ = bc.Close()
		return nil, fmt.Errorf("connect: the broker answered with %s, not CONNACK", in.PacketType())
	}
	if ca.ReasonCode != 0 {
		_ = bc.Close()
		return nil, fmt.Errorf("%w: %s (reason code 0x%02x)", ErrRefused, reasonText(ca.ReasonCode), ca.ReasonCode)
	}
	if ca.Properties != nil && ca.Properties.ReceiveMaximum != nil {
		window = max(1, min(window, int(*ca.Properties.ReceiveMaximum)))
	}
	_ = nc.SetDeadline(time.Time{})
	c := &leanClient{conn: bc, r: bc.Reader(), ids: make(chan uint16, window), acks: make([]chan byte, window+1),
		done: make(chan struct{})}
	for id := 1; id <= window; id++ {
		c.ids <- uint16(id)
		c.acks[id] = make(chan byte, 1)
	}
	go c.read()
	return c, nil
}

// Done is closed when the connection is gone.
func (c *leanClient) Done() <-chan struct{} { return c.done }

func (c *leanClient) fail(err error) {
	c.once.Do(func() {
		c.err = err
		_ = c.conn.Close()
		close(c.done)
	})
}

// read handles what the broker sends: PUBACKs, PINGRESP, DISCONNECT.
func (c *leanClient) read() {
	var body [256]byte
	for {
		typ, err := c.r.ReadByte()
		if err != nil {
			c.fail(fmt.Errorf("%w: %w", errDisconnected, err))
			return
		}
		n, err := readVBI(c.r)
		if err != nil {
			c.fail(fmt.Errorf("%w: %w", errDisconnected, err))
			return
		}
		var b []byte
		if n <= len(body) {
			b = body[:n]
			_, err = io.ReadFull(c.r, b)
		} else { // a device is sent nothing large; skip it
			_, err = c.r.Discard(n)
		}
		if err != nil {
			c.fail(fmt.Errorf("%w: %w", errDisconnected, err))
			return
		}
		switch typ >> 4 {
		case packets.PUBACK:
			if len(b) < 2 {
				c.fail(fmt.Errorf("%w: malformed PUBACK", errDisconnected))
				return
			}
			id := int(binary.BigEndian.Uint16(b))
			code := byte(0)
			if len(b) >= 3 {
				code = b[2]
			}
			if id < 1 || id >= len(c.acks) {
				c.fail(fmt.Errorf("%w: PUBACK for unknown packet id %d", errDisconnected, id))
				return
			}
			select {
			case c.acks[id] <- code:
			default: // an ack for an id nobody waits for: ignore
			}
		case packets.DISCONNECT:
			code := byte(0)
			if len(b) >= 1 {
				code = b[0]
			}
			c.fail(fmt.Errorf("%w: the broker disconnected (reason code 0x%02x)", errDisconnected, code))
			return
		case packets.PUBLISH: // not subscribed: acknowledge and drop
			if qos := typ >> 1 & 3; qos == 1 && len(b) >= 2 {
				tl := int(binary.BigEndian.Uint16(b))
				if len(b) >= 4+tl {
					c.write([]byte{packets.PUBACK << 4, 2, b[2+tl], b[3+tl]})
				}
			}
		}
	}
}

func readVBI(r *bufio.Reader) (int, error) {
	n, shift := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, nil
		}
		shift += 7
		if shift > 21 {
			return 0, errors.New("malformed remaining length")
		}
	}
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

// write sends one whole packet; packets of concurrent writers share
// system calls (see mqttconn.Conn).
func (c *leanClient) write(pkt []byte) error {
	c.conn.Lock()
	_, err := c.conn.Write(pkt)
	c.conn.Unlock()
	if !c.wrote.Load() {
		c.wrote.Store(true)
	}
	return err
}

// Publish sends one message; at QoS 1 it returns once the broker
// acknowledged it (or refused it: the reason code is in the error).
func (c *leanClient) Publish(ctx context.Context, qos byte, retain bool, topic string, payload []byte) error {
	var id uint16
	if qos > 0 {
		select {
		case id = <-c.ids:
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	bp, _ := c.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	flags := byte(packets.PUBLISH<<4) | qos<<1
	if retain {
		flags |= 1
	}
	size := 2 + len(topic) + 1 + len(payload)
	if qos > 0 {
		size += 2
	}
	b := append((*bp)[:0], flags)
	b = appendVBI(b, size)
	b = binary.BigEndian.AppendUint16(b, uint16(len(topic)))
	b = append(b, topic...)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	b = append(b, 0) // no properties
	b = append(b, payload...)
	err := c.write(b)
	*bp = b
	c.bufs.Put(bp)
	if err != nil || qos == 0 {
		if qos > 0 {
			c.ids <- id
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errDisconnected, err)
		}
		return nil
	}
	select {
	case code := <-c.acks[id]:
		c.ids <- id
		if code >= 0x80 {
			return fmt.Errorf("PUBLISH %s (PUBACK reason code 0x%02x)", pubackReason(code), code)
		}
		return nil
	case <-c.done:
		return c.err
	case <-ctx.Done():
		// The id stays taken: its PUBACK may still come.
		return fmt.Errorf("no PUBACK: %w", ctx.Err())
	}
}

// ping sends a PINGREQ when nothing was written since the last call:
// the broker closes a connection silent for 1.5 × the keep-alive, so it
// is called at least every keep-alive / 2.
func (c *leanClient) ping() {
	if !c.wrote.Swap(false) {
		_ = c.write([]byte{packets.PINGREQ << 4, 0})
	}
}

// Disconnect says goodbye (no Will) and closes the connection.
func (c *leanClient) Disconnect() {
	_ = c.write([]byte{packets.DISCONNECT << 4, 0})
	c.fail(fmt.Errorf("%w: disconnected", errDisconnected))
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
