package agentcli_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestEndToEndEmbeddedBroker: the same update as TestEndToEnd, reported
// to the fleet's embedded broker with a device credential, collected into
// the fleet store; the fleet report shows the device on 0.2.
func TestEndToEndEmbeddedBroker(t *testing.T) {
	// The package's end to end under -short: lampi-agent once, a real
	// apt-get and dpkg, the embedded broker, the fleet store.
	testutil.KeepInShort(t)
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := fleet.Open(filepath.Join(t.TempDir(), "fleet.db"), fleet.StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	broker, err := fleet.StartBroker(ctx, fleet.BrokerOptions{Listener: ln, Auth: store})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	const id = "lamp-fleet"
	creds, err := store.IssueCredentials(ctx, fleet.RoleDevice, id)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := store.IssueCredentials(ctx, fleet.RoleCollector, "collector-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := fleet.NewCollector(store, fleet.CollectorOptions{Broker: broker.URL(), ClientID: "collector-1",
		Username: coll[0].ID, Password: []byte(coll[0].Secret)})
	if err != nil {
		t.Fatal(err)
	}
	go c.Run(ctx)
	select {
	case <-c.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("collector not ready")
	}

	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	debs := t.TempDir()
	hi01 := at.BuildHi(t, debs, "0.1", at.HiOptions{})
	r.Publish(hi01)
	pw := filepath.Join(t.TempDir(), "mqtt-password")
	os.WriteFile(pw, []byte(creds[0].Secret+"\n"), 0o600)
	d := at.NewDevice(t, r, id, "broker = "+broker.URL()+"\nbroker_username = "+creds[0].ID+"\nbroker_password_file = "+pw+"\n")
	d.InstallDeb(hi01)
	r.Publish(at.BuildHi(t, debs, "0.2", at.HiOptions{}))
	if code, out, errs := run(t, clock, "once", "--config", d.Conf); code != agentcli.ExitUpdated || errs != "" {
		t.Fatalf("once: exit %d\n%s%s", code, out, errs)
	}
	if got := d.Hi(); got != "Hello Deb! Version 0.2" {
		t.Fatalf("hi says %q", got)
	}
	// The collector commits asynchronously: wait for the report to land.
	deadline := time.Now().Add(60 * time.Second)
	for {
		rep, err := store.Report(ctx, fleet.ReportOptions{Package: "hi", Newest: map[string]string{"hi": "0.2"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Packages) == 1 && rep.Packages[0].UpToDate == 1 {
			dev, err := store.Device(ctx, id)
			if err != nil || dev.State.Result != state.ResultUpdated || dev.State.Packages["hi"] != "0.2" {
				t.Fatalf("device %+v %v", dev, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fleet report never showed %s on hi 0.2: %+v", id, rep)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
