package upload

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAPIErrorSentinels: each refusal status wraps its sentinel, and a
// status with none wraps nothing.
func TestAPIErrorSentinels(t *testing.T) {
	for status, want := range map[int]error{
		http.StatusUnauthorized:          ErrUnauthorized,
		http.StatusForbidden:             ErrForbidden,
		http.StatusConflict:              ErrConflict,
		http.StatusRequestEntityTooLarge: ErrTooLarge,
		http.StatusBadRequest:            ErrRejected,
		http.StatusUnsupportedMediaType:  ErrRejected,
		http.StatusUnprocessableEntity:   ErrRejected,
		http.StatusServiceUnavailable:    ErrBusy,
	} {
		err := error(&APIError{Status: status, Code: "x", Message: "m"})
		if !errors.Is(err, want) || !IsStatus(err, status) {
			t.Errorf("%d: %v does not wrap %v", status, err, want)
		}
	}
	if err := (&APIError{Status: http.StatusInternalServerError}); err.Unwrap() != nil {
		t.Errorf("500 wraps %v", err.Unwrap())
	}
}

// TestClientRefusesBeforeSending: a URL with a password, plain http://
// beyond loopback, a codename that is a path and a file outside the
// published tree are refused without a request; the token is in no error.
func TestClientRefusesBeforeSending(t *testing.T) {
	var requests atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer hs.Close()
	const token = "secret-token-value"
	ctx := context.Background()
	cases := map[string]func() error{ // name: the words the refusal must have
		"no user or password": func() error {
			_, err := (&Client{BaseURL: strings.Replace(hs.URL, "http://", "http://u:p@", 1), Token: token}).Distributions(ctx)
			return err
		},
		"refusing plain http://": func() error {
			_, err := (&Client{BaseURL: "http://repo.example.org/", Token: token}).UploadFiles(ctx, "stable", nil, Options{DryRun: true})
			return err
		},
		"want a codename or suite": func() error {
			_, err := (&Client{BaseURL: hs.URL, Token: token}).Upload(ctx, "../conf", "hi.deb", strings.NewReader("x"))
			return err
		},
		"is not a file of the published tree": func() error {
			_, err := (&Client{BaseURL: hs.URL, Token: token}).Open(ctx, "../conf/distributions")
			return err
		},
	}
	for name, f := range cases {
		err := f()
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), token) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	// Loopback over plain http is allowed: the request goes out.
	rc, err := (&Client{BaseURL: hs.URL, Token: token}).Open(ctx, "dists/stable/InRelease")
	if err == nil {
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	if requests.Load() != 1 || err == nil || !strings.Contains(err.Error(), "418") {
		t.Errorf("loopback GET: %v (%d requests)", err, requests.Load())
	}
}
