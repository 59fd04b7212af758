package updateserver

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/fleet/pgstore"
	"github.com/lampi-pkg/lampi-pkg/rollout"
	"github.com/lampi-pkg/lampi-pkg/server"
)

// fleetSide is what Config.Fleet runs: the fleet database, the embedded
// broker (or none, for an external one) and the collector, and the
// handlers mounted on the HTTP server.
type fleetSide struct {
	store    fleet.DB
	dbPath   string        // the file, or the PostgreSQL URL without its password
	broker   *fleet.Broker // nil with an external broker
	handlers map[string]http.Handler
	cancel   context.CancelFunc // stops the collector and the broker
	wg       sync.WaitGroup     // the collector
	stopOnce sync.Once
}

// stop ends the collector, then the broker, then closes the database.
func (f *fleetSide) stop() {
	f.stopOnce.Do(func() {
		f.cancel()
		f.wg.Wait()
		if f.broker != nil {
			f.broker.Close()
		}
		f.store.Close()
	})
}

// ephemeralCollector lets the in-process collector log in to the embedded
// broker with a secret that exists only in this process, beside the
// credentials of the fleet database.
type ephemeralCollector struct {
	store  fleet.Authenticator
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
// an external one is named) and the collector, and builds the handlers
// to mount: the device API, and with Dashboard the dashboard at / and
// the JSON API under /api/v1/fleet/.
func startFleet(s *Server) (*fleetSide, error) {
	o := s.cfg.Fleet
	dbPath := o.DB
	if dbPath == "" {
		dbPath = s.layout.FleetDB()
	}
	octx, ocancel := context.WithTimeout(context.Background(), time.Minute)
	store, err := pgstore.OpenDB(octx, dbPath, fleet.StoreOptions{Now: s.cfg.Now})
	ocancel()
	if err != nil {
		return nil, tag(ErrFleetDB, fmt.Errorf("fleet database: %w", err))
	}
	if pgstore.IsDSN(dbPath) {
		dbPath = store.Name() // never the password
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleetSide{store: store, dbPath: dbPath, cancel: cancel}
	col, err := f.startCollector(ctx, s)
	if err != nil {
		f.stop()
		return nil, err
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := col.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("fleet collector stopped", "error", err)
		}
	}()
	if f.handlers, err = f.mount(s); err != nil {
		f.stop()
		return nil, err
	}
	return f, nil
}

// startCollector starts the embedded broker, unless Config.Fleet names
// an external one, and returns the collector (not yet running).
func (f *fleetSide) startCollector(ctx context.Context, s *Server) (*fleet.Collector, error) {
	o := s.cfg.Fleet
	copts := fleet.CollectorOptions{ClientID: o.ClientID, Now: s.cfg.Now, Logger: s.log}
	if copts.ClientID == "" {
		copts.ClientID = "lampi-serve"
	}
	if o.Username != "" {
		copts.ClientID = o.Username // brokers bind client ids to logins
	}
	if o.Broker != "" {
		copts.Broker, copts.Username, copts.Password = o.Broker, o.Username, o.Password
		col, err := fleet.NewCollector(f.store, copts)
		if err != nil {
			return nil, tag(ErrCollector, fmt.Errorf("collector: %w", err))
		}
		return col, nil
	}
	// By default the broker hands each report to the collector before it
	// acknowledges it: a device's PUBACK means the report is committed,
	// even if this process is killed the next moment (the embedded
	// broker keeps nothing on disk, so a subscription could not promise
	// that). Subscribe logs the collector in over MQTT instead, with a
	// secret that exists only in this process.
	bopts := fleet.BrokerOptions{Addr: o.MQTTListen, AllowAnonymous: o.AllowAnonymous, Logger: s.log, Auth: f.store,
		MaxPendingPerAddr: o.MaxPendingPerAddr, ConnectTimeout: o.ConnectTimeout}
	var (
		auth *ephemeralCollector
		col  *fleet.Collector
	)
	if o.Subscribe {
		secret := make([]byte, 24)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		auth = &ephemeralCollector{store: f.store, user: "lampi-serve-collector", secret: hex.EncodeToString(secret)}
		bopts.Auth = auth
	} else {
		col = fleet.NewDirectCollector(f.store, copts)
		bopts.Deliver = col.Deliver
	}
	b, err := fleet.StartBroker(ctx, bopts)
	if err != nil {
		return nil, tag(ErrBroker, err)
	}
	f.broker = b
	if auth == nil {
		return col, nil
	}
	copts.Broker, copts.Username, copts.Password = b.URL(), auth.user, []byte(auth.secret)
	copts.ClientID = auth.user
	if col, err = fleet.NewCollector(f.store, copts); err != nil {
		return nil, tag(ErrCollector, fmt.Errorf("collector: %w", err))
	}
	return col, nil
}

// mount returns the fleet's handlers. The device API (issue, list,
// revoke broker credentials) needs a token with scope "devices" from the
// server's token store, and the rollout API (rollout.APIHandlers) one
// with scope "rollouts", so they are served on every listener, like the
// upload API; the dashboard and fleet API only with Dashboard.
func (f *fleetSide) mount(s *Server) (map[string]http.Handler, error) {
	extra := map[string]http.Handler{}
	tokens := s.tokens()
	for pattern, h := range fleet.DevicesAPIHandlers(f.store) {
		extra[pattern] = server.RequireScope(tokens, server.ScopeDevices, s.log, h)
	}
	for pattern, h := range rollout.APIHandlers(s.apiController) {
		extra[pattern] = server.RequireScope(tokens, server.ScopeRollouts, s.log, h)
	}
	o := s.cfg.Fleet
	if !o.Dashboard {
		return extra, nil
	}
	newest := newestPublished(s.cfg.Dir, s.cfg.Now, s.log)
	staleView := o.StaleView
	if staleView == 0 {
		staleView = -1 // no list
	}
	dopts := fleet.DashboardOptions{
		Now: s.cfg.Now, Title: "LAMPi fleet",
		Logf: func(format string, args ...any) { s.log.Warn(fmt.Sprintf(format, args...)) },
	}
	if s.rollouts != nil {
		dopts.Rollouts = s.rolloutPanels
	}
	dash, err := fleet.DashboardHandler(fleet.StoreDashboardSource(f.store, newest, fleet.ReportOptions{Now: s.cfg.Now, StaleView: staleView}), dopts)
	if err != nil {
		return nil, err
	}
	api := fleet.APIHandler(f.store, newest, fleet.APIOptions{Now: s.cfg.Now, StaleView: staleView})
	extra["GET /{$}"], extra["GET /devices/"], extra["/api/v1/fleet/"] = dash, dash, api
	return extra, nil
}

// BrokerAddr is the embedded broker's address, nil without one.
func (s *Server) BrokerAddr() net.Addr {
	if s.fleet == nil || s.fleet.broker == nil {
		return nil
	}
	return s.fleet.broker.Addr()
}

// BrokerURL is the embedded broker's mqtt:// URL, "" without one.
func (s *Server) BrokerURL() string {
	if s.fleet == nil || s.fleet.broker == nil {
		return ""
	}
	return s.fleet.broker.URL()
}

// FleetDB is the fleet database's path, or its PostgreSQL URL without
// the password; "" without Config.Fleet.
func (s *Server) FleetDB() string {
	if s.fleet == nil {
		return ""
	}
	return s.fleet.dbPath
}
