package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

type brokerOptions struct {
	env            *Env
	listen         string
	db             string
	allowAnonymous bool
	addrFile       string
	maxPending     int
	connectTimeout time.Duration
}

func newFleetBrokerCmd(env *Env, runF runFunc[brokerOptions]) *cobra.Command {
	o := &brokerOptions{env: env}
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded MQTT broker alone, for collectors running elsewhere",
		Long: `Run the MQTT broker that 'lampi-pkg serve' embeds, without the server and
its collector: devices log in with the credentials in --db ('lampi-pkg
device add' writes them) and may publish only their own devices/<id>/state
(at most 64 KiB) and status, and subscribe to nothing; collectors ('lampi-pkg
fleet collect', e.g. several with --group) log in with collector
credentials. Each login may use only its own MQTT client id (its id, or
lampi-agent-<id> for a device), so no login can take over another's
session. Retained messages never expire. Nothing is kept on disk: a report
waits in memory until a collector acknowledges it.

Before the login a connection must send its CONNECT within
--connect-timeout, no packet may exceed 68 KiB, and at most
--max-pending-per-address connections of one address may be waiting at
the login at once.

--allow-anonymous lets clients without credentials connect with no topic
restrictions (loopback addresses only): for tests and benchmarks.
Stop with SIGINT or SIGTERM.`,
		Example: `  lampi-pkg fleet broker --listen 127.0.0.1:1883 --db /var/lib/lampi/fleet.db
  lampi-pkg fleet broker --listen 127.0.0.1:18830 --allow-anonymous`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runVerb(cmd, runF, runBroker, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", fleet.DefaultBrokerAddr, "broker address `HOST:PORT`")
	f.StringVar(&o.db, "db", "", "fleet database `PATH` or postgres:// URL holding the device and collector credentials")
	fleetDBAlias(cmd, &o.db)
	f.BoolVar(&o.allowAnonymous, "allow-anonymous", false, "let clients without credentials connect (no topic restrictions; loopback only)")
	f.IntVar(&o.maxPending, "max-pending-per-address", fleet.DefaultMaxPendingPerAddr, "connections of one address (IPv6: one /64) that may wait at the login at once, -1 for no limit (devices behind one NAT share an address; logged-in connections do not count)")
	f.DurationVar(&o.connectTimeout, "connect-timeout", fleet.DefaultConnectTimeout, "close a connection that has not sent its CONNECT (TLS handshake included) within `D`")
	f.StringVar(&o.addrFile, "addr-file", "", "write the broker's address to `FILE` once it listens (for --listen 127.0.0.1:0)")
	return cmd
}

// runBroker runs the broker until ctx (Main's, cancelled by SIGINT or
// SIGTERM) ends.
func runBroker(ctx context.Context, o *brokerOptions) error {
	env := o.env
	if err := checkBrokerListen(env, "fleet broker", "--listen", o.listen, o.allowAnonymous); err != nil {
		return err
	}
	if o.db == "" && !o.allowAnonymous {
		return withHint(usageErrorf("fleet broker: nobody could log in: give --db (credentials from 'lampi-pkg device add') or --allow-anonymous"),
			"e.g. lampi-pkg fleet broker --db /var/lib/lampi/fleet.db")
	}
	opts := fleet.BrokerOptions{Addr: o.listen, AllowAnonymous: o.allowAnonymous, MaxPendingPerAddr: o.maxPending, ConnectTimeout: o.connectTimeout,
		Logger: slog.New(slog.NewTextHandler(env.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if o.db != "" {
		s, err := openFleetDB(o.db, false, env)
		if err != nil {
			return err
		}
		defer s.Close()
		opts.Auth = s
	}
	b, err := fleet.StartBroker(ctx, opts)
	if err != nil {
		return withHint(fmt.Errorf("fleet broker: %w", err), "choose another --listen address")
	}
	defer b.Close()
	if o.addrFile != "" {
		if err := os.WriteFile(o.addrFile, []byte(b.Addr().String()+"\n"), 0o644); err != nil {
			return fmt.Errorf("fleet broker: --addr-file: %w", err)
		}
	}
	fmt.Fprintf(env.Err, "MQTT broker on %s\n", b.URL())
	<-ctx.Done()
	return nil
}
