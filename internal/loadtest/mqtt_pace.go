package loadtest

import (
	"fmt"
	"time"
)

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
