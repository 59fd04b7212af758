package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// startMosquitto runs a private Mosquitto on a free loopback port with
// the given extra configuration lines and returns its mqtt:// URL.
func startMosquitto(t testing.TB, extra ...string) string {
	t.Helper()
	base := []string{"max_inflight_messages 0", "max_keepalive 65535"}
	return testutil.StartMosquitto(t, append(base, extra...)...).URL
}

// device is a simulated lampi-agent: one MQTT 5 connection.
type device struct {
	id   string
	conn net.Conn
	cl   *paho.Client
}

type deviceOptions struct {
	user, pass string
	keepAlive  uint16
	will       bool
	willTopic  string // default: the device's own status topic
	willBody   []byte // default: "offline"
	tls        *tls.Config
	clientID   string // default: the device id
	// resume connects without clean start, with a session that outlives
	// the connection (as a collector does).
	resume bool
	// received, if set, is called with every message the broker sends.
	received func(topic string)
}

// connectDevice connects a simulated device to broker (an mqtt:// URL).
func connectDevice(ctx context.Context, broker, id string, o deviceOptions) (*device, error) {
	var conn net.Conn
	var err error
	if addr, ok := strings.CutPrefix(broker, "mqtts://"); ok {
		conn, err = tls.Dial("tcp", addr, o.tls)
	} else {
		conn, err = net.Dial("tcp", strings.TrimPrefix(broker, "mqtt://"))
	}
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, err
		}
	}
	cid := id
	if o.clientID != "" {
		cid = o.clientID
	}
	// A generous acknowledgement deadline: it only bounds a failing test.
	cfg := paho.ClientConfig{ClientID: cid, Conn: conn, PacketTimeout: 2 * time.Minute}
	if o.received != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			o.received(pr.Packet.Topic)
			return true, nil
		}}
	}
	cl := paho.NewClient(cfg)
	cp := &paho.Connect{ClientID: cid, KeepAlive: o.keepAlive, CleanStart: !o.resume}
	if o.resume {
		expiry := uint32(3600)
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
	}
	if o.user != "" {
		cp.UsernameFlag, cp.Username = true, o.user
		cp.PasswordFlag, cp.Password = true, []byte(o.pass)
	}
	if o.will {
		topic := o.willTopic
		if topic == "" {
			topic = state.StatusTopic(state.DefaultPrefix, id)
		}
		body := o.willBody
		if body == nil {
			body = []byte(state.Offline)
		}
		cp.WillMessage = &paho.WillMessage{Topic: topic, Payload: body, QoS: 1, Retain: true}
	}
	ca, err := cl.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		if ca != nil {
			return nil, fmt.Errorf("connect %s as %s: reason %d (%#x) %s", id, cid, ca.ReasonCode, ca.ReasonCode, ca.Properties.ReasonString)
		}
		return nil, fmt.Errorf("connect %s as %s: %w", id, cid, err)
	}
	return &device{id: id, conn: conn, cl: cl}, nil
}

// publish sends a state report (retained, QoS 1) to topicID's state topic.
func (d *device) publish(ctx context.Context, topicID string, payload []byte) error {
	pr, err := d.cl.Publish(ctx, &paho.Publish{Topic: state.StateTopic(state.DefaultPrefix, topicID), QoS: 1, Retain: true, Payload: payload})
	if err != nil {
		return err
	}
	if pr != nil && pr.ReasonCode >= 0x80 {
		return fmt.Errorf("publish refused: reason code %#x", pr.ReasonCode)
	}
	return nil
}

// publishTo publishes payload retained at QoS 1 on any topic; a refusal
// in the PUBACK is an error.
func (d *device) publishTo(ctx context.Context, topic string, payload []byte) error {
	pr, err := d.cl.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: payload})
	if err != nil && pr != nil {
		return fmt.Errorf("publish refused: reason code %#x: %w", pr.ReasonCode, err)
	}
	if err != nil {
		return err
	}
	if pr != nil && pr.ReasonCode >= 0x80 {
		return fmt.Errorf("publish refused: reason code %#x", pr.ReasonCode)
	}
	return nil
}

func (d *device) status(ctx context.Context, s string) error {
	_, err := d.cl.Publish(ctx, &paho.Publish{Topic: state.StatusTopic(state.DefaultPrefix, d.id), QoS: 1, Retain: true, Payload: []byte(s)})
	return err
}

func (d *device) close() {
	d.cl.Disconnect(&paho.Disconnect{ReasonCode: 0})
	d.conn.Close()
}

// testState is the report device n sends with sequence seq.
func testState(id string, n int, seq uint64) state.State {
	s := state.State{Seq: seq, Time: time.Date(2026, 11, 22, 10, 0, int(seq), 0, time.UTC), Device: id,
		Agent: "0.3.0", Arch: "armhf", Result: state.ResultUpToDate,
		Packages: map[string]string{"hi": "0.2", "lampi-service": fmt.Sprintf("1.%d", seq)}}
	if n%4 == 0 {
		s.Packages["hi"] = "0.1"
	}
	if n%100 == 7 {
		s.Result, s.Error = state.ResultFailed, "postinst exited 1"
		s.Target = map[string]string{"hi": "0.3"}
	}
	return s
}

func mustEncode(t testing.TB, s state.State) []byte {
	b, err := state.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond until it holds; the deadline only bounds a failing
// test, it is not a speed requirement.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openTestStore(t testing.TB, opts StoreOptions) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "fleet.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// runCollector runs a collector in this process until the test ends.
func runCollector(t testing.TB, s *Store, opts CollectorOptions) *Collector {
	t.Helper()
	c, _ := startCollectorFor(t, s, opts)
	return c
}

// startCollector runs a collector in this process until stop (or the end
// of the test); stop returns once it has disconnected.
func startCollector(t testing.TB, s *Store, opts CollectorOptions) (stop func()) {
	t.Helper()
	_, stop = startCollectorFor(t, s, opts)
	return stop
}

func startCollectorFor(t testing.TB, s *Store, opts CollectorOptions) (*Collector, func()) {
	t.Helper()
	if opts.ClientID == "" && opts.Username == "" {
		// Anonymous, or a certificate: the login's own id is the
		// Username's default otherwise.
		opts.ClientID = "collector-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	c, err := NewCollector(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("collector stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("collector did not subscribe")
	}
	return c, stop
}

// limitGroup runs functions with bounded concurrency and keeps the first error.
type limitGroup struct {
	wg   sync.WaitGroup
	sem  chan struct{}
	once sync.Once
	err  error
}

func newLimitGroup(n int) *limitGroup { return &limitGroup{sem: make(chan struct{}, n)} }

func (g *limitGroup) Go(f func() error) {
	g.sem <- struct{}{}
	g.wg.Go(func() {
		defer func() { <-g.sem }()
		if err := f(); err != nil {
			g.once.Do(func() { g.err = err })
		}
	})
}

func (g *limitGroup) Wait() error {
	g.wg.Wait()
	return g.err
}
