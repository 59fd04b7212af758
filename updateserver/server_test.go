package updateserver

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
)

// upload POSTs one .deb to the upload API and returns the status and body.
func (r *running) upload(t *testing.T, codename, token, filename string, pkg []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+"/api/v1/repos/"+codename+"/packages", bytes.NewReader(pkg))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/vnd.debian.binary-package")
	req.Header.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestServer runs the whole server on 127.0.0.1:0 with the embedded
// broker: the published InRelease verifies with gpgv; an upload to the
// suite name, signed with the passphrase-protected key, is published and
// its InRelease verifies; a device's report reaches the fleet report,
// measured against the newest published version; renewal says that the
// distribution has no ValidFor; ending the context shuts everything
// down, and Close releases the broker's port and the fleet database.
func TestServer(t *testing.T) {
	base, keyring := testRepo(t)
	layout := repo.Layout{Base: base}
	secret, _, err := (&server.TokenStore{Path: layout.Tokens(), Now: time.Now}).Create("ci", []string{"upload:stable"})
	if err != nil {
		t.Fatal(err)
	}
	var told notes
	s, err := New(Config{Dir: base, Now: time.Now, Notef: told.notef, Passphrase: passphrase, RenewInterval: time.Hour,
		Fleet: &FleetConfig{MQTTListen: "127.0.0.1:0", AllowAnonymous: true, Dashboard: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.BrokerURL(), "mqtt://127.0.0.1:") || s.FleetDB() != layout.FleetDB() {
		t.Fatalf("broker %q, fleet database %q", s.BrokerURL(), s.FleetDB())
	}
	r := start(t, s)

	code, inRelease := r.get(t, "/dists/bookworm/InRelease")
	if code != http.StatusOK {
		t.Fatalf("GET InRelease: %d", code)
	}
	gpgv(t, keyring, inRelease)

	pkg := buildDeb(t, "hi", "0.2")
	if code, body := r.upload(t, "stable", "wrong-token", "hi_0.2_all.deb", pkg); code != http.StatusUnauthorized {
		t.Fatalf("upload with a wrong token: %d %s", code, body)
	}
	if code, body := r.upload(t, "stable", secret, "hi_0.2_all.deb", pkg); code != http.StatusCreated {
		t.Fatalf("upload: %d %s", code, body)
	}
	code, inRelease = r.get(t, "/dists/bookworm/InRelease")
	if code != http.StatusOK || !bytes.Contains(inRelease, []byte("main/binary-amd64/Packages")) {
		t.Fatalf("GET InRelease after the upload: %d\n%s", code, inRelease)
	}
	gpgv(t, keyring, inRelease)
	if code, got := r.get(t, "/pool/main/h/hi/hi_0.2_all.deb"); code != http.StatusOK || !bytes.Equal(got, pkg) {
		t.Fatalf("GET the uploaded package: %d, %d bytes (want %d)", code, len(got), len(pkg))
	}

	publishState(t, s.BrokerAddr().String(), "pi1", map[string]string{"hi": "0.1"})
	if newest, behind := r.newestInReport(t, "hi"); newest != "0.2" || len(behind) != 1 || behind[0] != "pi1" {
		t.Fatalf("fleet report: newest %q, behind %v; want 0.2, [pi1]", newest, behind)
	}
	if code, body := r.get(t, "/"); code != http.StatusOK || !bytes.Contains(body, []byte("LAMPi fleet")) {
		t.Fatalf("GET / (dashboard): %d\n%.300s", code, body)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(told.String(), "note: bookworm has no ValidFor") {
		if time.Now().After(deadline) {
			t.Fatalf("no note on the missing ValidFor within 2 minutes:\n%s", told.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	brokerAddr := s.BrokerAddr().String()
	if err := r.shutdown(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(told.String(), "shutting down (finishing requests in flight)") {
		t.Errorf("shutdown not told:\n%s", told.String())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://")); err == nil {
		c.Close()
		t.Error("the HTTP listener still accepts after Run returned")
	}
	if c, err := net.Dial("tcp", brokerAddr); err == nil {
		c.Close()
		t.Error("the broker still accepts after Close")
	}
	st, err := fleet.Open(layout.FleetDB(), fleet.StoreOptions{Now: time.Now})
	if err != nil {
		t.Fatalf("the fleet database is still held after Close: %v", err)
	}
	st.Close()
}

// TestServerExternalBroker: with FleetConfig.Broker the server starts no
// broker of its own; its collector subscribes to a real Mosquitto and
// commits the reports devices publish there.
func TestServerExternalBroker(t *testing.T) {
	m := testutil.StartMosquitto(t, "allow_anonymous true")
	base, _ := testRepo(t)
	s, err := New(Config{Dir: base, Now: time.Now, Fleet: &FleetConfig{Broker: m.URL, ClientID: "lampi-serve-test", Dashboard: true}})
	if err != nil {
		t.Fatal(err)
	}
	if s.BrokerAddr() != nil || s.BrokerURL() != "" {
		t.Fatalf("an embedded broker runs beside %s: %v", m.URL, s.BrokerAddr())
	}
	r := start(t, s)
	// The collector may subscribe after the device published: the report
	// is retained, so it arrives either way.
	publishState(t, m.Addr, "pi2", map[string]string{"lamp": "1.0"})
	if newest, behind := r.newestInReport(t, "lamp"); newest != "" || len(behind) != 0 {
		t.Fatalf("fleet report for an unpublished package: newest %q, behind %v", newest, behind)
	}
	if err := r.shutdown(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestNewFails: New names what could not start with a sentinel, and
// releases what it had started (the fleet database can be opened again).
func TestNewFails(t *testing.T) {
	base, _ := testRepo(t)
	layout := repo.Layout{Base: base}
	if _, err := New(Config{Now: time.Now}); !errors.Is(err, ErrConfig) {
		t.Errorf("New without Dir: %v, want ErrConfig", err)
	}

	held, err := fleet.Open(layout.FleetDB(), fleet.StoreOptions{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Dir: base, Now: time.Now, Fleet: &FleetConfig{MQTTListen: "127.0.0.1:0"}})
	held.Close()
	if !errors.Is(err, ErrFleetDB) || !strings.HasPrefix(err.Error(), "fleet database: ") {
		t.Errorf("New with the fleet database held: %v, want ErrFleetDB", err)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = New(Config{Dir: base, Now: time.Now, Fleet: &FleetConfig{MQTTListen: taken.Addr().String()}})
	if !errors.Is(err, ErrBroker) || !errors.Is(err, fleet.ErrBroker) {
		t.Errorf("New with the broker's address taken: %v, want ErrBroker", err)
	}
	_, err = New(Config{Dir: base, Now: time.Now, Fleet: &FleetConfig{Broker: "ftp://nowhere"}})
	if !errors.Is(err, ErrCollector) || !strings.HasPrefix(err.Error(), "collector: ") {
		t.Errorf("New with a broker URL that is not MQTT: %v, want ErrCollector", err)
	}
	st, err := fleet.Open(layout.FleetDB(), fleet.StoreOptions{Now: time.Now})
	if err != nil {
		t.Fatalf("a failed New left the fleet database held: %v", err)
	}
	st.Close()
}

// TestRunFinishesRequestsInFlight: an upload whose body is still arriving
// when Run's context ends is finished and published, the listener is
// closed at once, and Run returns nil once the upload is answered.
func TestRunFinishesRequestsInFlight(t *testing.T) {
	base, keyring := testRepo(t)
	layout := repo.Layout{Base: base}
	secret, _, err := (&server.TokenStore{Path: layout.Tokens(), Now: time.Now}).Create("ci", []string{"upload:bookworm"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Dir: base, Now: time.Now, Passphrase: passphrase})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, s)
	pkg := buildDeb(t, "hi", "0.3")
	body, feed := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, r.url+"/api/v1/repos/bookworm/packages", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/vnd.debian.binary-package")
	req.ContentLength = int64(len(pkg))
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("upload: %v", err)
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	if _, err := feed.Write(pkg[:100]); err != nil {
		t.Fatal(err)
	}
	// The upload's handler runs once it has made its staging directory.
	waitFor(t, "the upload to be staged", func() bool {
		m, _ := filepath.Glob(filepath.Join(layout.Uploads(), "upload-*"))
		return len(m) > 0
	})
	r.stop()
	addr := strings.TrimPrefix(r.url, "http://")
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-r.done:
		t.Fatalf("Run returned (%v) while an upload was in flight", err)
	default:
	}
	if _, err := feed.Write(pkg[100:]); err != nil {
		t.Fatal(err)
	}
	feed.Close()
	if code := <-answered; code != http.StatusCreated {
		t.Fatalf("upload in flight at shutdown: %d, want 201", code)
	}
	if err := r.shutdown(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	inRelease, err := os.ReadFile(layout.Release("bookworm", "InRelease"))
	if err != nil {
		t.Fatal(err)
	}
	gpgv(t, keyring, inRelease)
	if _, err := os.Stat(filepath.Join(layout.Pool(), "main/h/hi/hi_0.3_all.deb")); err != nil {
		t.Fatalf("the upload in flight was not published: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 2 minutes for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
