package server

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Upload outcomes counted in lampi_uploads_total{outcome}.
const (
	OutcomePublished    = "published"
	OutcomeUnchanged    = "unchanged"
	OutcomeUnauthorized = "unauthorized"
	OutcomeForbidden    = "forbidden"
	OutcomeTooLarge     = "too_large"
	OutcomeBadPackage   = "bad_package"
	OutcomeBadSignature = "bad_signature"
	OutcomeConflict     = "conflict"
	OutcomeBusy         = "busy"
	OutcomeError        = "error"
)

var outcomes = []string{OutcomePublished, OutcomeUnchanged, OutcomeUnauthorized, OutcomeForbidden,
	OutcomeTooLarge, OutcomeBadPackage, OutcomeBadSignature, OutcomeConflict, OutcomeBusy, OutcomeError}

// publishBuckets are the upper bounds (seconds) of the publish duration
// histogram.
var publishBuckets = [...]float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics are the server's counters, written in the Prometheus text
// exposition format by WriteTo. They are a handful of atomics updated on
// every request, so a hand-written exposition is smaller and faster than
// the client_golang registry and its dependency tree; the names follow
// Prometheus conventions, so a later switch changes nothing for scrapers.
type Metrics struct {
	byCode       [600]atomic.Uint64    // requests by status code (100–599)
	bytes        atomic.Uint64         // response body bytes
	fileGets     atomic.Uint64         // GET/HEAD of repository files
	conditional  atomic.Uint64         // … carrying If-None-Match / If-Modified-Since
	notModified  atomic.Uint64         // … answered 304
	fast         atomic.Uint64         // … answered by the Front's fast path
	uploads      sync.Map              // outcome → *atomic.Uint64
	logDropped   func() uint64         // access log lines dropped (LogWriter), or nil
	extra        func(io.Writer) error // Options.ExtraMetrics, or nil
	connsOpen    atomic.Int64          // connections open (Front, Listener)
	connsRefused atomic.Uint64         // … closed at once, over a limit

	mu      sync.Mutex
	pubSum  float64
	pubCnt  uint64
	pubBkts [len(publishBuckets)]uint64
}

func (m *Metrics) request(code int, n int64) {
	if code >= 100 && code < 600 {
		m.byCode[code].Add(1)
	}
	if n > 0 {
		m.bytes.Add(uint64(n))
	}
}

func (m *Metrics) fileRequest(code int, conditional bool) {
	m.fileGets.Add(1)
	if conditional {
		m.conditional.Add(1)
	}
	if code == http.StatusNotModified {
		m.notModified.Add(1)
	}
}

func (m *Metrics) upload(outcome string) {
	v, _ := m.uploads.LoadOrStore(outcome, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

func (m *Metrics) publish(d time.Duration) {
	s := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pubSum += s
	m.pubCnt++
	for i, b := range publishBuckets {
		if s <= b {
			m.pubBkts[i]++
		}
	}
}

// Requests returns how many responses had the status code.
func (m *Metrics) Requests(code int) uint64 {
	if code < 100 || code >= 600 {
		return 0
	}
	return m.byCode[code].Load()
}

// FastPath returns how many requests the Front's fast path answered.
func (m *Metrics) FastPath() uint64 { return m.fast.Load() }

// OpenConns returns how many connections the server's limits count as
// open (those accepted by the Front or a Listener).
func (m *Metrics) OpenConns() int64 { return m.connsOpen.Load() }

// ConnsRefused returns how many connections were closed at once because
// they were over Options.MaxConns or Options.MaxConnsPerAddr.
func (m *Metrics) ConnsRefused() uint64 { return m.connsRefused.Load() }

// NotModified returns how many repository file requests were answered 304.
func (m *Metrics) NotModified() uint64 { return m.notModified.Load() }

// Uploads returns how many uploads ended with the outcome (Outcome…).
func (m *Metrics) Uploads(outcome string) uint64 {
	if v, ok := m.uploads.Load(outcome); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// WriteTo writes the metrics in the Prometheus text format (version 0.0.4).
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	b := bufio.NewWriter(w)
	cw := &countWriter{w: b}
	p := func(format string, a ...any) { fmt.Fprintf(cw, format, a...) }

	p("# HELP lampi_http_requests_total HTTP responses by status code.\n# TYPE lampi_http_requests_total counter\n")
	for code := range m.byCode {
		if n := m.byCode[code].Load(); n > 0 {
			p("lampi_http_requests_total{code=\"%d\"} %d\n", code, n)
		}
	}
	p("# HELP lampi_http_response_bytes_total Bytes of response bodies sent.\n# TYPE lampi_http_response_bytes_total counter\n")
	p("lampi_http_response_bytes_total %d\n", m.bytes.Load())
	p("# HELP lampi_http_connections_open Connections open (counted against serve --max-conns).\n# TYPE lampi_http_connections_open gauge\n")
	p("lampi_http_connections_open %d\n", m.connsOpen.Load())
	p("# HELP lampi_http_connections_refused_total Connections closed at once: over serve --max-conns or --max-conns-per-ip.\n# TYPE lampi_http_connections_refused_total counter\n")
	p("lampi_http_connections_refused_total %d\n", m.connsRefused.Load())
	gets, cond, nm := m.fileGets.Load(), m.conditional.Load(), m.notModified.Load()
	p("# HELP lampi_repo_requests_total GET and HEAD requests for repository files.\n# TYPE lampi_repo_requests_total counter\n")
	p("lampi_repo_requests_total %d\n", gets)
	p("# HELP lampi_repo_conditional_requests_total Repository file requests with If-None-Match or If-Modified-Since.\n# TYPE lampi_repo_conditional_requests_total counter\n")
	p("lampi_repo_conditional_requests_total %d\n", cond)
	p("# HELP lampi_repo_not_modified_total Repository file requests answered 304 Not Modified.\n# TYPE lampi_repo_not_modified_total counter\n")
	p("lampi_repo_not_modified_total %d\n", nm)
	p("# HELP lampi_repo_fast_path_requests_total Repository file requests answered by the fast path in front of net/http.\n# TYPE lampi_repo_fast_path_requests_total counter\n")
	p("lampi_repo_fast_path_requests_total %d\n", m.fast.Load())
	ratio := 0.0
	if cond > 0 {
		ratio = float64(nm) / float64(cond)
	}
	p("# HELP lampi_repo_not_modified_ratio Share of conditional repository requests answered 304.\n# TYPE lampi_repo_not_modified_ratio gauge\n")
	p("lampi_repo_not_modified_ratio %s\n", strconv.FormatFloat(ratio, 'g', -1, 64))

	if m.logDropped != nil {
		p("# HELP lampi_access_log_dropped_total Access log lines dropped because the log output could not keep up.\n# TYPE lampi_access_log_dropped_total counter\n")
		p("lampi_access_log_dropped_total %d\n", m.logDropped())
	}
	p("# HELP lampi_uploads_total Package uploads by outcome.\n# TYPE lampi_uploads_total counter\n")
	var names []string
	m.uploads.Range(func(k, _ any) bool { names = append(names, k.(string)); return true })
	sort.Strings(names)
	for _, o := range names {
		p("lampi_uploads_total{outcome=%q} %d\n", o, m.Uploads(o))
	}

	m.mu.Lock()
	sum, cnt, bk := m.pubSum, m.pubCnt, m.pubBkts
	m.mu.Unlock()
	p("# HELP lampi_publish_duration_seconds Time to include and publish an uploaded package.\n# TYPE lampi_publish_duration_seconds histogram\n")
	for i, ub := range publishBuckets {
		p("lampi_publish_duration_seconds_bucket{le=\"%s\"} %d\n", strconv.FormatFloat(ub, 'g', -1, 64), bk[i])
	}
	p("lampi_publish_duration_seconds_bucket{le=\"+Inf\"} %d\n", cnt)
	p("lampi_publish_duration_seconds_sum %s\n", strconv.FormatFloat(sum, 'g', -1, 64))
	p("lampi_publish_duration_seconds_count %d\n", cnt)
	if cw.err != nil {
		return cw.n, cw.err
	}
	if m.extra != nil {
		if err := m.extra(cw); err != nil {
			// The scrape keeps the server's own metrics; a comment says
			// what is missing.
			p("# extra metrics failed: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
	err := b.Flush()
	return cw.n, err
}

func (m *Metrics) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.WriteTo(w)
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
