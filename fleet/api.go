package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// APIOptions are optional settings of APIHandler.
type APIOptions struct {
	// Now is the clock for report ages (default time.Now).
	Now func() time.Time
	// StaleView is the report's ReportOptions.StaleView when the request
	// gives no stale_view (default DefaultStaleView).
	StaleView time.Duration
}

// APIHandler serves the fleet JSON API (see the package doc) from store.
// newest, if not nil, returns the newest published version of each
// package, for the "behind" lists. Only GET and HEAD are allowed.
func APIHandler(store StatsReader, newest func() map[string]string, opts ...APIOptions) http.Handler {
	a := &fleetAPI{store: store, newest: newest}
	if len(opts) > 0 {
		a.o = opts[0]
	}
	if a.o.Now == nil {
		a.o.Now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/fleet/report", a.report)
	mux.HandleFunc("GET /api/v1/fleet/devices", a.devices)
	mux.HandleFunc("GET /api/v1/fleet/devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, err := store.Device(r.Context(), r.PathValue("id"))
		if err != nil {
			apiError(w, statusOf(err), err)
			return
		}
		apiJSON(w, d)
	})
	mux.HandleFunc("GET /api/v1/fleet/devices/{id}/history", func(w http.ResponseWriter, r *http.Request) {
		h, err := store.History(r.Context(), r.PathValue("id"))
		if err != nil {
			apiError(w, statusOf(err), err)
			return
		}
		apiJSON(w, h)
	})
	mux.HandleFunc("GET /api/v1/fleet/stats", func(w http.ResponseWriter, r *http.Request) {
		apiJSON(w, store.Stats())
	})
	return mux
}

// fleetAPI holds what the handlers of APIHandler share.
type fleetAPI struct {
	store  StatsReader
	newest func() map[string]string
	o      APIOptions
}

// queryDuration reads the duration query parameter name (zero when
// absent); hint says what a valid value looks like.
func queryDuration(r *http.Request, name, hint string) (time.Duration, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: want %s", name, s, hint)
	}
	return d, nil
}

func (a *fleetAPI) report(w http.ResponseWriter, r *http.Request) {
	d, err := queryDuration(r, "stale", "a duration such as 24h")
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	ro := ReportOptions{Package: r.URL.Query().Get("package"), Stale: d, Now: a.o.Now, StaleView: a.o.StaleView}
	if r.URL.Query().Get("stale_view") != "" {
		v, err := queryDuration(r, "stale_view", "a duration such as 336h, or 0 for no list")
		if err != nil {
			apiError(w, http.StatusBadRequest, err)
			return
		}
		ro.StaleView = v
		if v == 0 {
			ro.StaleView = -1
		}
	}
	if a.newest != nil {
		ro.Newest = a.newest()
	}
	rep, err := a.store.Report(r.Context(), ro)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	apiJSON(w, rep)
}

func (a *fleetAPI) devices(w http.ResponseWriter, r *http.Request) {
	d, err := queryDuration(r, "stale", "a duration such as 24h")
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	devs, err := a.store.Devices(r.Context(), 0)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	apiJSON(w, FilterStale(devs, d, a.o.Now()))
}

// FilterStale keeps the devices not seen for at least d (all when d ≤ 0).
func FilterStale(devs []Device, d time.Duration, now time.Time) []Device {
	if d <= 0 {
		return devs
	}
	out := []Device{}
	for _, dev := range devs {
		if now.Sub(dev.LastSeen) >= d {
			out = append(out, dev)
		}
	}
	return out
}

func statusOf(err error) int {
	if errors.Is(err, ErrNotFound) {
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func apiJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// APIError is the body of an error response.
type APIError struct {
	Error string `json:"error"`
}

func apiError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(APIError{Error: err.Error()})
}
