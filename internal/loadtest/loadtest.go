// Package loadtest simulates a fleet of devices against an update server
// and its MQTT broker, the way the course's malaria and locust runs did:
// every simulated device polls the repository's InRelease with
// conditional GETs and publishes its state report (the agent's wire
// format, retained, with a growing seq) to devices/<id>/state. Run
// measures throughput, success rate and latency, and counts drops: the
// reports the broker acknowledged against the reports the collector
// says it stored, read back through the fleet JSON API. A plain
// subscriber (Options.Subscribe) gives the broker's own delivery rate to
// compare the collector with.
//
// Each device reports in seq order (one report in flight per device);
// seqs start from the clock, so a later run is always newer. Devices share
// MQTT connections or, by default, each has its own with a Will on its
// status topic, as lampi-agent does.
//
// A run is bounded in time (Duration), in size (Devices, Connections,
// MaxReports) and in place: brokers and servers must be on a loopback
// address unless AllowRemote is set.
package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/netutil"
)

// Limits of one run.
const (
	MaxDevices     = 1_000_000
	MaxConnections = 16_000
	MaxDuration    = 24 * time.Hour
)

// Options describes one run.
type Options struct {
	// Devices is how many devices are simulated (1 … MaxDevices).
	Devices int
	// Duration is how long devices report and poll (≤ MaxDuration).
	Duration time.Duration
	// Rate bounds the state reports per second of all devices together;
	// 0 publishes as fast as the broker acknowledges.
	Rate float64
	// MaxReports, when positive, ends the run (polling too) after that
	// many reports.
	MaxReports int64

	// Broker is mqtt://host:port or mqtts://host:port; empty: no MQTT.
	// A user and password in the URL log every connection in, unless
	// Credentials is set. Results show the URL without the password.
	Broker string
	// TLS configures mqtts:// connections (nil: system roots).
	TLS *tls.Config
	// QoS of the state reports: 0 or 1. Latency is publish → PUBACK for 1.
	QoS byte
	// Connections is how many MQTT connections the devices share; 0 or
	// Devices gives each device its own, with its id as client id and
	// username and a Will on its status topic, like a real agent.
	Connections int
	// Inflight bounds the reports in flight on one shared connection
	// (default 32); a device never has more than one.
	Inflight int
	// Credentials returns the username and password of a connection,
	// given its client id (the device id with one connection per device);
	// ok false connects anonymously.
	Credentials func(clientID string) (username string, password []byte, ok bool)
	// Subscribe adds a plain subscriber on the broker that counts the
	// run's reports as delivered: the baseline for the collector.
	Subscribe bool
	// Status, when set, publishes each device's retained "online" status
	// when it starts and "offline" when it stops.
	Status bool
	// Prefix is the topic prefix (default state.DefaultPrefix).
	Prefix string
	// IDPrefix starts every device id (default "loadtest-"); ids are the
	// prefix and the device's zero-padded number.
	IDPrefix string
	// Payload builds device i's report; nil uses DefaultPayload.
	Payload func(i int, id string, seq uint64, now time.Time) state.State

	// Server is the update server, http://host:port; empty: no polling
	// and no drop count.
	Server string
	// Codename selects dists/<Codename>/InRelease (default "stable").
	Codename string
	// PollInterval is each device's polling period (default 10 s);
	// negative: no polling.
	PollInterval time.Duration
	// Pollers bounds the concurrent HTTP requests (default 64).
	Pollers int
	// HTTPClient makes the requests (default: a client with enough idle
	// connections for Pollers).
	HTTPClient *http.Client
	// NoCollector skips the collector API (stats before and after).
	NoCollector bool
	// CheckDevices also reads every device from the API after the run and
	// counts simulated devices whose stored seq is below their last
	// acknowledged one.
	CheckDevices bool
	// Settle bounds the wait for the collector to catch up after the last
	// report (default 30 s); the wait ends early once everything
	// acknowledged is accounted for, or after 3 s without progress.
	Settle time.Duration

	// AllowRemote permits non-loopback brokers and servers.
	AllowRemote bool
	// Now is the clock (required).
	Now func() time.Time
	// Progress, if set, is called about once a second during the run.
	Progress func(Progress)

	defaultPayload bool // Payload is DefaultPayload: encoded by appendDefaultPayload
}

// Progress is a running count, for a status line.
type Progress struct {
	Elapsed     time.Duration
	Sent, Acked uint64
	Failed      uint64
	Polls       uint64
}

func (o *Options) check() error {
	switch {
	case o.Now == nil:
		return fmt.Errorf("%w: Now is required", ErrOptions)
	case o.Devices < 1 || o.Devices > MaxDevices:
		return fmt.Errorf("%w: devices %d: want 1 to %d", ErrOptions, o.Devices, MaxDevices)
	case o.Duration <= 0 || o.Duration > MaxDuration:
		return fmt.Errorf("%w: duration %v: want more than 0 and at most %v", ErrOptions, o.Duration, MaxDuration)
	case o.Rate < 0:
		return fmt.Errorf("%w: rate %v is negative", ErrOptions, o.Rate)
	case o.MaxReports < 0:
		return fmt.Errorf("%w: max reports %d is negative", ErrOptions, o.MaxReports)
	case o.QoS > 1:
		return fmt.Errorf("%w: QoS %d: state reports use 0 or 1", ErrOptions, o.QoS)
	case o.Connections < 0 || o.Connections > o.Devices && o.Connections != 0:
		return fmt.Errorf("%w: %d connections for %d devices: want 1 to the number of devices", ErrOptions, o.Connections, o.Devices)
	case o.Broker == "" && o.Server == "":
		return fmt.Errorf("%w: neither a broker nor a server to load", ErrOptions)
	}
	if o.Connections == 0 {
		o.Connections = o.Devices
	}
	if o.Broker != "" && o.Connections > MaxConnections {
		return fmt.Errorf("%w: %d connections: at most %d (share connections with a smaller connection count)", ErrOptions, o.Connections, MaxConnections)
	}
	if o.Inflight <= 0 {
		o.Inflight = 32
	}
	if o.Prefix == "" {
		o.Prefix = state.DefaultPrefix
	}
	if o.IDPrefix == "" {
		o.IDPrefix = "loadtest-"
	}
	if err := state.ValidDeviceID(o.IDPrefix + "0"); err != nil {
		return fmt.Errorf("%w: device id prefix %q: %v", ErrOptions, o.IDPrefix, err)
	}
	if len(deviceID(o.IDPrefix, o.Devices-1, o.Devices)) > state.MaxIDLen {
		return fmt.Errorf("%w: device id prefix %q is too long", ErrOptions, o.IDPrefix)
	}
	if o.Payload == nil {
		o.Payload = DefaultPayload
		o.defaultPayload = true
	}
	if o.Codename == "" {
		o.Codename = "stable"
	}
	if strings.ContainsAny(o.Codename, "/?#") || o.Codename == ".." || o.Codename == "." {
		return fmt.Errorf("%w: codename %q", ErrOptions, o.Codename)
	}
	if o.PollInterval == 0 {
		o.PollInterval = 10 * time.Second
	}
	if o.Pollers <= 0 {
		o.Pollers = 64
	}
	if o.Settle <= 0 {
		o.Settle = 30 * time.Second
	}
	return nil
}

// checkLoopback refuses a URL whose host is not a loopback address (or
// "localhost") unless remote hosts are allowed.
func checkLoopback(what, raw string, schemes []string, allowRemote bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %v", ErrOptions, what, raw, err)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok || u.Host == "" {
		return nil, fmt.Errorf("%w: %s %q: want %s://HOST:PORT or %s://HOST:PORT", ErrOptions, what, raw, schemes[0], schemes[1])
	}
	if allowRemote {
		return u, nil
	}
	if netutil.IsLoopbackHost(u.Hostname()) {
		return u, nil
	}
	return nil, fmt.Errorf("%s %s: %w: a load test only targets this machine unless remote hosts are allowed", what, raw, ErrNotLoopback)
}

// deviceID is the id of device i among n: the prefix and i padded to the
// width of n-1.
func deviceID(prefix string, i, n int) string {
	w := len(fmt.Sprint(max(n-1, 0)))
	return fmt.Sprintf("%s%0*d", prefix, w, i)
}

// DefaultPayload is a plausible mid-rollout report: package hi is at 0.3
// on 70 % of the devices, 0.2 on 20 %, 0.1 on 10 %; lampi-service 1.2.0
// on 95 % and 1.1.0 on the rest; every report is "up-to-date".
func DefaultPayload(i int, id string, seq uint64, now time.Time) state.State {
	hi, svc := defaultVersions(i)
	return state.State{Seq: seq, Time: now, Device: id, Agent: "lampi-loadtest", Arch: "armhf",
		Packages: map[string]string{"hi": hi, "lampi-service": svc}, LastCheck: now, Result: state.ResultUpToDate}
}

func defaultVersions(i int) (hi, svc string) {
	hi = "0.3"
	switch {
	case i%10 == 9:
		hi = "0.1"
	case i%10 >= 7:
		hi = "0.2"
	}
	svc = "1.2.0"
	if i%20 == 19 {
		svc = "1.1.0"
	}
	return hi, svc
}

// appendDefaultPayload appends the JSON of DefaultPayload(i, id, seq,
// now) as state.Encode writes it, without reflection or allocation; the
// publisher checks it against state.Encode on each device's first report.
func appendDefaultPayload(b []byte, i int, id string, seq uint64, now time.Time) []byte {
	hi, svc := defaultVersions(i)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","device":"`...)
	b = append(b, id...)
	b = append(b, `","agent":"lampi-loadtest","arch":"armhf","packages":{"hi":"`...)
	b = append(b, hi...)
	b = append(b, `","lampi-service":"`...)
	b = append(b, svc...)
	b = append(b, `"},"last_check":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	return append(b, `","result":"`+state.ResultUpToDate+`"}`...)
}

// urls checks the broker and server addresses (nil when not given).
func (o *Options) urls() (brokerURL, serverURL *url.URL, err error) {
	if o.Broker != "" {
		if brokerURL, err = checkLoopback("broker", o.Broker, []string{"mqtt", "mqtts", "tcp", "ssl"}, o.AllowRemote); err != nil {
			return nil, nil, err
		}
	}
	if o.Server != "" {
		if serverURL, err = checkLoopback("server", o.Server, []string{"http", "https"}, o.AllowRemote); err != nil {
			return nil, nil, err
		}
	}
	return brokerURL, serverURL, nil
}

// collectorBefore reads the collector's counters before the run into
// res.Collector and returns api, or nil (the error in res.Collector)
// when they cannot be read.
func collectorBefore(ctx context.Context, api *apiClient, res *Result) *apiClient {
	res.Collector = &CollectorResult{}
	before, err := api.stats(ctx)
	if err != nil {
		res.Collector.Error = err.Error()
		return nil
	}
	res.Collector.Before = before
	return api
}

// Run performs one load test and reports what happened. It returns an
// error only when the run could not take place (bad options, no broker
// connection at all); failed publishes, failed polls and drops are
// counted in the Result. Cancelling ctx ends the load phase early; the
// devices still say goodbye and the collector is still read, each bounded
// by Options.Settle.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	brokerURL, serverURL, err := opts.urls()
	if err != nil {
		return nil, err
	}
	res := &Result{Devices: opts.Devices}
	var api *apiClient
	if serverURL != nil && !opts.NoCollector && brokerURL != nil {
		api = collectorBefore(ctx, newAPIClient(serverURL, opts.httpClient()), res)
	}

	var pub *publisher
	if brokerURL != nil {
		res.Connections = opts.Connections
		if pub, err = connect(ctx, brokerURL, &opts); err != nil {
			return nil, err
		}
	}

	var plain *plainSubscriber
	if pub != nil && opts.Subscribe {
		if plain, err = subscribePlain(ctx, brokerURL, &opts); err != nil {
			pub.close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("%w %s: %w", ErrConnect, pub.broker, err)
		}
	}

	start := opts.Now()
	var tracker *statsTracker
	if api != nil {
		tracker = startTracker(context.WithoutCancel(ctx), api, res.Collector.Before, opts.Now)
	}
	poll := runLoad(ctx, &opts, serverURL, pub, start)
	elapsed := opts.Now().Sub(start)
	res.Duration = elapsed
	// Cancelling ctx only ends the load phase early: the teardown and the
	// wait for the collector still happen, bounded by opts.Settle each.
	ctx = context.WithoutCancel(ctx)
	if pub != nil {
		// Leave politely, but never for longer than the settle time.
		closeCtx, cancelClose := context.WithTimeout(ctx, opts.Settle)
		pub.close(closeCtx)
		cancelClose()
		res.MQTT = pub.result(elapsed)
		if plain != nil {
			res.Subscriber = plain.finish(res.MQTT.Acked, start)
		}
	}
	if poll != nil {
		res.HTTP = poll.result(elapsed)
	}
	if api != nil {
		settle(ctx, tracker, api, res, pub, &opts, start)
	}
	res.SuccessRate = res.successRate()
	return res, nil
}

// runLoad is the load phase: pub publishes and, with a server and a poll
// interval, a poller fetches from the server, until opts.Duration has
// passed, ctx ends or pub is done; progress is reported meanwhile. It
// returns the poller (nil without one) for its result.
func runLoad(ctx context.Context, opts *Options, serverURL *url.URL, pub *publisher, start time.Time) *poller {
	runCtx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	done := make(chan struct{})
	var poll *poller
	if serverURL != nil && opts.PollInterval > 0 {
		poll = newPoller(serverURL, opts)
		go func() { poll.run(runCtx, start); done <- struct{}{} }()
	}
	if pub != nil {
		go func() {
			pub.run(runCtx, start)
			cancel() // MaxReports reached (or every connection lost): the run is over
			done <- struct{}{}
		}()
	}
	stopProgress := make(chan struct{})
	if opts.Progress != nil {
		go progressLoop(opts, start, pub, poll, stopProgress)
	}
	for range btoi(poll != nil) + btoi(pub != nil) {
		<-done
	}
	close(stopProgress)
	return poll
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func progressLoop(opts *Options, start time.Time, pub *publisher, poll *poller, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p := Progress{Elapsed: opts.Now().Sub(start)}
		if pub != nil {
			p.Sent, p.Acked, p.Failed = pub.sent.Load(), pub.acked.Load(), pub.failed.Load()
		}
		if poll != nil {
			p.Polls = poll.requests.Load()
		}
		opts.Progress(p)
	}
}

func (o *Options) httpClient() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	tr := &http.Transport{
		Proxy:               nil, // loopback targets; never through a proxy
		MaxIdleConns:        o.Pollers + 4,
		MaxIdleConnsPerHost: o.Pollers + 4,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
	}
	o.HTTPClient = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return o.HTTPClient
}
