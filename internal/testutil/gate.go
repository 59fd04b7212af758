package testutil

import (
	"fmt"
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

// SeesEveryPublish makes publishes back to back, in pairs: the device's
// apt (its lists kept between runs, as on every device) starts apt-get
// update, its request for InRelease reaches the server through gate right
// after the first publish of the pair, and the second publish follows the
// answer at once — within the same second, most of the time. publish
// makes a publish with a newer version of pkg and returns that version
// (second: it is the second of its pair). After each update apt must
// offer the version published last: apt revalidates InRelease with
// If-Modified-Since only, so a publish dated within the second of the
// InRelease apt holds looks unchanged to it.
func SeesEveryPublish(t *testing.T, apt *AptRoot, gate *Gate, pairs int, pkg string, publish func(second bool) string) {
	t.Helper()
	var stale []string
	offers := func(v, update string) {
		t.Helper()
		out := apt.MustRun("-s", "install", pkg)
		if !strings.Contains(out, "Inst "+pkg+" ("+v+" ") {
			stale = append(stale, fmt.Sprintf("%s %s unseen; apt-get update:\n%s\nsimulated install:\n%s", pkg, v, update, out))
		}
	}
	for range pairs {
		hold := gate.HoldNext()
		updated := make(chan string, 1)
		go func() {
			out, err := apt.Run("update")
			if err != nil {
				out += "\n" + err.Error()
			}
			updated <- out
		}()
		hold.Arrived(t)
		first := publish(false)
		start := time.Now()
		hold.Pass(t)
		second := publish(true)
		t.Logf("publishes of %s %s and %s: %v apart", pkg, first, second, time.Since(start))
		out := <-updated
		if strings.Contains(out, "\nW:") || strings.Contains(out, "\nE:") || strings.Contains(out, "\nErr:") {
			t.Fatalf("apt-get update failed:\n%s", out)
		}
		offers(first, out)
		offers(second, apt.Update())
	}
	if len(stale) > 0 {
		t.Fatalf("%d of %d publishes unseen:\n%s", len(stale), 2*pairs, strings.Join(stale, "\n\n"))
	}
}
