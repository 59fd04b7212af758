package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// serveFront serves s through its Front with hs's timeouts on a new
// loopback listener and returns the address.
func serveFront(t *testing.T, s *Server, hs *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Handler = s
	f := s.Front(hs)
	done := make(chan error, 1)
	go func() { done <- f.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// dialFrom opens a connection to addr from the loopback address from
// (127.0.0.0/8 is all loopback on Linux), closed at the end of the test.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: time.Minute}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByPeer reports whether the server has closed c (a read ends with
// EOF or a reset rather than the short deadline).
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// waitClosed waits until exactly want of conns are closed by the server,
// at most until deadline; it returns how many are.
func waitClosed(conns []net.Conn, want int, deadline time.Duration) int {
	closed := make([]bool, len(conns))
	n := 0
	for end := time.Now().Add(deadline); ; {
		for i, c := range conns {
			if !closed[i] && closedByPeer(c) {
				closed[i] = true
				n++
			}
		}
		if n >= want || time.Now().After(end) {
			return n
		}
	}
}

// waitFor polls cond until it holds or a minute has passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("still not %s after a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fetch sends GET target on a new connection from 127.0.0.1 and returns
// the status code.
func fetch(t *testing.T, from, addr, target string, hdr ...string) int {
	t.Helper()
	c := dialFrom(t, from, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n"
	for _, h := range hdr {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", target, from, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestFrontSilentSocketsClosed: connections that never send a byte, or
// stop in the middle of their first request's head (slowloris), are
// closed by the header timeout, not kept for the idle timeout; a
// keep-alive connection idle after a request stays open past the header
// timeout and is served again.
func TestFrontSilentSocketsClosed(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	s, err := New(Options{Dir: tr.dir, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const header = time.Second
	addr := serveFront(t, s, &http.Server{ReadHeaderTimeout: header, IdleTimeout: 10 * time.Minute})

	keep := dialFrom(t, "127.0.0.1", addr)
	br := bufio.NewReader(keep)
	get := func() {
		t.Helper()
		keep.SetDeadline(time.Now().Add(time.Minute))
		io.WriteString(keep, "GET /dists/stable/Release HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("keep-alive GET: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		keep.SetDeadline(time.Time{})
	}
	get()

	var conns []net.Conn
	for i := range 40 {
		c := dialFrom(t, "127.0.0.1", addr)
		if i%4 == 3 {
			io.WriteString(c, "GET /dists/stable/Release HTTP/1.1\r\nHost: x\r\n") // never finished
		}
		conns = append(conns, c)
	}
	// Closed within the header timeout, give or take a loaded machine;
	// the idle timeout (10 minutes) would keep them far longer.
	if n := waitClosed(conns, len(conns), time.Minute); n != len(conns) {
		t.Fatalf("%d of %d silent connections still open a minute after they were made (header timeout %v)", len(conns)-n, len(conns), header)
	}
	// The idle keep-alive connection has outlived several header
	// timeouts, and is served.
	get()
}

// TestConnectionLimits: one client address cannot hold more than
// MaxConnsPerAddr connections, nor all clients more than MaxConns: those
// over a limit are closed at once (silent ones included), and a normal
// client is still served, on the fast path and through net/http, while
// many silent connections are open up to the limits.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	s, err := New(Options{Dir: tr.dir, Now: time.Now, MaxConns: 16, MaxConnsPerAddr: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Timeouts far longer than the test: only the limits close anything.
	addr := serveFront(t, s, &http.Server{ReadHeaderTimeout: 10 * time.Minute, IdleTimeout: 10 * time.Minute})
	m := s.Metrics()

	// Three attackers try 6 silent connections each: 4 each stay.
	var attack []net.Conn
	for _, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		for range 6 {
			attack = append(attack, dialFrom(t, from, addr))
		}
	}
	if n := waitClosed(attack, 6, time.Minute); n != 6 {
		t.Fatalf("%d of 18 connections from 3 addresses were closed, want 6 (4 per address)", n)
	}
	waitFor(t, "12 connections open", func() bool { return m.OpenConns() == 12 })
	for _, h := range [][]string{nil, {"Range: bytes=0-9"}} {
		if code := fetch(t, "127.0.0.1", addr, "/dists/stable/Release", h...); code != 200 && code != 206 {
			t.Fatalf("a normal client among 12 silent connections: %d", code)
		}
	}
	waitFor(t, "the normal client's connections closed", func() bool { return m.OpenConns() == 12 })

	// A fourth address fills the total: 16 open, the next from anywhere
	// is closed at once …
	for range 4 {
		attack = append(attack, dialFrom(t, "127.0.0.5", addr))
	}
	waitFor(t, "16 connections open", func() bool { return m.OpenConns() == 16 })
	over := dialFrom(t, "127.0.0.6", addr)
	if n := waitClosed([]net.Conn{over}, 1, time.Minute); n != 1 {
		t.Fatalf("a connection over MaxConns stayed open")
	}
	// … until one is closed.
	attack[0].Close()
	waitFor(t, "15 connections open", func() bool { return m.OpenConns() == 15 })
	if code := fetch(t, "127.0.0.6", addr, "/dists/stable/Release"); code != 200 {
		t.Fatalf("a normal client once a slot is free: %d", code)
	}
	if got := m.ConnsRefused(); got != 7 {
		t.Errorf("ConnsRefused = %d, want 7", got)
	}
}

// TestListenerLimits: Server.Listener applies the same limits to a plain
// http.Server (as serve does for TLS), and a closed connection gives its
// slot back.
func TestListenerLimits(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	s, err := New(Options{Dir: tr.dir, Now: time.Now, MaxConnsPerAddr: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Minute}
	go hs.Serve(s.Listener(ln))
	t.Cleanup(func() { hs.Close() })
	addr := ln.Addr().String()
	a := dialFrom(t, "127.0.0.2", addr)
	b := dialFrom(t, "127.0.0.2", addr)
	c := dialFrom(t, "127.0.0.2", addr)
	if n := waitClosed([]net.Conn{a, b, c}, 1, time.Minute); n != 1 {
		t.Fatalf("%d of 3 connections from one address closed, want 1", n)
	}
	a.Close()
	b.Close()
	c.Close()
	waitFor(t, "all slots free", func() bool { return s.Metrics().OpenConns() == 0 })
	if code := fetch(t, "127.0.0.2", addr, "/dists/stable/Release"); code != 200 {
		t.Fatalf("GET after the slots were given back: %d", code)
	}
}
