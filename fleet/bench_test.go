package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

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
	b.Run("mosquitto", func(b *testing.B) {
		benchIngest(b, startMosquitto(b, "allow_anonymous true"))
	})
	b.Run("embedded", func(b *testing.B) {
		br, err := StartBroker(context.Background(), BrokerOptions{Addr: "127.0.0.1:0", AllowAnonymous: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { br.Close() })
		benchIngest(b, br.URL())
	})
}

func benchIngest(b *testing.B, broker string) {
	nDev := benchEnv("FLEET_BENCH_DEVICES", 4000)
	perDev := benchEnv("FLEET_BENCH_REPORTS", 50)
	rate := benchEnv("FLEET_BENCH_RATE", 0)
	total := int64(nDev * perDev)
	ctx := context.Background()

	s := openTestStore(b, StoreOptions{})
	runCollector(b, s, CollectorOptions{Broker: broker, ClientID: "bench-collector",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})

	// The plain subscriber: paho with automatic acknowledgement.
	var plainN atomic.Int64
	var plainDone atomic.Int64
	plainCl, err := connectPlain(ctx, broker, func() {
		if plainN.Add(1) == total {
			plainDone.Store(time.Now().UnixNano())
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer plainCl.close()

	devs := make([]*rawDevice, nDev)
	g := newLimitGroup(64)
	for i := range devs {
		g.Go(func() (err error) {
			devs[i], err = dialRaw(broker, fmt.Sprintf("bench%05d", i), 16)
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
	// Reports are encoded before the clock starts.
	packets := make([][][]byte, nDev)
	for i, d := range devs {
		packets[i] = make([][]byte, perDev)
		for k := range perDev {
			// Periodic reports: the seq and time change, the versions
			// do not (the steady state of a fleet).
			st := testState(d.id, i, uint64(k+1))
			st.Packages["lampi-service"] = "1.0"
			packets[i][k] = publishPacket(state.StateTopic(state.DefaultPrefix, d.id), uint16(k+1), mustEncode(b, st))
		}
	}
	before := s.Stats()
	b.ResetTimer()
	start := time.Now()
	g = newLimitGroup(nDev)
	for i, d := range devs {
		g.Go(func() error {
			for k := range perDev {
				if rate > 0 {
					due := start.Add(time.Duration(float64(k*nDev+i) / float64(rate) * float64(time.Second)))
					if w := time.Until(due); w > 0 {
						time.Sleep(w)
					}
				}
				if err := d.send(packets[i][k]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	for {
		var acked, failed int64
		for _, d := range devs {
			acked += d.acked.Load()
			failed += d.failed.Load()
		}
		if failed > 0 {
			b.Fatalf("broker refused %d reports", failed)
		}
		if acked == total {
			break
		}
		time.Sleep(time.Millisecond)
	}
	published := time.Since(start)
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
		time.Sleep(2 * time.Millisecond)
	}
	for plainN.Load() < total && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	st := s.Stats()
	plainTook := time.Duration(plainDone.Load() - start.UnixNano())
	lost := total - int64(st.Stored-before.Stored)
	collRate := float64(total) / collected.Seconds()
	plainRate := float64(total) / plainTook.Seconds()
	b.ReportMetric(float64(total)/published.Seconds(), "published/s")
	b.ReportMetric(plainRate, "plain/s")
	b.ReportMetric(collRate, "collected/s")
	b.ReportMetric(collRate/plainRate, "ratio")
	b.ReportMetric(float64(lost), "lost")
	b.Logf("%d devices × %d reports = %d: published in %v, plain subscriber had all after %v, collector after %v; stats %+v",
		nDev, perDev, total, published.Round(time.Millisecond), plainTook.Round(time.Millisecond), collected.Round(time.Millisecond), st)
	if lost != 0 || st.Stale != before.Stale || st.Invalid != before.Invalid {
		b.Errorf("lost %d reports (stats %+v)", lost, st)
	}
}

// plainSub is a subscriber that counts and acknowledges, nothing else.
type plainSub struct{ d *device }

func (p *plainSub) close() { p.d.close() }

func connectPlain(ctx context.Context, broker string, got func()) (*plainSub, error) {
	d, err := connectDevice(ctx, broker, "bench-plain", deviceOptions{keepAlive: 60})
	if err != nil {
		return nil, err
	}
	d.cl.AddOnPublishReceived(func(paho.PublishReceived) (bool, error) {
		got()
		return true, nil
	})
	if _, err := d.cl.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "devices/+/state", QoS: 1}}}); err != nil {
		d.close()
		return nil, err
	}
	return &plainSub{d: d}, nil
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
// report (the RSS includes the database pages the report maps in).
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
	start := time.Now()
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
	took := time.Since(start)
	b.StopTimer()
	ingestRSS := rssKiB()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	repStart := time.Now()
	rep, err := s.Report(ReportOptions{Now: func() time.Time { return start }})
	if err != nil || rep.Devices != n {
		b.Fatalf("report: %v, %d devices", err, rep.Devices)
	}
	repTook := time.Since(repStart)
	b.ReportMetric(float64(n)/took.Seconds(), "stored/s")
	b.ReportMetric(float64(fi.Size())/(1<<20), "db-MiB")
	b.ReportMetric(float64(fi.Size())/float64(n), "db-B/device")
	b.ReportMetric(float64(ingestRSS)/1024, "ingest-peak-RSS-MiB")
	b.ReportMetric(float64(rssKiB())/1024, "report-peak-RSS-MiB")
	b.ReportMetric(repTook.Seconds(), "report-s")
	b.Logf("%d devices stored in %v; database %d bytes; a full report took %v", n, took.Round(time.Millisecond), fi.Size(), repTook.Round(time.Millisecond))
}
