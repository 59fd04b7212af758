package agent_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleCheck measures one idle check: a conditional GET of
// InRelease answered 304, the stored InRelease re-verified, nothing
// planned. cpu-ms/op is the process CPU (user+system, including the test
// HTTP server's share) per check.
func BenchmarkIdleCheck(b *testing.B) {
	w := newWorldB(b)
	w.r.Requests()
	ctx := context.Background()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		o := w.a.Once(ctx)
		if o.Result != state.ResultUpToDate || !o.NotModified {
			b.Fatalf("idle check: %s %v (not modified %v)", o.Result, o.Err, o.NotModified)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	if n := len(w.r.Requests()); n != b.N {
		b.Errorf("%d requests for %d checks", n, b.N)
	}
}

// BenchmarkDaemonRSS builds the real lampi-agent, runs "lampi-agent run"
// against the test repository with a 1 s poll interval, and reports its
// resident memory after a few idle checks (rss-KiB) and its CPU per check.
func BenchmarkDaemonRSS(b *testing.B) {
	w := newWorldB(b)
	bin := filepath.Join(b.TempDir(), "lampi-agent")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "github.com/lampi-pkg/lampi-pkg/cmd/lampi-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	conf, _ := os.ReadFile(w.d.Conf)
	os.WriteFile(w.d.Conf, append(conf, "poll_interval = 1s\n"...), 0o644)
	for i := 0; i < b.N; i++ {
		w.r.Requests()
		cmd := exec.Command(bin, "run", "--config", w.d.Conf)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for n := 0; n < 5; n += len(w.r.Requests()) {
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

// newWorldB is newWorld for benchmarks (hi 0.1 installed and checked).
func newWorldB(b *testing.B) *world {
	b.Helper()
	return newWorld(b, at.RepoOptions{}, "", agent.Options{Logf: func(string, ...any) {}})
}
