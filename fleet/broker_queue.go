package fleet

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Write queues. mochi gives every connection a write queue of
// Capabilities.MaximumClientWritesPending entries, allocated when the
// connection arrives: 8192 entries are 64 KiB per connection, most of
// what an idle device cost. Only a subscriber ever uses it (mochi writes
// acknowledgements directly), and only collectors subscribe: a device
// login may not. So the listener reads each CONNECT first, and only a
// login that may subscribe (a collector, or an anonymous client on a
// broker that allows them) gets the deep queue the backpressure needs
// (see sinkHighWater); devices, and logins about to be refused, get a
// shallow one.
const (
	deepWritesPending    = 8192
	shallowWritesPending = 16
)

// queueSizer sets mochi's queue size for each new client: the size is a
// server-wide capability that mochi reads while it creates the client, so
// creations are serialised by mu, which a connection holds from setting
// the size until mochi first touches the connection (after creating the
// client, before reading from it).
type queueSizer struct {
	mu   sync.Mutex
	caps *mqtt.Capabilities
	pol  *policy
	max  int // the broker's MaximumPacketSize
}

// establish reads conn's CONNECT, sizes the write queue for the login it
// names and hands the connection, CONNECT included, to mochi.
func (q *queueSizer) establish(conn net.Conn, listener string, establish func(string, net.Conn) error) error {
	prefix, deep, err := q.peekConnect(conn)
	if err != nil {
		conn.Close()
		return err
	}
	pc := &peekedConn{Conn: conn, pending: prefix, wait: readableWaiter(conn)}
	q.mu.Lock()
	pc.release = sync.OnceFunc(q.mu.Unlock)
	q.caps.MaximumClientWritesPending = shallowWritesPending
	if deep {
		q.caps.MaximumClientWritesPending = deepWritesPending
	}
	defer pc.release() // if mochi never touched the connection
	return establish(listener, pc)
}

// peekConnect reads the first packet; deep says whether it is a CONNECT
// of a login that may subscribe. Anything else (another packet, one too
// large, a refused login) is returned for mochi to refuse as it does.
func (q *queueSizer) peekConnect(conn net.Conn) (prefix []byte, deep bool, err error) {
	// Everything read from conn is kept in buf, in order: what mochi is
	// given before the rest of the connection.
	var buf bytes.Buffer
	r := bufio.NewReaderSize(io.TeeReader(conn, &buf), 16)
	first, err := r.ReadByte()
	if err != nil {
		return nil, false, err
	}
	var fh packets.FixedHeader
	if fh.Decode(first) != nil || fh.Type != packets.Connect {
		return buf.Bytes(), false, nil
	}
	n, _, err := packets.DecodeLength(r)
	if err != nil || (q.max > 0 && n+1 > q.max) {
		return buf.Bytes(), false, nil
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, false, err
	}
	pk := packets.Packet{FixedHeader: fh}
	if pk.ConnectDecode(body) != nil {
		return buf.Bytes(), false, nil
	}
	c := pk.Connect
	will, willPayload := "", []byte(nil)
	if c.WillFlag {
		will, willPayload = c.WillTopic, c.WillPayload
	}
	who, err := q.pol.login(string(c.Username), c.Password, c.PasswordFlag, conn, c.ClientIdentifier, will, willPayload)
	return buf.Bytes(), err == nil && who.role != RoleDevice, nil
}

// peekedConn replays the bytes peekConnect read, then reads the
// connection; mochi's first use of it ends the queueSizer's hold.
//
// It also buffers the reads, so that an idle connection holds no read
// buffer: mochi keeps a buffer of ClientNetReadBufferSize for every
// connection, as long as it lasts (2 KiB each, a third of an idle
// device's heap), so the broker gives it the smallest (16 bytes) and
// this connection reads into a pooled buffer once the socket has data,
// and gives it back as soon as mochi took all it holds. (Without a way to
// wait for data without reading, as under TLS, it reads mochi's buffer
// directly; tls.Conn buffers records itself.)
type peekedConn struct {
	net.Conn
	release func()
	// wait blocks until the socket can be read (data, end of stream or
	// an error) or its read deadline passes; nil if it cannot be done.
	wait func() error
	// pending is what was read and not yet handed on: the peeked CONNECT,
	// then data in pooled (nil while the connection has none).
	pending []byte
	pooled  *[]byte
}

// readChunk is the pooled read buffer: several state reports.
const readChunk = 2 << 10

var readPool = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

func (c *peekedConn) Read(b []byte) (int, error) {
	c.release()
	if len(c.pending) == 0 && c.wait != nil && len(b) < readChunk {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	if len(c.pending) == 0 {
		return c.Conn.Read(b)
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil // the peeked CONNECT too
		if c.pooled != nil {
			readPool.Put(c.pooled)
			c.pooled = nil
		}
	}
	return n, nil
}

// fill waits for data without a buffer, then reads what came into a
// pooled one.
func (c *peekedConn) fill() error {
	if err := c.wait(); err != nil {
		return err
	}
	buf := readPool.Get().(*[]byte)
	n, err := c.Conn.Read(*buf)
	if n == 0 {
		readPool.Put(buf)
		return err
	}
	// A short read's error comes again with the next read.
	c.pooled, c.pending = buf, (*buf)[:n]
	return nil
}

func (c *peekedConn) Write(b []byte) (int, error) {
	c.release()
	return c.Conn.Write(b)
}
func (c *peekedConn) RemoteAddr() net.Addr { c.release(); return c.Conn.RemoteAddr() }
func (c *peekedConn) Close() error         { c.release(); return c.Conn.Close() }

// unwrapPeeked returns the connection under a peekedConn.
func unwrapPeeked(conn net.Conn) net.Conn {
	if pc, ok := conn.(*peekedConn); ok {
		return pc.Conn
	}
	return conn
}
