package loadtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

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
