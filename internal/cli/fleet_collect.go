package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

type collectOptions struct {
	env                         *Env
	broker, db, group, clientID string
	username, passwordFile      string
	caFile, certFile, keyFile   string
	listen                      string
	batchSize                   int
	batchDelay                  time.Duration
}

func newFleetCollectCmd(env *Env, runF runFunc[collectOptions]) *cobra.Command {
	o := &collectOptions{env: env}
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Run the collector alone: MQTT broker → fleet database",
		Long: `Subscribe to devices/+/state and devices/+/status (QoS 1, persistent
session) on --broker and store the newest report of each device in --db,
acknowledging each message only once it is committed: a collector that is
killed and restarted loses nothing, the broker keeps what it did not
acknowledge. 'lampi-pkg serve' runs the same collector inside the server.

--group NAME uses the MQTT 5 shared subscription $share/NAME/… so several
collectors (each with its own login, or --client-id) split the load: each
with its own bbolt file, or all into one PostgreSQL database (--db
postgres://user@host/fleet), where the newest seq of a device wins whichever
collector receives it. The persistent session is named by the login (--username): a
broker that binds client ids to logins, as lampi-pkg's does, refuses any
other client id.
--listen ADDR serves the fleet JSON API, for 'fleet report --server'.
Stop with SIGINT or SIGTERM.`,
		Example: `  lampi-pkg fleet collect --broker mqtt://127.0.0.1:1883 --db fleet.db --listen 127.0.0.1:8081
  lampi-pkg fleet collect --broker mqtts://broker.example:8883 --ca-file ca.pem \
      --username collector --password-file /etc/lampi/collector.secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runVerb(cmd, runF, runCollect, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.broker, "broker", "mqtt://"+fleet.DefaultBrokerAddr, "MQTT broker `URL` (mqtt:// or mqtts://)")
	f.StringVar(&o.db, "db", "fleet.db", "fleet database `PATH`, or a postgres:// URL that the collectors of a group share")
	fleetDBAlias(cmd, &o.db)
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

// runCollect collects until ctx (Main's, cancelled by SIGINT or SIGTERM)
// ends.
func runCollect(ctx context.Context, o *collectOptions) error {
	env := o.env
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
	tc, err := o.tlsConfig()
	if err != nil {
		return err
	}
	copts.TLS = tc
	s, err := openFleetDB(o.db, false, env)
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := fleet.NewCollector(s, copts)
	if err != nil {
		return usageErrorf("%v", err)
	}
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
	fmt.Fprintf(env.Err, "collecting from %s into %s (client id %s)\n", o.broker, s.Name(), o.clientID)
	err = c.Run(ctx)
	st := s.Stats()
	fmt.Fprintf(env.Err, "stopped: %d devices; %d reports received, %d stored, %d stale, %d invalid, %d spoofed, %d rejected (seq from the future); %d status messages\n",
		st.Devices, st.Received, st.Stored, st.Stale, st.Invalid, st.Spoofed, st.Rejected, st.Status)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// tlsConfig is the TLS configuration of --ca-file, --cert and --key; nil
// when none is given.
func (o *collectOptions) tlsConfig() (*tls.Config, error) {
	if o.caFile == "" && o.certFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--ca-file %s: no PEM certificate in it", o.caFile)
		}
	}
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, withHint(fmt.Errorf("client certificate: %w", err), "--cert and --key name the PEM certificate and its key")
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
