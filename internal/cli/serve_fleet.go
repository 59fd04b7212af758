package cli

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/netutil"
	"github.com/lampi-pkg/lampi-pkg/updateserver"
)

// serveFleetOptions are serve's flags for the fleet side: the MQTT broker
// (embedded by default), the collector and the dashboard.
type serveFleetOptions struct {
	disabled       bool
	db             string
	broker         string // "" = embedded
	mqttListen     string
	allowAnonymous bool
	username       string
	passwordFile   string
	exposeFleet    bool
	mqttAddrFile   string
	subscribe      bool
	maxPending     int
	connectTimeout time.Duration
	staleView      time.Duration
}

func (o *serveFleetOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.disabled, "no-fleet", false, "serve the repository only: no MQTT broker, collector or dashboard")
	f.StringVar(&o.db, "fleet-db", "", "fleet database `PATH` (default REPO/db/fleet.db), or a postgres://user@host/db URL shared with other servers and collectors")
	f.StringVar(&o.broker, "broker", "", "collect from an external MQTT broker at `URL` (mqtt:// or mqtts://) instead of the embedded one")
	f.StringVar(&o.mqttListen, "mqtt-listen", fleet.DefaultBrokerAddr, "address of the embedded MQTT broker")
	f.BoolVar(&o.allowAnonymous, "allow-anonymous", false, "let MQTT clients without credentials connect to the embedded broker (no topic restrictions)")
	f.StringVar(&o.username, "broker-username", "", "collector login at the external --broker ('lampi-pkg device add --collector')")
	f.StringVar(&o.passwordFile, "broker-password-file", "", "read the collector's broker password from `FILE`")
	f.StringVar(&o.mqttAddrFile, "mqtt-addr-file", "", "write the embedded broker's address to this file (for --mqtt-listen 127.0.0.1:0)")
	f.BoolVar(&o.subscribe, "collector-subscribe", false, "with the embedded broker, collect through a QoS 1 MQTT subscription like an external collector, instead of taking each report from the broker before it acknowledges it to the device")
	f.IntVar(&o.maxPending, "mqtt-max-pending-per-address", fleet.DefaultMaxPendingPerAddr, "embedded broker: connections of one address (IPv6: one /64) that may wait at the login at once, -1 for no limit (devices behind one NAT share an address; logged-in connections do not count)")
	f.DurationVar(&o.connectTimeout, "mqtt-connect-timeout", fleet.DefaultConnectTimeout, "embedded broker: close a connection that has not sent its CONNECT (TLS handshake included) within `D`")
	f.DurationVar(&o.staleView, "stale-view", fleet.DefaultStaleView, "dashboard and fleet report: list devices whose newest accepted Release is at least `D` old (0: no list)")
	f.BoolVar(&o.exposeFleet, "expose-fleet", false, "serve the dashboard and fleet API also when --listen is not loopback (they list every device)")
}

// checkBrokerListen checks the embedded broker's address (flag of
// command verb): anonymous access only on a loopback address; beyond it,
// a note of what is listening (devices log in with their credentials).
func checkBrokerListen(env *Env, verb, flag, addr string, anonymous bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("%s: %s %q: %v (want host:port, e.g. 127.0.0.1:1883)", verb, flag, addr, err)
	}
	if netutil.IsLoopbackHost(host) {
		return nil
	}
	if anonymous {
		return withHint(usageErrorf("%s: refusing an anonymous MQTT broker on %s, which is not a loopback address", verb, addr),
			"drop --allow-anonymous and give each device credentials with 'lampi-pkg device add ID'")
	}
	fmt.Fprintf(env.Err, "lampi-pkg: the embedded MQTT broker listens beyond loopback on %s (devices log in with 'lampi-pkg device add' credentials)\n", addr)
	return nil
}

// config checks the fleet flags and returns the server's fleet side (nil
// with --no-fleet). loopback tells whether --listen is a loopback address.
func (o *serveFleetOptions) config(env *Env, loopback bool) (*updateserver.FleetConfig, error) {
	if o.disabled {
		return nil, nil
	}
	if o.staleView < 0 {
		return nil, usageErrorf("serve: --stale-view %v: want a duration such as 336h, or 0 for no list", o.staleView)
	}
	if o.broker == "" {
		if err := checkBrokerListen(env, "serve", "--mqtt-listen", o.mqttListen, o.allowAnonymous); err != nil {
			return nil, err
		}
	} else if o.username != "" && o.passwordFile == "" {
		return nil, usageErrorf("serve: --broker-username needs --broker-password-file")
	}
	host, _ := os.Hostname()
	fc := &updateserver.FleetConfig{
		DB: o.db, Broker: o.broker, Username: o.username,
		MQTTListen: o.mqttListen, AllowAnonymous: o.allowAnonymous, Subscribe: o.subscribe,
		MaxPendingPerAddr: o.maxPending, ConnectTimeout: o.connectTimeout,
		ClientID: "lampi-serve-" + host, Dashboard: loopback || o.exposeFleet, StaleView: o.staleView,
	}
	if o.broker != "" && o.passwordFile != "" {
		b, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return nil, withHint(fmt.Errorf("serve: read broker password: %w", err), "--broker-password-file names a file holding the collector's secret")
		}
		fc.Password = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	return fc, nil
}

// started writes --mqtt-addr-file and tells the operator what the fleet
// side of srv runs.
func (o *serveFleetOptions) started(env *Env, srv *updateserver.Server, loopback bool) error {
	if o.disabled {
		return nil
	}
	if url := srv.BrokerURL(); url != "" {
		if o.mqttAddrFile != "" {
			if err := os.WriteFile(o.mqttAddrFile, []byte(srv.BrokerAddr().String()+"\n"), 0o644); err != nil {
				return fmt.Errorf("serve: --mqtt-addr-file: %w", err)
			}
		}
		fmt.Fprintf(env.Err, "lampi-pkg: MQTT broker on %s\n", url)
	}
	fmt.Fprintf(env.Err, "lampi-pkg: collecting device reports into %s\n", srv.FleetDB())
	if !loopback && !o.exposeFleet {
		fmt.Fprintf(env.Err, "lampi-pkg: dashboard and fleet API not served on a non-loopback address (give --expose-fleet to serve them)\n")
	}
	return nil
}
