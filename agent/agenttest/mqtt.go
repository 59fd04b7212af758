package agenttest

// The broker side of the agent's tests: a real Mosquitto and a subscriber
// that collects and waits for what devices publish under devices/#.

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// Mosquitto is a real broker on a free loopback port (testutil.Mosquitto).
type Mosquitto = testutil.Mosquitto

// FreePort returns a currently free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int { return testutil.FreePort(t) }

// NewMosquitto prepares an anonymous broker on a free port (not started).
func NewMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	return testutil.NewMosquitto(t, "allow_anonymous true")
}

// Message is one received publish.
type Message struct {
	Topic   string
	Payload string
	Retain  bool
}

// Subscriber collects messages under devices/#.
type Subscriber struct {
	cm *autopaho.ConnectionManager

	mu   sync.Mutex
	msgs []Message
	wake chan struct{}
}

// Messages returns every message received so far.
func (s *Subscriber) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// wait scans all messages (old and new) until match returns true.
func (s *Subscriber) wait(t testing.TB, what string, seen int, match func(Message) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		msgs, wake := s.msgs, s.wake
		s.mu.Unlock()
		for ; seen < len(msgs); seen++ {
			if match(msgs[seen]) {
				return
			}
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("no %s; received %v", what, msgs)
		}
	}
}

// Subscribe connects a subscriber to the broker (waiting for the
// subscription to be acknowledged).
func Subscribe(t testing.TB, brokerURL string) *Subscriber {
	t.Helper()
	u, _ := url.Parse(brokerURL)
	s := &Subscriber{wake: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	subscribed := make(chan error, 1)
	cfg := autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 30, CleanStartOnInitialConnection: true,
		ReconnectBackoff: autopaho.NewConstantBackoff(200 * time.Millisecond),
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			go func() {
				_, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: state.DefaultPrefix + "/#", QoS: 1}}})
				select {
				case subscribed <- err:
				default:
				}
			}()
		},
		ClientConfig: paho.ClientConfig{
			ClientID: fmt.Sprintf("test-sub-%d", time.Now().UnixNano()),
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				s.mu.Lock()
				s.msgs = append(s.msgs, Message{Topic: pr.Packet.Topic, Payload: string(pr.Packet.Payload), Retain: pr.Packet.Retain})
				close(s.wake)
				s.wake = make(chan struct{})
				s.mu.Unlock()
				return true, nil
			}},
		},
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.cm = cm
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		cm.Disconnect(dctx)
		dcancel()
		cancel()
	})
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("subscriber did not connect")
	}
	return s
}

// WaitState waits for a state report from device id for which ok returns
// true (among all received so far and new ones), failing after a minute.
func (s *Subscriber) WaitState(t testing.TB, id string, ok func(state.State) bool) state.State {
	t.Helper()
	var got state.State
	s.wait(t, "matching state report from "+id, 0, func(m Message) bool {
		if m.Topic != state.StateTopic(state.DefaultPrefix, id) {
			return false
		}
		st, err := state.Decode([]byte(m.Payload))
		if err != nil {
			t.Fatalf("bad state payload %q: %v", m.Payload, err)
		}
		got = st
		return ok(st)
	})
	return got
}

// WaitStatus waits for a status payload from device id.
func (s *Subscriber) WaitStatus(t testing.TB, id, want string) {
	t.Helper()
	s.WaitStatusSince(t, id, want, 0)
}

// WaitStatusSince waits for a status payload from device id among the
// messages from index since on (see Messages).
func (s *Subscriber) WaitStatusSince(t testing.TB, id, want string, since int) {
	t.Helper()
	s.wait(t, "status "+want+" from "+id, since, func(m Message) bool {
		return m.Topic == state.StatusTopic(state.DefaultPrefix, id) && m.Payload == want
	})
}
