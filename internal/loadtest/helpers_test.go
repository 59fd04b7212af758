package loadtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// startMosquitto runs the real broker on a free loopback port with the
// given extra configuration lines and returns its mqtt:// URL.
func startMosquitto(t testing.TB, conf ...string) string {
	t.Helper()
	u, _ := startMosquittoKillable(t, conf...)
	return u
}

// startMosquittoKillable is startMosquitto that also returns the broker's
// process, for tests that kill it.
func startMosquittoKillable(t testing.TB, conf ...string) (string, *os.Process) {
	t.Helper()
	m := testutil.StartMosquitto(t, conf...)
	return m.URL, m.Process()
}

// subscriber is a plain MQTT subscriber standing in for the collector: it
// counts every state report and keeps each device's newest seq and
// status.
type subscriber struct {
	mu       sync.Mutex
	reports  int
	invalid  []string
	outOrder int
	seq      map[string]uint64
	status   map[string]string
	states   map[string]state.State
}

func subscribe(t *testing.T, broker string) *subscriber {
	t.Helper()
	s := &subscriber{seq: map[string]uint64{}, status: map[string]string{}, states: map[string]state.State{}}
	nc, err := net.Dial("tcp", strings.TrimPrefix(broker, "mqtt://"))
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: "test-subscriber", Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			s.receive(pr.Packet.Topic, pr.Packet.Payload)
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "test-subscriber", KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "devices/+/state", QoS: 1}, {Topic: "devices/+/status", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return s
}

func (s *subscriber) receive(topic string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, kind, ok := state.ParseTopic(state.DefaultPrefix, topic)
	if !ok {
		s.invalid = append(s.invalid, topic)
		return
	}
	if kind == state.KindStatus {
		s.status[id] = string(payload)
		return
	}
	st, err := state.Decode(payload)
	if err != nil || st.Device != id {
		s.invalid = append(s.invalid, fmt.Sprintf("%s: %v %q", topic, err, st.Device))
		return
	}
	s.reports++
	if st.Seq <= s.seq[id] {
		s.outOrder++
		return
	}
	s.seq[id] = st.Seq
	s.states[id] = st
}

// waitReports waits until the subscriber has n reports (or 10 s passed).
func (s *subscriber) waitReports(n int) int {
	for i := 0; i < 200; i++ {
		s.mu.Lock()
		got := s.reports
		s.mu.Unlock()
		if got >= n {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reports
}

// fakeServer is the update server as the load generator sees it: an
// InRelease with an ETag and Last-Modified, and the collector API's
// stats and devices answered from a subscriber's counts.
type fakeServer struct {
	*httptest.Server
	mu          sync.Mutex
	gets        int
	conditional int
	// baseline is added to the stored count, to check that the load
	// generator reports a difference; hide is subtracted, to fake drops.
	baseline, hide uint64
	hideDevices    map[string]bool
	sub            *subscriber
}

func newFakeServer(t *testing.T, sub *subscriber) *fakeServer {
	f := &fakeServer{sub: sub, baseline: 1000, hideDevices: map[string]bool{}}
	body := []byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: test\nCodename: stable\n")
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	modified := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dists/stable/InRelease", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.gets++
		if r.Header.Get("If-None-Match") != "" {
			f.conditional++
		}
		f.mu.Unlock()
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "InRelease", modified, strings.NewReader(string(body)))
	})
	mux.HandleFunc("GET /api/v1/fleet/stats", func(w http.ResponseWriter, r *http.Request) {
		st := fleet.Stats{Stored: f.baseline, Stale: 7}
		if f.sub != nil {
			f.sub.mu.Lock()
			st.Stored += max(uint64(f.sub.reports-f.sub.outOrder), f.hide) - f.hide
			st.Stale += uint64(f.sub.outOrder)
			st.Devices = len(f.sub.seq)
			f.sub.mu.Unlock()
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("GET /api/v1/fleet/devices", func(w http.ResponseWriter, r *http.Request) {
		var out []fleet.Device
		f.sub.mu.Lock()
		for id, seq := range f.sub.seq {
			if !f.hideDevices[id] {
				out = append(out, fleet.Device{ID: id, State: state.State{Seq: seq}})
			}
		}
		f.sub.mu.Unlock()
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		_ = json.NewEncoder(w).Encode(out)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}
