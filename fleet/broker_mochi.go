package fleet

import (
	"bytes"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// startMochi runs a mochi-mqtt server on ln (guard, or TLS around it)
// with pol as its only hook.
func startMochi(ln net.Listener, guard *guardListener, pol *policy, opts BrokerOptions) (engine, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	// Retained states and statuses must outlive any quiet period: mochi
	// would delete them after 24 h, and would also expire queued QoS 1
	// messages for a disconnected collector.
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumInflight = uint16(opts.MaxQueued)
	// A client's write queue is allocated for every connection: deep for
	// the logins that may subscribe, shallow for devices (queueSizer sets
	// it per connection). mochi drops a QoS 1 message that does not fit
	// it; the collector reads its socket eagerly (its Receive Maximum is 65535, so the broker never holds
	// messages back and never takes mochi's slow "send when quota frees"
	// path), which keeps its queue short.
	caps.MaximumClientWritesPending = deepWritesPending
	// mochi reads a packet's announced length before the packet: larger
	// ones close the connection unread, CONNECT included (without a limit
	// one CONNECT header announcing 256 MiB had it allocate and fill
	// 256 MiB before any credential was checked).
	caps.MaximumPacketSize = uint32(opts.MaxPacketSize)
	// mochi allocates the read buffer for every connection and keeps it
	// while the connection lasts: it gets the smallest (16 bytes), and
	// the connection under it reads into a pooled 2 KiB buffer only while
	// data waits (see peekedConn), so an idle device holds none.
	srv := mqtt.New(&mqtt.Options{
		Capabilities:             caps,
		Logger:                   opts.Logger,
		InlineClient:             false,
		ClientNetWriteBufferSize: 32 << 10,
		ClientNetReadBufferSize:  16,
	})
	if err := srv.AddHook(&mochiHook{srv: srv, pol: pol, deliver: opts.Deliver, log: opts.Logger}, nil); err != nil {
		return nil, err
	}
	queues := &queueSizer{caps: caps, pol: pol, max: opts.MaxPacketSize}
	if err := srv.AddListener(&mochiListener{ln: ln, guard: guard, log: opts.Logger, queues: queues}); err != nil {
		return nil, err
	}
	if err := srv.Serve(); err != nil {
		return nil, err
	}
	return srv, nil
}

// mochiListener serves ln to mochi (in place of its listeners.Net). On
// Close it also closes the connections that never logged in, which mochi
// does not know of, and waits for every connection's goroutine: mochi's
// own Close would otherwise wait for a silent connection's deadline, and
// its wait group would race with connections still being set up.
type mochiListener struct {
	ln     net.Listener
	guard  *guardListener
	log    *slog.Logger
	queues *queueSizer

	mu     sync.Mutex // orders wg.Add against closing
	closed bool
	wg     sync.WaitGroup
}

func (l *mochiListener) ID() string                  { return "lampi" }
func (l *mochiListener) Address() string             { return l.ln.Addr().String() }
func (l *mochiListener) Protocol() string            { return l.ln.Addr().Network() }
func (l *mochiListener) Init(log *slog.Logger) error { return nil }

func (l *mochiListener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			conn.Close()
			return
		}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			if err := l.queues.establish(conn, l.ID(), establish); err != nil {
				l.log.Debug("mqtt: connection closed", "remote", conn.RemoteAddr().String(), "error", err)
			}
		}()
	}
}

func (l *mochiListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	l.ln.Close()
	closeClients(l.ID())
	l.guard.closeOpen()
	l.wg.Wait()
}

// mochiHook applies the policy to mochi's authentication and ACL calls.
type mochiHook struct {
	mqtt.HookBase
	srv     *mqtt.Server
	log     *slog.Logger
	pol     *policy
	deliver func(Message) error // BrokerOptions.Deliver
	// clients maps a client id to the connection that logged in with it
	// last. A session taken over by a new connection keeps the old
	// client object around; entries are keyed by id so they never pile
	// up, and the object is compared so a stale one gets no rights.
	clients sync.Map // string → login
	// sinks are the connections subscribed with QoS 1 or 2 (collectors,
	// plain subscribers), by client id: see OnPublish.
	sinks sync.Map // string → *mqtt.Client
	// Publishers held back wait for wake to be closed (see OnPublish).
	waiting atomic.Int32
	wakeMu  sync.Mutex
	wake    chan struct{}
	// retainMu orders mochi's retained store: a publish or Will that
	// retains holds it for writing (from OnPublish or OnWill to
	// OnRetainMessage), a new subscription's scan for reading (from
	// OnSubscribe to OnPacketProcessed). mochi v2.7.9 reads a topic's
	// retained path without its lock while scanning, so a device's
	// retained report racing a collector's SUBSCRIBE was a data race.
	retainMu sync.RWMutex
}

type login struct {
	cl  *mqtt.Client
	who identity
}

func (h *mochiHook) ID() string { return "lampi-policy" }

func (h *mochiHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect,
		mqtt.OnClientExpired, mqtt.OnSessionEstablished, mqtt.OnSubscribed, mqtt.OnPublish, mqtt.OnQosComplete,
		mqtt.OnWillSent, mqtt.OnSubscribe, mqtt.OnPacketProcessed, mqtt.OnWill, mqtt.OnRetainMessage}, []byte{b})
}

func (h *mochiHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	will, willPayload := "", []byte(nil)
	if pk.Connect.WillFlag {
		will, willPayload = pk.Connect.WillTopic, pk.Connect.WillPayload
	}
	conn := unwrapPeeked(cl.Net.Conn)
	who, err := h.pol.login(string(pk.Connect.Username), pk.Connect.Password, pk.Connect.PasswordFlag, conn, cl.ID, will, willPayload)
	switch err {
	case nil:
		// Wills are sent at once: mochi sends a delayed one from its own
		// loop, past OnWill (see retainMu).
		cl.Properties.Will.WillDelayInterval = 0
		h.clients.Store(cl.ID, login{cl: cl, who: who})
		loggedIn(conn)
		return true
	case errClientID:
		h.log.Warn("mqtt: login refused: the client id belongs to another login", "login", who.id, "client_id", cl.ID,
			"remote", cl.Net.Remote, "allowed", who.id+" or "+AgentClientIDPrefix+who.id)
		h.refuseConnect(cl, packets.ErrClientIdentifierNotValid)
	case errWill:
		h.log.Warn("mqtt: login refused: Will on a topic or with a payload the login may not publish", "login", who.id, "will_topic", will, "remote", cl.Net.Remote)
		h.refuseConnect(cl, packets.ErrNotAuthorized)
	}
	return false
}

// refuseConnect answers a CONNECT with code (mochi itself knows only
// "bad user name or password") and closes the connection, so mochi's own
// refusal that follows goes nowhere.
func (h *mochiHook) refuseConnect(cl *mqtt.Client, code packets.Code) {
	_ = h.srv.SendConnack(cl, code, false, nil)
	cl.Stop(code)
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

func (h *mochiHook) OnClientExpired(cl *mqtt.Client) {
	h.forget(cl)
	h.sinks.CompareAndDelete(cl.ID, cl)
}

// OnSubscribed remembers a collector (or, with anonymous access, any
// client) that receives QoS 1 or 2: only those hold the devices back, so a
// device login cannot slow down the fleet by subscribing and not reading.
func (h *mochiHook) OnSubscribed(cl *mqtt.Client, _ packets.Packet, codes []byte) {
	v, ok := h.clients.Load(cl.ID)
	if !ok || v.(login).cl != cl {
		return
	}
	if role := v.(login).who.role; role != RoleCollector && role != "" {
		return
	}
	for _, c := range codes {
		if c == 1 || c == 2 {
			h.sinks.Store(cl.ID, cl)
			return
		}
	}
}

// Backpressure. mochi drops a QoS 1 message for a connected subscriber
// when the subscriber's write queue (MaximumClientWritesPending, 8192) is
// full, or when it has 65535 unacknowledged messages — after the
// publisher got its PUBACK, so the report is lost (seen in the 4,000-device
// benchmark: 1,107 of 200,000 dropped). OnPublish runs before the PUBACK:
// while a connected QoS 1 subscriber has sinkHighWater or more messages
// unacknowledged (its queued ones included), a QoS 1 publish waits (woken
// by the subscriber's acknowledgements, OnQosComplete), so the
// devices slow down to what the collector acknowledges instead of losing
// reports. Each waiting device holds one message, so the queue overflows
// only with more than 8192 − sinkHighWater devices publishing at the same
// moment. After sinkMaxWait the publish is refused (MQTT 5: PUBACK reason
// code 0x97, quota exceeded; MQTT 3.1.1: no PUBACK) rather than dropped
// behind the device's back: the device has to send it again.
const (
	sinkHighWater = 2048
	sinkRecheck   = 100 * time.Millisecond
	sinkMaxWait   = 30 * time.Second
)

// OnPublish runs before the publisher's PUBACK: it holds QoS 1 publishes
// back while a subscriber lags (see above), then hands device reports to
// BrokerOptions.Deliver. A report Deliver could not commit is refused
// (MQTT 5: PUBACK 0x80; 3.1.1: no PUBACK), so the device sends it again.
func (h *mochiHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	if v, ok := h.clients.Load(cl.ID); ok && v.(login).cl == cl {
		if err := h.pol.checkPayload(v.(login).who, pk.TopicName, pk.Payload); err != nil {
			code := packets.ErrPayloadFormatInvalid
			if err == errTooLarge {
				code = packets.ErrPacketTooLarge
			}
			return pk, refusePublish(cl, pk, code)
		}
	}
	if pk.FixedHeader.Qos > 0 {
		if err := h.holdBack(cl); err != nil {
			return pk, err
		}
	}
	if h.deliver != nil && h.pol.collected(pk.TopicName) {
		if err := h.deliver(Message{Topic: pk.TopicName, Payload: pk.Payload}); err != nil {
			return pk, refusePublish(cl, pk, packets.ErrUnspecifiedError)
		}
	}
	if pk.FixedHeader.Retain {
		// mochi retains an accepted publish next, then calls
		// OnRetainMessage, which unlocks.
		h.retainMu.Lock()
	}
	return pk, nil
}

// OnWill locks the retained store for a retained Will, which mochi
// retains next (then OnRetainMessage unlocks); mochi's condition, to the
// letter. (A delayed Will would be retained later without OnWill: logins
// have their delay set to 0.)
func (h *mochiHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if will.Retain && cl.Properties.Will.WillDelayInterval == 0 {
		h.retainMu.Lock()
	}
	return will, nil
}

func (h *mochiHook) OnRetainMessage(*mqtt.Client, packets.Packet, int64) { h.retainMu.Unlock() }

// subscribeWriteTimeout bounds the SUBACK write, which mochi does while
// the retained store is held for the subscription: a subscriber that does
// not read its socket is dropped then instead of holding back every
// retained publish.
const subscribeWriteTimeout = 5 * time.Second

// OnSubscribe holds the retained store still while mochi scans it for the
// new subscription (until OnPacketProcessed). Only collectors (and, on a
// test broker, anonymous clients) subscribe.
func (h *mochiHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if !cl.Net.Inline {
		// mochi sets the next deadline before it reads the next packet.
		_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(subscribeWriteTimeout))
		h.retainMu.RLock()
	}
	return pk
}

func (h *mochiHook) OnPacketProcessed(cl *mqtt.Client, pk packets.Packet, _ error) {
	if pk.FixedHeader.Type == packets.Subscribe && !cl.Net.Inline {
		h.retainMu.RUnlock()
	}
}

// refusePublish is OnPublish's error that refuses pk: MQTT 5 QoS 1 and 2
// publishers get code in their acknowledgement; anything else is dropped
// unacknowledged (mochi would forward and retain a publish refused with a
// code it cannot send).
func refusePublish(cl *mqtt.Client, pk packets.Packet, code packets.Code) error {
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		return code
	}
	return packets.ErrRejectPacket
}

// OnWillSent hands a device's Will (its offline status) to Deliver.
func (h *mochiHook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	if h.deliver != nil && h.pol.collected(pk.TopicName) {
		_ = h.deliver(Message{Topic: pk.TopicName, Payload: pk.Payload})
	}
}

// holdBack waits while a QoS 1 subscriber other than cl lags (see above).
func (h *mochiHook) holdBack(cl *mqtt.Client) error {
	var waited time.Duration
	var timer *time.Timer
	for waited < sinkMaxWait {
		h.wakeMu.Lock()
		if h.wake == nil {
			h.wake = make(chan struct{})
		}
		wake := h.wake
		h.wakeMu.Unlock()
		if !h.sinkFull(cl) {
			break
		}
		h.waiting.Add(1)
		if timer == nil {
			timer = time.NewTimer(sinkRecheck)
			defer timer.Stop()
		} else {
			timer.Reset(sinkRecheck)
		}
		select {
		case <-wake:
		case <-timer.C: // a subscriber gone away acknowledges nothing
			waited += sinkRecheck
		}
		h.waiting.Add(-1)
	}
	if waited >= sinkMaxWait {
		if cl.Properties.ProtocolVersion == 5 {
			return packets.ErrQuotaExceeded
		}
		return packets.ErrRejectPacket
	}
	return nil
}

// sinkFull says whether a connected QoS 1 subscriber other than cl has
// sinkHighWater or more messages unacknowledged.
func (h *mochiHook) sinkFull(cl *mqtt.Client) bool {
	full := false
	h.sinks.Range(func(_, v any) bool {
		sink := v.(*mqtt.Client)
		full = sink != cl && !sink.Closed() && sink.State.Inflight.Len() >= sinkHighWater
		return !full
	})
	return full
}

// OnQosComplete wakes the held-back publishers when a subscriber's
// acknowledgement brings it below the high-water mark.
func (h *mochiHook) OnQosComplete(cl *mqtt.Client, _ packets.Packet) {
	if h.waiting.Load() == 0 || cl.State.Inflight.Len() >= sinkHighWater {
		return
	}
	if _, ok := h.sinks.Load(cl.ID); !ok {
		return
	}
	h.wakeMu.Lock()
	if h.wake != nil {
		close(h.wake)
		h.wake = nil
	}
	h.wakeMu.Unlock()
}

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
	// A resumed session keeps its subscriptions under the new connection.
	if _, ok := h.sinks.Load(cl.ID); ok {
		h.sinks.Store(cl.ID, cl)
	}
}
