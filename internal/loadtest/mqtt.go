package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"golang.org/x/sync/errgroup"
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
	p.planConns(perDevice)
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

	p.startWorkers()
	p.stopPing = make(chan struct{})
	go p.pingLoop()
	if opts.Status {
		p.announce(ctx, state.Online)
	}
	return p, nil
}

// planConns makes the publisher's connections and deals the devices out
// over them, round robin; with perDevice each connection is one device
// and has its id.
func (p *publisher) planConns(perDevice bool) {
	opts := p.opts
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
}

// startWorkers gives each connected connection up to Inflight workers,
// each sending for its share of the connection's devices, and attaches
// the connections to their clients.
func (p *publisher) startWorkers() {
	for _, c := range p.conns {
		if c.client == nil {
			continue
		}
		n := min(len(c.devices), p.opts.Inflight)
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

// parallel calls f(0 … n-1) on at most width goroutines at a time.
func parallel(n, width int, f func(int)) {
	var g errgroup.Group
	g.SetLimit(width)
	for i := range n {
		g.Go(func() error {
			f(i)
			return nil
		})
	}
	g.Wait()
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
