package netutil

import (
	"net"
	"testing"
)

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.0.0.2": true, "127.255.255.254": true,
		"::1": true, "0:0:0:0:0:0:0:1": true, "::ffff:127.0.0.1": true,
		"": false, "[::1]": false, "localhost:80": false, "127.0.0.1:80": false,
		"LOCALHOST": false, "localhost.": false, "localhost.example.com": false,
		"0.0.0.0": false, "::": false, "10.0.0.1": false, "128.0.0.1": false,
		"192.168.1.1": false, "example.com": false, "fe80::1": false, "::2": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestPeerKey: IPv4 addresses count alone, IPv6 ones by /64; addresses
// that are not IP addresses share the zero key.
func TestPeerKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:1883":              "192.0.2.7/32",
		"[::ffff:192.0.2.7]:1883":     "192.0.2.7/32",
		"[2001:db8:1:2:3:4:5:6]:1883": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ff::1]:40000":  "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:40000":     "2001:db8:1:3::/64",
		"[::1]:80":                    "::/64",
	} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := PeerKey(a).String(); got != want {
			t.Errorf("PeerKey(%s) = %s, want %s", in, got, want)
		}
		// The same address behind another net.Addr type gives the same key.
		if got := PeerKey(stringAddr(in)).String(); got != want {
			t.Errorf("PeerKey(%q as a string address) = %s, want %s", in, got, want)
		}
	}
	if a, b := PeerKey(&net.UnixAddr{Name: "/run/a", Net: "unix"}), PeerKey(&net.UnixAddr{Name: "/run/b", Net: "unix"}); a != b || a.IsValid() {
		t.Errorf("unix addresses: %v %v, want both the zero key", a, b)
	}
}

type stringAddr string

func (s stringAddr) Network() string { return "tcp" }
func (s stringAddr) String() string  { return string(s) }
