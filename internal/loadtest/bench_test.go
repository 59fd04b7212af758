package loadtest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPublishMosquitto measures the load generator's own cost per
// acknowledged report through a real Mosquitto (QoS 1, shared
// connections, no rate limit).
func BenchmarkPublishMosquitto(b *testing.B) {
	benchPublish(b, Options{Devices: 1000, Connections: 8, QoS: 1})
}

// BenchmarkPublishDevices is the per-device case of the fleet benchmark:
// 4,000 devices, each on its own connection (its id as client id, a
// Will), QoS 1, no rate limit; the CPU per acknowledged report is the
// load generator's share of the 2-core budget.
func BenchmarkPublishDevices(b *testing.B) {
	benchPublish(b, Options{Devices: 4000, QoS: 1, Status: true})
}

// BenchmarkPublishDevicesPaced is BenchmarkPublishDevices at the fleet
// benchmark's rate, 16,700 reports/s (1 M/min): the load generator paces
// the devices instead of publishing as fast as acknowledged.
func BenchmarkPublishDevicesPaced(b *testing.B) {
	benchPublish(b, Options{Devices: 4000, QoS: 1, Status: true, Rate: 16700})
}

// benchPublish runs b.N reports against a fresh Mosquitto and reports
// the rate, the p99 latency and the CPU time per report of this process
// (cpu-µs/report: user and system, connecting included) and of the
// broker (broker-cpu-µs/report).
func benchPublish(b *testing.B, opts Options) {
	m := startMosquittoProcess(b, "allow_anonymous true")
	opts.Broker, opts.Now, opts.Duration, opts.MaxReports = m.url, time.Now, time.Hour, int64(b.N)
	cpu0, broker0 := processCPU(), m.cpu()
	b.ResetTimer()
	res, err := Run(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu, broker := processCPU()-cpu0, m.cpu()-broker0
	if res.MQTT.Acked != uint64(b.N) {
		b.Fatalf("acked %d of %d", res.MQTT.Acked, b.N)
	}
	b.ReportMetric(res.MQTT.PerSecond, "msgs/s")
	b.ReportMetric(float64(res.MQTT.Latency.P99)/1e6, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/report")
	if broker > 0 {
		b.ReportMetric(float64(broker.Microseconds())/float64(b.N), "broker-cpu-µs/report")
	}
}

// processCPU is the user and system time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type mosquittoProcess struct {
	url string
	pid int
}

func startMosquittoProcess(b *testing.B, conf ...string) *mosquittoProcess {
	u, proc := startMosquittoKillable(b, conf...)
	return &mosquittoProcess{url: u, pid: proc.Pid}
}

// cpu is the broker's user and system time so far, from /proc (0 if it
// cannot be read).
func (m *mosquittoProcess) cpu() time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(m.pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) in parentheses:
	// utime and stime are the 12th and 13th, in clock ticks (100 a second
	// on Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}
