package loadtest

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// TestLeanClientProtocol runs the devices' lean client against a
// scripted broker: the CONNECT carries the client id, login and Will;
// the broker's Receive Maximum bounds the reports in flight; a refused
// PUBACK is an error naming the reason; an idle connection pings; a
// DISCONNECT from the broker fails the publish waiting for its PUBACK.
// The connection is read by a goroutine of its own (TLS), or by a reactor
// (plain TCP on Linux).
func TestLeanClientProtocol(t *testing.T) {
	t.Run("goroutine", func(t *testing.T) { testLeanClientProtocol(t, nil) })
	t.Run("reactor", func(t *testing.T) {
		rx, err := newReactor()
		if err != nil {
			if runtime.GOOS == "linux" {
				t.Fatal(err)
			}
			t.Skipf("no reactor: %v", err)
		}
		quit, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-quit:
					return
				default:
				}
				rx.poll(reactorIdle)
			}
		}()
		defer func() {
			close(quit)
			rx.wake()
			<-done
			rx.close()
		}()
		testLeanClientProtocol(t, rx)
	})
}

func testLeanClientProtocol(t *testing.T, rx *reactor) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type seen struct {
		connect *packets.Connect
		ids     []uint16
		pings   int
		err     error
	}
	ready := make(chan *seen, 1)
	step := make(chan string)
	third := make(chan struct{})
	go func() {
		s := &seen{}
		defer func() { ready <- s }()
		c, err := l.Accept()
		if err != nil {
			s.err = err
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		in, err := packets.ReadPacket(r)
		if err != nil {
			s.err = err
			return
		}
		s.connect, _ = in.Content.(*packets.Connect)
		recvMax := uint16(2)
		ca := packets.NewControlPacket(packets.CONNACK)
		ca.Content.(*packets.Connack).Properties = &packets.Properties{ReceiveMaximum: &recvMax}
		if _, err := ca.WriteTo(c); err != nil {
			s.err = err
			return
		}
		// Three publishes are started; with a window of two, two
		// arrive before the first is acknowledged.
		for len(s.ids) < 2 {
			in, err := packets.ReadPacket(r)
			if err != nil {
				s.err = err
				return
			}
			if p, ok := in.Content.(*packets.Publish); ok {
				s.ids = append(s.ids, p.PacketID)
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := packets.ReadPacket(r); err == nil {
			s.err = errTest("a third PUBLISH beyond the broker's Receive Maximum")
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		// Accept the first, refuse the second (not authorized).
		c.Write([]byte{0x40, 2, byte(s.ids[0] >> 8), byte(s.ids[0])})
		c.Write([]byte{0x40, 3, byte(s.ids[1] >> 8), byte(s.ids[1]), 0x87})
		in, err = packets.ReadPacket(r)
		if err != nil {
			s.err = err
			return
		}
		if p, ok := in.Content.(*packets.Publish); ok {
			s.ids = append(s.ids, p.PacketID)
		}
		close(third)
		<-step // the client pings twice
		for s.pings == 0 {
			in, err := packets.ReadPacket(r)
			if err != nil {
				s.err = err
				return
			}
			if in.Type == packets.PINGREQ {
				s.pings++
			}
		}
		<-step
		c.Write([]byte{0xe0, 1, 0x8e}) // DISCONNECT: session taken over
	}()

	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cp := &packets.Connect{ProtocolName: "MQTT", ProtocolVersion: 5, ClientID: "lamp-1", KeepAlive: keepAlive,
		CleanStart: true, UsernameFlag: true, Username: "lamp-1", PasswordFlag: true, Password: []byte("pw"),
		WillFlag: true, WillQOS: 1, WillRetain: true, WillTopic: "devices/lamp-1/status", WillMessage: []byte("offline"),
		WillProperties: &packets.Properties{}, Properties: &packets.Properties{}}
	c, err := dialLean(context.Background(), nc, cp, 16, rx)
	if err != nil {
		t.Fatal(err)
	}
	if (rx != nil) != (c.fd >= 0) {
		t.Fatalf("reactor %v, connection's socket %d", rx != nil, c.fd)
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			errs <- c.Publish(context.Background(), 1, true, "devices/lamp-1/state", []byte(`{"seq":1}`))
		}()
	}
	var ok, refused int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case strings.Contains(err.Error(), "PUBLISH is not authorized"):
			refused++
		default:
			t.Errorf("publish: %v", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Errorf("%d acknowledged, %d refused; want 1 and 1", ok, refused)
	}
	select {
	case <-third:
	case s := <-ready:
		t.Fatalf("broker: %v", s.err)
	}
	c.ping() // something was written since the start: no ping
	c.ping() // idle since the last call: PINGREQ
	step <- "ping"
	step <- "disconnect"
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "connection to the broker was lost") {
		t.Errorf("publish during the broker's DISCONNECT: %v", err)
	}
	<-c.Done()
	s := <-ready
	if s.err != nil {
		t.Fatal(s.err)
	}
	if cc := s.connect; cc == nil || cc.ClientID != "lamp-1" || cc.Username != "lamp-1" || string(cc.Password) != "pw" ||
		!cc.WillFlag || cc.WillTopic != "devices/lamp-1/status" || string(cc.WillMessage) != "offline" || cc.WillQOS != 1 || !cc.WillRetain {
		t.Errorf("CONNECT %+v", s.connect)
	}
	if len(s.ids) != 3 || s.ids[0] == s.ids[1] || s.ids[2] != s.ids[0] && s.ids[2] != s.ids[1] {
		t.Errorf("packet ids %v: want two distinct, the third reusing a released one", s.ids)
	}
	if s.pings != 1 {
		t.Errorf("%d PINGREQs, want 1", s.pings)
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

// TestAppendDefaultPayload: the load generator's reflection-free report
// encoding writes exactly what state.Encode writes for DefaultPayload.
func TestAppendDefaultPayload(t *testing.T) {
	times := []time.Time{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", -7*3600)), time.Unix(1795393577, 1000).Local()}
	for i := range 40 {
		id := deviceID("loadtest-", i, 4000)
		now := times[i%len(times)]
		want, err := state.Encode(DefaultPayload(i, id, uint64(1795393577000000)+uint64(i), now))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendDefaultPayload(nil, i, id, uint64(1795393577000000)+uint64(i), now); string(got) != string(want) {
			t.Errorf("device %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
