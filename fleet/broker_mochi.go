package fleet

import (
	"bytes"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// startMochi runs a mochi-mqtt server on ln with pol as its only hook.
func startMochi(ln net.Listener, pol *policy, opts BrokerOptions) (engine, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	// Retained states and statuses must outlive any quiet period: mochi
	// would delete them after 24 h, and would also expire queued QoS 1
	// messages for a disconnected collector.
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumInflight = uint16(opts.MaxQueued)
	// A client's write queue is allocated for every connection, devices
	// included, so it stays at mochi's default. mochi drops a QoS 1
	// message that does not fit it; the collector reads its socket
	// eagerly (its Receive Maximum is 65535, so the broker never holds
	// messages back and never takes mochi's slow "send when quota frees"
	// path), which keeps its queue short.
	caps.MaximumClientWritesPending = 8192
	srv := mqtt.New(&mqtt.Options{
		Capabilities:             caps,
		Logger:                   opts.Logger,
		InlineClient:             false,
		ClientNetWriteBufferSize: 32 << 10,
		ClientNetReadBufferSize:  8 << 10,
	})
	if err := srv.AddHook(&mochiHook{pol: pol}, nil); err != nil {
		return nil, err
	}
	if err := srv.AddListener(listeners.NewNet("lampi", ln)); err != nil {
		return nil, err
	}
	if err := srv.Serve(); err != nil {
		return nil, err
	}
	return srv, nil
}

// mochiHook applies the policy to mochi's authentication and ACL calls.
type mochiHook struct {
	mqtt.HookBase
	pol *policy
	// clients maps a client id to the connection that logged in with it
	// last. A session taken over by a new connection keeps the old
	// client object around; entries are keyed by id so they never pile
	// up, and the object is compared so a stale one gets no rights.
	clients sync.Map // string → login
}

type login struct {
	cl  *mqtt.Client
	who identity
}

func (h *mochiHook) ID() string { return "lampi-policy" }

func (h *mochiHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect,
		mqtt.OnClientExpired, mqtt.OnSessionEstablished}, []byte{b})
}

func (h *mochiHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	will := ""
	if pk.Connect.WillFlag {
		will = pk.Connect.WillTopic
	}
	who, ok := h.pol.login(string(pk.Connect.Username), pk.Connect.Password, pk.Connect.PasswordFlag, cl.Net.Conn, will)
	if ok {
		h.clients.Store(cl.ID, login{cl: cl, who: who})
	}
	return ok
}

func (h *mochiHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	v, ok := h.clients.Load(cl.ID)
	if !ok || v.(login).cl != cl {
		return false
	}
	return h.pol.may(v.(login).who, topic, write)
}

func (h *mochiHook) forget(cl *mqtt.Client) {
	if v, ok := h.clients.Load(cl.ID); ok && v.(login).cl == cl {
		h.clients.CompareAndDelete(cl.ID, v)
	}
}

// OnDisconnect forgets a client whose session ends with the connection;
// a persistent session keeps its rights to receive queued messages.
func (h *mochiHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if expire {
		h.forget(cl)
	}
}

func (h *mochiHook) OnClientExpired(cl *mqtt.Client) { h.forget(cl) }

// OnSessionEstablished turns off mochi's outbound flow control for the
// client. With a send quota, mochi calls Inflight.NextImmediate after
// every packet the client sends: it read-locks the inflight store twice
// (deadlocking against a concurrent publisher's write lock, seen under
// load in v2.7.9) and walks the whole store (O(inflight) per PUBACK), and
// messages it sends that way are dropped from the store before they are
// acknowledged. With a zero maximum quota mochi sends every message at
// once; a client still never has more than 65535 unacknowledged (packet
// ids), and the collector asks for exactly that many (Receive Maximum).
func (h *mochiHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	cl.State.Inflight.ResetSendQuota(0)
}
