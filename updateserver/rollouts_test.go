package updateserver

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/rollout"
)

// publishFull connects to the MQTT broker at addr anonymously as device
// st.Device and publishes st (retained, QoS 1), failing the test when the
// broker refuses it.
func publishFull(t *testing.T, addr string, st state.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cl := paho.NewClient(paho.ClientConfig{ClientID: "lampi-agent-" + st.Device, Conn: conn, PacketTimeout: 2 * time.Minute})
	if _, err := cl.Connect(ctx, &paho.Connect{ClientID: "lampi-agent-" + st.Device, KeepAlive: 30, CleanStart: true}); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	defer cl.Disconnect(&paho.Disconnect{ReasonCode: 0})
	payload, err := state.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := cl.Publish(ctx, &paho.Publish{Topic: state.StateTopic(state.DefaultPrefix, st.Device), QoS: 1, Retain: true, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if pr != nil && pr.ReasonCode >= 0x80 {
		t.Fatalf("publish refused: reason code %#x", pr.ReasonCode)
	}
}

// TestServerWalksRollout: the server's controller walks a rollout of hi
// 0.2 from 50 % to 100 % once a device reports it healthy, publishing
// each step signed (gpgv) through the normal path, and tells the
// operator each decision.
func TestServerWalksRollout(t *testing.T) {
	testutil.Heavy(t, "runs the whole server with its broker and publishes signed repositories checked by gpgv")
	base, keyring := testRepo(t)
	ctx := context.Background()
	var told notes
	s, err := New(Config{Dir: base, Now: time.Now, Notef: told.notef, Passphrase: passphrase, RolloutInterval: 50 * time.Millisecond,
		Fleet: &FleetConfig{MQTTListen: "127.0.0.1:0", AllowAnonymous: true, Dashboard: true}})
	if err != nil {
		t.Fatal(err)
	}
	r0 := includeHi(t, ctx, s, "0.1", "0.2")
	run := start(t, s)
	plan, err := rollout.ParsePlan("50%:0s/1,100% min-attempts=1")
	if err != nil {
		t.Fatal(err)
	}
	c := s.controller(rollout.RepoPublisher{Repo: r0})
	if _, err := c.Start(ctx, rollout.Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", Previous: "0.1", Plan: plan}); err != nil {
		t.Fatal(err)
	}
	packages := func() string {
		code, body := run.get(t, "/dists/bookworm/main/binary-amd64/Packages")
		if code != http.StatusOK {
			t.Fatalf("GET Packages: %d", code)
		}
		return string(body)
	}
	if !strings.Contains(packages(), "Phased-Update-Percentage: 50\n") {
		t.Fatalf("after Start:\n%s", packages())
	}
	now := time.Now()
	publishFull(t, s.BrokerAddr().String(), state.State{Seq: 1, Time: now, Device: "pi1", Packages: map[string]string{"hi": "0.2"},
		Attempts: map[string]state.Attempt{"hi": {Version: "0.2", Result: state.ResultUpdated, Health: state.HealthPassed, Time: now}}})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := c.Store.Get(ctx, "bookworm/hi/0.2")
		if err != nil {
			t.Fatal(err)
		}
		if r.State == rollout.Completed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout is %s at %d%% after 2 minutes; told:\n%s", r.State, r.Percent(), told.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p := packages(); strings.Contains(p, "Phased-Update-Percentage") || !strings.Contains(p, "Version: 0.2\n") {
		t.Fatalf("after completion:\n%s", p)
	}
	_, inRelease := run.get(t, "/dists/bookworm/InRelease")
	gpgv(t, keyring, inRelease)
	for _, want := range []string{"rollout bookworm/hi/0.2: advance 50% → 100%", "rollout bookworm/hi/0.2: complete 100% → 100%"} {
		if !strings.Contains(told.String(), want) {
			t.Errorf("operator not told %q:\n%s", want, told.String())
		}
	}
	if pins, err := r0.Pins(ctx); err != nil || len(pins) != 0 || bytes.Contains([]byte(told.String()), []byte("warning")) {
		t.Errorf("pins %+v, %v; told:\n%s", pins, err, told.String())
	}
}
