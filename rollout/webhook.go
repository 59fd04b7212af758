package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	// URL receives a POST of WebhookEvent JSON (http or https). It may
	// carry a secret (a token in its path or query, user:password): it is
	// never logged, only its scheme and host.
	URL string
	// Client sends the requests (default: one with a 10 s timeout).
	Client *http.Client
	// Attempts bounds the tries of one event (default 6), Backoff is the
	// wait before the first retry (default 2 s), doubled after each
	// failed try up to MaxBackoff (default 5 min).
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Queue is how many events wait for delivery (default 64); Notify
	// drops, and logs, an event that finds the queue full.
	Queue int
	// Logf receives delivery failures and drops (nil: discarded).
	Logf func(format string, args ...any)
}

// WebhookEvent is the JSON body a Webhook POSTs when a rollout halts,
// completes or is reverted.
type WebhookEvent struct {
	// ID is the same for every try of one event (the receiver may
	// deduplicate retries with it).
	ID           string    `json:"id"`
	Event        Action    `json:"event"` // halt, complete or revert
	Rollout      string    `json:"rollout"`
	Distribution string    `json:"distribution"`
	Package      string    `json:"package"`
	Version      string    `json:"version"`
	State        State     `json:"state"`
	Percent      int       `json:"percent"`
	Reason       string    `json:"reason"`
	Time         time.Time `json:"time"`
	Stats        Stats     `json:"stats"`
	RevertedAs   string    `json:"reverted_as,omitempty"`
}

// Webhook tells an HTTP endpoint (a chat bot, an incident tool) when a
// rollout halts, completes or is reverted. Notify never blocks the
// controller: events queue and Run delivers them, retrying with backoff.
type Webhook struct {
	opts    WebhookOptions
	u       *url.URL
	ch      chan WebhookEvent
	dropped atomic.Uint64
	sent    atomic.Uint64
	failed  atomic.Uint64
}

// NewWebhook checks the URL and returns a Webhook; call Run to deliver.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The parse error quotes the URL: say only what is wrong.
		return nil, errors.New("rollout webhook: the URL must be http:// or https:// with a host")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.Queue <= 0 {
		o.Queue = 64
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return &Webhook{opts: o, u: u, ch: make(chan WebhookEvent, o.Queue)}, nil
}

// Where is the webhook's URL without what may be secret: scheme and host.
func (w *Webhook) Where() string {
	s := w.u.Scheme + "://" + w.u.Host
	if w.u.Path != "" && w.u.Path != "/" || w.u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// Notify queues an event for a decision that halts, completes or reverts
// r (other decisions are ignored); it never blocks. Use it as, or in,
// Controller.OnDecision.
func (w *Webhook) Notify(r Rollout, d Decision) {
	if d.Action != Halt && d.Action != Complete && d.Action != Revert {
		return
	}
	ev := WebhookEvent{ID: fmt.Sprintf("%s@%s#%s", r.Key(), d.Time.UTC().Format(time.RFC3339Nano), d.Action),
		Event: d.Action, Rollout: r.Key(), Distribution: r.Distribution, Package: r.Package, Version: r.Version,
		State: r.State, Percent: r.Percent(), Reason: d.Reason, Time: d.Time, Stats: d.Stats, RevertedAs: r.RevertedAs}
	select {
	case w.ch <- ev:
	default:
		w.dropped.Add(1)
		w.opts.Logf("rollout webhook %s: queue full, %s of %s not sent", w.Where(), ev.Event, ev.Rollout)
	}
}

// Counts returns how many events were delivered, given up after every
// attempt failed, and dropped because the queue was full.
func (w *Webhook) Counts() (sent, failed, dropped uint64) {
	return w.sent.Load(), w.failed.Load(), w.dropped.Load()
}

// Run delivers queued events until ctx ends, one at a time, each with up
// to Attempts tries: a network error, 408, 429 or 5xx is retried after
// the backoff; another status (a 4xx) gives up at once.
func (w *Webhook) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.ch:
			w.deliver(ctx, ev)
		}
	}
}

func (w *Webhook) deliver(ctx context.Context, ev WebhookEvent) {
	body, err := json.Marshal(ev)
	if err != nil {
		w.failed.Add(1)
		w.opts.Logf("rollout webhook %s: encode %s of %s: %v", w.Where(), ev.Event, ev.Rollout, err)
		return
	}
	wait := w.opts.Backoff
	for try := 1; ; try++ {
		retry, err := w.post(ctx, ev, body)
		if err == nil {
			w.sent.Add(1)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retry || try == w.opts.Attempts {
			w.failed.Add(1)
			w.opts.Logf("rollout webhook %s: %s of %s not delivered after %d tries: %v", w.Where(), ev.Event, ev.Rollout, try, err)
			return
		}
		w.opts.Logf("rollout webhook %s: %s of %s: try %d: %v (again in %s)", w.Where(), ev.Event, ev.Rollout, try, err, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, w.opts.MaxBackoff)
	}
}

// post sends one try; retry says whether a failure may pass.
func (w *Webhook) post(ctx context.Context, ev WebhookEvent, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.u.String(), bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot build the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lampi-pkg-rollout-webhook")
	req.Header.Set("X-Lampi-Event", string(ev.Event))
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("status %s", resp.Status)
	default:
		return false, fmt.Errorf("status %s", resp.Status)
	}
}
