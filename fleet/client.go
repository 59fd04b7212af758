package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// APIClient reads the fleet JSON API of a running server or collector.
type APIClient struct {
	// Base is the server URL, e.g. http://127.0.0.1:8080.
	Base string
	// HTTP is the client to use (default http.DefaultClient).
	HTTP *http.Client
}

func (c *APIClient) get(ctx context.Context, path string, q url.Values, v any) error {
	u := strings.TrimRight(c.Base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("fleet API %s: %w", u, err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fleet API: %w (is the server running? check --server)", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return fmt.Errorf("fleet API %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae APIError
		if json.Unmarshal(body, &ae) == nil && ae.Error != "" {
			if resp.StatusCode == http.StatusNotFound {
				return fmt.Errorf("fleet API %s: %w: %s", u, ErrNotFound, ae.Error)
			}
			return fmt.Errorf("fleet API %s: %s: %s", u, resp.Status, ae.Error)
		}
		return fmt.Errorf("fleet API %s: %s", u, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("fleet API %s: bad response: %w", u, err)
	}
	return nil
}

func staleQuery(q url.Values, stale time.Duration) url.Values {
	if stale > 0 {
		q.Set("stale", stale.String())
	}
	return q
}

// Report fetches GET /api/v1/fleet/report with rq's Package, Stale and
// StaleView (0: the server's default; negative: no list). The server
// supplies Newest and the time: rq.Newest and rq.Now are not sent.
func (c *APIClient) Report(ctx context.Context, rq ReportOptions) (*Report, error) {
	q := staleQuery(url.Values{}, rq.Stale)
	if rq.Package != "" {
		q.Set("package", rq.Package)
	}
	switch {
	case rq.StaleView > 0:
		q.Set("stale_view", rq.StaleView.String())
	case rq.StaleView < 0:
		q.Set("stale_view", "0")
	}
	var r Report
	return &r, c.get(ctx, "/api/v1/fleet/report", q, &r)
}

// Devices fetches GET /api/v1/fleet/devices (?stale= when stale > 0).
func (c *APIClient) Devices(ctx context.Context, stale time.Duration) ([]Device, error) {
	var d []Device
	return d, c.get(ctx, "/api/v1/fleet/devices", staleQuery(url.Values{}, stale), &d)
}

// Device fetches GET /api/v1/fleet/devices/{id}.
func (c *APIClient) Device(ctx context.Context, id string) (Device, error) {
	var d Device
	return d, c.get(ctx, "/api/v1/fleet/devices/"+url.PathEscape(id), nil, &d)
}

// History fetches GET /api/v1/fleet/devices/{id}/history.
func (c *APIClient) History(ctx context.Context, id string) ([]Event, error) {
	var h []Event
	return h, c.get(ctx, "/api/v1/fleet/devices/"+url.PathEscape(id)+"/history", nil, &h)
}

// Stats fetches GET /api/v1/fleet/stats.
func (c *APIClient) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	return s, c.get(ctx, "/api/v1/fleet/stats", nil, &s)
}
