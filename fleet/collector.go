package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/mqttconn"
)

// DefaultReceiveMaximum is the collector's default MQTT Receive Maximum:
// the messages in flight between the broker and the collector's commit.
// It is the protocol's maximum: a lower one makes mochi queue messages
// on a path that costs it O(inflight) per packet.
const DefaultReceiveMaximum = 65535

// CollectorOptions configures a Collector.
type CollectorOptions struct {
	// Broker is the broker URL: mqtt://host:port or mqtts://host:port.
	Broker string
	// ClientID identifies the collector's persistent session at the
	// broker: keep it stable across restarts, and distinct for each
	// collector of a group (default: Username; required without one).
	// lampi-pkg's broker accepts only the login's own id (the Username,
	// or a certificate's Common Name), and Mosquitto configured as the
	// docs/fleet.md says replaces it with the username: give each collector its
	// own credential.
	ClientID string
	// Username and Password log in (a collector credential).
	Username string
	Password []byte
	// TLS configures mqtts (server CA, client certificate).
	TLS *tls.Config
	// Group, if set, subscribes through the MQTT 5 shared subscription
	// $share/<Group>/… so several collectors split the load.
	Group string
	// Prefix is the device topic prefix (default state.DefaultPrefix).
	Prefix string
	// SessionExpiry is how long the broker keeps the collector's session
	// (and queues reports for it) while it is away (default 7 days).
	SessionExpiry time.Duration
	// KeepAlive is the MQTT keep-alive (default 30 s).
	KeepAlive time.Duration
	// ReceiveMaximum is how many messages the broker may send before
	// the collector acknowledges them (default DefaultReceiveMaximum).
	ReceiveMaximum uint16
	// BatchSize bounds the messages committed in one transaction
	// (default 4096, at most half of ReceiveMaximum so one batch fills
	// while the previous one commits); BatchDelay is how long a batch
	// waits to fill (default 2 ms).
	BatchSize  int
	BatchDelay time.Duration
	// Now is the receive clock (default time.Now).
	Now func() time.Time
	// Logger receives connection events and errors (default: discarded).
	Logger *slog.Logger
}

// Collector subscribes to the devices' state and status topics with a
// persistent QoS 1 session and stores what arrives, acknowledging each
// message only after its batch is committed: a collector killed at any
// point loses nothing, the broker re-delivers what was not acknowledged.
//
// A direct collector (NewDirectCollector) has no connection of its own:
// the embedded broker in the same process hands it each report with
// Deliver before it acknowledges the report to the device, so the device's
// PUBACK itself means "committed".
type Collector struct {
	sink  Sink
	opts  CollectorOptions
	url   *url.URL // nil for a direct collector
	ready chan struct{}
	once  sync.Once
	// A direct collector's queue, and what Deliver waits on besides.
	in       chan incoming
	stopped  chan struct{} // closed when Run has returned
	stopOnce sync.Once
	// Reports rejected for a seq from the future since the last log line
	// about them, and when that was (batchLoop's goroutine only).
	rejected     int
	rejectLogged time.Time
}

// incoming is one message on its way to a commit: from the collector's
// subscription (pkt and client, acknowledged after the commit) or handed
// in with Deliver (done receives the commit's result).
type incoming struct {
	msg    Message
	pkt    *paho.Publish
	client *paho.Client
	done   chan error
}

type batch struct {
	msgs []incoming
	ps   []prepared
}

// NewCollector checks opts and returns a collector storing into sink
// (the bbolt Store, or a PostgreSQL store that other collectors share).
func NewCollector(sink Sink, opts CollectorOptions) (*Collector, error) {
	u, err := url.Parse(opts.Broker)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("broker URL %q: want mqtt://host:port or mqtts://host:port", opts.Broker)
	}
	switch u.Scheme {
	case "mqtt", "tcp":
	case "mqtts", "tls", "ssl":
	default:
		return nil, fmt.Errorf("broker URL %q: scheme %q: want mqtt:// or mqtts://", opts.Broker, u.Scheme)
	}
	if opts.ClientID == "" {
		opts.ClientID = opts.Username
	}
	if opts.ClientID == "" {
		return nil, errors.New("collector: a client id is required (it names the persistent session): give a username or a client id")
	}
	if opts.SessionExpiry <= 0 {
		opts.SessionExpiry = 7 * 24 * time.Hour
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 30 * time.Second
	}
	c := newCollector(sink, opts)
	c.url = u
	return c, nil
}

// NewDirectCollector returns a collector for the embedded broker of the
// same process: it subscribes to nothing, the broker calls Deliver (see
// BrokerOptions.Deliver). Of opts only Prefix, BatchSize, BatchDelay, Now
// and Logger apply.
func NewDirectCollector(sink Sink, opts CollectorOptions) *Collector {
	c := newCollector(sink, opts)
	c.in = make(chan incoming, 65536)
	return c
}

func newCollector(sink Sink, opts CollectorOptions) *Collector {
	if opts.Prefix == "" {
		opts.Prefix = state.DefaultPrefix
	}
	if opts.ReceiveMaximum == 0 {
		opts.ReceiveMaximum = DefaultReceiveMaximum
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 4096
	}
	if half := max(1, int(opts.ReceiveMaximum)/2); opts.BatchSize > half {
		opts.BatchSize = half
	}
	if opts.BatchDelay <= 0 {
		opts.BatchDelay = 2 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{sink: sink, opts: opts, ready: make(chan struct{}), stopped: make(chan struct{})}
}

var donePool = sync.Pool{New: func() any { return make(chan error, 1) }}

// Deliver hands m to a direct collector and waits until it is committed
// to the fleet database (nil), the commit failed, or the collector
// stopped (ErrCollectorStopped). Ignored messages (invalid, spoofed,
// stale) count as delivered: they are counted in the same commit. Safe
// for concurrent use; before Run starts, messages wait for it.
func (c *Collector) Deliver(m Message) error {
	if c.url != nil {
		return errors.New("fleet collector: Deliver is for a direct collector (NewDirectCollector)")
	}
	if m.Received.IsZero() {
		m.Received = c.opts.Now()
	}
	done := donePool.Get().(chan error)
	select {
	case c.in <- incoming{msg: m, done: done}:
	case <-c.stopped:
		donePool.Put(done)
		return ErrCollectorStopped
	}
	select {
	case err := <-done:
		donePool.Put(done)
		return err
	case <-c.stopped:
		return ErrCollectorStopped // done is not put back: left to the GC
	}
}

// Ready is closed once the collector is connected and subscribed.
func (c *Collector) Ready() <-chan struct{} { return c.ready }

// Filters are the subscriptions the collector makes.
func (c *Collector) Filters() []string {
	out := []string{c.opts.Prefix + "/+/" + state.KindState, c.opts.Prefix + "/+/" + state.KindStatus}
	if c.opts.Group != "" {
		for i := range out {
			out[i] = "$share/" + c.opts.Group + "/" + out[i]
		}
	}
	return out
}

// Run collects until ctx is cancelled, then disconnects (the session stays
// at the broker, which keeps queueing reports). It returns an error only
// when a commit fails: those messages are not acknowledged and come again
// on the next run.
func (c *Collector) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.url == nil {
		defer c.stopOnce.Do(func() { close(c.stopped) })
		c.once.Do(func() { close(c.ready) })
		return c.pipeline(ctx, c.in)
	}
	in := make(chan incoming, 65536)
	cfg := c.clientConfig(ctx, in)
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return fmt.Errorf("collector: %w: %w", ErrBroker, err)
	}

	err = c.pipeline(ctx, in)
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	cm.Disconnect(dctx)
	return err
}

// clientConfig is the MQTT client of Run: a persistent session (clean
// start off, the configured expiry), manual acknowledgement, and every
// received report handed to in until ctx ends.
func (c *Collector) clientConfig(ctx context.Context, in chan<- incoming) autopaho.ClientConfig {
	log := c.opts.Logger
	expiry := uint32(min(c.opts.SessionExpiry/time.Second, 0xFFFFFFFF))
	recvMax := c.opts.ReceiveMaximum
	subs := make([]paho.SubscribeOptions, 0, 2)
	for _, f := range c.Filters() {
		// RetainHandling 1: retained messages only for a new
		// subscription, not on every reconnect of a persistent session.
		subs = append(subs, paho.SubscribeOptions{Topic: f, QoS: 1, RetainHandling: 1})
	}
	return autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{c.url},
		TlsCfg:                        c.opts.TLS,
		KeepAlive:                     uint16(max(1, c.opts.KeepAlive/time.Second)),
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         expiry,
		ReconnectBackoff: func(n int) time.Duration {
			return min(250*time.Millisecond<<min(n, 5), 5*time.Second)
		},
		ConnectTimeout:    10 * time.Second,
		AttemptConnection: c.dial,
		ConnectUsername:   c.opts.Username,
		ConnectPassword:   c.opts.Password,
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			cp.Properties.ReceiveMaximum = &recvMax
			return cp, nil
		},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, ca *paho.Connack) {
			log.Info("collector connected", "broker", c.url.Redacted(), "session_present", ca.SessionPresent)
			go c.subscribe(ctx, cm, subs)
		},
		OnConnectionDown: func() bool {
			log.Warn("collector connection lost; reconnecting", "broker", c.url.Redacted())
			return true
		},
		Errors:     pahoLog{log},
		PahoErrors: pahoLog{log},
		OnConnectError: func(err error) {
			log.Warn("collector cannot connect", "broker", c.url.Redacted(), "error", err)
		},
		ClientConfig: paho.ClientConfig{
			ClientID:                   c.opts.ClientID,
			EnableManualAcknowledgment: true,
			SendAcksInterval:           2 * time.Millisecond,
			OnServerDisconnect: func(d *paho.Disconnect) {
				reason := ""
				if d.Properties != nil {
					reason = d.Properties.ReasonString
				}
				log.Warn("broker closed the collector's connection", "code", d.ReasonCode, "reason", reason)
			},
			OnClientError: func(err error) { log.Warn("collector connection error", "error", err) },
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) {
					p := pr.Packet
					select {
					case in <- incoming{msg: Message{Topic: p.Topic, Payload: p.Payload, Retained: p.Retain, Received: c.opts.Now()}, pkt: p, client: pr.Client}:
					case <-ctx.Done():
					}
					return true, nil
				},
			},
		},
	}
}

// subscribe subscribes on a new connection, then says Ready. mochi
// answers "packet identifier in use" (0x91) to a SUBSCRIBE whose packet id
// equals one of the reports it is re-sending from the session (it shares
// one id space for both directions); the id is free again once that
// report is acknowledged, so the subscription is retried.
func (c *Collector) subscribe(ctx context.Context, cm *autopaho.ConnectionManager, subs []paho.SubscribeOptions) {
	log := c.opts.Logger
	wait := 20 * time.Millisecond
	for {
		sa, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
		if sa == nil {
			if ctx.Err() == nil {
				log.Error("subscribe", "error", err)
			}
			return
		}
		inUse, refused := false, false
		for i, code := range sa.Reasons {
			switch {
			case code == 0x91:
				inUse = true
			case code >= 0x80:
				refused = true
				log.Error("subscription refused by the broker", "filter", subs[i].Topic, "reason", code)
			}
		}
		if refused {
			return
		}
		if !inUse {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
	log.Info("subscribed", "filters", c.Filters())
	c.once.Do(func() { close(c.ready) })
}

// pipeline commits what arrives on in until ctx is cancelled, in two
// stages: the next batch is decoded while the previous one commits.
func (c *Collector) pipeline(ctx context.Context, in <-chan incoming) error {
	batches := make(chan batch, 1)
	// Committed batches come back for reuse: at full speed a batch holds
	// thousands of messages, and growing its slices anew each time
	// costs more than decoding them.
	free := make(chan batch, 3)
	errc := make(chan error, 1)
	go func() {
		errc <- c.commitLoop(batches, free)
	}()
	c.batchLoop(ctx, in, batches, free)
	close(batches)
	return <-errc
}

// batchLoop groups incoming messages into batches and decodes them. A
// batch closes after BatchDelay, but while the previous one is still
// being committed it keeps growing (up to BatchSize): the busier the
// collector, the more messages share a commit and its fsync.
func (c *Collector) batchLoop(ctx context.Context, in <-chan incoming, out chan<- batch, free <-chan batch) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var b batch
		select {
		case b = <-free:
		default:
		}
		select {
		case <-ctx.Done():
			return
		case m := <-in:
			c.add(&b, m)
		}
		timer.Reset(c.opts.BatchDelay)
	fill:
		for len(b.msgs) < c.opts.BatchSize {
			select {
			case m := <-in:
				c.add(&b, m)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		timer.Stop()
	send:
		for {
			if len(b.msgs) >= c.opts.BatchSize {
				select {
				case out <- b:
					break send
				case <-ctx.Done():
					return // not acknowledged: the broker sends them again
				}
			}
			select {
			case out <- b:
				break send
			case m := <-in:
				c.add(&b, m)
			case <-ctx.Done():
				return
			}
		}
	}
}

// add decodes m into the batch.
func (c *Collector) add(b *batch, m incoming) {
	p := prepare(c.opts.Prefix, m.msg)
	if p.outcome == OutcomeRejected {
		c.logRejected(&p, m.msg.Received)
	}
	b.msgs = append(b.msgs, m)
	b.ps = append(b.ps, p)
}

// logRejected logs a report rejected for its seq, at most once a minute
// with the number rejected since: a device that keeps sending them does
// not flood the log.
func (c *Collector) logRejected(p *prepared, now time.Time) {
	c.rejected++
	if !c.rejectLogged.IsZero() && now.Sub(c.rejectLogged) < time.Minute {
		return
	}
	c.opts.Logger.Warn("report ignored: its seq is more than 24 h ahead of this collector's clock, and would make every later report of the device stale; fix the device's clock (lampi-pkg fleet reset DEVICE forgets a seq stored before)",
		"device", p.id, "seq", p.st.Seq, "limit", seqLimit(now), "rejected", c.rejected)
	c.rejected, c.rejectLogged = 0, now
}

// commitLoop commits each batch, then acknowledges its messages (or
// tells their Deliver calls). After a failed commit nothing more is
// committed or acknowledged: the broker keeps those messages, and
// Deliver calls get the error.
func (c *Collector) commitLoop(batches <-chan batch, free chan<- batch) error {
	var failed error
	for b := range batches {
		if failed == nil {
			// Background: a batch being committed finishes even when
			// the collector is stopped; its messages are then acked.
			if _, err := c.sink.Commit(context.Background(), &Batch{ps: b.ps}); err != nil {
				failed = fmt.Errorf("collector: commit to %s: %w", c.sink.Name(), err)
			}
		}
		for _, m := range b.msgs {
			if m.done != nil {
				m.done <- failed
				continue
			}
			if failed == nil {
				// An error means the connection is gone; the broker
				// re-delivers on the next one and the seq check drops
				// the duplicate.
				_ = m.client.Ack(m.pkt)
			}
		}
		clear(b.msgs) // drop the payloads and clients they point to
		clear(b.ps)
		b.msgs, b.ps = b.msgs[:0], b.ps[:0]
		select {
		case free <- b:
		default:
		}
	}
	return failed
}

// pahoLog sends paho's error log to slog.
type pahoLog struct{ l *slog.Logger }

func (p pahoLog) Println(v ...any)               { p.l.Warn(strings.TrimSpace(fmt.Sprintln(v...))) }
func (p pahoLog) Printf(format string, v ...any) { p.l.Warn(fmt.Sprintf(format, v...)) }

// dial connects to the broker through an mqttconn.Conn: buffered reads,
// and acknowledgements written in batches.
func (c *Collector) dial(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "mqtt" && u.Scheme != "tcp" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.opts.TLS != nil {
			cfg = c.opts.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	return mqttconn.NewBatching(conn, 64<<10), nil
}
