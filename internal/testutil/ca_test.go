package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

// TestCA: a server certificate verifies for every loopback name against
// the CA's pool and not against another CA's; the files load as a key
// pair; a client certificate is for client authentication only.
func TestCA(t *testing.T) {
	ca, other := NewCA(t, "test CA"), NewCA(t, "other CA")
	srv := ca.Server(t, "broker")
	leaf, err := x509.ParseCertificate(srv.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
		opts := x509.VerifyOptions{Roots: ca.Pool(), DNSName: name}
		if _, err := leaf.Verify(opts); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
		opts.Roots = other.Pool()
		if _, err := leaf.Verify(opts); err == nil {
			t.Errorf("server certificate verified against another CA")
		}
	}
	if _, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile); err != nil {
		t.Errorf("server files: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.PEM) {
		t.Errorf("CA PEM does not parse")
	}
	cl := ca.Client(t, pkix.Name{CommonName: "lamp1"})
	c, _ := x509.ParseCertificate(cl.TLS.Certificate[0])
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Errorf("client certificate verified as a server certificate")
	}
}
