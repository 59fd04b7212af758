package fleet

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// procMemory returns a process's resident set size and its peak so far
// (VmRSS, VmHWM of /proc/PID/status), in bytes.
func procMemory(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// closedByPeer waits (up to a generous deadline that only bounds a
// failing test) for the other side to close conn, and says whether it
// did; whatever the peer sends before (a DISCONNECT) is skipped.
func closedByPeer(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// hugeConnect opens a connection to addr whose CONNECT announces
// 256 MiB − 1 bytes, then streams up to n bytes of it. It returns how many
// bytes the broker let it write and whether the broker closed the
// connection.
func hugeConnect(addr string, n int) (sent int, closed bool, err error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{0x10, 0xff, 0xff, 0xff, 0x7f}); err != nil {
		return 0, true, nil
	}
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	conn.SetWriteDeadline(time.Now().Add(2 * time.Minute))
	for sent < n {
		k, err := conn.Write(chunk)
		sent += k
		if err != nil {
			break // the broker closed the connection
		}
	}
	return sent, closedByPeer(conn), nil
}

// TestBrokerMemoryBeforeLogin performs the attack of issue 14 §1 on a
// broker process: connections whose CONNECT announces 256 MiB and then
// streams bytes. Without a packet size limit the broker allocates and
// fills the buffer before any credential is checked (4 sockets took serve
// from 221 MB to 1,041 MB). The broker must close them after the header
// and its memory must stay where it was; a device still logs in.
func TestBrokerMemoryBeforeLogin(t *testing.T) {
	const attackers, perSocket = 4, 32 << 20
	attack := func(t *testing.T, pid int, addr string) {
		_, before := procMemory(t, pid)
		var wg sync.WaitGroup
		results := make([]string, attackers)
		for i := range attackers {
			wg.Go(func() {
				sent, closed, err := hugeConnect(addr, perSocket)
				switch {
				case err != nil:
					results[i] = err.Error()
				case !closed || sent >= perSocket:
					results[i] = fmt.Sprintf("the broker read %d MiB of an oversized CONNECT and kept the connection open (closed: %v)", sent>>20, closed)
				}
			})
		}
		wg.Wait()
		for i, r := range results {
			if r != "" {
				t.Errorf("attacker %d: %s", i, r)
			}
		}
		rss, after := procMemory(t, pid)
		t.Logf("broker peak resident memory %d MiB before the attack, %d MiB after (%d MiB now)", before>>20, after>>20, rss>>20)
		if after-before > 16<<20 {
			t.Errorf("the broker's peak memory grew by %d MiB during the attack, want almost nothing", (after-before)>>20)
		}
	}

	t.Run("embedded", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "fleet.db")
		s, err := Open(db, StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		creds, err := s.IssueCredentials(t.Context(), RoleDevice, "lampA")
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		child := startChildCollector(t, childConfig{DB: db, Listen: addr, Auth: true})
		attack(t, child.cmd.Process.Pid, addr)
		// The broker still serves its devices.
		d, err := connectDevice(t.Context(), "mqtt://"+addr, "lampA", deviceOptions{user: "lampA", pass: creds[0].Secret})
		if err != nil {
			t.Fatalf("a device cannot log in after the attack: %v", err)
		}
		defer d.close()
		if err := d.publish(t.Context(), "lampA", mustEncode(t, state.State{Seq: 1, Time: t0, Device: "lampA"})); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the report after the attack", func() bool { _, err := child.api.Device(t.Context(), "lampA"); return err == nil })
	})

	t.Run("mosquitto", func(t *testing.T) {
		m := testutil.StartMosquitto(t, testutil.FleetMosquittoConf(t, map[string]string{"lampA": "secret-a"})...)
		attack(t, m.Process().Pid, m.Addr)
		d, err := connectDevice(t.Context(), m.URL, "lampA", deviceOptions{user: "lampA", pass: "secret-a"})
		if err != nil {
			t.Fatalf("a device cannot log in after the attack: %v", err)
		}
		d.close()
	})
}

// TestBrokerClosesSilentConnections: a TCP connection that never sends
// (or never finishes) its CONNECT stayed open for good (still open after
// 300 s); now the broker closes it after ConnectTimeout, over TLS too
// (the deadline covers the handshake).
func TestBrokerClosesSilentConnections(t *testing.T) {
	ca := testutil.NewCA(t, "test CA")
	for name, tlsCfg := range map[string]*tls.Config{
		"tcp": nil,
		"tls": {Certificates: []tls.Certificate{ca.Server(t, "broker").TLS}, MinVersion: tls.VersionTLS12},
	} {
		t.Run(name, func(t *testing.T) {
			s := openTestStore(t, StoreOptions{})
			b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", Auth: s, TLS: tlsCfg, ConnectTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			for what, prefix := range map[string][]byte{
				"nothing":           nil,
				"half a header":     {0x10},
				"a CONNECT header":  {0x10, 0x40},
				"part of a CONNECT": {0x10, 0x40, 0x00, 0x04, 'M', 'Q'},
			} {
				t.Run(what, func(t *testing.T) {
					t.Parallel()
					conn, err := net.Dial("tcp", b.Addr().String())
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					if len(prefix) > 0 {
						if tlsCfg != nil {
							// A TLS client that has shaken hands, then stalls.
							tc := tls.Client(conn, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
							if err := tc.Handshake(); err != nil {
								t.Fatal(err)
							}
							conn = tc
						}
						if _, err := conn.Write(prefix); err != nil {
							t.Fatal(err)
						}
					}
					if !closedByPeer(conn) {
						t.Errorf("connection that sent %s still open after 60 s (ConnectTimeout 300 ms)", what)
					}
				})
			}
		})
	}
}

// TestBrokerPendingPerAddress: connections of one address that have not
// logged in are bounded (MaxPendingPerAddr); one beyond the limit is
// closed at once; logged-in connections do not count, so a fleet behind
// one NAT address is not limited once its devices are in.
func TestBrokerPendingPerAddress(t *testing.T) {
	s := openTestStore(t, StoreOptions{})
	ids := []string{"lamp0", "lamp1", "lamp2", "lamp3", "lamp4", "lamp5"}
	creds, err := s.IssueCredentials(t.Context(), RoleDevice, ids...)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 3
	b, err := StartBroker(t.Context(), BrokerOptions{Addr: "127.0.0.1:0", Auth: s, MaxPendingPerAddr: limit, ConnectTimeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	silent := make([]net.Conn, limit)
	for i := range silent {
		if silent[i], err = net.Dial("tcp", b.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer silent[i].Close()
	}
	extra, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedByPeer(extra) {
		t.Fatalf("connection %d of one address (limit %d) kept open", limit+1, limit)
	}
	// The limit counts connections not logged in: with one slot free,
	// every device logs in, one after the other, while the other silent
	// connections stay.
	silent[0].Close()
	devs := make([]*device, 0, len(ids))
	defer func() {
		for _, d := range devs {
			d.close()
		}
	}()
	for i, id := range ids {
		var d *device
		// The freed slot is released when the broker notices the close:
		// retry until it has.
		waitFor(t, id+" logged in", func() bool {
			d, err = connectDevice(t.Context(), b.URL(), id, deviceOptions{user: id, pass: creds[i].Secret})
			return err == nil
		})
		devs = append(devs, d)
	}
	// Logged-in connections do not count: two more may wait at the
	// login beside the silent ones, the next is closed.
	for i := range 2 {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i == 1 && !closedByPeer(c) {
			t.Errorf("with %d devices logged in, connection %d not logged in was kept open (limit %d)", len(devs), limit+1, limit)
		}
	}
	if err := devs[0].publish(t.Context(), ids[0], mustEncode(t, state.State{Seq: 1, Time: t0, Device: ids[0]})); err != nil {
		t.Errorf("a logged-in device cannot publish: %v", err)
	}
}
