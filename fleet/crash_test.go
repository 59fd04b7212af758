package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// crashState is device n's report number seq: every report changes the
// lampi-service version, so the audit log shows any report that went
// missing as a skipped version.
func crashState(id string, seq uint64) state.State {
	return state.State{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Device: id, Result: state.ResultUpdated,
		Packages: map[string]string{"lampi-service": fmt.Sprintf("1.%d", seq)}}
}

// serviceVersions lists the lampi-service versions an audit log records,
// in order.
func serviceVersions(h []Event) []string {
	var out []string
	for _, e := range h {
		if e.Package == "lampi-service" {
			out = append(out, e.To)
		}
	}
	return out
}

// TestCollectorKilledMidStream: the collector process is SIGKILLed while
// reports stream in, more reports arrive while it is down, and it is
// restarted; every report of every device must end up stored.
func TestCollectorKilledMidStream(t *testing.T) {
	testutil.Heavy(t, "SIGKILLs and restarts a collector process while a fleet reports, on Mosquitto and the embedded broker")
	t.Run("mosquitto", func(t *testing.T) {
		broker := startMosquitto(t, "allow_anonymous true")
		testKilledMidStream(t, broker, true, childConfig{}, func(string) deviceOptions { return deviceOptions{keepAlive: 60} })
	})
	t.Run("embedded", func(t *testing.T) {
		auth := openTestStore(t, StoreOptions{})
		ids := make([]string, fleetSize)
		for i := range ids {
			ids[i] = deviceID(i)
		}
		creds, err := auth.IssueCredentials(t.Context(), RoleDevice, ids...)
		if err != nil {
			t.Fatal(err)
		}
		coll, err := auth.IssueCredentials(t.Context(), RoleCollector, "collector")
		if err != nil {
			t.Fatal(err)
		}
		b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", Auth: auth})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		testKilledMidStream(t, b.URL(), false, childConfig{User: "collector", Pass: coll[0].Secret}, func(id string) deviceOptions {
			var n int
			fmt.Sscanf(id, "lamp%d", &n)
			return deviceOptions{keepAlive: 60, user: id, pass: creds[n].Secret}
		})
	})
}

// strictOrder says the broker re-delivers a persistent session's queue in
// order (Mosquitto does; mochi sorts it by the second it was received, so
// reports of one second may come back reordered and the older ones are
// then rightly ignored as stale).
func testKilledMidStream(t *testing.T, broker string, strictOrder bool, cfg childConfig, opts func(string) deviceOptions) {
	const rounds = 6
	cfg.DB = filepath.Join(t.TempDir(), "fleet.db")
	cfg.Broker = broker
	if cfg.User == "" {
		cfg.ClientID = "crash-collector" // with a login, its own id
	}
	child := startChildCollector(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	devs := make([]*device, fleetSize)
	g := newLimitGroup(32)
	for i := range devs {
		g.Go(func() (err error) {
			devs[i], err = connectDevice(ctx, broker, deviceID(i), opts(deviceID(i)))
			return err
		})
	}
	err := g.Wait()
	t.Cleanup(func() {
		for _, d := range devs {
			if d != nil {
				d.close()
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	round := func(seq uint64, during func()) {
		g := newLimitGroup(32)
		for i, d := range devs {
			if i == len(devs)/2 && during != nil {
				during()
			}
			g.Go(func() error {
				defer sent.Add(1)
				return d.publish(ctx, d.id, mustEncode(t, crashState(d.id, seq)))
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	round(1, nil)
	// Kill in the middle of round 2, while the collector is committing.
	round(2, func() { child.kill(t) })
	round(3, nil)
	round(4, nil)
	child = startChildCollector(t, cfg)
	round(5, nil)
	round(rounds, nil)

	waitFor(t, "every device at the last report", func() bool {
		devs, err := child.api.Devices(ctx, 0)
		if err != nil || len(devs) != fleetSize {
			return false
		}
		for _, d := range devs {
			if d.State.Seq != rounds {
				return false
			}
		}
		return true
	})
	// The aggregates the killed collector committed with each batch agree
	// with its devices: the report read from them equals the one walked.
	rep, err := child.api.Report(ctx, ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := child.api.Devices(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := BuildReport(all, ReportOptions{StaleView: rep.StaleView}, rep.Generated); !reflect.DeepEqual(rep, want) {
		t.Errorf("report after the crash:\n got %+v\nwant %+v", rep, want)
	}
	st, err := child.api.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d, stats after the crash and restart: %+v", sent.Load(), st)
	// Nothing lost: every report reached the store (Received counts each
	// committed message, re-deliveries of committed but unacknowledged
	// ones come back as stale) and each device holds its last report.
	if st.Received < uint64(sent.Load()) || st.Stored+st.Stale != st.Received || st.Invalid+st.Spoofed != 0 {
		t.Errorf("sent %d reports, collector stats %+v", sent.Load(), st)
	}
	if !strictOrder {
		return
	}
	// In order, too: every device's audit log has every version.
	for _, id := range []string{deviceID(0), deviceID(fleetSize / 2), deviceID(fleetSize - 1)} {
		h, err := child.api.History(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := serviceVersions(h), []string{"1.1", "1.2", "1.3", "1.4", "1.5", "1.6"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: versions logged %v, want %v", id, got, want)
		}
	}
	if st.Stored != fleetSize*rounds {
		t.Errorf("stored %d reports as newest, want %d (%+v)", st.Stored, fleetSize*rounds, st)
	}
}
