package agent_test

import (
	"context"
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

// newWorldB is newWorld for benchmarks (hi 0.1 installed and checked).
func newWorldB(b *testing.B) *world {
	b.Helper()
	return newWorld(b, at.RepoOptions{}, "", agent.Options{Logf: func(string, ...any) {}})
}
