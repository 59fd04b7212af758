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
	conn, err := net.Dial("tcp", strings.TrimPrefix(broker, "mqtt://"))
	if err != nil {
		return nil, err
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
		return nil, err
	}
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	typ, body, err := readPacket(r)
	if err != nil || typ>>4 != 2 || len(body) < 2 || body[1] != 0 {
		conn.Close()
		return nil, fmt.Errorf("connect %s: CONNACK %x %x: %v", id, typ, body, err)
	}
	conn.SetReadDeadline(time.Time{})
	d := &rawDevice{id: id, conn: conn, version: version, window: make(chan struct{}, window), done: make(chan struct{})}
	go d.readAcks(r)
	return d, nil
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
