package fleet

import (
	"context"
	"errors"
	"strings"
)

// StoreDashboardSource lets the dashboard read a fleet store directly (a
// *Store, or any Reader). newest, if not nil, returns the newest
// published version of each package (for the rollout progress); opts
// gives the report's clock (Now) and StaleView.
func StoreDashboardSource(s Reader, newest func() map[string]string, opts ReportOptions) DashboardSource {
	return &readerDashSource{r: s, newest: newest, opts: opts}
}

// APIDashboardSource lets the dashboard read the fleet JSON API of another
// server or collector.
func APIDashboardSource(c *APIClient) DashboardSource { return &readerDashSource{r: c} }

// readerDashSource is the dashboard's view of any Reader.
type readerDashSource struct {
	r      Reader
	newest func() map[string]string
	opts   ReportOptions
}

func (d *readerDashSource) Report(ctx context.Context) (*Report, error) {
	ro := ReportOptions{Now: d.opts.Now, StaleView: d.opts.StaleView}
	if d.newest != nil {
		ro.Newest = d.newest()
	}
	return d.r.Report(ctx, ro)
}

func (d *readerDashSource) FindDevices(ctx context.Context, prefix string, limit int) ([]Device, error) {
	devs, err := d.r.Devices(ctx, 0)
	if err != nil {
		return nil, err
	}
	return devicesWithPrefix(devs, prefix, limit), nil
}

func (d *readerDashSource) Device(ctx context.Context, id string) (*Device, error) {
	dev, err := d.r.Device(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &dev, nil
}

func (d *readerDashSource) History(ctx context.Context, id string, limit int) ([]Event, error) {
	ev, err := d.r.History(ctx, id)
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
