package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Mosquitto is a private, real Mosquitto broker on a free loopback port,
// stopped when the test ends. It can be stopped and started again on the
// same port (a broker that goes away and comes back).
type Mosquitto struct {
	t    testing.TB
	Port int
	Addr string // 127.0.0.1:PORT
	URL  string // mqtt://127.0.0.1:PORT
	conf string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    lockedBuffer
}

// NewMosquitto writes the configuration of a broker on a free port — the
// listener, no persistence, errors and warnings logged, a queue deep
// enough that a test subscriber loses nothing (max_queued_messages
// 1000000 unless extra sets it), then the extra lines (e.g.
// "allow_anonymous true", "password_file F", "acl_file F") — without
// starting it.
func NewMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	port := FreePort(t)
	dir := t.TempDir()
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"persistence false",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
	}
	if os.Geteuid() == 0 {
		// Started as root, Mosquitto drops to user "mosquitto", which
		// cannot read password and ACL files in the test's directory.
		lines = append(lines, "user root")
	}
	if !strings.Contains(strings.Join(extra, "\n"), "max_queued_messages") {
		lines = append(lines, "max_queued_messages 1000000")
	}
	lines = append(lines, extra...)
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	m := &Mosquitto{t: t, Port: port, Addr: addr, URL: "mqtt://" + addr, conf: conf}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.log.String())
		}
	})
	return m
}

// StartMosquitto is NewMosquitto and Start.
func StartMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	m := NewMosquitto(t, extra...)
	m.Start()
	return m
}

// mosquittoPath finds the broker; Debian installs it in /usr/sbin, which
// is not on every user's PATH.
func mosquittoPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	return RequireTool(t, "mosquitto")
}

// Start runs the broker and returns once it accepts connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.t.Fatal("mosquitto is already running")
	}
	cmd := exec.Command(mosquittoPath(m.t), "-c", m.conf)
	cmd.Stdout, cmd.Stderr = &m.log, &m.log
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	m.cmd, m.exited = cmd, exited
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			m.cmd = nil
			m.t.Fatalf("mosquitto exited at start:\n%s", m.log.String())
		case <-time.After(25 * time.Millisecond):
		}
		if i > 400 {
			m.t.Fatalf("mosquitto does not listen on %s:\n%s", m.Addr, m.log.String())
		}
	}
}

// Stop kills the broker (no clean shutdown) if it runs.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// Process is the running broker's process (nil when stopped).
func (m *Mosquitto) Process() *os.Process {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return nil
	}
	return m.cmd.Process
}

// Log is what the broker has logged so far.
func (m *Mosquitto) Log() string { return m.log.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
