package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/fleet"
)

func newFleetCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Collect device reports over MQTT and tell which device runs which version",
		Long: `Devices running lampi-agent publish their state (installed versions, last
update result) to devices/<id>/state and their online/offline status to
devices/<id>/status. The collector stores the newest report of each device;
the other verbs read what it stored, from the fleet database (--db) or from a
running server or collector (--server URL).`,
	}
	cmd.AddCommand(newFleetCollectCmd(env), newFleetReportCmd(env), newFleetDevicesCmd(env),
		newFleetDeviceCmd(env), newFleetHistoryCmd(env), newFleetBrokerCmd(env), newFleetResetCmd(env))
	return cmd
}

// fleetSource is where the query verbs read: a database file or the API.
type fleetSource struct {
	db     string
	server string
}

func (f *fleetSource) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "read from the fleet API of a running server or collector at `URL` (e.g. http://127.0.0.1:8080)")
	cmd.Flags().StringVar(&f.db, "db", "fleet.db", "read the fleet database at `PATH` (when no --server)")
}

// open returns the reader the flags name and what closes it.
func (f *fleetSource) open(env *Env) (fleet.Reader, func(), error) {
	if f.server != "" {
		return &fleet.APIClient{Base: f.server, HTTP: &http.Client{Timeout: time.Minute}}, func() {}, nil
	}
	s, err := openFleetDB(f.db, true, env)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { s.Close() }, nil
}

type outputFormat struct{ json, csv bool }

func (o *outputFormat) flags(cmd *cobra.Command, withCSV bool) {
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	if withCSV {
		cmd.Flags().BoolVar(&o.csv, "csv", false, "print CSV")
		cmd.MarkFlagsMutuallyExclusive("json", "csv")
	}
}

func newFleetReportCmd(env *Env) *cobra.Command {
	var src fleetSource
	var out outputFormat
	var pkg string
	var stale, staleView time.Duration
	var newest []string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Version distribution per package, devices behind, offline, failed and with a stale view of the repository",
		Long: `Print, per package, how many devices run each version (count and share of
the devices that have the package), how many are behind the newest published
version, then the offline devices with the age of their last sign of life,
the devices whose last update failed (or is held back after a rollback),
with the reason, and the devices whose view of the repository is stale.

The newest published versions come from the server (--server); with --db
give them with --newest NAME=VERSION. --stale 24h lists only the devices
offline for at least 24 hours.

A device's view of the repository is the Date of the newest Release it
accepted (lampi-agent reports it). --stale-view D (default 336h, 14 days:
twice a weekly ValidFor) lists the devices whose view is at least that old:
they cannot reach the repository, or a mirror, a cache or an attacker keeps
serving them an old Release (a freeze attack). --stale-view 0: no list.`,
		Example: `  lampi-pkg fleet report --server http://127.0.0.1:8080
  lampi-pkg fleet report --db fleet.db --package hi --newest hi=0.2 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			nv := map[string]string{}
			for _, s := range newest {
				name, v, ok := strings.Cut(s, "=")
				if !ok || name == "" || v == "" {
					return usageErrorf("--newest %q: want NAME=VERSION", s)
				}
				nv[name] = v
			}
			r, done, err := src.open(env)
			if err != nil {
				return err
			}
			defer done()
			if staleView < 0 {
				return usageErrorf("--stale-view %v: want a duration such as 336h, or 0 for no list", staleView)
			}
			if staleView == 0 {
				staleView = -1 // no list
			}
			rep, err := r.Report(cmd.Context(), fleet.ReportOptions{Package: pkg, Stale: stale, StaleView: staleView, Newest: nv, Now: env.Now})
			if err != nil {
				return err
			}
			switch {
			case out.json:
				return writeJSON(env.Out, rep)
			case out.csv:
				return reportCSV(env.Out, rep)
			}
			return reportText(env.Out, rep)
		},
	}
	src.flags(cmd)
	out.flags(cmd, true)
	cmd.Flags().StringVar(&pkg, "package", "", "report only package `P` (and devices that have it)")
	cmd.Flags().DurationVar(&stale, "stale", 0, "list only devices offline for at least `D` (e.g. 24h)")
	cmd.Flags().DurationVar(&staleView, "stale-view", fleet.DefaultStaleView, "list devices whose newest accepted Release is at least `D` old (0: no list)")
	cmd.Flags().StringArrayVar(&newest, "newest", nil, "newest published version, `NAME=VERSION` (repeatable; with --db)")
	return cmd
}

func reportText(w io.Writer, r *fleet.Report) error {
	fmt.Fprintf(w, "%d devices: %d online, %d offline (at %s)\n", r.Devices, r.Online, r.Offline, r.Generated.Format(time.RFC3339))
	for _, p := range r.Packages {
		fmt.Fprintf(w, "\n%s", p.Name)
		if p.Newest != "" {
			fmt.Fprintf(w, " (newest %s): %d installed, %d up to date, %d behind\n", p.Newest, p.Installed, p.UpToDate, len(p.Behind))
		} else {
			fmt.Fprintf(w, ": %d installed\n", p.Installed)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, v := range p.Versions {
			fmt.Fprintf(tw, "  %s\t%d\t%.1f%%\n", v.Version, v.Count, v.Share*100)
		}
		tw.Flush()
	}
	if len(r.OfflineDevices) > 0 {
		fmt.Fprintf(w, "\noffline (%d):\n", len(r.OfflineDevices))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, d := range r.OfflineDevices {
			fmt.Fprintf(tw, "  %s\tlast seen %s\n", d.ID, ageText(d.LastSeen, d.Age))
		}
		tw.Flush()
	}
	if len(r.FailedDevices) > 0 {
		fmt.Fprintf(w, "\nfailed (%d):\n", len(r.FailedDevices))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, d := range r.FailedDevices {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", d.ID, d.Result, oneLine(d.Error))
		}
		tw.Flush()
	}
	if len(r.StaleViewDevices) > 0 {
		fmt.Fprintf(w, "\nstale view of the repository (%d, newest accepted Release at least %s old):\n", len(r.StaleViewDevices), durationText(r.StaleView))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, d := range r.StaleViewDevices {
			fmt.Fprintf(tw, "  %s\tRelease of %s\tlast check %s\tlast seen %s\n", d.ID, timeText(d.ReleaseDate),
				ageText(d.LastCheck, r.Generated.Sub(d.LastCheck)), ageText(d.LastSeen, d.Age))
		}
		tw.Flush()
	}
	return nil
}

func ageText(seen time.Time, age time.Duration) string {
	if seen.IsZero() {
		return "never"
	}
	switch {
	case age < time.Minute:
		return fmt.Sprintf("%ds ago", int(age.Seconds()))
	case age < time.Hour:
		return fmt.Sprintf("%dm ago", int(age.Minutes()))
	case age < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(age.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(age.Hours()/24))
}

// durationText writes whole days as such ("14d"), other durations as Go
// does ("36h0m0s").
func durationText(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// oneLine keeps device-supplied text from breaking the table.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func reportCSV(w io.Writer, r *fleet.Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"package", "version", "count", "share", "newest", "behind"})
	for _, p := range r.Packages {
		for _, v := range p.Versions {
			behind := ""
			if p.Newest != "" {
				behind = strconv.FormatBool(deb.CompareLoose(v.Version, p.Newest) < 0)
			}
			cw.Write([]string{p.Name, v.Version, strconv.Itoa(v.Count), strconv.FormatFloat(v.Share, 'f', 4, 64), p.Newest, behind})
		}
	}
	cw.Flush()
	return cw.Error()
}

func newFleetDevicesCmd(env *Env) *cobra.Command {
	var src fleetSource
	var out outputFormat
	var stale time.Duration
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List the devices with status, last sign of life and installed versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, done, err := src.open(env)
			if err != nil {
				return err
			}
			defer done()
			devs, err := r.Devices(cmd.Context(), stale)
			if err != nil {
				return err
			}
			switch {
			case out.json:
				return writeJSON(env.Out, devs)
			case out.csv:
				cw := csv.NewWriter(env.Out)
				cw.Write([]string{"id", "online", "last_seen", "seq", "result", "error", "packages", "release_date"})
				for _, d := range devs {
					cw.Write([]string{d.ID, strconv.FormatBool(d.Online), timeText(d.LastSeen), strconv.FormatUint(d.State.Seq, 10),
						d.State.Result, d.State.Error, packagesText(d.State.Packages), timeText(d.State.ReleaseDate)})
				}
				cw.Flush()
				return cw.Error()
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tLAST SEEN\tRESULT\tPACKAGES")
			now := env.Now()
			for _, d := range devs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, onlineText(d.Online), ageText(d.LastSeen, now.Sub(d.LastSeen)),
					d.State.Result, packagesText(d.State.Packages))
			}
			return tw.Flush()
		},
	}
	src.flags(cmd)
	out.flags(cmd, true)
	cmd.Flags().DurationVar(&stale, "stale", 0, "list only devices not seen for at least `D` (e.g. 24h)")
	return cmd
}

func onlineText(b bool) string {
	if b {
		return "online"
	}
	return "offline"
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func packagesText(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

func newFleetDeviceCmd(env *Env) *cobra.Command {
	var src fleetSource
	var out outputFormat
	cmd := &cobra.Command{
		Use:   "device ID",
		Short: "Show what one device last reported",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, done, err := src.open(env)
			if err != nil {
				return err
			}
			defer done()
			d, err := r.Device(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if out.json {
				return writeJSON(env.Out, d)
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "id:\t%s\n", d.ID)
			fmt.Fprintf(tw, "status:\t%s (since %s)\n", onlineText(d.Online), timeText(d.StatusTime))
			fmt.Fprintf(tw, "last seen:\t%s\n", timeText(d.LastSeen))
			fmt.Fprintf(tw, "seq:\t%d\n", d.State.Seq)
			fmt.Fprintf(tw, "reported at:\t%s\n", timeText(d.State.Time))
			fmt.Fprintf(tw, "agent:\t%s\n", d.State.Agent)
			fmt.Fprintf(tw, "arch:\t%s\n", d.State.Arch)
			fmt.Fprintf(tw, "last check:\t%s\n", timeText(d.State.LastCheck))
			fmt.Fprintf(tw, "release date:\t%s\n", timeText(d.State.ReleaseDate))
			fmt.Fprintf(tw, "result:\t%s\n", d.State.Result)
			if d.State.Error != "" {
				fmt.Fprintf(tw, "error:\t%s\n", oneLine(d.State.Error))
			}
			for _, k := range slices.Sorted(maps.Keys(d.State.Packages)) {
				fmt.Fprintf(tw, "package:\t%s %s\n", k, d.State.Packages[k])
			}
			return tw.Flush()
		},
	}
	src.flags(cmd)
	out.flags(cmd, false)
	return cmd
}

func newFleetHistoryCmd(env *Env) *cobra.Command {
	var src fleetSource
	var out outputFormat
	cmd := &cobra.Command{
		Use:   "history ID",
		Short: "Show a device's audit log: version changes and update results",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, done, err := src.open(env)
			if err != nil {
				return err
			}
			defer done()
			h, err := r.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			switch {
			case out.json:
				return writeJSON(env.Out, h)
			case out.csv:
				cw := csv.NewWriter(env.Out)
				cw.Write([]string{"time", "seq", "package", "from", "to", "result", "error"})
				for _, e := range h {
					cw.Write([]string{timeText(e.Time), strconv.FormatUint(e.Seq, 10), e.Package, e.From, e.To, e.Result, e.Error})
				}
				cw.Flush()
				return cw.Error()
			}
			for _, e := range h {
				switch {
				case e.Package != "" && e.From == "":
					fmt.Fprintf(env.Out, "%s  #%d  %s %s installed\n", timeText(e.Time), e.Seq, e.Package, e.To)
				case e.Package != "" && e.To == "":
					fmt.Fprintf(env.Out, "%s  #%d  %s %s removed\n", timeText(e.Time), e.Seq, e.Package, e.From)
				case e.Package != "":
					fmt.Fprintf(env.Out, "%s  #%d  %s %s → %s\n", timeText(e.Time), e.Seq, e.Package, e.From, e.To)
				default:
					fmt.Fprintf(env.Out, "%s  #%d  update %s", timeText(e.Time), e.Seq, e.Result)
					if len(e.Target) > 0 {
						fmt.Fprintf(env.Out, " (%s)", packagesText(e.Target))
					}
					if e.Error != "" {
						fmt.Fprintf(env.Out, ": %s", oneLine(e.Error))
					}
					fmt.Fprintln(env.Out)
				}
			}
			return nil
		},
	}
	src.flags(cmd)
	out.flags(cmd, true)
	return cmd
}

type collectOptions struct {
	broker, db, group, clientID string
	username, passwordFile      string
	caFile, certFile, keyFile   string
	listen                      string
	batchSize                   int
	batchDelay                  time.Duration
}

func newFleetCollectCmd(env *Env) *cobra.Command {
	o := &collectOptions{}
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Run the collector alone: MQTT broker → fleet database",
		Long: `Subscribe to devices/+/state and devices/+/status (QoS 1, persistent
session) on --broker and store the newest report of each device in --db,
acknowledging each message only once it is committed: a collector that is
killed and restarted loses nothing, the broker keeps what it did not
acknowledge. 'lampi-pkg serve' runs the same collector inside the server.

--group NAME uses the MQTT 5 shared subscription $share/NAME/… so several
collectors (each with its own login, or --client-id, and database) split
the load. The persistent session is named by the login (--username): a
broker that binds client ids to logins, as lampi-pkg's does, refuses any
other client id.
--listen ADDR serves the fleet JSON API, for 'fleet report --server'.
Stop with SIGINT or SIGTERM.`,
		Example: `  lampi-pkg fleet collect --broker mqtt://127.0.0.1:1883 --db fleet.db --listen 127.0.0.1:8081
  lampi-pkg fleet collect --broker mqtts://broker.example:8883 --ca-file ca.pem \
      --username collector --password-file /etc/lampi/collector.secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runCollect(cmd.Context(), env, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.broker, "broker", "mqtt://"+fleet.DefaultBrokerAddr, "MQTT broker `URL` (mqtt:// or mqtts://)")
	f.StringVar(&o.db, "db", "fleet.db", "fleet database `PATH`")
	f.StringVar(&o.group, "group", "", "share the subscription with the other collectors of group `NAME`")
	f.StringVar(&o.clientID, "client-id", "", "MQTT client id naming the persistent session (default: the --username, else lampi-collector-HOSTNAME[-GROUP])")
	f.StringVar(&o.username, "username", "", "broker login (a collector credential: 'lampi-pkg device add --collector')")
	f.StringVar(&o.passwordFile, "password-file", "", "read the broker password from `FILE`")
	f.StringVar(&o.caFile, "ca-file", "", "CA certificates (PEM) to verify an mqtts:// broker")
	f.StringVar(&o.certFile, "cert", "", "client certificate (PEM) for mqtts://")
	f.StringVar(&o.keyFile, "key", "", "client certificate key (PEM)")
	f.StringVar(&o.listen, "listen", "", "serve the fleet JSON API on `ADDR` (e.g. 127.0.0.1:8081)")
	f.IntVar(&o.batchSize, "batch", 4096, "commit at most `N` messages per transaction")
	f.DurationVar(&o.batchDelay, "batch-delay", 2*time.Millisecond, "wait up to `D` for a batch to fill")
	return cmd
}

func runCollect(ctx context.Context, env *Env, o *collectOptions) error {
	switch {
	case o.clientID == "" && o.username != "":
		// A broker that binds client ids to logins (lampi-pkg's, or
		// Mosquitto with use_username_as_clientid) knows the
		// collector's session by its login.
		o.clientID = o.username
	case o.clientID == "":
		host, _ := os.Hostname()
		o.clientID = "lampi-collector-" + host
		if o.group != "" {
			o.clientID += "-" + o.group
		}
	case o.username != "" && o.clientID != o.username:
		fmt.Fprintf(env.Err, "lampi-pkg: --client-id %s is not the --username %s: lampi-pkg's broker refuses it, and Mosquitto with use_username_as_clientid replaces it (give each collector its own login instead)\n", o.clientID, o.username)
	}
	copts := fleet.CollectorOptions{Broker: o.broker, ClientID: o.clientID, Username: o.username, Group: o.group,
		BatchSize: o.batchSize, BatchDelay: o.batchDelay, Now: env.Now,
		Logger: slog.New(slog.NewTextHandler(env.Err, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if o.passwordFile != "" {
		b, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return withHint(fmt.Errorf("read password: %w", err), "--password-file names a file holding the collector's secret")
		}
		copts.Password = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if o.caFile != "" || o.certFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.caFile != "" {
			pem, err := os.ReadFile(o.caFile)
			if err != nil {
				return fmt.Errorf("--ca-file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return usageErrorf("--ca-file %s: no PEM certificate in it", o.caFile)
			}
		}
		if o.certFile != "" {
			cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
			if err != nil {
				return withHint(fmt.Errorf("client certificate: %w", err), "--cert and --key name the PEM certificate and its key")
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		copts.TLS = tc
	}
	s, err := openFleetDB(o.db, false, env)
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := fleet.NewCollector(s, copts)
	if err != nil {
		return usageErrorf("%v", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.listen != "" {
		ln, err := net.Listen("tcp", o.listen)
		if err != nil {
			return withHint(fmt.Errorf("--listen: %w", err), "choose a free address, e.g. 127.0.0.1:8081")
		}
		srv := &http.Server{Handler: fleet.APIHandler(s, nil, fleet.APIOptions{Now: env.Now}), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(env.Err, "fleet API on http://%s/api/v1/fleet/\n", ln.Addr())
	}
	if env.Getenv("GOGC") == "" {
		// As in serve: the collector's heap is short-lived message
		// garbage; collecting less often buys ingest throughput.
		debug.SetGCPercent(400)
	}
	fmt.Fprintf(env.Err, "collecting from %s into %s (client id %s)\n", o.broker, o.db, o.clientID)
	err = c.Run(ctx)
	st := s.Stats()
	fmt.Fprintf(env.Err, "stopped: %d devices; %d reports received, %d stored, %d stale, %d invalid, %d spoofed, %d rejected (seq from the future); %d status messages\n",
		st.Devices, st.Received, st.Stored, st.Stale, st.Invalid, st.Spoofed, st.Rejected, st.Status)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
