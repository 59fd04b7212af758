package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
)

// childDirEnv names the repository a child server process serves (see
// TestHelperServeChild).
const childDirEnv = "LAMPI_TEST_SERVE_CHILD_DIR"

// TestHelperServeChild is not a test of its own: run by
// startChildServer in a child process (the test binary again), it serves
// the repository named by $LAMPI_TEST_SERVE_CHILD_DIR through a Front on
// 127.0.0.1, prints the address and serves until its standard input is
// closed, so that the parent can measure the memory of a server process.
func TestHelperServeChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("run as a child process by the tests that need one")
	}
	s, err := New(Options{Dir: dir, Now: time.Now})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	go s.Front(&http.Server{Handler: s, ReadHeaderTimeout: time.Minute}).Serve(ln)
	fmt.Println(ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// childServer is a server in a child process.
type childServer struct {
	cmd  *exec.Cmd
	addr string
}

func startChildServer(t *testing.T, dir string) *childServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServeChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.HasPrefix(line, "error:") {
		t.Fatalf("child server: %q %v", line, err)
	}
	return &childServer{cmd: cmd, addr: strings.TrimSpace(line)}
}

// peakRSS is the child's peak resident memory (VmHWM) in bytes.
func (c *childServer) peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", c.cmd.Process.Pid)
	return 0
}

// uploadRaw posts a package and returns the status and the API error code.
func uploadRaw(t *testing.T, url, token string, pkg []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/repos/stable/packages", bytes.NewReader(pkg))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/vnd.debian.binary-package")
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var e upload.APIError
	body, _ := io.ReadAll(resp.Body)
	json.Unmarshal(body, &e)
	if e.Code == "" {
		e.Code = "body: " + string(body)
	}
	return resp.StatusCode, e.Code, nil
}

// TestUploadBombsBoundedMemory performs the reported attack on a server
// process: uploads of a few hundred KiB whose control member decompresses
// to 1 GiB, and their variants (many 1 MiB files, a zstd frame declaring
// a 128 MiB window, 512 MiB in one gzip'd file), eight at a time, twice.
// Each is refused 422, and the server's peak resident memory grows by
// far less than before (about 170 MiB per check, 1.4 GB for eight; 5 GB
// with the race detector): the checks are bounded by
// Options.MaxControlSize and run Options.MaxValidations at a time (about
// 130 MiB with the race detector). The bound, 384 MiB, leaves room for
// the race detector and the collector's pacing.
func TestUploadBombsBoundedMemory(t *testing.T) {
	testutil.Heavy(t, "uploads control-member bombs of up to 1 GiB to measure memory")
	testutil.RequireTool(t, "xz")
	tr := newTestRepo(t)
	token := mustToken(t, newTokens(t, tr.dir), "ci", "upload:stable")
	bombs := [][]byte{
		testutil.ControlBomb(t, "xz", 1<<30, 1<<30),
		testutil.ControlBomb(t, "gzip", 80<<20, 1<<20),
		testutil.ControlBomb(t, "zstd", 256<<20, 256<<20),
		testutil.ControlBomb(t, "gzip", 512<<20, 512<<20),
	}
	child := startChildServer(t, tr.dir)
	url := "http://" + child.addr

	// Warm up: a real upload is checked and published, files are served.
	if code, e, err := uploadRaw(t, url, token, buildDeb(t, "hi", "0.1", "")); err != nil || code != http.StatusCreated {
		t.Fatalf("a good upload: %d %s %v", code, e, err)
	}
	if resp, _ := get(t, nil, url+"/dists/stable/InRelease"); resp.StatusCode != 200 {
		t.Fatalf("InRelease: %s", resp.Status)
	}
	base := child.peakRSS(t)

	for round := range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, e, err := uploadRaw(t, url, token, bombs[i%len(bombs)])
				if err != nil || code != http.StatusUnprocessableEntity || e != "not_a_deb" {
					errs <- fmt.Errorf("round %d, bomb %d: %d %q %v, want 422 not_a_deb", round, i%len(bombs), code, e, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	peak := child.peakRSS(t)
	t.Logf("server peak RSS: %d MiB before the attack, %d MiB after", base>>20, peak>>20)
	if grew := peak - base; grew > 384<<20 {
		t.Errorf("16 control bombs, 8 at a time, grew the server's peak memory by %d MiB (unbounded, 8 checks took 1.4 GB, 5 GB with the race detector)", grew>>20)
	}

	// The server still works.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &upload.Client{BaseURL: url + "/", Token: token}
	if res, err := c.Upload(ctx, "stable", "hi_0.2_all.deb", bytes.NewReader(buildDeb(t, "hi", "0.2", ""))); err != nil || res.Action != upload.ActionReplace {
		t.Fatalf("a good upload after the attack: %+v %v", res, err)
	}
}
