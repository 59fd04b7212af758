package fleet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// issue signs a certificate; server certificates are for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, subject pkix.Name, server bool) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// TestTLSClientCertificates: over mqtts, a device logs in with a
// certificate naming it, a collector with one marked as collector; the
// ACL applies as for passwords, and a certificate from another CA is
// refused.
func TestTLSClientCertificates(t *testing.T) {
	ca := newTestCA(t)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{ca.issue(t, pkix.Name{CommonName: "broker"}, true)},
		ClientCAs: ca.pool(), ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", TLS: srvTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s := openTestStore(t, StoreOptions{})
	collCert := ca.issue(t, pkix.Name{CommonName: "collector1", OrganizationalUnit: []string{CertCollectorOU}}, false)
	runCollector(t, s, CollectorOptions{Broker: b.URL(), ClientID: "collector1", TLS: &tls.Config{RootCAs: ca.pool(), Certificates: []tls.Certificate{collCert}}})

	client := func(cert tls.Certificate) deviceOptions {
		return deviceOptions{tls: &tls.Config{RootCAs: ca.pool(), Certificates: []tls.Certificate{cert}}}
	}
	d, err := connectDevice(t.Context(), b.URL(), "lampT", client(ca.issue(t, pkix.Name{CommonName: "lampT"}, false)))
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
	if d, err := connectDevice(t.Context(), b.URL(), "anon", deviceOptions{tls: &tls.Config{RootCAs: ca.pool()}}); err == nil {
		d.close()
		t.Error("anonymous TLS client accepted")
	}
	// A certificate from another CA fails the handshake.
	other := newTestCA(t)
	if d, err := connectDevice(t.Context(), b.URL(), "lampT", client(other.issue(t, pkix.Name{CommonName: "lampT"}, false))); err == nil {
		d.close()
		t.Error("certificate from an unknown CA accepted")
	}
}
