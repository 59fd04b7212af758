package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// TestRunAgainstCollector drives the real collector: Mosquitto, the fleet
// collector storing into bbolt and its JSON API. Nothing acknowledged is
// dropped, every device's newest report is stored, and the fleet report
// shows exactly the versions DefaultPayload sent.
func TestRunAgainstCollector(t *testing.T) {
	broker := startMosquitto(t, "allow_anonymous true")
	store, err := fleet.Open(filepath.Join(t.TempDir(), "fleet.db"), fleet.StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	col, err := fleet.NewCollector(store, fleet.CollectorOptions{Broker: broker, ClientID: "collector-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	colDone := make(chan error, 1)
	go func() { colDone <- col.Run(ctx) }()
	defer func() {
		cancel()
		<-colDone
	}()
	select {
	case <-col.Ready():
	case err := <-colDone:
		t.Fatalf("collector: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("collector not subscribed after 30 s")
	}
	newest := func() map[string]string { return map[string]string{"hi": "0.3", "lampi-service": "1.2.0"} }
	mux := http.NewServeMux()
	mux.Handle("/api/", fleet.APIHandler(store, newest))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	const devices = 40
	res, err := Run(context.Background(), Options{Devices: devices, Duration: 1500 * time.Millisecond, Rate: 400, QoS: 1,
		Status: true, Broker: broker, Server: srv.URL, PollInterval: -1, CheckDevices: true, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Collector
	if res.MQTT.Acked == 0 || res.MQTT.Failed != 0 || c.Error != "" || !c.Settled || c.Drops != 0 ||
		c.Stored != res.MQTT.Acked || !c.DevicesChecked || c.DevicesBehind != 0 {
		t.Fatalf("mqtt %+v\ncollector %+v", res.MQTT, c)
	}
	if p := res.Problems(); len(p) != 0 {
		t.Errorf("problems %q", p)
	}

	rep, err := store.Report(t.Context(), fleet.ReportOptions{Newest: newest(), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int{"hi": {"0.3": 28, "0.2": 8, "0.1": 4}, "lampi-service": {"1.2.0": 38, "1.1.0": 2}}
	if rep.Devices != devices || len(rep.Packages) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, p := range rep.Packages {
		got := map[string]int{}
		for _, v := range p.Versions {
			got[v.Version] = v.Count
		}
		for v, n := range want[p.Name] {
			if got[v] != n {
				t.Errorf("%s %s: %d devices, sent %d", p.Name, v, got[v], n)
			}
		}
		if p.Installed != devices || p.UpToDate != want[p.Name][p.Newest] {
			t.Errorf("%s: installed %d, up to date %d", p.Name, p.Installed, p.UpToDate)
		}
	}
	// The devices said goodbye: all offline, once the collector has
	// committed the status messages that followed the last reports.
	for i := 0; rep.Offline != devices && i < 100; i++ {
		time.Sleep(100 * time.Millisecond)
		if rep, err = store.Report(t.Context(), fleet.ReportOptions{Now: time.Now}); err != nil {
			t.Fatal(err)
		}
	}
	if rep.Offline != devices {
		t.Errorf("%d of %d devices offline after the run", rep.Offline, devices)
	}
}
