package loadtest

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

func TestRunAgainstMosquitto(t *testing.T) {
	broker := startMosquitto(t, "allow_anonymous true")
	sub := subscribe(t, broker)
	srv := newFakeServer(t, sub)
	const devices = 20
	res, err := Run(context.Background(), Options{
		Devices: devices, Duration: 1500 * time.Millisecond, Rate: 200, QoS: 1, Status: true,
		Broker: broker, Server: srv.URL, PollInterval: 250 * time.Millisecond, CheckDevices: true,
		Subscribe: true, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := res.MQTT
	if m == nil || m.Sent == 0 || m.Acked != m.Sent || m.Failed != 0 || m.Connections != devices || m.ConnectErrors != 0 {
		t.Fatalf("mqtt %+v", m)
	}
	// The rate is a bound: 200/s for 1.5 s, plus one per device of slack.
	if m.Sent > 300+devices {
		t.Errorf("sent %d reports at 200/s in 1.5 s", m.Sent)
	}
	if m.StatusSent != 2*devices || m.StatusAcked != 2*devices {
		t.Errorf("status messages %d sent, %d acked; want %d", m.StatusSent, m.StatusAcked, 2*devices)
	}
	l := m.Latency
	if l.Count != m.Acked || l.Min <= 0 || l.Min > l.P50 || l.P50 > l.P99 || l.P99 > l.Max || l.Mean < l.Min || l.Mean > l.Max {
		t.Errorf("latency %+v", l)
	}

	// Everything acknowledged reached the subscriber, in order and valid.
	if got := sub.waitReports(int(m.Acked)); got != int(m.Acked) {
		t.Errorf("subscriber got %d reports, broker acknowledged %d", got, m.Acked)
	}
	sub.mu.Lock()
	if len(sub.invalid) > 0 || sub.outOrder > 0 || len(sub.seq) != devices {
		t.Errorf("invalid %q, out of order %d, devices %d", sub.invalid, sub.outOrder, len(sub.seq))
	}
	for id, st := range sub.states {
		if st.Agent != "lampi-loadtest" || st.Packages["hi"] == "" || st.Result != state.ResultUpToDate {
			t.Errorf("%s reported %+v", id, st)
		}
		if sub.status[id] != state.Offline {
			t.Errorf("%s status %q at the end, want offline", id, sub.status[id])
		}
	}
	if st := sub.states["loadtest-07"]; st.Packages["hi"] != "0.2" {
		t.Errorf("device 7 runs hi %q, want 0.2", st.Packages["hi"])
	}
	sub.mu.Unlock()

	if s := res.Subscriber; s == nil || s.Received != m.Acked || s.Missing != 0 || s.Invalid != 0 || s.Latency.Count != m.Acked {
		t.Errorf("plain subscriber %+v", s)
	}
	c := res.Collector
	if c == nil || c.Error != "" || !c.Settled || c.Drops != 0 || c.Stored != m.Acked || c.Before.Stored != 1000 || c.PerSecond <= 0 ||
		!c.DevicesChecked || c.DevicesBehind != 0 {
		t.Errorf("collector %+v", c)
	}

	h := res.HTTP
	if h == nil || h.Requests == 0 || h.OK+h.NotModified != h.Requests || h.Errors+h.OtherStatus != 0 {
		t.Fatalf("http %+v", h)
	}
	// Each device fetches InRelease once and then only asks whether it
	// changed.
	if h.OK > devices || h.NotModified == 0 || h.Latency.Count != h.Requests {
		t.Errorf("http %+v", h)
	}
	srv.mu.Lock()
	if srv.conditional != int(h.NotModified) {
		t.Errorf("server saw %d conditional GETs, client counted %d 304s", srv.conditional, h.NotModified)
	}
	srv.mu.Unlock()
	if res.SuccessRate != 1 || len(res.Problems()) != 0 {
		t.Errorf("success %v, problems %q", res.SuccessRate, res.Problems())
	}
	var out strings.Builder
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"loadtest: 20 devices", "QoS 1, 20 connections", "failed 0 (100.00%)", "latency mean ", " p99 ", "drops 0", "subscriber received ", "missing 0", "× the plain subscriber", "success rate 100.00%"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunSharedConnectionsMaxReports(t *testing.T) {
	broker := startMosquitto(t, "allow_anonymous true")
	sub := subscribe(t, broker)
	res, err := Run(context.Background(), Options{
		Devices: 50, Connections: 3, Inflight: 4, Duration: time.Minute, MaxReports: 300, QoS: 1,
		Broker: broker, IDPrefix: "lamp-", Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.MQTT; m.Sent != 300 || m.Acked != 300 || m.Connections != 3 || m.StatusSent != 0 {
		t.Fatalf("mqtt %+v", m)
	}
	if res.Collector != nil || res.HTTP != nil {
		t.Error("collector or polling without a server")
	}
	if got := sub.waitReports(300); got != 300 {
		t.Errorf("subscriber got %d of 300", got)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	// 12 workers share 50 devices round robin: every device reported, in
	// seq order.
	if len(sub.seq) != 50 || sub.outOrder != 0 || len(sub.invalid) != 0 {
		t.Errorf("%d devices, %d out of order, invalid %q", len(sub.seq), sub.outOrder, sub.invalid)
	}
	if _, ok := sub.seq["lamp-49"]; !ok {
		t.Error("lamp-49 never reported")
	}
}

func TestRunCountsDrops(t *testing.T) {
	broker := startMosquitto(t, "allow_anonymous true")
	sub := subscribe(t, broker)
	srv := newFakeServer(t, sub)
	srv.hide = 5
	srv.hideDevices["loadtest-3"] = true
	res, err := Run(context.Background(), Options{
		Devices: 10, Duration: time.Minute, MaxReports: 40, QoS: 1, Broker: broker, Server: srv.URL,
		PollInterval: -1, CheckDevices: true, Settle: time.Second, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Collector
	if c.Drops != 5 || c.Settled || c.DevicesBehind != 1 || !slices.Equal(c.BehindSample, []string{"loadtest-3"}) {
		t.Errorf("collector %+v", c)
	}
	if res.HTTP != nil {
		t.Error("polled with PollInterval < 0")
	}
	p := strings.Join(res.Problems(), "\n")
	if !strings.Contains(p, "5 acknowledged reports never reached the collector") || !strings.Contains(p, "1 devices' newest report is missing") {
		t.Errorf("problems: %s", p)
	}
}

// TestRunBrokerDies kills the broker mid-run: the run still ends, and
// says that reports failed.
func TestRunBrokerDies(t *testing.T) {
	broker, proc := startMosquittoKillable(t, "allow_anonymous true")
	sub := subscribe(t, broker)
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Run(context.Background(), Options{Devices: 5, Connections: 1, Duration: 3 * time.Second, Rate: 50,
			Broker: broker, Status: true, Settle: time.Second, Now: time.Now})
		done <- outcome{res, err}
	}()
	sub.waitReports(10)
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	m := o.res.MQTT
	if m.Acked < 10 || m.Failed == 0 || m.Sent != m.Acked+m.Failed {
		t.Errorf("mqtt %+v", m)
	}
	if p := strings.Join(o.res.Problems(), "; "); !strings.Contains(p, "state reports were not acknowledged") {
		t.Errorf("problems: %s", p)
	}
}

func TestRunBrokerRefuses(t *testing.T) {
	broker := startMosquitto(t, "allow_anonymous false")
	_, err := Run(context.Background(), Options{Devices: 3, Duration: time.Second, Broker: broker, Now: time.Now})
	if err == nil || !strings.Contains(err.Error(), "connect to broker") || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("err = %v", err)
	}
}

func TestRunPollErrors(t *testing.T) {
	srv := newFakeServer(t, nil)
	res, err := Run(context.Background(), Options{Devices: 4, Duration: 300 * time.Millisecond, Server: srv.URL,
		Codename: "nosuch", PollInterval: 100 * time.Millisecond, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := res.HTTP
	if h.Requests == 0 || h.OtherStatus != h.Requests || len(h.ErrorMessages) != 1 || !strings.Contains(h.ErrorMessages[0], "404 Not Found") {
		t.Errorf("http %+v", h)
	}
	if res.MQTT != nil || res.Collector != nil || res.SuccessRate != 0 {
		t.Errorf("result %+v", res)
	}
	if p := res.Problems(); len(p) != 1 || !strings.Contains(p[0], "polls of "+srv.URL+"/dists/nosuch/InRelease failed") {
		t.Errorf("problems %q", p)
	}
}

func TestOptionsRefused(t *testing.T) {
	good := Options{Devices: 1, Duration: time.Second, Broker: "mqtt://127.0.0.1:1", Now: time.Now}
	for name, mod := range map[string]func(*Options){
		"no clock":          func(o *Options) { o.Now = nil },
		"no devices":        func(o *Options) { o.Devices = 0 },
		"too many devices":  func(o *Options) { o.Devices = MaxDevices + 1 },
		"no duration":       func(o *Options) { o.Duration = 0 },
		"endless":           func(o *Options) { o.Duration = 25 * time.Hour },
		"qos 2":             func(o *Options) { o.QoS = 2 },
		"negative rate":     func(o *Options) { o.Rate = -1 },
		"more conns":        func(o *Options) { o.Connections = 2 },
		"nothing to load":   func(o *Options) { o.Broker = "" },
		"bad id prefix":     func(o *Options) { o.IDPrefix = "a/b" },
		"long id prefix":    func(o *Options) { o.IDPrefix = strings.Repeat("x", 64) },
		"codename escapes":  func(o *Options) { o.Codename = "../x" },
		"too many conns":    func(o *Options) { o.Devices = MaxConnections + 1 },
		"bad broker scheme": func(o *Options) { o.Broker = "http://127.0.0.1:1883" },
	} {
		o := good
		mod(&o)
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrOptions) {
			t.Errorf("%s: err = %v, want ErrOptions", name, err)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, raw := range []string{"mqtt://10.0.0.1:1883", "mqtt://example.com:1883", "mqtt://[::ffff:8.8.8.8]:1", "mqtt://0.0.0.0:1883"} {
		if _, err := checkLoopback("broker", raw, []string{"mqtt", "mqtts"}, false); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("%s: %v", raw, err)
		}
		if _, err := checkLoopback("broker", raw, []string{"mqtt", "mqtts"}, true); err != nil {
			t.Errorf("%s with remote allowed: %v", raw, err)
		}
	}
	for _, raw := range []string{"mqtt://127.0.0.1:1883", "mqtt://localhost", "mqtt://[::1]:1883", "mqtt://127.8.9.10:1"} {
		if _, err := checkLoopback("broker", raw, []string{"mqtt", "mqtts"}, false); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
	_, err := Run(context.Background(), Options{Devices: 1, Duration: time.Second, Server: "http://192.0.2.1/", Now: time.Now})
	if !errors.Is(err, ErrNotLoopback) {
		t.Errorf("remote server: %v", err)
	}
}

func TestLatencyPercentiles(t *testing.T) {
	r := newRecorder()
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for g := 0; g < 4; g++ {
		tl := r.tally()
		for i := 0; i < 5000; i++ {
			// Log-uniform from 1 µs to 1 s.
			d := time.Duration(float64(int64(1000)<<rng.IntN(20)) * (1 + rng.Float64()))
			tl.add(d)
			all = append(all, d)
		}
		tl.done()
	}
	slices.Sort(all)
	l := r.summary()
	if l.Count != uint64(len(all)) || l.Min != all[0] || l.Max != all[len(all)-1] {
		t.Fatalf("summary %+v", l)
	}
	for _, c := range []struct {
		got  time.Duration
		want time.Duration
	}{{l.P50, all[len(all)/2-1]}, {l.P99, all[len(all)*99/100-1]}} {
		if diff := float64(c.got-c.want) / float64(c.want); diff > 0.002 || diff < -0.002 {
			t.Errorf("percentile %v, exact %v", c.got, c.want)
		}
	}
	var sum float64
	for _, d := range all {
		sum += float64(d)
	}
	if mean := time.Duration(sum / float64(len(all))); (l.Mean - mean).Abs() > time.Microsecond {
		t.Errorf("mean %v, want %v", l.Mean, mean)
	}
	if (Latency{}) != newRecorder().summary() {
		t.Error("empty recorder has a summary")
	}
	for _, v := range []uint64{0, 1, 2047, 2048, 2049, 1 << 20, 1<<40 + 12345, 1<<63 + 5} {
		if mid := bucketMid(bucketOf(v)); bucketOf(mid) != bucketOf(v) {
			t.Errorf("bucket of %d: middle %d lies elsewhere", v, mid)
		}
	}
}
