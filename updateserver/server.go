package updateserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
)

// Timeouts of the HTTP side. A connection must send its first request
// head within ReadHeaderTimeout; an idle keep-alive connection is closed
// after IdleTimeout; a shutdown lets requests in flight finish for at
// most ShutdownTimeout.
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 2 * time.Minute
	ShutdownTimeout   = 30 * time.Second
)

// Server is a running update server: the repository's handlers, and the
// fleet side when configured. New starts the fleet side; Run serves HTTP
// on a listener; Close releases everything.
type Server struct {
	cfg    Config
	layout repo.Layout
	log    *slog.Logger
	srv    *server.Server
	fleet  *fleetSide // nil without Config.Fleet
	// rolloutMu serialises the rollout controller's ticks and the
	// changes of the rollout API.
	rolloutMu sync.Mutex
	// rollouts follows the controller for the dashboard, /metrics and
	// the webhook; nil unless the controller runs.
	rollouts *rolloutVis

	runOnce   sync.Once
	closeOnce sync.Once
}

// New opens the token store, the fleet database, the broker and the
// collector (with Config.Fleet) and builds the HTTP handlers. Nothing
// listens for HTTP until Run; the embedded broker listens already (its
// address is BrokerAddr). On an error everything New started is stopped
// again.
func New(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Notef == nil {
		cfg.Notef = func(string, ...any) {}
	}
	if cfg.TargetCheckTimeout <= 0 {
		cfg.TargetCheckTimeout = 15 * time.Second
	}
	s := &Server{cfg: cfg, layout: repo.Layout{Base: cfg.Dir}, log: cfg.Logger}
	if s.cfg.Tokens == "" {
		s.cfg.Tokens = s.layout.Tokens()
	}
	if cfg.RolloutInterval > 0 {
		v, err := newRolloutVis(s)
		if err != nil {
			return nil, err
		}
		s.rollouts = v
	}
	var extra map[string]http.Handler
	if cfg.Fleet != nil {
		f, err := startFleet(s)
		if err != nil {
			return nil, err
		}
		s.fleet, extra = f, f.handlers
	}
	srv, err := server.New(server.Options{
		Dir: cfg.Dir, Now: cfg.Now, Logger: cfg.Logger, AccessLog: cfg.AccessLog,
		MaxUpload: cfg.MaxUpload, MaxControlSize: cfg.MaxControlSize, MaxValidations: cfg.MaxValidations,
		MaxConns: cfg.MaxConns, MaxConnsPerAddr: cfg.MaxConnsPerAddr,
		Tokens:           s.tokens(),
		LockTimeout:      cfg.LockTimeout,
		RequireSignature: cfg.RequireSignature,
		OpenRepo:         s.openForUpload,
		Extra:            extra,
		ExtraMetrics:     s.extraMetrics(),
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// tokens is the token store of uploads and the device API.
func (s *Server) tokens() *server.TokenStore {
	return &server.TokenStore{Path: s.cfg.Tokens, Now: s.cfg.Now}
}

// openRepo opens the repository as uploads and renewals change it: with
// the lock timeout, the signing keys of conf/keys (and SignWith) and the
// publish targets of Config.Mirror.
func (s *Server) openRepo() (*repo.Repo, error) {
	var m *repo.MirrorOptions
	if s.cfg.Mirror != nil {
		var err error
		if m, err = s.cfg.Mirror(); err != nil {
			return nil, err
		}
	}
	pass := s.cfg.Passphrase
	if pass == nil {
		pass = func(string) ([]byte, error) { return nil, nil }
	}
	return repo.Open(s.cfg.Dir, repo.Options{
		Now: s.cfg.Now, LockTimeout: s.cfg.LockTimeout, Mirror: m,
		Signer: repo.KeyDirSigners(s.layout.KeyDir(), s.cfg.Now, pass),
	})
}

// openForUpload is openRepo, then a check of the publish targets: an
// upload changes nothing while a target does not answer.
func (s *Server) openForUpload() (*repo.Repo, error) {
	r, err := s.openRepo()
	if err != nil {
		return nil, err
	}
	if err := r.CheckTargets(context.Background(), s.cfg.TargetCheckTimeout); err != nil {
		return nil, err
	}
	return r, nil
}

// Run serves HTTP (HTTPS with Config.TLSCertFile) on ln and renews the
// Release files every Config.RenewInterval, until ctx ends or serving
// fails. When ctx ends it stops the collector and broker, lets the
// requests in flight finish (at most ShutdownTimeout) and returns nil.
// Run takes ln over: it is closed when Run returns. A Server runs once.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	ran := false
	s.runOnce.Do(func() { ran = true })
	defer ln.Close()
	if !ran {
		return errors.New("updateserver: Run called twice")
	}
	if s.cfg.RenewInterval > 0 {
		rctx, stopRenew := context.WithCancel(ctx)
		renewDone := make(chan struct{})
		go func() {
			defer close(renewDone)
			s.renewReleases(rctx)
		}()
		defer func() { stopRenew(); <-renewDone }()
	}
	if s.cfg.RolloutInterval > 0 && s.fleet != nil {
		rctx, stopRollouts := context.WithCancel(ctx)
		rolloutsDone := make(chan struct{})
		go func() {
			defer close(rolloutsDone)
			s.walkRollouts(rctx)
		}()
		defer func() { stopRollouts(); <-rolloutsDone }()
		if h := s.rollouts.hook; h != nil {
			hookDone := make(chan struct{})
			go func() {
				defer close(hookDone)
				h.Run(rctx)
			}()
			defer func() { stopRollouts(); <-hookDone }()
		}
	}
	hs := &http.Server{
		Handler:           s.srv,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	useTLS := s.cfg.TLSCertFile != ""
	// Plain HTTP goes through the server's front: simple file requests
	// are answered by its fast path, everything else by hs.
	front := s.srv.Front(hs)
	shutdown := front.Shutdown
	errc := make(chan error, 1)
	if useTLS {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		shutdown = hs.Shutdown
		go func() { errc <- hs.ServeTLS(s.srv.Listener(ln), s.cfg.TLSCertFile, s.cfg.TLSKeyFile) }()
	} else {
		go func() { errc <- front.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.cfg.Notef("shutting down (finishing requests in flight)")
	if s.fleet != nil {
		s.fleet.cancel() // the collector and the broker stop with the server
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the collector, the broker and the handlers and closes the
// databases. Call it once Run has returned (or instead of Run); it is
// safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.srv != nil {
			s.srv.Close()
		}
		if s.fleet != nil {
			s.fleet.stop()
		}
	})
	return nil
}
