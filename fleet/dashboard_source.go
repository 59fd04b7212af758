package fleet

import (
	"context"
	"errors"
	"strings"
)

// StoreDashboardSource lets the dashboard read a Store directly. newest,
// if not nil, returns the newest published version of each package (for
// the rollout progress); opts gives the report's clock (Now) and
// StaleView.
func StoreDashboardSource(s *Store, newest func() map[string]string, opts ReportOptions) DashboardSource {
	return &storeDashSource{s: s, newest: newest, opts: opts}
}

type storeDashSource struct {
	s      *Store
	newest func() map[string]string
	opts   ReportOptions
}

func (d *storeDashSource) Report(context.Context) (*Report, error) {
	ro := ReportOptions{Now: d.opts.Now, StaleView: d.opts.StaleView}
	if d.newest != nil {
		ro.Newest = d.newest()
	}
	return d.s.Report(ro)
}

func (d *storeDashSource) FindDevices(_ context.Context, prefix string, limit int) ([]Device, error) {
	devs, err := d.s.Devices()
	if err != nil {
		return nil, err
	}
	return devicesWithPrefix(devs, prefix, limit), nil
}

func (d *storeDashSource) Device(_ context.Context, id string) (*Device, error) {
	dev, err := d.s.Device(id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &dev, nil
}

func (d *storeDashSource) History(_ context.Context, id string, limit int) ([]Event, error) {
	ev, err := d.s.History(id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return lastEvents(ev, limit), err
}

// APIDashboardSource lets the dashboard read the fleet JSON API of another
// server or collector.
func APIDashboardSource(c *APIClient) DashboardSource { return &apiDashSource{c: c} }

type apiDashSource struct{ c *APIClient }

func (a *apiDashSource) Report(ctx context.Context) (*Report, error) {
	return a.c.Report(ctx, ReportQuery{})
}

func (a *apiDashSource) FindDevices(ctx context.Context, prefix string, limit int) ([]Device, error) {
	devs, err := a.c.Devices(ctx, 0)
	if err != nil {
		return nil, err
	}
	return devicesWithPrefix(devs, prefix, limit), nil
}

func (a *apiDashSource) Device(ctx context.Context, id string) (*Device, error) {
	dev, err := a.c.Device(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &dev, nil
}

func (a *apiDashSource) History(ctx context.Context, id string, limit int) ([]Event, error) {
	ev, err := a.c.History(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return lastEvents(ev, limit), err
}

// devicesWithPrefix keeps the first limit devices (sorted by id) whose id
// starts with prefix.
func devicesWithPrefix(devs []Device, prefix string, limit int) []Device {
	var out []Device
	for _, d := range devs {
		if strings.HasPrefix(d.ID, prefix) {
			if len(out) == limit {
				break
			}
			out = append(out, d)
		}
	}
	return out
}

func lastEvents(ev []Event, limit int) []Event {
	if limit > 0 && len(ev) > limit {
		return ev[len(ev)-limit:]
	}
	return ev
}
