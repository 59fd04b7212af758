package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	log    SyncBuffer
}

// NewMosquitto writes the configuration of a broker on a free port — the
// listener, no persistence, errors and warnings logged, a queue deep
// enough that a test subscriber loses nothing (max_queued_messages
// 1000000 unless extra sets it), then the extra lines (e.g.
// "allow_anonymous true", "password_file F", "acl_file F") — without
// starting it. Under -short it skips the test (Heavy).
func NewMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	Heavy(t, "runs a real Mosquitto broker")
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

// SyncBuffer is a bytes.Buffer that may be written while it is read: a
// log sink for a process or a logger under test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *SyncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is what was written so far.
func (l *SyncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FleetMosquittoConf returns the configuration lines of the Mosquitto
// setup docs/fleet.md documents, packaging/mosquitto/lampi-fleet.conf, for
// NewMosquitto or StartMosquitto: the file itself with its listener left
// to NewMosquitto, and its password file and ACL replaced by files in a
// temporary directory — logins (username → password, hashed with
// mosquitto_passwd) and lampi-fleet.acl with its collector block repeated
// for each of collectors.
func FleetMosquittoConf(t testing.TB, logins map[string]string, collectors ...string) []string {
	t.Helper()
	passwd := RequireTool(t, "mosquitto_passwd")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "lampi-fleet.passwd")
	for user, pass := range logins {
		args := []string{"-b", pwFile, user, pass}
		if _, err := os.Stat(pwFile); err != nil {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	root := moduleRoot(t)
	conf, err := os.ReadFile(filepath.Join(root, "packaging", "mosquitto", "lampi-fleet.conf"))
	if err != nil {
		t.Fatal(err)
	}
	acl, err := os.ReadFile(filepath.Join(root, "packaging", "mosquitto", "lampi-fleet.acl"))
	if err != nil {
		t.Fatal(err)
	}
	// The ACL's collector block runs from "user collector1" to the next
	// blank line.
	var out []string
	lines := strings.Split(string(acl), "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] != "user collector1" {
			out = append(out, lines[i])
			continue
		}
		end := i
		for end < len(lines) && strings.TrimSpace(lines[end]) != "" {
			end++
		}
		for _, c := range collectors {
			out = append(out, "user "+c)
			out = append(out, lines[i+1:end]...)
		}
		i = end - 1
	}
	aclFile := filepath.Join(dir, "lampi-fleet.acl")
	if err := os.WriteFile(aclFile, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(collectors) > 0 && !strings.Contains(strings.Join(out, "\n"), "user "+collectors[0]) {
		t.Fatal("packaging/mosquitto/lampi-fleet.acl has no \"user collector1\" block to repeat")
	}
	var lines2 []string
	for _, l := range strings.Split(string(conf), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "listener "):
			continue
		case l == "password_file /etc/mosquitto/lampi-fleet.passwd":
			l = "password_file " + pwFile
		case l == "acl_file /etc/mosquitto/lampi-fleet.acl":
			l = "acl_file " + aclFile
		}
		lines2 = append(lines2, l)
	}
	return lines2
}

// moduleRoot is the directory holding go.mod, found from this file.
func moduleRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: cannot find its own source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}
