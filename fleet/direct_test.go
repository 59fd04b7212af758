package fleet

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// startDirect starts an anonymous embedded broker that hands reports to a
// direct collector on s, and returns the broker's URL and a function that
// stops the collector.
func startDirect(t *testing.T, s *Store, commitErr bool) (string, func()) {
	t.Helper()
	return startDirectWith(t, s, CollectorOptions{}, commitErr)
}

// startDirectWith is startDirect with the collector's options.
func startDirectWith(t *testing.T, s *Store, opts CollectorOptions, commitErr bool) (string, func()) {
	t.Helper()
	c := NewDirectCollector(s, opts)
	b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", AllowAnonymous: true, Deliver: c.Deliver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; (err != nil) != commitErr {
				t.Errorf("direct collector stopped with %v, want a failed commit: %v", err, commitErr)
			}
		})
	}
	t.Cleanup(stop)
	return b.URL(), stop
}

// TestDirectCollectorAcksAfterCommit: with a direct collector the device's
// PUBACK means "committed": the report is in the database the moment the
// publish returns, without waiting.
func TestDirectCollectorAcksAfterCommit(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	url, _ := startDirect(t, s, false)
	ctx := t.Context()
	const n = 20
	var g sync.WaitGroup
	for i := range n {
		g.Go(func() {
			id := deviceID(i)
			d, err := connectDevice(ctx, url, id, deviceOptions{will: true})
			if err != nil {
				t.Error(err)
				return
			}
			defer d.close()
			for seq := uint64(1); seq <= 3; seq++ {
				if err := d.publish(ctx, id, mustEncode(t, crashState(id, seq))); err != nil {
					t.Error(err)
					return
				}
				got, err := s.Device(t.Context(), id)
				if err != nil || got.State.Seq != seq {
					t.Errorf("%s: right after the PUBACK of seq %d the database holds %+v (%v)", id, seq, got.State, err)
					return
				}
			}
			if err := d.status(ctx, state.Online); err != nil {
				t.Error(err)
				return
			}
			if got, err := s.Device(t.Context(), id); err != nil || !got.Online {
				t.Errorf("%s: online status not committed before its PUBACK: %+v (%v)", id, got, err)
			}
		})
	}
	g.Wait()
	// A spoof is counted once, and at once: nothing delivers it twice.
	a, err := connectDevice(ctx, url, "lampA", deviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.publish(ctx, "lampB", mustEncode(t, state.State{Seq: 1, Time: t0, Device: "lampA"})); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Spoofed != 1 || st.Stored != 3*n || st.Status != n {
		t.Errorf("stats %+v, want 1 spoofed, %d stored, %d status", st, 3*n, n)
	}
	if _, err := s.Device(t.Context(), "lampB"); err == nil {
		t.Error("the spoofed report was stored")
	}
}

// TestDirectCollectorWill: a device that drops without DISCONNECT is
// marked offline through its Will, which the broker hands to the
// collector like a report.
func TestDirectCollectorWill(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	url, _ := startDirect(t, s, false)
	d, err := connectDevice(t.Context(), url, "lamp1", deviceOptions{will: true, keepAlive: 60})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.status(t.Context(), state.Online); err != nil {
		t.Fatal(err)
	}
	d.conn.Close() // no DISCONNECT: the broker sends the Will
	waitFor(t, "the Will to mark lamp1 offline", func() bool {
		got, err := s.Device(t.Context(), "lamp1")
		return err == nil && !got.Online && !got.StatusTime.IsZero()
	})
}

// TestDirectCollectorRefuses: a report the collector cannot commit — it
// has stopped, or the commit fails — is refused to the device (MQTT 5
// reason code 0x80), never acknowledged and dropped.
func TestDirectCollectorRefuses(t *testing.T) {
	t.Run("stopped", func(t *testing.T) {
		s := openTestStore(t, StoreOptions{})
		url, stop := startDirect(t, s, false)
		d, err := connectDevice(t.Context(), url, "lamp1", deviceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.close()
		stop()
		if code := publishCode(t, d, crashState("lamp1", 1)); code != 0x80 {
			t.Errorf("publish after the collector stopped: reason code %#x, want 0x80", code)
		}
	})
	t.Run("commit fails", func(t *testing.T) {
		s, err := Open(filepath.Join(t.TempDir(), "fleet.db"), StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		url, _ := startDirect(t, s, true)
		d, err := connectDevice(t.Context(), url, "lamp1", deviceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.close()
		s.Close() // every commit now fails
		if code := publishCode(t, d, crashState("lamp1", 1)); code != 0x80 {
			t.Errorf("publish with a failing database: reason code %#x, want 0x80", code)
		}
	})
}

// publishCode publishes st as d's report and returns the PUBACK's reason
// code.
func publishCode(t *testing.T, d *device, st state.State) byte {
	t.Helper()
	pr, err := d.cl.Publish(t.Context(), &paho.Publish{Topic: state.StateTopic(state.DefaultPrefix, d.id), QoS: 1, Payload: mustEncode(t, st)})
	if pr == nil {
		t.Fatalf("publish: no PUBACK: %v", err)
	}
	return pr.ReasonCode
}

// TestDirectServerKilledLosesNothing: a process running the embedded
// broker and its direct collector is SIGKILLed while 200 devices stream
// reports. Every report a device got a PUBACK for is in the database at
// that moment; the devices send the rest again once the server is back,
// and every device's audit log then has every version exactly once.
func TestDirectServerKilledLosesNothing(t *testing.T) {
	testutil.Heavy(t, "SIGKILLs a server process while 200 devices stream reports")
	const devices, reports = 200, 8
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := childConfig{DB: filepath.Join(t.TempDir(), "fleet.db"), Listen: addr}
	child := startChildCollector(t, cfg)
	url := "mqtt://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	acked := make([]uint64, devices)
	var mu sync.Mutex
	total := 0
	killAt := devices * reports / 3
	killed := make(chan struct{})
	// run sends device i's reports after the last acknowledged one, until
	// all are acknowledged or its connection breaks.
	run := func(ctx context.Context, i int) {
		id := deviceID(i)
		d, err := connectDevice(ctx, url, id, deviceOptions{keepAlive: 60})
		if err != nil {
			return
		}
		defer d.close()
		for seq := acked[i] + 1; seq <= reports; seq++ {
			if err := d.publish(ctx, id, mustEncode(t, crashState(id, seq))); err != nil {
				return
			}
			acked[i] = seq
			mu.Lock()
			total++
			if total == killAt {
				close(killed)
			}
			mu.Unlock()
		}
	}
	// The devices' client waits 10 s for a PUBACK on a dead connection:
	// once the server is killed, their publishes are cancelled (a
	// cancelled one was not acknowledged).
	phase1, stop1 := context.WithCancel(ctx)
	var g sync.WaitGroup
	for i := range devices {
		g.Go(func() { run(phase1, i) })
	}
	<-killed
	child.kill(t)
	stop1()
	g.Wait()

	s, err := Open(cfg.DB, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	missing, complete := 0, 0
	for i := range devices {
		got, err := s.Device(t.Context(), deviceID(i))
		if acked[i] == 0 {
			continue
		}
		if err != nil || got.State.Seq < acked[i] {
			missing++
			t.Errorf("%s: acknowledged up to seq %d, database holds %d (%v)", deviceID(i), acked[i], got.State.Seq, err)
		}
		if acked[i] == reports {
			complete++
		}
	}
	s.Close()
	t.Logf("killed after %d acknowledged reports; %d devices had sent everything", killAt, complete)
	if complete == devices {
		t.Fatal("every device finished before the kill: the test killed nothing mid-stream")
	}

	child = startChildCollector(t, cfg)
	for i := range devices {
		g.Go(func() { run(ctx, i) })
	}
	g.Wait()
	for i := range devices {
		if acked[i] != reports {
			t.Fatalf("%s: only %d of %d reports acknowledged after the restart", deviceID(i), acked[i], reports)
		}
	}
	child.kill(t)
	s, err = Open(cfg.DB, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := make([]string, reports)
	for seq := range want {
		want[seq] = fmt.Sprintf("1.%d", seq+1)
	}
	for i := range devices {
		h, err := s.History(t.Context(), deviceID(i))
		if err != nil {
			t.Fatal(err)
		}
		if got := serviceVersions(h); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: versions logged %v, want %v", deviceID(i), got, want)
		}
	}
}
