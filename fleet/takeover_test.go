package fleet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// securedBroker is a broker every client logs in to: the embedded one with
// credentials issued in a store, or a real Mosquitto configured as
// packaging/mosquitto/lampi-fleet.conf says.
type securedBroker struct {
	kind    string // "embedded" or "mosquitto"
	url     string
	secrets map[string]string
	emb     *Broker
	mosq    *testutil.Mosquitto
}

var brokerKinds = []string{"embedded", "mosquitto"}

func startSecuredBroker(t *testing.T, kind string, s *Store, devices, collectors []string) *securedBroker {
	t.Helper()
	b := &securedBroker{kind: kind, secrets: map[string]string{}}
	switch kind {
	case "embedded":
		for role, ids := range map[string][]string{RoleDevice: devices, RoleCollector: collectors} {
			if len(ids) == 0 {
				continue
			}
			creds, err := s.IssueCredentials(t.Context(), role, ids...)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range creds {
				b.secrets[c.ID] = c.Secret
			}
		}
		var err error
		if b.emb, err = StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", Auth: s}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.emb.Close() })
		b.url = b.emb.URL()
	case "mosquitto":
		for _, id := range append(append([]string{}, devices...), collectors...) {
			b.secrets[id] = "secret-of-" + id
		}
		b.mosq = testutil.StartMosquitto(t, append([]string{"max_inflight_messages 0"}, testutil.FleetMosquittoConf(t, b.secrets, collectors...)...)...)
		b.url = b.mosq.URL
	default:
		t.Fatalf("broker kind %q", kind)
	}
	return b
}

// login is deviceOptions for the credential of id.
func (b *securedBroker) login(id string) deviceOptions {
	return deviceOptions{user: id, pass: b.secrets[id], keepAlive: 60}
}

func (b *securedBroker) collector(id string) CollectorOptions {
	return CollectorOptions{Broker: b.url, Username: id, Password: []byte(b.secrets[id])}
}

// TestClientIDTakeoverDevice performs issue 14 §2 against a device: A,
// logged in with its own credential, connects with B's client id (the
// one lampi-agent uses, and the bare id), five times. Before, each took
// B's session over: B was disconnected and its Will marked it offline.
// Now the embedded broker refuses the client id, and Mosquitto (with
// use_username_as_clientid) names A's session after A: B keeps its
// connection and stays online.
func TestClientIDTakeoverDevice(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			s := openTestStore(t, StoreOptions{})
			b := startSecuredBroker(t, kind, s, []string{"lampA", "lampB"}, []string{"collector"})
			runCollector(t, s, b.collector("collector"))
			ctx := t.Context()
			bo := b.login("lampB")
			bo.clientID, bo.will = AgentClientIDPrefix+"lampB", true
			bdev, err := connectDevice(ctx, b.url, "lampB", bo)
			if err != nil {
				t.Fatal(err)
			}
			defer bdev.close()
			if err := bdev.status(ctx, state.Online); err != nil {
				t.Fatal(err)
			}
			if err := bdev.publish(ctx, "lampB", mustEncode(t, state.State{Seq: 1, Time: t0, Device: "lampB"})); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "B online and reported", func() bool {
				d, err := s.Device(t.Context(), "lampB")
				return err == nil && d.Online && d.State.Seq == 1
			})

			for try := range 5 {
				for _, cid := range []string{AgentClientIDPrefix + "lampB", "lampB"} {
					ao := b.login("lampA")
					ao.clientID, ao.will = cid, true
					a, err := connectDevice(ctx, b.url, "lampA", ao)
					switch {
					case kind == "embedded" && err == nil:
						a.close()
						t.Errorf("try %d: lampA logged in with client id %s", try, cid)
					case kind == "embedded" && !strings.Contains(err.Error(), "(0x85)"):
						t.Errorf("try %d: lampA as %s: %v, want refused as an invalid client identifier", try, cid, err)
					case kind == "mosquitto" && err != nil:
						t.Errorf("try %d: lampA (its session named after its username) refused: %v", try, err)
					case kind == "mosquitto":
						a.close()
					}
				}
			}
			// B's connection survived: its next report is acknowledged on
			// it.
			if err := bdev.publish(ctx, "lampB", mustEncode(t, state.State{Seq: 2, Time: t0, Device: "lampB"})); err != nil {
				t.Fatalf("B lost its connection to the takeover attempts: %v", err)
			}
			waitFor(t, "B's second report", func() bool { d, _ := s.Device(t.Context(), "lampB"); return d.State.Seq == 2 })
			// B published "online" once, before the attempts: had its Will
			// been sent, the device would show offline now.
			if d, _ := s.Device(t.Context(), "lampB"); !d.Online {
				t.Error("B shown offline: its Will was sent")
			}
		})
	}
}

// TestClientIDTakeoverCollector performs issue 14 §2 against a collector:
// while it is down, its persistent session queues the devices' reports;
// device A, with its own credential, connects with the collector's client
// id, once resuming the session (to read the queue) and once with a clean
// start (to wipe it). Before, A received other devices' reports and the
// restarted collector never got them (two reports and their history
// lost). Now the restarted collector receives both.
func TestClientIDTakeoverCollector(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			s := openTestStore(t, StoreOptions{})
			b := startSecuredBroker(t, kind, s, []string{"lampA", "lampB"}, []string{"collector"})
			copts := b.collector("collector")
			stop := startCollector(t, s, copts)
			stop() // the session stays at the broker, which queues for it
			ctx := t.Context()

			bo := b.login("lampB")
			bo.clientID = AgentClientIDPrefix + "lampB"
			bdev, err := connectDevice(ctx, b.url, "lampB", bo)
			if err != nil {
				t.Fatal(err)
			}
			defer bdev.close()
			for seq, v := range []string{"0.1", "0.2"} {
				st := state.State{Seq: uint64(seq + 1), Time: t0, Device: "lampB", Packages: map[string]string{"hi": v}}
				if err := bdev.publish(ctx, "lampB", mustEncode(t, st)); err != nil {
					t.Fatal(err)
				}
			}

			var stolen atomic.Int32
			for _, resume := range []bool{true, false} {
				ao := b.login("lampA")
				ao.clientID, ao.resume = "collector", resume
				ao.received = func(string) { stolen.Add(1) }
				a, err := connectDevice(ctx, b.url, "lampA", ao)
				switch {
				case kind == "embedded" && err == nil:
					a.close()
					t.Errorf("lampA logged in with the collector's client id (resume %v)", resume)
				case kind == "embedded" && !strings.Contains(err.Error(), "(0x85)"):
					t.Errorf("lampA as the collector: %v, want refused as an invalid client identifier", err)
				case kind == "mosquitto" && err != nil:
					t.Errorf("lampA (its session named after its username) refused: %v", err)
				case kind == "mosquitto":
					a.close()
				}
			}

			// The collector comes back to its session: both reports (in
			// either order: the older one is then rightly stale).
			runCollector(t, s, copts)
			waitFor(t, "both queued reports", func() bool { return s.Stats().Received >= 2 })
			if d, err := s.Device(t.Context(), "lampB"); err != nil || d.State.Seq != 2 {
				t.Errorf("B's newest report not stored: %+v %v", d.State, err)
			}
			if n := stolen.Load(); n != 0 {
				t.Errorf("lampA received %d messages from the collector's session", n)
			}
		})
	}
}

// TestCollectorResumesQueuedSession: a collector stopped cleanly comes back
// to its session while the broker re-sends the reports queued in it. mochi
// refused its SUBSCRIBE ("packet identifier in use": the id of a report it
// was re-sending) and the collector never said it was ready; it now
// retries, and stores what was queued.
func TestCollectorResumesQueuedSession(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			s := openTestStore(t, StoreOptions{})
			b := startSecuredBroker(t, kind, s, []string{"lampB"}, []string{"collector"})
			startCollector(t, s, b.collector("collector"))()
			d, err := connectDevice(t.Context(), b.url, "lampB", b.login("lampB"))
			if err != nil {
				t.Fatal(err)
			}
			defer d.close()
			for seq := uint64(1); seq <= 3; seq++ {
				if err := d.publish(t.Context(), "lampB", mustEncode(t, state.State{Seq: seq, Time: t0, Device: "lampB"})); err != nil {
					t.Fatal(err)
				}
			}
			runCollector(t, s, b.collector("collector"))
			waitFor(t, "the queued reports", func() bool { return s.Stats().Received >= 3 })
			if dev, err := s.Device(t.Context(), "lampB"); err != nil || dev.State.Seq != 3 {
				t.Errorf("stored %+v, %v; want seq 3", dev.State, err)
			}
		})
	}
}

// TestRetainedWhileSubscribing: devices retain reports while a collector
// subscribes, again and again. mochi v2.7.9 reads a topic's retained path
// without its lock while it scans the retained messages for a new
// subscription: without the broker's own ordering (mochiHook.retainMu)
// this is a data race, reported by go test -race.
func TestRetainedWhileSubscribing(t *testing.T) {
	b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := t.Context()
	sub, err := connectDevice(ctx, b.URL(), "subscriber", deviceOptions{received: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.close()
	stop := make(chan struct{})
	var g sync.WaitGroup
	for i := range 4 {
		id := deviceID(i)
		d, err := connectDevice(ctx, b.URL(), id, deviceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.close()
		g.Go(func() {
			for seq := uint64(1); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := d.publish(ctx, id, mustEncode(t, state.State{Seq: seq, Time: t0, Device: id})); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 100 {
		if _, err := sub.cl.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "devices/+/state", QoS: 0}}}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	g.Wait()
}

// TestStuckSubscriberDoesNotHoldRetained: a subscriber that stops reading
// its socket and subscribes again holds the retained store (see
// TestRetainedWhileSubscribing) only until its SUBACK write times out;
// the devices' retained reports then go on. Without the write deadline
// they waited for the subscriber's keep-alive (here 7.5 minutes).
func TestStuckSubscriberDoesNotHoldRetained(t *testing.T) {
	testutil.Heavy(t, "waits out the embedded broker's SUBACK write deadline")
	b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := t.Context()
	stuck, r, err := rawConnect(b.URL(), "stuck", 5, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	subscribe := func(id uint16) []byte {
		var p []byte
		p = binary.BigEndian.AppendUint16(p, id)
		p = append(p, 0) // no properties
		p = appendString(p, "devices/#")
		p = append(p, 0) // QoS 0
		return append(appendVarint([]byte{0x82}, len(p)), p...)
	}
	if _, err := stuck.Write(subscribe(1)); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := readPacket(r); err != nil || typ>>4 != 9 {
		t.Fatalf("SUBACK: %x %v", typ, err)
	}
	// From now on the subscriber reads nothing: the broker's writes to it
	// block once the socket buffers are full.
	d, err := connectDevice(ctx, b.URL(), "lampA", deviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	big := bytes.Repeat([]byte("x"), 60<<10)
	for i := range 300 {
		if err := d.publishTo(ctx, fmt.Sprintf("devices/lampA/fill%d", i%10), big); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stuck.Write(subscribe(2)); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := d.publish(ctx, "lampA", mustEncode(t, state.State{Seq: seq, Time: t0, Device: "lampA"})); err != nil {
			t.Fatalf("retained report %d after the stuck subscription: %v", seq, err)
		}
	}
}
