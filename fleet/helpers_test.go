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
	tls        *tls.Config
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
	cl := paho.NewClient(paho.ClientConfig{ClientID: id, Conn: conn})
	cp := &paho.Connect{ClientID: id, KeepAlive: o.keepAlive, CleanStart: true}
	if o.user != "" {
		cp.UsernameFlag, cp.Username = true, o.user
		cp.PasswordFlag, cp.Password = true, []byte(o.pass)
	}
	if o.will {
		topic := o.willTopic
		if topic == "" {
			topic = state.StatusTopic(state.DefaultPrefix, id)
		}
		cp.WillMessage = &paho.WillMessage{Topic: topic, Payload: []byte(state.Offline), QoS: 1, Retain: true}
	}
	ca, err := cl.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		if ca != nil {
			return nil, fmt.Errorf("connect %s: reason %d %s", id, ca.ReasonCode, ca.Properties.ReasonString)
		}
		return nil, fmt.Errorf("connect %s: %w", id, err)
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
	if opts.ClientID == "" {
		opts.ClientID = "collector-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	c, err := NewCollector(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("collector stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("collector did not subscribe")
	}
	return c
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
