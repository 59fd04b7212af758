package testutil

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO credentials of the test servers (loopback only).
const (
	MinIOUser     = "lampitest"
	MinIOPassword = "lampitest-secret-0123"
)

// MinIOPath returns the MinIO server binary: $LAMPI_MINIO, else the one
// "make test" (scripts/deps.sh) builds into ~/.cache/lampi-pkg/minio-bin.
func MinIOPath() string {
	if p := os.Getenv("LAMPI_MINIO"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "lampi-pkg", "minio-bin", "minio")
}

// MinIO is a real MinIO server on a free loopback port.
type MinIO struct {
	Endpoint string // 127.0.0.1:PORT
	URL      string // http://127.0.0.1:PORT
	Client   *minio.Client

	dir string
	cmd *exec.Cmd
	log SyncBuffer
}

// StartMinIO starts a private MinIO, stopped when the test ends. A
// missing binary fails the test; under -short it skips it (Heavy).
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	Heavy(t, "runs a real MinIO object store")
	m, err := startMinIO()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("minio log:\n%s", m.log.String())
		}
		m.Stop()
	})
	return m
}

var (
	sharedMu  sync.Mutex
	shared    *MinIO
	sharedErr error
)

// SharedMinIO returns the MinIO of this test process, starting it on
// first use (one start-up per test package). Call StopSharedMinIO from
// TestMain; the server also dies with the test process. Under -short it
// skips the test (Heavy).
func SharedMinIO(t testing.TB) *MinIO {
	t.Helper()
	Heavy(t, "runs a real MinIO object store")
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = startMinIO()
	}
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// StopSharedMinIO stops the server SharedMinIO started, if any.
func StopSharedMinIO() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

func startMinIO() (*MinIO, error) {
	bin := MinIOPath()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("the MinIO server is not built (%s missing): run 'make test' or scripts/deps.sh, which build it once with go install into ~/.cache/lampi-pkg/minio-bin (or set LAMPI_MINIO)", bin)
	}
	dir, err := os.MkdirTemp("", "lampi-minio-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, console := freePort(), freePort()
		m := &MinIO{Endpoint: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
		m.URL = "http://" + m.Endpoint
		m.cmd = exec.Command(bin, "server", "--quiet", "--address", m.Endpoint,
			"--console-address", fmt.Sprintf("127.0.0.1:%d", console), filepath.Join(dir, "data"))
		m.cmd.Env = append(os.Environ(),
			"MINIO_ROOT_USER="+MinIOUser, "MINIO_ROOT_PASSWORD="+MinIOPassword,
			"MINIO_BROWSER=off", "MINIO_CI_CD=1", "MINIO_UPDATE=off", "GOMAXPROCS=2", "GOGC=50")
		m.cmd.Stdout, m.cmd.Stderr = &m.log, &m.log
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := m.cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start minio: %w", err)
		}
		exited := make(chan struct{})
		go func() { m.cmd.Wait(); close(exited) }()
		if lastErr = m.waitLive(exited); lastErr == nil {
			m.Client, lastErr = minio.New(m.Endpoint, &minio.Options{
				Creds: credentials.NewStaticV4(MinIOUser, MinIOPassword, ""), BucketLookup: minio.BucketLookupPath})
			if lastErr == nil {
				return m, nil
			}
		}
		m.cmd.Process.Kill()
		<-exited
		lastErr = fmt.Errorf("%w\nminio log:\n%s", lastErr, m.log.String())
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (m *MinIO) waitLive(exited chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("minio exited at start")
		default:
		}
		resp, err := http.Get(m.URL + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio did not become live at %s within 60 s", m.URL)
}

// Stop stops the server and removes its data.
func (m *MinIO) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { m.cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			m.cmd.Process.Kill()
		}
	}
	os.RemoveAll(m.dir)
}

// Log returns what the server printed.
func (m *MinIO) Log() string { return m.log.String() }

// NewBucket creates a bucket with a name unique to the test; public
// makes it anonymously readable (what apt clients need).
func (m *MinIO) NewBucket(t testing.TB, public bool) string {
	t.Helper()
	name := strings.ToLower(t.Name())
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, name)
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + fmt.Sprintf("-%d", time.Now().UnixNano()%1e9)
	ctx := context.Background()
	if err := m.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
	if public {
		policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, name)
		if err := m.Client.SetBucketPolicy(ctx, name, policy); err != nil {
			t.Fatalf("bucket policy %s: %v", name, err)
		}
	}
	return name
}
