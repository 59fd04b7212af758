package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// maxAPIBody bounds an API answer (the device list of a million devices
// fits).
const maxAPIBody = 1 << 30

// apiClient reads the collector's counters through the fleet JSON API.
type apiClient struct {
	base   *url.URL
	client *http.Client
}

func newAPIClient(base *url.URL, c *http.Client) *apiClient { return &apiClient{base: base, client: c} }

func (a *apiClient) get(ctx context.Context, path string, v any) error {
	u := a.base.JoinPath(path).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("collector API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("collector API: GET %s: %s (is the collector running behind this server?)", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAPIBody)).Decode(v); err != nil {
		return fmt.Errorf("collector API: GET %s: %w", u, err)
	}
	return nil
}

func (a *apiClient) stats(ctx context.Context) (fleet.Stats, error) {
	var s fleet.Stats
	err := a.get(ctx, "api/v1/fleet/stats", &s)
	return s, err
}

func (a *apiClient) devices(ctx context.Context) ([]fleet.Device, error) {
	var d []fleet.Device
	err := a.get(ctx, "api/v1/fleet/devices", &d)
	return d, err
}

// statsTracker polls the collector's counters from the start of the run,
// to know when they last moved: the end of the collector's ingest.
type statsTracker struct {
	api        *apiClient
	now        func() time.Time
	mu         sync.Mutex
	stats      fleet.Stats
	lastChange time.Time
	err        error
	stop, done chan struct{}
}

func startTracker(ctx context.Context, api *apiClient, before fleet.Stats, now func() time.Time) *statsTracker {
	t := &statsTracker{api: api, now: now, stats: before, lastChange: now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	go t.loop(ctx)
	return t
}

func (t *statsTracker) loop(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	for {
		s, err := t.api.stats(ctx)
		t.mu.Lock()
		t.err = err
		if err == nil {
			if s.Stored != t.stats.Stored || s.Stale != t.stats.Stale {
				t.lastChange = t.now()
			}
			t.stats = s
		}
		t.mu.Unlock()
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
	}
}

func (t *statsTracker) snapshot() (fleet.Stats, time.Time, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats, t.lastChange, t.err
}

func (t *statsTracker) close() {
	close(t.stop)
	<-t.done
}

// settle waits until the collector has accounted for every acknowledged
// report (stored, or judged stale), or its counters did not move for
// settleIdle, or opts.Settle passed; then it fills res.Collector.
func settle(ctx context.Context, tr *statsTracker, api *apiClient, res *Result, pub *publisher, opts *Options, start time.Time) {
	defer tr.close()
	c := res.Collector
	want := uint64(0)
	if res.MQTT != nil {
		want = res.MQTT.Acked
	}
	began := opts.Now()
	deadline := began.Add(opts.Settle)
	timer := time.NewTimer(settlePoll)
	defer timer.Stop()
	var lastChange time.Time
	var err error
	for {
		c.After, lastChange, err = tr.snapshot()
		if c.After.Stored < c.Before.Stored || c.After.Stale < c.Before.Stale {
			// The collector restarted and its counters began again.
			c.CountersReset = true
			c.Before = fleet.Stats{}
		}
		if err == nil && c.accounted() >= want {
			c.Settled = true
			break
		}
		idleSince := lastChange
		if idleSince.Before(began) {
			idleSince = began
		}
		if now := opts.Now(); now.Sub(idleSince) >= settleIdle || now.After(deadline) {
			break
		}
		timer.Reset(settlePoll)
		<-timer.C
	}
	if err != nil {
		c.Error = err.Error()
	}
	c.SettleTime = opts.Now().Sub(began)
	// The counters last moved at lastChange (to within settlePoll): the
	// collector ingested the run between start and then.
	if window := lastChange.Sub(start); window > 0 && c.accounted() > 0 {
		c.PerSecond = float64(c.accounted()) / window.Seconds()
	}
	c.Stored = c.After.Stored - c.Before.Stored
	c.Stale = c.After.Stale - c.Before.Stale
	c.Invalid = c.After.Invalid - min(c.Before.Invalid, c.After.Invalid)
	c.Drops = int64(want) - int64(c.accounted())
	if !opts.CheckDevices || pub == nil || c.Error != "" {
		return
	}
	devs, err := api.devices(ctx)
	if err != nil {
		c.Error = err.Error()
		return
	}
	stored := make(map[string]uint64, len(devs))
	for _, d := range devs {
		stored[d.ID] = d.State.Seq
	}
	c.DevicesChecked = true
	for i, seq := range pub.lastAcked {
		if seq == 0 {
			continue
		}
		id := deviceID(opts.IDPrefix, i, opts.Devices)
		if stored[id] < seq {
			c.DevicesBehind++
			if len(c.BehindSample) < 10 {
				c.BehindSample = append(c.BehindSample, id)
			}
		}
	}
}

// Polling of the collector while it settles.
const (
	settlePoll = 100 * time.Millisecond
	settleIdle = 3 * time.Second
)

func (c *CollectorResult) accounted() uint64 {
	return (c.After.Stored - c.Before.Stored) + (c.After.Stale - c.Before.Stale)
}
