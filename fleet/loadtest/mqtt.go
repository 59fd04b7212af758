package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/mqttconn"
)

// How long one connect or one publish may take.
const (
	connectTimeout = 15 * time.Second
	publishTimeout = 15 * time.Second
	dialParallel   = 64
)

// publisher drives the MQTT side: the connections, and the workers that
// publish the devices' reports over them.
type publisher struct {
	opts    *Options
	broker  string
	conns   []*mqttConn
	workers []*worker
	seqBase uint64

	sent, acked, failed      atomic.Uint64
	statusSent, statusAcked  atomic.Uint64
	budget                   atomic.Int64 // reports left when MaxReports > 0
	connectErrors            int
	devicesWithoutConnection int
	lat                      *recorder
	errs                     *errorLog
	seq, lastAcked           []uint64 // per device; touched by its worker only
	stopPing                 chan struct{}
}

type mqttConn struct {
	clientID string
	client   *leanClient
	devices  []int
}

// worker publishes for a fixed set of devices of one connection, one
// report at a time, so a device's reports leave in seq order.
type worker struct {
	conn    *mqttConn
	devices []int
	index   int
	// ids and topics of the devices, by position in devices; fast
	// says a device's default payload matched state.Encode (checked on
	// its first report), checked that it was checked.
	ids, topics   []string
	fast, checked []bool
	buf           []byte
}

// connect opens every connection and announces the devices. It fails only
// when no connection could be made.
func connect(ctx context.Context, u *url.URL, opts *Options) (*publisher, error) {
	p := &publisher{opts: opts, broker: u.Redacted(), lat: newRecorder(), errs: &errorLog{},
		seq: make([]uint64, opts.Devices), lastAcked: make([]uint64, opts.Devices)}
	// Seqs start from the clock, in microseconds, so a later run's reports
	// are newer than an earlier run's for the same device ids.
	p.seqBase = uint64(opts.Now().UnixMicro())
	if opts.MaxReports > 0 {
		p.budget.Store(opts.MaxReports)
	}
	perDevice := opts.Connections == opts.Devices
	p.conns = make([]*mqttConn, opts.Connections)
	for k := range p.conns {
		c := &mqttConn{}
		if perDevice {
			c.clientID = deviceID(opts.IDPrefix, k, opts.Devices)
		} else {
			c.clientID = fmt.Sprintf("%sconn%d", opts.IDPrefix, k)
		}
		p.conns[k] = c
	}
	for d := 0; d < opts.Devices; d++ {
		c := p.conns[d%opts.Connections]
		c.devices = append(c.devices, d)
	}

	var mu sync.Mutex
	errs := make([]error, len(p.conns))
	parallel(len(p.conns), dialParallel, func(k int) {
		c := p.conns[k]
		var err error
		c.client, err = p.dial(ctx, u, c, perDevice)
		if err != nil {
			p.errs.add(err)
			errs[k] = fmt.Errorf("connect as %s: %w", c.clientID, err)
			mu.Lock()
			p.connectErrors++
			p.devicesWithoutConnection += len(c.devices)
			mu.Unlock()
		}
	})
	if p.connectErrors == len(p.conns) {
		return nil, fmt.Errorf("%w %s: %w", ErrConnect, p.broker, errs[0])
	}

	for _, c := range p.conns {
		if c.client == nil {
			continue
		}
		n := min(len(c.devices), opts.Inflight)
		for w := 0; w < n; w++ {
			wk := &worker{conn: c, index: len(p.workers)}
			for i := w; i < len(c.devices); i += n {
				wk.devices = append(wk.devices, c.devices[i])
			}
			p.workers = append(p.workers, wk)
		}
	}
	p.stopPing = make(chan struct{})
	go p.pingLoop()
	if opts.Status {
		p.announce(ctx, state.Online)
	}
	return p, nil
}

// pingLoop keeps idle connections alive (a slow rate leaves a device
// silent for longer than the keep-alive).
func (p *publisher) pingLoop() {
	t := time.NewTicker(keepAlive * time.Second / 3)
	defer t.Stop()
	for {
		select {
		case <-p.stopPing:
			return
		case <-t.C:
		}
		for _, c := range p.conns {
			if c.client != nil && !closed(c.client) {
				c.client.ping()
			}
		}
	}
}

// dial opens a device connection: a lean MQTT 5 client with a clean
// session, the device's id as client id, its login and its Will.
func (p *publisher) dial(ctx context.Context, u *url.URL, c *mqttConn, perDevice bool) (*leanClient, error) {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	nc, err := dialNet(cctx, u, p.opts)
	if err != nil {
		return nil, err // "dial tcp HOST: …"
	}
	cp := &packets.Connect{ProtocolName: "MQTT", ProtocolVersion: 5, ClientID: c.clientID,
		KeepAlive: keepAlive, CleanStart: true, Properties: &packets.Properties{}}
	if perDevice && p.opts.Status {
		cp.WillFlag, cp.WillQOS, cp.WillRetain = true, 1, true
		cp.WillTopic = state.StatusTopic(p.opts.Prefix, c.clientID)
		cp.WillMessage = []byte(state.Offline)
		cp.WillProperties = &packets.Properties{}
	}
	if user, pass, ok := login(u, p.opts, c.clientID); ok {
		cp.Username, cp.UsernameFlag = user, true
		cp.Password, cp.PasswordFlag = pass, pass != nil
	}
	window := 1
	if !perDevice {
		window = min(len(c.devices), p.opts.Inflight)
	}
	return dialLean(cctx, nc, cp, window)
}

// keepAlive is the devices' MQTT keep-alive in seconds.
const keepAlive = 30

// login returns the credentials a connection logs in with.
func login(u *url.URL, opts *Options, clientID string) (string, []byte, bool) {
	switch {
	case opts.Credentials != nil:
		return opts.Credentials(clientID)
	case u.User != nil: // mqtt://user:password@host: one login for all
		var pass []byte
		if pw, ok := u.User.Password(); ok {
			pass = []byte(pw)
		}
		return u.User.Username(), pass, true
	}
	return "", nil, false
}

// dialNet opens the TCP or TLS connection to the broker.
func dialNet(ctx context.Context, u *url.URL, opts *Options) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		port := "1883"
		if u.Scheme == "mqtts" || u.Scheme == "ssl" {
			port = "8883"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	var nc net.Conn
	var err error
	d := &net.Dialer{}
	if u.Scheme == "mqtts" || u.Scheme == "ssl" {
		cfg := opts.TLS
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg = cfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		td := &tls.Dialer{NetDialer: d, Config: cfg}
		nc, err = td.DialContext(ctx, "tcp", host)
	} else {
		nc, err = d.DialContext(ctx, "tcp", host)
	}
	return nc, err
}

// dialMQTT opens one paho MQTT 5 connection with a clean session (the
// plain subscriber's).
func dialMQTT(ctx context.Context, u *url.URL, opts *Options, clientID string, will *paho.WillMessage,
	onPublish []func(paho.PublishReceived) (bool, error)) (*paho.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	nc, err := dialNet(ctx, u, opts)
	if err != nil {
		return nil, err // "dial tcp HOST: …"
	}
	nc = mqttconn.NewBatching(nc, 4<<10)
	client := paho.NewClient(paho.ClientConfig{ClientID: clientID, Conn: nc, PacketTimeout: publishTimeout,
		OnPublishReceived: onPublish})
	cp := &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true, WillMessage: will}
	if onPublish == nil {
		// A device receives nothing; paho sizes a channel by the receive
		// maximum (65535 pointers, 512 KiB, per connection by default).
		recvMax := uint16(16)
		cp.Properties = &paho.ConnectProperties{ReceiveMaximum: &recvMax, RequestProblemInfo: true}
	}
	if user, pass, ok := login(u, opts, clientID); ok {
		cp.Username, cp.UsernameFlag = user, true
		cp.Password, cp.PasswordFlag = pass, pass != nil
	}
	ack, err := client.Connect(ctx, cp)
	if err != nil {
		_ = nc.Close()
		if ack != nil && ack.ReasonCode != 0 {
			return nil, fmt.Errorf("%w: %s (reason code 0x%02x)", ErrRefused, reasonText(ack.ReasonCode), ack.ReasonCode)
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	return client, nil
}

func reasonText(code byte) string {
	switch code {
	case 0x86:
		return "bad user name or password"
	case 0x87:
		return "not authorized"
	case 0x85:
		return "client identifier not valid"
	case 0x97:
		return "quota exceeded"
	case 0x9F:
		return "connection rate exceeded"
	}
	return "connection refused"
}

// announce publishes every connected device's retained status.
func (p *publisher) announce(ctx context.Context, status string) {
	parallel(len(p.workers), 256, func(i int) {
		w := p.workers[i]
		for _, d := range w.devices {
			if ctx.Err() != nil || closed(w.conn.client) {
				return
			}
			id := deviceID(p.opts.IDPrefix, d, p.opts.Devices)
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			err := w.conn.client.Publish(pctx, 1, true, state.StatusTopic(p.opts.Prefix, id), []byte(status))
			cancel()
			p.statusSent.Add(1)
			if err != nil {
				p.errs.add(fmt.Errorf("publish status: %w", err))
				continue
			}
			p.statusAcked.Add(1)
		}
	})
}

// run publishes until ctx ends or the report budget is spent. Each
// worker keeps its share of the rate on its own schedule, staggered so
// the workers do not fire together.
func (p *publisher) run(ctx context.Context, start time.Time) {
	var wg sync.WaitGroup
	for _, w := range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx, w, start)
		}()
	}
	wg.Wait()
}

func (p *publisher) work(ctx context.Context, w *worker, start time.Time) {
	t := p.lat.tally()
	defer t.done()
	opts := p.opts
	rate := opts.Rate * float64(len(w.devices)) / float64(opts.Devices)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	phase := 0.0
	if rate > 0 {
		phase = float64(w.index) / float64(len(p.workers)) / rate
	}
	for j := 0; ; j++ {
		if ctx.Err() != nil {
			return
		}
		if rate > 0 {
			due := start.Add(time.Duration((phase + float64(j)/rate) * float64(time.Second)))
			if wait := due.Sub(opts.Now()); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		}
		if opts.MaxReports > 0 && p.budget.Add(-1) < 0 {
			return
		}
		k := j % len(w.devices)
		d := w.devices[k]
		p.seq[d]++
		seq := p.seqBase + p.seq[d]
		if w.ids == nil {
			w.ids, w.topics = make([]string, len(w.devices)), make([]string, len(w.devices))
			w.fast, w.checked = make([]bool, len(w.devices)), make([]bool, len(w.devices))
		}
		if w.ids[k] == "" {
			w.ids[k] = deviceID(opts.IDPrefix, d, opts.Devices)
			w.topics[k] = state.StateTopic(opts.Prefix, w.ids[k])
		}
		id := w.ids[k]
		now := opts.Now()
		var payload []byte
		var err error
		if w.fast[k] {
			w.buf = appendDefaultPayload(w.buf[:0], d, id, seq, now)
			payload = w.buf
		} else {
			payload, err = state.Encode(opts.Payload(d, id, seq, now))
			if err == nil && opts.defaultPayload && !w.checked[k] {
				// Encode this device's next reports without reflection
				// if that gives exactly the same bytes.
				w.checked[k] = true
				w.buf = appendDefaultPayload(w.buf[:0], d, id, seq, now)
				w.fast[k] = string(w.buf) == string(payload)
			}
		}
		if err != nil {
			p.errs.add(fmt.Errorf("encode report: %w", err))
			p.sent.Add(1)
			p.failed.Add(1)
			continue
		}
		p.sent.Add(1)
		if closed(w.conn.client) {
			// The connection is gone: its devices stop reporting.
			p.failed.Add(1)
			p.errs.add(errors.New("publish state report: the connection to the broker was lost"))
			return
		}
		// The publish outlives the run's deadline: a report sent at the
		// last moment still gets its PUBACK.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		err = w.conn.client.Publish(pctx, opts.QoS, true, w.topics[k], payload)
		cancel()
		if err != nil {
			p.failed.Add(1)
			p.errs.add(fmt.Errorf("publish state report: %w", err))
			continue
		}
		t.add(opts.Now().Sub(now))
		p.acked.Add(1)
		p.lastAcked[d] = seq
	}
}

// close says goodbye: the devices' "offline" status if asked for, then a
// clean DISCONNECT (which suppresses the Will).
func (p *publisher) close(ctx context.Context) {
	defer close(p.stopPing)
	if p.opts.Status {
		p.announce(ctx, state.Offline)
	}
	parallel(len(p.conns), dialParallel, func(k int) {
		if c := p.conns[k].client; c != nil && !closed(c) {
			c.Disconnect()
		}
	})
}

func (p *publisher) result(elapsed time.Duration) *MQTTResult {
	r := &MQTTResult{
		Broker: p.broker, QoS: p.opts.QoS, Connections: len(p.conns),
		ConnectErrors: p.connectErrors, DevicesWithoutConnection: p.devicesWithoutConnection,
		Sent: p.sent.Load(), Acked: p.acked.Load(), Failed: p.failed.Load(),
		StatusSent: p.statusSent.Load(), StatusAcked: p.statusAcked.Load(),
		Latency: p.lat.summary(), Errors: p.errs.list(),
	}
	if elapsed > 0 {
		r.PerSecond = float64(r.Acked) / elapsed.Seconds()
	}
	return r
}

func closed(c interface{ Done() <-chan struct{} }) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// parallel calls f(0 … n-1) on at most width goroutines.
func parallel(n, width int, f func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, width) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// errorLog keeps the first few distinct error messages and how often each
// occurred, so a report shows what went wrong without flooding.
type errorLog struct {
	mu     sync.Mutex
	counts map[string]int
	order  []string
	other  int
}

const maxDistinctErrors = 5

func (l *errorLog) add(err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "timeout: " + msg
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[string]int{}
	}
	if _, ok := l.counts[msg]; !ok && len(l.order) >= maxDistinctErrors {
		l.other++
		return
	}
	if l.counts[msg] == 0 {
		l.order = append(l.order, msg)
	}
	l.counts[msg]++
}

func (l *errorLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, m := range l.order {
		if n := l.counts[m]; n > 1 {
			out = append(out, fmt.Sprintf("%s (%d times)", m, n))
		} else {
			out = append(out, m)
		}
	}
	if l.other > 0 {
		out = append(out, fmt.Sprintf("%d more errors", l.other))
	}
	return out
}
