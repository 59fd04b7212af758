package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// childEnv makes the test binary a standalone collector process, so that
// a test can SIGKILL it: no deferred code, no DISCONNECT, no pending
// acknowledgement sent.
const childEnv = "LAMPI_PGSTORE_TEST_COLLECTOR"

type childConfig struct {
	DSN, Broker, ClientID, Group string
	ReadyFile                    string
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		if err := runChild(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "child collector:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testutil.FastRaceExit()
	os.Exit(m.Run())
}

func runChild(cfgJSON string) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return err
	}
	ctx := context.Background()
	s, err := Open(ctx, cfg.DSN, Options{})
	if err != nil {
		return err
	}
	c, err := fleet.NewCollector(s, fleet.CollectorOptions{Broker: cfg.Broker, ClientID: cfg.ClientID, Group: cfg.Group, SessionExpiry: time.Hour})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-errc:
		return err
	}
	if err := os.WriteFile(cfg.ReadyFile, nil, 0o600); err != nil {
		return err
	}
	return <-errc
}

// child is a collector process.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func startChild(t *testing.T, cfg childConfig) *child {
	t.Helper()
	cfg.ReadyFile = filepath.Join(t.TempDir(), "ready")
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(c.exited) }()
	t.Cleanup(c.kill)
	waitFor(t, "collector "+cfg.ClientID+" to subscribe", func() bool {
		select {
		case <-c.exited:
			t.Fatalf("collector %s exited: %v", cfg.ClientID, cmd.ProcessState)
		default:
		}
		_, err := os.Stat(cfg.ReadyFile)
		return err == nil
	})
	return c
}

// kill ends the collector with SIGKILL.
func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.exited
}

// waitFor polls cond; the deadline only bounds a failing test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// publisher sends the reports of many devices over one MQTT connection
// (an anonymous broker without ACLs: the collector checks only that a
// topic's id and its report's agree).
type publisher struct {
	conn net.Conn
	cl   *paho.Client
}

func dialPublisher(t *testing.T, ctx context.Context, broker, id string) *publisher {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(broker, "mqtt://"))
	if err != nil {
		t.Fatal(err)
	}
	cl := paho.NewClient(paho.ClientConfig{ClientID: id, Conn: conn, PacketTimeout: 2 * time.Minute})
	if _, err := cl.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 120}); err != nil {
		t.Fatal(err)
	}
	p := &publisher{conn: conn, cl: cl}
	t.Cleanup(func() { cl.Disconnect(&paho.Disconnect{}); conn.Close() })
	return p
}

func (p *publisher) report(ctx context.Context, st state.State) error {
	b, err := state.Encode(st)
	if err != nil {
		return err
	}
	_, err = p.cl.Publish(ctx, &paho.Publish{Topic: state.StateTopic(state.DefaultPrefix, st.Device), QoS: 1, Retain: true, Payload: b})
	return err
}

// testTwoBrokers: devices split over two Mosquitto brokers, a $share
// group of two collector processes on each, one PostgreSQL. One
// collector is SIGKILLed in the middle of a round and started again
// later; at the end the fleet report of the database sees every device
// at its last report, and the collectors' counters add up.
func testTwoBrokers(t *testing.T) {
	testutil.Heavy(t, "runs two Mosquitto brokers and four collector processes on one PostgreSQL")
	dsn := newDB(t)
	// The schema first, so that the collectors do not all wait on it.
	s := openTest(t, dsn, Options{})
	brokers := []string{
		testutil.StartMosquitto(t, "allow_anonymous true", "max_inflight_messages 0").URL,
		testutil.StartMosquitto(t, "allow_anonymous true", "max_inflight_messages 0").URL,
	}
	cfg := func(b int, n int) childConfig {
		return childConfig{DSN: dsn, Broker: brokers[b], ClientID: fmt.Sprintf("pg-collector-%c%d", 'a'+b, n), Group: "fleet"}
	}
	collectors := []*child{startChild(t, cfg(0, 1)), startChild(t, cfg(0, 2)), startChild(t, cfg(1, 1)), startChild(t, cfg(1, 2))}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const devices, rounds = 400, 6
	pubs := make([]*publisher, 4) // two per broker
	for i := range pubs {
		pubs[i] = dialPublisher(t, ctx, brokers[i/2], fmt.Sprintf("publisher-%d", i))
	}
	// Device i reports to broker i%2, through publisher (i%2)*2 + i/2%2.
	report := func(i int, seq uint64) state.State {
		id := fmt.Sprintf("lamp%04d", i)
		return state.State{Seq: seq, Time: time.Date(2026, 11, 22, 10, 0, int(seq), 0, time.UTC), Device: id, Agent: "0.3.0",
			Arch: "armhf", Result: state.ResultUpToDate, Packages: map[string]string{"lampi-service": fmt.Sprintf("1.%d", seq)}}
	}
	for seq := uint64(1); seq <= rounds; seq++ {
		errc := make(chan error, len(pubs))
		for p := range pubs {
			go func() {
				for i := range devices {
					if i%2 != p/2 || i/2%2 != p%2 {
						continue
					}
					if seq == 3 && p == 0 && i == devices/2 {
						collectors[0].kill() // in the middle of a round
					}
					if err := pubs[p].report(ctx, report(i, seq)); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
		}
		for range pubs {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if seq == 4 {
			// Back with its persistent session: the broker re-sends
			// what it queued and what was not acknowledged.
			collectors[0] = startChild(t, cfg(0, 1))
		}
	}

	at := func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }
	want := fmt.Sprintf("1.%d", rounds)
	var rep *fleet.Report
	waitFor(t, "every device's last report in the database", func() bool {
		var err error
		rep, err = s.Report(ctx, fleet.ReportOptions{Now: at})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Devices == devices && len(rep.Packages) == 1 && len(rep.Packages[0].Versions) == 1 &&
			rep.Packages[0].Versions[0].Version == want
	})
	devs, err := s.Devices(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.State.Seq != rounds {
			t.Errorf("%s: seq %d, want %d", d.ID, d.State.Seq, rounds)
		}
	}
	st := s.Stats()
	if st.Devices != devices || st.Stored < devices || st.Stored+st.Stale != st.Received || st.Received < devices*rounds {
		t.Errorf("stats %+v: every report must be received at least once", st)
	}
	t.Logf("stats after a killed collector: %+v", st)
}
