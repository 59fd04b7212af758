package agentcli_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// tlsUpdate runs "once" for a fresh device (hi 0.1 installed, 0.2
// published) with extra configuration lines and returns the device, the
// exit code and the outputs.
func tlsUpdate(t *testing.T, id, extra string) (*at.Device, int, string, string) {
	t.Helper()
	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	debs := t.TempDir()
	hi01 := at.BuildHi(t, debs, "0.1", at.HiOptions{})
	r.Publish(hi01)
	d := at.NewDevice(t, r, id, extra)
	d.InstallDeb(hi01)
	r.Publish(at.BuildHi(t, debs, "0.2", at.HiOptions{}))
	code, out, errs := run(t, clock, "once", "--config", d.Conf)
	if got := d.Hi(); got != "Hello Deb! Version 0.2" {
		t.Errorf("hi says %q after once (exit %d)\n%s%s", got, code, out, errs)
	}
	return d, code, out, errs
}

// TestReportOverTLS: the agent reports to a real Mosquitto over mqtts://,
// verifying the broker against broker_ca; a broker certificate from
// another CA is refused — the update still happens and the warning says
// why; with require_certificate the agent logs in with its client
// certificate (broker_cert/broker_key), whose Common Name is its identity.
func TestReportOverTLS(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "lampi test CA")
	srv := ca.Server(t, "broker")
	srvCert, srvKey := srv.CertFile, srv.KeyFile
	plain := testutil.FreePort(t)
	// TLS on the first listener; a plain loopback listener for the
	// test's subscriber.
	mq := testutil.StartMosquitto(t, "cafile "+ca.File, "certfile "+srvCert, "keyfile "+srvKey,
		"tls_version tlsv1.2", fmt.Sprintf("listener %d 127.0.0.1", plain), "allow_anonymous true")
	sub := at.Subscribe(t, fmt.Sprintf("mqtt://127.0.0.1:%d", plain))
	tlsURL := "mqtts://" + mq.Addr

	t.Run("ca", func(t *testing.T) {
		t.Parallel()
		const id = "lamp-tls"
		_, code, out, errs := tlsUpdate(t, id, "broker = "+tlsURL+"\nbroker_ca = "+ca.File+"\n")
		if code != agentcli.ExitUpdated || errs != "" {
			t.Fatalf("once: exit %d\n%s%s", code, out, errs)
		}
		s := sub.WaitState(t, id, func(s state.State) bool { return s.Result == state.ResultUpdated })
		if s.Packages["hi"] != "0.2" {
			t.Errorf("state %+v", s)
		}
	})
	t.Run("wrong-ca", func(t *testing.T) {
		t.Parallel()
		other := testutil.NewCA(t, "someone else's CA")
		d, code, out, errs := tlsUpdate(t, "lamp-tls-wrong", "broker = "+tlsURL+"\nbroker_ca = "+other.File+"\nreport_timeout = 5s\n")
		if code != agentcli.ExitUpdated || !strings.Contains(out, "updated: hi 0.2") {
			t.Fatalf("the update must not depend on the broker: exit %d\n%s%s", code, out, errs)
		}
		if !strings.Contains(errs, "warning: mqtt: state") || !strings.Contains(errs, "certificate signed by unknown authority") {
			t.Errorf("the warning does not say why the report failed:\n%s", errs)
		}
		code, out, _ = run(t, nil, "status", "--config", d.Conf)
		if code != 0 || !strings.Contains(out, "not yet acknowledged by the broker") {
			t.Errorf("status: exit %d\n%s", code, out)
		}
	})
	t.Run("no-ca", func(t *testing.T) {
		// Without broker_ca the system roots are used: a private CA is
		// refused just the same.
		t.Parallel()
		_, code, _, errs := tlsUpdate(t, "lamp-tls-noca", "broker = "+tlsURL+"\nreport_timeout = 5s\n")
		if code != agentcli.ExitUpdated || !strings.Contains(errs, "certificate signed by unknown authority") {
			t.Errorf("exit %d\n%s", code, errs)
		}
	})
}

// TestReportOverTLSClientCert: Mosquitto requires a client certificate and
// takes its Common Name as the user name; the agent presents broker_cert
// and broker_key and its state arrives. Without a certificate the broker
// refuses it (and the update still happens).
func TestReportOverTLSClientCert(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "lampi test CA")
	srv := ca.Server(t, "broker")
	srvCert, srvKey := srv.CertFile, srv.KeyFile
	const id = "lamp-cert"
	cli := ca.Client(t, pkix.Name{CommonName: id})
	cliCert, cliKey := cli.CertFile, cli.KeyFile
	plain := testutil.FreePort(t)
	mq := testutil.StartMosquitto(t, "cafile "+ca.File, "certfile "+srvCert, "keyfile "+srvKey,
		"require_certificate true", "use_identity_as_username true",
		fmt.Sprintf("listener %d 127.0.0.1", plain), "allow_anonymous true")
	sub := at.Subscribe(t, fmt.Sprintf("mqtt://127.0.0.1:%d", plain))
	tlsURL := "mqtts://" + mq.Addr

	_, code, out, errs := tlsUpdate(t, id, "broker = "+tlsURL+"\nbroker_ca = "+ca.File+"\nbroker_cert = "+cliCert+"\nbroker_key = "+cliKey+"\n")
	if code != agentcli.ExitUpdated || errs != "" {
		t.Fatalf("once: exit %d\n%s%s", code, out, errs)
	}
	if s := sub.WaitState(t, id, func(s state.State) bool { return s.Result == state.ResultUpdated }); s.Packages["hi"] != "0.2" {
		t.Errorf("state %+v", s)
	}

	_, code, _, errs = tlsUpdate(t, "lamp-nocert", "broker = "+tlsURL+"\nbroker_ca = "+ca.File+"\nreport_timeout = 5s\n")
	if code != agentcli.ExitUpdated || !strings.Contains(errs, "warning: mqtt: state") || !strings.Contains(errs, "last connection attempt") {
		t.Errorf("without a client certificate: exit %d\n%s", code, errs)
	}
}

// TestReportOverTLSEmbeddedBroker: the fleet's embedded broker with TLS
// and client CAs; the agent's certificate (Common Name = device id) logs
// it in as that device, with no password, and the collector stores the
// update.
func TestReportOverTLSEmbeddedBroker(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ca := testutil.NewCA(t, "lampi fleet CA")
	srv := ca.Server(t, "broker")
	srvCert, srvKey := srv.CertFile, srv.KeyFile
	const id = "lamp-embedded-tls"
	cli := ca.Client(t, pkix.Name{CommonName: id})
	cliCert, cliKey := cli.CertFile, cli.KeyFile
	pair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	store, err := fleet.Open(filepath.Join(t.TempDir(), "fleet.db"), fleet.StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	broker, err := fleet.StartBroker(ctx, fleet.BrokerOptions{Listener: ln, Auth: store,
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	coll, err := store.IssueCredentials(ctx, fleet.RoleCollector, "collector-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := fleet.NewCollector(store, fleet.CollectorOptions{Broker: broker.URL(), ClientID: "collector-1",
		Username: coll[0].ID, Password: []byte(coll[0].Secret), TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	go c.Run(ctx)
	select {
	case <-c.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("collector not ready")
	}
	_, code, out, errs := tlsUpdate(t, id, "broker = "+broker.URL()+"\nbroker_ca = "+ca.File+"\nbroker_cert = "+cliCert+"\nbroker_key = "+cliKey+"\n")
	if code != agentcli.ExitUpdated || errs != "" {
		t.Fatalf("once: exit %d\n%s%s", code, out, errs)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		dev, err := store.Device(ctx, id)
		if err == nil && dev.State.Result == state.ResultUpdated && dev.State.Packages["hi"] == "0.2" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fleet store never showed %s on hi 0.2: %+v %v", id, dev, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
