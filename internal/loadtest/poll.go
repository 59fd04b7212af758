package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// maxIndexSize bounds how much of one InRelease a poll reads.
const maxIndexSize = 64 << 20

// poller makes the devices poll dists/<codename>/InRelease the way apt
// and lampi-agent do: conditional GETs with the ETag and Last-Modified of
// the last full answer.
type poller struct {
	opts   *Options
	url    string
	client *http.Client

	requests, ok, notModified, otherStatus, failed atomic.Uint64
	bytes                                          atomic.Uint64
	lat                                            *recorder
	errs                                           *errorLog
}

func newPoller(server *url.URL, opts *Options) *poller {
	u := server.JoinPath("dists", opts.Codename, "InRelease")
	return &poller{opts: opts, url: u.String(), client: opts.httpClient(), lat: newRecorder(), errs: &errorLog{}}
}

// run polls until ctx ends: device d is polled by worker d mod Pollers,
// every PollInterval, the devices of one worker evenly spread over it.
func (p *poller) run(ctx context.Context, start time.Time) {
	n := min(p.opts.Devices, p.opts.Pollers)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		var devs []int
		for d := w; d < p.opts.Devices; d += n {
			devs = append(devs, d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx, start, w, n, devs)
		}()
	}
	wg.Wait()
}

func (p *poller) work(ctx context.Context, start time.Time, index, workers int, devs []int) {
	t := p.lat.tally()
	defer t.done()
	etag := make([]string, len(devs))
	modified := make([]string, len(devs))
	spacing := p.opts.PollInterval / time.Duration(len(devs))
	phase := spacing * time.Duration(index) / time.Duration(workers)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for j := 0; ; j++ {
		due := start.Add(phase + time.Duration(j)*spacing)
		if wait := due.Sub(p.opts.Now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		i := j % len(devs)
		began := p.opts.Now()
		// A poll begun before the end of the run is waited for (the
		// client's timeout bounds it), so every request sent is counted.
		status, tag, mod, err := p.get(context.WithoutCancel(ctx), etag[i], modified[i])
		p.requests.Add(1)
		switch {
		case err != nil:
			p.failed.Add(1)
			p.errs.add(err)
			continue
		case status == http.StatusOK:
			p.ok.Add(1)
			etag[i], modified[i] = tag, mod
		case status == http.StatusNotModified:
			p.notModified.Add(1)
		default:
			p.otherStatus.Add(1)
			p.errs.add(fmt.Errorf("GET %s: %d %s", p.url, status, http.StatusText(status)))
			continue
		}
		t.add(p.opts.Now().Sub(began))
	}
}

func (p *poller) get(ctx context.Context, etag, modified string) (status int, tag, mod string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("User-Agent", "lampi-pkg-loadtest")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if modified != "" {
		req.Header.Set("If-Modified-Since", modified)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxIndexSize))
	p.bytes.Add(uint64(n))
	if err != nil {
		return 0, "", "", fmt.Errorf("GET %s: read: %w", p.url, err)
	}
	return resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"), nil
}

func (p *poller) result(elapsed time.Duration) *HTTPResult {
	r := &HTTPResult{URL: p.url, Requests: p.requests.Load(), OK: p.ok.Load(), NotModified: p.notModified.Load(),
		OtherStatus: p.otherStatus.Load(), Errors: p.failed.Load(), Bytes: p.bytes.Load(),
		Latency: p.lat.summary(), ErrorMessages: p.errs.list()}
	if elapsed > 0 {
		r.PerSecond = float64(r.Requests) / elapsed.Seconds()
	}
	return r
}
