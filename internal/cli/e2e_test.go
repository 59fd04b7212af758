package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// testMosquittoMain is the "test-mosquitto ADDRFILE" command of the
// testscript scenarios (testdata/script/e2e-mosquitto.txtar): it runs a real
// Mosquitto broker on a free 127.0.0.1 port, anonymous, without
// persistence, writes "127.0.0.1:PORT" to ADDRFILE once the broker accepts
// connections, and stops the broker when it gets SIGINT or SIGTERM. A
// missing mosquitto is an error (the scenario fails; it is not skipped).
func testMosquittoMain() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: test-mosquitto ADDRFILE")
		os.Exit(2)
	}
	code, err := runTestMosquitto(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "test-mosquitto: %v\n", err)
	}
	os.Exit(code)
}

func runTestMosquitto(addrFile string) (int, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			return 1, fmt.Errorf("mosquitto is not installed (apt-get install mosquitto): %v", err)
		}
		bin = "/usr/sbin/mosquitto"
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	dir, err := os.MkdirTemp("", "test-mosquitto")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	// A free port is only free until someone takes it: if the broker
	// cannot listen on it, try another one.
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 1, err
		}
		addr := l.Addr().String()
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		conf := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)), 0o644); err != nil {
			return 1, err
		}
		cmd := exec.Command(bin, "-c", conf)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return 1, err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		switch waitListening(addr, exited) {
		case brokerExited:
			continue // exited before accepting: the port was taken
		case brokerHung:
			cmd.Process.Kill()
			<-exited
			return 1, fmt.Errorf("mosquitto did not accept connections on %s", addr)
		}
		tmp := addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
			cmd.Process.Kill()
			<-exited
			return 1, err
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			cmd.Process.Kill()
			<-exited
			return 1, err
		}
		select {
		case <-sigs:
			cmd.Process.Signal(syscall.SIGTERM)
			if err := <-exited; err != nil {
				return 1, fmt.Errorf("mosquitto: %v", err)
			}
			return 0, nil
		case err := <-exited:
			return 1, fmt.Errorf("mosquitto stopped by itself: %v", err)
		}
	}
	return 1, errors.New("mosquitto did not start on any of 5 free ports")
}

const (
	brokerListening = iota
	brokerExited
	brokerHung
)

// waitListening dials addr until it accepts or the broker process exits.
// Its bound is generous: it only guards against a hang.
func waitListening(addr string, exited <-chan error) int {
	for i := 0; i < 1200; i++ {
		select {
		case <-exited:
			return brokerExited
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return brokerListening
		}
		time.Sleep(50 * time.Millisecond)
	}
	return brokerHung
}
