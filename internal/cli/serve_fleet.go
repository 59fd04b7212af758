package cli

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
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
	f.StringVar(&o.db, "fleet-db", "", "fleet database `PATH` (default REPO/db/fleet.db)")
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
	if isLoopback(host) {
		return nil
	}
	if anonymous {
		return withHint(usageErrorf("%s: refusing an anonymous MQTT broker on %s, which is not a loopback address", verb, addr),
			"drop --allow-anonymous and give each device credentials with 'lampi-pkg device add ID'")
	}
	fmt.Fprintf(env.Err, "lampi-pkg: the embedded MQTT broker listens beyond loopback on %s (devices log in with 'lampi-pkg device add' credentials)\n", addr)
	return nil
}

// ephemeralCollector lets the in-process collector log in to the embedded
// broker with a secret that exists only in this process, beside the
// credentials of the fleet database.
type ephemeralCollector struct {
	store  *fleet.Store
	user   string
	secret string
}

func (a *ephemeralCollector) Authenticate(user, secret string) (string, bool) {
	if user == a.user {
		if subtle.ConstantTimeCompare([]byte(secret), []byte(a.secret)) == 1 {
			return fleet.RoleCollector, true
		}
		return "", false
	}
	return a.store.Authenticate(user, secret)
}

// startFleet opens the fleet database, starts the embedded broker (unless
// an external one is named) and the collector, and returns the handlers
// to mount: the dashboard at / and the JSON API under /api/v1/fleet/. stop
// ends the collector, then the broker, then closes the database.
func startFleet(ctx context.Context, env *Env, o *serveFleetOptions, repoDir, tokensPath string, listenLoopback bool, logger *slog.Logger) (extra map[string]http.Handler, stop func(), err error) {
	if o.disabled {
		return nil, func() {}, nil
	}
	if o.staleView < 0 {
		return nil, nil, usageErrorf("serve: --stale-view %v: want a duration such as 336h, or 0 for no list", o.staleView)
	}
	if o.broker == "" {
		if err := checkBrokerListen(env, "serve", "--mqtt-listen", o.mqttListen, o.allowAnonymous); err != nil {
			return nil, nil, err
		}
	} else if o.username != "" && o.passwordFile == "" {
		return nil, nil, usageErrorf("serve: --broker-username needs --broker-password-file")
	}
	dbPath := o.db
	if dbPath == "" {
		dbPath = filepath.Join(repoDir, "db", "fleet.db")
	}
	store, err := fleet.Open(dbPath, fleet.StoreOptions{Now: env.Now})
	if err != nil {
		return nil, nil, withHint(fmt.Errorf("serve: fleet database: %w", err), "another 'lampi-pkg serve' or 'fleet collect' may hold it; give --fleet-db or --no-fleet")
	}
	ctx, cancel := context.WithCancel(ctx)
	var (
		broker *fleet.Broker
		wg     sync.WaitGroup
	)
	stop = func() {
		cancel()
		wg.Wait()
		if broker != nil {
			broker.Close()
		}
		store.Close()
	}
	fail := func(err error) (map[string]http.Handler, func(), error) {
		stop()
		return nil, nil, err
	}

	host, _ := os.Hostname()
	copts := fleet.CollectorOptions{ClientID: "lampi-serve-" + host, Now: env.Now, Logger: logger}
	if o.username != "" {
		copts.ClientID = o.username // brokers bind client ids to logins
	}
	var col *fleet.Collector
	if o.broker == "" {
		// By default the broker hands each report to the collector
		// before it acknowledges it: a device's PUBACK means the report
		// is committed, even if this process is killed the next moment
		// (the embedded broker keeps nothing on disk, so a subscription
		// could not promise that). --collector-subscribe logs the
		// collector in over MQTT instead, with a secret that exists only
		// in this process.
		bopts := fleet.BrokerOptions{Addr: o.mqttListen, AllowAnonymous: o.allowAnonymous, Logger: logger, Auth: store,
			MaxPendingPerAddr: o.maxPending, ConnectTimeout: o.connectTimeout}
		var auth *ephemeralCollector
		if o.subscribe {
			secret := make([]byte, 24)
			if _, err := rand.Read(secret); err != nil {
				return fail(err)
			}
			auth = &ephemeralCollector{store: store, user: "lampi-serve-collector", secret: hex.EncodeToString(secret)}
			bopts.Auth = auth
		} else {
			col = fleet.NewDirectCollector(store, copts)
			bopts.Deliver = col.Deliver
		}
		broker, err = fleet.StartBroker(ctx, bopts)
		if err != nil {
			return fail(withHint(fmt.Errorf("serve: %w", err), "choose another --mqtt-listen, use --broker URL for an external broker, or --no-fleet"))
		}
		if auth != nil {
			copts.Broker, copts.Username, copts.Password = broker.URL(), auth.user, []byte(auth.secret)
			copts.ClientID = auth.user
		}
		if o.mqttAddrFile != "" {
			if err := os.WriteFile(o.mqttAddrFile, []byte(broker.Addr().String()+"\n"), 0o644); err != nil {
				return fail(fmt.Errorf("serve: --mqtt-addr-file: %w", err))
			}
		}
		fmt.Fprintf(env.Err, "lampi-pkg: MQTT broker on %s\n", broker.URL())
	} else {
		copts.Broker, copts.Username = o.broker, o.username
		if o.passwordFile != "" {
			b, err := os.ReadFile(o.passwordFile)
			if err != nil {
				return fail(withHint(fmt.Errorf("serve: read broker password: %w", err), "--broker-password-file names a file holding the collector's secret"))
			}
			copts.Password = []byte(strings.TrimRight(string(b), "\r\n"))
		}
	}
	if col == nil {
		if col, err = fleet.NewCollector(store, copts); err != nil {
			return fail(usageErrorf("serve: collector: %v", err))
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := col.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("fleet collector stopped", "error", err)
		}
	}()
	fmt.Fprintf(env.Err, "lampi-pkg: collecting device reports into %s\n", dbPath)

	// The device API (issue, list, revoke broker credentials) needs a
	// token with scope "devices" from serve's token store, so it is
	// served on every listener, like the upload API.
	extra = map[string]http.Handler{}
	tokens := &server.TokenStore{Path: tokensPath, Now: env.Now}
	for pattern, h := range fleet.DevicesAPIHandlers(store) {
		extra[pattern] = server.RequireScope(tokens, server.ScopeDevices, logger, h)
	}

	if !listenLoopback && !o.exposeFleet {
		fmt.Fprintf(env.Err, "lampi-pkg: dashboard and fleet API not served on a non-loopback address (give --expose-fleet to serve them)\n")
		return extra, stop, nil
	}
	newest := newestPublished(repoDir, env.Now, logger)
	staleView := o.staleView
	if staleView == 0 {
		staleView = -1 // no list
	}
	dash, err := fleet.DashboardHandler(fleet.StoreDashboardSource(store, newest, fleet.ReportOptions{Now: env.Now, StaleView: staleView}), fleet.DashboardOptions{
		Now: env.Now, Title: "LAMPi fleet",
		Logf: func(format string, args ...any) { logger.Warn(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return fail(err)
	}
	api := fleet.APIHandler(store, newest, fleet.APIOptions{Now: env.Now, StaleView: staleView})
	extra["GET /{$}"], extra["GET /devices/"], extra["/api/v1/fleet/"] = dash, dash, api
	return extra, stop, nil
}

// newestPublished returns a function giving the newest version of every
// package the repository publishes (over all its distributions): the
// dashboard's "behind" is measured against it. The repository is read
// again whenever a distribution's InRelease (or Release) was replaced —
// one stat per distribution per call — so a release shows at once.
func newestPublished(repoDir string, now func() time.Time, logger *slog.Logger) func() map[string]string {
	var (
		mu     sync.Mutex
		cached map[string]string
		seen   string
	)
	return func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		r, err := repo.Open(repoDir, repo.Options{Now: now})
		if err != nil {
			logger.Warn("newest published versions", "error", err)
			return cached
		}
		var sig strings.Builder
		for _, d := range r.Conf.Distributions {
			for _, name := range []string{"InRelease", "Release"} {
				if fi, err := os.Stat(filepath.Join(repoDir, "dists", d.Codename, name)); err == nil {
					fmt.Fprintf(&sig, "%s/%s %d %d;", d.Codename, name, fi.Size(), fi.ModTime().UnixNano())
				}
			}
		}
		if cached != nil && sig.String() == seen {
			return cached
		}
		out := map[string]string{}
		for _, d := range r.Conf.Distributions {
			es, err := r.List(context.Background(), d.Codename, repo.Selection{}, nil, nil)
			if err != nil {
				logger.Warn("newest published versions", "codename", d.Codename, "error", err)
				continue
			}
			for _, e := range es {
				if old, ok := out[e.Package]; !ok || newerVersion(e.Version, old) {
					out[e.Package] = e.Version
				}
			}
		}
		cached, seen = out, sig.String()
		return out
	}
}

// newerVersion reports whether a sorts after b by dpkg's rules (a version
// that does not parse never wins).
func newerVersion(a, b string) bool {
	va, err := deb.ParseVersion(a)
	if err != nil {
		return false
	}
	vb, err := deb.ParseVersion(b)
	if err != nil {
		return true
	}
	return va.Compare(vb) > 0
}
