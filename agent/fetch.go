package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// fetcher makes the agent's HTTP requests; every body is read through a
// bound, so a server streaming an endless file costs at most the bound,
// and every request through an idle deadline, so a server that stops
// sending costs at most idle.
type fetcher struct {
	client    *http.Client
	userAgent string
	now       func() time.Time
	// idle fails a request that receives nothing for this long: no
	// answer, or no body bytes (http.Transport's ResponseHeaderTimeout
	// does not bound the body).
	idle time.Duration
}

// statusError is a non-2xx answer.
type statusError struct {
	url  string
	code int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s", e.url, e.code, http.StatusText(e.code))
}

func (e *statusError) Unwrap() error { return ErrHTTP }

func isNotFound(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.code == http.StatusNotFound || se.code == http.StatusGone)
}

// idleBody is a response body whose reads keep its request alive: the
// request is cancelled (cause: ErrStalled) when no byte arrived for idle.
type idleBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	idle   time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		err = context.Cause(b.ctx)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

func (f *fetcher) do(ctx context.Context, url string, hdr map[string]string) (*http.Response, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(f.idle, func() {
		cancel(fmt.Errorf("%w: nothing received for %s (fetch_idle_timeout)", ErrStalled, f.idle))
	})
	resp, err := f.send(rctx, url, hdr)
	if err != nil {
		timer.Stop()
		cancel(nil)
		return nil, err
	}
	resp.Body = &idleBody{rc: resp.Body, ctx: rctx, cancel: cancel, timer: timer, idle: f.idle}
	return resp, nil
}

// send makes the request and sorts out the status; ctx carries the idle
// deadline.
func (f *fetcher) send(ctx context.Context, url string, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", f.userAgent)
	for k, v := range hdr {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", url, context.Cause(ctx))
		}
		return nil, fmt.Errorf("%w: %v", ErrHTTP, err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		resp.Body.Close()
		se := &statusError{url: url, code: resp.StatusCode}
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), f.now()); ok {
			return nil, &RetryAfterError{URL: url, After: d, TLS: resp.TLS != nil, Err: se}
		}
		return nil, se
	case resp.StatusCode == http.StatusNotModified, resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp, nil
	}
	resp.Body.Close()
	return nil, &statusError{url: url, code: resp.StatusCode}
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
// Values are capped at one day.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	if d < 0 {
		d = 0
	}
	if d > 24*time.Hour {
		d = 24 * time.Hour
	}
	return d, true
}

// readBounded reads all of r, failing with ErrTooLarge past limit bytes.
func readBounded(r io.Reader, limit int64, what string) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", what, ErrTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// conditional holds the validators of a previous answer.
type conditional struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// getConditional fetches url unless it is unchanged since cond; a 304
// returns notModified. The body is bounded by limit.
func (f *fetcher) getConditional(ctx context.Context, url string, limit int64, cond conditional) (body []byte, next conditional, notModified bool, err error) {
	resp, err := f.do(ctx, url, map[string]string{"If-None-Match": cond.ETag, "If-Modified-Since": cond.LastModified})
	if err != nil {
		return nil, cond, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, cond, true, nil
	}
	body, err = readBounded(resp.Body, limit, url)
	if err != nil {
		return nil, cond, false, err
	}
	return body, conditional{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}, false, nil
}

// get fetches url, bounded by limit.
func (f *fetcher) get(ctx context.Context, url string, limit int64) ([]byte, error) {
	resp, err := f.do(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, &statusError{url: url, code: resp.StatusCode}
	}
	return readBounded(resp.Body, limit, url)
}

// download fetches url into part, resuming from part's current length
// with a Range request; it never writes more than size bytes in total.
func (f *fetcher) download(ctx context.Context, url, part string, size int64) error {
	fh, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer fh.Close()
	have, err := fh.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if have > size {
		if err := fh.Truncate(0); err != nil {
			return err
		}
		have = 0
	}
	if have == size {
		return nil
	}
	hdr := map[string]string{}
	if have > 0 {
		hdr["Range"] = fmt.Sprintf("bytes=%d-", have)
	}
	resp, err := f.do(ctx, url, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0 &&
		strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)):
		// resume: append
	case resp.StatusCode == http.StatusOK:
		if err := fh.Truncate(0); err != nil {
			return err
		}
		if _, err := fh.Seek(0, io.SeekStart); err != nil {
			return err
		}
		have = 0
	default:
		return &statusError{url: url, code: resp.StatusCode}
	}
	n, err := io.Copy(fh, io.LimitReader(resp.Body, size-have+1))
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if have+n > size {
		fh.Truncate(0)
		return fmt.Errorf("%s: %w: the server sent more than the %d bytes the index lists", url, ErrTooLarge, size)
	}
	if have+n < size {
		return fmt.Errorf("%s: %w: got %d of %d bytes", url, ErrHTTP, have+n, size)
	}
	return fh.Sync()
}
