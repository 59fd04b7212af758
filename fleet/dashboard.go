package fleet

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// DashboardSource is what the dashboard reads. Any Reader gives one:
// StoreDashboardSource (the collector's store), APIDashboardSource (the
// JSON API of another server or collector).
type DashboardSource interface {
	// Report summarises the whole fleet, every package.
	Report(ctx context.Context) (*Report, error)
	// FindDevices returns at most limit devices whose id starts with
	// prefix, sorted by id.
	FindDevices(ctx context.Context, prefix string, limit int) ([]Device, error)
	// Device returns one device, or nil and no error when the id is unknown.
	Device(ctx context.Context, id string) (*Device, error)
	// History returns the newest limit events of a device's audit log,
	// oldest first.
	History(ctx context.Context, id string, limit int) ([]Event, error)
}

// DashboardOptions configures DashboardHandler.
type DashboardOptions struct {
	// Now is the clock for ages and the "generated" line. Required.
	Now func() time.Time
	// Title heads every page; "Fleet" when empty.
	Title string
	// Refresh is how often the page reloads itself; 30 s when zero,
	// never when negative.
	Refresh time.Duration
	// MaxRows bounds every table and chart (devices listed, versions
	// charted, packages shown); 50 when zero.
	MaxRows int
	// Timeout bounds the source calls of one request; 10 s when zero.
	Timeout time.Duration
	// CacheFor reuses a fleet report for that long, so that many open
	// dashboards cost one report (which reads every device); 2 s when
	// zero, never when negative.
	CacheFor time.Duration
	// Logf, if set, receives the errors the source returned.
	Logf func(format string, args ...any)
	// Rollouts, if set, fills the overview's rollout panel (stage,
	// device counts, the newest decisions); it is called on every load
	// of the overview.
	Rollouts func(ctx context.Context) ([]RolloutPanel, error)
}

// The page templates and the stylesheet; the stylesheet is inlined and
// allowed by its hash in the Content-Security-Policy.
//
//go:embed dashboard
var dashboardFiles embed.FS

type dashboardHandler struct {
	src  DashboardSource
	opts DashboardOptions
	tmpl *template.Template
	csp  string
	mux  *http.ServeMux

	// The cached report: one request at a time makes a new one, the
	// others wait for it.
	mu       sync.Mutex
	report   *Report
	reportAt time.Time
}

// DashboardHandler serves the fleet dashboard: GET / is the fleet at a
// glance (version distribution per package as inline SVG, rollout
// progress toward the newest published version, offline and failed
// devices, device search with ?q=PREFIX) and GET /devices/{id} one
// device with its history. Pages are plain HTML without scripts or
// external assets, reload themselves, and escape everything a device
// sent. Links are relative, so the handler can be mounted under a prefix
// with http.StripPrefix. Other paths answer 404.
func DashboardHandler(src DashboardSource, opts DashboardOptions) (http.Handler, error) {
	if src == nil {
		return nil, errors.New("fleet dashboard: no source")
	}
	if opts.Now == nil {
		return nil, errors.New("fleet dashboard: DashboardOptions.Now is required")
	}
	if opts.Title == "" {
		opts.Title = "Fleet"
	}
	if opts.Refresh == 0 {
		opts.Refresh = 30 * time.Second
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = 50
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.CacheFor == 0 {
		opts.CacheFor = 2 * time.Second
	}
	css, err := fs.ReadFile(dashboardFiles, "dashboard/style.css")
	if err != nil {
		return nil, fmt.Errorf("fleet dashboard: %w", err)
	}
	sum := sha256.Sum256(css)
	tmpl, err := template.New("page").Funcs(template.FuncMap{
		"css": func() template.CSS { return template.CSS(css) },
	}).ParseFS(dashboardFiles, "dashboard/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("fleet dashboard: templates: %w", err)
	}
	h := &dashboardHandler{
		src:  src,
		opts: opts,
		tmpl: tmpl,
		csp: "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
			"'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
		mux: http.NewServeMux(),
	}
	h.mux.HandleFunc("GET /{$}", h.overview)
	h.mux.HandleFunc("GET /devices/{id}", h.device)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, r, http.StatusNotFound, &dashPage{Message: "There is no page at this address."})
	})
	return h, nil
}

func (h *dashboardHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *dashboardHandler) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
	defer cancel()
	now := h.opts.Now()
	page := &dashPage{Overview: true}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q != "" {
		page.Search = h.search(ctx, q, now)
	}
	rep, err := h.fleetReport(ctx, now)
	if err != nil {
		h.logf("fleet dashboard: report: %v", err)
		page.Message = "The fleet report is not available: " + err.Error()
		h.render(w, r, http.StatusServiceUnavailable, page)
		return
	}
	page.Fleet = buildFleetView(rep, now, h.opts.MaxRows)
	h.rolloutPanels(ctx, page.Fleet)
	h.render(w, r, http.StatusOK, page)
}

// fleetReport returns the cached report if it is fresh, else a new one.
func (h *dashboardHandler) fleetReport(ctx context.Context, now time.Time) (*Report, error) {
	if h.opts.CacheFor < 0 {
		return h.src.Report(ctx)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.report != nil && now.Sub(h.reportAt) < h.opts.CacheFor && !now.Before(h.reportAt) {
		return h.report, nil
	}
	rep, err := h.src.Report(ctx)
	if err != nil {
		return nil, err
	}
	h.report, h.reportAt = rep, now
	return rep, nil
}

func (h *dashboardHandler) search(ctx context.Context, q string, now time.Time) *dashSearch {
	s := &dashSearch{Query: q}
	// Every prefix of a valid device id is itself a valid id: anything
	// else cannot match and does not reach the store.
	if state.ValidDeviceID(q) != nil {
		s.Problem = "Device ids are at most 64 letters, digits, '.', '-' and '_'."
		return s
	}
	devs, err := h.src.FindDevices(ctx, q, h.opts.MaxRows+1)
	if err != nil {
		h.logf("fleet dashboard: search %q: %v", q, err)
		s.Problem = "The search failed: " + err.Error()
		return s
	}
	if len(devs) > h.opts.MaxRows {
		devs, s.More = devs[:h.opts.MaxRows], true
	}
	for i := range devs {
		s.Devices = append(s.Devices, buildDeviceRow(&devs[i], now))
	}
	return s
}

func (h *dashboardHandler) device(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if state.ValidDeviceID(id) != nil {
		h.render(w, r, http.StatusNotFound, &dashPage{Message: "This is not a device id."})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
	defer cancel()
	dev, err := h.src.Device(ctx, id)
	if err != nil {
		h.logf("fleet dashboard: device %s: %v", id, err)
		h.render(w, r, http.StatusServiceUnavailable, &dashPage{Message: "The device is not available: " + err.Error()})
		return
	}
	if dev == nil {
		h.render(w, r, http.StatusNotFound, &dashPage{Message: "No device " + id + " has reported."})
		return
	}
	events, err := h.src.History(ctx, id, h.opts.MaxRows)
	if err != nil {
		h.logf("fleet dashboard: history of %s: %v", id, err)
		h.render(w, r, http.StatusServiceUnavailable, &dashPage{Message: "The device history is not available: " + err.Error()})
		return
	}
	h.render(w, r, http.StatusOK, &dashPage{Device: buildDeviceView(dev, events, h.opts.Now())})
}

func (h *dashboardHandler) render(w http.ResponseWriter, r *http.Request, code int, page *dashPage) {
	page.Title = h.opts.Title
	// Links are relative to the page, so the handler works under any mount
	// point: "./" on the overview, "../" one level down.
	page.Base = "./"
	if depth := strings.Count(strings.TrimPrefix(r.URL.Path, "/"), "/"); depth > 0 {
		page.Base = strings.Repeat("../", depth)
	}
	if h.opts.Refresh > 0 {
		page.Refresh = int((h.opts.Refresh + time.Second - 1) / time.Second)
	}
	page.Generated = h.opts.Now().UTC().Format("2006-01-02 15:04:05 UTC")
	var b strings.Builder
	if err := h.tmpl.ExecuteTemplate(&b, "page.html.tmpl", page); err != nil {
		h.logf("fleet dashboard: render: %v", err)
		http.Error(w, "the dashboard could not render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

func (h *dashboardHandler) logf(format string, args ...any) {
	if h.opts.Logf != nil {
		h.opts.Logf(format, args...)
	}
}
