package cli

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
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// TestServeTLS runs "serve --tls-cert --tls-key" with a certificate from
// a CA made here: a client trusting only that CA fetches Release, one
// that does not is refused; cancelling the context stops the server.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "repo")
	if err := repo.Init(base, repo.InitOptions{Codename: "bookworm", Suite: "stable", Architectures: []string{"amd64"}}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(base, repo.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Export(context.Background()); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature},
		caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	addrFile := filepath.Join(dir, "addr")
	var stderr bytes.Buffer
	env := &Env{In: strings.NewReader(""), Out: io.Discard, Err: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
	o := &serveOptions{env: env, repo: base, listen: "127.0.0.1:0", tlsCert: certFile, tlsKey: keyFile, maxUpload: "1MB",
		lockTimeout: time.Second, accessLog: "off", logFormat: "json", addrFile: addrFile,
		fleet: serveFleetOptions{mqttListen: "127.0.0.1:0"}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, o) }()
	var addr []byte
	for i := 0; i < 400 && len(addr) == 0; i++ {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		addr, _ = os.ReadFile(addrFile)
	}
	url := "https://" + strings.TrimSpace(string(addr)) + "/dists/bookworm/Release"
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("no address written: %q", addr)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET over TLS: %s", resp.Status)
	}
	if _, err := (&http.Client{}).Get(url); err == nil {
		t.Fatalf("a client not trusting the CA connected")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(stderr.String(), "on https://127.0.0.1:") || !strings.Contains(stderr.String(), "stopped") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}
