package fleet

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// BenchmarkBrokerIdleMemory: FLEET_BENCH_IDLE (2000) devices log in (MQTT
// 5, clean start, keep-alive 300 s; with a device credential on the
// embedded broker, as under lampi-pkg serve) and stay idle; reported is what each
// connection costs the broker, side by side: Mosquitto's resident memory
// (VmRSS of its process) and the embedded broker's Go heap and goroutine
// stacks in use after a garbage collection (it runs in this process; the
// idle test connections hold no buffers and no goroutines here, so what
// grows is the broker's), plus this process's VmRSS. With
// FLEET_BENCH_HEAPPROFILE=FILE the embedded run writes a heap profile.
// It runs once whatever b.N is (-benchtime 1x).
func BenchmarkBrokerIdleMemory(b *testing.B) {
	n := benchEnv("FLEET_BENCH_IDLE", 2000)
	b.Run("mosquitto", func(b *testing.B) {
		broker := startMosquitto(b, "allow_anonymous true", "max_connections -1")
		pid := childPID("mosquitto")
		if pid == 0 {
			b.Fatal("no mosquitto child process")
		}
		before := vmRSS(pid)
		conns := dialIdle(b, broker, n, nil)
		defer closeAll(conns)
		// rawConnect returned after each CONNACK: every connection is set up.
		after := vmRSS(pid)
		b.ReportMetric(float64(after-before)*1024/float64(n), "rss-B/conn")
		b.Logf("%d idle connections: mosquitto VmRSS %d → %d KiB", n, before, after)
	})
	b.Run("embedded", func(b *testing.B) {
		auth, err := Open(filepath.Join(b.TempDir(), "fleet.db"), StoreOptions{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		defer auth.Close()
		ids := make([]string, n)
		for i := range ids {
			ids[i] = idleID(i)
		}
		creds, err := auth.IssueCredentials(b.Context(), RoleDevice, ids...)
		if err != nil {
			b.Fatal(err)
		}
		br, err := StartBroker(context.Background(), BrokerOptions{Addr: "127.0.0.1:0", Auth: auth, MaxPendingPerAddr: n})
		if err != nil {
			b.Fatal(err)
		}
		defer br.Close()
		srv := br.engine.(*mqtt.Server)
		heap0, stack0 := goMemory()
		g0 := runtime.NumGoroutine()
		rss0 := vmRSS(os.Getpid())
		conns := dialIdle(b, br.URL(), n, creds)
		defer closeAll(conns)
		waitFor(b, "every connection logged in", func() bool {
			return atomic.LoadInt64(&srv.Info.ClientsConnected) == int64(n)
		})
		heap1, stack1 := goMemory()
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/float64(n), "goroutines/conn")
		rss1 := vmRSS(os.Getpid())
		if p := os.Getenv("FLEET_BENCH_HEAPPROFILE"); p != "" {
			f, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
		perConn := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
		b.ReportMetric(perConn(heap0, heap1), "heap-B/conn")
		b.ReportMetric(perConn(stack0, stack1), "stack-B/conn")
		b.ReportMetric(perConn(heap0+stack0, heap1+stack1), "go-B/conn")
		b.ReportMetric(perConn(uint64(rss0), uint64(rss1))*1024, "rss-B/conn")
		b.Logf("%d idle connections: heap %d → %d, stacks %d → %d bytes; VmRSS %d → %d KiB", n, heap0, heap1, stack0, stack1, rss0, rss1)
	})
}

func idleID(i int) string { return fmt.Sprintf("idle%05d", i) }

// dialIdle opens n idle MQTT 5 connections, logging in with creds if
// set, and keeps only the sockets.
func dialIdle(b *testing.B, broker string, n int, creds []Issued) []net.Conn {
	b.Helper()
	conns := make([]net.Conn, n)
	g := newLimitGroup(32)
	for i := range conns {
		g.Go(func() (err error) {
			user, pass := "", ""
			if creds != nil {
				user, pass = creds[i].ID, creds[i].Secret
			}
			conns[i], _, err = rawConnect(broker, idleID(i), 5, user, pass)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		closeAll(conns)
		b.Fatal(err)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// goMemory is the Go heap and goroutine stacks in use once collections
// settled them (each collection halves a stack at most once, as a server's
// collections do over time).
func goMemory() (heap, stack uint64) {
	for range 6 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// vmRSS is a process's resident memory in KiB.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// childPID is the pid of this process's child named comm (0 if none).
func childPID(comm string) int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, pid := range strings.Fields(string(b)) {
			c, err := os.ReadFile("/proc/" + pid + "/comm")
			if err == nil && strings.TrimSpace(string(c)) == comm {
				n, _ := strconv.Atoi(pid)
				return n
			}
		}
	}
	return 0
}
