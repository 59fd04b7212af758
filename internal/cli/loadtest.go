package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/loadtest"
)

type loadtestOptions struct {
	env                            *Env
	devices, connections, inflight int
	duration, pollInterval, settle time.Duration
	rate                           float64
	maxReports                     int64
	broker, server, codename       string
	qos                            int
	idPrefix, credentials, ca      string
	noStatus, noCheckDevices       bool
	subscribe                      bool
	allowRemote, jsonOut           bool
}

func newLoadtestCmd(env *Env, runF runFunc[loadtestOptions]) *cobra.Command {
	f := &loadtestOptions{env: env}
	cmd := &cobra.Command{
		Use:   "loadtest --devices N --duration D",
		Short: "Simulate a fleet of devices against the update server and its broker",
		Long: `Simulate N devices, like the course's malaria and locust runs: each polls
the update server with conditional GETs of dists/CODENAME/InRelease and
publishes its state report (retained, with a growing seq) to
devices/<id>/state over MQTT 5.

Prints the success rate, messages per second and latency (mean, stddev,
min, max, p50, p99; publish until PUBACK for QoS 1), and the drops: the
reports the broker acknowledged against the reports the collector stored,
read from the server's /api/v1/fleet/stats before and after the run (and
each device's stored seq from /api/v1/fleet/devices).

Each device has its own connection, with its id as client id and a Will,
unless --connections shares fewer among them. With per-device credentials
give --credentials FILE: lines of "DEVICE-ID PASSWORD", or what
'lampi-pkg device add' printed for the simulated ids (loadtest-0000 … for
--devices 4000: seq -f 'loadtest-%04g' 0 3999). One login for all
connections goes in the URL: mqtt://USER:PASSWORD@HOST:PORT.

The run is bounded by --duration and --max-reports and only targets this
machine unless --allow-remote. It exits 1 when a report or poll failed,
a report was dropped or the collector could not be read.`,
		Example: `  lampi-pkg loadtest --devices 1000 --duration 30s --rate 5000
  lampi-pkg loadtest --devices 4000 --connections 40 --duration 1m --rate 16700 --json
  lampi-pkg loadtest --devices 50 --duration 10s --server '' --broker mqtt://127.0.0.1:1884`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerb(cmd, runF, runLoadtest, f) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.devices, "devices", 100, "number of simulated devices")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long the devices report and poll")
	fl.Float64Var(&f.rate, "rate", 0, "state reports per second, all devices together (0: as fast as acknowledged)")
	fl.Int64Var(&f.maxReports, "max-reports", 0, "stop after this many state reports (0: no limit but the duration)")
	fl.StringVar(&f.broker, "broker", "mqtt://127.0.0.1:1883", "MQTT broker, mqtt://HOST:PORT or mqtts://HOST:PORT ('' for none)")
	fl.StringVar(&f.server, "server", "http://127.0.0.1:8080", "update server with the fleet API ('' for none)")
	fl.IntVar(&f.qos, "qos", 1, "QoS of the state reports, 0 or 1")
	fl.IntVar(&f.connections, "connections", 0, "MQTT connections shared by the devices (0: one per device)")
	fl.IntVar(&f.inflight, "inflight", 32, "reports in flight on one shared connection")
	fl.DurationVar(&f.pollInterval, "poll-interval", 10*time.Second, "each device's InRelease polling period (0 or less: no polling)")
	fl.StringVar(&f.codename, "codename", "stable", "distribution whose InRelease the devices poll")
	fl.StringVar(&f.idPrefix, "id-prefix", "loadtest-", "beginning of every simulated device id")
	fl.StringVar(&f.credentials, "credentials", "", `per-device MQTT logins: "DEVICE-ID PASSWORD" lines or 'device add' output`)
	fl.StringVar(&f.ca, "ca", "", "PEM file of the CA that signed an mqtts:// broker's certificate")
	fl.BoolVar(&f.subscribe, "subscribe", false, "also count the reports as a plain subscriber receives them (the broker's own rate)")
	fl.BoolVar(&f.noStatus, "no-status", false, "do not publish the devices' online/offline status")
	fl.BoolVar(&f.noCheckDevices, "no-check-devices", false, "do not read every device back from the API after the run")
	fl.DurationVar(&f.settle, "settle", 30*time.Second, "longest wait for the collector to catch up after the run")
	fl.BoolVar(&f.allowRemote, "allow-remote", false, "allow a broker or server that is not on this machine")
	fl.BoolVar(&f.jsonOut, "json", false, "print the result as JSON")
	return cmd
}

// runLoadtest runs the load until --duration, --max-reports or the first
// interrupt (Main's context), and still prints the result after an
// interrupt.
func runLoadtest(ctx context.Context, f *loadtestOptions) error {
	env := f.env
	opts, err := loadtestRunOptions(f)
	if err != nil {
		return err
	}
	res, err := loadtest.Run(ctx, opts)
	if opts.Progress != nil {
		fmt.Fprint(env.Err, "\r\033[K")
	}
	if err != nil {
		return loadtestError(err)
	}
	problems := res.Problems()
	if f.jsonOut {
		if err := writeJSON(env.Out, struct {
			*loadtest.Result
			Problems []string `json:"problems"`
		}{res, append([]string{}, problems...)}); err != nil {
			return err
		}
	} else if err := res.WriteText(env.Out); err != nil {
		return err
	}
	if len(problems) > 0 {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("loadtest: %s", strings.Join(problems, "; "))}
	}
	return nil
}

// loadtestRunOptions turns the flags into the load generator's options.
func loadtestRunOptions(f *loadtestOptions) (loadtest.Options, error) {
	env := f.env
	if f.qos != 0 && f.qos != 1 {
		return loadtest.Options{}, usageErrorf("--qos %d: state reports use QoS 0 or 1", f.qos)
	}
	if f.broker == "" && f.server == "" {
		return loadtest.Options{}, usageErrorf("nothing to load: give --broker, --server or both")
	}
	opts := loadtest.Options{
		Devices: f.devices, Duration: f.duration, Rate: f.rate, MaxReports: f.maxReports,
		Broker: f.broker, Server: f.server, QoS: byte(f.qos), Connections: f.connections, Inflight: f.inflight,
		Status: !f.noStatus, IDPrefix: f.idPrefix, Codename: f.codename, PollInterval: f.pollInterval,
		CheckDevices: !f.noCheckDevices, Subscribe: f.subscribe, Settle: f.settle, AllowRemote: f.allowRemote, Now: env.Now,
	}
	if f.pollInterval <= 0 {
		opts.PollInterval = -1
	}
	if f.credentials != "" {
		creds, err := readCredentials(f.credentials)
		if err != nil {
			return opts, err
		}
		opts.Credentials = func(id string) (string, []byte, bool) {
			p, ok := creds[id]
			return id, []byte(p), ok
		}
	}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return opts, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return opts, withHint(fmt.Errorf("--ca %s: no PEM certificate in the file", f.ca), "give the broker's CA certificate in PEM form")
		}
		opts.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if env.IsTerminal != nil && env.IsTerminal(env.Err) && !f.jsonOut {
		opts.Progress = func(p loadtest.Progress) {
			fmt.Fprintf(env.Err, "\r\033[K%s: %d reports sent, %d acked, %d failed, %d polls",
				p.Elapsed.Round(time.Second), p.Sent, p.Acked, p.Failed, p.Polls)
		}
	}
	return opts, nil
}

// loadtestError says what to do about the load generator's failures.
func loadtestError(err error) error {
	switch {
	case errors.Is(err, loadtest.ErrNotLoopback):
		return withHint(err, "run the load test on the server's machine, or pass --allow-remote if you mean it")
	case errors.Is(err, loadtest.ErrOptions):
		return &usageError{err}
	case errors.Is(err, loadtest.ErrRefused):
		return withHint(err, "give the devices' logins with --credentials FILE, or one login as mqtt://USER:PASSWORD@HOST:PORT")
	case errors.Is(err, loadtest.ErrConnect):
		return withHint(err, "start the broker (lampi-pkg serve starts one on 127.0.0.1:1883) or point --broker at it")
	}
	return err
}

// readCredentials reads device logins: "DEVICE-ID PASSWORD" lines, or
// the "ID ROLE SECRET" table that 'lampi-pkg device add' prints (its
// header and collector lines are skipped). Blank lines and lines starting
// with '#' are skipped too.
func readCredentials(path string) (map[string]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--credentials: %w", err)
	}
	defer fh.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 2:
			out[f[0]] = f[1]
		case len(f) == 3 && f[0] == "ID" && f[1] == "ROLE":
		case len(f) == 3 && f[1] == fleet.RoleCollector:
		case len(f) == 3 && f[1] == fleet.RoleDevice:
			out[f[0]] = f[2]
		default:
			return nil, withHint(fmt.Errorf("--credentials %s:%d: want \"DEVICE-ID PASSWORD\" or a line of 'lampi-pkg device add', found %d fields", path, n, len(f)),
				"write one device per line: its id, a space, its password")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--credentials %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--credentials %s: no device login in the file", path)
	}
	return out, nil
}
