package fleet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"testing"
	"time"

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

// TestPeekedConnReads: what a client sends comes out of the listener's
// connection unchanged, the peeked CONNECT first, whatever the sizes of
// the client's writes and of mochi's reads (byte by byte through its
// 16-byte buffer, and whole packets past it, smaller and larger than the
// pooled buffer); once all that came is read, the connection holds no
// buffer; and a read deadline still ends a read that waits.
func TestPeekedConnReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	prefix := []byte("peeked CONNECT")
	pc := &peekedConn{Conn: server, pending: prefix, wait: readableWaiter(server), release: func() {}}
	if pc.wait == nil {
		t.Fatal("no readable waiter for a TCP connection")
	}

	rng := rand.New(rand.NewPCG(1, 2))
	sent := make([]byte, 256<<10)
	for i := range sent {
		sent[i] = byte(rng.Uint32())
	}
	go func() {
		rng := rand.New(rand.NewPCG(3, 4)) // the writer's own
		for rest := sent; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(3*readChunk))
			if _, err := client.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	want := append(append([]byte{}, prefix...), sent...)
	r := bufio.NewReaderSize(pc, 16)
	var got []byte
	for len(got) < len(want) {
		if len(got)%3 == 0 {
			c, err := r.ReadByte()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, c)
			continue
		}
		p := make([]byte, min(len(want)-len(got), 1+rng.IntN(3*readChunk)))
		if _, err := io.ReadFull(r, p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read differ from the bytes sent")
	}
	if r.Buffered() != 0 || pc.pooled != nil || pc.pending != nil {
		t.Fatalf("everything read, yet %d bytes buffered, pooled buffer held %v, %d bytes pending", r.Buffered(), pc.pooled != nil, len(pc.pending))
	}

	if err := pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want %v", err, os.ErrDeadlineExceeded)
	}
	if pc.pooled != nil {
		t.Fatal("a read that timed out holds the pooled buffer")
	}
	client.Close()
	pc.SetReadDeadline(time.Time{})
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("read after the client closed: %v, want EOF", err)
	}
}
