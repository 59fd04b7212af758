package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/internal/bytesize"
	"github.com/lampi-pkg/lampi-pkg/internal/netutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
	"github.com/lampi-pkg/lampi-pkg/signing"
	"github.com/lampi-pkg/lampi-pkg/updateserver"
)

type serveOptions struct {
	env                                      *Env
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
	rolloutInterval                          time.Duration
	rolloutWebhook, rolloutWebhookFile       string
	maxConns, maxConnsPerIP                  int
	maxConnsSet                              bool // --max-conns given (else it follows the open-file limit)
	maxValidations                           int
	maxControlSize                           string
	fleet                                    serveFleetOptions
}

func newServeCmd(env *Env, runF runFunc[serveOptions]) *cobra.Command {
	o := &serveOptions{env: env}
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

Rollouts started with "lampi-pkg rollout start" are walked by the server:
every --rollout-interval its controller reads the fleet's reports, moves a
healthy rollout to its next Phased-Update-Percentage, and halts one whose
stop rules fire (phase 0), publishing as uploads do.

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
			return runVerb(cmd, runF, runServe, o)
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
	f.DurationVar(&o.rolloutInterval, "rollout-interval", time.Minute, "how often the rollout controller walks the running rollouts on the fleet's reports (0: never; needs the fleet side)")
	f.StringVar(&o.rolloutWebhook, "rollout-webhook", "", "`URL` (http or https) that gets a JSON POST when a rollout halts, completes or is reverted (only its scheme and host are logged)")
	f.StringVar(&o.rolloutWebhookFile, "rollout-webhook-file", "", "read the --rollout-webhook URL from this `file` (keeps a secret in the URL out of the process list)")
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

// runServe serves until ctx (Main's, cancelled by SIGINT or SIGTERM) ends.
func runServe(ctx context.Context, o *serveOptions) error {
	env := o.env
	cfg, useTLS, loopback, err := o.config(env)
	if err != nil {
		return err
	}
	closeLog, err := o.logs(env, &cfg)
	if err != nil {
		return err
	}
	defer closeLog()
	if cfg.Fleet, err = o.fleet.config(env, loopback); err != nil {
		return err
	}
	if cfg.Fleet != nil {
		// The controller decides on the fleet's reports: with --no-fleet
		// there are none, and it does not run.
		cfg.RolloutInterval = o.rolloutInterval
	}
	if cfg.RolloutWebhook, err = o.webhookURL(); err != nil {
		return err
	}
	srv, err := updateserver.New(cfg)
	if err != nil {
		return serveStartError(err)
	}
	defer srv.Close()
	if err := o.fleet.started(env, srv, loopback); err != nil {
		return err
	}
	if env.Getenv("GOGC") == "" {
		// The server's heap is a few MiB of short-lived request garbage:
		// collecting less often costs little memory and buys throughput.
		debug.SetGCPercent(400)
	}
	ln, err := o.listenAndTell(env, useTLS, cfg.MaxUpload)
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopProfile()
	}
	if err := srv.Run(ctx, ln); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintf(env.Err, "lampi-pkg: stopped\n")
	return nil
}

// logs opens --access-log and sets cfg's loggers in --log-format; the
// function returned flushes and closes the log.
func (o *serveOptions) logs(env *Env, cfg *updateserver.Config) (func(), error) {
	logw, closeLog, err := openAccessLog(env, o.accessLog)
	if err != nil {
		return nil, err
	}
	switch o.logFormat {
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(logw, nil))
		cfg.AccessLog = logw // the fast JSON encoder
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(logw, nil))
	default:
		closeLog()
		return nil, usageErrorf("serve: --log-format %q: use json or text", o.logFormat)
	}
	return closeLog, nil
}

// listenAndTell listens on --listen, writes --addr-file and tells where
// the repository is served.
func (o *serveOptions) listenAndTell(env *Env, useTLS bool, maxUpload int64) (net.Listener, error) {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, withHint(fmt.Errorf("serve: %w", err), "choose another --listen address or stop what uses this port")
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	addr := ln.Addr().String()
	if o.addrFile != "" {
		if err := os.WriteFile(o.addrFile, []byte(addr+"\n"), 0o644); err != nil {
			ln.Close()
			return nil, fmt.Errorf("serve: --addr-file: %w", err)
		}
	}
	fmt.Fprintf(env.Err, "lampi-pkg: serving %s on %s://%s/ (uploads up to %s, %d bytes)\n", o.repo, scheme, addr, bytesize.Format(maxUpload), maxUpload)
	return ln, nil
}

// config checks the flags (usage errors name the flag at fault) and
// returns the server's configuration without its logger and fleet side,
// whether it serves TLS, and whether --listen is a loopback address.
func (o *serveOptions) config(env *Env) (cfg updateserver.Config, useTLS, loopback bool, err error) {
	if o.repo == "" {
		return cfg, false, false, usageErrorf("serve: --repo DIR is required")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return cfg, false, false, usageErrorf("serve: --tls-cert and --tls-key go together")
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return cfg, false, false, usageErrorf("serve: --listen %q: %v (want host:port, e.g. 127.0.0.1:8080)", o.listen, err)
	}
	useTLS, loopback = o.tlsCert != "", netutil.IsLoopbackHost(host)
	if !useTLS && !loopback && !o.insecureListen {
		return cfg, false, false, withHint(usageErrorf("serve: refusing plain HTTP on %s, which is not a loopback address", o.listen),
			"give --tls-cert and --tls-key, listen on 127.0.0.1, or say --insecure-listen (e.g. behind a TLS proxy)")
	}
	cfg = updateserver.Config{
		Dir: o.repo, Now: env.Now, Tokens: o.tokens, LockTimeout: o.lockTimeout,
		TLSCertFile: o.tlsCert, TLSKeyFile: o.tlsKey, RenewInterval: o.renewInterval,
		MaxValidations: o.maxValidations,
		Notef:          func(format string, args ...any) { fmt.Fprintf(env.Err, "lampi-pkg: "+format+"\n", args...) },
	}
	if cfg.MaxUpload, cfg.MaxControlSize, err = o.sizes(); err != nil {
		return cfg, false, false, err
	}
	if o.rolloutInterval < 0 {
		return cfg, false, false, usageErrorf("serve: --rollout-interval %v is negative (0: no controller)", o.rolloutInterval)
	}
	if o.maxConns < 0 || o.maxConnsPerIP < 0 || o.maxValidations < 0 {
		return cfg, false, false, usageErrorf("serve: --max-conns, --max-conns-per-ip and --max-validations take a number, 0 or more")
	}
	maxConns, note := connLimit(o.maxConns, o.maxConnsSet)
	if note != "" {
		fmt.Fprintf(env.Err, "lampi-pkg: %s\n", note)
	}
	cfg.MaxConns, cfg.MaxConnsPerAddr = noLimitIsNegative(maxConns), noLimitIsNegative(o.maxConnsPerIP)
	layout := repo.Layout{Base: o.repo}
	conf, err := repo.LoadConfig(layout.Conf())
	if err != nil {
		return cfg, false, false, withHint(fmt.Errorf("serve: %w", err), "create a repository with lampi-pkg repo init, or point --repo at one")
	}
	if cfg.RequireSignature, err = requiredSignatures(conf, o.requireSignature); err != nil {
		return cfg, false, false, err
	}
	// A server never prompts: the passphrase comes from the file or $LAMPI_PASSPHRASE.
	noTTY := *env
	noTTY.IsTerminal = func(any) bool { return false }
	cfg.Passphrase = func(string) ([]byte, error) { return readPassphrase(&noTTY, o.passphraseFile, "", false) }
	// Uploads and Release renewals publish to the targets of conf/targets too.
	cfg.Mirror = func() (*repo.MirrorOptions, error) { return ConfTargetsMirror(env, o.repo) }
	return cfg, useTLS, loopback, nil
}

// sizes parses --max-upload and --max-control-size.
func (o *serveOptions) sizes() (maxUpload, maxControl int64, err error) {
	maxUpload, err = bytesize.Parse(o.maxUpload)
	if err == nil && maxUpload == 0 {
		err = fmt.Errorf("%q would refuse every upload: give at least 1B", o.maxUpload)
	}
	if err != nil {
		return 0, 0, usageErrorf("serve: --max-upload: %v", err)
	}
	if o.maxControlSize != "" { // else 0: the server's default
		maxControl, err = bytesize.Parse(o.maxControlSize)
		if err == nil && maxControl == 0 {
			err = fmt.Errorf("%q would refuse every upload: give at least 1B", o.maxControlSize)
		}
		if err != nil {
			return 0, 0, usageErrorf("serve: --max-control-size: %v", err)
		}
	}
	return maxUpload, maxControl, nil
}

// requiredSignatures reads the keyrings of --require-signature
// CODENAME=KEYRING (CODENAME may be a suite), by codename.
func requiredSignatures(conf *repo.Config, specs []string) (map[string]*signing.Keyring, error) {
	required := map[string]*signing.Keyring{}
	for _, spec := range specs {
		name, file, ok := strings.Cut(spec, "=")
		if !ok || name == "" || file == "" {
			return nil, usageErrorf("serve: --require-signature %q: want CODENAME=KEYRING", spec)
		}
		d := conf.Lookup(name)
		if d == nil {
			return nil, usageErrorf("serve: --require-signature %s: no such codename or suite in %s", name, conf.Dir)
		}
		kf, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("serve: --require-signature %s: %w", name, err)
		}
		kr, err := signing.ReadKeyring(kf)
		kf.Close()
		if err != nil {
			return nil, fmt.Errorf("serve: --require-signature %s: keyring %s: %w", name, file, err)
		}
		required[d.Codename] = kr
	}
	return required, nil
}

// serveStartError turns an error of updateserver.New into serve's,
// with the advice for what failed.
func serveStartError(err error) error {
	switch {
	case errors.Is(err, updateserver.ErrFleetDB):
		return withHint(fmt.Errorf("serve: %w", err), "another 'lampi-pkg serve' or 'fleet collect' may hold it; give --fleet-db or --no-fleet")
	case errors.Is(err, updateserver.ErrBroker):
		return withHint(fmt.Errorf("serve: %w", err), "choose another --mqtt-listen, use --broker URL for an external broker, or --no-fleet")
	case errors.Is(err, updateserver.ErrCollector):
		return usageErrorf("serve: %v", err)
	}
	return fmt.Errorf("serve: %w", err)
}

// startCPUProfile writes a CPU profile of the run to file (--cpuprofile);
// stop ends it.
func startCPUProfile(file string) (stop func(), err error) {
	pf, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("serve: --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		pf.Close()
		return nil, fmt.Errorf("serve: --cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); pf.Close() }, nil
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

// webhookURL is --rollout-webhook, or the first line of
// --rollout-webhook-file; the errors never quote the URL.
func (o *serveOptions) webhookURL() (string, error) {
	if o.rolloutWebhookFile == "" {
		return o.rolloutWebhook, nil
	}
	if o.rolloutWebhook != "" {
		return "", usageErrorf("serve: give --rollout-webhook or --rollout-webhook-file, not both")
	}
	b, err := os.ReadFile(o.rolloutWebhookFile)
	if err != nil {
		return "", fmt.Errorf("serve: --rollout-webhook-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", usageErrorf("serve: --rollout-webhook-file %s is empty; put the webhook's URL on its first line", o.rolloutWebhookFile)
	}
	return line, nil
}
