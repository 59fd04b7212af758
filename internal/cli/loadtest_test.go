package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// loadtestMosquitto starts the real broker on a free loopback port.
func loadtestMosquitto(t *testing.T) string {
	t.Helper()
	return testutil.StartMosquitto(t, "allow_anonymous true").URL
}

// fakeCollector subscribes like the collector and answers the fleet API's
// stats and devices from what it received; frozen stops it counting.
type fakeCollector struct {
	mu     sync.Mutex
	stored uint64
	seq    map[string]uint64
	frozen bool
}

func startFakeCollector(t *testing.T, broker string) (*fakeCollector, string) {
	t.Helper()
	fc := &fakeCollector{seq: map[string]uint64{}}
	nc, err := net.Dial("tcp", strings.TrimPrefix(broker, "mqtt://"))
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: "fake-collector", Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			id, kind, ok := state.ParseTopic("devices", pr.Packet.Topic)
			if st, err := state.Decode(pr.Packet.Payload); ok && kind == state.KindState && err == nil {
				fc.mu.Lock()
				if !fc.frozen && st.Seq > fc.seq[id] {
					fc.seq[id] = st.Seq
					fc.stored++
				}
				fc.mu.Unlock()
			}
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "fake-collector", KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "devices/+/state", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })

	mux := http.NewServeMux()
	mux.HandleFunc("GET /dists/stable/InRelease", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "InRelease", time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), strings.NewReader("Codename: stable\n"))
	})
	mux.HandleFunc("GET /api/v1/fleet/stats", func(w http.ResponseWriter, r *http.Request) {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		_ = json.NewEncoder(w).Encode(fleet.Stats{Stored: fc.stored, Devices: len(fc.seq)})
	})
	mux.HandleFunc("GET /api/v1/fleet/devices", func(w http.ResponseWriter, r *http.Request) {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		out := []fleet.Device{}
		for id, seq := range fc.seq {
			out = append(out, fleet.Device{ID: id, State: state.State{Seq: seq}})
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return fc, srv.URL
}

func runMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	env := &Env{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: func(string) string { return "" },
		Now: time.Now, IsTerminal: func(any) bool { return false }}
	code := Main(args, env)
	return code, out.String(), errb.String()
}

func TestLoadtestCommand(t *testing.T) {
	broker := loadtestMosquitto(t)
	_, server := startFakeCollector(t, broker)

	code, out, errs := runMain("loadtest", "--devices", "10", "--duration", "1s", "--rate", "100",
		"--broker", broker, "--server", server, "--poll-interval", "200ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"loadtest: 10 devices", "reports sent ", "failed 0 (100.00%)", "200 10, 304 ",
		"status messages 20, acked 20", "drops 0 (caught up", "devices missing their newest report: 0", "success rate 100.00%"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, errs = runMain("loadtest", "--devices", "10", "--connections", "2", "--duration", "30s", "--max-reports", "25",
		"--broker", broker, "--server", server, "--poll-interval", "0", "--json", "--id-prefix", "lamp-")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var res struct {
		Devices int `json:"devices"`
		MQTT    struct {
			Sent, Acked uint64
			Latency     struct {
				Count uint64 `json:"count"`
				P99   int64  `json:"p99_ns"`
			} `json:"latency"`
		} `json:"mqtt"`
		HTTP      *struct{} `json:"http"`
		Collector struct {
			Stored uint64 `json:"stored"`
			Drops  int64  `json:"drops"`
		} `json:"collector"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Devices != 10 || res.MQTT.Sent != 25 || res.MQTT.Acked != 25 || res.MQTT.Latency.Count != 25 || res.MQTT.Latency.P99 <= 0 ||
		res.HTTP != nil || res.Collector.Stored != 25 || res.Collector.Drops != 0 || res.Problems == nil || len(res.Problems) != 0 {
		t.Errorf("result %+v\n%s", res, out)
	}
}

func TestLoadtestCommandReportsDrops(t *testing.T) {
	broker := loadtestMosquitto(t)
	fc, server := startFakeCollector(t, broker)
	fc.mu.Lock()
	fc.frozen = true // the collector stores nothing
	fc.mu.Unlock()
	code, out, errs := runMain("loadtest", "--devices", "3", "--duration", "30s", "--max-reports", "6",
		"--broker", broker, "--server", server, "--poll-interval", "0", "--settle", "300ms", "--no-status")
	if code != ExitFailure {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "drops 6 (still behind") || !strings.Contains(out, "devices missing their newest report: 3") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(errs, "lampi-pkg: loadtest: 6 acknowledged reports never reached the collector; 3 devices' newest report is missing") {
		t.Errorf("stderr: %s", errs)
	}
}

func TestReadCredentials(t *testing.T) {
	p := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(p, []byte("# device logins\n\nloadtest-0 s3cret\n  loadtest-1\tother  \n"+
		"ID          ROLE       SECRET\nloadtest-2  device     abc\ncol1        collector  xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readCredentials(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["loadtest-0"] != "s3cret" || got["loadtest-1"] != "other" || got["loadtest-2"] != "abc" {
		t.Errorf("%q", got)
	}
	if _, err := readCredentials(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "--credentials") {
		t.Errorf("missing file: %v", err)
	}
}
