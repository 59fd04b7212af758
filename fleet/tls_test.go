package fleet

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestTLSClientCertificates: over mqtts, a device logs in with a
// certificate naming it, a collector with one marked as collector; the
// ACL applies as for passwords, and a certificate from another CA is
// refused.
func TestTLSClientCertificates(t *testing.T) {
	ca := testutil.NewCA(t, "test CA")
	srvTLS := &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "broker").TLS},
		ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", TLS: srvTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s := openTestStore(t, StoreOptions{})
	collCert := ca.Client(t, pkix.Name{CommonName: "collector1", OrganizationalUnit: []string{CertCollectorOU}}).TLS
	runCollector(t, s, CollectorOptions{Broker: b.URL(), ClientID: "collector1", TLS: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{collCert}}})

	client := func(cert tls.Certificate) deviceOptions {
		return deviceOptions{tls: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}}}
	}
	d, err := connectDevice(t.Context(), b.URL(), "lampT", client(ca.Client(t, pkix.Name{CommonName: "lampT"}).TLS))
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	if err := spoofThenOwn(t, t.Context(), s, d, "lampU", "lampU"); err == nil {
		t.Error("certificate login could publish for another device")
	}
	if st := s.Stats(); st.Stored != 1 || st.Spoofed != 0 {
		t.Errorf("stats %+v", st)
	}
	// No certificate, no password: refused (anonymous is off).
	if d, err := connectDevice(t.Context(), b.URL(), "anon", deviceOptions{tls: &tls.Config{RootCAs: ca.Pool()}}); err == nil {
		d.close()
		t.Error("anonymous TLS client accepted")
	}
	// A certificate from another CA fails the handshake.
	other := testutil.NewCA(t, "test CA")
	if d, err := connectDevice(t.Context(), b.URL(), "lampT", client(other.Client(t, pkix.Name{CommonName: "lampT"}).TLS)); err == nil {
		d.close()
		t.Error("certificate from an unknown CA accepted")
	}
}
