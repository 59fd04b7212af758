package fleet

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// rawDevice is a lean MQTT 5 publisher for the benchmarks: one
// connection, QoS 1 publishes pipelined up to a window, acknowledgements
// counted by a reader goroutine. A paho client per simulated device would
// spend more CPU than the broker and collector being measured.
type rawDevice struct {
	id      string
	version byte
	conn    net.Conn
	window  chan struct{}
	acked   atomic.Int64
	failed  atomic.Int64
	done    chan struct{}
}

func appendVarint(b []byte, n int) []byte {
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func dialRaw(broker, id string, window int) (*rawDevice, error) {
	return dialRawVersion(broker, id, window, 5, "", "")
}

// dialRawVersion connects with MQTT 3.1.1 (4) or 5, optionally with a
// username and password.
func dialRawVersion(broker, id string, window int, version byte, user, pass string) (*rawDevice, error) {
	conn, r, err := rawConnect(broker, id, version, user, pass)
	if err != nil {
		return nil, err
	}
	d := &rawDevice{id: id, conn: conn, version: version, window: make(chan struct{}, window), done: make(chan struct{})}
	go d.readAcks(r)
	return d, nil
}

// rawConnect opens a connection and logs in with a clean session.
func rawConnect(broker, id string, version byte, user, pass string) (net.Conn, *bufio.Reader, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(broker, "mqtt://"))
	if err != nil {
		return nil, nil, err
	}
	var vh []byte
	vh = appendString(vh, "MQTT")
	flags := byte(0x02) // clean start
	if user != "" {
		flags |= 0xc0
	}
	vh = append(vh, version, flags)
	vh = binary.BigEndian.AppendUint16(vh, 300) // keep-alive
	if version == 5 {
		vh = append(vh, 0) // no properties
	}
	vh = appendString(vh, id) // payload: client id
	if user != "" {
		vh = appendString(vh, user)
		vh = appendString(vh, pass)
	}
	pkt := appendVarint([]byte{0x10}, len(vh))
	if _, err := conn.Write(append(pkt, vh...)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	typ, body, err := readPacket(r)
	if err != nil || typ>>4 != 2 || len(body) < 2 || body[1] != 0 {
		conn.Close()
		return nil, nil, fmt.Errorf("connect %s: CONNACK %x %x: %v", id, typ, body, err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn, r, nil
}

func readPacket(r *bufio.Reader) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for {
		c, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(c&0x7f) * mul
		if c&0x80 == 0 {
			break
		}
		mul *= 128
		if mul > 128*128*128 {
			return 0, nil, errors.New("bad remaining length")
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return typ, body, err
}

func (d *rawDevice) readAcks(r *bufio.Reader) {
	defer close(d.done)
	for {
		typ, body, err := readPacket(r)
		if err != nil {
			return
		}
		if typ>>4 == 4 { // PUBACK
			if len(body) > 2 && body[2] >= 0x80 {
				d.failed.Add(1)
			}
			d.acked.Add(1)
			<-d.window
		}
	}
}

// publishPacket encodes a retained QoS 1 MQTT 5 PUBLISH.
func publishPacket(topic string, id uint16, payload []byte) []byte {
	return publishPacketVersion(5, topic, id, payload)
}

func publishPacketVersion(version byte, topic string, id uint16, payload []byte) []byte {
	var vh []byte
	vh = appendString(vh, topic)
	vh = binary.BigEndian.AppendUint16(vh, id)
	if version == 5 {
		vh = append(vh, 0) // no properties
	}
	pkt := appendVarint([]byte{0x33}, len(vh)+len(payload))
	pkt = append(pkt, vh...)
	return append(pkt, payload...)
}

// send writes one prepared PUBLISH once the window has room.
func (d *rawDevice) send(pkt []byte) error {
	d.window <- struct{}{}
	_, err := d.conn.Write(pkt)
	return err
}

func (d *rawDevice) close() {
	d.conn.Write([]byte{0xe0, 0}) // DISCONNECT
	d.conn.Close()
	<-d.done
}

// rawSubscriber is the benchmarks' plain subscriber: one MQTT 5
// connection subscribed with QoS 1, which counts every PUBLISH and
// acknowledges it, nothing else. The acknowledgements of everything one
// read brought in leave in one write, as a lean client would send them.
type rawSubscriber struct {
	conn net.Conn
	done chan struct{}
}

func dialRawSubscriber(broker, id, filter string, got func()) (*rawSubscriber, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(broker, "mqtt://"))
	if err != nil {
		return nil, err
	}
	var vh []byte
	vh = appendString(vh, "MQTT")
	vh = append(vh, 5, 0x02)                    // MQTT 5, clean start
	vh = binary.BigEndian.AppendUint16(vh, 300) // keep-alive
	vh = append(vh, 0)                          // no properties
	vh = appendString(vh, id)
	if _, err := conn.Write(append(appendVarint([]byte{0x10}, len(vh)), vh...)); err != nil {
		conn.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	typ, body, err := readPacket(r)
	if err != nil || typ>>4 != 2 || len(body) < 2 || body[1] != 0 {
		conn.Close()
		return nil, fmt.Errorf("subscriber %s: CONNACK %x %x: %v", id, typ, body, err)
	}
	var sub []byte
	sub = binary.BigEndian.AppendUint16(sub, 1) // packet id
	sub = append(sub, 0)                        // no properties
	sub = appendString(sub, filter)
	sub = append(sub, 1) // QoS 1
	if _, err := conn.Write(append(appendVarint([]byte{0x82}, len(sub)), sub...)); err != nil {
		conn.Close()
		return nil, err
	}
	typ, body, err = readPacket(r)
	if err != nil || typ>>4 != 9 || len(body) < 4 || body[len(body)-1] >= 0x80 {
		conn.Close()
		return nil, fmt.Errorf("subscriber %s: SUBACK %x %x: %v", id, typ, body, err)
	}
	conn.SetReadDeadline(time.Time{})
	s := &rawSubscriber{conn: conn, done: make(chan struct{})}
	go s.read(r, got)
	return s, nil
}

func (s *rawSubscriber) read(r *bufio.Reader, got func()) {
	defer close(s.done)
	var acks []byte
	for {
		typ, body, err := readPacket(r)
		if err != nil {
			return
		}
		if typ>>4 == 3 {
			got()
			if qos := typ >> 1 & 3; qos > 0 && len(body) >= 2 {
				n := int(binary.BigEndian.Uint16(body))
				if len(body) >= 4+n {
					acks = append(acks, 0x40, 2, body[2+n], body[3+n])
				}
			}
		}
		if r.Buffered() == 0 && len(acks) > 0 {
			if _, err := s.conn.Write(acks); err != nil {
				return
			}
			acks = acks[:0]
		}
	}
}

func (s *rawSubscriber) close() {
	s.conn.Write([]byte{0xe0, 0}) // DISCONNECT
	s.conn.Close()
	<-s.done
}

// benchDevice is a simulated device for the ingest benchmark: its own
// MQTT connection, client id and session like rawDevice, but no goroutine
// of its own. A few sender goroutines drive all devices (see sendAll):
// with half its window in flight a device collects the PUBACKs that have
// arrived with one non-blocking read before it publishes, and it waits
// for them only when its window of unacknowledged reports is full. Thousands of parked readers and
// timers cost the load generator more CPU than the collector it measures.
type benchDevice struct {
	id       string
	conn     *net.TCPConn
	rc       syscall.RawConn
	window   int
	inflight int
	acked    int64
	failed   int64
	buf      [512]byte
	have     int
}

func dialBenchDevice(broker, id string, window int) (*benchDevice, error) {
	conn, r, err := rawConnect(broker, id, 5, "", "")
	if err != nil {
		return nil, err
	}
	if r.Buffered() > 0 { // the broker sends nothing unasked after CONNACK
		conn.Close()
		return nil, fmt.Errorf("%s: unexpected data after CONNACK", id)
	}
	d := &benchDevice{id: id, conn: conn.(*net.TCPConn), window: window}
	if d.rc, err = d.conn.SyscallConn(); err != nil {
		conn.Close()
		return nil, err
	}
	return d, nil
}

// collect reads the PUBACKs that have arrived; with wait it blocks until
// at least some bytes come.
func (d *benchDevice) collect(wait bool) error {
	var n int
	if wait {
		var err error
		if n, err = d.conn.Read(d.buf[d.have:]); err != nil {
			return err
		}
	} else {
		var rerr error
		err := d.rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), d.buf[d.have:])
			return true // never wait
		})
		if err != nil {
			return err
		}
		if rerr == syscall.EAGAIN {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		if n == 0 {
			return io.EOF
		}
	}
	d.have += n
	b := d.buf[:d.have]
	for len(b) >= 2 {
		if b[1]&0x80 != 0 {
			return fmt.Errorf("%s: unexpected large packet %x", d.id, b[0])
		}
		size := 2 + int(b[1])
		if len(b) < size {
			break
		}
		switch b[0] >> 4 {
		case 4: // PUBACK
			if b[1] >= 3 && b[4] >= 0x80 {
				d.failed++
			}
			d.acked++
			d.inflight--
		case 14: // DISCONNECT
			return fmt.Errorf("%s: the broker disconnected", d.id)
		}
		b = b[size:]
	}
	d.have = copy(d.buf[:], b)
	return nil
}

// send publishes one prepared PUBLISH once the window has room. Once
// half the window is in flight it collects the PUBACKs that arrived, so
// one read brings in several.
func (d *benchDevice) send(pkt []byte) error {
	if d.inflight >= max(1, d.window/2) {
		if err := d.collect(false); err != nil {
			return err
		}
	}
	for d.inflight >= d.window {
		if err := d.collect(true); err != nil {
			return err
		}
	}
	if _, err := d.conn.Write(pkt); err != nil {
		return err
	}
	d.inflight++
	return nil
}

// finish waits for every outstanding PUBACK. The deadline bounds a broker that stopped answering: it is renewed
// whenever acknowledgements come, however long the whole wait takes (on
// a loaded machine, a fixed minute for all of a device's window was not
// always enough).
func (d *benchDevice) finish(stall time.Duration) error {
	defer d.conn.SetReadDeadline(time.Time{})
	for d.inflight > 0 {
		d.conn.SetReadDeadline(time.Now().Add(stall))
		if err := d.collect(true); err != nil {
			return fmt.Errorf("%s: %d reports unacknowledged, none for %v: %w", d.id, d.inflight, stall, err)
		}
	}
	return nil
}

func (d *benchDevice) close() {
	d.conn.Write([]byte{0xe0, 0}) // DISCONNECT
	d.conn.Close()
}

// sendAll publishes packets[i][k] from device i on `senders` goroutines,
// device i's k-th report due at start + (k·n + i)/rate (rate 0: as fast
// as the windows allow). A sender that is early sleeps only when it is
// at least a millisecond ahead, so a due report leaves at most that late.
func sendAll(devs []*benchDevice, packets [][][]byte, rate float64, senders int, start time.Time) error {
	n := len(devs)
	g := newLimitGroup(senders)
	for s := range senders {
		g.Go(func() error {
			for k := range len(packets[0]) {
				for i := s; i < n; i += senders {
					if rate > 0 {
						due := start.Add(time.Duration(float64(k*n+i) / rate * float64(time.Second)))
						if w := time.Until(due); w >= time.Millisecond {
							time.Sleep(w)
						}
					}
					if err := devs[i].send(packets[i][k]); err != nil {
						return err
					}
				}
			}
			for i := s; i < n; i += senders {
				if err := devs[i].finish(5 * time.Minute); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}
