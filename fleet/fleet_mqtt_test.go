package fleet

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

const fleetSize = 1000

func deviceID(n int) string { return fmt.Sprintf("lamp%04d", n) }

// simulateFleet connects n devices and has each send "online", its state
// with seq 2 and then, late, a stale seq 1. It returns the connected
// devices (closed at the end of the test).
func simulateFleet(t *testing.T, broker string, n int, opts func(id string) deviceOptions) []*device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	devs := make([]*device, n)
	g := newLimitGroup(32)
	for i := range n {
		g.Go(func() error {
			id := deviceID(i)
			d, err := connectDevice(ctx, broker, id, opts(id))
			if err != nil {
				return err
			}
			devs[i] = d
			if err := d.status(ctx, state.Online); err != nil {
				return err
			}
			if err := d.publish(ctx, id, mustEncode(t, testState(id, i, 2))); err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			return d.publish(ctx, id, mustEncode(t, testState(id, i, 1)))
		})
	}
	err := g.Wait()
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, d := range devs {
			if d != nil {
				wg.Go(d.close)
			}
		}
		wg.Wait()
	})
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

// checkFleet verifies that the store holds exactly what simulateFleet sent.
func checkFleet(t *testing.T, s *Store, n int) {
	t.Helper()
	waitFor(t, "all reports stored", func() bool {
		st := s.Stats()
		return st.Received >= uint64(2*n) && st.Status >= uint64(n)
	})
	if st := s.Stats(); st != (Stats{Received: uint64(2 * n), Stored: uint64(n), Stale: uint64(n), Status: uint64(n), Devices: n}) {
		t.Errorf("stats %+v", st)
	}
	devs, err := s.Devices(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != n {
		t.Fatalf("%d devices stored, want %d", len(devs), n)
	}
	for i, d := range devs {
		want := testState(deviceID(i), i, 2)
		if d.ID != deviceID(i) || !d.Online || !reflect.DeepEqual(d.State, want) {
			t.Fatalf("device %d:\n got %+v\nwant %+v", i, d, want)
		}
	}
	rep, err := s.Report(t.Context(), ReportOptions{Newest: map[string]string{"hi": "0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	hi := rep.Packages[0]
	quarter := n / 4
	if rep.Devices != n || rep.Online != n || rep.Offline != 0 || len(rep.FailedDevices) != n/100 ||
		hi.Installed != n || hi.UpToDate != n-quarter || len(hi.Behind) != quarter ||
		!reflect.DeepEqual(hi.Versions, []VersionShare{{"0.2", n - quarter, 0.75}, {"0.1", quarter, 0.25}}) {
		t.Errorf("report: %+v", rep)
	}
}

func TestFleetMosquitto(t *testing.T) {
	broker := startMosquitto(t, "allow_anonymous true")
	s := openTestStore(t, StoreOptions{})
	runCollector(t, s, CollectorOptions{Broker: broker})
	simulateFleet(t, broker, fleetSize, func(string) deviceOptions { return deviceOptions{keepAlive: 60} })
	checkFleet(t, s, fleetSize)
}

func TestFleetEmbeddedBroker(t *testing.T) {
	testutil.Heavy(t, "simulates a fleet of devices reporting over MQTT")
	s := openTestStore(t, StoreOptions{})
	ids := make([]string, fleetSize)
	for i := range ids {
		ids[i] = deviceID(i)
	}
	creds, err := s.IssueCredentials(t.Context(), RoleDevice, ids...)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := s.IssueCredentials(t.Context(), RoleCollector, "collector")
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for _, c := range creds {
		secrets[c.ID] = c.Secret
	}
	b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", Auth: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	runCollector(t, s, CollectorOptions{Broker: b.URL(), Username: "collector", Password: []byte(coll[0].Secret)})
	simulateFleet(t, b.URL(), fleetSize, func(id string) deviceOptions {
		return deviceOptions{keepAlive: 60, user: id, pass: secrets[id]}
	})
	checkFleet(t, s, fleetSize)
}
