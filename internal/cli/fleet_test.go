package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fleetMosquitto(t *testing.T) string {
	t.Helper()
	return testutil.StartMosquitto(t, "allow_anonymous true").URL
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Out: &out, Err: &errb, In: strings.NewReader(""), Getenv: func(string) string { return "" },
		Now: time.Now, IsTerminal: func(any) bool { return false }}
	code = Main(args, env)
	return out.String(), errb.String(), code
}

// TestFleetCollectAndReport runs `fleet collect` against a real Mosquitto,
// has devices report through it, and reads the result back with the
// query verbs, from the API (--server) and from the database (--db).
func TestFleetCollectAndReport(t *testing.T) {
	testFleetCollectAndReport(t, "--db", filepath.Join(t.TempDir(), "fleet.db"))
}

// TestFleetCollectAndReportPostgres is the same with the fleet database
// on a private PostgreSQL, named with --fleet-db and a URL holding a
// password that nothing may print.
func TestFleetCollectAndReportPostgres(t *testing.T) {
	p := testutil.StartPostgres(t)
	dsn := p.CreateDB(t, "fleet")
	dsn = strings.Replace(dsn, "postgres://lampi@", "postgres://lampi:pw-never-printed@", 1)
	errb := testFleetCollectAndReport(t, "--fleet-db", dsn)
	if strings.Contains(errb, "pw-never-printed") {
		t.Errorf("the database password was printed:\n%s", errb)
	}
	if _, stderr, code := runCLI(t, "fleet", "report", "--fleet-db", strings.Replace(dsn, "/fleet?", "/nosuchdb?", 1)); code == 0 ||
		strings.Contains(stderr, "pw-never-printed") || !strings.Contains(stderr, "nosuchdb") {
		t.Errorf("report from a missing database: %d\n%s", code, stderr)
	}
}

// testFleetCollectAndReport runs the test with the fleet database db
// named by dbFlag, and returns what the collector wrote to stderr.
func testFleetCollectAndReport(t *testing.T, dbFlag, db string) string {
	broker := fleetMosquitto(t)
	var errb syncBuffer
	env := &Env{Out: &bytes.Buffer{}, Err: &errb, In: strings.NewReader(""), Getenv: func(string) string { return "" },
		Now: time.Now, IsTerminal: func(any) bool { return false }}
	root := NewRootCmd(env)
	root.SetArgs([]string{"fleet", "collect", "--broker", broker, dbFlag, db, "--client-id", "cli-test", "--listen", "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() { cancel(); <-done }()
	apiRe := regexp.MustCompile(`fleet API on (http://[0-9.:]+)/`)
	var server string
	for i := 0; !strings.Contains(errb.String(), "msg=subscribed"); i++ {
		if i > 1000 {
			t.Fatalf("collector did not subscribe:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	server = apiRe.FindStringSubmatch(errb.String())[1]

	// Six devices: lamp1..lamp6; hi 0.1 on lamp1 and lamp2, 0.2 elsewhere;
	// lamp3's update failed; each sends seq 2 then a late seq 1.
	sent := map[string]state.State{}
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("lamp%d", i)
		conn, err := net.Dial("tcp", strings.TrimPrefix(broker, "mqtt://"))
		if err != nil {
			t.Fatal(err)
		}
		cl := paho.NewClient(paho.ClientConfig{ClientID: id, Conn: conn})
		if _, err := cl.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}); err != nil {
			t.Fatal(err)
		}
		defer func() { cl.Disconnect(&paho.Disconnect{}); conn.Close() }()
		for _, seq := range []uint64{2, 1} {
			st := state.State{Seq: seq, Time: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Device: id, Agent: "0.3.0", Arch: "armhf",
				Packages: map[string]string{"hi": "0.2", "lampi-service": "1.0"}, Result: state.ResultUpToDate}
			if i <= 2 {
				st.Packages["hi"] = "0.1"
			}
			if i == 3 {
				st.Result, st.Error, st.Target = state.ResultFailed, "dpkg: error processing package hi", map[string]string{"hi": "0.3"}
			}
			b, _ := state.Encode(st)
			if _, err := cl.Publish(ctx, &paho.Publish{Topic: state.StateTopic("devices", id), QoS: 1, Retain: true, Payload: b}); err != nil {
				t.Fatal(err)
			}
			if seq == 2 {
				sent[id] = st
			}
		}
		if _, err := cl.Publish(ctx, &paho.Publish{Topic: state.StatusTopic("devices", id), QoS: 1, Retain: true, Payload: []byte("online")}); err != nil {
			t.Fatal(err)
		}
	}
	api := &fleet.APIClient{Base: server}
	for i := 0; ; i++ {
		st, err := api.Stats(ctx)
		// At least once: a report may be delivered twice (live and as
		// retained); the second copy is stale.
		if err == nil && st.Received >= 12 && st.Status >= 6 {
			if st.Stored != 6 || st.Stale < 6 || st.Stored+st.Stale != st.Received {
				t.Fatalf("stats %+v", st)
			}
			break
		}
		if i > 1000 {
			t.Fatalf("reports not stored: %+v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Through the API of the running collector.
	out, stderr, code := runCLI(t, "fleet", "device", "lamp3", "--server", server)
	if code != 0 || !strings.Contains(out, "error:         dpkg: error processing package hi") || !strings.Contains(out, "package:       hi 0.2") {
		t.Errorf("fleet device --server: %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := runCLI(t, "fleet", "device", "nosuch", "--server", server); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("unknown device: %d %s", code, stderr)
	}

	// Stop the collector; then the database itself.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	if !strings.Contains(errb.String(), "stopped: 6 devices; 12 reports received, 6 stored, 6 stale") {
		t.Errorf("collector summary:\n%s", errb.String())
	}
	out, stderr, code = runCLI(t, "fleet", "report", dbFlag, db, "--json", "--newest", "hi=0.2")
	if code != 0 {
		t.Fatalf("report: %d %s", code, stderr)
	}
	var rep fleet.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := []fleet.PackageReport{
		{Name: "hi", Newest: "0.2", Versions: []fleet.VersionShare{{Version: "0.2", Count: 4, Share: 4.0 / 6}, {Version: "0.1", Count: 2, Share: 2.0 / 6}},
			Installed: 6, UpToDate: 4, Behind: []string{"lamp1", "lamp2"}},
		{Name: "lampi-service", Versions: []fleet.VersionShare{{Version: "1.0", Count: 6, Share: 1}}, Installed: 6, Behind: []string{}},
	}
	if rep.Devices != 6 || rep.Online != 6 || rep.Offline != 0 || len(rep.OfflineDevices) != 0 || !reflect.DeepEqual(rep.Packages, want) {
		t.Errorf("report:\n%s", out)
	}
	if len(rep.FailedDevices) != 1 || rep.FailedDevices[0].ID != "lamp3" || rep.FailedDevices[0].Error != sent["lamp3"].Error {
		t.Errorf("failed: %+v", rep.FailedDevices)
	}
	out, _, code = runCLI(t, "fleet", "devices", dbFlag, db, "--json")
	var devs []fleet.Device
	if err := json.Unmarshal([]byte(out), &devs); err != nil || code != 0 || len(devs) != 6 {
		t.Fatalf("devices: %d %v\n%s", code, err, out)
	}
	for _, d := range devs {
		if !reflect.DeepEqual(d.State, sent[d.ID]) || !d.Online {
			t.Errorf("%s: got %+v, sent %+v", d.ID, d.State, sent[d.ID])
		}
	}
	out, _, _ = runCLI(t, "fleet", "report", dbFlag, db, "--newest", "hi=0.2")
	for _, line := range []string{"6 devices: 6 online, 0 offline", "hi (newest 0.2): 6 installed, 4 up to date, 2 behind", "  0.1  2  33.3%",
		"failed (1):", "  lamp3  failed  dpkg: error processing package hi"} {
		if !strings.Contains(out, line) {
			t.Errorf("report text lacks %q:\n%s", line, out)
		}
	}
	out, _, _ = runCLI(t, "fleet", "report", dbFlag, db, "--csv", "--newest", "hi=0.2")
	if !strings.Contains(out, "package,version,count,share,newest,behind\nhi,0.2,4,0.6667,0.2,false\nhi,0.1,2,0.3333,0.2,true\n") {
		t.Errorf("csv:\n%s", out)
	}
	out, _, _ = runCLI(t, "fleet", "history", "lamp3", dbFlag, db)
	for _, line := range []string{"#2  hi 0.2 installed", "#2  update failed (hi=0.3): dpkg: error processing package hi"} {
		if !strings.Contains(out, line) {
			t.Errorf("history lacks %q:\n%s", line, out)
		}
	}
	return errb.String()
}
