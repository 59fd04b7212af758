package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// Options are the agent's injectables.
type Options struct {
	// Now is the clock. Required.
	Now func() time.Time
	// HTTPClient fetches the repository (nil: a client with sane timeouts).
	HTTPClient *http.Client
	// Env is the environment of apt-get, dpkg, systemd-run and the health
	// check (nil: PATH only).
	Env []string
	// Logf receives progress lines (nil: discarded). Never secrets.
	Logf func(format string, a ...any)
	// Version is the agent's own version, reported and sent as User-Agent.
	Version string
	// MachineID overrides the content of Config.MachineIDFile (phasing).
	MachineID string
	// Sleep waits (nil: a timer that honours ctx).
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0,1) for the poll jitter (nil: math/rand).
	Rand func() float64
	// AfterCycle, if set, is called by Run after each check and its
	// report (the CLI returns freed memory to the OS there).
	AfterCycle func()
}

// Agent is lampi-agent's library: one device's updater. Its methods are
// safe for concurrent use: cycles (Once) run one at a time, and Status,
// NewState and MarkSent never wait for a running cycle.
type Agent struct {
	cfg       Config
	opts      Options
	sources   []Source
	keyrings  []*signing.Keyring // per source
	origin    *signing.Keyring
	f         *fetcher
	inst      *installer
	deviceID  string
	machineID string
	bootID    string

	// cycleMu serialises cycles; cyc is the running cycle's working copy
	// of the persisted state (only its goroutine touches it).
	cycleMu sync.Mutex
	cyc     *Cycle

	// mu guards st, the committed state (reports, Status).
	mu sync.Mutex
	st *Persisted

	invMu    sync.Mutex
	inv      *Inventory
	invStamp string
}

// New prepares an agent: reads the apt source file and its keyrings, the
// device id and the persisted state, and creates the state and cache
// directories.
func New(cfg Config, opts Options) (*Agent, error) {
	if opts.Now == nil {
		return nil, errors.New("agent: Options.Now is required")
	}
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.Env == nil {
		opts.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second,
		}}
	}
	a := &Agent{cfg: cfg, opts: opts}
	srcs, err := LoadSources(cfg.Sources)
	if err != nil {
		return nil, err
	}
	a.sources = srcs
	for _, s := range srcs {
		kr, err := loadKeyring(s)
		if err != nil {
			return nil, err
		}
		a.keyrings = append(a.keyrings, kr)
	}
	if cfg.OriginKeyring != "" {
		b, err := os.ReadFile(cfg.OriginKeyring)
		if err != nil {
			return nil, fmt.Errorf("%w: origin_keyring: %v", ErrConfig, err)
		}
		if a.origin, err = signing.ReadKeyring(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("%w: origin_keyring %s: %v", ErrConfig, cfg.OriginKeyring, err)
		}
	}
	a.machineID = opts.MachineID
	if a.machineID == "" {
		if b, err := os.ReadFile(cfg.MachineIDFile); err == nil {
			a.machineID = strings.TrimSpace(string(b))
		}
	}
	if b, err := os.ReadFile(cfg.BootIDFile); err == nil {
		a.bootID = strings.TrimSpace(string(b))
	}
	a.deviceID = cfg.DeviceID
	if a.deviceID == "" {
		a.deviceID = DefaultDeviceID(a.machineID)
	}
	if err := state.ValidDeviceID(a.deviceID); err != nil {
		return nil, fmt.Errorf("%w: no usable device id (%v): set device_id in %s", ErrConfig, err, cfg.File)
	}
	for _, d := range []string{cfg.StateDir, cfg.CacheDir, filepath.Join(cfg.CacheDir, "partial"), filepath.Join(cfg.CacheDir, "indices")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	if a.st, err = loadPersisted(cfg.StateDir); err != nil {
		return nil, err
	}
	a.f = &fetcher{client: opts.HTTPClient, userAgent: "lampi-agent/" + opts.Version, now: opts.Now, idle: cfg.FetchIdleTimeout}
	a.inst = &installer{cfg: cfg, env: opts.Env, logf: opts.Logf, sleep: opts.Sleep}
	return a, nil
}

func loadKeyring(s Source) (*signing.Keyring, error) {
	b := s.SignedByKey
	where := fmt.Sprintf("%s:%d: inline Signed-By key", s.File, s.Line)
	if b == nil {
		var err error
		if b, err = os.ReadFile(s.SignedBy); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: Signed-By: %v", ErrConfig, s.File, s.Line, err)
		}
		where = s.SignedBy
	}
	kr, err := signing.ReadKeyring(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, where, err)
	}
	return kr, nil
}

// DefaultDeviceID is the machine id if there is one, else the MAC of the
// first non-loopback interface without colons.
func DefaultDeviceID(machineID string) string {
	if machineID != "" {
		return machineID
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	sort.Slice(ifs, func(i, j int) bool { return ifs[i].Index < ifs[j].Index })
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 && len(i.HardwareAddr) == 6 {
			return strings.ReplaceAll(i.HardwareAddr.String(), ":", "")
		}
	}
	return ""
}

// rand returns a number in [0,1) from Options.Rand (math/rand without).
func (a *Agent) rand() float64 {
	if a.opts.Rand != nil {
		return a.opts.Rand()
	}
	return rand.Float64()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DeviceID is the id the agent reports under.
func (a *Agent) DeviceID() string { return a.deviceID }

// Config returns the configuration in effect (defaults filled in).
func (a *Agent) Config() Config { return a.cfg }

// Sources returns the apt sources the agent polls.
func (a *Agent) Sources() []Source { return a.sources }

// Outcome is the result of one check (and update attempt).
type Outcome struct {
	// Result is one of the state.Result* constants.
	Result string
	// Err explains a failed or rolled-back result.
	Err error
	// Target is what the update attempt tried to install.
	Target map[string]string
	// Pending lists updates that wait (phasing, maintenance window).
	Pending map[string]string
	// Installed is the managed packages' installed versions afterwards.
	Installed map[string]string
	// RetryAfter is the server's wish for the next request (0: none, or
	// ignored: see maxPlainDeferrals).
	RetryAfter time.Duration
	// NotModified is true when InRelease was answered 304 and nothing
	// was re-planned.
	NotModified bool
	// Repaired is true when an interrupted dpkg run was finished first.
	Repaired bool
	// SelfUpdate is set when the agent's own package update was handed
	// to systemd-run; the next agent reports its result.
	SelfUpdate *SelfUpdate
	// Checked is when the repository index was last fetched.
	Checked time.Time
	// NextAttempt is when an update waiting for the backoff of an
	// earlier failed attempt may be tried again (zero: none waits).
	NextAttempt time.Time

	// attempted: an update was tried (or a self-update's result found),
	// so its result is remembered for holds and backoffs.
	attempted bool
	// undelivered: the update failed while its packages were fetched and
	// verified, before dpkg was touched. It backs off like any failure,
	// but it is no attempt of the version in the reports (Attempts): a
	// server down for a moment must not count as the version failing on
	// the device; a device that cannot get it stays eligible and is
	// counted as stuck instead.
	undelivered bool
}

// ExitCode maps an outcome to "lampi-agent once"'s exit code: 0 up to
// date, 10 updated, 20 deferred, 11 rolled back, 12 held back, 1 failed.
func (o *Outcome) ExitCode() int {
	switch o.Result {
	case state.ResultUpToDate:
		return 0
	case state.ResultUpdated:
		return 10
	case state.ResultDeferred:
		return 20
	case state.ResultRolledBack:
		return 11
	case state.ResultHeldBack:
		return 12
	}
	return 1
}
