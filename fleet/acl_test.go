package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// spoofThenOwn has device a publish a report for b on b's topic, then its
// own report; once a's own report is stored, the spoofed one (sent before
// it on the same connection) has been through the broker too.
// The spoofed payload names claim as the device.
func spoofThenOwn(t *testing.T, ctx context.Context, s *Store, a *device, b, claim string) (spoofErr error) {
	t.Helper()
	spoof := state.State{Seq: 100, Time: t0, Device: claim, Packages: map[string]string{"hi": "6.6.6"}}
	spoofErr = a.publish(ctx, b, mustEncode(t, spoof))
	own := state.State{Seq: 1, Time: t0, Device: a.id, Packages: map[string]string{"hi": "0.2"}}
	if err := a.publish(ctx, a.id, mustEncode(t, own)); err != nil {
		t.Fatalf("own report: %v", err)
	}
	// The counters are published just after the commit that makes the
	// device visible: wait for both.
	waitFor(t, "own report stored", func() bool { _, err := s.Device(t.Context(), a.id); return err == nil && s.Stats().Stored >= 1 })
	if d, err := s.Device(t.Context(), b); err == nil {
		t.Errorf("spoofed report stored for %s: %+v", b, d)
	}
	return spoofErr
}

func TestSpoofRefusedByEmbeddedBrokerACL(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	creds, err := s.IssueCredentials(t.Context(), RoleDevice, "lampA", "lampB")
	if err != nil {
		t.Fatal(err)
	}
	coll, _ := s.IssueCredentials(t.Context(), RoleCollector, "collector", "collector2")
	b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", Auth: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	runCollector(t, s, CollectorOptions{Broker: b.URL(), Username: "collector", Password: []byte(coll[0].Secret)})
	ctx := t.Context()

	a, err := connectDevice(ctx, b.URL(), "lampA", deviceOptions{user: "lampA", pass: creds[0].Secret, will: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := spoofThenOwn(t, ctx, s, a, "lampB", "lampB"); err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("spoofed publish: %v, want refused with 0x87 (not authorized)", err)
	}
	if st := s.Stats(); st.Spoofed != 0 || st.Stored != 1 {
		t.Errorf("stats %+v: the broker should have stopped the spoof", st)
	}
	// Nor may A read B's topics, nor subscribe at all (lampi-agent needs
	// no subscription; a subscriber holds the retained store).
	sa, err := a.cl.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "devices/lampB/#", QoS: 1}, {Topic: "devices/#", QoS: 1}, {Topic: "devices/lampA/state", QoS: 1}}})
	if err == nil && sa != nil && (sa.Reasons[0] < 0x80 || sa.Reasons[1] < 0x80 || sa.Reasons[2] < 0x80) {
		t.Errorf("device subscription granted: %v", sa.Reasons)
	}

	// Logins that must fail: wrong secret, another device's secret,
	// anonymous, a Will on another device's topic, a device as collector.
	for name, o := range map[string]deviceOptions{
		"wrong secret":     {user: "lampA", pass: "nope"},
		"B's secret":       {user: "lampA", pass: creds[1].Secret},
		"anonymous":        {},
		"unknown user":     {user: "lampC", pass: creds[0].Secret},
		"collector secret": {user: "lampB", pass: coll[0].Secret},
	} {
		cid := o.user // the login's own client id: only the credential is wrong
		if cid == "" {
			cid = "x" + strings.ReplaceAll(name, " ", "")
		}
		if d, err := connectDevice(ctx, b.URL(), cid, o); err == nil {
			d.close()
			t.Errorf("%s: login accepted", name)
		}
	}
	if d, err := connectDevice(ctx, b.URL(), "lampB", deviceOptions{user: "lampB", pass: creds[1].Secret, will: true}); err != nil {
		t.Errorf("B with its own Will refused: %v", err)
	} else {
		d.close()
	}
	// B logging in with a Will on A's status topic.
	d, err := connectDevice(ctx, b.URL(), "lampB", deviceOptions{user: "lampB", pass: creds[1].Secret, will: true, willTopic: "devices/lampA/status"})
	if err == nil {
		d.close()
		t.Error("Will on another device's topic accepted")
	}
	// A collector may not publish.
	cd, err := connectDevice(ctx, b.URL(), "collector2", deviceOptions{user: "collector2", pass: coll[1].Secret})
	if err != nil {
		t.Fatal(err)
	}
	defer cd.close()
	if err := cd.publish(ctx, "lampB", mustEncode(t, state.State{Seq: 1, Time: t0, Device: "lampB"})); err == nil {
		t.Error("collector credential could publish")
	}
}

func TestSpoofRefusedByMosquittoACL(t *testing.T) {
	secrets := map[string]string{"lampA": "secret-a", "lampB": "secret-b", "collector": "secret-c"}
	broker := startMosquitto(t, testutil.FleetMosquittoConf(t, secrets, "collector")...)
	s := openTestStore(t, StoreOptions{})
	runCollector(t, s, CollectorOptions{Broker: broker, Username: "collector", Password: []byte(secrets["collector"])})
	ctx := t.Context()
	a, err := connectDevice(ctx, broker, "lampA", deviceOptions{user: "lampA", pass: secrets["lampA"], will: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := spoofThenOwn(t, ctx, s, a, "lampB", "lampB"); err == nil {
		t.Log("mosquitto acknowledged the spoofed publish without an error code (it dropped it)")
	} else {
		t.Logf("spoofed publish refused: %v", err)
	}
	if st := s.Stats(); st.Spoofed != 0 || st.Stored != 1 {
		t.Errorf("stats %+v: the broker should have stopped the spoof", st)
	}
	if d, err := connectDevice(ctx, broker, "lampA2", deviceOptions{user: "lampA", pass: "wrong"}); err == nil {
		d.close()
		t.Error("wrong password accepted")
	}
}

// With an anonymous broker nothing stops the spoof at the broker: the
// collector must ignore and count it.
func TestSpoofIgnoredByCollector(t *testing.T) {
	for name, broker := range map[string]func(t *testing.T) string{
		"mosquitto": func(t *testing.T) string { return startMosquitto(t, "allow_anonymous true") },
		"embedded": func(t *testing.T) string {
			b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", AllowAnonymous: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b.URL()
		},
	} {
		t.Run(name, func(t *testing.T) {
			url := broker(t)
			s := openTestStore(t, StoreOptions{})
			runCollector(t, s, CollectorOptions{Broker: url})
			a, err := connectDevice(t.Context(), url, "lampA", deviceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.close()
			// A's report on B's topic: the broker passes it on, the
			// payload's id gives it away.
			if err := spoofThenOwn(t, t.Context(), s, a, "lampB", "lampA"); err != nil {
				t.Fatal(err)
			}
			// QoS 1 is at least once: mochi writes the SUBACK before it
			// sends the retained messages, so a publish that lands in
			// between reaches the collector live and again as retained.
			// The counters count deliveries; what matters is that every
			// delivery of the spoof was recognised and none was stored.
			if st := s.Stats(); st.Spoofed < 1 || st.Stored != 1 || st.Received != st.Spoofed+st.Stored {
				t.Errorf("stats %+v, want the spoof counted (once, or again if redelivered), 1 stored", st)
			}
		})
	}
}

// TestWillMarksOffline: a device whose connection drops without DISCONNECT
// is shown offline through its Will.
func TestWillMarksOffline(t *testing.T) {
	for name, broker := range map[string]func(t *testing.T) string{
		"mosquitto": func(t *testing.T) string { return startMosquitto(t, "allow_anonymous true") },
		"embedded": func(t *testing.T) string {
			b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", AllowAnonymous: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b.URL()
		},
	} {
		t.Run(name, func(t *testing.T) {
			url := broker(t)
			s := openTestStore(t, StoreOptions{})
			runCollector(t, s, CollectorOptions{Broker: url})
			const keepAlive = 2
			d, err := connectDevice(t.Context(), url, "lamp1", deviceOptions{keepAlive: keepAlive, will: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.status(t.Context(), state.Online); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "online", func() bool { dev, err := s.Device(t.Context(), "lamp1"); return err == nil && dev.Online })
			dropped := time.Now()
			d.conn.Close() // no DISCONNECT: the broker must send the Will
			waitFor(t, "offline", func() bool { dev, _ := s.Device(t.Context(), "lamp1"); return !dev.Online })
			t.Logf("offline %v after the connection dropped (keep-alive %d s)", time.Since(dropped).Round(time.Millisecond), keepAlive)
			d.cl.Disconnect(&paho.Disconnect{})
		})
	}
}

// TestEmbeddedBrokerMQTT311: a device speaking MQTT 3.1.1 logs in with its
// credential and reports; the collector (MQTT 5) stores it.
func TestEmbeddedBrokerMQTT311(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	creds, err := s.IssueCredentials(t.Context(), RoleDevice, "lamp311")
	if err != nil {
		t.Fatal(err)
	}
	coll, _ := s.IssueCredentials(t.Context(), RoleCollector, "collector")
	b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", Auth: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	runCollector(t, s, CollectorOptions{Broker: b.URL(), Username: "collector", Password: []byte(coll[0].Secret)})
	if _, err := dialRawVersion(b.URL(), "lamp311", 1, 4, "lamp311", "wrong"); err == nil {
		t.Error("3.1.1 login with a wrong secret accepted")
	}
	d, err := dialRawVersion(b.URL(), "lamp311", 1, 4, "lamp311", creds[0].Secret)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	st := state.State{Seq: 1, Time: t0, Device: "lamp311", Packages: map[string]string{"hi": "0.1"}}
	if err := d.send(publishPacketVersion(4, "devices/lamp311/state", 1, mustEncode(t, st))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3.1.1 report stored", func() bool { _, err := s.Device(t.Context(), "lamp311"); return err == nil })
	if d.failed.Load() != 0 {
		t.Error("publish refused")
	}
}

// TestSharedSubscriptionGroup: two collectors of one group split the
// reports; together they store each exactly once.
func TestSharedSubscriptionGroup(t *testing.T) {
	broker := startMosquitto(t, "allow_anonymous true")
	s1 := openTestStore(t, StoreOptions{})
	s2 := openTestStore(t, StoreOptions{})
	runCollector(t, s1, CollectorOptions{Broker: broker, ClientID: "c1", Group: "g"})
	runCollector(t, s2, CollectorOptions{Broker: broker, ClientID: "c2", Group: "g"})
	const n = 200
	g := newLimitGroup(16)
	for i := range n {
		g.Go(func() error {
			id := deviceID(i)
			d, err := dialRaw(broker, id, 1)
			if err != nil {
				return err
			}
			defer d.close()
			if err := d.send(publishPacket(state.StateTopic("devices", id), 1, mustEncode(t, testState(id, i, 1)))); err != nil {
				return err
			}
			for d.acked.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all reports", func() bool { return s1.Stats().Received+s2.Stats().Received >= n })
	a, b := s1.Stats(), s2.Stats()
	if a.Received+b.Received != n || a.Stored+b.Stored != n || a.Received == 0 || b.Received == 0 {
		t.Errorf("split %+v / %+v", a, b)
	}
}
