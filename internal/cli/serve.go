package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/internal/bytesize"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

type serveOptions struct {
	repo, listen, tlsCert, tlsKey, maxUpload string
	insecureListen                           bool
	tokens                                   string
	requireSignature                         []string
	lockTimeout                              time.Duration
	passphraseFile                           string
	accessLog, logFormat                     string
	addrFile                                 string
	cpuProfile                               string
	renewInterval                            time.Duration
	maxConns, maxConnsPerIP                  int
	maxConnsSet                              bool // --max-conns given (else it follows the open-file limit)
	maxValidations                           int
	maxControlSize                           string
	fleet                                    serveFleetOptions
}

func newServeCmd(env *Env) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve --repo DIR [--listen 127.0.0.1:8080] [--tls-cert F --tls-key F]",
		Short: "Serve a repository over HTTP(S) and accept authenticated uploads",
		Long: `Serve the repository's published tree (dists/, pool/ and the public
keyring files at its top) read-only, with ETag, Last-Modified, 304 answers
and Range requests, and accept package uploads:

  POST /api/v1/repos/CODENAME/packages   (Authorization: Bearer TOKEN)

with tokens from "lampi-pkg token create". Uploads are size-limited,
checked as .debs (and for an origin signature where --require-signature
asks for one), then included and published as "repo includedeb" does.
GET /healthz answers "ok"; GET /metrics is in the Prometheus text format.

Plain HTTP is for loopback only: listening on another address needs
--tls-cert and --tls-key, or --insecure-listen (e.g. behind a TLS proxy).

Release files with a Valid-Until (ValidFor in conf/distributions) are
re-signed before they expire: every --renew-interval, a distribution with
less than half of ValidFor left is published again under the repository
lock, with a new Date and Valid-Until and nothing else changed.

Against hostile clients: a connection must send its first request within
10 seconds; connections are capped (--max-conns, --max-conns-per-ip; one
over a cap is closed at once); an upload's packages are checked at most
--max-validations at a time, each control member within --max-control-size
decompressed, and an upload that waits longer than 10 seconds for its turn
is answered 503. A key file at the top of the repository is served as the
public keys it holds, never as is, and not at all if it holds a secret key.

SIGINT or SIGTERM stop the server gracefully.`,
		Example: `  lampi-pkg serve --repo /srv/repo
  lampi-pkg serve --repo /srv/repo --listen :8443 --tls-cert server.pem --tls-key server.key
  lampi-pkg serve --repo /srv/repo --require-signature bookworm=release-keys.gpg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.maxConnsSet = cmd.Flags().Changed("max-conns")
			return runServe(cmd.Context(), env, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", "", "repository base directory (conf/, db/, dists/, pool/)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on (host:port)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate chain (PEM)")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS private key (PEM)")
	f.BoolVar(&o.insecureListen, "insecure-listen", false, "allow plain HTTP on a non-loopback address")
	f.StringVar(&o.maxUpload, "max-upload", bytesize.Format(server.DefaultMaxUpload), "largest accepted upload: bytes, or a number with "+bytesize.Units+" (MB = 10⁶ bytes, MiB = 2²⁰)")
	f.StringVar(&o.tokens, "tokens", "", "token store (default REPO/db/tokens.db)")
	f.StringArrayVar(&o.requireSignature, "require-signature", nil, "CODENAME=KEYRING: uploads to CODENAME need an origin signature by a key of KEYRING (repeatable)")
	f.DurationVar(&o.lockTimeout, "lock-timeout", 30*time.Second, "how long an upload waits for the repository lock before a 503")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "passphrase of a protected signing key (else $"+PassphraseEnv+")")
	f.StringVar(&o.accessLog, "access-log", "-", `access log file ("-" standard error, "off" none)`)
	f.StringVar(&o.logFormat, "log-format", "json", "access log format: json or text")
	f.StringVar(&o.addrFile, "addr-file", "", "write the address actually listened on to this file (for --listen 127.0.0.1:0)")
	f.DurationVar(&o.renewInterval, "renew-interval", 10*time.Minute, "how often to check whether Release files need re-signing before Valid-Until (0: never)")
	f.IntVar(&o.maxConns, "max-conns", server.DefaultMaxConns, "most connections open at once, 0 for no limit (lowered to half the open-file limit unless given)")
	f.IntVar(&o.maxConnsPerIP, "max-conns-per-ip", server.DefaultMaxConnsPerAddr, "most connections open at once from one client address (IPv6: one /64), 0 for no limit; raise it behind a proxy")
	f.IntVar(&o.maxValidations, "max-validations", server.DefaultMaxValidations, "most uploads checked at once; each check's memory is bounded by --max-control-size (0: the default)")
	f.StringVar(&o.maxControlSize, "max-control-size", "16MiB", "largest decompressed control member of an uploaded package")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for benchmarks)")
	f.MarkHidden("cpuprofile")
	o.fleet.flags(cmd)
	return cmd
}

// connLimit returns the --max-conns to apply: a limit above half the
// process's open-file limit would let connections take the descriptors
// that files, the broker and the databases need (accept then fails for
// everyone), so the default is lowered to it, and a limit given
// explicitly is kept with a warning. note is what to tell the operator.
func connLimit(n int, given bool) (limit int, note string) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 || rl.Cur >= 1<<31 {
		return n, ""
	}
	half := int(rl.Cur / 2)
	switch {
	case n != 0 && n <= half:
		return n, ""
	case given:
		return n, fmt.Sprintf("warning: --max-conns %d (or none) with an open-file limit of %d: connections may use up the descriptors files need", n, rl.Cur)
	}
	return half, fmt.Sprintf("at most %d connections at once, half the open-file limit of %d (raise it, e.g. LimitNOFILE=, or give --max-conns)", half, rl.Cur)
}

// noLimitIsNegative maps a flag's 0 ("no limit") to server.Options'
// negative value (0 there is the default).
func noLimitIsNegative(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// isLoopback reports whether host (of host:port) is a loopback address.
// An empty host means every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runServe(ctx context.Context, env *Env, o *serveOptions) error {
	if o.repo == "" {
		return usageErrorf("serve: --repo DIR is required")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usageErrorf("serve: --tls-cert and --tls-key go together")
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return usageErrorf("serve: --listen %q: %v (want host:port, e.g. 127.0.0.1:8080)", o.listen, err)
	}
	useTLS := o.tlsCert != ""
	if !useTLS && !isLoopback(host) && !o.insecureListen {
		return withHint(usageErrorf("serve: refusing plain HTTP on %s, which is not a loopback address", o.listen),
			"give --tls-cert and --tls-key, listen on 127.0.0.1, or say --insecure-listen (e.g. behind a TLS proxy)")
	}
	maxUpload, err := bytesize.Parse(o.maxUpload)
	if err == nil && maxUpload == 0 {
		err = fmt.Errorf("%q would refuse every upload: give at least 1B", o.maxUpload)
	}
	if err != nil {
		return usageErrorf("serve: --max-upload: %v", err)
	}
	var maxControl int64 // 0: the server's default
	if o.maxControlSize != "" {
		maxControl, err = bytesize.Parse(o.maxControlSize)
		if err == nil && maxControl == 0 {
			err = fmt.Errorf("%q would refuse every upload: give at least 1B", o.maxControlSize)
		}
		if err != nil {
			return usageErrorf("serve: --max-control-size: %v", err)
		}
	}
	if o.maxConns < 0 || o.maxConnsPerIP < 0 || o.maxValidations < 0 {
		return usageErrorf("serve: --max-conns, --max-conns-per-ip and --max-validations take a number, 0 or more")
	}
	maxConns, note := connLimit(o.maxConns, o.maxConnsSet)
	if note != "" {
		fmt.Fprintf(env.Err, "lampi-pkg: %s\n", note)
	}
	conf, err := repo.LoadConfig(filepath.Join(o.repo, "conf"))
	if err != nil {
		return withHint(fmt.Errorf("serve: %w", err), "create a repository with lampi-pkg repo init, or point --repo at one")
	}
	required := map[string]*signing.Keyring{}
	for _, spec := range o.requireSignature {
		name, file, ok := strings.Cut(spec, "=")
		if !ok || name == "" || file == "" {
			return usageErrorf("serve: --require-signature %q: want CODENAME=KEYRING", spec)
		}
		var d *repo.Distribution
		for _, x := range conf.Distributions {
			if x.Codename == name || x.Suite == name {
				d = x
			}
		}
		if d == nil {
			return usageErrorf("serve: --require-signature %s: no such codename or suite in %s", name, conf.Dir)
		}
		kf, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("serve: --require-signature %s: %w", name, err)
		}
		kr, err := signing.ReadKeyring(kf)
		kf.Close()
		if err != nil {
			return fmt.Errorf("serve: --require-signature %s: keyring %s: %w", name, file, err)
		}
		required[d.Codename] = kr
	}

	logw, closeLog, err := openAccessLog(env, o.accessLog)
	if err != nil {
		return err
	}
	defer closeLog()
	var logger *slog.Logger
	switch o.logFormat {
	case "json":
		logger = slog.New(slog.NewJSONHandler(logw, nil))
	case "text":
		logger = slog.New(slog.NewTextHandler(logw, nil))
	default:
		return usageErrorf("serve: --log-format %q: use json or text", o.logFormat)
	}

	tokens := o.tokens
	if tokens == "" {
		tokens = filepath.Join(o.repo, "db", "tokens.db")
	}
	keyDir := filepath.Join(o.repo, "conf", "keys")
	// A server never prompts: the passphrase comes from the file or $LAMPI_PASSPHRASE.
	noTTY := *env
	noTTY.IsTerminal = func(any) bool { return false }
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	extra, stopFleet, err := startFleet(ctx, env, &o.fleet, o.repo, tokens, isLoopback(host), logger)
	if err != nil {
		return err
	}
	defer stopFleet()
	var accessLog io.Writer // the fast JSON encoder, when the format is slog's JSON
	if o.logFormat == "json" {
		accessLog = logw
	}
	// Uploads and Release renewals open the repository the same way, and
	// publish to the targets of conf/targets too.
	openRepo := func() (*repo.Repo, error) {
		m, err := ConfTargetsMirror(env, o.repo)
		if err != nil {
			return nil, err
		}
		return repo.Open(o.repo, repo.Options{
			Now: env.Now, LockTimeout: o.lockTimeout, Mirror: m,
			Signer: repo.KeyDirSigners(keyDir, env.Now, func(fpr string) ([]byte, error) {
				return readPassphrase(&noTTY, o.passphraseFile, "", false)
			}),
		})
	}
	srv, err := server.New(server.Options{
		Dir: o.repo, Now: env.Now, Logger: logger, AccessLog: accessLog, MaxUpload: maxUpload,
		MaxControlSize: maxControl, MaxValidations: o.maxValidations,
		MaxConns: noLimitIsNegative(maxConns), MaxConnsPerAddr: noLimitIsNegative(o.maxConnsPerIP),
		Tokens:           &server.TokenStore{Path: tokens, Now: env.Now},
		LockTimeout:      o.lockTimeout,
		RequireSignature: required,
		OpenRepo: func() (*repo.Repo, error) {
			r, err := openRepo()
			if err != nil {
				return nil, err
			}
			// An upload checks the targets before anything changes.
			if err := r.CheckTargets(context.Background(), 15*time.Second); err != nil {
				return nil, err
			}
			return r, nil
		},
		Extra: extra,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer srv.Close()

	if env.Getenv("GOGC") == "" {
		// The server's heap is a few MiB of short-lived request garbage:
		// collecting less often costs little memory and buys throughput.
		debug.SetGCPercent(400)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return withHint(fmt.Errorf("serve: %w", err), "choose another --listen address or stop what uses this port")
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	addr := ln.Addr().String()
	if o.addrFile != "" {
		if err := os.WriteFile(o.addrFile, []byte(addr+"\n"), 0o644); err != nil {
			ln.Close()
			return fmt.Errorf("serve: --addr-file: %w", err)
		}
	}
	fmt.Fprintf(env.Err, "lampi-pkg: serving %s on %s://%s/ (uploads up to %s, %d bytes)\n", o.repo, scheme, addr, bytesize.Format(maxUpload), maxUpload)
	if o.renewInterval > 0 {
		rctx, stopRenew := context.WithCancel(ctx)
		renewDone := make(chan struct{})
		go func() {
			defer close(renewDone)
			renewReleases(rctx, env, openRepo, o.renewInterval)
		}()
		defer func() { stopRenew(); <-renewDone }()
	}

	if o.cpuProfile != "" {
		pf, err := os.Create(o.cpuProfile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("serve: --cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			ln.Close()
			return fmt.Errorf("serve: --cpuprofile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	// Plain HTTP goes through the server's front: simple file requests
	// are answered by its fast path, everything else by hs.
	front := srv.Front(hs)
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- hs.ServeTLS(srv.Listener(ln), o.tlsCert, o.tlsKey)
		} else {
			errc <- front.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintf(env.Err, "lampi-pkg: shutting down (finishing requests in flight)\n")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shutdown := hs.Shutdown
	if !useTLS {
		shutdown = front.Shutdown
	}
	if err := shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintf(env.Err, "lampi-pkg: stopped\n")
	return nil
}

// openAccessLog returns the access log's writer: a server.LogWriter,
// which buffers in memory, writes from its own goroutine (a request
// never waits for the disk; lines it cannot keep are counted in
// /metrics as lampi_access_log_dropped_total) and is flushed every
// second and at the end.
func openAccessLog(env *Env, where string) (io.Writer, func(), error) {
	var out io.Writer
	var file *os.File
	switch where {
	case "off":
		return io.Discard, func() {}, nil
	case "-", "":
		out = env.Err
	default:
		f, err := os.OpenFile(where, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("serve: --access-log: %w", err)
		}
		out, file = f, f
	}
	lw := server.NewLogWriter(out, 1<<20)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				lw.Flush()
			case <-done:
				return
			}
		}
	}()
	return lw, func() {
		close(done)
		wg.Wait()
		lw.Close()
		if file != nil {
			file.Close()
		}
	}, nil
}
