package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/server/upload"
)

func TestCheckScopeDevices(t *testing.T) {
	for _, ok := range []string{ScopeDevices, "upload:stable", "upload:*"} {
		if err := CheckScope(ok); err != nil {
			t.Errorf("CheckScope(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"device", "devices:x", "admin", "Devices", ""} {
		if err := CheckScope(bad); !errors.Is(err, ErrScope) {
			t.Errorf("CheckScope(%q) = %v, want ErrScope", bad, err)
		}
	}
}

func TestRequireScope(t *testing.T) {
	ts := &TokenStore{Path: filepath.Join(t.TempDir(), "tokens.db"), Now: fixedNow}
	ops, opsTok, err := ts.Create("ops", []string{ScopeDevices})
	if err != nil {
		t.Fatal(err)
	}
	if opsTok.Allows("bookworm", "stable") {
		t.Error("a devices token may upload")
	}
	ci, ciTok, err := ts.Create("ci", []string{"upload:*"})
	if err != nil {
		t.Fatal(err)
	}
	if ciTok.HasScope(ScopeDevices) {
		t.Error("upload:* includes devices")
	}
	old, _, err := ts.Create("old", []string{ScopeDevices})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Revoke("old"); err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := RequireScope(ts, ScopeDevices, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, tc := range []struct {
		name, auth string
		status     int
		code       string
	}{
		{"none", "", 401, "unauthorized"},
		{"basic", "Basic b3BzOng=", 401, "unauthorized"},
		{"empty", "Bearer  ", 401, "unauthorized"},
		{"unknown", "Bearer lampi_000000000000_x", 401, "unauthorized"},
		{"wrong secret", "Bearer " + ops[:len(ops)-2] + "xx", 401, "unauthorized"},
		{"upload scope", "Bearer " + ci, 403, "forbidden"},
		{"revoked", "Bearer " + old, 403, "revoked"},
		{"ok", "Bearer " + ops, 204, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls
			r := httptest.NewRequest("GET", "/api/v1/fleet/credentials", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.code == "" {
				if calls != before+1 {
					t.Fatal("handler not called")
				}
				return
			}
			if calls != before {
				t.Fatal("handler called for a refused request")
			}
			var e upload.APIError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != tc.code || e.Status != tc.status || e.Message == "" {
				t.Fatalf("body %s (%v), want code %q", w.Body, err, tc.code)
			}
			if tc.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
