package testutil

import (
	"bufio"
	"fmt"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// StaticServer is Python's http.server serving a directory on a free
// loopback port: a plain third-party static file server, as devices meet
// one in front of a published directory (Last-Modified is the file's
// modification time; If-Modified-Since is answered 304 when the file is
// not newer, to the second).
type StaticServer struct {
	URL string // http://127.0.0.1:PORT
	log SyncBuffer
}

var servingLine = regexp.MustCompile(`Serving HTTP on \S+ port (\d+)`)

// StartStaticServer serves dir until the test ends. A missing python3
// fails the test.
func StartStaticServer(t testing.TB, dir string) *StaticServer {
	t.Helper()
	py := RequireTool(t, "python3")
	s := &StaticServer{}
	cmd := exec.Command(py, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "0")
	cmd.Stderr = &s.log // one line per request
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start python3 -m http.server: %v", err)
	}
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
				break
			}
		}
		for sc.Scan() { // keep the pipe drained
		}
		close(port)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("http.server log:\n%s", s.log.String())
		}
	})
	select {
	case p, ok := <-port:
		if !ok {
			t.Fatalf("python3 -m http.server exited at start:\n%s", s.log.String())
		}
		s.URL = fmt.Sprintf("http://127.0.0.1:%s", p)
	case <-time.After(60 * time.Second):
		t.Fatalf("python3 -m http.server did not start within 60 s:\n%s", s.log.String())
	}
	return s
}
