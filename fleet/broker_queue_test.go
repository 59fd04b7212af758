package fleet

import (
	"context"
	"reflect"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// writeQueueCap is the capacity of mochi's write queue of a client.
func writeQueueCap(cl *mqtt.Client) int {
	return reflect.ValueOf(cl).Elem().FieldByName("State").FieldByName("outbound").Cap()
}

// TestWriteQueuePerLogin: a device login, which may not subscribe, gets a
// shallow write queue (mochi's default, 8192 entries, cost 64 KiB per
// idle device); a collector, and an anonymous client where those are
// allowed, the deep one the backpressure needs.
func TestWriteQueuePerLogin(t *testing.T) {
	for _, anonymous := range []bool{false, true} {
		s := openTestStore(t, StoreOptions{})
		dev, err := s.IssueCredentials(t.Context(), RoleDevice, "lamp1")
		if err != nil {
			t.Fatal(err)
		}
		coll, err := s.IssueCredentials(t.Context(), RoleCollector, "collector")
		if err != nil {
			t.Fatal(err)
		}
		b, err := StartBroker(context.Background(), BrokerOptions{Addr: "127.0.0.1:0", Auth: s, AllowAnonymous: anonymous})
		if err != nil {
			t.Fatal(err)
		}
		srv := b.engine.(*mqtt.Server)
		logins := []struct {
			id, user, pass string
			want           int
		}{
			{"lamp1", "lamp1", dev[0].Secret, shallowWritesPending},
			{AgentClientIDPrefix + "lamp1", "lamp1", dev[0].Secret, shallowWritesPending},
			{"collector", "collector", coll[0].Secret, deepWritesPending},
		}
		if anonymous {
			logins = append(logins, struct {
				id, user, pass string
				want           int
			}{"anon", "", "", deepWritesPending})
		}
		for _, l := range logins {
			conn, _, err := rawConnect(b.URL(), l.id, 5, l.user, l.pass)
			if err != nil {
				t.Fatal(err)
			}
			cl, ok := srv.Clients.Get(l.id)
			if !ok {
				t.Fatalf("client %s not known to the broker", l.id)
			}
			if got := writeQueueCap(cl); got != l.want {
				t.Errorf("anonymous=%v: %s logged in as %q: write queue of %d, want %d", anonymous, l.id, l.user, got, l.want)
			}
			conn.Close()
		}
		b.Close()
	}
}
