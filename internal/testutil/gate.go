package testutil

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Gate is a reverse proxy in front of a repository server that lets a
// test choose the moment a client's request for an InRelease file reaches
// the server — "the device asks while the publisher is at work" — so that
// a publish can follow the answer within the same second however slowly
// the client starts. Requests and answers pass unchanged
// (If-Modified-Since, 304 and all); only an InRelease request armed with
// HoldNext waits.
type Gate struct {
	URL string

	mu   sync.Mutex
	next *Held
}

// Held is one InRelease request held at the gate.
type Held struct {
	arrived, pass, done chan struct{}
}

// gateWait bounds every wait for a client: generous, for a loaded machine.
const gateWait = 2 * time.Minute

// NewGate starts a gate in front of upstream (http://host:port/prefix),
// closed when the test ends.
func NewGate(t testing.TB, upstream string) *Gate {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = &http.Transport{DisableCompression: true}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h *Held
		if strings.HasSuffix(r.URL.Path, "/InRelease") {
			g.mu.Lock()
			h, g.next = g.next, nil
			g.mu.Unlock()
		}
		if h == nil {
			proxy.ServeHTTP(w, r)
			return
		}
		close(h.arrived)
		select {
		case <-h.pass:
		case <-time.After(gateWait):
		}
		proxy.ServeHTTP(w, r)
		close(h.done)
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// HoldNext makes the next request for an InRelease file wait at the gate.
func (g *Gate) HoldNext() *Held {
	h := &Held{arrived: make(chan struct{}), pass: make(chan struct{}), done: make(chan struct{})}
	g.mu.Lock()
	g.next = h
	g.mu.Unlock()
	return h
}

// Arrived waits until the held request has reached the gate.
func (h *Held) Arrived(t testing.TB) {
	t.Helper()
	select {
	case <-h.arrived:
	case <-time.After(gateWait):
		t.Fatal("gate: no request for InRelease arrived")
	}
}

// Pass lets the held request through and returns once the server's
// answer has been relayed to the client.
func (h *Held) Pass(t testing.TB) {
	t.Helper()
	close(h.pass)
	select {
	case <-h.done:
	case <-time.After(gateWait):
		t.Fatal("gate: the server did not answer the held request")
	}
}
