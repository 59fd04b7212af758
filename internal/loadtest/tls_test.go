package loadtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI writes a throwaway CA and a server certificate for 127.0.0.1
// and returns their paths and the CA pool.
func testPKI(t *testing.T) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loadtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", der), write("server.key", "EC PRIVATE KEY", keyDER), pool
}

func TestRunMQTTS(t *testing.T) {
	caFile, certFile, keyFile, pool := testPKI(t)
	// As root, mosquitto reads certificates after dropping to its own user,
	// which cannot enter the test's private temporary directory.
	broker := startMosquitto(t, "cafile "+caFile, "certfile "+certFile, "keyfile "+keyFile, "allow_anonymous true")
	broker = "mqtts://" + strings.TrimPrefix(broker, "mqtt://")
	res, err := Run(context.Background(), Options{Devices: 4, Duration: time.Minute, MaxReports: 20, QoS: 1, Status: true,
		Broker: broker, TLS: &tls.Config{RootCAs: pool}, Subscribe: true, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.MQTT; m.Acked != 20 || m.Failed != 0 || m.StatusAcked != 8 {
		t.Errorf("mqtt %+v", m)
	}
	if s := res.Subscriber; s.Received != 20 {
		t.Errorf("subscriber %+v", s)
	}
	// Without the CA the broker's certificate is refused.
	_, err = Run(context.Background(), Options{Devices: 1, Duration: time.Second, Broker: broker, Now: time.Now})
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("unknown CA: %v", err)
	}
}
