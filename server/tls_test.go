package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
)

// testCA is a self-made certificate authority, as the course runs its own.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lampi test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverCert issues a certificate for 127.0.0.1 and localhost.
func (ca *testCA) serverCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSWithOwnCA: over HTTPS with a certificate from a CA made here, a
// Go client and apt that trust only that CA fetch and upload; a client
// that does not trust it is refused.
func TestTLSWithOwnCA(t *testing.T) {
	testutil.Heavy(t, "serves over HTTPS to Go clients and apt-get in an isolated root")
	t.Parallel()
	tr := newTestRepo(t)
	ts := newTokens(t, tr.dir)
	tok := mustToken(t, ts, "ci", "upload:stable")
	s, err := New(Options{Dir: tr.dir, Now: time.Now, Tokens: ts})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ca := newTestCA(t)
	hs := httptest.NewUnstartedServer(s)
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}, MinVersion: tls.VersionTLS12}
	hs.StartTLS()
	defer hs.Close()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if r, b := get(t, trusting, hs.URL+"/dists/stable/InRelease"); r.StatusCode != 200 || !strings.Contains(string(b), "Codename: bookworm") {
		t.Fatalf("HTTPS GET: %s", r.Status)
	}
	res, err := (&upload.Client{BaseURL: hs.URL, Token: tok, HTTPClient: trusting}).Upload(context.Background(), "stable", "hi_0.1_all.deb", bytes.NewReader(buildDeb(t, "hi", "0.1", "")))
	if err != nil || res.Action != "add" {
		t.Fatalf("HTTPS upload: %+v %v", res, err)
	}
	// The system roots do not know our CA.
	strict := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}
	if _, err := strict.Get(hs.URL + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client not trusting the CA connected: %v", err)
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	mustWrite(t, caFile, ca.pem)
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", tr.pub, hs.URL), "-o", "Acquire::https::CaInfo="+caFile)
	apt.Update()
	apt.MustRun("install", "hi")
	// Without the CA, apt refuses the server.
	noCA := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", tr.pub, hs.URL))
	if out, _ := noCA.Run("update"); !strings.Contains(out, "Err:") && !strings.Contains(out, "W:") {
		t.Fatalf("apt without the CA did not complain:\n%s", out)
	}
}
