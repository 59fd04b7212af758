package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// SubscriberResult is what a plain subscriber on the same broker received
// of the run's reports: the baseline the collector's ingest is compared
// with.
type SubscriberResult struct {
	Received uint64 `json:"received"`
	Invalid  uint64 `json:"invalid"`
	// PerSecond is Received over the time from the start of the run to
	// the last delivery: the rate the broker delivered at.
	PerSecond float64 `json:"per_second"`
	// Missing is acknowledged reports the subscriber did not receive.
	Missing int64 `json:"missing"`
	// Latency from a report's time to its delivery.
	Latency Latency `json:"latency"`
	Error   string  `json:"error,omitempty"`
}

// plainSubscriber counts the run's state reports as the broker delivers
// them, acknowledging each at once.
type plainSubscriber struct {
	opts     *Options
	client   *paho.Client
	received atomic.Uint64
	invalid  atomic.Uint64
	last     atomic.Int64 // Now() of the newest delivery, Unix ns
	lat      *recorder
	mu       sync.Mutex
	tally    *tally
}

func subscribePlain(ctx context.Context, u *url.URL, opts *Options) (*plainSubscriber, error) {
	s := &plainSubscriber{opts: opts, lat: newRecorder()}
	s.tally = s.lat.tally()
	client, err := dialMQTT(ctx, u, opts, opts.IDPrefix+"subscriber", nil, []func(paho.PublishReceived) (bool, error){s.receive})
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	s.client = client
	sctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	// Retain handling 2: no stored reports of earlier runs, only this one's.
	_, err = client.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: opts.Prefix + "/+/" + state.KindState, QoS: opts.QoS, RetainHandling: 2}}})
	if err != nil {
		_ = client.Disconnect(&paho.Disconnect{})
		return nil, fmt.Errorf("subscriber: subscribe: %w", err)
	}
	return s, nil
}

// receive counts one delivery and acknowledges it (the client acknowledges
// manually, in batches).
func (s *plainSubscriber) receive(pr paho.PublishReceived) (bool, error) {
	s.count(pr.Packet)
	_ = pr.Client.Ack(pr.Packet) // an error: the connection is gone
	return true, nil
}

func (s *plainSubscriber) count(pk *paho.Publish) {
	id, _, ok := state.ParseTopic(s.opts.Prefix, pk.Topic)
	if !ok || !strings.HasPrefix(id, s.opts.IDPrefix) {
		return // another device's report
	}
	// A plain subscriber does little: only the fields it needs, so that it
	// measures the broker rather than itself.
	var st struct {
		Device string    `json:"device"`
		Time   time.Time `json:"time"`
	}
	if err := json.Unmarshal(pk.Payload, &st); err != nil || st.Device != id {
		s.invalid.Add(1)
		return
	}
	s.received.Add(1)
	now := s.opts.Now()
	s.last.Store(now.UnixNano())
	d := now.Sub(st.Time)
	s.mu.Lock()
	s.tally.add(d)
	s.mu.Unlock()
}

// finish waits until want reports arrived, or none arrived for
// settleIdle, or the settle time passed; then it disconnects.
func (s *plainSubscriber) finish(want uint64, start time.Time) *SubscriberResult {
	deadline := s.opts.Now().Add(s.opts.Settle)
	last, lastChange := s.received.Load(), s.opts.Now()
	for s.received.Load() < want {
		now := s.opts.Now()
		if n := s.received.Load(); n != last {
			last, lastChange = n, now
		}
		if now.After(deadline) || now.Sub(lastChange) >= settleIdle {
			break
		}
		time.Sleep(settlePoll)
	}
	_ = s.client.Disconnect(&paho.Disconnect{})
	s.mu.Lock()
	s.tally.done()
	s.tally = s.lat.tally() // late deliveries go nowhere
	s.mu.Unlock()
	r := &SubscriberResult{Received: s.received.Load(), Invalid: s.invalid.Load(), Latency: s.lat.summary()}
	r.Missing = int64(want) - int64(r.Received)
	if window := time.Unix(0, s.last.Load()).Sub(start); r.Received > 0 && window > 0 {
		r.PerSecond = float64(r.Received) / window.Seconds()
	}
	return r
}
