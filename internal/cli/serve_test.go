package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
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

	ca := testutil.NewCA(t, "test CA")
	srv := ca.Server(t, "127.0.0.1")
	certFile, keyFile := srv.CertFile, srv.KeyFile

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
	pool := ca.Pool()
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
