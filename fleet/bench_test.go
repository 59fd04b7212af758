package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// Benchmarks of the collector. They run once whatever b.N is (use
// -benchtime 1x) and report their own figures; scripts/bench-fleet.sh
// runs them. Settings come from the environment:
//
//	FLEET_BENCH_DEVICES   simulated devices, one MQTT connection each (4000)
//	FLEET_BENCH_REPORTS   reports per device (50)
//	FLEET_BENCH_RATE      total reports/s the devices send; 0 = as fast as they can (0)
//	FLEET_BENCH_STORE_DEVICES  devices for BenchmarkStoreSize (1000000)

func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

// BenchmarkIngest: devices publish state reports (QoS 1) through the
// broker; the collector and, in the same run, a plain subscriber that only
// counts and acknowledges receive them. Reported: the rate the devices
// published at, the rate each receiver got everything at, their ratio and
// lost reports (must be 0).
func BenchmarkIngest(b *testing.B) {
	// The collector (and the embedded broker) run with the garbage
	// collector settings of lampi-pkg serve and fleet collect.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	b.Run("mosquitto", func(b *testing.B) {
		benchIngest(b, startMosquitto(b, "allow_anonymous true"), nil)
	})
	b.Run("embedded", func(b *testing.B) {
		br, err := StartBroker(context.Background(), BrokerOptions{Addr: "127.0.0.1:0", AllowAnonymous: true,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { br.Close() })
		srv := br.engine.(*mqtt.Server)
		benchIngest(b, br.URL(), func() (int64, string) {
			q, f := atomic.LoadInt64(&srv.Info.MessagesDropped), atomic.LoadInt64(&srv.Info.InflightDropped)
			return q + f, fmt.Sprintf("%d with the write queue full, %d over the inflight limit", q, f)
		})
	})
}

// benchSenders is how many goroutines drive the simulated devices.
const benchSenders = 4

// benchIngest runs the benchmark through broker; dropped, if set, counts
// the messages the broker dropped (it fails the run at once: each is a
// report lost after its PUBACK).
func benchIngest(b *testing.B, broker string, dropped func() (int64, string)) {
	nDev := benchEnv("FLEET_BENCH_DEVICES", 4000)
	perDev := benchEnv("FLEET_BENCH_REPORTS", 50)
	rate := benchEnv("FLEET_BENCH_RATE", 0)
	separate := os.Getenv("FLEET_BENCH_PLAIN") == "separate"
	total := int64(nDev * perDev)
	rounds := 1
	if separate {
		rounds = 2
	}

	devs := make([]*benchDevice, nDev)
	g := newLimitGroup(64)
	for i := range devs {
		g.Go(func() (err error) {
			devs[i], err = dialBenchDevice(broker, fmt.Sprintf("bench%05d", i), 16)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, d := range devs {
			if d != nil {
				d.close()
			}
		}
	}()
	// Reports are encoded before the clock starts: round r sends
	// packets[r], seqs r·perDev+1 … (r+1)·perDev.
	packets := make([][][][]byte, rounds)
	for r := range rounds {
		packets[r] = make([][][]byte, nDev)
		for i, d := range devs {
			packets[r][i] = make([][]byte, perDev)
			for k := range perDev {
				// Periodic reports: the seq and time change, the versions
				// do not (the steady state of a fleet).
				seq := uint64(r*perDev + k + 1)
				st := testState(d.id, i, seq)
				st.Packages["lampi-service"] = "1.0"
				packets[r][i][k] = publishPacket(state.StateTopic(state.DefaultPrefix, d.id), uint16(k+1), mustEncode(b, st))
			}
		}
	}

	// The plain subscriber: counts and acknowledges, nothing else.
	var plainN, plainDone atomic.Int64
	var plainStart time.Time
	plainCl, err := dialRawSubscriber(broker, "bench-plain", "devices/+/state", func() {
		if plainN.Add(1) == total {
			plainDone.Store(time.Now().UnixNano())
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer plainCl.close()
	publish := func(r int) (start time.Time, published time.Duration) {
		for _, d := range devs {
			d.acked, d.failed = 0, 0
		}
		start = time.Now()
		if err := sendAll(devs, packets[r], float64(rate), benchSenders, start); err != nil {
			b.Fatal(err)
		}
		var acked, failed int64
		for _, d := range devs {
			acked += d.acked
			failed += d.failed
		}
		if failed > 0 || acked != total {
			b.Fatalf("broker acknowledged %d of %d reports, refused %d", acked, total, failed)
		}
		return start, time.Since(start)
	}
	var s *Store
	checkDrops := func() {
		if dropped != nil {
			if n, how := dropped(); n > 0 {
				var coll uint64
				if s != nil {
					coll = s.Stats().Received
				}
				b.Fatalf("the broker dropped %d messages (%s) for its subscribers after acknowledging them (collector has %d, plain subscriber %d of %d)",
					n, how, coll, plainN.Load(), total)
			}
		}
	}
	waitPlain := func(deadline time.Time) {
		for plainN.Load() < total {
			checkDrops()
			if time.Now().After(deadline) {
				b.Fatalf("plain subscriber stuck at %d of %d reports", plainN.Load(), total)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	b.ResetTimer()
	var plainPublished time.Duration
	if separate {
		// Round 0: the broker delivers to the plain subscriber alone.
		plainStart, plainPublished = publish(0)
		waitPlain(time.Now().Add(10 * time.Minute))
		plainCl.close()
	}

	b.StopTimer()
	s = openTestStore(b, StoreOptions{})
	runCollector(b, s, CollectorOptions{Broker: broker, ClientID: "bench-collector",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if separate {
		// A new subscription gets every device's retained report of
		// round 0 first: let those in before the clock starts.
		deadline := time.Now().Add(5 * time.Minute)
		for s.Stats().Received < uint64(nDev) {
			if time.Now().After(deadline) {
				b.Fatalf("collector got %d of %d retained reports", s.Stats().Received, nDev)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	before := s.Stats()
	cpu0, broker0 := selfCPU(), childCPU("mosquitto")
	b.StartTimer()
	start, published := publish(rounds - 1)
	if !separate {
		plainStart, plainPublished = start, published
	}
	var collected time.Duration
	deadline := time.Now().Add(10 * time.Minute)
	for {
		st := s.Stats()
		if st.Received-before.Received >= uint64(total) {
			collected = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("collector stuck at %d of %d reports", st.Received-before.Received, total)
		}
		checkDrops()
		time.Sleep(2 * time.Millisecond)
	}
	if !separate {
		waitPlain(deadline)
	}
	b.StopTimer()
	cpu1, broker1 := selfCPU(), childCPU("mosquitto")
	st := s.Stats()
	plainTook := time.Duration(plainDone.Load() - plainStart.UnixNano())
	lost := total - int64(st.Stored-before.Stored)
	collRate := float64(total) / collected.Seconds()
	plainRate := float64(total) / plainTook.Seconds()
	b.ReportMetric(float64(total)/published.Seconds(), "published/s")
	b.ReportMetric(plainRate, "plain/s")
	b.ReportMetric(collRate, "collected/s")
	b.ReportMetric(collRate/plainRate, "ratio")
	b.ReportMetric(float64(lost), "lost")
	// CPU per report while the collector ran: this process (devices,
	// collector, the plain subscriber unless separate, the embedded
	// broker) and a Mosquitto child process.
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(total), "proc-cpu-µs/report")
	if broker1 > 0 {
		b.ReportMetric(float64((broker1-broker0).Microseconds())/float64(total), "broker-cpu-µs/report")
	}
	mode := "concurrently"
	if separate {
		mode = fmt.Sprintf("alone before (its devices published in %v)", plainPublished.Round(time.Millisecond))
	}
	b.Logf("%d devices × %d reports = %d: published in %v, collector had all after %v; plain subscriber (%s) after %v; stats %+v",
		nDev, perDev, total, published.Round(time.Millisecond), collected.Round(time.Millisecond), mode, plainTook.Round(time.Millisecond), st)
	if lost != 0 || st.Stale != before.Stale || st.Invalid != before.Invalid {
		b.Errorf("lost %d reports (stats %+v)", lost, st)
	}
}

// selfCPU is the user + system time this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childCPU is the user + system time used so far by this process's
// children named comm (0 if none).
func childCPU(comm string) time.Duration {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var total time.Duration
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, pid := range strings.Fields(string(b)) {
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				continue
			}
			// pid (comm) state ppid … field 14 utime, 15 stime (clock ticks)
			j, i := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
			if j < 0 || i < j || string(stat[j+1:i]) != comm {
				continue
			}
			f := strings.Fields(string(stat[i+2:]))
			if len(f) < 13 {
				continue
			}
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			stt, _ := strconv.ParseInt(f[12], 10, 64)
			total += time.Duration(ut+stt) * time.Second / 100 // USER_HZ
		}
	}
	return total
}

func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkStoreSize fills a fleet database with one report and an
// "online" status from each of FLEET_BENCH_STORE_DEVICES devices (one in
// a thousand without: offline), in the collector's batches, and reports
// the file size, the peak RSS and the rate of the store alone (reports/s,
// status messages not counted), then the time and peak RSS of a full
// report (the RSS includes the database pages the report maps in), of a
// report with the newest versions (a quarter of the fleet behind) and of
// the VersionStats that one rollout controller evaluation reads. The
// ingest's CPU time per report is reported too: on a shared machine it is
// steadier than the rate.
func BenchmarkStoreSize(b *testing.B) {
	n := benchEnv("FLEET_BENCH_STORE_DEVICES", 1000000)
	path := filepath.Join(b.TempDir(), "fleet.db")
	s, err := Open(path, StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batchSize = 4096
	b.ResetTimer()
	start, cpu0 := time.Now(), selfCPU()
	msgs := make([]Message, 0, batchSize)
	for i := range n {
		id := fmt.Sprintf("b827eb%06x", i)
		p, _ := state.Encode(testState(id, i, 1))
		msgs = append(msgs, Message{Topic: state.StateTopic(state.DefaultPrefix, id), Payload: p, Received: start})
		if i%1000 != 0 { // one device in a thousand is offline
			msgs = append(msgs, Message{Topic: state.StatusTopic(state.DefaultPrefix, id), Payload: []byte(state.Online), Received: start})
		}
		if len(msgs) >= batchSize || i == n-1 {
			if _, err := s.Apply(state.DefaultPrefix, msgs); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	took, cpu := time.Since(start), selfCPU()-cpu0
	b.StopTimer()
	ingestRSS := rssKiB()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	repStart, repCPU := time.Now(), selfCPU()
	rep, err := s.Report(b.Context(), ReportOptions{Now: func() time.Time { return start }})
	if err != nil || rep.Devices != n {
		b.Fatalf("report: %v, %d devices", err, rep.Devices)
	}
	repTook, repCPU := time.Since(repStart), selfCPU()-repCPU
	// The report as lampi-pkg fleet report asks for it: with the newest
	// published versions, so a quarter of the fleet is listed as behind.
	newestStart, newestCPU := time.Now(), selfCPU()
	rep, err = s.Report(b.Context(), ReportOptions{Now: func() time.Time { return start }, Newest: map[string]string{"hi": "0.2", "lampi-service": "1.1"}})
	if err != nil || rep.Devices != n {
		b.Fatalf("report: %v, %d devices", err, rep.Devices)
	}
	newestTook, newestCPU := time.Since(newestStart), selfCPU()-newestCPU
	// What one rollout controller evaluation reads of the fleet.
	vsStart := time.Now()
	vs, err := s.VersionStats(b.Context(), VersionQuery{Package: "hi", Version: "0.2", StuckChecks: 3})
	if err != nil || vs.Devices != n {
		b.Fatalf("version stats: %v, %+v", err, vs)
	}
	vsTook := time.Since(vsStart)
	b.ReportMetric(float64(n)/took.Seconds(), "stored/s")
	// The CPU per stored report: what the ingest costs, whatever else
	// runs on the machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "ingest-cpu-µs/report")
	b.ReportMetric(float64(fi.Size())/(1<<20), "db-MiB")
	b.ReportMetric(float64(fi.Size())/float64(n), "db-B/device")
	b.ReportMetric(float64(ingestRSS)/1024, "ingest-peak-RSS-MiB")
	b.ReportMetric(float64(rssKiB())/1024, "report-peak-RSS-MiB")
	b.ReportMetric(repTook.Seconds(), "report-s")
	b.ReportMetric(newestTook.Seconds(), "report-newest-s")
	// CPU time, steadier than the time on a shared machine.
	b.ReportMetric(repCPU.Seconds(), "report-cpu-s")
	b.ReportMetric(newestCPU.Seconds(), "report-newest-cpu-s")
	b.ReportMetric(vsTook.Seconds(), "version-stats-s")
	b.Logf("%d devices stored in %v; database %d bytes; a full report took %v, with newest versions %v (%d behind); version stats %v",
		n, took.Round(time.Millisecond), fi.Size(), repTook.Round(time.Millisecond), newestTook.Round(time.Millisecond), len(rep.Packages[0].Behind), vsTook.Round(time.Millisecond))
}
