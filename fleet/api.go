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
	var o APIOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	mux := http.NewServeMux()
	stale := func(r *http.Request) (time.Duration, error) {
		s := r.URL.Query().Get("stale")
		if s == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("stale=%q: want a duration such as 24h", s)
		}
		return d, nil
	}
	mux.HandleFunc("GET /api/v1/fleet/report", func(w http.ResponseWriter, r *http.Request) {
		d, err := stale(r)
		if err != nil {
			apiError(w, http.StatusBadRequest, err)
			return
		}
		ro := ReportOptions{Package: r.URL.Query().Get("package"), Stale: d, Now: o.Now, StaleView: o.StaleView}
		if sv := r.URL.Query().Get("stale_view"); sv != "" {
			v, err := time.ParseDuration(sv)
			if err != nil || v < 0 {
				apiError(w, http.StatusBadRequest, fmt.Errorf("stale_view=%q: want a duration such as 336h, or 0 for no list", sv))
				return
			}
			ro.StaleView = v
			if v == 0 {
				ro.StaleView = -1
			}
		}
		if newest != nil {
			ro.Newest = newest()
		}
		rep, err := store.Report(r.Context(), ro)
		if err != nil {
			apiError(w, http.StatusInternalServerError, err)
			return
		}
		apiJSON(w, rep)
	})
	mux.HandleFunc("GET /api/v1/fleet/devices", func(w http.ResponseWriter, r *http.Request) {
		d, err := stale(r)
		if err != nil {
			apiError(w, http.StatusBadRequest, err)
			return
		}
		devs, err := store.Devices(r.Context(), 0)
		if err != nil {
			apiError(w, http.StatusInternalServerError, err)
			return
		}
		apiJSON(w, FilterStale(devs, d, o.Now()))
	})
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
