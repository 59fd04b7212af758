package agentcli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
)

// BenchmarkDaemonRSS builds the real lampi-agent, runs "lampi-agent run"
// against the test repository with a 1 s poll interval, and reports its
// resident memory after a few idle checks (rss-KiB) and its CPU per check.
func BenchmarkDaemonRSS(b *testing.B) {
	h := at.NewHi01(b, at.RepoOptions{}, "lamp-rss", "")
	if code, out, errs := run(b, h.Clock, "once", "--config", h.Device.Conf); code != agentcli.ExitUpToDate {
		b.Fatalf("first check: exit %d\n%s%s", code, out, errs)
	}
	bin := filepath.Join(b.TempDir(), "lampi-agent")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "github.com/lampi-pkg/lampi-pkg/cmd/lampi-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	conf, _ := os.ReadFile(h.Device.Conf)
	os.WriteFile(h.Device.Conf, append(conf, "poll_interval = 1s\n"...), 0o644)
	for i := 0; i < b.N; i++ {
		h.Repo.Requests()
		cmd := exec.Command(bin, "run", "--config", h.Device.Conf)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for n := 0; n < 5; n += len(h.Repo.Requests()) {
			time.Sleep(200 * time.Millisecond) // waiting for the daemon's checks, not asserting time
		}
		status, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		for _, l := range strings.Split(string(status), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			kib, _ := strconv.Atoi(f[1])
			switch f[0] {
			case "VmRSS:":
				b.ReportMetric(float64(kib), "rss-KiB")
			case "RssAnon:":
				b.ReportMetric(float64(kib), "anon-KiB")
			case "VmHWM:":
				b.ReportMetric(float64(kib), "peak-rss-KiB")
			}
		}
		if f := strings.Fields(string(stat)); len(f) > 15 {
			ut, _ := strconv.Atoi(f[13])
			st, _ := strconv.Atoi(f[14])
			b.ReportMetric(float64(ut+st)*10, "cpu-ms-total") // clock ticks of 10 ms
		}
	}
}
