package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
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

// publisher drives the MQTT side: the connections, the workers that
// publish the devices' reports over them, and the pacers that keep the
// rate.
//
// A worker stands for a fixed set of devices of one connection and has at
// most one report in flight, so a device's reports leave in seq order.
// Reports fall due on the worker's schedule; a pacer walks the workers in
// order of their next due report and writes each PUBLISH itself. The
// pacers run in the reactors' goroutines (plain TCP: at most two, each
// reading and writing its share of the connections) or on goroutines of
// their own (TLS). Whoever reads a connection handles its PUBACKs: it
// records the latency and, when the worker's next report is already due
// (it fell behind) or the rate is unbounded, sends it at once. A report
// not acknowledged within reportTimeout fails (checked every sweepEvery).
// No goroutine, timer, context or allocation per report.
type publisher struct {
	opts    *Options
	broker  string
	conns   []*mqttConn
	workers []*worker
	seqBase uint64
	unpaced bool // Rate 0: every worker sends its next report on the PUBACK of the last

	sent, acked, failed      atomic.Uint64
	statusSent, statusAcked  atomic.Uint64
	budget                   atomic.Int64 // reports left when MaxReports > 0
	perDevice                int64        // reports one device may send when MaxReports > 0
	pending                  atomic.Int64 // reports sent, not yet acknowledged, refused, timed out or lost
	live                     atomic.Int64 // connections not lost
	stopping                 atomic.Bool  // no more reports: the run is over
	halted                   chan struct{}
	haltOnce                 sync.Once
	connectErrors            int
	devicesWithoutConnection int
	lat                      *recorder
	errs                     *errorLog
	seq, lastAcked           []uint64 // per device; under its connection's lock
	stopPing                 chan struct{}
	loops                    []*reactorLoop // none: every connection has a reading goroutine
}

// reactorLoop is the goroutine serving a reactor: it reads the reactor's
// connections and, during the run, paces their workers' reports.
type reactorLoop struct {
	rx         *reactor
	pacers     chan *pacer
	quit, done chan struct{}
}

// reportTimeout is how long a state report waits for its PUBACK before
// it fails, and sweepEvery how often the reports in flight are checked
// (variables for the tests).
var (
	reportTimeout = publishTimeout
	sweepEvery    = time.Second
)

// paceQuantum is the shortest sleep of a pacer: one wake sends every
// report falling due meanwhile, instead of a wake per report.
const paceQuantum = time.Millisecond

// paceMaxSleep is the longest sleep of a reactor during a paced run,
// which reads its connections only when it wakes: a PUBACK is read well
// within reportTimeout however slow the rate.
const paceMaxSleep = 50 * time.Millisecond

type mqttConn struct {
	p        *publisher
	clientID string
	client   *leanClient
	devices  []int
	workers  []*worker

	// Under client.mu:
	queue   []*worker // workers with a report due, waiting for a packet id
	reports []report  // by packet id: the report in flight
	tally   *tally    // the latencies of the connection's reports
	buf     []byte    // payload encoding
	dead    bool
}

// report is a state report in flight.
type report struct {
	w       *worker
	d       int
	seq     uint64
	sent    time.Time
	expired bool // failed for want of a PUBACK, whose packet id is still taken
}

// worker publishes for a fixed set of devices of one connection, one
// report at a time.
type worker struct {
	conn    *mqttConn
	devices []int
	index   int

	// Under conn.client.mu:
	inflight, queued, stopped bool
	owed                      int // reports due and not sent yet (paced runs)
	next                      int // reports taken: the next is for devices[next%len(devices)]
	// ids and topics of the devices, by position in devices; fast says a
	// device's default payload matched state.Encode (checked on its
	// first report), checked that it was checked.
	ids, topics   []string
	fast, checked []bool

	// The pacer's: the schedule.
	rate, phase float64
	j           int64
	due         time.Time
}

// connect opens every connection and announces the devices. It fails only
// when no connection could be made.
func connect(ctx context.Context, u *url.URL, opts *Options) (*publisher, error) {
	p := &publisher{opts: opts, broker: u.Redacted(), lat: newRecorder(), errs: &errorLog{},
		seq: make([]uint64, opts.Devices), lastAcked: make([]uint64, opts.Devices),
		unpaced: opts.Rate == 0, halted: make(chan struct{})}
	// Seqs start from the clock, in microseconds, so a later run's reports
	// are newer than an earlier run's for the same device ids.
	p.seqBase = uint64(opts.Now().UnixMicro())
	if opts.MaxReports > 0 {
		p.budget.Store(opts.MaxReports)
		// Each device's share, rounded up: the budget runs out before
		// every device has sent its share.
		p.perDevice = (opts.MaxReports + int64(opts.Devices) - 1) / int64(opts.Devices)
	}
	perDevice := opts.Connections == opts.Devices
	p.conns = make([]*mqttConn, opts.Connections)
	for k := range p.conns {
		c := &mqttConn{p: p}
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

	if u.Scheme == "mqtt" || u.Scheme == "tcp" {
		p.startReactors(min(runtime.GOMAXPROCS(0), reactorsMax, len(p.conns)))
	}
	var mu sync.Mutex
	errs := make([]error, len(p.conns))
	parallel(len(p.conns), dialParallel, func(k int) {
		c := p.conns[k]
		var err error
		var rx *reactor
		if len(p.loops) > 0 {
			rx = p.loops[k%len(p.loops)].rx
		}
		c.client, err = p.dial(ctx, u, c, perDevice, rx)
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
		p.stopReactors()
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
			c.workers = append(c.workers, wk)
		}
		c.reports = make([]report, len(c.client.slots))
		c.tally = p.lat.tally()
		p.live.Add(1)
	}
	for _, c := range p.conns {
		if c.client != nil {
			c.client.attach(c)
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
func (p *publisher) dial(ctx context.Context, u *url.URL, c *mqttConn, perDevice bool, rx *reactor) (*leanClient, error) {
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
	return dialLean(cctx, nc, cp, window, rx)
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
	cfg := paho.ClientConfig{ClientID: clientID, Conn: nc, PacketTimeout: publishTimeout, OnPublishReceived: onPublish}
	if onPublish != nil {
		// A subscriber's PUBACKs leave in batches every 2 ms (its handlers
		// acknowledge each message) rather than a write each.
		cfg.EnableManualAcknowledgment, cfg.SendAcksInterval = true, 2*time.Millisecond
	}
	client := paho.NewClient(cfg)
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

// reactorsMax bounds the reactors (and pacers) of a run.
const reactorsMax = 2

// startReactors starts n reactors; none if the system has none.
func (p *publisher) startReactors(n int) {
	for range n {
		rx, err := newReactor()
		if err != nil {
			break
		}
		l := &reactorLoop{rx: rx, pacers: make(chan *pacer, 1), quit: make(chan struct{}), done: make(chan struct{})}
		p.loops = append(p.loops, l)
		go p.serve(l)
	}
}

// stopReactors ends the reactors; their connections are closed.
func (p *publisher) stopReactors() {
	for _, l := range p.loops {
		close(l.quit)
		l.rx.wake()
		<-l.done
		l.rx.close()
	}
	p.loops = nil
}

// reactorIdle is how long an idle reactor waits for something to read
// before it looks at its channels again (a wake ends the wait early).
const reactorIdle = 250

// serve is a reactor's goroutine. Outside a paced run it waits for
// PUBACKs and handles each at once; during a paced run it wakes when the
// next report falls due (at most every paceQuantum), reads everything that
// came meanwhile (measured by its arrival time) and sends what is due.
func (p *publisher) serve(l *reactorLoop) {
	defer close(l.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var pc *pacer
	for {
		select {
		case <-l.quit:
			return
		case pc = <-l.pacers:
		default:
		}
		if pc == nil {
			l.rx.poll(reactorIdle)
			continue
		}
		l.rx.poll(0)
		next, ok := pc.step(p.opts.Now())
		if !ok {
			pc = nil
			continue
		}
		if next.IsZero() {
			continue
		}
		timer.Reset(min(max(next.Sub(p.opts.Now()), paceQuantum), paceMaxSleep))
		select {
		case <-l.quit:
			return
		case <-p.halted:
			pc = nil
		case <-timer.C:
		}
	}
}

// run publishes until ctx ends, the report budget is spent or every
// connection is lost, then waits for the reports in flight: a report sent
// at the last moment still gets its PUBACK (or fails after
// reportTimeout).
func (p *publisher) run(ctx context.Context, start time.Time) {
	stopSweep, swept := make(chan struct{}), make(chan struct{})
	go func() {
		p.sweep(stopSweep)
		close(swept)
	}()
	// A connection's workers share its reactor's pacer.
	n := len(p.loops)
	if n == 0 {
		n = min(runtime.GOMAXPROCS(0), len(p.conns))
	}
	ws := make([][]*worker, n)
	for k, c := range p.conns {
		ws[k%n] = append(ws[k%n], c.workers...)
	}
	var wg sync.WaitGroup
	for k := range n {
		pc := p.newPacer(ws[k], start)
		if len(p.loops) > 0 {
			l := p.loops[k]
			l.pacers <- pc
			l.rx.wake()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.pace(pc)
		}()
	}
	select {
	case <-ctx.Done():
	case <-p.halted:
	}
	p.halt()
	wg.Wait()
	for p.pending.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	close(stopSweep)
	<-swept
	for _, c := range p.conns {
		if c.client != nil {
			c.client.mu.Lock()
			c.tally.done()
			c.tally = p.lat.tally()
			c.client.mu.Unlock()
		}
	}
}

// halt ends the run: no report is sent after it.
func (p *publisher) halt() {
	p.haltOnce.Do(func() {
		p.stopping.Store(true)
		close(p.halted)
	})
}

// pacer sends the reports of a set of workers as they fall due. Each
// worker keeps its share of the rate on its own schedule, staggered so
// the workers do not fire together; a worker whose last report is still
// in flight owes the report, which its PUBACK sends.
type pacer struct {
	p     *publisher
	ws    paceHeap // by next due report; in any order when unpaced
	start time.Time
}

func (p *publisher) newPacer(ws []*worker, start time.Time) *pacer {
	pc := &pacer{p: p, ws: ws, start: start}
	if !p.unpaced {
		for _, w := range ws {
			w.rate = p.opts.Rate * float64(len(w.devices)) / float64(p.opts.Devices)
			w.phase = float64(w.index) / float64(len(p.workers)) / w.rate
			w.due = w.at(start)
		}
		pc.ws.init()
	}
	return pc
}

// step sends what is due at now and returns when the next report falls
// due (zero: call again at once), false when there is nothing left to
// pace.
func (pc *pacer) step(now time.Time) (time.Time, bool) {
	p := pc.p
	if p.stopping.Load() {
		return time.Time{}, false
	}
	if p.unpaced {
		if p.opts.QoS > 0 {
			for _, w := range pc.ws {
				p.due(w)
			}
			return time.Time{}, false // the PUBACKs send the rest
		}
		// QoS 0: as fast as the connections take them.
		for i := 0; i < len(pc.ws); {
			if p.due(pc.ws[i]) {
				i++
			} else {
				pc.ws = append(pc.ws[:i], pc.ws[i+1:]...)
			}
		}
		return time.Time{}, len(pc.ws) > 0 && !p.stopping.Load()
	}
	for len(pc.ws) > 0 && !pc.ws[0].due.After(now) {
		if p.stopping.Load() {
			return time.Time{}, false
		}
		w := pc.ws[0]
		if p.due(w) {
			w.j++
			w.due = w.at(pc.start)
			pc.ws.down(0)
		} else {
			pc.ws.pop()
		}
	}
	if len(pc.ws) == 0 {
		return time.Time{}, false
	}
	return pc.ws[0].due, true
}

// pace runs a pacer on a goroutine of its own (no reactor).
func (p *publisher) pace(pc *pacer) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, ok := pc.step(p.opts.Now())
		if !ok {
			return
		}
		if next.IsZero() {
			continue
		}
		timer.Reset(max(next.Sub(p.opts.Now()), paceQuantum))
		select {
		case <-p.halted:
			return
		case <-timer.C:
		}
	}
}

// at is when the worker's report j falls due.
func (w *worker) at(start time.Time) time.Time {
	return start.Add(time.Duration((w.phase + float64(w.j)/w.rate) * float64(time.Second)))
}

// paceHeap orders workers by their next due report.
type paceHeap []*worker

func (h paceHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h paceHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].due.Before(h[l].due) {
			m = r
		}
		if !h[m].due.Before(h[i].due) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *paceHeap) pop() {
	old := *h
	n := len(old) - 1
	old[0] = old[n]
	old[n] = nil
	*h = old[:n]
	h.down(0)
}

// due is a report of w falling due: it is sent now if the worker has
// none in flight and the connection a free packet id, else when they
// do. It returns false once the worker reports no more.
func (p *publisher) due(w *worker) bool {
	c := w.conn
	cl := c.client
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if w.stopped {
		return false
	}
	if p.opts.QoS == 0 {
		cl.waitRoomLocked()
		r, ok := c.sendLocked(w, 0)
		if !ok {
			return !w.stopped
		}
		err := cl.flushLocked()
		if err != nil {
			p.failed.Add(1)
			p.errs.add(fmt.Errorf("publish state report: %w: %w", errDisconnected, err))
		} else {
			c.tally.add(p.opts.Now().Sub(r.sent))
			p.acked.Add(1)
			p.lastAcked[r.d] = r.seq
		}
		p.pending.Add(-1)
		return true
	}
	if !p.unpaced {
		w.owed++
	}
	c.wantLocked(w)
	c.serveLocked()
	_ = cl.flushLocked() // a write error ends the connection: lost counts it
	return true
}

// wantLocked queues the worker for a packet id if it has a report to
// send and none in flight.
func (c *mqttConn) wantLocked(w *worker) {
	if w.inflight || w.queued || w.stopped || !c.p.unpaced && w.owed == 0 {
		return
	}
	w.queued = true
	c.queue = append(c.queue, w)
}

// serveLocked sends the queued workers' reports while packet ids are
// free (blocking publishes waiting for one come first).
func (c *mqttConn) serveLocked() {
	cl := c.client
	for len(c.queue) > 0 && len(cl.wait) == 0 {
		id, ok := cl.acquireLocked()
		if !ok {
			return
		}
		w := c.queue[0]
		c.queue = c.queue[:copy(c.queue, c.queue[1:])]
		w.queued = false
		if _, ok := c.sendLocked(w, id); !ok {
			cl.releaseLocked(id)
		}
	}
}

// sendLocked takes the worker's next report and queues its PUBLISH with
// packet id id (0 at QoS 0); false when no report may go (the run is
// over, the budget spent) or it could not be encoded.
func (c *mqttConn) sendLocked(w *worker, id uint16) (report, bool) {
	p := c.p
	opts := p.opts
	if p.stopping.Load() {
		return report{}, false
	}
	// pending counts the report before stopping is checked again, so
	// that run, which sets stopping and then waits for pending to drain,
	// never misses it.
	p.pending.Add(1)
	if p.stopping.Load() {
		p.pending.Add(-1)
		return report{}, false
	}
	k := w.next % len(w.devices)
	// A device that has sent its share of the budget is passed over:
	// the others get theirs, however fast their acknowledgements come.
	for skipped := 0; opts.MaxReports > 0 && p.seq[w.devices[k]] >= uint64(p.perDevice); {
		if skipped++; skipped == len(w.devices) {
			p.pending.Add(-1)
			if p.budget.Load() <= 0 {
				p.halt()
			}
			return report{}, false
		}
		w.next++
		k = w.next % len(w.devices)
	}
	if opts.MaxReports > 0 && p.budget.Add(-1) < 0 {
		p.pending.Add(-1)
		p.halt()
		return report{}, false
	}
	if w.owed > 0 {
		w.owed--
	}
	w.next++
	d := w.devices[k]
	p.seq[d]++
	r := report{w: w, d: d, seq: p.seqBase + p.seq[d]}
	if w.ids == nil {
		w.ids, w.topics = make([]string, len(w.devices)), make([]string, len(w.devices))
		w.fast, w.checked = make([]bool, len(w.devices)), make([]bool, len(w.devices))
	}
	if w.ids[k] == "" {
		w.ids[k] = deviceID(opts.IDPrefix, d, opts.Devices)
		w.topics[k] = state.StateTopic(opts.Prefix, w.ids[k])
	}
	id0 := w.ids[k]
	r.sent = opts.Now()
	var payload []byte
	var err error
	if w.fast[k] {
		c.buf = appendDefaultPayload(c.buf[:0], d, id0, r.seq, r.sent)
		payload = c.buf
	} else {
		payload, err = state.Encode(opts.Payload(d, id0, r.seq, r.sent))
		if err == nil && opts.defaultPayload && !w.checked[k] {
			// Encode this device's next reports without reflection
			// if that gives exactly the same bytes.
			w.checked[k] = true
			c.buf = appendDefaultPayload(c.buf[:0], d, id0, r.seq, r.sent)
			w.fast[k] = string(c.buf) == string(payload)
		}
	}
	p.sent.Add(1)
	if err != nil {
		p.errs.add(fmt.Errorf("encode report: %w", err))
		p.failed.Add(1)
		p.pending.Add(-1)
		return report{}, false
	}
	c.client.appendPublishLocked(opts.QoS, true, w.topics[k], id, payload)
	if opts.QoS > 0 {
		w.inflight = true
		c.client.slots[id] = leanSlot{busy: true, report: true}
		c.reports[id] = r
	}
	return r, true
}

// puback handles the PUBACK of a report (the reader calls it with the
// client's lock held) and sends the worker's next report if it is due.
// The latency ends when the PUBACK arrived (at), if that is known and
// plausible, else now.
func (c *mqttConn) puback(id uint16, code byte, at time.Time) {
	p := c.p
	if r := &c.reports[id]; r.w != nil && !r.expired {
		if code >= 0x80 {
			p.failed.Add(1)
			p.errs.add(fmt.Errorf("publish state report: %w", pubackError(code)))
		} else {
			lat := p.opts.Now().Sub(r.sent)
			if !at.IsZero() {
				if l := at.Sub(r.sent); l >= 0 && l < lat {
					lat = l
				}
			}
			c.tally.add(lat)
			p.acked.Add(1)
			p.lastAcked[r.d] = r.seq
		}
		p.pending.Add(-1)
		r.w.inflight = false
		c.wantLocked(r.w)
	}
	c.reports[id] = report{}
	c.client.releaseLocked(id)
	c.serveLocked()
}

// expire fails the reports waiting for their PUBACK since before
// reportTimeout; their packet ids stay taken until it comes.
func (c *mqttConn) expire(now time.Time) {
	p := c.p
	cl := c.client
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for id := range c.reports {
		r := &c.reports[id]
		if r.w == nil || r.expired || now.Sub(r.sent) < reportTimeout {
			continue
		}
		r.expired = true
		p.failed.Add(1)
		p.errs.add(fmt.Errorf("publish state report: no PUBACK within %v: %w", reportTimeout, context.DeadlineExceeded))
		p.pending.Add(-1)
		r.w.inflight = false
		c.wantLocked(r.w)
	}
	c.serveLocked()
	_ = cl.flushLocked()
}

// sweep expires overdue reports every sweepEvery until stop is closed.
func (p *publisher) sweep(stop <-chan struct{}) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := p.opts.Now()
		for _, c := range p.conns {
			if c.client != nil {
				c.expire(now)
			}
		}
	}
}

// lost fails the connection's reports in flight; each of its devices
// counts one more failed report (it finds its connection gone when it
// next reports) unless the run is over, and reports no more.
func (c *mqttConn) lost(err error) {
	p := c.p
	cl := c.client
	cl.mu.Lock()
	if c.dead {
		cl.mu.Unlock()
		return
	}
	c.dead = true
	for id := range c.reports {
		r := &c.reports[id]
		if r.w != nil && !r.expired {
			p.failed.Add(1)
			p.errs.add(fmt.Errorf("publish state report: %w", err))
			p.pending.Add(-1)
			r.w.inflight = false
		}
		c.reports[id] = report{}
	}
	c.queue = c.queue[:0]
	for _, w := range c.workers {
		if w.stopped {
			continue
		}
		w.stopped, w.queued = true, false
		if !p.stopping.Load() && (p.opts.MaxReports == 0 || p.budget.Add(-1) >= 0) {
			p.sent.Add(1)
			p.failed.Add(1)
			p.errs.add(errors.New("publish state report: the connection to the broker was lost"))
		}
	}
	cl.mu.Unlock()
	if p.live.Add(-1) == 0 {
		p.halt()
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
	p.stopReactors()
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
