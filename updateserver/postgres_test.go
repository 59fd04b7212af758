package updateserver

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestServersShareAPostgresFleet: two servers, each with its embedded
// broker, write one PostgreSQL fleet database; a device reporting to
// either is in the report of both. FleetDB names the database without
// the password of its URL.
func TestServersShareAPostgresFleet(t *testing.T) {
	p := testutil.StartPostgres(t)
	dsn := strings.Replace(p.CreateDB(t, "fleet"), "postgres://lampi@", "postgres://lampi:pw-not-shown@", 1)
	var servers []*running
	for range 2 {
		base, _ := testRepo(t)
		s, err := New(Config{Dir: base, Now: time.Now, Passphrase: passphrase, RenewInterval: time.Hour,
			Fleet: &FleetConfig{DB: dsn, MQTTListen: "127.0.0.1:0", AllowAnonymous: true, Dashboard: true}})
		if err != nil {
			t.Fatal(err)
		}
		if db := s.FleetDB(); strings.Contains(db, "pw-not-shown") || !strings.HasPrefix(db, "postgres://lampi@127.0.0.1:") {
			t.Errorf("FleetDB %q", db)
		}
		servers = append(servers, start(t, s))
	}
	publishState(t, servers[0].s.BrokerAddr().String(), "lamp-a", map[string]string{"hi": "0.1"})
	publishState(t, servers[1].s.BrokerAddr().String(), "lamp-b", map[string]string{"hi": "0.2"})
	for _, r := range servers {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			_, body := r.get(t, "/api/v1/fleet/report?package=hi")
			var rep struct{ Devices int }
			if json.Unmarshal(body, &rep) == nil && rep.Devices == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("report of %s: %s", r.url, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
