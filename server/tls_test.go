package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
)

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
	ca := testutil.NewCA(t, "lampi test CA")
	hs := httptest.NewUnstartedServer(s)
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}, MinVersion: tls.VersionTLS12}
	hs.StartTLS()
	defer hs.Close()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
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

	caFile := filepath.Join(t.TempDir(), "ca.PEM")
	mustWrite(t, caFile, ca.PEM)
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", tr.pub, hs.URL), "-o", "Acquire::https::CaInfo="+caFile)
	apt.Update()
	apt.MustRun("install", "hi")
	// Without the CA, apt refuses the server.
	noCA := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", tr.pub, hs.URL))
	if out, _ := noCA.Run("update"); !strings.Contains(out, "Err:") && !strings.Contains(out, "W:") {
		t.Fatalf("apt without the CA did not complain:\n%s", out)
	}
}
