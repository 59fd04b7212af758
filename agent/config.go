package agent

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/bytesize"
)

// DefaultConfigPath is where lampi-agent looks for its configuration.
const DefaultConfigPath = "/etc/lampi-agent/agent.conf"

// Install methods.
const (
	MethodApt  = "apt"
	MethodDpkg = "dpkg"
)

// Config is the agent's configuration (agent.conf). The zero value of a
// field means its default; Defaults fills them in.
type Config struct {
	// File is where the configuration was read from ("" if built in code).
	File string

	// DeviceID names the device in its reports; default: the content of
	// MachineIDFile, else the first non-loopback MAC without colons.
	DeviceID string
	// MachineIDFile seeds phasing (apt uses /etc/machine-id) and is the
	// default device id.
	MachineIDFile string

	// Groups are the device's rollout groups ("groups = canary,
	// building-3"), reported with its state: a rollout that offers a
	// version to one of them (the Packages stanza's
	// state.PhasedGroupsField) makes the device eligible whatever its
	// phasing draw.
	Groups []string
	// BootIDFile holds the kernel's boot id, reported so that the
	// collector tells apart clones of one SD image that share a device id
	// (default /proc/sys/kernel/random/boot_id; missing: none reported).
	BootIDFile string

	// Sources is the apt source file (.sources or one-line .list).
	Sources string

	// Broker is the MQTT broker URL (mqtt://, tcp://, tls://, mqtts://,
	// ssl://); empty: no reporting.
	Broker           string
	BrokerUser       string
	BrokerPassFile   string // file holding the password (never the password itself)
	BrokerCA         string // PEM CA bundle for TLS
	BrokerCert       string // client certificate (PEM) for TLS
	BrokerKey        string // client key (PEM) for TLS
	TopicPrefix      string
	ReportTimeout    time.Duration // how long "once" waits for the broker
	Heartbeat        time.Duration // state re-sent at least this often by "run"
	ReconnectBackoff time.Duration // upper bound of the broker reconnect backoff

	// Packages are the managed packages; empty: every installed package
	// that the source publishes.
	Packages []string
	// SelfPackage is the agent's own package, updated through SystemdRun.
	SelfPackage string

	PollInterval time.Duration
	PollJitter   time.Duration
	// MaxBackoff caps the exponential backoff after failed checks.
	MaxBackoff time.Duration
	// Window is the maintenance window; installs wait for it.
	Window Window

	HealthCheck        string // shell command; exit 0 = healthy
	HealthCheckTimeout time.Duration

	// Method is MethodApt (apt-get install of the verified .deb) or MethodDpkg.
	Method string
	// Root is the install root: "/" on a device; another directory makes
	// apt-get and dpkg act inside it (isolated tests, image builds).
	Root string
	// AdminDir is dpkg's database (default ROOT/var/lib/dpkg).
	AdminDir string
	// AptOptions and DpkgOptions are appended to every apt-get ("-o X=Y"
	// pairs already split) and dpkg call.
	AptOptions  []string
	DpkgOptions []string
	AptGet      string // apt-get binary
	Dpkg        string // dpkg binary
	SystemdRun  string // systemd-run binary, for self-updates
	LockTimeout time.Duration

	CacheDir string
	StateDir string

	// Architecture is the dpkg architecture (default: from the Go runtime).
	Architecture string
	// OriginKeyring, when set, requires each .deb's _gpgorigin signature
	// to verify against this keyring.
	OriginKeyring string

	// MaxIndexSize bounds InRelease and a decompressed Packages, MaxDebSize
	// a package (max_index_size, max_deb_size: sizes as package bytesize
	// reads them, 64MB = 64·10⁶ bytes, 64MiB or 64M = 64·2²⁰).
	MaxIndexSize int64
	MaxDebSize   int64
	// FetchIdleTimeout fails a request that receives nothing (no
	// headers, no body bytes) for this long: a stalled server or
	// something on the path that holds the connection.
	FetchIdleTimeout time.Duration
	// FetchTimeout bounds all the requests of one cycle together
	// (InRelease, Packages, .deb downloads), so a server trickling a byte
	// now and then cannot hold a cycle; installing is not bounded by it.
	// A .deb cut off by it is resumed by the next cycle.
	FetchTimeout time.Duration
	// MaxFuture tolerates a Release Date this far in the future (clock skew).
	MaxFuture time.Duration
}

// Defaults returns c with every unset field at its default.
func (c Config) Defaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defd := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MachineIDFile, "/etc/machine-id")
	def(&c.BootIDFile, "/proc/sys/kernel/random/boot_id")
	def(&c.Sources, "/etc/apt/sources.list.d/lampi.sources")
	def(&c.TopicPrefix, state.DefaultPrefix)
	defd(&c.ReportTimeout, 10*time.Second)
	defd(&c.Heartbeat, time.Hour)
	defd(&c.ReconnectBackoff, 5*time.Minute)
	def(&c.SelfPackage, "lampi-agent")
	defd(&c.PollInterval, time.Hour)
	defd(&c.MaxBackoff, 6*time.Hour)
	defd(&c.HealthCheckTimeout, 2*time.Minute)
	def(&c.Method, MethodApt)
	def(&c.Root, "/")
	def(&c.AdminDir, filepath.Join(c.Root, "var/lib/dpkg"))
	def(&c.AptGet, "apt-get")
	def(&c.Dpkg, "dpkg")
	def(&c.SystemdRun, "systemd-run")
	defd(&c.LockTimeout, 5*time.Minute)
	def(&c.CacheDir, "/var/cache/lampi-agent")
	def(&c.StateDir, "/var/lib/lampi-agent")
	def(&c.Architecture, GoArchToDpkg(runtime.GOARCH))
	if c.MaxIndexSize == 0 {
		c.MaxIndexSize = 64 << 20
	}
	if c.MaxDebSize == 0 {
		c.MaxDebSize = 1 << 30
	}
	defd(&c.MaxFuture, 10*time.Minute)
	defd(&c.FetchIdleTimeout, time.Minute)
	defd(&c.FetchTimeout, 30*time.Minute)
	return c
}

// GoArchToDpkg maps a GOARCH to the dpkg architecture name.
func GoArchToDpkg(goarch string) string {
	switch goarch {
	case "arm":
		return "armhf"
	case "386":
		return "i386"
	case "ppc64le":
		return "ppc64el"
	case "mipsle":
		return "mipsel"
	case "mips64le":
		return "mips64el"
	}
	return goarch
}

// LoadConfig reads and checks the configuration file at path.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	defer f.Close()
	return ParseConfig(f, path)
}

// ParseConfig parses agent.conf: "key = value" lines, '#' starts a comment
// line, blank lines are ignored; apt_option and dpkg_option may repeat, any
// other key may not. Durations are Go durations ("90s", "1h30m"), sizes
// take K, M or G suffixes. The result has its defaults filled in.
func ParseConfig(r io.Reader, file string) (Config, error) {
	c := Config{File: file}
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		errf := func(format string, a ...any) error {
			return fmt.Errorf("%w: %s:%d: %s", ErrConfig, file, line, fmt.Sprintf(format, a...))
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return Config{}, errf("expected \"key = value\", got %q", text)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if prev, dup := seen[k]; dup && k != "apt_option" && k != "dpkg_option" {
			return Config{}, errf("%s is already set on line %d", k, prev)
		}
		seen[k] = line
		if err := c.set(k, v); err != nil {
			return Config{}, errf("%s: %v", k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Config{}, fmt.Errorf("%w: %s:%d: %v", ErrConfig, file, line, err)
	}
	c = c.Defaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) set(k, v string) error {
	for _, s := range configSetters {
		if s.key == k {
			return s.set(c, v)
		}
	}
	return fmt.Errorf("unknown key; the keys are: %s", strings.Join(configKeys(), ", "))
}

// configSetters is agent.conf's keys, in the order messages list them,
// each with how it checks and sets its value: the one list of the keys.
var configSetters = []struct {
	key string
	set func(c *Config, v string) error
}{
	{"device_id", func(c *Config, v string) error {
		if err := state.ValidDeviceID(v); err != nil {
			return err
		}
		c.DeviceID = v
		return nil
	}},
	{"machine_id_file", func(c *Config, v string) error { return setPath(&c.MachineIDFile, v) }},
	{"boot_id_file", func(c *Config, v string) error { return setPath(&c.BootIDFile, v) }},
	{"groups", func(c *Config, v string) error {
		g, err := state.ParseGroups(v)
		c.Groups = g
		return err
	}},
	{"sources", func(c *Config, v string) error { return setPath(&c.Sources, v) }},
	{"broker", func(c *Config, v string) error {
		if v != "" {
			if _, err := brokerURL(v); err != nil {
				return err
			}
		}
		c.Broker = v
		return nil
	}},
	{"broker_username", func(c *Config, v string) error {
		c.BrokerUser = v
		return nil
	}},
	{"broker_password_file", func(c *Config, v string) error { return setPath(&c.BrokerPassFile, v) }},
	{"broker_ca", func(c *Config, v string) error { return setPath(&c.BrokerCA, v) }},
	{"broker_cert", func(c *Config, v string) error { return setPath(&c.BrokerCert, v) }},
	{"broker_key", func(c *Config, v string) error { return setPath(&c.BrokerKey, v) }},
	{"topic_prefix", func(c *Config, v string) error {
		if v == "" || strings.ContainsAny(v, "#+") {
			return fmt.Errorf("%q: a topic prefix must not be empty or contain # or +", v)
		}
		c.TopicPrefix = v
		return nil
	}},
	{"report_timeout", func(c *Config, v string) error { return setDuration(&c.ReportTimeout, v) }},
	{"heartbeat", func(c *Config, v string) error { return setDuration(&c.Heartbeat, v) }},
	{"reconnect_backoff", func(c *Config, v string) error { return setDuration(&c.ReconnectBackoff, v) }},
	{"packages", func(c *Config, v string) error {
		for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
			if err := deb.ValidatePackageName(p); err != nil {
				return err
			}
			c.Packages = append(c.Packages, p)
		}
		return nil
	}},
	{"self_package", func(c *Config, v string) error {
		if err := deb.ValidatePackageName(v); err != nil {
			return err
		}
		c.SelfPackage = v
		return nil
	}},
	{"poll_interval", func(c *Config, v string) error {
		if err := setDuration(&c.PollInterval, v); err != nil {
			return err
		}
		if c.PollInterval < time.Second {
			return fmt.Errorf("%s is shorter than 1s", v)
		}
		return nil
	}},
	{"poll_jitter", func(c *Config, v string) error { return setDuration(&c.PollJitter, v) }},
	{"max_backoff", func(c *Config, v string) error { return setDuration(&c.MaxBackoff, v) }},
	{"maintenance_window", func(c *Config, v string) error {
		w, err := ParseWindow(v)
		if err != nil {
			return err
		}
		c.Window = w
		return nil
	}},
	{"health_check", func(c *Config, v string) error {
		c.HealthCheck = v
		return nil
	}},
	{"health_check_timeout", func(c *Config, v string) error { return setDuration(&c.HealthCheckTimeout, v) }},
	{"install_method", func(c *Config, v string) error {
		if v != MethodApt && v != MethodDpkg {
			return fmt.Errorf("%q: use apt or dpkg", v)
		}
		c.Method = v
		return nil
	}},
	{"root", func(c *Config, v string) error { return setPath(&c.Root, v) }},
	{"admin_dir", func(c *Config, v string) error { return setPath(&c.AdminDir, v) }},
	{"apt_option", func(c *Config, v string) error {
		c.AptOptions = append(c.AptOptions, "-o", v)
		return nil
	}},
	{"dpkg_option", func(c *Config, v string) error {
		c.DpkgOptions = append(c.DpkgOptions, v)
		return nil
	}},
	{"apt_get", func(c *Config, v string) error {
		c.AptGet = v
		return nil
	}},
	{"dpkg", func(c *Config, v string) error {
		c.Dpkg = v
		return nil
	}},
	{"systemd_run", func(c *Config, v string) error {
		c.SystemdRun = v
		return nil
	}},
	{"lock_timeout", func(c *Config, v string) error { return setDuration(&c.LockTimeout, v) }},
	{"cache_dir", func(c *Config, v string) error { return setPath(&c.CacheDir, v) }},
	{"state_dir", func(c *Config, v string) error { return setPath(&c.StateDir, v) }},
	{"architecture", func(c *Config, v string) error {
		if err := deb.ValidateArchitecture(v); err != nil {
			return err
		}
		c.Architecture = v
		return nil
	}},
	{"origin_keyring", func(c *Config, v string) error { return setPath(&c.OriginKeyring, v) }},
	{"max_index_size", func(c *Config, v string) error { return setSize(&c.MaxIndexSize, v) }},
	{"max_deb_size", func(c *Config, v string) error { return setSize(&c.MaxDebSize, v) }},
	{"max_future", func(c *Config, v string) error { return setDuration(&c.MaxFuture, v) }},
	{"fetch_idle_timeout", func(c *Config, v string) error { return setDuration(&c.FetchIdleTimeout, v) }},
	{"fetch_timeout", func(c *Config, v string) error { return setDuration(&c.FetchTimeout, v) }},
}

// configKeys lists agent.conf's keys, for error messages.
func configKeys() []string {
	keys := make([]string, len(configSetters))
	for i, s := range configSetters {
		keys[i] = s.key
	}
	return keys
}

func setDuration(d *time.Duration, v string) error {
	x, err := time.ParseDuration(v)
	if err != nil || x < 0 {
		return fmt.Errorf("%q is not a duration such as 30s, 15m or 1h", v)
	}
	*d = x
	return nil
}

func setSize(n *int64, v string) error {
	x, err := bytesize.Parse(v)
	if err == nil && x == 0 {
		err = fmt.Errorf("%q would refuse everything: give at least 1B, or leave the key out for the default", v)
	}
	if err != nil {
		return err
	}
	*n = x
	return nil
}

func setPath(p *string, v string) error {
	if v != "" && !filepath.IsAbs(v) {
		return fmt.Errorf("%q must be an absolute path", v)
	}
	*p = v
	return nil
}

// Validate checks the combination of settings.
func (c Config) Validate() error {
	errf := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, c.File, fmt.Sprintf(format, a...))
	}
	if c.DeviceID != "" {
		if err := state.ValidDeviceID(c.DeviceID); err != nil {
			return errf("device_id: %v", err)
		}
	}
	if c.Method != MethodApt && c.Method != MethodDpkg {
		return errf("install_method %q: use apt or dpkg", c.Method)
	}
	if (c.BrokerCert == "") != (c.BrokerKey == "") {
		return errf("broker_cert and broker_key go together")
	}
	if c.PollJitter > c.PollInterval {
		return errf("poll_jitter %s is longer than poll_interval %s", c.PollJitter, c.PollInterval)
	}
	return nil
}

func brokerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad broker URL %q: %v", s, err)
	}
	switch u.Scheme {
	case "mqtt", "tcp":
		u.Scheme = "mqtt"
	case "tls", "mqtts", "ssl":
		u.Scheme = "tls"
	default:
		return nil, fmt.Errorf("broker URL %q: scheme must be mqtt://, tcp://, tls://, mqtts:// or ssl://", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("broker URL %q has no host", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("broker URL must not hold credentials; use broker_username and broker_password_file")
	}
	return u, nil
}

// Window is a daily maintenance window in local time; the zero Window is
// always open.
type Window struct {
	Start, End int // minutes after midnight; End < Start wraps past midnight
	Set        bool
}

// ParseWindow parses "HH:MM-HH:MM" ("" = always).
func ParseWindow(s string) (Window, error) {
	if s == "" || s == "always" {
		return Window{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Window{}, fmt.Errorf("%q: expected HH:MM-HH:MM", s)
	}
	pa, err1 := parseClock(a)
	pb, err2 := parseClock(b)
	if err1 != nil || err2 != nil || pa == pb {
		return Window{}, fmt.Errorf("%q: expected HH:MM-HH:MM with different start and end", s)
	}
	return Window{Start: pa, End: pb, Set: true}, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Open reports whether t (in its own location) lies inside the window.
func (w Window) Open(t time.Time) bool {
	if !w.Set {
		return true
	}
	m := t.Hour()*60 + t.Minute()
	if w.Start < w.End {
		return m >= w.Start && m < w.End
	}
	return m >= w.Start || m < w.End
}

// Next returns the next time at or after t when the window opens.
func (w Window) Next(t time.Time) time.Time {
	if w.Open(t) {
		return t
	}
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	start := day.Add(time.Duration(w.Start) * time.Minute)
	if !start.After(t) {
		start = start.AddDate(0, 0, 1)
	}
	return start
}

// String formats the window as ParseWindow reads it.
func (w Window) String() string {
	if !w.Set {
		return "always"
	}
	return fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
}
