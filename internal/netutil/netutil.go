// Package netutil holds the network checks that the CLI, the upload client
// and the load generator share, so that they agree on what "this machine"
// means.
//
// It is a leaf package: it imports nothing of lampi-pkg.
package netutil

import (
	"net"
	"net/netip"
)

// IsLoopbackHost reports whether host names this machine: "localhost" or a
// loopback IP address (any of 127.0.0.0/8, ::1, and IPv4-mapped forms such
// as ::ffff:127.0.0.1). host is a bare host as url.URL.Hostname and
// net.SplitHostPort return it: no port and no brackets, so "[::1]" and
// "localhost:80" are not loopback hosts. The empty host (every interface,
// in a listen address) is not a loopback host. Names other than
// "localhost" are not resolved: "LOCALHOST" and "localhost." are refused,
// as is any name whose address the caller has not seen.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PeerKey is the network a connection from a counts against in
// per-address limits: the IPv4 address alone (an IPv4-mapped IPv6 address
// as IPv4), or the IPv6 /64, since one subscriber's network holds a whole
// /64 and could otherwise open connections from endless addresses. An
// address that is not an IP address gives the zero Prefix: all such share
// one key.
func PeerKey(a net.Addr) netip.Prefix {
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	n := ip.BitLen()
	if ip.Is6() {
		n = 64
	}
	p, err := ip.Prefix(n)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
